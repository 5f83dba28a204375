/**
 * Issue 12: every exec in the sandboxed tree is decided, not only the top
 * shell's. Layer 1: inside bwrap the system shells are the patched bash.
 * Layer 2: the execs programs make themselves reach the server as seccomp
 * user notifications. Real CLI, real bwrap, real programs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bwrapUsable, shellMountTargets, SYSTEM_SHELLS } from '../../src/sandbox/bwrap.js';
import { cliEnv, readJsonLines, runCli, startCli, waitFor, writeExecutable } from '../helpers/e2e.js';
import { openFdCount, patchedBash, runInSession, tempDir, wrapperPath } from '../helpers/harness.js';
import { EscalationServer, type DecisionRecord } from '../../src/server/escalation-server.js';
import { createAuditLogger } from '../../src/server/audit-log.js';

const FORBID_RM = 'prefix_rule(pattern = ["rm"], decision = "forbidden")\n';

interface Workspace {
  readonly dir: string;
  readonly rules: string;
  readonly log: string;
}

/** A working directory with the victim file `f`, the rules outside it, and the audit log outside it. */
function workspace(): Workspace {
  const outside = tempDir('cse-cov-');
  const dir = path.join(outside, 'work');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'f'), 'precious\n');
  const rules = path.join(outside, 'forbid-rm.rules');
  writeFileSync(rules, FORBID_RM);
  return { dir, rules, log: path.join(outside, 'audit.jsonl') };
}

function run(sandbox: 'bwrap' | 'none', ws: Workspace, script: string, extra: readonly string[] = []) {
  return runCli(['run', '--sandbox', sandbox, '--shell', patchedBash(), '--rules', ws.rules, '--log-file', ws.log, ...extra, '--', script], {
    cwd: ws.dir,
    env: cliEnv(),
    timeoutMs: 60_000,
  });
}

/** The commands of the acceptance list; setup writes the files a command needs. */
const CASES: readonly { name: string; script: string; setup?: (dir: string) => void }[] = [
  { name: "bash -c 'rm f'", script: "bash -c 'rm f'" },
  { name: "sh -c 'rm f'", script: "sh -c 'rm f'" },
  { name: '#!/bin/sh script', script: './s', setup: (d) => writeExecutable(path.join(d, 's'), '#!/bin/sh\nrm f\n') },
  { name: '#!/bin/bash script', script: './s', setup: (d) => writeExecutable(path.join(d, 's'), '#!/bin/bash\nrm f\n') },
  { name: '#!/usr/bin/env bash script', script: './s', setup: (d) => writeExecutable(path.join(d, 's'), '#!/usr/bin/env bash\nrm f\n') },
  { name: 'env rm f', script: 'env rm f' },
  { name: 'env -i /usr/bin/rm f', script: 'env -i /usr/bin/rm f' },
  { name: 'xargs rm', script: 'echo f | xargs rm' },
  { name: 'find -exec rm {} \\;', script: "find . -name f -exec rm {} \\; ; test ! -e f" },
  { name: 'timeout 5 rm f', script: 'timeout 5 rm f' },
  { name: 'nice rm f', script: 'nice rm f' },
  { name: 'a make recipe', script: 'make -s', setup: (d) => writeFileSync(path.join(d, 'Makefile'), 'all:\n\trm f\n') },
  // os.system and perl's system() return the status instead of exiting with it: the scripts pass it on.
  { name: 'python3 os.system', script: `python3 -c 'import os, sys; sys.exit(os.waitstatus_to_exitcode(os.system("rm f")))'` },
  { name: 'python3 subprocess.run', script: `python3 -c 'import subprocess; subprocess.run(["rm","f"])'` },
  { name: 'python3 os.execv', script: `python3 -c 'import os; os.execv("/bin/rm", ["rm","f"])'` },
  { name: "perl system('rm','f')", script: `perl -e 'exit(system("rm","f") == 0 ? 0 : 1)'` },
  { name: 'node execFileSync', script: `node -e 'require("child_process").execFileSync("rm",["f"])'` },
  {
    name: 'an npm script',
    script: 'HOME=$PWD/home npm run --silent --offline zap',
    setup: (d) => {
      mkdirSync(path.join(d, 'home'));
      writeFileSync(path.join(d, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0', scripts: { zap: 'rm f' } }));
    },
  },
  {
    name: 'a git hook',
    script: 'git -c user.name=t -c user.email=t@e -c core.hooksPath=hooks commit -q --allow-empty -m x',
    setup: (d) => {
      execFileSync('git', ['init', '-q', d]);
      mkdirSync(path.join(d, 'hooks'));
      writeExecutable(path.join(d, 'hooks', 'pre-commit'), '#!/bin/sh\nrm f\n');
    },
  },
];

beforeAll(() => {
  const usable = bwrapUsable();
  if (!usable.ok) throw new Error(`bubblewrap must work for these tests (CI installs it): ${usable.reason}`);
});

describe('layer 1: the system shells are the patched bash inside bwrap', () => {
  it('/bin/bash, /usr/bin/bash, /bin/sh and /usr/bin/sh run the patched bash; as sh it is in POSIX mode', async () => {
    const ws = workspace();
    const r = await run('bwrap', ws, 'for s in /bin/bash /usr/bin/bash /bin/sh /usr/bin/sh; do $s -c \'echo "$0 $BASH_VERSION $(set -o | grep -c "posix.*on")"\'; done');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const l of lines) expect(l).toMatch(/ 5\.2\.15\(1\)-release [01]$/);
    // bash: not POSIX; sh: POSIX (bash does that when run as sh).
    expect(lines.map((l) => l.at(-1))).toEqual(['0', '0', '1', '1']);
    // Every path resolves to a mount of the patched bash.
    expect(shellMountTargets(SYSTEM_SHELLS).length).toBeGreaterThan(0);
  });

  it('a nested patched shell escalates what the rules escalate: bash -c touch creates the file outside the sandbox', async () => {
    const ws = workspace();
    const outside = mkdtempSync('/var/tmp/cse-cov-outside-');
    try {
      const target = path.join(outside, 'x');
      const r = await run('bwrap', ws, `bash -c 'touch ${target}'; sh -c 'echo nested-ok'`, ['--escalate', 'touch']);
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(target)).toBe(true);
      const decisions = readJsonLines(ws.log).filter((l) => l['event'] === 'decision');
      const touch = decisions.filter((d) => d['program'] === '/usr/bin/touch');
      expect(touch).toHaveLength(1);
      expect(touch[0]).toMatchObject({ action: 'escalate', via: 'wrapper' });
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('the session socket and EXEC_WRAPPER survive into nested shells', async () => {
    const ws = workspace();
    const r = await run('bwrap', ws, `bash -c 'sh -c "bash -c \\"rm f\\""'`);
    expect(r.code).not.toBe(0);
    expect(existsSync(path.join(ws.dir, 'f'))).toBe(true);
    const rm = readJsonLines(ws.log).filter((l) => l['event'] === 'decision' && l['program'] === '/usr/bin/rm');
    expect(rm).toHaveLength(1);
    expect(rm[0]).toMatchObject({ action: 'deny', via: 'wrapper' });
  });
});

for (const sandbox of ['bwrap', 'none'] as const) {
  describe(`forbidden rm, --sandbox ${sandbox}: the file stays, the exit is non-zero, the reason is visible`, () => {
    for (const c of CASES) {
      it(c.name, async () => {
        const ws = workspace();
        c.setup?.(ws.dir);
        const r = await run(sandbox, ws, c.script);
        expect(r.timedOut).toBe(false);
        expect(readFileSync(path.join(ws.dir, 'f'), 'utf8')).toBe('precious\n');
        expect(r.code, r.stderr).not.toBe(0);
        expect(r.stderr).toMatch(/denied: forbidden by prefix_rule\(\["rm"\]/);
        // Once: on the process's stderr when it is the user's, else echoed by the CLI, never both.
        expect(r.stderr.match(/denied: forbidden/g)).toHaveLength(1);
        const rm = readJsonLines(ws.log).filter((l) => l['event'] === 'decision' && l['program'] === '/usr/bin/rm');
        // Exactly one decision for the one logical exec (execvp's PATH retries are not decided again).
        expect(rm.map((d) => d['action'])).toEqual(['deny']);
      }, 90_000);
    }
  });
}

describe('direct execs: audit, escalation, fail closed', () => {
  it('a direct exec of an escalate-only program runs in the sandbox, and the audit says so', async () => {
    const ws = workspace();
    const outside = mkdtempSync('/var/tmp/cse-cov-outside-');
    try {
      const target = path.join(outside, 'y');
      const r = await run('bwrap', ws, `env touch ${target}; echo "status=$?"`, ['--escalate', 'touch']);
      expect(r.stdout).toBe('status=1\n');
      expect(r.stderr).toMatch(/Read-only file system/);
      expect(existsSync(target)).toBe(false);
      const touch = readJsonLines(ws.log).filter((l) => l['event'] === 'decision' && l['program'] === '/usr/bin/touch');
      expect(touch).toHaveLength(1);
      expect(touch[0]).toMatchObject({ via: 'direct', parent: '/usr/bin/env', action: 'run', escalate_not_honoured: true });
      expect(String(touch[0]!['reason'])).toMatch(/escalate cannot be honoured for a direct exec/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('every decision line names how the exec was seen and its parent program', async () => {
    const ws = workspace();
    const r = await run("bwrap", ws, "env true; /usr/bin/true");
    expect(r.code, r.stderr).toBe(0);
    const d = readJsonLines(ws.log).filter((l) => l['event'] === 'decision');
    expect(d.map((x) => [x['program'], x['via']])).toEqual([
      ['/usr/bin/env', 'wrapper'],
      ['/usr/bin/true', 'direct'],
      ['/usr/bin/true', 'wrapper'],
    ]);
    expect(d[1]!['parent']).toBe('/usr/bin/env');
    expect(d[0]!['parent']).toBe(patchedBash());
  });

  for (const sandbox of ['bwrap', 'none'] as const) {
    it(`xargs -P 16 over 500 direct execs: each decided exactly once, no listener left (--sandbox ${sandbox})`, async () => {
      const ws = workspace();
      const r = await run(sandbox, ws, 'seq 1 500 | xargs -P 16 -n 1 /usr/bin/echo > out.txt');
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(path.join(ws.dir, 'out.txt'), 'utf8').trim().split('\n').map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      const echo = readJsonLines(ws.log).filter((l) => l['event'] === 'decision' && l['program'] === '/usr/bin/echo');
      expect(echo).toHaveLength(500);
      expect(new Set(echo.map((e) => (e['argv'] as string[])[1])).size).toBe(500);
      for (const e of echo) expect(e).toMatchObject({ via: 'direct', parent: '/usr/bin/xargs', action: 'run' });
    }, 180_000);
  }

  it('the server\'s fds are back to their baseline after 500 parallel direct execs, each decided once', async () => {
    const decisions: DecisionRecord[] = [];
    const server = new EscalationServer({
      policy: { decide: () => ({ action: 'run' }) },
      wrapperPath,
      shellPath: patchedBash(),
      directExecs: true,
      logger: createAuditLogger({ level: 'silent' }),
      observer: { decided: (d) => decisions.push(d) },
    });
    const dir = tempDir('cse-cov-fds-');
    const warm = await runInSession(server, '/usr/bin/true', { cwd: dir, env: cliEnv() });
    expect(warm.exitCode).toBe(0);
    const baseline = openFdCount();
    const r = await runInSession(server, 'seq 1 500 | xargs -P 16 -n 1 /usr/bin/echo > out.txt', { cwd: dir, env: cliEnv() });
    expect(r.exitCode, r.stderr).toBe(0);
    const echo = decisions.filter((d) => d.request.sessionId === r.sessionId && d.request.program === '/usr/bin/echo');
    expect(echo).toHaveLength(500);
    expect(new Set(echo.map((d) => d.request.argv[1])).size).toBe(500);
    expect(openFdCount()).toBe(baseline);
    await server.close();
  }, 120_000);

  it('doctor reports whether user notification works here; --direct-execs off leaves direct execs undecided', async () => {
    const doctor = await runCli(['doctor'], { env: cliEnv(), timeoutMs: 60_000 });
    expect(doctor.stdout).toMatch(/^ok\s+direct execs \(seccomp user notification\): works/m);
    const ws = workspace();
    const r = await run('bwrap', ws, 'env rm f; echo "status=$?"', ['--direct-execs', 'off']);
    expect(r.stdout).toBe('status=0\n');
    expect(existsSync(path.join(ws.dir, 'f'))).toBe(false);
    expect(readJsonLines(ws.log).filter((l) => l['via'] === 'direct')).toEqual([]);
  }, 90_000);

  it('a second listener installed under the filter is refused (the later-listener bypass)', async () => {
    const ws = workspace();
    // seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &allow-all): would be asked before ours.
    const py = [
      'import ctypes, ctypes.util, os, struct, sys',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'libc.prctl(38, 1, 0, 0, 0)',
      'prog = struct.pack("HBBI", 0x06, 0, 0, 0x7fc00000)',
      'buf = ctypes.create_string_buffer(prog)',
      'class F(ctypes.Structure): _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]',
      'f = F(1, ctypes.cast(buf, ctypes.c_void_p))',
      'r = libc.syscall(317, 1, 8, ctypes.byref(f))',
      'print("installed" if r >= 0 else "refused:" + os.strerror(ctypes.get_errno()))',
      'sys.stdout.flush()',
      'os.execv("/usr/bin/rm", ["rm", "f"])',
    ].join('\n');
    writeFileSync(path.join(ws.dir, 'bypass.py'), py);
    const r = await run("bwrap", ws, "python3 bypass.py");
    expect(r.stdout).toMatch(/^refused:/);
    expect(r.code).not.toBe(0);
    expect(readFileSync(path.join(ws.dir, 'f'), 'utf8')).toBe('precious\n');
    expect(r.stderr).toMatch(/denied: forbidden/);
  }, 60_000);

  it('fail closed: with the server gone, a notified exec fails and nothing runs undecided', async () => {
    const ws = workspace();
    const marker = path.join(ws.dir, 'ran');
    const ready = path.join(ws.dir, 'ready');
    const go = path.join(ws.dir, 'go');
    const errFile = path.join(ws.dir, 'exec-error');
    // Under bwrap the sandbox dies with the server (--die-with-parent); without one, the program outlives it.
    const py = [
      'import os, time',
      `open(${JSON.stringify(ready)}, "w").close()`,
      `while not os.path.exists(${JSON.stringify(go)}): time.sleep(0.02)`,
      'try:',
      `    os.execv("/usr/bin/touch", ["touch", ${JSON.stringify(marker)}])`,
      'except OSError as e:',
      `    open(${JSON.stringify(errFile)}, "w").write(e.strerror)`,
    ].join('\n');
    writeFileSync(path.join(ws.dir, 'late.py'), py);
    const { child, result } = startCli(['run', '--sandbox', 'none', '--shell', patchedBash(), '--rules', ws.rules, '--log-file', ws.log, '--', 'python3 late.py'], {
      cwd: ws.dir,
      env: { ...cliEnv(), CODEX_ESCALATE_CGROUP: 'off' },
      timeoutMs: 60_000,
    });
    await waitFor(() => existsSync(ready), 'the program to start', 30_000);
    const exited = new Promise((res) => child.once('exit', res));
    child.kill('SIGKILL');
    // 'exit', not the result: the orphaned program still holds the CLI's stdio pipes until it is done.
    await exited;
    writeFileSync(go, '');
    await waitFor(() => existsSync(errFile) || existsSync(marker), 'the late exec to finish', 30_000);
    await result;
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(errFile, 'utf8')).toBe('Function not implemented');
  }, 90_000);
});
