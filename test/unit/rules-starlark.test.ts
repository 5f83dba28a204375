/**
 * The Starlark that real codex `.rules` files use (upstream evaluates them with
 * starlark-rust, extended dialect, f-strings on): variables, loops,
 * comprehensions, string building, helper functions, network_rule. Every error
 * keeps its file:line:col; evaluation is bounded for hostile files.
 */
import { describe, expect, it } from 'vitest';
import { compileRules, EVAL_LIMITS, RulesLoadError, type RuleSet } from '../../src/policy/rules/index.js';

const load = (source: string): RuleSet => compileRules([{ file: 'p.rules', source }], { homeDir: '/home/tester' });

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
  expect({ line: e.line, column: e.column }).toEqual({ line, column });
  expect(e.message).toBe(`p.rules:${line}:${column}: ${e.detail}`);
}

const decisionOf = (rules: RuleSet, argv: string[]): string | undefined => rules.evaluate(argv).decision;
const programs = (rules: RuleSet): string[] => rules.rules().map((r) => [r.program, ...r.rest.map((t) => (typeof t === 'string' ? t : `[${t.join('|')}]`))].join(' '));

describe('Starlark: values and statements', () => {
  it('variables are assigned at top level and reused in calls', () => {
    const rules = load(`
GIT = "git"
READ_ONLY = ["status", "log", "diff"]
JUST = "read-only inspection"
prefix_rule(pattern = [GIT, READ_ONLY], justification = JUST, match = [GIT + " status"])
prefix_rule(pattern = [GIT, "push"], decision = "prompt")
`);
    expect(decisionOf(rules, ['git', 'log', '-1'])).toBe('allow');
    expect(rules.evaluate(['git', 'diff']).matchedRules[0]?.justification).toBe('read-only inspection');
    expect(decisionOf(rules, ['git', 'push'])).toBe('prompt');
  });

  it('for loops (nested, over lists, tuples, dict keys and items, range) declare one rule per iteration', () => {
    const rules = load(`
for sub in ["push", "fetch"]:
    prefix_rule(pattern = ["git", sub], decision = "prompt", match = ["git " + sub])

DANGER = {"rm": ["-rf", "-fr"], "chmod": ("-R",)}
for prog, flags in DANGER.items():
    for f in flags:
        prefix_rule(pattern = [prog, f], decision = "forbidden")
for k in {"kubectl": 1}:
    prefix_rule(pattern = [k, "get"])
for i in range(3):
    if i == 1:
        continue
    prefix_rule(pattern = ["n%d" % i])
for w in ["a", "b", "c"]:
    if w == "b": break
    prefix_rule(pattern = ["w" + w])
`);
    expect(programs(rules)).toEqual(['git push', 'git fetch', 'rm -rf', 'rm -fr', 'chmod -R', 'kubectl get', 'n0', 'n2', 'wa']);
    // Each rule remembers the prefix_rule call that made it.
    expect(rules.rules()[1]?.origin).toEqual({ file: 'p.rules', line: 3, column: 5 });
  });

  it('list and dict comprehensions, concatenation, %, .format, f-strings, slicing, methods', () => {
    const rules = load(`
TOOLS = ["cargo", "npm", "pip"]
[prefix_rule(pattern = [t, "test"]) for t in TOOLS if t != "pip"]
NAMES = {t: t.upper() for t in TOOLS}
prefix_rule(pattern = [NAMES["npm"]])
prefix_rule(pattern = ["a" + "b", "%s-%s" % ("c", 1), "{}/{name}".format("d", name = "e")])
who = "ci"
prefix_rule(pattern = [f"{who}-run", f"{{literal}}"], justification = f"run by {who}")
prefix_rule(pattern = ["x,y,z".split(",")[1:], " pad ".strip(), "-".join(["p", "q"])])
prefix_rule(pattern = TOOLS[:1] + ["build"])
ALL = ["git"] + [s for s in "pull,fetch".split(",")]
prefix_rule(pattern = [ALL[0], ALL[1:]])
l = []
l.append("appended")
l += ["extended"]
prefix_rule(pattern = l)
`);
    // rules() lists by program; a first-token alternative expands into one rule per program.
    expect(programs(rules)).toEqual(['cargo test', 'cargo build', 'npm test', 'NPM', 'ab c-1 d/e', 'ci-run {literal}', 'y pad p-q', 'z pad p-q', 'git [pull|fetch]', 'appended extended']);
    expect(rules.evaluate(['ci-run', '{literal}']).matchedRules[0]?.justification).toBe('run by ci');
  });

  it('def helpers with defaults, keyword, *args and **kwargs; lambda; conditional expressions', () => {
    const rules = load(`
def deny(*cmd, why = None, **extra):
    prefix_rule(pattern = list(cmd), decision = "forbidden", justification = why, **extra)

def sub_rules(prog, subs, decision = "allow"):
    for s in subs:
        prefix_rule(pattern = [prog, s], decision = decision)
    return len(subs)

deny("rm", "-rf", why = "destructive")
deny("dd", match = ["dd if=/dev/zero"])
n = sub_rules("docker", ["ps", "images"])
sub_rules("docker", ["rm"], decision = "prompt" if n == 2 else "forbidden")
twice = lambda s: s + s
prefix_rule(pattern = [twice("ab")])
`);
    expect(decisionOf(rules, ['rm', '-rf', '/'])).toBe('forbidden');
    expect(rules.evaluate(['rm', '-rf']).matchedRules[0]?.justification).toBe('destructive');
    expect(decisionOf(rules, ['dd', 'if=/dev/zero'])).toBe('forbidden');
    expect(decisionOf(rules, ['docker', 'ps'])).toBe('allow');
    expect(decisionOf(rules, ['docker', 'rm'])).toBe('prompt');
    expect(decisionOf(rules, ['abab'])).toBe('allow');
  });

  it('builtins: len, sorted, reversed, enumerate, zip, dict, str, int, any, all, min, max, type', () => {
    const rules = load(`
xs = sorted(["b", "a"]) + list(reversed(["d", "c"]))
for i, x in enumerate(xs):
    prefix_rule(pattern = [x, str(i)])
for a, b in zip(["z1"], ["z2", "z3"]):
    prefix_rule(pattern = [a, b])
d = dict(k = "v")
if any([False, d["k"] == "v"]) and all([1, "s"]) and min(3, 2) == 2 and max([1, 5]) == 5 and type(d) == "dict":
    prefix_rule(pattern = ["ok", str(int("0x10", 16)), str(len(xs))])
`);
    expect(programs(rules)).toEqual(['a 0', 'b 1', 'c 2', 'd 3', 'z1 z2', 'ok 16 4']);
  });

  it('tab indentation and one-line suites work', () => {
    expect(programs(load('for p in ["a"]:\n\tprefix_rule(pattern=[p])\nfor q in ["b"]: prefix_rule(pattern=[q])\n'))).toEqual(['a', 'b']);
  });

  it('argument errors inside a loop point at the value, wherever it was written', () => {
    // The bad element is the 1 in the list on line 1, not the call on line 3.
    expectError('BAD = ["git", 1]\nfor x in [1]:\n    prefix_rule(pattern = BAD)', 1, 15, 'pattern element must be a string or a list of strings, found int');
    // A failing example made in a loop names the example's position and the rule's call.
    expectError(
      'for s in ["push"]:\n    prefix_rule(pattern = ["git", s], match = ["git " + "pull"])',
      2,
      48,
      'match example `git pull` does not match prefix_rule(["git", "push"], decision="allow") at p.rules:2:5: expected it to match',
    );
  });
});

describe('Starlark: errors keep file:line:col', () => {
  it.each<[string, number, number, string | RegExp]>([
    ['for x in 1:\n    pass', 1, 10, 'a int is not iterable'],
    ['for x in "ab":\n    pass', 1, 10, 'a string is not iterable (Starlark strings are not: use .elems() or .split())'],
    ['for x in [1]:\nprefix_rule(pattern=["a"])', 2, 1, 'expected an indented block after the for header, found name `prefix_rule`'],
    ['for x in [1]\n    pass', 1, 13, "expected ':' after the for header, found end of line"],
    ['for x y in [1]:\n    pass', 1, 7, 'expected `in` in the for statement, found name `y`'],
    ['for x in [1]:\n    pass\n  pass', 3, 3, 'inconsistent indentation: this line does not line up with any enclosing block (mixed tabs and spaces?)'],
    ['for x in [1]:\n    pass\n        pass', 3, 9, 'unexpected indentation: this line is indented more than the block it is in'],
    ['for a, b in [[1, 2, 3]]:\n    pass', 1, 5, 'cannot unpack 3 values into 2 names'],
    ['for x in [1]:\n    prefix_rule(pattern=[y])', 2, 26, 'unknown name `y`: not defined before this line (nor a builtin)'],
  ])('for loops: %s', (source, line, col, message) => expectError(source, line, col, message));

  it.each<[string, number, number, string | RegExp]>([
    ['x = 1 +', 1, 8, "expected a value (a string, a number, a list, a name...), found end of line"],
    ['x = "a" + 1', 1, 9, 'unsupported operand types for +: string and int'],
    ['x = [1] * "a"', 1, 9, 'unsupported operand types for *: list and string'],
    ['x = ["a"][3]', 1, 10, 'index 3 out of range (length 1)'],
    ['x = {"a": 1}["b"]', 1, 13, 'key "b" not found in dictionary'],
    ['x = {[1]: 2}', 1, 6, 'a list cannot be a dictionary key (not hashable)'],
    ['x = {"a": 1, "a": 2}', 1, 14, 'duplicate key "a" in dictionary literal'],
    ['x = 1 / 2', 1, 7, 'floating-point division (`/`) is not supported: use `//`'],
    ['x = 1.5', 1, 5, 'floating-point numbers are not supported here: 1.5'],
    ['x = 1 < 2 < 3', 1, 11, 'chained comparisons (`a < b < c`) are not allowed in Starlark: use `and`'],
    ['x = "%s %s" % ("a",)', 1, 13, 'not enough arguments for the format string'],
    ['x = "%x" % 1', 1, 10, 'unsupported format directive %x: use %s, %d, %r or %%'],
    ['x = "{}{}".format("a")', 1, 18, 'format string: no argument for {}'],
    ['x = "{a:>3}".format(a = 1)', 1, 20, 'format string: unsupported field {a:>3} (format specs are not supported)'],
    ['x = "a}b".format()', 1, 17, 'format string: a single `}` must be written `}}`'],
    ['x = "{a".format()', 1, 16, 'format string: `{` without a closing `}`'],
    // Left to right: the bad field is reported before the lone `}` after it.
    ['x = "{a:1}}".format(a = 1)', 1, 20, 'format string: unsupported field {a:1} (format specs are not supported)'],
    ['x = f"a}"', 1, 5, 'invalid f-string: a single `}` must be written `}}`'],
    ['x = f"{a"', 1, 5, 'invalid f-string: `{` without a closing `}`'],
    ['x = f"{a + b}"', 1, 5, 'invalid f-string: {a + b} must name a variable (f-strings take identifiers only, like upstream)'],
    ['x = f"{missing}"', 1, 5, 'unknown name `missing`: not defined before this line (nor a builtin)'],
    ['x = "a".nope()', 1, 9, 'a string has no attribute `nope`'],
    ['x = a = 1', 1, 7, 'chained assignment (`a = b = ...`) is not supported: assign one name at a time'],
    ['f() = 1', 1, 1, 'cannot assign to this expression: expected a name, `a, b` or `x[i]`'],
    ['prefix_rule = 1', 1, 1, 'cannot assign to `prefix_rule`: it is a rules builtin'],
    ['x = (a for a in [1])', 1, 8, 'generator expressions are not supported: use a list comprehension [... for ...]'],
    ['x = [a for a in 1]', 1, 17, 'a int is not iterable'],
    ['x = [a for a in [1] b]', 1, 21, "expected `for`, `if` or ']' in the comprehension, found name `b`"],
    ['fail("custom", "message")', 1, 1, 'fail(): custom message'],
    ['x = {1, 2}', 1, 7, "expected ':' after a dictionary key (sets are not Starlark), found ','"],
  ])('expressions: %s', (source, line, col, message) => expectError(source, line, col, message));

  it.each<[string, number, number, string | RegExp]>([
    ['def f(x):\n    return x\nf()', 3, 1, 'missing argument `x` for f()'],
    ['def f(x):\n    return x\nf(1, 2)', 3, 1, 'f() takes 1 positional argument but 2 were given'],
    ['def f(x):\n    return x\nf(y = 1)', 3, 3, 'unknown keyword argument `y` for f()'],
    ['def f(x = 1, y):\n    pass', 1, 14, 'parameter `y` without a default follows one with a default'],
    ['def f(x, x):\n    pass', 1, 10, 'duplicate parameter `x`'],
    ['def f():\n    def g():\n        pass', 2, 5, 'nested `def` is not supported: define helper functions at the top level'],
    ['def f():\n    return f()\nf()', 2, 12, 'recursion is not allowed: `f` is already running (Starlark forbids recursion)'],
    ['def f():\n    g()\ndef g():\n    f()\nf()', 4, 5, 'recursion is not allowed: `f` is already running (Starlark forbids recursion)'],
    ['return 1', 1, 1, '`return` outside a function'],
    ['break', 1, 1, '`break` outside a for loop'],
    ['def f():\n    continue', 2, 5, '`continue` outside a for loop'],
    ['x = 1\nx()', 2, 1, 'a int is not callable'],
  ])('functions: %s', (source, line, col, message) => expectError(source, line, col, message));

  it.each<[string, number, number, string | RegExp]>([
    ['while True:\n    pass', 1, 1, '`while` loops are not supported: Starlark has no `while` (use `for x in list` or `for i in range(n)`)'],
    ['import os', 1, 1, '`import` is reserved in Starlark and not supported'],
    ['class A:\n    pass', 1, 1, '`class` is reserved in Starlark and not supported'],
    ['if True:\n    pass\nelse\n    pass', 3, 5, "expected ':' after the else header, found end of line"],
    ['else:\n    pass', 1, 1, '`else` without a matching `if`'],
  ])('statements Starlark does not have: %s', (source, line, col, message) => expectError(source, line, col, message));
});

describe('Starlark: evaluation is bounded (rules files can be hostile)', () => {
  it.each<[string, string, number, number, RegExp]>([
    ['nested loops', 'for i in range(100000):\n    for j in range(100000):\n        pass', 2, 14, new RegExp(`^evaluation exceeded ${EVAL_LIMITS.steps} steps`)],
    ['a huge range', 'x = range(1000000000)', 1, 5, /^a list, tuple or dict would have 1000000000 elements: at most 100000/],
    ['list doubling', 'x = [1]\nfor i in range(40):\n    x = x + x', 3, 11, /^a list, tuple or dict would have 131072 elements/],
    ['string doubling', 's = "ab"\nfor i in range(40):\n    s = s + s', 3, 11, /^a string would have 1048576 characters: at most 1000000/],
    ['string repetition', 's = "a" * 1000000000', 1, 9, /^a string would have/],
    ['appending while iterating', 'l = [1]\nfor x in l:\n    l.append(x)\nprefix_rule(pattern=["ok" + str(len(l))])', 0, 0, /./],
    ['integer overflow', 'x = 1\nfor i in range(100):\n    x = x * 1000', 3, 11, /^integer overflow/],
    ['copying a big list in a long loop', 'big = range(50000)\nfor i in range(100000):\n    x = big + big', 3, 13, new RegExp(`^evaluation exceeded ${EVAL_LIMITS.steps} steps`)],
    ['searching a big list in a long loop', 'big = range(50000)\nfor i in range(100000):\n    x = -1 in big', 3, 12, new RegExp(`^evaluation exceeded ${EVAL_LIMITS.steps} steps`)],
    ['deeply nested brackets', 'x = ' + '['.repeat(5000) + ']'.repeat(5000), 1, 5 + EVAL_LIMITS.nesting, new RegExp(`^expression nested more than ${EVAL_LIMITS.nesting} deep`)],
    ['deeply nested unary minus', 'x = ' + '-'.repeat(100000) + '1', 1, 4 + EVAL_LIMITS.nesting, new RegExp(`^expression nested more than ${EVAL_LIMITS.nesting} deep`)],
    ['deeply nested blocks', Array.from({ length: 300 }, (_, i) => ' '.repeat(i) + 'if True:').join('\n') + '\n' + ' '.repeat(300) + 'pass', 201, 208, new RegExp(`^blocks nested more than ${EVAL_LIMITS.nesting} deep`)],
    ['a value nested deeper than the stack', 'x = []\nfor i in range(100000):\n    x = [x]\nprefix_rule(pattern = x)', 0, 0, /^evaluation nested too deeply|^a list, tuple or dict|^evaluation exceeded/],
  ])('%s', (_name, source, line, col, message) => {
    if (line === 0 && source.startsWith('l = [1]')) {
      // The loop sees a snapshot of the list: one iteration, not forever.
      expect(programs(load(source))).toEqual(['ok2']);
      return;
    }
    if (line === 0) {
      // Fails as a load error with a position, not a crash of the loader.
      expect(loadError(source).detail).toMatch(message);
      return;
    }
    expectError(source, line, col, message);
  });
});

describe('network_rule', () => {
  it('parses and validates like upstream, keeps the rules, and never decides an exec', () => {
    const rules = load(`
network_rule(host = "API.Example.com:443", protocol = "https", decision = "deny", justification = "no exfiltration")
network_rule("[::1]:8080", "http-connect", "allow")
for h in ["pypi.org", "files.pythonhosted.org."]:
    network_rule(host = h, protocol = "socks5_tcp", decision = "prompt")
prefix_rule(pattern = ["curl"], decision = "prompt")
`);
    expect(rules.networkRules().map((r) => [r.host, r.protocol, r.decision, r.justification])).toEqual([
      ['api.example.com', 'https', 'forbidden', 'no exfiltration'],
      ['::1', 'https', 'allow', undefined],
      ['pypi.org', 'socks5_tcp', 'prompt', undefined],
      ['files.pythonhosted.org', 'socks5_tcp', 'prompt', undefined],
    ]);
    expect(rules.networkRules()[0]?.origin).toEqual({ file: 'p.rules', line: 2, column: 1 });
    expect(rules.size).toBe(1);
    expect(rules.evaluate(['api.example.com']).matchedRules).toEqual([]);
    expect(decisionOf(rules, ['curl', 'https://api.example.com'])).toBe('prompt');
  });

  it.each<[string, number, number, string | RegExp]>([
    ['network_rule(host="a.com", protocol="ftp", decision="deny")', 1, 37, 'invalid network_rule protocol "ftp": expected one of http, https, socks5_tcp, socks5_udp'],
    ['network_rule(host="a.com", protocol="https", decision="block")', 1, 55, 'invalid network_rule decision "block": expected "allow", "prompt", "forbidden" or "deny"'],
    ['network_rule(host="https://a.com", protocol="https", decision="deny")', 1, 19, 'network_rule host must be a hostname or IP literal (without scheme or path)'],
    ['network_rule(host="*.a.com", protocol="https", decision="deny")', 1, 19, 'network_rule host must be a specific host; wildcards are not allowed'],
    ['network_rule(host="  ", protocol="https", decision="deny")', 1, 19, 'network_rule host cannot be empty'],
    ['network_rule(host="a b", protocol="https", decision="deny")', 1, 19, 'network_rule host cannot contain whitespace'],
    ['network_rule(host="[::1", protocol="https", decision="deny")', 1, 19, 'network_rule host has an invalid bracketed IPv6 literal'],
    ['network_rule(host="[::1]x", protocol="https", decision="deny")', 1, 19, 'network_rule host contains an unsupported suffix: [::1]x'],
    ['network_rule(host="a.com", protocol="https", decision="deny", justification=" ")', 1, 77, 'justification cannot be empty or blank: explain why the rule exists, or omit it'],
    ['network_rule(host="a.com", protocol="https")', 1, 1, 'missing required argument `decision` for network_rule(...)'],
    ['network_rule(host="a.com", protocol="https", decision="deny", port=443)', 1, 63, 'unknown keyword argument `port` for network_rule: expected one of host, protocol, decision, justification'],
    ['network_rule(host=1, protocol="https", decision="deny")', 1, 19, '`host` must be a string, found int'],
  ])('errors: %s', (source, line, col, message) => expectError(source, line, col, message));
});

describe('Starlark: size caps', () => {
  it('a file larger than the cap is refused before it is parsed, at 1:1', () => {
    expectError('#'.repeat(EVAL_LIMITS.sourceChars + 1), 1, 1, `rules file too large: ${EVAL_LIMITS.sourceChars + 1} characters, at most ${EVAL_LIMITS.sourceChars}`);
  });
});
