/**
 * Audit output as a user sees it (issue 15, item 10): one short line per
 * decision on a real terminal (a pty), --quiet, --log-level, --log-file - for
 * stdout, and an unwritable --log-file refused before anything runs.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliEnv, cliPath, onPty, readJsonLines, runCli } from '../helpers/e2e.js';
import { patchedBash, tempDir } from '../helpers/harness.js';

const base = ['run', '--shell', patchedBash(), '--sandbox', 'none', '--no-discover-hooks'];
const script = 'echo hello | tr a-z A-Z; /bin/true x';

function ptyLines(transcript: string): string[] {
  return transcript.split(/\r?\n/).filter((l) => l !== '');
}

describe('on a terminal', () => {
  it('one short line per decision, after the script\'s own output, and nothing else', async () => {
    const dir = tempDir('cse-audit-');
    const r = await onPty([process.execPath, cliPath, ...base, '--cwd', dir, '--deny', '/bin/false', '--', `${script}; /bin/false; exit 0`], [], { cwd: dir, env: cliEnv() });
    expect(r.status).toBe(0);
    const lines = ptyLines(r.transcript);
    expect(lines).toContain('HELLO');
    const audit = lines.filter((l) => l !== 'HELLO' && !l.startsWith('codex-execve-wrapper:'));
    expect(audit).toHaveLength(3);
    expect(audit[0]).toMatch(/^\d\d:\d\d:\d\d run {6}\/usr\/bin\/tr a-z A-Z$/);
    expect(audit[1]).toMatch(/^\d\d:\d\d:\d\d run {6}\/usr\/bin\/true x$/);
    expect(audit[2]).toMatch(/^\d\d:\d\d:\d\d deny {5}\/usr\/bin\/false \(matches --deny "\/bin\/false"\)$/);
  });

  it('--quiet leaves the script\'s output alone; --log-level debug adds the session lines', async () => {
    const dir = tempDir('cse-audit-');
    const quiet = await onPty([process.execPath, cliPath, ...base, '--cwd', dir, '--quiet', '--', script], [], { cwd: dir, env: cliEnv() });
    expect(ptyLines(quiet.transcript)).toEqual(['HELLO']);
    const debug = await onPty([process.execPath, cliPath, ...base, '--cwd', dir, '--log-level', 'debug', '--', script], [], { cwd: dir, env: cliEnv() });
    const lines = ptyLines(debug.transcript);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d session started$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d session ended$/.test(l))).toBe(true);
    expect(lines.filter((l) => / run {6}\//.test(l))).toHaveLength(2);
  });
});

describe('not a terminal', () => {
  it('stderr gets JSON lines by default; --quiet keeps decisions off it; --log-file - puts them on stdout', async () => {
    const dir = tempDir('cse-audit-');
    const plain = await runCli([...base, '--cwd', dir, '--', script], { env: cliEnv() });
    expect(plain.stdout).toBe('HELLO\n');
    const events = plain.stderr.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toEqual(['session_start', 'decision', 'decision', 'session_end']);
    const quiet = await runCli([...base, '--cwd', dir, '--quiet', '--', script], { env: cliEnv() });
    expect(quiet.stdout).toBe('HELLO\n');
    expect(quiet.stderr).toBe('');
    const stdout = await runCli([...base, '--cwd', dir, '--log-file', '-', '--', script], { env: cliEnv() });
    expect(stdout.stderr).toBe('');
    const out = stdout.stdout.split('\n').filter((l) => l !== '');
    expect(out).toContain('HELLO');
    const json = out.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event: string; argv?: string[] });
    expect(json.filter((l) => l.event === 'decision').map((l) => l.argv)).toEqual([['tr', 'a-z', 'A-Z'], ['/bin/true', 'x']]);
  });

  it('--log-level warn keeps decisions out of a --log-file; --quiet does not', async () => {
    const dir = tempDir('cse-audit-');
    const warnLog = path.join(dir, 'warn.jsonl');
    await runCli([...base, '--cwd', dir, '--log-file', warnLog, '--log-level', 'warn', '--', script], { env: cliEnv() });
    expect(readJsonLines(warnLog)).toEqual([]);
    const quietLog = path.join(dir, 'quiet.jsonl');
    await runCli([...base, '--cwd', dir, '--log-file', quietLog, '--quiet', '--', script], { env: cliEnv() });
    expect(readJsonLines(quietLog).filter((l) => l.event === 'decision')).toHaveLength(2);
  });
});

describe('an unwritable --log-file', () => {
  it('is an error (125) before anything runs; --log-file-optional runs with the audit on stderr', async () => {
    const dir = tempDir('cse-audit-');
    const marker = path.join(dir, 'ran');
    const aDir = path.join(dir, 'a-directory');
    mkdirSync(aDir);
    for (const bad of [path.join(dir, 'missing', 'audit.jsonl'), aDir]) {
      const r = await runCli([...base, '--cwd', dir, '--log-file', bad, '--', `touch ${marker}`], { env: cliEnv() });
      expect(r.code, bad).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`^codex-escalate: --log-file ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot write \\((ENOENT|EISDIR)\\); nothing was run`));
      expect(existsSync(marker)).toBe(false);
    }
    const r = await runCli([...base, '--cwd', dir, '--log-file', aDir, '--log-file-optional', '--', `touch ${marker}`], { env: cliEnv() });
    expect(r.code).toBe(0);
    expect(readFileSync(marker, 'utf8')).toBe('');
    const [warning, ...json] = r.stderr.trim().split('\n');
    expect(warning).toBe(`codex-escalate: warning: --log-file ${aDir}: cannot write (EISDIR); the audit goes to stderr`);
    expect(json.map((l) => (JSON.parse(l) as { event: string }).event)).toContain('decision');
  });
});
