/**
 * Shared machinery for the hardening suites: a real EscalationServer in this
 * process with a capturing audit log, hostile clients built from the native
 * primitives, and the invariants checked between fuzz batches (server alive
 * and correct within 50 ms, fds back to baseline, heap bounded, every
 * rejection logged — rate-limited, with `suppressed` counts that add up).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, constants as fsConstants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import pino from 'pino';
import { closeFd, countOpenFds, recvMsg, sendMsg, socketPair, type Fd } from '../../src/native/index.js';
// Fuzz inputs are hostile by design: the untyped encoder, under the usual name.
import { encodeJsonFrame as encodeFrame } from '../../src/protocol/codec.js';
import type { EscalationPolicy, ExecRequest, PolicyDecision } from '../../src/policy/types.js';
import { EscalationServer, type EscalationServerOptions, type EscalationSession } from '../../src/server/escalation-server.js';
import { RawClient } from '../helpers/raw-client.js';

export const TRUE_PROGRAM = '/usr/bin/true';
export const ECHO_PROGRAM = '/usr/bin/echo';
export const DENY_WORD = 'deny-me';
export const DENY_REASON = 'hardening: denied';

/** The policy every hardening target uses: argv[1] === DENY_WORD denies, /usr/bin/true escalates, anything else runs. */
export function expectedDecision(r: Pick<ExecRequest, 'program' | 'argv'>): PolicyDecision {
  if (r.argv[1] === DENY_WORD) return { action: 'deny', reason: DENY_REASON };
  if (r.program === TRUE_PROGRAM) return { action: 'escalate' };
  return { action: 'run' };
}

export function hardeningPolicy(opts: { delayMs?: number } = {}): EscalationPolicy {
  return {
    async decide(r) {
      if (opts.delayMs) await sleep(opts.delayMs);
      return expectedDecision(r);
    },
  };
}

/** The wire answer the policy above must produce. */
export function expectedWire(r: Pick<ExecRequest, 'program' | 'argv'>): unknown {
  const d = expectedDecision(r);
  if (d.action === 'deny') return { action: { Deny: { reason: DENY_REASON } } };
  return { action: d.action === 'run' ? 'Run' : 'Escalate' };
}

/** Audit lines kept in memory, with the counts the invariants need. */
export class LogCapture {
  rejectedLines = 0;
  suppressedSum = 0;
  decisionLines = 0;
  errorLines = 0;
  /** Escalated spawns that failed: reported to observers as protocol errors, logged as errors (not rate-limited). */
  spawnErrorLines = 0;
  readonly recent: Record<string, unknown>[] = [];

  write(line: string): void {
    const rec = JSON.parse(line) as Record<string, unknown>;
    if (rec.event === 'rejected') {
      this.rejectedLines++;
      if (typeof rec.suppressed === 'number') this.suppressedSum += rec.suppressed;
    } else if (rec.event === 'decision') this.decisionLines++;
    else if (rec.event === 'spawn_error') this.spawnErrorLines++;
    if (rec.level === 50) this.errorLines++;
    this.recent.push(rec);
    if (this.recent.length > 200) this.recent.shift();
  }
}

export interface Target {
  readonly server: EscalationServer;
  readonly session: EscalationSession;
  readonly log: LogCapture;
  /** Every protocolError the server reported (not rate-limited), and every decision. */
  readonly events: { rejected: number; decided: number };
  /** Open fds when idle; call rebaseline() after opening long-lived fds of your own (e.g. an FdFactory). */
  baselineFds: number;
  rebaseline(): void;
  close(): Promise<void>;
}

/** A server + session in this process, warmed up, with its fd baseline taken. */
export async function startTarget(opts: Partial<EscalationServerOptions> & { delayMs?: number } = {}): Promise<Target> {
  const log = new LogCapture();
  const events = { rejected: 0, decided: 0 };
  const server = new EscalationServer({
    policy: hardeningPolicy({ delayMs: opts.delayMs ?? 0 }),
    logger: pino({ level: 'info', base: null }, { write: (s: string) => log.write(s) }),
    frameTimeoutMs: 500,
    terminateGraceMs: 200,
    ...opts,
    observer: {
      protocolError: () => void events.rejected++,
      decided: () => void events.decided++,
    },
  });
  const session = await server.startSession();
  // Warm up lazily-opened resources (zod, pino, the policy path) before measuring fds.
  for (const p of [ECHO_PROGRAM, TRUE_PROGRAM]) await probe(session, p);
  await sleep(20);
  const baselineFds = countOpenFds();
  const t: Target = {
    server,
    session,
    log,
    events,
    baselineFds,
    rebaseline: () => void (t.baselineFds = countOpenFds()),
    close: () => server.close(),
  };
  return t;
}

export const probeRequest = (program: string, arg = 'probe') => ({ file: program, argv: [path.basename(program), arg], workdir: process.cwd(), env: { PATH: '/usr/bin:/bin' } });

export interface ProbeResult {
  ok: boolean;
  /** Request sent → decision received. */
  latencyMs: number;
  detail: string;
}

/**
 * A correct request: decided as the policy says? For an Escalate the whole
 * exchange is completed (fds forwarded, exit status 0 received).
 */
export async function probe(session: EscalationSession, program: string, arg = 'probe'): Promise<ProbeResult> {
  const client = RawClient.connect(session.clientFd);
  const req = probeRequest(program, arg);
  try {
    const t0 = performance.now();
    client.send(req);
    const reply = await client.receive(5000);
    const latencyMs = performance.now() - t0;
    const want = expectedWire({ program, argv: req.argv });
    if (JSON.stringify(reply) !== JSON.stringify(want)) return { ok: false, latencyMs, detail: `got ${JSON.stringify(reply)}, want ${JSON.stringify(want)}` };
    if (want && (want as { action: unknown }).action === 'Escalate') {
      const devnull = openSync('/dev/null', 'r+');
      try {
        client.send({ fds: [0, 1, 2] }, [devnull, devnull, devnull]);
      } finally {
        closeFd(devnull);
      }
      const result = await client.receive(5000);
      if (JSON.stringify(result) !== '{"exit_code":0}') return { ok: false, latencyMs, detail: `escalated result ${JSON.stringify(result)}` };
    }
    return { ok: true, latencyMs, detail: '' };
  } catch (err) {
    return { ok: false, latencyMs: Infinity, detail: String((err as Error).message) };
  } finally {
    client.close();
  }
}

/** Wait until the process's fd count is back to `baseline` (every hostile connection released). */
export async function settleFds(baseline: number, timeoutMs = 5000): Promise<{ ok: boolean; fds: number; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const fds = countOpenFds();
    if (fds <= baseline) return { ok: true, fds, waitedMs: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs) return { ok: false, fds, waitedMs: Date.now() - t0 };
    await sleep(5);
  }
}

let gcFn: (() => void) | undefined;
/** Heap in use after a full GC (exposes gc at runtime so `tsx` needs no flags). */
export function heapAfterGc(): number {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
  return process.memoryUsage().heapUsed;
}

/**
 * The rejection log is rate-limited (20 lines/s plus a `suppressed` count on
 * the next line). After a quiet second one more rejection flushes the count:
 * lines + suppressed must then equal every rejection the server saw.
 */
export async function checkRejectionAccounting(t: Target): Promise<{ ok: boolean; rejected: number; lines: number; suppressed: number }> {
  await sleep(1100);
  await sendDatagram(t.session.clientFd, Buffer.alloc(0), []); // one more bad input: flushes the suppressed count
  const deadline = Date.now() + 2000;
  const want = t.events.rejected + 1;
  while (t.events.rejected < want && Date.now() < deadline) await sleep(5);
  const lines = t.log.rejectedLines + t.log.spawnErrorLines;
  const ok = lines + t.log.suppressedSum === t.events.rejected;
  return { ok, rejected: t.events.rejected, lines, suppressed: t.log.suppressedSum };
}

// ---------------------------------------------------------------------------
// Hostile fds and clients

export type FdKind = 'stream' | 'dgram' | 'pipe' | 'file' | 'listen' | 'devnull';
export const FD_KINDS: readonly FdKind[] = ['stream', 'dgram', 'pipe', 'file', 'listen', 'devnull'];

/** Makes fds of every kind a sandbox could send; close() releases what it keeps. */
export class FdFactory {
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'cse-fuzz-'));
  private readonly fifo = path.join(this.dir, 'fifo');
  private readonly listener: net.Server;
  private listenFd = -1;

  private constructor() {
    execFileSync('mkfifo', [this.fifo]);
    this.listener = net.createServer();
  }

  static async create(): Promise<FdFactory> {
    const f = new FdFactory();
    await new Promise<void>((resolve) => f.listener.listen(path.join(f.dir, 'sock'), resolve));
    // The listening socket's own fd: sending it hands the server a socket that accepts, never a stream peer.
    f.listenFd = (f.listener as unknown as { _handle: { fd: number } })._handle.fd;
    return f;
  }

  /** Open one fd of this kind; the caller closes it (the kernel keeps its own reference for an in-flight send). */
  open(kind: FdKind): Fd {
    switch (kind) {
      case 'stream':
      case 'dgram': {
        const [a, b] = socketPair(kind);
        closeFd(b);
        return a;
      }
      case 'pipe':
        // O_RDWR on a FIFO never blocks and yields a pipe fd.
        return openSync(this.fifo, fsConstants.O_RDWR);
      case 'file':
        return openSync(path.join(this.dir, 'file'), 'a+');
      case 'listen':
        return dupSocket(this.listenFd);
      case 'devnull':
        return openSync('/dev/null', 'r+');
    }
  }

  close(): void {
    this.listener.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A second reference to a socket fd (sockets cannot be re-opened through /proc): send it to ourselves. */
function dupSocket(fd: Fd): Fd {
  const [a, b] = socketPair('dgram');
  try {
    if (sendMsg(a, Buffer.of(0), [fd]) !== 1) throw new Error('dup via SCM_RIGHTS failed');
    const got = recvMsg(b, 1, 1);
    if (got === 'again' || got === 'eof' || got.fds.length !== 1) throw new Error('dup via SCM_RIGHTS failed');
    return got.fds[0]!;
  } finally {
    closeFd(a);
    closeFd(b);
  }
}

/** Send one datagram on the session socket, waiting (without blocking the event loop: the server may live in this process) while its queue is full. */
export async function sendDatagram(dgramFd: Fd, bytes: Buffer, fds: readonly Fd[]): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    const n = sendMsg(dgramFd, bytes, fds);
    if (n !== 'again') return;
    await sleep(i < 10 ? 0 : 1);
  }
  throw new Error('datagram queue stayed full');
}

/** Open a private stream to the server (handshake done); returns our end, non-blocking. */
export async function connectStream(dgramFd: Fd): Promise<Fd> {
  const [mine, theirs] = socketPair('stream', { cloexec: true, nonblock: true });
  try {
    await sendDatagram(dgramFd, Buffer.of(0), [theirs]);
  } finally {
    closeFd(theirs);
  }
  return mine;
}

/** Write all bytes (fds on the first byte), waiting while the socket buffer is full. */
export async function writeAll(fd: Fd, bytes: Buffer, fds: readonly Fd[] = []): Promise<boolean> {
  let off = 0;
  let idle = 0;
  while (off < bytes.length) {
    let n: number | 'again';
    try {
      n = sendMsg(fd, bytes.subarray(off), off === 0 ? fds : []);
    } catch {
      return false; // the server hung up on us (EPIPE): expected for rejected input
    }
    if (n === 'again') {
      if (++idle > 5000) return false;
      await sleep(1);
      continue;
    }
    idle = 0;
    off += n;
  }
  return true;
}

/** One stream input: chunks (each with its fds) written in order, then our end closed (EOF) unless keepOpen. */
export interface StreamChunk {
  readonly bytes: Buffer;
  readonly fds?: readonly FdKind[];
  /** Wait for the server's next frame before sending this chunk (to reach the escalation phase). */
  readonly afterReply?: boolean;
}

export async function runStreamInput(t: Target, fdf: FdFactory, chunks: readonly StreamChunk[]): Promise<void> {
  const fd = await connectStream(t.session.clientFd);
  try {
    for (const c of chunks) {
      if (c.afterReply && !(await awaitBytes(fd, 2000))) break;
      const fds = (c.fds ?? []).map((k) => fdf.open(k));
      try {
        if (c.bytes.length === 0) continue;
        if (!(await writeAll(fd, c.bytes, fds))) break;
      } finally {
        for (const f of fds) closeFd(f);
      }
    }
  } finally {
    closeFd(fd);
  }
}

/** Wait until the server has written something (or hung up); drains it. */
async function awaitBytes(fd: Fd, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = recvMsg(fd, 65536, 16);
    if (got === 'eof') return false;
    if (got !== 'again') {
      for (const f of got.fds) closeFd(f);
      return true;
    }
    await sleep(1);
  }
  return false;
}

export async function runDatagramInput(t: Target, fdf: FdFactory, bytes: Buffer, kinds: readonly FdKind[]): Promise<void> {
  const fds = kinds.map((k) => fdf.open(k));
  try {
    await sendDatagram(t.session.clientFd, bytes, fds);
  } finally {
    for (const f of fds) closeFd(f);
  }
}

/** A frame with an arbitrary payload (no JSON involved). */
export function rawFrame(payload: Buffer | string, length?: number): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const f = Buffer.alloc(4 + body.length);
  f.writeUInt32LE(length ?? body.length, 0);
  body.copy(f, 4);
  return f;
}

export { encodeFrame };

/** Flags of one of our fds as the kernel reports them (/proc/self/fdinfo), e.g. to see O_NONBLOCK. */
export function fdFlags(fd: Fd): number {
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const m = /flags:\s*([0-7]+)/.exec(info);
  if (!m) throw new Error(`no flags for fd ${fd}`);
  return parseInt(m[1]!, 8);
}

/** Percentile of a sorted-in-place sample. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]!;
}
