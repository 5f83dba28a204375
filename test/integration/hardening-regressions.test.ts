/**
 * Regression tests for defects the hardening suite found in the server, each
 * through a real server and real sockets.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFd, sendMsg, socketPair } from '../../src/native/index.js';
import { encodeFrame, FdFactory, fdFlags, probe, probeRequest, sendDatagram, settleFds, startTarget, ECHO_PROGRAM, TRUE_PROGRAM, type Target } from '../fuzz/harness.js';
import { RawClient } from '../helpers/raw-client.js';

const O_NONBLOCK = 0o4000;

let t: Target;
let fdf: FdFactory;
beforeAll(async () => {
  t = await startTarget({ frameTimeoutMs: 5000 });
  fdf = await FdFactory.create();
  t.rebaseline();
});
afterAll(async () => {
  await t.close();
  fdf.close();
});

async function nextRejection(before: number): Promise<string> {
  const deadline = Date.now() + 2000;
  while (t.events.rejected === before && Date.now() < deadline) await sleep(2);
  expect(t.events.rejected).toBe(before + 1);
  const line = [...t.log.recent].reverse().find((l) => l.event === 'rejected');
  return String(line?.error);
}

describe('connection fds that are not stream sockets', () => {
  it('a pipe sent as the connection is refused without making its shared file description non-blocking', async () => {
    // The sandbox could send its terminal, shared with the user's shell: O_NONBLOCK would break that shell's reads.
    const pipeFd = fdf.open('pipe');
    try {
      expect(fdFlags(pipeFd) & O_NONBLOCK).toBe(0);
      const before = t.events.rejected;
      await sendDatagram(t.session.clientFd, Buffer.of(0), [pipeFd]);
      expect(await nextRejection(before)).toMatch(/not a socket/);
      expect(fdFlags(pipeFd) & O_NONBLOCK).toBe(0);
    } finally {
      closeFd(pipeFd);
    }
    expect((await settleFds(t.baselineFds)).ok).toBe(true);
  });

  it('a datagram socket posing as the connection is refused at its first (truncated) message, not read in pieces', async () => {
    const [mine, theirs] = socketPair('dgram');
    const d0 = t.events.decided;
    const before = t.events.rejected;
    await sendDatagram(t.session.clientFd, Buffer.of(0), [theirs]);
    closeFd(theirs);
    sendMsg(mine, encodeFrame(probeRequest(ECHO_PROGRAM)));
    const t0 = Date.now();
    expect(await nextRejection(before)).toMatch(/not a stream socket/);
    expect(Date.now() - t0).toBeLessThan(4000); // at once, not at the 5 s frame deadline
    expect(t.events.decided).toBe(d0);
    closeFd(mine);
    expect((await settleFds(t.baselineFds)).ok).toBe(true);
  });
});

describe('many decisions in flight', () => {
  it('64 concurrent slow decisions print no MaxListenersExceededWarning on the server\'s stderr', async () => {
    const slow = await startTarget({ delayMs: 100 });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const results = await Promise.all(Array.from({ length: 64 }, () => probe(slow.session, ECHO_PROGRAM)));
      expect(results.every((r) => r.ok)).toBe(true);
      // process.emitWarning delivers on the next tick: one turn of the loop lets any pending one arrive.
      await new Promise((r) => setImmediate(r));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await slow.close();
    }
  });
});

describe('requests only a raw client can make', () => {
  it('an escalation with an empty argv is denied (argc == 0 is an exploit primitive for setuid programs)', async () => {
    const c = RawClient.connect(t.session.clientFd);
    try {
      c.send({ file: TRUE_PROGRAM, argv: [], workdir: process.cwd(), env: {} });
      expect(await c.receive()).toEqual({ action: { Deny: { reason: 'cannot escalate: empty argv (argc 0)' } } });
    } finally {
      c.close();
    }
  });
});
