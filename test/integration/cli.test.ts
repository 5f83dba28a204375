import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { patchedBash, tempDir } from '../helpers/harness.js';

const cli = path.join(packageRoot, 'bin', 'codex-escalate.js');

// An empty HOME: bash sources ~/.bashrc when its stdin is a socket (Node's stdio pipes are), and the
// machine's own .bashrc (pyenv, cargo) would add execs of its own to every count here.
const home = tempDir();

function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, PATH: '/usr/bin:/bin', HOME: home, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

describe('codex-escalate run', () => {
  it("prints HELLO for 'echo hello | tr a-z A-Z' and logs a decision line per exec", async () => {
    const log = path.join(tempDir(), 'audit.jsonl');
    const r = await runCli(['run', '--shell', patchedBash(), '--log-file', log, '--', 'echo hello | tr a-z A-Z']);
    expect(r.stdout).toBe('HELLO\n');
    expect(r.code).toBe(0);
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const decisions = lines.filter((l) => l.event === 'decision');
    // echo is a builtin: the only exec is tr.
    expect(decisions.map((d) => [d.program, d.argv, d.action])).toEqual([['/usr/bin/tr', ['tr', 'a-z', 'A-Z'], 'run']]);
    expect(lines.map((l) => l.event)).toEqual(['session_start', 'decision', 'session_end']);
  });

  it('exits with the script status and applies --deny / --escalate prefixes', async () => {
    const dir = tempDir();
    const log = path.join(dir, 'audit.jsonl');
    const r = await runCli([
      'run', '--shell', patchedBash(), '--log-file', log, '--cwd', dir,
      '--deny', 'touch', '--escalate', 'dash -c',
      '--', `touch ${dir}/x; echo "touch=$?"; /bin/sh -c 'echo "escalated ppid=$PPID"'; exit 5`,
    ]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('codex-execve-wrapper: /usr/bin/touch: denied: matches --deny "touch"');
    expect(r.stdout).toMatch(/^touch=126\nescalated ppid=\d+\n$/);
    const actions = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'decision').map((l) => l.action);
    expect(actions).toEqual(['deny', 'escalate']);
  });

  it('passes positional arguments to the script with -c SCRIPT NAME ARGS', async () => {
    const r = await runCli(['run', '--shell', patchedBash(), '--log-file', '/dev/null', '-c', 'echo "$0:$1:$2"', 'name', 'a', 'b']);
    expect(r.stdout).toBe('name:a:b\n');
  });

  it('rejects a bad pattern and a missing --cwd with a clear message', async () => {
    const bad = await runCli(['run', '--shell', patchedBash(), '--deny', 'a | b', '--', 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/bad --deny\/--escalate pattern/);
    // An expansion is not silently matched as an empty word (was ["echo", ""]).
    const expand = await runCli(['run', '--shell', patchedBash(), '--escalate', 'echo $HOME', '--', 'true']);
    expect(expand.code).toBe(125);
    expect(expand.stderr).toMatch(/bad --deny\/--escalate pattern: pattern "echo \$HOME": "\$" would expand/);
    const cwd = await runCli(['run', '--shell', patchedBash(), '--cwd', '/nonexistent/dir', '--', 'true']);
    expect(cwd.code).toBe(125);
    expect(cwd.stderr).toMatch(/--cwd \/nonexistent\/dir: not a directory/);
  });

  it('the server runs ahead of the workload when permitted; Run and escalated commands keep the normal priority', async () => {
    const nice = (pidExpr: string) => `$(cut -d" " -f19 /proc/${pidExpr}/stat)`;
    const script = `echo "server ${nice('$PPID')}"; echo "run ${nice('self')}"; /bin/sh -c 'echo "escalated $(cut -d" " -f19 /proc/self/stat)"'`;
    const r = await runCli(['run', '--sandbox', 'none', '--shell', patchedBash(), '--log-file', '/dev/null', '--escalate', 'dash -c', '--', script]);
    const base = os.getPriority(0);
    const boosted = process.getuid?.() === 0 ? Math.max(-20, base - 10) : base;
    expect(r.stdout).toBe(`server ${boosted}\nrun ${base}\nescalated ${base}\n`);
    const off = await runCli(['run', '--no-priority-boost', '--sandbox', 'none', '--shell', patchedBash(), '--log-file', '/dev/null', '--', `echo "server ${nice('$PPID')}"`]);
    expect(off.stdout).toBe(`server ${base}\n`);
  });

  it('--help explains the command', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--deny <prefix>/);
    expect(r.stdout).toMatch(/Run \(in place\), Escalate/);
  });
});

describe('codex-escalate doctor', () => {
  it('reports each component', async () => {
    const r = await runCli(['doctor'], { CODEX_ESCALATE_BASH: patchedBash() });
    expect(r.stdout).toMatch(/ok +native addon/);
    expect(r.stdout).toMatch(/ok +codex-execve-wrapper/);
    expect(r.stdout).toMatch(/ok +patched bash: .*bash 5\.2\.15/);
    expect(r.code).toBe(0);
  });
});
