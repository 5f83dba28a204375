import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFd, countOpenFds, openPath, Poller, recvMsg, socketPair, type Fd } from '../../src/native/index.js';
import { packageRoot } from '../../src/paths.js';
import { createStaticPolicy } from '../../src/policy/static-policy.js';
import { DIRECT_EXECS_ENV_VAR } from '../../src/protocol/constants.js';
import { EscalationServer, type EscalationSession } from '../../src/server/escalation-server.js';
import { RawClient } from '../helpers/raw-client.js';

/**
 * The exec filter's listener riding on the request (ext 3, docs/protocol.md
 * "Direct execs"): kept only on a Run of a session that decides direct
 * execs, closed otherwise, and the reply says which. Real listeners, from a
 * fixture that installs a user-notification filter on itself.
 */
let dir: string;
let fixture: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cse-dl-'));
  fixture = path.join(dir, 'notify-listener');
  execFileSync('cc', ['-Wall', '-Wextra', '-Werror', '-o', fixture, path.join(packageRoot, 'test/fixtures/native/notify-listener.c')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setImmediate(r));
  }
}

/** A live listener (its filter's one process waits until `release`). */
async function listener(): Promise<{ fd: Fd; release: () => Promise<void> }> {
  const [mine, theirs] = socketPair('stream');
  const child = spawn(fixture, ['wait'], { stdio: ['ignore', 'ignore', 'inherit', theirs] });
  closeFd(theirs);
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const fd = await new Promise<Fd>((resolve, reject) => {
    const p = new Poller(mine, (err) => {
      if (err) return reject(err);
      const r = recvMsg(mine, 16, 1);
      if (r === 'again') return;
      p.close();
      if (r === 'eof' || r.fds.length !== 1) return reject(new Error('no listener received'));
      resolve(r.fds[0]!);
    });
    p.start({ readable: true });
  });
  return {
    fd,
    release: async () => {
      closeFd(mine);
      await exited;
    },
  };
}

async function ask(session: EscalationSession, message: Record<string, unknown>, fds: Fd[]): Promise<unknown> {
  const c = RawClient.connect(session.clientFd);
  try {
    c.send({ argv: ['x'], workdir: process.cwd(), env: {}, ext: 3, ...message }, fds);
    return await c.receive(5000);
  } finally {
    c.close();
  }
}

describe('the exec filter listener on the request (ext 3)', () => {
  let server: EscalationServer;
  let session: EscalationSession;
  beforeAll(async () => {
    server = new EscalationServer({ policy: createStaticPolicy({ deny: ['rm'], escalate: ['cat'] }), directExecs: true });
    session = await server.startSession();
  });
  afterAll(() => server.close());

  it('the session tells the wrapper to attach it ("1"), and a session without direct execs says "0"', async () => {
    expect(session.env[DIRECT_EXECS_ENV_VAR]).toBe('1');
    const off = new EscalationServer({ policy: createStaticPolicy({}) });
    try {
      expect((await off.startSession()).env[DIRECT_EXECS_ENV_VAR]).toBe('0');
    } finally {
      await off.close();
    }
  });

  it('Run: the listener joins the hub with the request (no frame after the reply), and leaves it when its tree exits', async () => {
    const l = await listener();
    const prog = openPath('/usr/bin/true');
    try {
      expect(await ask(session, { file: '/usr/bin/true' }, [prog, l.fd])).toMatchObject({ action: 'Run', listener: true });
      expect(session.listenerCount).toBe(1);
    } finally {
      closeFd(prog);
      closeFd(l.fd); // our copy (SCM_RIGHTS duplicated it); the hub holds its own
    }
    await l.release();
    await until(() => session.listenerCount === 0);
  });

  it('Deny and Escalate: the listener is closed, not kept', async () => {
    const base = countOpenFds();
    for (const file of ['/usr/bin/rm', '/usr/bin/cat']) {
      const l = await listener();
      const prog = openPath(file);
      try {
        const reply = (await ask(session, { file, argv: [path.basename(file)] }, [prog, l.fd])) as Record<string, unknown>;
        expect(reply['listener']).toBeUndefined();
        expect(session.listenerCount).toBe(0);
      } finally {
        closeFd(prog);
        closeFd(l.fd);
        await l.release();
      }
    }
    await until(() => countOpenFds() <= base);
    expect(countOpenFds()).toBe(base);
  });

  it('a session that does not decide direct execs closes a listener it did not ask for and says so', async () => {
    const off = new EscalationServer({ policy: createStaticPolicy({}) });
    const s = await off.startSession();
    const l = await listener();
    const prog = openPath('/usr/bin/true');
    try {
      const reply = (await ask(s, { file: '/usr/bin/true' }, [prog, l.fd])) as Record<string, unknown>;
      // No "listener": true (the field is left out when false): our wrapper then stops before its exec.
      expect(reply['action']).toBe('Run');
      expect(reply['listener'] ?? false).toBe(false);
      expect(s.listenerCount).toBe(0);
    } finally {
      closeFd(prog);
      closeFd(l.fd);
      await l.release();
      await off.close();
    }
  });
});
