import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFd, Poller, recvMsg, SeccompHub, socketPair, type Fd, type HubNotification } from '../../src/native/index.js';
import { packageRoot } from '../../src/paths.js';

/**
 * The seccomp hub (native/seccomp-notify.c) with real listeners: a fixture
 * installs a user-notification filter on its own execs and hands the
 * listener over, as the wrapper does.
 */
const BOUNDS = { path: 4096, arg: 4096, total: 65536, argc: 64 };
const EACCES = os.constants.errno.EACCES;
let dir: string;
let fixture: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cse-hub-'));
  fixture = path.join(dir, 'notify-listener');
  execFileSync('cc', ['-Wall', '-Wextra', '-Werror', '-o', fixture, path.join(packageRoot, 'test/fixtures/native/notify-listener.c')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Poll until `cond` holds (each check after one event-loop turn), or fail after `ms`. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setImmediate(r));
  }
}

/** Start the fixture; resolves with it and the listener fd it sent on fd 3. */
async function startFixture(args: string[]): Promise<{ child: ChildProcess; sock: Fd; listener: Fd; exit: Promise<{ code: number | null; stdout: string }> }> {
  const [mine, theirs] = socketPair('stream');
  const child = spawn(fixture, args, { stdio: ['ignore', 'pipe', 'inherit', theirs] });
  closeFd(theirs);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exit = new Promise<{ code: number | null; stdout: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout })));
  const listener = await new Promise<Fd>((resolve, reject) => {
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
  return { child, sock: mine, listener, exit };
}

describe('SeccompHub', () => {
  it('closes a hung-up listener natively, without calling JS', async () => {
    let calls = 0;
    const hub = new SeccompHub(BOUNDS, () => calls++);
    try {
      const f = await startFixture(['wait']);
      hub.add(f.listener);
      expect(hub.size).toBe(1);
      closeFd(f.sock); // the fixture's read returns 0: it exits, and nothing uses its filter any more
      expect((await f.exit).code).toBe(0);
      await until(() => hub.size === 0);
      expect(calls).toBe(0);
    } finally {
      hub.close();
    }
  });

  it('hands a pending exec to JS, RECV\'d, and answers it by listener id', async () => {
    const seen: { listener: number; n: HubNotification }[] = [];
    const hub = new SeccompHub(BOUNDS, (listener, n) => {
      seen.push({ listener, n });
      if ('id' in n) hub.send(listener, n.id, n.argv?.[1]?.toString() === 'allow' ? 0 : EACCES);
    });
    try {
      const allowed = await startFixture(['exec', '/bin/echo', 'allow']);
      const id1 = hub.add(allowed.listener);
      const denied = await startFixture(['exec', '/bin/echo', 'deny']);
      const id2 = hub.add(denied.listener);
      expect(id2).not.toBe(id1);
      const [a, d] = await Promise.all([allowed.exit, denied.exit]);
      expect(a).toEqual({ code: 0, stdout: 'allow\n' });
      expect(d).toEqual({ code: 3, stdout: `${EACCES}\n` });
      const decided = seen.filter((s) => 'id' in s.n);
      expect(decided.map((s) => s.listener).sort()).toEqual([id1, id2].sort());
      for (const s of decided) {
        expect('path' in s.n && s.n.path?.toString()).toBe('/bin/echo');
      }
      closeFd(allowed.sock);
      closeFd(denied.sock);
      await until(() => hub.size === 0);
      // An answer to a listener that is gone fails instead of reaching a recycled fd.
      expect(hub.send(id1, 1n, 0)).toBe(false);
      expect(hub.writeStderr(id1, 1n, process.pid, Buffer.from('x'))).toBe(0);
    } finally {
      hub.close();
    }
  });

  it('close() fails the execs still waiting for a decision (fail closed)', async () => {
    let pending = 0;
    const hub = new SeccompHub(BOUNDS, () => pending++);
    const f = await startFixture(['exec', '/bin/echo', 'never']);
    hub.add(f.listener);
    await until(() => pending === 1);
    hub.close();
    expect(hub.size).toBe(0);
    const r = await f.exit;
    closeFd(f.sock);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe(`${os.constants.errno.ENOSYS}\n`);
    // add() owns its fd even when it throws: a fresh one, never a number that may be reused.
    expect(() => hub.add(openSync('/dev/null', 'r'))).toThrow(/closed/);
  });
});
