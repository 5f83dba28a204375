import { describe, expect, it } from 'vitest';
import { compileRules, parseRulesSource, RulesLoadError, type RuleSet } from '../../src/policy/rules/index.js';

const load = (source: string, file = 'p.rules'): RuleSet => compileRules([{ file, source }], { homeDir: '/home/tester' });

/** Loads `source`, expecting a RulesLoadError; returns it. */
function loadError(source: string): RulesLoadError {
  try {
    load(source);
  } catch (err) {
    expect(err).toBeInstanceOf(RulesLoadError);
    return err as RulesLoadError;
  }
  throw new Error(`expected a load error for:\n${source}`);
}

function expectError(source: string, line: number, column: number, detail: string | RegExp): void {
  const e = loadError(source);
  if (typeof detail === 'string') expect(e.detail).toBe(detail);
  else expect(e.detail).toMatch(detail);
  expect({ line: e.line, column: e.column, file: e.file }).toEqual({ line, column, file: 'p.rules' });
  expect(e.message).toBe(`p.rules:${line}:${column}: ${e.detail}`);
}

const decisionOf = (rules: RuleSet, argv: string[]): string | undefined => rules.evaluate(argv).decision;

describe('rules syntax', () => {
  it('accepts comments, trailing commas, both quote styles, escapes and multi-line calls', () => {
    const rules = load(`# leading comment
prefix_rule(  # comment after the paren
    pattern = [
        'git',            # single quotes
        ["push", "pu\\x73h2"],   # escape in an alternative
    ],
    decision = "prompt",
    justification = 'it\\'s a "push"\\n\\tsecond line \\u00e9\\U0001F600 \\101',
    match = ["git push", ['git', 'push2',],],
    not_match = [],
)
prefix_rule(pattern=["a"]); prefix_rule(pattern=["b"],)
prefix_rule(pattern = [r"c\\d"], justification = """triple
quoted""")
prefix_rule(pattern = ['''e'''], justification = "continued \\
line")
prefix_rule(pattern = ["f"], decision = None, justification = None, match = None)
prefix_rule(["pos"], "forbidden", ["pos x"], ["other"], "positional args bind in upstream order")
prefix_rule(\\
pattern = [("paren")])
`);
    const push = rules.evaluate(['git', 'push2']).matchedRules[0];
    expect(push?.decision).toBe('prompt');
    expect(push?.justification).toBe('it\'s a "push"\n\tsecond line é😀 A');
    expect(decisionOf(rules, ['a'])).toBe('allow');
    expect(decisionOf(rules, ['b', 'x'])).toBe('allow');
    expect(decisionOf(rules, ['c\\d'])).toBe('allow');
    expect(rules.evaluate(['c\\d']).matchedRules[0]?.justification).toBe('triple\nquoted');
    expect(rules.evaluate(['e']).matchedRules[0]?.justification).toBe('continued line');
    expect(rules.evaluate(['f']).matchedRules[0]).toMatchObject({ decision: 'allow', justification: undefined });
    expect(rules.evaluate(['pos', 'x']).matchedRules[0]).toMatchObject({
      decision: 'forbidden',
      justification: 'positional args bind in upstream order',
    });
    expect(decisionOf(rules, ['paren'])).toBe('allow');
    expect(rules.size).toBe(8);
  });

  it('accepts an empty file and a file of only comments', () => {
    expect(load('').size).toBe(0);
    expect(load('# nothing\n\n   # indented comment\n').size).toBe(0);
  });

  it('accepts CRLF line endings', () => {
    const rules = load('prefix_rule(\r\n  pattern = ["ls"],\r\n  decision = "prompt",\r\n)\r\nprefix_rule(pattern=["x"])\r\n');
    expect(decisionOf(rules, ['ls'])).toBe('prompt');
    expect(decisionOf(rules, ['x'])).toBe('allow');
  });

  it.each<[string, number, number, string | RegExp]>([
    ['# c\n\nprefix_rule(\n    pattern = ["a"],\n    decision = "nope",\n)\n', 5, 16, 'invalid decision "nope": expected "allow", "prompt" or "forbidden"'],
  ])('reports positions on later lines correctly: %s', (source, line, col, message) => expectError(source, line, col, message));

  it('parseRulesSource returns statements in order without validating examples', () => {
    const parsed = parseRulesSource('host_executable(name="git", paths=["/usr/bin/git"])\nprefix_rule(pattern=[["a","b"], "c"], match=["zzz"])', 'f.rules');
    expect(parsed.file).toBe('f.rules');
    expect(parsed.statements.map((s) => s.kind)).toEqual(['host_executable', 'prefix_rule']);
    const rule = parsed.statements[1];
    expect(rule?.kind === 'prefix_rule' && rule.decl.rules.map((r) => r.program)).toEqual(['a', 'b']);
  });
});

describe('load errors: lexical', () => {
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=["a)\n', 1, 22, 'unterminated string literal: expected a closing " before the end of the line'],
    ['prefix_rule(pattern=["""a"])', 1, 22, 'unterminated string literal: expected a closing """'],
  ])('unterminated strings: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=["a\\qb"])', 1, 24, /^invalid escape sequence \\q: expected one of/],
    ['prefix_rule(pattern=["\\x4"])', 1, 23, 'invalid escape sequence \\x4: expected 2 hexadecimal digits'],
    ['prefix_rule(pattern=["\\uD800"])', 1, 23, 'invalid escape sequence \\uD800: not a valid Unicode code point'],
    ['prefix_rule(pattern=["\\477"])', 1, 23, 'invalid escape sequence \\477: octal escapes must be at most \\377'],
  ])('invalid escapes: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=[@"a"])', 1, 22, 'unexpected character "@"'],
    ['prefix_rule(pattern=["a"]) \\ x', 1, 28, "unexpected character '\\' (a backslash outside a string must end the line)"],
    ['prefix_rule(pattern=[b"a"])', 1, 22, 'byte strings are not supported: expected a plain string literal'],
  ])('unexpected characters and byte strings: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=["a"])\n  prefix_rule(pattern=["b"])', 2, 3, 'unexpected indentation: top-level statements must start in column 1'],
    ['prefix_rule(pattern=["a"]\n', 1, 12, "unclosed '(': expected ')' before the end of the file"],
    ['prefix_rule(pattern=["a"', 1, 21, "unclosed '[': expected ']' before the end of the file"],
  ])('unexpected indentation and unclosed brackets: %s', (source, line, col, message) => expectError(source, line, col, message));
});

describe('load errors: grammar', () => {
  it.each<[string, number, number, string | RegExp]>([
    ['load("x.star", "y")', 1, 1, '`load` statements are not supported: a rules file cannot load other files (upstream codex has no loader either)'],
    ['prefix_rule(pattern=["a"]) prefix_rule(pattern=["b"])', 1, 28, 'expected end of line after the statement, found name `prefix_rule`'],
  ])('statements that are not Starlark: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=["a"] decision="allow")', 1, 27, "expected ',' or ')' in the arguments of prefix_rule(...), found name `decision`"],
    ['prefix_rule(pattern=["a" "b"])', 1, 26, "implicit string concatenation is not supported: expected ',' between the two strings (or `+` to join them)"],
    ['prefix_rule(pattern=["a", "b")', 1, 30, "expected ']' to close the '[' opened at 1:21, found ')'"],
    ['prefix_rule(pattern=["a"]))', 1, 27, "unmatched ')': nothing to close"],
    ['prefix_rule(pattern=["a"; "b"])', 1, 25, "expected ',' or ']' in list, found ';'"],
    ['prefix_rule(pattern=PATTERN)', 1, 21, 'unknown name `PATTERN`: not defined before this line (nor a builtin)'],
    ['prefix_rule(pattern={"a": 1})', 1, 21, '`pattern` must be a list, found dict'],
    ['prefix_rule(pattern=)', 1, 21, "expected a value (a string, a number, a list, a name...), found ')'"],
    ['prefix_rule(*args)', 1, 14, 'unknown name `args`: not defined before this line (nor a builtin)'],
  ])('bad argument lists and values: %s', (source, line, col, message) => expectError(source, line, col, message));
});

describe('load errors: calls and types', () => {
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rul(pattern=["a"])', 1, 1, 'unknown function `prefix_rul`: expected prefix_rule, host_executable, network_rule, a builtin, or a function defined above'],
    ['prefix_rule(pattern=["a"], decison="allow")', 1, 28, 'unknown keyword argument `decison` for prefix_rule: expected one of pattern, decision, match, not_match, justification'],
    ['host_executable(name="a", path=["/a"])', 1, 27, 'unknown keyword argument `path` for host_executable: expected one of name, paths'],
    ['prefix_rule(pattern=["a"], pattern=["b"])', 1, 28, 'argument `pattern` given more than once in prefix_rule(...)'],
    ['prefix_rule(pattern=["a"], "allow")', 1, 28, 'positional argument after keyword argument in prefix_rule(...)'],
    ['host_executable("a", ["/x/a"], "extra")', 1, 32, 'too many positional arguments for host_executable(...): it takes at most 2 (name, paths)'],
    ['prefix_rule(decision="allow")', 1, 1, 'missing required argument `pattern` for prefix_rule(...)'],
    ['host_executable(name="git")', 1, 1, 'missing required argument `paths` for host_executable(...)'],
    ['prefix_rule(pattern=None)', 1, 21, '`pattern` must be a list, found NoneType'],
  ])('unknown function, unknown keyword, duplicate and misplaced arguments: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern="git")', 1, 21, '`pattern` must be a list, found string'],
    ['prefix_rule(pattern=("git", "status"))', 1, 21, '`pattern` must be a list, found tuple'],
    ['prefix_rule(pattern=["git"], decision=["allow"])', 1, 39, '`decision` must be a string, found list'],
    ['prefix_rule(pattern=["git"], justification=True)', 1, 44, '`justification` must be a string, found bool'],
    ['prefix_rule(pattern=["git"], match="git")', 1, 36, '`match` must be a list, found string'],
    ['prefix_rule(pattern=["git"], not_match=1)', 1, 40, '`not_match` must be a list, found int'],
    ['host_executable(name=1, paths=[])', 1, 22, '`name` must be a string, found int'],
    ['host_executable(name="git", paths="/usr/bin/git")', 1, 35, '`paths` must be a list, found string'],
    ['host_executable(name="git", paths=[None])', 1, 36, 'host_executable paths must be a string, found NoneType'],
  ])('wrong types: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=[])', 1, 21, 'pattern cannot be empty: expected at least the program name'],
    ['prefix_rule(pattern=["git", 1])', 1, 29, 'pattern element must be a string or a list of strings, found int'],
    ['prefix_rule(pattern=["git", []])', 1, 29, 'pattern alternatives cannot be empty: expected at least one string'],
    ['prefix_rule(pattern=["git", ["a", None]])', 1, 35, 'pattern alternative must be a string, found NoneType'],
  ])('pattern errors: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=["git"], decision="deny")', 1, 39, 'invalid decision "deny": expected "allow", "prompt" or "forbidden"'],
    ['prefix_rule(pattern=["git"], decision="Allow")', 1, 39, 'invalid decision "Allow": expected "allow", "prompt" or "forbidden"'],
    ['prefix_rule(pattern=["git"], justification="")', 1, 44, 'justification cannot be empty or blank: explain why the rule exists, or omit it'],
    ['prefix_rule(pattern=["git"], justification=" \\t\\n ")', 1, 44, 'justification cannot be empty or blank: explain why the rule exists, or omit it'],
  ])('decision and justification errors: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['prefix_rule(pattern=["git"], match=["git \'unclosed"])', 1, 37, 'invalid match example "git \'unclosed": unbalanced quotes or a trailing backslash'],
    ['prefix_rule(pattern=["git"], not_match=["git \\\\"])', 1, 41, 'invalid not_match example "git \\\\": unbalanced quotes or a trailing backslash'],
    ['prefix_rule(pattern=["git"], match=["  "])', 1, 37, 'invalid match example: an example cannot be an empty string'],
    ['prefix_rule(pattern=["git"], match=[[]])', 1, 37, 'invalid match example: an example cannot be an empty list'],
    ['prefix_rule(pattern=["git"], match=[["git", 1]])', 1, 45, 'invalid match example: example tokens must be strings, found int'],
    ['prefix_rule(pattern=["git"], not_match=[None])', 1, 41, 'invalid not_match example: expected a string or a list of strings, found NoneType'],
  ])('example shape errors: %s', (source, line, col, message) => expectError(source, line, col, message));
  it.each<[string, number, number, string | RegExp]>([
    ['host_executable(name="", paths=[])', 1, 22, 'host_executable name cannot be empty'],
    ['host_executable(name="bin/git", paths=[])', 1, 22, 'host_executable name must be a bare executable name like "git", found "bin/git"'],
    ['host_executable(name="..", paths=[])', 1, 22, 'host_executable name must be a bare executable name like "git", found ".."'],
    ['host_executable(name="git", paths=["usr/bin/git"])', 1, 36, 'host_executable paths must be absolute or start with ~/, found "usr/bin/git"'],
    ['host_executable(name="git", paths=["~tester/git"])', 1, 36, 'host_executable paths must be absolute or start with ~/, found "~tester/git"'],
    ['host_executable(name="git", paths=["/usr/bin/git", "/usr/bin/gitk"])', 1, 52, 'host_executable path "/usr/bin/gitk" must have basename "git"'],
    ['host_executable(name="git", paths=["/usr/bin/git/.."])', 1, 36, 'host_executable path "/usr/bin/git/.." must have basename "git"'],
  ])('host_executable errors: %s', (source, line, col, message) => expectError(source, line, col, message));
});

describe('load errors: example validation', () => {
  it('a match example that matches no rule names the rule and the example', () => {
    expectError(
      '\nprefix_rule(\n  pattern = ["git", "push"],\n  match = ["git push", "git pull origin"],\n)',
      4,
      24,
      'match example `git pull origin` does not match prefix_rule(["git", "push"], decision="allow") at p.rules:2:1: expected it to match',
    );
  });
  it('a not_match example that matches names the rule and the example', () => {
    expectError(
      'prefix_rule(pattern = [["npm", "pnpm"], ["i", "install"]], decision = "prompt", not_match = [["pnpm", "i", "x y"]])',
      1,
      94,
      'not_match example `pnpm i \'x y\'` matches prefix_rule([["npm", "pnpm"], ["i", "install"]], decision="prompt") at p.rules:1:1: expected it not to match',
    );
  });
  it('examples test only their own rule, not the rest of the policy', () => {
    // `ls` is allowed by the first rule, but the second rule's not_match only concerns the second rule.
    expect(load('prefix_rule(pattern=["ls"])\nprefix_rule(pattern=["ls", "-l"], not_match=["ls"])').size).toBe(2);
    expectError('prefix_rule(pattern=["ls"])\nprefix_rule(pattern=["ls", "-l"], match=["ls -a"])', 2, 42, /^match example `ls -a` does not match/);
  });
  it('examples are matched with host-executable resolution on, against host_executable defined anywhere in the file', () => {
    expect(load('prefix_rule(pattern=["git"], match=["/usr/bin/git status"])').size).toBe(1);
    // The host_executable comes later in the file but still restricts the fallback.
    expectError(
      'prefix_rule(pattern=["git"], match=["/opt/git status"])\nhost_executable(name="git", paths=["/usr/bin/git"])',
      1,
      37,
      'match example `/opt/git status` does not match prefix_rule(["git"], decision="allow") at p.rules:1:1: expected it to match',
    );
    expectError(
      'host_executable(name="git", paths=["/usr/bin/git"])\nprefix_rule(pattern=["git"], not_match=["/usr/bin/git status"])',
      2,
      41,
      /^not_match example `\/usr\/bin\/git status` matches/,
    );
  });
  it('string examples are split shell-style', () => {
    const rules = load(`prefix_rule(pattern=["echo", "a b", "c'd", 'e"f', "g\\\\h"], match=["echo 'a b' \\"c'd\\" 'e\\"f' g\\\\\\\\h"])`);
    expect(rules.size).toBe(1);
  });
  it('reports errors from the right file when several files load', () => {
    try {
      compileRules([
        { file: 'one.rules', source: 'prefix_rule(pattern=["a"])' },
        { file: 'two.rules', source: '\n\nprefix_rule(pattern=["b"], decision="x")' },
      ]);
      throw new Error('no error');
    } catch (err) {
      expect(err).toBeInstanceOf(RulesLoadError);
      expect((err as Error).message).toBe('two.rules:3:37: invalid decision "x": expected "allow", "prompt" or "forbidden"');
    }
  });
});
