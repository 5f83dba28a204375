/**
 * The fast path's native half (native/fast-path.c) on real socket pairs: what
 * it answers, what it hands over untouched, its bounds and its generations.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, FastPath, openPath, recvMsg, sendMsg, socketPair, type FastPathEvent, type Fd } from '../../src/native/index.js';
import { encodeJsonFrame } from '../../src/protocol/codec.js';

const open: Fd[] = [];
const paths: FastPath[] = [];
afterEach(() => {
  for (const f of paths.splice(0)) f.close();
  for (const fd of open.splice(0)) closeFd(fd);
});

/** A fast path on a fresh datagram pair; `ready` counts its wake-ups of JS. */
function start() {
  const [server, client] = socketPair('dgram');
  open.push(server, client);
  const state = { ready: 0 };
  const fast = new FastPath(server, { handshakeByte: 0, maxFds: 16, maxPending: 64 }, () => void state.ready++);
  paths.push(fast);
  return { fast, client, state };
}

/** Our wrapper's order: the frame (program fd on its first byte) into the stream, then the handshake. */
function connect(client: Fd, bytes: Buffer, fds: Fd[]): Fd {
  const [mine, theirs] = socketPair('stream');
  open.push(mine);
  if (bytes.length) expect(sendMsg(mine, bytes, fds)).toBe(bytes.length);
  expect(sendMsg(client, Buffer.of(0), [theirs])).toBe(1);
  closeFd(theirs);
  return mine;
}

async function until<T>(get: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const frame = encodeJsonFrame({ file: '/bin/true', argv: ['true'], workdir: '/', env: {}, ext: 2 });
const reply = encodeJsonFrame({ action: 'Run' });
const program = Buffer.from('/usr/bin/true');

describe('FastPath (native)', () => {
  it('answers a remembered request itself and reports the hit; an unknown one is handed over with every byte and fd still unread', async () => {
    const { fast, client } = start();
    const prog = openPath('/bin/true');
    open.push(prog);
    expect(fast.remember(program, frame.subarray(4), reply, 7, fast.generation(), 1)).toBe(1);
    // A concurrent twin decided a moment later: the first entry (and id) stays.
    expect(fast.remember(program, frame.subarray(4), reply, 8, fast.generation(), 1)).toBe(2);

    const hit = connect(client, frame, [prog]);
    const got = await until(() => {
      const r = recvMsg(hit, 4096, 4);
      return r === 'again' ? undefined : r;
    });
    expect(got !== 'eof' && Buffer.compare(got.bytes, reply)).toBe(0);
    const events: FastPathEvent[] = [];
    await until(() => (events.push(...fast.take()), events.some((e) => e.kind === 'hit') ? true : undefined), 1000);
    expect(events).toEqual([{ kind: 'hit', id: 7, latencyUs: expect.any(Number) }]);

    // Another argv: the connection comes to JS as the wrapper left it.
    const other = encodeJsonFrame({ file: '/bin/true', argv: ['true', 'x'], workdir: '/', env: {}, ext: 2 });
    connect(client, other, [prog]);
    const handed = await until(() => fast.take().find((e) => e.kind === 'connection'));
    if (handed.kind !== 'connection') throw new Error('not a connection');
    open.push(handed.fd);
    const read = recvMsg(handed.fd, 1 << 16, 4);
    if (read === 'again' || read === 'eof') throw new Error('nothing to read');
    expect(Buffer.compare(read.bytes, other)).toBe(0);
    expect(read.fds).toHaveLength(1);
    open.push(...read.fds);
    expect(fast.stats()).toEqual({ hits: 1, misses: 1, entries: 1 });
  });

  it('a half-sent frame, a bad datagram and the same bytes for another program all go to JS', async () => {
    const { fast, client } = start();
    const prog = openPath('/bin/true');
    const rm = openPath('/bin/rm');
    open.push(prog, rm);
    fast.remember(program, frame.subarray(4), reply, 1, fast.generation(), 1);
    connect(client, frame.subarray(0, 10), [prog]);
    connect(client, frame, [rm]);
    expect(sendMsg(client, Buffer.from('xy'), [])).toBe(2);
    const events: FastPathEvent[] = [];
    await until(() => (events.push(...fast.take()), events.length >= 3 ? true : undefined));
    expect(events.map((e) => e.kind)).toEqual(['connection', 'connection', 'datagram']);
    for (const e of events) if (e.kind === 'connection') open.push(e.fd);
    expect(events[2]).toEqual({ kind: 'datagram', bytes: Buffer.from('xy'), fds: [], truncated: false, controlTruncated: false });
    expect(fast.stats().hits).toBe(0);
  });

  it('a cleared table and a stale generation remember nothing; the table is bounded', () => {
    const { fast } = start();
    const g = fast.generation();
    expect(fast.remember(program, Buffer.from('{}'), reply, 1, g, 1)).toBe(1);
    expect(fast.clear()).toBe(g + 1);
    expect(fast.stats().entries).toBe(0);
    expect(fast.remember(program, Buffer.from('{}'), reply, 2, g, 1)).toBe(-1);
    expect(fast.remember(program, Buffer.alloc(0), reply, 2, g + 1, 1)).toBe(-1);
    expect(fast.remember(program, Buffer.alloc(64 * 1024 + 1, 1), reply, 2, g + 1, 1)).toBe(-1);
    const results = Array.from({ length: 5000 }, (_, i) => fast.remember(program, Buffer.from(`{"n":${i}}`), reply, i + 1, g + 1, 1));
    expect(results.filter((r) => r === 1)).toHaveLength(4096);
    expect(results.slice(4096).every((r) => r === 0)).toBe(true);
    expect(fast.stats().entries).toBe(4096);
  });

  it('close() joins the thread: nothing more is read, what was queued stays for take()', async () => {
    const { fast, client } = start();
    connect(client, frame, []);
    const queued = await until(() => {
      const s = fast.stats();
      return s.misses > 0 ? s : undefined;
    });
    expect(queued.misses).toBe(1);
    fast.close();
    connect(client, frame, []);
    const events = fast.take();
    expect(events.map((e) => e.kind)).toEqual(['connection']);
    for (const e of events) if (e.kind === 'connection') open.push(e.fd);
    // The second handshake is still in the socket, unread.
    const left = recvMsg(open[0]!, 2, 16);
    expect(left !== 'again' && left !== 'eof' && left.fds.length).toBe(1);
    if (left !== 'again' && left !== 'eof') open.push(...left.fds);
  });
});
