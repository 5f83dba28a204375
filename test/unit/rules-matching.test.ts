import { describe, expect, it } from 'vitest';
import {
  compileRules,
  shlexJoin,
  shlexSplit,
  stricter,
  toCheckJson,
  type RuleSet,
} from '../../src/policy/rules/index.js';
import { SYNTHETIC_HOT_COMMAND, syntheticRuleSet } from '../../bench/lib/synthetic-rules.js';

const load = (...sources: string[]): RuleSet =>
  compileRules(sources.map((source, i) => ({ file: `f${i}.rules`, source })), { homeDir: '/home/u' });
const prefixes = (rules: RuleSet, argv: string[], resolve = false): string[][] =>
  rules.evaluate(argv, { resolveHostExecutables: resolve }).matchedRules.map((m) => [...m.matchedPrefix]);

describe('prefix matching', () => {
  it('matches tokens in order as a prefix; shorter commands do not match', () => {
    const r = load('prefix_rule(pattern=["git", "remote", "add"])');
    expect(prefixes(r, ['git', 'remote', 'add', 'origin', 'url'])).toEqual([['git', 'remote', 'add']]);
    expect(prefixes(r, ['git', 'remote'])).toEqual([]);
    expect(prefixes(r, ['git', 'add', 'remote'])).toEqual([]);
    expect(prefixes(r, ['Git', 'remote', 'add'])).toEqual([]);
    expect(r.evaluate([])).toEqual({ matchedRules: [] });
  });

  it('decision defaults to allow', () => {
    expect(load('prefix_rule(pattern=["ls"])').evaluate(['ls']).decision).toBe('allow');
  });

  it('first-position alternatives expand into one indexed rule per program', () => {
    const r = load('prefix_rule(pattern=[["npm", "pnpm", "yarn"], "install"], decision="prompt")');
    expect(r.size).toBe(3);
    expect(r.rules().map((x) => x.program)).toEqual(['npm', 'pnpm', 'yarn']);
    expect(prefixes(r, ['yarn', 'install'])).toEqual([['yarn', 'install']]);
    expect(prefixes(r, ['bun', 'install'])).toEqual([]);
  });

  it('later alternatives stay alternatives: one rule, no cartesian expansion', () => {
    const r = load('prefix_rule(pattern=["git", ["push", "fetch"], ["origin", "upstream"]])');
    expect(r.size).toBe(1);
    expect(r.rules()[0]?.rest).toEqual([['push', 'fetch'], ['origin', 'upstream']]);
    expect(prefixes(r, ['git', 'fetch', 'upstream', 'x'])).toEqual([['git', 'fetch', 'upstream']]);
    expect(prefixes(r, ['git', 'fetch', 'push'])).toEqual([]);
  });

  it('a one-element alternative list is the same as a plain token', () => {
    const r = load('prefix_rule(pattern=[["git"], ["status"]])');
    expect(r.rules()[0]).toMatchObject({ program: 'git', rest: ['status'] });
  });

  it('reports every matching rule in definition order and takes the strictest decision', () => {
    const r = load(
      'prefix_rule(pattern=["git"], decision="allow")\nprefix_rule(pattern=["git", "push"], decision="forbidden", justification="no")',
      'prefix_rule(pattern=["git", "push"], decision="prompt")\nprefix_rule(pattern=["git", "status"], decision="forbidden")',
    );
    const e = r.evaluate(['git', 'push', 'x']);
    expect(e.matchedRules.map((m) => m.decision)).toEqual(['allow', 'forbidden', 'prompt']);
    expect(e.decision).toBe('forbidden');
    expect(r.evaluate(['git', 'log']).decision).toBe('allow');
    expect(load('prefix_rule(pattern=["a"], decision="prompt")\nprefix_rule(pattern=["a"])').evaluate(['a']).decision).toBe('prompt');
  });

  it('stricter() orders forbidden > prompt > allow', () => {
    expect(stricter('allow', 'prompt')).toBe('prompt');
    expect(stricter('forbidden', 'prompt')).toBe('forbidden');
    expect(stricter('allow', 'allow')).toBe('allow');
    expect(stricter('prompt', 'forbidden')).toBe('forbidden');
  });

  it('merges files in order', () => {
    const r = load('prefix_rule(pattern=["a"], justification="first")', 'prefix_rule(pattern=["a"], justification="second")');
    expect(r.evaluate(['a']).matchedRules.map((m) => m.justification)).toEqual(['first', 'second']);
    expect(r.evaluate(['a']).matchedRules.map((m) => m.rule.origin.file)).toEqual(['f0.rules', 'f1.rules']);
  });
});

describe('host_executable resolution', () => {
  const base = 'prefix_rule(pattern=["git", "status"], decision="prompt")\n';

  it('is off by default: an absolute path only matches rules written for that path', () => {
    const r = load(base);
    expect(prefixes(r, ['/usr/bin/git', 'status'])).toEqual([]);
    expect(prefixes(r, ['/usr/bin/git', 'status'], true)).toEqual([['git', 'status']]);
  });

  it('with no host_executable for the name, any absolute path falls back, with resolvedProgram set', () => {
    const m = load(base).evaluate(['/some/where/git', 'status'], { resolveHostExecutables: true }).matchedRules[0];
    expect(m?.resolvedProgram).toBe('/some/where/git');
    expect(toCheckJson({ matchedRules: m ? [m] : [] }).matchedRules[0]?.prefixRuleMatch.resolvedProgram).toBe('/some/where/git');
  });

  it('bare and relative names never fall back', () => {
    const r = load(base);
    expect(prefixes(r, ['./git', 'status'], true)).toEqual([]);
    expect(prefixes(r, ['bin/git', 'status'], true)).toEqual([]);
  });

  it('with host_executable, only listed paths fall back (compared after normalization)', () => {
    const r = load(base + 'host_executable(name="git", paths=["/usr/bin/git", "~/bin/git"])');
    expect(prefixes(r, ['/usr/bin/git', 'status'], true)).toEqual([['git', 'status']]);
    expect(prefixes(r, ['/usr/bin//./git', 'status'], true)).toEqual([['git', 'status']]);
    expect(r.evaluate(['/usr/bin//./git', 'status'], { resolveHostExecutables: true }).matchedRules[0]?.resolvedProgram).toBe('/usr/bin/git');
    expect(prefixes(r, ['/home/u/bin/git', 'status'], true)).toEqual([['git', 'status']]);
    expect(prefixes(r, ['/tmp/git', 'status'], true)).toEqual([]);
  });

  it('an empty path list means never', () => {
    const r = load(base + 'host_executable(name="git", paths=[])');
    expect(prefixes(r, ['/usr/bin/git', 'status'], true)).toEqual([]);
    expect(prefixes(r, ['git', 'status'], true)).toEqual([['git', 'status']]);
  });

  it('duplicate paths collapse and a later definition replaces the earlier one (also across files)', () => {
    const r = load(base + 'host_executable(name="git", paths=["/a/git", "/a/git", "/a/./git", "/b/git"])');
    expect(r.hostExecutables().get('git')).toEqual(['/a/git', '/b/git']);
    const r2 = load(base + 'host_executable(name="git", paths=["/a/git"])', 'host_executable(name="git", paths=["/b/git"])');
    expect(r2.hostExecutables().get('git')).toEqual(['/b/git']);
    expect(prefixes(r2, ['/a/git', 'status'], true)).toEqual([]);
    expect(prefixes(r2, ['/b/git', 'status'], true)).toEqual([['git', 'status']]);
  });

  it('an exact rule for the absolute path is not overridden by the fallback', () => {
    const r = load(base + 'prefix_rule(pattern=["/usr/bin/git", "status"], decision="allow")');
    const e = r.evaluate(['/usr/bin/git', 'status'], { resolveHostExecutables: true });
    expect(e.matchedRules.map((m) => [m.matchedPrefix[0], m.decision, m.resolvedProgram])).toEqual([['/usr/bin/git', 'allow', undefined]]);
    expect(e.decision).toBe('allow');
  });

  it('exact rules that exist but do not match leave the fallback open', () => {
    const r = load(base + 'prefix_rule(pattern=["/usr/bin/git", "log"], decision="allow")');
    expect(prefixes(r, ['/usr/bin/git', 'status'], true)).toEqual([['git', 'status']]);
  });

  it('paths whose last component is .. or / have no basename', () => {
    const r = load(base);
    expect(prefixes(r, ['/usr/bin/git/..', 'status'], true)).toEqual([]);
    expect(prefixes(r, ['/', 'status'], true)).toEqual([]);
  });
});

describe('index by program', () => {
  it('evaluation of one program only sees that program’s rules, at any rule count', () => {
    const small = syntheticRuleSet(10);
    const big = syntheticRuleSet(10_000);
    expect(big.size).toBe(10_000);
    const a = toCheckJson(small.evaluate(SYNTHETIC_HOT_COMMAND));
    const b = toCheckJson(big.evaluate(SYNTHETIC_HOT_COMMAND));
    expect(b).toEqual(a);
    expect(a.decision).toBe('forbidden');
    expect(big.evaluate(['tool999', 'sub9', 'b']).matchedRules).toHaveLength(1);
  });
});

describe('shell-style example splitting', () => {
  it('splits like shlex', () => {
    expect(shlexSplit('git  commit -m "a b" \'c d\'')).toEqual(['git', 'commit', '-m', 'a b', 'c d']);
    expect(shlexSplit('a\\ b "x\\"y" "\\$HOME" "\\n"')).toEqual(['a b', 'x"y', '$HOME', '\\n']);
    expect(shlexSplit('a"b"\'c\'d')).toEqual(['abcd']);
    expect(shlexSplit('echo # comment')).toEqual(['echo']);
    expect(shlexSplit('echo a#b')).toEqual(['echo', 'a#b']);
    expect(shlexSplit('""')).toEqual(['']);
    expect(shlexSplit('')).toEqual([]);
    expect(shlexSplit('"open')).toBeUndefined();
    expect(shlexSplit("'open")).toBeUndefined();
    expect(shlexSplit('trail\\')).toBeUndefined();
  });
  it('join round-trips', () => {
    for (const argv of [['a b', "it's", '', '$x', 'plain-1.2/x'], ['"q"', '\\']]) {
      expect(shlexSplit(shlexJoin(argv))).toEqual(argv);
    }
  });
});
