import { copyFileSync, existsSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscalationServer, type EscalationSession } from '../../src/server/escalation-server.js';
import { createAuditLogger, flushAuditLog } from '../../src/server/audit-log.js';
import { patchedBash, recordingPolicy, runBash, tempDir, wrapperPath } from '../helpers/harness.js';
import { launchShell } from '../../src/server/run-shell.js';
import { RawClient } from '../helpers/raw-client.js';

describe('the environment crossing out of the sandbox is an allow list', () => {
  it('LD_PRELOAD, BASH_ENV, exported functions and any other unlisted variable do not reach an escalated command, and are audited', async () => {
    const dir = tempDir();
    const log = path.join(dir, 'audit.jsonl');
    const { policy } = recordingPolicy((q) => (q.program === '/usr/bin/env' ? { action: 'escalate' } : { action: 'run' }));
    const logger = createAuditLogger({ file: log });
    const r = await runBash('f() { echo hijacked; }; export -f f; export BASH_ENV=/x/evil KEEP=yes; LD_PRELOAD=/nonexistent/evil.so /usr/bin/env', { policy, logger });
    const lines = r.stdout.split('\n');
    const names = lines.map((l) => l.split('=')[0]);
    // Before the allow list KEEP crossed; now only listed presentation variables do (LC_ALL=C from runBash's env).
    expect(names).not.toContain('KEEP');
    expect(names).not.toContain('LD_PRELOAD');
    expect(names).not.toContain('BASH_ENV');
    expect(names.some((n) => n?.startsWith('BASH_FUNC_'))).toBe(false);
    expect(lines).toContain('LC_ALL=C');
    // PATH and HOME are the server's, not the shell's (runBash gives the shell HOME=os.tmpdir()).
    expect(lines).toContain(`PATH=${process.env.PATH}`);
    expect(lines).toContain(`HOME=${process.env.HOME}`);
    await flushAuditLog(logger);
    const decision = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'decision');
    expect(decision?.env_dropped).toEqual(expect.arrayContaining(['BASH_ENV', 'BASH_FUNC_f%%', 'HOME', 'KEEP', 'LD_PRELOAD', 'PATH']));
    expect(decision?.env_dropped).not.toContain('LC_ALL');
  });

  it('an allow list entry lets a variable cross; a deny entry drops even a default one', async () => {
    const dir = tempDir();
    const marker = path.join(dir, 'out');
    const { policy } = recordingPolicy(() => ({ action: 'escalate' }));
    const server = new EscalationServer({ policy, wrapperPath, escalationEnv: { allow: ['PAGER', 'SECRET_*'], deny: ['SECRET_*', 'TERM'] } });
    const running = await launchShell(server, {
      command: patchedBash(),
      args: ['-c', `PAGER=less SECRET_TOKEN=x TERM=xterm LANG=C.UTF-8 /usr/bin/env > ${marker}`],
      env: { PATH: '/usr/bin:/bin' },
      stdio: 'ignore',
    });
    await running.done;
    const out = readFileSync(marker, 'utf8').split('\n');
    expect(out).toContain('PAGER=less');
    expect(out).toContain('LANG=C.UTF-8');
    expect(out.some((l) => l.startsWith('SECRET_TOKEN='))).toBe(false);
    expect(out.some((l) => l.startsWith('TERM='))).toBe(false);
  });
});

describe('the escalated program is the one that was decided on', () => {
  it('a symlink swapped between decision and exec cannot escalate a different program', async () => {
    const dir = tempDir();
    const good = path.join(dir, 'good');
    const bad = path.join(dir, 'bad');
    copyFileSync('/usr/bin/true', good);
    copyFileSync('/usr/bin/touch', bad);
    chmodSync(good, 0o755);
    chmodSync(bad, 0o755);
    symlinkSync(good, path.join(dir, 'tool'));
    const marker = path.join(dir, 'marker');
    const { policy, requests } = recordingPolicy((q) => {
      if (q.program !== good) return { action: 'run' };
      // The sandbox races us: point the link at another binary after the decision was made on `good`.
      unlinkSync(path.join(dir, 'tool'));
      symlinkSync(bad, path.join(dir, 'tool'));
      return { action: 'escalate' };
    });
    const r = await runBash(`./tool ${marker}; echo "status=$?"`, { policy, cwd: dir });
    expect(requests[0]!.program).toBe(good);
    expect(r.stdout).toBe('status=0\n');
    expect(existsSync(marker)).toBe(false);
  });

  it('a binary replaced in place during the decision is refused: the path no longer names the decided file', async () => {
    const dir = tempDir();
    const tool = path.join(dir, 'tool');
    copyFileSync('/usr/bin/true', tool);
    copyFileSync('/usr/bin/touch', path.join(dir, 'bad'));
    const marker = path.join(dir, 'marker');
    const { policy } = recordingPolicy((q) => {
      if (q.program !== tool) return { action: 'run' };
      renameSync(path.join(dir, 'bad'), tool);
      return { action: 'escalate' };
    });
    const r = await runBash(`./tool ${marker}; echo "status=$?"`, { policy, cwd: dir });
    expect(r.stdout).toBe('status=126\n');
    expect(r.stderr).toMatch(/not the same file in the requester's view/);
    expect(existsSync(marker)).toBe(false);
  });

  it('a binary replaced after the Escalate answer, before the exec, still runs the decided file (exec from the O_PATH handle)', async () => {
    const dir = tempDir();
    const tool = path.join(dir, 'tool');
    copyFileSync('/usr/bin/true', tool);
    copyFileSync('/usr/bin/touch', path.join(dir, 'bad'));
    const marker = path.join(dir, 'marker');
    const { policy } = recordingPolicy((q) => (q.program === tool ? { action: 'escalate' } : { action: 'run' }));
    // `decided` runs right after the answer is written and before the wrapper's fds are read and the command spawned.
    const server = new EscalationServer({
      policy,
      wrapperPath,
      observer: { decided: (d) => d.request.program === tool && renameSync(path.join(dir, 'bad'), tool) },
    });
    const running = await launchShell(server, {
      command: patchedBash(),
      args: ['-c', `./tool ${marker}; echo "status=$?" > ${dir}/status`],
      cwd: dir,
      env: { PATH: '/usr/bin:/bin' },
      stdio: 'ignore',
    });
    await running.done;
    expect(readFileSync(path.join(dir, 'status'), 'utf8')).toBe('status=0\n');
    expect(existsSync(marker)).toBe(false);
  });

  it('a script replaced after the decision is refused, not run', async () => {
    const dir = tempDir();
    const script = path.join(dir, 'job.sh');
    const marker = path.join(dir, 'marker');
    writeFileSync(script, '#!/bin/sh\necho approved\n', { mode: 0o755 });
    writeFileSync(path.join(dir, 'evil.sh'), `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    const { policy } = recordingPolicy((q) => {
      if (q.program !== script) return { action: 'run' };
      renameSync(path.join(dir, 'evil.sh'), script);
      return { action: 'escalate' };
    });
    const r = await runBash('./job.sh; echo "status=$?"', { policy, cwd: dir });
    expect(r.stdout).toBe('status=126\n');
    expect(existsSync(marker)).toBe(false);
  });

  it('an escalated #! script runs (by path) when nothing changed', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'job.sh'), '#!/bin/sh\necho "approved $1 ppid=$PPID"\n', { mode: 0o755 });
    const { policy } = recordingPolicy((q) => (q.program.endsWith('/job.sh') ? { action: 'escalate' } : { action: 'run' }));
    const r = await runBash('./job.sh arg', { policy, cwd: dir });
    expect(r.stdout).toBe(`approved arg ppid=${process.pid}\n`);
  });
});

describe('a client that lies about its working directory', () => {
  let server: EscalationServer;
  let session: EscalationSession;
  beforeAll(async () => {
    const { policy } = recordingPolicy(() => ({ action: 'escalate' }));
    server = new EscalationServer({ policy });
    session = await server.startSession();
  });
  afterAll(async () => {
    await server.close();
  });

  const ask = async (file: string, workdir: string) => {
    const client = RawClient.connect(session.clientFd);
    try {
      client.send({ file, argv: [file], workdir, env: {} });
      return await client.receive();
    } finally {
      client.close();
    }
  };

  it('relative-path spoofing (a workdir that is not the requester\'s cwd) is denied', async () => {
    const reply = (await ask('./true', '/usr/bin')) as { action: { Deny: { reason: string } } };
    // Without the wrapper's fd (ext 2) a relative file is looked up in the requester's real cwd (/proc/PID/cwd), not the claimed one.
    expect(reply.action.Deny.reason).toBe('cannot escalate: ENOENT: cannot resolve /usr/bin/true');
  });

  it('a workdir that does not exist is denied', async () => {
    const reply = (await ask('/usr/bin/true', '/nonexistent/dir')) as { action: { Deny: { reason: string } } };
    expect(reply.action.Deny.reason).toMatch(/working directory \/nonexistent\/dir does not exist/);
  });

  it('the truth is escalated', async () => {
    expect(await ask('/usr/bin/true', process.cwd())).toEqual({ action: 'Escalate' });
  });
});
