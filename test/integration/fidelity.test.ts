import { SHELL_SOCKET_FD_MIN } from '../../src/protocol/constants.js';
/**
 * Escalate, faithfully (issue 5): with the real patched bash, the real
 * wrapper and the real server, an escalated command sees what it would see
 * run in place — every inherited fd, a terminal that stays a terminal, the
 * signals sent to it, an exact exit status, non-UTF-8 bytes — and a rewritten
 * command runs in the shell's own process tree. Terminal tests drive the CLI
 * on a real pseudo-terminal (test/fixtures/fidelity/pty-session.py).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import type { ExecRequest, PolicyDecision } from '../../src/policy/types.js';
import { createAuditLogger, flushAuditLog } from '../../src/server/audit-log.js';
import { EscalationServer, type DecisionRecord, type EscalatedExitRecord } from '../../src/server/escalation-server.js';
import { cliPath, cliEnv } from '../helpers/e2e.js';
import { patchedBash, recordingPolicy, runBash, tempDir, wrapperPath } from '../helpers/harness.js';

const fixtures = path.join(packageRoot, 'test', 'fixtures', 'fidelity');
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: os.tmpdir(), LC_ALL: 'C' };

/** Escalate what `when` selects, Run the rest. */
function escalating(when: (r: ExecRequest) => boolean) {
  return recordingPolicy((r): PolicyDecision => (when(r) ? { action: 'escalate' } : { action: 'run' }));
}
const isProgram = (name: string) => (r: ExecRequest) => path.basename(r.program) === name;

function escalatedOnce(decisions: DecisionRecord[], program: string): void {
  expect(decisions.filter((d) => d.action.kind === 'escalate').map((d) => path.basename(d.request.program))).toContain(program);
}

interface PtyResult {
  transcript: string;
  status: number;
  steps: number;
  times: number[];
  exited: number;
  timedOut: boolean;
}
type Step = { wait: string; count?: number } | { write: string } | { resize: [number, number] };

/** `codex-escalate run --sandbox none` on a fresh pty, driven by steps; bounded by timeoutS. */
function cliOnPty(cliArgs: readonly string[], steps: readonly Step[], timeoutS = 15): Promise<PtyResult> {
  const driver = path.join(fixtures, 'pty-session.py');
  const child = spawn('python3', [driver, process.execPath, cliPath, 'run', '--sandbox', 'none', '--shell', patchedBash(), ...cliArgs], {
    env: { ...cliEnv(), STEPS: JSON.stringify(steps), PTY_TIMEOUT: String(timeoutS) },
    cwd: os.tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as PtyResult);
      } catch {
        reject(new Error(`pty driver failed (status ${String(code)}): ${err || out}`));
      }
    });
  });
}

/** Audit lines of a --log-file, parsed (with the raw text kept). */
function auditLines(file: string): { raw: string; json: Record<string, unknown> }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((raw) => ({ raw, json: JSON.parse(raw) as Record<string, unknown> }));
}

/**
 * Like runBash, but the escalation socket sits at fd `socketFd` of the shell
 * instead of 3, so the script may use fd 3 itself.
 */
async function runBashSocketAt(socketFd: number, script: string, when: (r: ExecRequest) => boolean, cwd: string) {
  const decisions: DecisionRecord[] = [];
  const exits: EscalatedExitRecord[] = [];
  const bash = patchedBash();
  const server = new EscalationServer({
    policy: escalating(when).policy,
    wrapperPath,
    shellPath: bash,
    logger: createAuditLogger({ level: 'silent' }),
    observer: { decided: (d) => decisions.push(d), escalatedExited: (e) => exits.push(e) },
  });
  const session = await server.startSession({ cwd });
  const stdio = ['ignore', 'pipe', 'pipe', ...Array<'ignore'>(socketFd - 3).fill('ignore'), session.clientFd] as const;
  const child = spawn(bash, ['-c', script], { cwd, env: { ...env, ...session.env, CODEX_ESCALATE_SOCKET: String(socketFd) }, stdio: [...stdio] });
  session.shellSpawned();
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const exitCode = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(timer);
  await server.close();
  return { stdout, stderr, exitCode, decisions, exits };
}

const dirs: string[] = [];
function work(): string {
  const d = tempDir('cse-fidelity-');
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('every inherited fd reaches the escalated command', () => {
  it('cmd 5>file: the command writes to the redirected fd', async () => {
    const cwd = work();
    const { policy } = escalating(isProgram('dash'));
    const r = await runBash(`/bin/sh -c 'echo x >&5' 5>out5; echo "rc=$?"; cat out5`, { policy, cwd });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('rc=0\nx\n');
    escalatedOnce(r.decisions, 'dash');
  });

  it('cmd 3>file: fd 3 is the command\'s own when the escalation socket is elsewhere', async () => {
    const cwd = work();
    const r = await runBashSocketAt(63, `/bin/sh -c 'echo x >&3' 3>out3; echo "rc=$?"; cat out3`, isProgram('dash'), cwd);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('rc=0\nx\n');
    escalatedOnce(r.decisions, 'dash');
  });

  // The standard launch hands the socket over at SHELL_SOCKET_FD (63); the shell moves it to SHELL_SOCKET_FD_MIN.
  it('cmd 3>file through the standard launch', async () => {
    const cwd = work();
    const { policy } = escalating(isProgram('dash'));
    const r = await runBash(`/bin/sh -c 'echo x >&3' 3>out3; echo "rc=$?"; cat out3`, { policy, cwd });
    expect(r.stdout).toBe('rc=0\nx\n');
  });

  it('2>&1 | pipe and a here-doc', async () => {
    const cwd = work();
    const { policy } = escalating((r) => isProgram('dash')(r) || isProgram('cat')(r));
    const r = await runBash(`/bin/sh -c 'echo out; echo err >&2' 2>&1 | tr a-z A-Z\ncat <<EOF\nhello \${HOME:+doc}\nEOF\n`, { policy, cwd });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('OUT\nERR\nhello doc\n');
    escalatedOnce(r.decisions, 'dash');
    escalatedOnce(r.decisions, 'cat');
  });

  it('more than 16 inherited fds (several fd messages): the same fds as in place, minus the escalation socket', async () => {
    const cwd = work();
    const redirs = Array.from({ length: 18 }, (_, i) => `${i + 4}>f${i + 4}`).join(' ');
    const { policy } = escalating((r) => isProgram('bash')(r) && r.argv[3] === 'escalated');
    // stat only: listing the fds opens none of its own. Whatever the test
    // runner itself passed down (inheritable fds) shows up in both lists.
    const list = `for i in $(seq 4 21); do echo "$0 fd$i" >&$i; done; for i in $(seq 0 1100); do [ -e /proc/$$/fd/$i ] && printf "%s " $i; done; echo`;
    const r = await runBash(`exec ${redirs}\n/bin/bash -c '${list}' inplace\n/bin/bash -c '${list}' escalated`, { policy, cwd });
    expect(r.stderr).toBe('');
    const [inplace, escalated] = r.stdout.trim().split('\n').map((l) => l.trim().split(' ').map(Number));
    const wanted = [0, 1, 2, ...Array.from({ length: 18 }, (_, i) => i + 4)];
    expect(escalated).toEqual(expect.arrayContaining(wanted));
    // The patched bash keeps the socket at SHELL_SOCKET_FD_MIN (moved there from the launch fd 63 at startup).
    expect(escalated).not.toContain(SHELL_SOCKET_FD_MIN); // the escalation socket stays with the shell
    expect(inplace).toContain(SHELL_SOCKET_FD_MIN);
    expect(inplace).not.toContain(63);
    expect(escalated).toEqual(inplace!.filter((fd) => fd !== SHELL_SOCKET_FD_MIN));
    for (let fd = 4; fd <= 21; fd++) expect(readFileSync(path.join(cwd, `f${fd}`), 'utf8')).toBe(`inplace fd${fd}\nescalated fd${fd}\n`);
    escalatedOnce(r.decisions, 'bash');
  });
});

describe('a terminal stays a terminal (real pty, CLI)', () => {
  it('isatty is true for the escalated command and it gets SIGWINCH with the new size', async () => {
    const log = path.join(work(), 'audit.jsonl');
    const r = await cliOnPty(['--log-file', log, '--escalate', 'dash', '--', `/bin/sh ${fixtures}/winch.sh`], [{ wait: 'READY' }, { resize: [40, 120] }]);
    expect(r.timedOut).toBe(false);
    expect(r.transcript).toContain('TTY');
    expect(r.transcript).toContain('WINCH 40 120');
    expect(r.status).toBe(0);
    const escalated = auditLines(log).filter((l) => l.json.event === 'decision' && l.json.action === 'escalate');
    expect(escalated.map((l) => l.json.program)).toEqual(['/usr/bin/dash']);
  });

  it('isatty: the brief\'s one-liner', async () => {
    const log = path.join(work(), 'audit.jsonl');
    const r = await cliOnPty(['--log-file', log, '--escalate', 'dash -c', '--', `/bin/sh -c "[ -t 0 ] && [ -t 1 ] && echo TTY"`], []);
    expect(r.transcript.replace(/\r/g, '')).toBe('TTY\n');
    expect(r.transcript).toContain('TTY');
    expect(r.status).toBe(0);
  });

  it('Ctrl-C stops an escalated sleep at once; the shell sees death by SIGINT and leaves the loop', async () => {
    const log = path.join(work(), 'audit.jsonl');
    const script = 'for i in 1 2 3; do /bin/sh -c "echo RUNNING; exec sleep 30"; echo "iter $i $?"; done; echo END';
    const r = await cliOnPty(['--log-file', log, '--escalate', 'dash -c', '--', script], [{ wait: 'RUNNING' }, { write: '\u0003' }]);
    expect(r.timedOut).toBe(false);
    expect(r.steps).toBe(2);
    expect(r.exited - r.times[1]!).toBeLessThan(1);
    expect(r.transcript).not.toContain('iter');
    expect(r.transcript).not.toContain('END');
    expect(r.status).toBe(130);
    // The command itself died of the relayed SIGINT (not of a teardown SIGTERM).
    const exits = auditLines(log).filter((l) => l.json.event === 'exit');
    expect(exits.map((l) => [l.json.exit_code, l.json.signal])).toEqual([[130, 2]]);
  });
});

describe('job control: Ctrl-Z stops the escalated command and fg resumes it (real pty, CLI)', () => {
  it('the shell sees the job stopped by SIGTSTP (148); nothing runs until fg', async () => {
    const script = `set -m; /bin/sh ${fixtures}/ticks.sh; echo "after $?"; sleep 0.5; echo MARK; fg >/dev/null; echo "fg $?"`;
    const log = path.join(work(), 'audit.jsonl'); // keeps audit lines off the terminal
    const r = await cliOnPty(['--log-file', log, '--escalate', 'dash', '--', script], [{ wait: 'tick 1' }, { write: '\u001a' }, { wait: 'MARK' }]);
    expect(r.timedOut).toBe(false);
    expect(r.status).toBe(0);
    const t = r.transcript.replace(/\r/g, '');
    expect(t).toMatch(/Stopped/);
    expect(t).toContain('after 148\n');
    // No tick while stopped: the ticks before Ctrl-Z, then MARK, then the rest.
    const between = t.slice(t.indexOf('after 148'), t.indexOf('MARK'));
    expect(between).not.toMatch(/tick/);
    const ticks = [...t.matchAll(/tick (\d)/g)].map((m) => Number(m[1]));
    expect(ticks).toEqual([0, 1, 2, 3, 4, 5, 6, 7].slice(0, ticks.length));
    expect(ticks.length).toBe(8);
    expect(t.indexOf('DONE')).toBeGreaterThan(t.indexOf('MARK'));
    expect(t).toContain('fg 0\n');
  });
});

describe('signals sent to the wrapper reach the command; exit status is exact', () => {
  it('SIGTERM to the wrapper: the escalated sleep dies of it, status 143', async () => {
    const cwd = work();
    const { policy } = escalating(isProgram('dash'));
    const started = Date.now();
    const r = await runBash(
      `/bin/sh -c 'echo ready > r; exec sleep 30' & pid=$!\nuntil [ -s r ]; do :; done\nkill -TERM $pid\nwait $pid\necho "status $?"`,
      { policy, cwd },
    );
    expect(r.stdout).toBe('status 143\n');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.exits.map((e) => [path.basename(e.request.program), e.exitCode, e.signal])).toEqual([['dash', 143, 15]]);
  });

  it('SIGUSR1 and SIGHUP reach the command\'s traps', async () => {
    const cwd = work();
    const { policy } = escalating(isProgram('dash'));
    const r = await runBash(
      `/bin/sh ${fixtures}/traps.sh r & pid=$!\nuntil [ -s r ]; do :; done\nkill -USR1 $pid\nsleep 0.3\nkill -HUP $pid\nwait $pid\necho "status $?"`,
      { policy, cwd },
    );
    expect(r.stdout).toBe('got USR1\ngot HUP\nstatus 3\n');
  });

  it('kill -9 of an escalated process: the shell sees 137 and reports it Killed', async () => {
    const cwd = work();
    const { policy } = escalating(isProgram('dash'));
    const r = await runBash(
      `( until [ -s pid ]; do :; done; read p < pid; kill -9 $p ) &\n/bin/sh -c 'echo $$ > pid; exec sleep 30'\necho "status $?"`,
      { policy, cwd },
    );
    expect(r.stdout).toBe('status 137\n');
    expect(r.stderr).toMatch(/Killed/);
    expect(r.exits.map((e) => [e.exitCode, e.signal])).toEqual([[137, 9]]);
  });
});

describe('non-UTF-8 bytes round-trip', () => {
  for (const mode of ['run', 'escalate'] as const) {
    it(`a filename with byte 0xE9 in argv (${mode})`, async () => {
      const cwd = work();
      const log = path.join(cwd, 'audit.jsonl');
      const { policy } = escalating((r) => mode === 'escalate' && (isProgram('touch')(r) || isProgram('ls')(r)));
      const logger = createAuditLogger({ file: log });
      const r = await runBash(`touch $'caf\\xe9' && ls -- $'caf\\xe9' | od -An -tx1`, { policy, cwd, logger });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('63 61 66 e9 0a');
      const names = readdirSync(cwd, { encoding: 'buffer' }).map((b) => b.toString('hex'));
      expect(names).toContain(Buffer.from([0x63, 0x61, 0x66, 0xe9]).toString('hex'));
      const actions = r.decisions.map((d) => [path.basename(d.request.program), d.action.kind]);
      expect(actions).toEqual(expect.arrayContaining([['touch', mode], ['ls', mode]]));
      // The audit line carries the byte as the \udce9 escape, not a replacement character.
      await flushAuditLog(logger);
      const lines = auditLines(log);
      const ls = lines.find((l) => l.json.event === 'decision' && l.json.program === '/usr/bin/ls');
      expect(ls?.raw).toContain('"argv":["ls","--","caf\\udce9"]');
      expect(ls?.raw).not.toContain('\ufffd');
    });
  }
});

describe('RunRewritten and nested shells', () => {
  it('a rewritten command runs in place, in the shell\'s process tree', async () => {
    const cwd = work();
    const { policy } = recordingPolicy((r): PolicyDecision => {
      if (r.argv[1] === 'original') return { action: 'run', rewrite: { argv: ['/bin/echo', 'rewritten'], program: '/usr/bin/echo' } };
      if (r.argv[1] === 'whoami') return { action: 'run', rewrite: { argv: ['/bin/sh', '-c', 'echo "ppid $PPID"'], program: '/usr/bin/dash' } };
      return { action: 'run' };
    });
    const r = await runBash(`/bin/echo original\n/bin/echo whoami\necho "shell $$"`, { policy, cwd });
    expect(r.stderr).toBe('');
    const [first, second, third] = r.stdout.split('\n');
    expect(first).toBe('rewritten');
    const ppid = Number(second!.replace('ppid ', ''));
    expect(third).toBe(`shell ${ppid}`); // the rewritten command's parent is the shell...
    expect(ppid).not.toBe(process.pid); // ...not the server
    expect(r.exits).toEqual([]);
    expect(r.decisions.map((d) => d.action)).toEqual([
      { kind: 'run', rewrite: { file: '/usr/bin/echo', argv: ['/bin/echo', 'rewritten'] } },
      { kind: 'run', rewrite: { file: '/usr/bin/dash', argv: ['/bin/sh', '-c', 'echo "ppid $PPID"'] } },
    ]);
  });

  it('a nested patched bash stays intercepted after EXEC_WRAPPER was unset or changed', async () => {
    const cwd = work();
    const { policy, requests } = recordingPolicy();
    const r = await runBash(`unset EXEC_WRAPPER BASH_EXEC_WRAPPER; "$BASH" -c '/bin/echo inner1'\nEXEC_WRAPPER=/usr/bin/env "$BASH" -c '/bin/echo inner2'`, { policy, cwd });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('inner1\ninner2\n');
    const argvs = requests.map((q) => q.argv.join(' '));
    expect(argvs).toContain('/bin/echo inner1');
    expect(argvs).toContain('/bin/echo inner2');
  });
});
