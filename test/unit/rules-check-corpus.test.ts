/**
 * `check` output for a corpus of rule files and commands, compared byte for
 * byte with what `codex execpolicy check` prints (expected JSON written from
 * the upstream semantics: decision, matchedPrefix, resolvedProgram, justification).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { formatCheckJson, loadRulesFiles, toCheckJson } from '../../src/policy/rules/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.join(root, 'test/fixtures/rules');
const cli = path.join(fixtures, 'check-cli.ts');

interface Case {
  set: string;
  resolve: boolean;
  command: string[];
  expected: unknown;
}
const corpus = JSON.parse(readFileSync(path.join(fixtures, 'corpus-cases.json'), 'utf8')) as {
  home: string;
  sets: Record<string, string[]>;
  cases: Case[];
};
const filesOf = (set: string): string[] => (corpus.sets[set] ?? []).map((f) => path.join(fixtures, f));

const run = promisify(execFile);
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', cli, ...args], {
      cwd: root,
      env: { ...process.env, HOME: corpus.home },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('check corpus', () => {
  it('has a meaningful corpus', () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(25);
  });

  for (const c of corpus.cases) {
    const title = `${c.set}${c.resolve ? ' --resolve-host-executables' : ''}: ${JSON.stringify(c.command)}`;
    it(title, async () => {
      const rules = await loadRulesFiles(filesOf(c.set), { homeDir: corpus.home });
      const evaluation = rules.evaluate(c.command, { resolveHostExecutables: c.resolve });
      // Byte-for-byte: same keys, same order, same omissions as upstream's serde output.
      expect(formatCheckJson(evaluation)).toBe(JSON.stringify(c.expected));
      expect(toCheckJson(evaluation)).toEqual(c.expected);
    });
  }
});

describe('check CLI (real process)', () => {
  const pick = (i: number): Case => corpus.cases[i] as Case;
  const argsFor = (c: Case, extra: string[] = []): string[] => [
    'check',
    ...filesOf(c.set).flatMap((f) => ['--rules', f]),
    ...(c.resolve ? ['--resolve-host-executables'] : []),
    ...extra,
    '--',
    ...c.command,
  ];

  it('prints compact JSON and exits 0, for matches and for no match', async () => {
    for (const c of [pick(1), pick(2), corpus.cases.find((x) => x.command[0] === '/home/corpus/bin/tool') as Case]) {
      const r = await runCli(argsFor(c));
      // Only warnings (an allow rule for a program that runs workspace config, e.g. git), never an error.
      expect(r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('codex-escalate check: warning: '))).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(JSON.stringify(c.expected) + '\n');
    }
  });

  it('--pretty indents like serde_json::to_string_pretty', async () => {
    const c = pick(21);
    const r = await runCli(argsFor(c, ['--pretty']));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(JSON.stringify(c.expected, null, 2) + '\n');
    expect(r.stdout).toContain('\n  "matchedRules": [\n    {\n      "prefixRuleMatch": {\n');
  });

  it('without --, like `codex execpolicy check`: everything after the first word is the command', async () => {
    const r = await runCli(['check', '--rules', path.join(fixtures, 'corpus-base.rules'), 'git', 'push', '--force']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { decision: string; matchedRules: { prefixRuleMatch: { matchedPrefix: string[]; decision: string } }[] };
    expect(out.decision).toBe('forbidden');
    expect(out.matchedRules.map((m) => [m.prefixRuleMatch.matchedPrefix, m.prefixRuleMatch.decision])).toContainEqual([['git', 'push', '--force'], 'forbidden']);
    const short = await runCli(['check', '-r', path.join(fixtures, 'corpus-base.rules'), '--pretty', 'git', 'push', '-f', '--rules', 'x']);
    expect(short.code).toBe(0);
    // --rules after the first word is the command's own argument, not ours.
    expect(JSON.parse(short.stdout)).toMatchObject({ decision: 'forbidden' });
  });

  it('arguments that look like options after -- are part of the command', async () => {
    const r = await runCli(['check', '--rules', path.join(fixtures, 'corpus-base.rules'), '--', 'git', 'push', '--force']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: 'forbidden' });
  });

  it('exits non-zero with a clear message when the rules do not load', async () => {
    const bad = await runCli(['check', '--rules', path.join(fixtures, 'broken.rules'), '--', 'ls']);
    expect(bad.code).toBe(125);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe(
      `codex-escalate check: rules did not load: ${path.join(fixtures, 'broken.rules')}:3:42: invalid decision "alow": expected "allow", "prompt" or "forbidden"\n`,
    );
    const missing = await runCli(['check', '--rules', path.join(fixtures, 'does-not-exist.rules'), '--', 'ls']);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('does-not-exist.rules:1:1: cannot read rules file: no such file');
  });
});
