/**
 * Repeated Run decisions answered without JavaScript (issue 17).
 *
 * A session's handshake socket is served by a native thread (native/fast-path.c).
 * When a request arrives that is byte for byte one this session already decided
 * Run — the same request frame, the same program by the kernel's path of its
 * O_PATH fd — under the same rules, the thread answers it with the same reply
 * and records a hit; everything else reaches JS exactly as before. There is no
 * second matcher: a hit replays a decision JS took for identical input, and the
 * table is remembered only from decisions that read nothing else:
 *   - the policy says so (`EscalationPolicy.repeatable`: no hooks, rules whose
 *     changes it reports) and the decision was synchronous (no approver);
 *   - a plain Run (no rewrite) for our wrapper (ext >= 2, the program fd
 *     attached) and, with direct execs, with its exec filter's listener
 *     attached and kept (a hit hands the new listener to the hub; a request
 *     that needs a grant, a nested wrapper's, is always decided in JS);
 *   - the rules in force have not changed since: a change clears the table
 *     before anything decides under the new rules.
 * Hits are handed back in batches (within 50 ms; within 1 ms when one carries
 * a listener, whose program's own execs wait until the hub watches it) and
 * logged like any decision (a new request id, the latency the thread measured).
 */
import { FastPath, type Fd, type Received } from '../native/index.js';
import { HANDSHAKE_BYTE, MAX_FDS_PER_MESSAGE } from '../protocol/constants.js';
import type { Action } from '../protocol/wire.js';
import type { PolicyDecision, RepeatableDecisions } from '../policy/types.js';
import type { ResolvedRequest } from './resolve-request.js';
import { closeQuietly } from './owned-fds.js';

/** What a hit is logged and reported as: the decision it repeats. */
export interface RememberedDecision {
  readonly request: ResolvedRequest;
  readonly action: Extract<Action, { kind: 'run' }>;
  readonly decision: PolicyDecision;
  readonly auditArgv: Record<string, unknown> | undefined;
}

export interface FastPathHandlers {
  /** A handshake's connection the thread did not answer: serve it as usual. */
  connection(fd: Fd): void;
  /** A datagram that is not a plain handshake: judge it as usual. */
  datagram(got: Received): void;
  /**
   * A request answered by the thread (undefined: its template is gone, which should not happen; log it anyway),
   * with the exec filter's listener it carried (the reply said it is kept: the hub must watch it).
   */
  hit(remembered: RememberedDecision | undefined, latencyUs: number, listener: Fd | undefined): void;
}

/** Templates of a cleared table stay this long, for a hit that was being answered while it was cleared. */
const RETIRED_MS = 5000;
/** What the native table takes (native/fast-path.c MAX_PAYLOAD, reply buffer, PATH_MAX): larger ones are never remembered. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_REPLY_BYTES = 512;
const MAX_PROGRAM_BYTES = 4095;

export class SessionFastPath {
  readonly #native: FastPath;
  readonly #handlers: FastPathHandlers;
  readonly #unsubscribe: () => void;
  #generation: number;
  #nextId = 1;
  #templates = new Map<number, RememberedDecision>();
  #retired = new Map<number, RememberedDecision>();
  #retiredAt = 0;
  #closed = false;

  constructor(serverFd: Fd, repeatable: RepeatableDecisions, opts: { maxPending: number }, handlers: FastPathHandlers) {
    this.#handlers = handlers;
    this.#native = new FastPath(serverFd, { handshakeByte: HANDSHAKE_BYTE, maxFds: MAX_FDS_PER_MESSAGE, maxPending: opts.maxPending }, () => this.drain());
    this.#generation = this.#native.generation();
    try {
      this.#unsubscribe = repeatable.onChange(() => this.forget());
    } catch (err) {
      this.#native.close();
      throw err;
    }
  }

  /** The table's generation now: pass it to remember() for a decision taken now. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Answer `payload` for `program` with `reply` from now on. `generation` is
   * the one read before deciding: a decision taken under rules that have
   * changed since is not remembered.
   */
  remember(program: Buffer, payload: Buffer, reply: Buffer, fds: 1 | 2, generation: number, remembered: RememberedDecision): void {
    if (this.#closed || generation !== this.#generation) return;
    // (A payload parsed in the worker was handed over to it: empty here, never remembered.)
    if (payload.length === 0 || payload.length > MAX_PAYLOAD_BYTES || reply.length > MAX_REPLY_BYTES || program.length > MAX_PROGRAM_BYTES) return;
    let id = this.#take();
    let taken = this.#native.remember(program, payload, reply, id, generation, fds);
    if (taken === 0) {
      // Full (4096 requests or 8 MiB): start over rather than stop remembering.
      this.forget();
      id = this.#take();
      taken = this.#native.remember(program, payload, reply, id, this.#generation, fds);
    }
    if (taken === 1) this.#templates.set(id, remembered);
  }

  #take(): number {
    const id = this.#nextId++;
    if (this.#nextId > 0xffff_fff0) this.#nextId = 1;
    return id;
  }

  /**
   * Forget everything remembered (the rules changed, or the table is full). No
   * JS runs here (it may be called from inside a decision); hits still queued
   * find their templates among the retired ones.
   */
  forget(): void {
    if (this.#closed) return;
    this.#generation = this.#native.clear();
    for (const [id, t] of this.#templates) this.#retired.set(id, t);
    this.#retiredAt = Date.now();
    this.#templates = new Map();
  }

  /** Best effort: a thread that may not be raised keeps its priority. */
  setNice(nice: number): void {
    try {
      this.#native.setNice(nice);
    } catch {
      // EACCES/EPERM: not permitted here
    }
  }

  get stats(): { hits: number; misses: number; entries: number } {
    return this.#native.stats();
  }

  /** Hand everything the thread queued to the handlers, in arrival order. */
  drain(): void {
    const events = this.#native.take();
    let i = 0;
    try {
      for (; i < events.length; i++) this.#dispatch(events[i]!);
    } finally {
      // A handler threw: the rest still gets its fds closed (those wrappers fail closed).
      for (i++; i < events.length; i++) {
        const ev = events[i]!;
        if (ev.kind === 'connection') closeQuietly(ev.fd);
        else if (ev.kind === 'datagram') for (const fd of ev.fds) closeQuietly(fd);
        else if (ev.listener !== undefined) closeQuietly(ev.listener);
      }
    }
    if (this.#retired.size > 0 && Date.now() - this.#retiredAt > RETIRED_MS) this.#retired = new Map();
  }

  /**
   * Stop the thread (joined before this returns), report the hits it queued,
   * close the connections it had not handed over yet. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#native.close();
    for (const ev of this.#native.take()) {
      if (ev.kind === 'hit') this.#hit(ev.id, ev.latencyUs, ev.listener);
      else if (ev.kind === 'connection') closeQuietly(ev.fd);
      else for (const fd of ev.fds) closeQuietly(fd);
    }
    this.#native.clear();
    this.#templates.clear();
    this.#retired.clear();
  }

  #dispatch(ev: ReturnType<FastPath['take']>[number]): void {
    switch (ev.kind) {
      case 'hit':
        this.#hit(ev.id, ev.latencyUs, ev.listener);
        return;
      case 'connection':
        this.#handlers.connection(ev.fd);
        return;
      case 'datagram':
        this.#handlers.datagram({ bytes: ev.bytes, fds: ev.fds, truncated: ev.truncated, controlTruncated: ev.controlTruncated });
        return;
    }
  }

  #hit(id: number, latencyUs: number, listener: Fd | undefined): void {
    // Every id the thread answers with was set here before it could be answered, and stays for RETIRED_MS after a clear.
    this.#handlers.hit(this.#templates.get(id) ?? this.#retired.get(id), latencyUs, listener);
  }
}
