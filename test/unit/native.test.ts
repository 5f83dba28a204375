// Real sockets through the native addon: socketpair, SCM_RIGHTS, recv edge
// cases, hostile arguments and the uv_poll-based Poller.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeFd,
  countOpenFds,
  isNativeError,
  MAX_RECV_BYTES,
  Poller,
  recvMsg,
  sendMsg,
  setCloexec,
  setNonblock,
  socketPair,
  type Fd,
  type PollEvents,
  type Received,
} from '../../src/native/index.js';

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

function fdFlags(fd: Fd): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  if (!m?.[1]) throw new Error(`no flags for fd ${fd}`);
  return parseInt(m[1], 8);
}

function received(r: Received | 'again' | 'eof'): Received {
  if (typeof r === 'string') throw new Error(`expected a message, got '${r}'`);
  return r;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until cond() holds (events can lag on a loaded machine), failing after 5 s. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 5 s');
    await tick(5);
  }
}

let fdsAtStart = 0;
beforeAll(() => {
  fdsAtStart = countOpenFds();
});
afterAll(() => {
  // Every test closes what it opens; a leak anywhere in the addon shows here.
  expect(countOpenFds()).toBe(fdsAtStart);
});

describe('socketPair and fd flags', () => {
  it('creates stream and dgram pairs, cloexec+nonblock by default', () => {
    for (const type of ['stream', 'dgram'] as const) {
      const [a, b] = socketPair(type);
      expect(a).not.toBe(b);
      for (const fd of [a, b]) {
        expect(fdFlags(fd) & O_NONBLOCK).toBe(O_NONBLOCK);
        expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      }
      closeFd(a);
      closeFd(b);
    }
  });

  it('honours cloexec/nonblock false and toggles them later', () => {
    const [a, b] = socketPair('stream', { cloexec: false, nonblock: false });
    expect(fdFlags(a) & (O_NONBLOCK | O_CLOEXEC)).toBe(0);
    setCloexec(a, true);
    setNonblock(a, true);
    expect(fdFlags(a) & (O_NONBLOCK | O_CLOEXEC)).toBe(O_NONBLOCK | O_CLOEXEC);
    setCloexec(a, false);
    expect(fdFlags(a) & O_CLOEXEC).toBe(0);
    expect(fdFlags(b) & O_NONBLOCK).toBe(0);
    closeFd(a);
    closeFd(b);
  });

  it('closeFd on a closed fd throws EBADF', () => {
    const [a, b] = socketPair('dgram');
    closeFd(a);
    closeFd(b);
    const err = thrown(() => closeFd(a));
    expect(isNativeError(err) && err.code).toBe('EBADF');
    expect(isNativeError(err) && err.syscall).toBe('close');
  });
});

describe('sendMsg / recvMsg', () => {
  it('round-trips a datagram carrying one working fd', () => {
    const [da, db] = socketPair('dgram');
    const [sa, sb] = socketPair('stream');
    expect(sendMsg(da, Buffer.from([0x00]), [sa])).toBe(1);
    const r = received(recvMsg(db, 16, 1));
    expect([...r.bytes]).toEqual([0]);
    expect(r.fds).toHaveLength(1);
    expect(r.truncated).toBe(false);
    expect(r.controlTruncated).toBe(false);
    const got = r.fds[0]!;
    expect(got).not.toBe(sa);
    expect(fdFlags(got) & O_CLOEXEC).toBe(O_CLOEXEC); // MSG_CMSG_CLOEXEC
    // The received fd is the same socket: writing through it reaches sb.
    expect(sendMsg(got, Buffer.from('through the passed fd'))).toBe(21);
    expect(received(recvMsg(sb, 100, 0)).bytes.toString()).toBe('through the passed fd');
    for (const fd of [da, db, sa, sb, got]) closeFd(fd);
  });

  it('delivers a stream frame with fds on its first byte', () => {
    const [a, b] = socketPair('stream');
    const extra = [socketPair('stream'), socketPair('stream'), socketPair('stream')];
    const json = Buffer.from(JSON.stringify({ fds: [0, 1, 2] }));
    const frame = Buffer.alloc(4 + json.length);
    frame.writeUInt32LE(json.length, 0);
    json.copy(frame, 4);
    expect(sendMsg(a, frame, extra.map(([x]) => x))).toBe(frame.length);
    // A later frame without fds must not bring more descriptors.
    expect(sendMsg(a, Buffer.from('tail'))).toBe(4);
    const r = received(recvMsg(b, 65536, 16));
    expect(r.fds).toHaveLength(3);
    expect(r.bytes.subarray(0, frame.length).equals(frame)).toBe(true);
    expect(r.bytes.readUInt32LE(0)).toBe(json.length);
    // Each fd is the right one, in order.
    r.fds.forEach((fd, i) => {
      expect(sendMsg(fd, Buffer.from(`n${i}`))).toBe(2);
      expect(received(recvMsg(extra[i]![1], 10, 0)).bytes.toString()).toBe(`n${i}`);
    });
    const rest = r.bytes.length > frame.length ? r.bytes.subarray(frame.length) : received(recvMsg(b, 100, 16)).bytes;
    expect(rest.toString()).toBe('tail');
    for (const fd of [a, b, ...r.fds, ...extra.flat()]) closeFd(fd);
  });

  it("returns 'again' on an empty socket, 'eof' after the stream peer closes", () => {
    const [a, b] = socketPair('stream');
    expect(recvMsg(b, 100, 4)).toBe('again');
    sendMsg(a, Buffer.from('last'));
    closeFd(a);
    expect(received(recvMsg(b, 100, 4)).bytes.toString()).toBe('last');
    expect(recvMsg(b, 100, 4)).toBe('eof');
    expect(recvMsg(b, 100, 4)).toBe('eof');
    closeFd(b);
  });

  it('treats a 0-byte datagram as a message, and reports MSG_TRUNC', () => {
    const [a, b] = socketPair('dgram');
    expect(sendMsg(a, Buffer.alloc(0))).toBe(0);
    const r = received(recvMsg(b, 10, 0));
    expect(r.bytes.length).toBe(0);
    expect(r.truncated).toBe(false);
    expect(sendMsg(a, Buffer.alloc(100, 7))).toBe(100);
    const t = received(recvMsg(b, 10, 0));
    expect(t.bytes).toEqual(Buffer.alloc(10, 7));
    expect(t.truncated).toBe(true);
    expect(recvMsg(b, 10, 0)).toBe('again'); // the rest of a datagram is gone
    closeFd(a);
    closeFd(b);
  });

  it('17 fds with maxFds=16: returns 16, controlTruncated, no leak', () => {
    const before = countOpenFds();
    const [a, b] = socketPair('dgram');
    const [x, y] = socketPair('stream');
    const seventeen = Array.from({ length: 17 }, () => x);
    expect(sendMsg(a, Buffer.from([0]), seventeen)).toBe(1);
    const r = received(recvMsg(b, 16, 16));
    expect(r.controlTruncated).toBe(true);
    expect(r.fds).toHaveLength(16);
    for (const fd of r.fds) closeFd(fd);
    // maxFds=0: the kernel discards every fd; nothing leaks into this process.
    sendMsg(a, Buffer.from([0]), [x, y]);
    const z = received(recvMsg(b, 16, 0));
    expect(z.fds).toEqual([]);
    expect(z.controlTruncated).toBe(true);
    for (const fd of [a, b, x, y]) closeFd(fd);
    expect(countOpenFds()).toBe(before);
  });

  it('throws EPIPE (not SIGPIPE) when the peer is gone, and reports again when full', () => {
    const [a, b] = socketPair('stream');
    const chunk = Buffer.alloc(65536, 1);
    let total = 0;
    let r: number | 'again' = 0;
    for (let i = 0; i < 10_000 && r !== 'again'; i++) {
      r = sendMsg(a, chunk);
      if (r !== 'again') total += r;
    }
    expect(r).toBe('again');
    expect(total).toBeGreaterThan(0);
    closeFd(b);
    const err = thrown(() => sendMsg(a, Buffer.from('x')));
    expect(isNativeError(err) && err.code).toBe('EPIPE');
    expect(isNativeError(err) && err.syscall).toBe('sendmsg');
    closeFd(a);
  });

  it('rejects hostile arguments with TypeError/RangeError and bad fds with errno errors', () => {
    const [a, b] = socketPair('stream');
    expect(() => recvMsg(-1, 10, 0)).toThrow(RangeError);
    expect(() => recvMsg(1.5, 10, 0)).toThrow(RangeError);
    expect(() => recvMsg(b, MAX_RECV_BYTES + 1, 0)).toThrow(RangeError);
    expect(() => recvMsg(b, 2 ** 53, 0)).toThrow(/maxBytes/);
    expect(() => recvMsg(b, 0, 0)).toThrow(RangeError);
    expect(() => recvMsg(b, 10, 254)).toThrow(RangeError);
    expect(() => recvMsg('3' as unknown as number, 10, 0)).toThrow(TypeError);
    expect(() => sendMsg(a, 'text' as unknown as Buffer)).toThrow(TypeError);
    expect(() => sendMsg(a, Buffer.from('x'), [-5])).toThrow(RangeError);
    expect(() => sendMsg(a, Buffer.from('x'), 'nope' as unknown as number[])).toThrow(TypeError);
    expect(() => sendMsg(a, Buffer.alloc(0), [a])).toThrow(/at least one byte/);
    expect(() => sendMsg(a, Buffer.from('x'), new Array<number>(254).fill(a))).toThrow(RangeError);
    expect(() => socketPair('seqpacket' as 'stream')).toThrow(TypeError);
    expect(() => setCloexec(a, 1 as unknown as boolean)).toThrow(TypeError);
    // A non-socket fd and an fd that is not open: errno errors, no crash.
    const ns = thrown(() => recvMsg(0x7ffffff0, 10, 0));
    expect(isNativeError(ns) && ns.code).toBe('EBADF');
    // Sending a closed fd as SCM_RIGHTS payload is EBADF from sendmsg.
    const [c, d] = socketPair('dgram');
    closeFd(d);
    const bad = thrown(() => sendMsg(a, Buffer.from('x'), [d]));
    expect(isNativeError(bad) && bad.code).toBe('EBADF');
    for (const fd of [a, b, c]) closeFd(fd);
  });

  it('reports ENOTSOCK for recvMsg/sendMsg on a non-socket fd', () => {
    const fd = openSync('/dev/null', 'r');
    const r = thrown(() => recvMsg(fd, 10, 0));
    expect(isNativeError(r) && r.code).toBe('ENOTSOCK');
    expect(isNativeError(r) && r.syscall).toBe('recvmsg');
    const s = thrown(() => sendMsg(fd, Buffer.from('x')));
    expect(isNativeError(s) && s.code).toBe('ENOTSOCK');
    closeSync(fd);
  });
});

describe('Poller', () => {
  it('fires readable when data arrives and writable when asked', async () => {
    const [a, b] = socketPair('stream');
    const events: PollEvents[] = [];
    const p = new Poller(b, (err, ev) => {
      expect(err).toBeNull();
      events.push(ev);
      if (ev.readable) received(recvMsg(b, 100, 0));
    });
    p.start({ readable: true });
    await tick();
    expect(events).toHaveLength(0); // nothing to read yet
    sendMsg(a, Buffer.from('ping'));
    await until(() => events.length >= 1);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events[0]!.readable).toBe(true);
    events.length = 0;
    p.start({ writable: true });
    await until(() => events.length >= 1);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events[0]!.writable).toBe(true);
    p.close();
    closeFd(a);
    closeFd(b);
  });

  it('supports stop/start/close from inside the callback', async () => {
    const [a, b] = socketPair('stream');
    let calls = 0;
    let phase: 'stop' | 'close' = 'stop';
    const p: Poller = new Poller(b, () => {
      calls++;
      if (phase === 'stop') p.stop(); // data stays unread: level-triggered would re-fire if still armed
      else {
        p.close();
        p.close(); // idempotent, even inside the callback
      }
    });
    p.start({ readable: true });
    sendMsg(a, Buffer.from('x'));
    await until(() => calls === 1);
    await tick();
    expect(calls).toBe(1); // stopped
    phase = 'close';
    p.start({ readable: true }); // re-arm: data is still pending
    await until(() => calls === 2);
    await tick();
    expect(calls).toBe(2); // closed
    expect(() => p.start({ readable: true })).toThrow(/closed/);
    p.stop(); // harmless after close
    p.close();
    closeFd(a);
    closeFd(b);
  });

  it('restarting from inside the callback with other events takes effect', async () => {
    const [a, b] = socketPair('stream');
    const seen: string[] = [];
    const p: Poller = new Poller(b, (_err, ev) => {
      seen.push(ev.readable ? 'r' : ev.writable ? 'w' : '?');
      if (seen.length === 1) p.start({ writable: true });
      else p.close();
    });
    sendMsg(a, Buffer.from('x'));
    p.start({ readable: true });
    await until(() => seen.length >= 2);
    await tick();
    expect(seen).toEqual(['r', 'w']);
    closeFd(a);
    closeFd(b);
  });

  it('reports disconnect when the stream peer closes', async () => {
    const [a, b] = socketPair('stream');
    const events: PollEvents[] = [];
    const p = new Poller(b, (_err, ev) => {
      events.push(ev);
      p.close();
    });
    p.start({ readable: true });
    closeFd(a);
    await until(() => events.length >= 1);
    await tick();
    expect(events).toHaveLength(1);
    expect(events[0]!.disconnect || events[0]!.readable).toBe(true);
    expect(recvMsg(b, 10, 0)).toBe('eof');
    closeFd(b);
  });

  it('an exception thrown by the callback does not corrupt the poller', async () => {
    const [a, b] = socketPair('stream');
    const errors: unknown[] = [];
    const onUncaught = (e: unknown): void => {
      errors.push(e);
    };
    // vitest installs its own handler; ours only records.
    process.on('uncaughtException', onUncaught);
    const p: Poller = new Poller(b, () => {
      p.close();
      throw new Error('boom from callback');
    });
    p.start({ readable: true });
    sendMsg(a, Buffer.from('x'));
    await until(() => errors.length > 0);
    process.off('uncaughtException', onUncaught);
    expect(errors.map((e) => (e as Error).message)).toContain('boom from callback');
    closeFd(a);
    closeFd(b);
  });

  it('start() on an fd closed underneath throws EBADF instead of aborting in libuv', () => {
    const [a, b] = socketPair('stream');
    const p = new Poller(b, () => {});
    closeFd(b);
    const err = thrown(() => p.start({ readable: true }));
    expect(isNativeError(err) && err.code).toBe('EBADF');
    p.close();
    closeFd(a);
  });

  it('rejects bad constructor arguments', () => {
    expect(() => new Poller(-1, () => {})).toThrow(RangeError);
    expect(() => new Poller(0, 'x' as unknown as () => void)).toThrow(TypeError);
    const err = thrown(() => new Poller(0x7ffffff0, () => {}));
    expect(isNativeError(err) && err.code).toBe('EBADF');
  });
});
