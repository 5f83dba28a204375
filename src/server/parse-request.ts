import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseJsonPayload, ProtocolError } from '../protocol/codec.js';
import type { EscalateRequest } from '../protocol/messages.js';
import { loadSchemas, schemasIfLoaded } from '../protocol/lazy-schemas.js';
import { precheckRequest, validRequestShape } from '../protocol/wire.js';
import { packageRoot } from '../paths.js';
import { boundedList } from './audit-log.js';

/**
 * Turning a request frame into a validated request. The server has one event
 * loop for every session, and a 16 MiB frame takes hundreds of milliseconds
 * to decode, bound-check and validate: frames up to OFF_LOOP_BYTES (every
 * ordinary exec) are decoded inline, larger ones in a worker thread, so one
 * session's huge frames never hold up another's decisions. What a worker
 * finds out of bounds costs the loop nothing; what it accepts comes back
 * with the audit line's argv already bounded.
 */

/** Frames up to this size (every ordinary exec) are decoded on the loop: under a millisecond even when packed with tiny elements. */
export const OFF_LOOP_BYTES = 16 * 1024;
/** Large frames one session may have waiting for the worker (4 maximal frames); more are refused at once. */
export const MAX_QUEUED_BYTES_PER_SESSION = 64 * 1024 * 1024;
/** An idle worker is stopped after this long (its thread, fds and heap are only held while large frames arrive). */
const WORKER_IDLE_MS = 500;
/** A worker that has not answered by then is replaced, and its request denied. */
const WORKER_TIMEOUT_MS = 10_000;
const MAX_REASON_CHARS = 1024;

export interface ParsedRequest {
  readonly request: EscalateRequest;
  /** The audit line's argv fields, when computed off the loop. */
  readonly auditArgv?: Record<string, unknown>;
}

/** A reason or error as it goes into a Deny or a log line: at most MAX_REASON_CHARS. */
export function clipReason(s: string): string {
  return s.length <= MAX_REASON_CHARS ? s : `${s.slice(0, MAX_REASON_CHARS)}…`;
}

/**
 * Decode, bound-check (before the schema walks millions of elements) and validate one frame. Throws (or rejects
 * with) ProtocolError. Synchronous for every request the zod-free checks accept; the schema, loaded on first need,
 * judges the rest (a malformed request: a promise, until zod is loaded).
 */
export function decodeRequest(payload: Buffer): EscalateRequest | Promise<EscalateRequest> {
  const raw = parseJsonPayload(payload);
  const early = precheckRequest(raw);
  if (early) throw new ProtocolError(early);
  // The pre-check has validated every argv and env element by the schema's own rules (one tight loop); the schema
  // then checks the shape with the lists emptied, since its per-element cost (~0.2 µs each, far more per env
  // entry) is what made a 64 KiB frame of tiny elements cost ~10 ms. Equivalence: test/unit/boundary-logic.test.ts.
  const { argv, env } = isPlainRecord(raw) ? raw : {};
  const shallow = Array.isArray(argv) && isPlainRecord(env);
  if (shallow) {
    // The common case without zod; anything it does not accept goes to the schema for the message.
    const fast = validRequestShape(raw as Record<string, unknown>, argv as string[], env as Record<string, string>);
    if (fast) return fast;
  }
  const bySchema = ({ EscalateRequestSchema }: Awaited<ReturnType<typeof loadSchemas>>): EscalateRequest => {
    const parsed = EscalateRequestSchema.safeParse(shallow ? { ...(raw as object), argv: [], env: {} } : raw);
    if (parsed.success && shallow) return { ...parsed.data, argv: argv as string[], env: env as Record<string, string> };
    if (!parsed.success) {
      const issues = parsed.error.issues;
      const shown = issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      if (issues.length > 3) shown.push(`… ${issues.length - 3} more`);
      throw new ProtocolError(clipReason(`invalid request: ${shown.join('; ')}`));
    }
    return parsed.data;
  };
  const schemas = schemasIfLoaded();
  if (schemas) return bySchema(schemas);
  return loadSchemas().then(bySchema, (err: unknown) => {
    throw new ProtocolError(clipReason(`request schema unavailable: ${(err as Error)?.message ?? String(err)}`), { cause: err });
  });
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What the worker does with one frame (also its whole protocol). */
export async function decodeForWorker(payload: Buffer): Promise<{ ok: true; request: EscalateRequest; auditArgv: Record<string, unknown> } | { ok: false; error: string }> {
  try {
    const request = await decodeRequest(payload);
    return { ok: true, request, auditArgv: boundedList('argv', request.argv) };
  } catch (err) {
    return { ok: false, error: err instanceof ProtocolError ? err.message : clipReason(`request parser failed: ${(err as Error)?.message ?? String(err)}`) };
  }
}

interface Job {
  readonly key: string;
  readonly payload: Buffer;
  /** payload.length at queueing (the buffer reads as empty once transferred). */
  readonly bytes: number;
  resolve(r: ParsedRequest): void;
  reject(e: Error): void;
}

type WorkerReply = { ok: true; request: EscalateRequest; auditArgv: Record<string, unknown> } | { ok: false; error: string };

/** The compiled worker: next to this module in dist/, or dist/ itself when this module runs from src/ (tests). */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = path.join(path.dirname(here), 'parse-worker.js');
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  return path.join(packageRoot, 'dist', 'server', 'parse-worker.js');
}

/**
 * One worker, one frame at a time, sessions served round-robin (a session
 * flooding huge frames waits behind itself, not others). Any worker failure
 * or timeout denies the request in hand and starts a fresh worker.
 */
export class OffLoopParser {
  private worker: Worker | null = null;
  private current: Job | null = null;
  private timer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly queues = new Map<string, Job[]>();
  private readonly queuedBytes = new Map<string, number>();

  parse(payload: Buffer, key: string): Promise<ParsedRequest> {
    const queued = this.queuedBytes.get(key) ?? 0;
    if (queued + payload.length > MAX_QUEUED_BYTES_PER_SESSION) {
      return Promise.reject(new ProtocolError(`request refused: ${queued} bytes of large requests from this session are already waiting to be parsed (limit ${MAX_QUEUED_BYTES_PER_SESSION})`));
    }
    return new Promise<ParsedRequest>((resolve, reject) => {
      this.queuedBytes.set(key, queued + payload.length);
      const queue = this.queues.get(key);
      const job = { key, payload, bytes: payload.length, resolve, reject };
      if (queue) queue.push(job);
      else this.queues.set(key, [job]);
      this.next();
    });
  }

  /** Stop the worker (pending requests are denied). */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const w = this.worker;
    this.worker = null;
    this.fail(new ProtocolError('request parser stopped'));
    for (const [key, jobs] of this.queues) for (const j of jobs) this.settle(j, key, () => j.reject(new ProtocolError('request parser stopped')));
    this.queues.clear();
    await w?.terminate();
  }

  private next(): void {
    if (this.current) return;
    const first = this.queues.entries().next();
    if (first.done) {
      this.idleSoon();
      return;
    }
    clearTimeout(this.idleTimer);
    const [key, jobs] = first.value;
    const job = jobs.shift()!;
    this.queues.delete(key);
    if (jobs.length) this.queues.set(key, jobs); // to the back of the line
    this.current = job;
    let worker: Worker;
    try {
      worker = this.ensureWorker();
    } catch (err) {
      this.fail(new ProtocolError(clipReason(`request parser unavailable: ${(err as Error).message}`), { cause: err }));
      this.next(); // deny the rest the same way, each with the reason
      return;
    }
    const p = job.payload;
    // Hand the bytes over without a copy when the frame owns its whole ArrayBuffer (it does: the reader allocates one per frame).
    const owned = p.byteOffset === 0 && p.byteLength === p.buffer.byteLength && p.buffer instanceof ArrayBuffer;
    const buf = owned ? (p.buffer as ArrayBuffer) : p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength);
    this.timer = setTimeout(() => {
      this.restart(new ProtocolError(`request parser gave no answer within ${WORKER_TIMEOUT_MS} ms`));
    }, WORKER_TIMEOUT_MS);
    this.timer.unref();
    worker.ref(); // a request in hand keeps the process alive until it is answered
    worker.postMessage({ buf }, [buf as ArrayBuffer]);
  }

  private idleSoon(): void {
    clearTimeout(this.idleTimer);
    if (!this.worker) return;
    this.idleTimer = setTimeout(() => {
      const w = this.worker;
      if (!w || this.current || this.queues.size) return;
      this.worker = null;
      void w.terminate();
    }, WORKER_IDLE_MS);
    this.idleTimer.unref();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const file = workerFile();
    if (!existsSync(file)) throw new Error(`${file} is missing (run "npx tsc -p tsconfig.build.json")`);
    // Bounded heap: a frame built to exhaust memory kills the worker (its request is denied), not the server.
    const w = new Worker(file, { resourceLimits: { maxOldGenerationSizeMb: 512 } });
    w.on('message', (reply: WorkerReply) => this.answered(w, reply));
    w.on('error', (err) => this.crashed(w, err));
    w.on('exit', (code) => this.crashed(w, new Error(`exited with code ${code}`)));
    // After the listeners (adding a 'message' listener refs the port again): an idle parser must not keep the process alive.
    w.unref();
    this.worker = w;
    return w;
  }

  private answered(w: Worker, reply: WorkerReply): void {
    if (w !== this.worker) return;
    const job = this.current;
    if (!job) return;
    clearTimeout(this.timer);
    this.current = null;
    this.settle(job, job.key, () => {
      if (reply.ok) job.resolve({ request: reply.request, auditArgv: reply.auditArgv });
      else job.reject(new ProtocolError(reply.error));
    });
    w.unref();
    this.next();
  }

  private crashed(w: Worker, err: Error): void {
    if (w !== this.worker) return;
    this.worker = null;
    this.fail(new ProtocolError(clipReason(`request parser failed: ${err.message}`), { cause: err }));
    this.next();
  }

  private restart(err: Error): void {
    const w = this.worker;
    this.worker = null;
    void w?.terminate();
    this.fail(err);
    this.next();
  }

  /** Deny the request in hand. */
  private fail(err: Error): void {
    clearTimeout(this.timer);
    const job = this.current;
    this.current = null;
    if (job) this.settle(job, job.key, () => job.reject(err));
  }

  private settle(job: Job, key: string, fn: () => void): void {
    const left = (this.queuedBytes.get(key) ?? 0) - job.bytes;
    if (left > 0) this.queuedBytes.set(key, left);
    else this.queuedBytes.delete(key);
    fn();
  }
}

let shared: OffLoopParser | undefined;

/**
 * Parse a request frame: inline (synchronously: no promise on the hot path, and it throws) when small, in the
 * shared worker when large. `key` groups requests for fairness (the session id).
 */
export function parseRequest(payload: Buffer, key: string): ParsedRequest | Promise<ParsedRequest> {
  if (payload.length <= OFF_LOOP_BYTES) {
    const decoded = decodeRequest(payload);
    return decoded instanceof Promise ? decoded.then((request) => ({ request })) : { request: decoded };
  }
  shared ??= new OffLoopParser();
  return shared.parse(payload, key);
}
