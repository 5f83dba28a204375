import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readlinkSync, statSync } from 'node:fs';
import { ByteBudget, encodeFrame, ProtocolError, wireStringToBytes } from '../protocol/codec.js';
import {
  DIRECT_EXECS_ENV_VAR,
  ESCALATE_SOCKET_ENV_VAR,
  EXEC_WRAPPER_ENV_VAR,
  HANDSHAKE_BYTE,
  MAX_FDS_PER_MESSAGE,
  EXT_EXEC_LISTENER,
  EXT_PROGRAM_FD,
  MAX_FRAME_BYTES,
  SHELL_SOCKET_FD,
} from '../protocol/constants.js';
import { loadSchemas } from '../protocol/lazy-schemas.js';
import { LISTENER_FRAME_PAYLOAD, toWireResponse, type Action } from '../protocol/wire.js';
import { DirectExecs, fileId, type FileId } from './direct-execs.js';
import type { EscalatedContainment } from '../sandbox/cgroup.js';
import { createEnvFilter, type EnvFilterOptions } from '../sandbox/escalation-env.js';
import type { GitSafeOptions } from '../sandbox/git-safe-mode.js';
import { prepareEscalation, type EscalationChecks, type EscalationPlan } from './escalation.js';
import { SpawningExecutor, type EscalationExecutor } from './executor.js';
import type { DecisionContext, EscalationPolicy, PolicyDecision } from '../policy/types.js';
import { peerCredentials, Poller, recvMsg, setNonblock, socketPair, type Fd, type Received } from '../native/index.js';
import { defaultWrapperPath } from '../paths.js';
import { findPatchedBash } from '../shell/patched-bash.js';
import { boundedList, boundedString, silentLogger, type AuditLogger } from './audit-log.js';
import { clipReason, parseRequest } from './parse-request.js';
import { RateLimiter } from './rate-limit.js';
import { resolveRequest, type ResolvedRequest } from './resolve-request.js';
import { ChannelClosedError, StreamChannel } from './stream-channel.js';
import { closeQuietly, OwnedFds } from './owned-fds.js';
import { SessionFastPath, type RememberedDecision } from './fast-path.js';

// Defined with the other wire constants; re-exported for existing importers.
export { ESCALATE_SHELL_ENV_VAR, SHELL_SOCKET_FD } from '../protocol/constants.js';

export interface DecisionRecord {
  readonly request: ResolvedRequest;
  readonly action: Action;
  /** Request received → response written, in microseconds. */
  readonly latencyUs: number;
  readonly decision: PolicyDecision;
}

export interface EscalatedExitRecord {
  readonly request: ResolvedRequest;
  readonly exitCode: number;
  readonly signal: number | null;
  readonly durationMs: number;
}

/** Callbacks for lifecycle events (hooks, metrics). Errors they throw are logged, never fatal. */
export interface ServerObserver {
  sessionStarted?(session: EscalationSession): void | Promise<void>;
  decided?(record: DecisionRecord): void;
  escalatedExited?(record: EscalatedExitRecord): void;
  protocolError?(info: { sessionId: string; error: string }): void;
  sessionEnded?(session: EscalationSession): void | Promise<void>;
}

export interface EscalationServerOptions {
  readonly policy: EscalationPolicy;
  /** Path of codex-execve-wrapper exported as EXEC_WRAPPER (default: the one built in this package). */
  readonly wrapperPath?: string;
  /** Shell for `#!`-less scripts (sent to our wrapper in each Run reply; default: the patched bash when found). */
  readonly shellPath?: string;
  readonly logger?: AuditLogger;
  readonly observer?: ServerObserver;
  /** How long a wrapper may take to send a whole frame (default 10 s). */
  readonly frameTimeoutMs?: number;
  /** In-flight connections per session before new ones are refused (default 1024). */
  readonly maxConnectionsPerSession?: number;
  /** Grace between SIGTERM and SIGKILL when ending escalated commands (default 1000 ms). */
  readonly terminateGraceMs?: number;
  /** Which environment variables may cross out of the sandbox (an allow list; see sandbox/escalation-env.ts). */
  readonly escalationEnv?: EnvFilterOptions;
  /** Check that a request's workdir is the requesting process's real cwd before escalating (default true). */
  readonly verifyWorkdir?: boolean;
  /** Git safe mode for escalated git (see sandbox/git-safe-mode.ts); absent = off. */
  readonly gitSafe?: GitSafeOptions;
  /** Bytes of half-received frames one session may buffer at once (default 64 MiB; one frame may be up to 16 MiB). */
  readonly sessionFrameBudgetBytes?: number;
  /**
   * Where a session's escalated commands live (see src/sandbox/cgroup.ts): they join its cgroup before exec,
   * and whatever of them is left when the session ends is killed. Default: none (process group only).
   */
  readonly containment?: (sessionId: string) => EscalatedContainment | undefined;
  /**
   * Decide the execs Run'd programs make themselves (layer 2, docs/protocol.md "Direct execs"): each Run
   * reply asks the wrapper for the seccomp exec filter. Default false; the CLI turns it on where it works.
   */
  readonly directExecs?: boolean;
  /** Called with a direct exec's Deny line when the process's stderr is not this process's own (so the user sees why). */
  readonly directDenialEcho?: (line: string) => void;
  /**
   * Answer byte-identical repeats of a Run request on a native thread, without JS (src/server/fast-path.ts).
   * Only where it cannot change a decision: a policy that is `repeatable` (no hooks). Default false.
   */
  readonly fastPath?: boolean;
}

/**
 * Raise the calling (event-loop) thread's scheduling priority by `steps`
 * nice levels when the OS allows it (root or CAP_SYS_NICE). Decisions are on
 * the critical path of every exec: under load they should not queue behind
 * the very workload they serve. Returns the nice value escalated commands
 * must get back, or undefined when nothing changed. Call after spawning the
 * shell (children inherit the boosted value).
 */
export function boostServerPriority(server: EscalationServer, steps = 10): number | undefined {
  let base: number;
  let target: number;
  try {
    base = os.getPriority(0);
    target = Math.max(-20, base - steps);
    if (target === base) return undefined;
    os.setPriority(0, target);
  } catch {
    return undefined; // not permitted: run at the normal priority
  }
  server.escalatedNice = base;
  // The fast paths' threads answer most decisions: they go ahead of the workload too.
  server.boostFastPaths(target);
  return base;
}

const DEFAULT_SESSION_FRAME_BUDGET = 64 * 1024 * 1024;

/** The options a session works with, each default applied once (at server construction). */
export interface SessionSettings {
  readonly wrapperPath: string;
  readonly frameTimeoutMs: number;
  readonly maxConnectionsPerSession: number;
  readonly terminateGraceMs: number;
  readonly sessionFrameBudgetBytes: number;
  readonly escalationChecks: EscalationChecks;
  /** The shell for `#!`-less scripts; undefined: look for the patched bash when each session starts. */
  readonly shellPath: string | undefined;
  readonly containment: ((sessionId: string) => EscalatedContainment | undefined) | undefined;
  /** The wrapper binary by identity when direct execs are decided (its exec by a nested shell is a hop); undefined: off. */
  readonly directExecs: { readonly wrapper: FileId | undefined; readonly echo: ((line: string) => void) | undefined } | undefined;
  /** Repeated Run requests answered natively (see EscalationServerOptions.fastPath). */
  readonly fastPath: boolean;
}

function resolveSettings(options: EscalationServerOptions): SessionSettings {
  return {
    wrapperPath: options.wrapperPath ?? defaultWrapperPath(),
    frameTimeoutMs: options.frameTimeoutMs ?? 10_000,
    maxConnectionsPerSession: options.maxConnectionsPerSession ?? 1024,
    terminateGraceMs: options.terminateGraceMs ?? 1000,
    sessionFrameBudgetBytes: options.sessionFrameBudgetBytes ?? DEFAULT_SESSION_FRAME_BUDGET,
    escalationChecks: {
      verifyWorkdir: options.verifyWorkdir ?? true,
      filterEnv: createEnvFilter(options.escalationEnv),
      gitSafe: options.gitSafe,
      sandboxShell: options.shellPath !== undefined ? statId(options.shellPath) : undefined,
    },
    shellPath: options.shellPath,
    containment: options.containment,
    directExecs: options.directExecs ? { wrapper: statId(options.wrapperPath ?? defaultWrapperPath()), echo: options.directDenialEcho } : undefined,
    fastPath: options.fastPath === true,
  };
}

/** Only a seccomp listener joins the hub: anything else the sandbox might attach is refused. */
function isSeccompListener(fd: Fd): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:seccomp notify';
  } catch {
    return false;
  }
}

function statId(file: string): FileId | undefined {
  try {
    const st = statSync(file);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/**
 * What a session may use of its server: the policy, the log, the resolved
 * settings and a few callbacks. Narrow on purpose, so that a session (and a
 * second kind of channel later) cannot reach into the server's state.
 */
export interface SessionHost {
  readonly policy: EscalationPolicy;
  readonly logger: AuditLogger;
  readonly settings: SessionSettings;
  /** Nice value for escalated commands (see boostServerPriority); read at each spawn. */
  escalatedNice(): number | undefined;
  /** Nice value for fast-path threads, once boosted (see boostServerPriority). */
  fastPathNice(): number | undefined;
  nextRequestId(): string;
  /** Rate-limited: a flood of garbage yields a bounded number of lines. */
  rejected(sessionId: string, error: string): void;
  /** Run an observer callback; what it throws is logged, never fatal. */
  observe(fn: (observer: ServerObserver) => void): void;
  /** The session has ended: forget it and tell the observer. */
  ended(session: EscalationSession): Promise<void>;
}

/**
 * The escalation server: one per process is typical, with one session per
 * shell. Each session is a SOCK_DGRAM socket pair whose client end the shell
 * inherits; every wrapper sends a private SOCK_STREAM end over it.
 */
export class EscalationServer {
  readonly policy: EscalationPolicy;
  readonly logger: AuditLogger;
  readonly wrapperPath: string;
  /** Nice value for escalated commands when the server runs boosted (see boostServerPriority). */
  escalatedNice: number | undefined;
  readonly #sessions = new Set<EscalationSession>();
  #requestCounter = 0;
  readonly #rejectLog = new RateLimiter(20);
  readonly #host: SessionHost;
  #fastPathNice: number | undefined;

  constructor(readonly options: EscalationServerOptions) {
    this.policy = options.policy;
    this.logger = options.logger ?? silentLogger();
    const settings = resolveSettings(options);
    this.wrapperPath = settings.wrapperPath;
    this.#host = {
      policy: this.policy,
      logger: this.logger,
      settings,
      escalatedNice: () => this.escalatedNice,
      fastPathNice: () => this.#fastPathNice,
      nextRequestId: () => `r${++this.#requestCounter}`,
      rejected: (sessionId, error) => this.#logRejected(sessionId, error),
      observe: (fn) => this.#observe(fn),
      ended: async (session) => {
        this.#sessions.delete(session);
        await this.#notify('sessionEnded', session);
      },
    };
  }

  /** Open a session: spawn the shell with `session.env` merged in and `session.clientFd` as fd SHELL_SOCKET_FD, then call `session.shellSpawned()`. */
  async startSession(opts: { id?: string; cwd?: string } = {}): Promise<EscalationSession> {
    const session = new EscalationSession(this.#host, opts.id ?? randomUUID(), opts.cwd ?? process.cwd());
    this.#sessions.add(session);
    this.logger.info({ event: 'session_start', session: session.id, ...session.containmentInfo() }, 'session started');
    await this.#notify('sessionStarted', session);
    return session;
  }

  /** Run every session's fast-path thread, now and later, at this nice value (best effort: not permitted, unchanged). */
  boostFastPaths(nice: number): void {
    this.#fastPathNice = nice;
    for (const s of this.#sessions) s.setFastPathNice(nice);
  }

  get activeSessions(): number {
    return this.#sessions.size;
  }

  /** End every session (terminating escalated commands). */
  async close(): Promise<void> {
    await Promise.all([...this.#sessions].map((s) => s.end()));
  }

  #logRejected(sessionId: string, error: string): void {
    this.#observe((o) => o.protocolError?.({ sessionId, error }));
    const dropped = this.#rejectLog.take();
    if (dropped === null) return;
    this.logger.warn({ event: 'rejected', session: sessionId, error: clipReason(error), ...(dropped > 0 ? { suppressed: dropped } : {}) }, 'rejected client input');
  }

  async #notify(kind: 'sessionStarted' | 'sessionEnded', session: EscalationSession): Promise<void> {
    try {
      await this.options.observer?.[kind]?.(session);
    } catch (err) {
      this.logger.error({ event: 'observer_error', session: session.id, error: String(err) }, `${kind} observer failed`);
    }
  }

  #observe(fn: (observer: ServerObserver) => void): void {
    const observer = this.options.observer;
    if (!observer) return;
    try {
      fn(observer);
    } catch (err) {
      this.logger.error({ event: 'observer_error', error: String(err) }, 'observer failed');
    }
  }
}

/**
 * One shell's connection to the server: accepts each wrapper's private
 * connection (handshake), reads its request (framing), asks the policy
 * (decide) and replies; an approved escalation is handed to the executor
 * (dispatch).
 */
export class EscalationSession {
  /** Env overlay for the shell: CODEX_ESCALATE_SOCKET, EXEC_WRAPPER. */
  readonly env: Readonly<Record<string, string>>;
  /** The client end to hand to the shell as fd SHELL_SOCKET_FD; closed in this process by shellSpawned(). */
  readonly clientFd: Fd;
  readonly startedAt = Date.now();
  /** The shell our wrapper runs `#!`-less scripts with (undefined: the wrapper's default, /bin/bash). */
  readonly enoexecShell: string | undefined;
  /** The shell's exit status, when known (set by end()). */
  exitCode: number | undefined;
  readonly #host: SessionHost;
  readonly #serverFd: Fd;
  /** Who reads the handshake socket: the event loop, or the fast path's thread. */
  readonly #poller: Poller | undefined;
  readonly #fast: SessionFastPath | undefined;
  #clientOpen = true;
  #ended: Promise<void> | null = null;
  readonly #connections = new Set<StreamChannel>();
  readonly #executor: EscalationExecutor;
  readonly #abort = new AbortController();
  #decisions = 0;
  /** Bytes of half-received frames this session may hold at once (a sandbox cannot make the server allocate without bound). */
  readonly #frameBudget: ByteBudget;
  readonly #containment: EscalatedContainment | undefined;
  /** Layer 2: the listeners of this session's Run'd program trees (undefined: direct execs are not decided). */
  readonly #direct: DirectExecs | undefined;
  /** Encoded plain Run replies, by (extended, listener): the same bytes every time. */
  readonly #runFrames = new Map<number, Buffer>();

  /** Sessions are opened with EscalationServer.startSession(), which passes its host. */
  constructor(
    host: SessionHost,
    readonly id: string,
    /** The shell's working directory (hooks run there by default). */
    readonly cwd: string,
  ) {
    this.#host = host;
    const settings = host.settings;
    const [serverFd, clientFd] = socketPair('dgram', { cloexec: true, nonblock: true });
    // O_NONBLOCK lives on the shared file description: every wrapper must block on its send, not fail with EAGAIN.
    setNonblock(clientFd, false);
    this.#serverFd = serverFd;
    this.clientFd = clientFd;
    this.#frameBudget = new ByteBudget(settings.sessionFrameBudgetBytes);
    this.#containment = settings.containment?.(id);
    this.#executor = new SpawningExecutor({
      sessionId: id,
      logger: host.logger,
      frameTimeoutMs: settings.frameTimeoutMs,
      terminateGraceMs: settings.terminateGraceMs,
      containment: this.#containment,
      escalatedNice: host.escalatedNice,
      ending: () => this.#ended !== null,
      rejected: (error) => host.rejected(id, error),
      spawnFailed: (error) => host.observe((o) => o.protocolError?.({ sessionId: id, error })),
      exited: (record) => host.observe((o) => o.escalatedExited?.(record)),
    });
    // One listener per in-flight decision (up to maxConnectionsPerSession): not a leak, so no warning.
    setMaxListeners(0, this.#abort.signal);
    this.env = {
      [ESCALATE_SOCKET_ENV_VAR]: String(SHELL_SOCKET_FD),
      [EXEC_WRAPPER_ENV_VAR]: settings.wrapperPath,
      // A hint for the wrapper: attach the filter's listener to the request. "0", not unset, so a value
      // inherited from an enclosing session cannot stand.
      [DIRECT_EXECS_ENV_VAR]: settings.directExecs ? '1' : '0',
    };
    // Scripts without #! must run under the patched bash too, or their execs would escape interception.
    // Fixed here, per session: the wrapper learns it from our Run reply, never from the command's environment.
    const shell = settings.shellPath ?? findPatchedBash() ?? undefined;
    // The wrapper refuses a relative one (it would be resolved against each command's cwd).
    this.enoexecShell = shell === undefined ? undefined : path.resolve(shell);
    if (settings.directExecs) {
      this.#direct = new DirectExecs({
        sessionId: id,
        policy: host.policy,
        logger: host.logger,
        wrapper: settings.directExecs.wrapper,
        echo: settings.directExecs.echo,
        nextRequestId: () => host.nextRequestId(),
        signal: this.#abort.signal,
        decided: (request, decision, action, latencyUs) => {
          this.#decisions++;
          host.observe((o) => o.decided?.({ request, action: action === 'run' ? { kind: 'run' } : { kind: 'deny', reason: decision.reason ?? null }, latencyUs, decision }));
        },
      });
    }
    const repeatable = settings.fastPath ? host.policy.repeatable : undefined;
    if (repeatable) {
      this.#fast = new SessionFastPath(serverFd, repeatable, { maxPending: settings.maxConnectionsPerSession }, {
        connection: (fd) => this.#admit(fd),
        datagram: (got) => this.#accept(got),
        hit: (remembered, latencyUs, listener) => this.#repeated(remembered, latencyUs, listener),
      });
      const nice = host.fastPathNice();
      if (nice !== undefined) this.setFastPathNice(nice);
      return;
    }
    this.#poller = new Poller(serverFd, (err) => {
      if (err) {
        host.logger.error({ event: 'session_error', session: this.id, error: err.message }, 'escalation socket failed');
        return;
      }
      this.#drainHandshakes();
    });
    this.#poller.start({ readable: true });
  }

  /** The fast path's thread at this nice value (see boostServerPriority); not permitted: unchanged. */
  setFastPathNice(nice: number): void {
    this.#fast?.setNice(nice);
  }

  /** Requests answered by the fast path, and those it passed on, so far. */
  get fastPathStats(): { hits: number; misses: number; entries: number } | undefined {
    return this.#fast?.stats;
  }

  /** How this session's processes are contained (cgroup v2 or signals), for the audit log. */
  containmentInfo(): Record<string, unknown> {
    return this.#containment?.describe?.() ?? {};
  }

  /** Bytes of half-received frames this session holds right now (bounded by sessionFrameBudgetBytes). */
  get bufferedFrameBytes(): number {
    return this.#frameBudget.inUse;
  }

  /** Seccomp listeners this session holds (one per Run'd program tree still alive). */
  get listenerCount(): number {
    return this.#direct?.listenerCount ?? 0;
  }

  /** Number of decisions taken in this session so far. */
  get decisionCount(): number {
    return this.#decisions;
  }

  /** Call once the shell has been spawned: the shell holds the client end now, so ours must go (a dead shell must be seen as gone). */
  shellSpawned(): void {
    if (!this.#clientOpen) return;
    this.#clientOpen = false;
    closeQuietly(this.clientFd);
  }

  /** Close the session: no further requests, in-flight decisions aborted, escalated commands terminated. Idempotent. */
  end(opts: { exitCode?: number } = {}): Promise<void> {
    if (this.exitCode === undefined && opts.exitCode !== undefined) this.exitCode = opts.exitCode;
    this.#ended ??= this.#doEnd();
    return this.#ended;
  }

  async #doEnd(): Promise<void> {
    // What the shell left running goes first, while the socket still answers: it is ended, not refused.
    if (this.#containment?.endSandbox) await this.#containment.endSandbox();
    this.#abort.abort(new Error('session ended'));
    // The fast path's thread is joined first; the hits it answered are logged before session_end (their
    // listeners join the hub, which closes them next).
    this.#fast?.close();
    // Fail closed: with the listeners closed, the kernel fails every notified exec (ENOSYS).
    this.#direct?.close();
    this.#poller?.close();
    closeQuietly(this.#serverFd);
    this.shellSpawned();
    await this.#executor.terminateAll();
    // Descendants that left the leaders' process groups (setsid, double forks, nohup): the whole session cgroup.
    if (this.#containment) await this.#containment.end();
    for (const c of this.#connections) c.close();
    this.#connections.clear();
    this.#host.logger.info(
      { event: 'session_end', session: this.id, decisions: this.#decisions, exit_code: this.exitCode ?? null, duration_ms: Date.now() - this.startedAt },
      'session ended',
    );
    await this.#host.ended(this);
  }

  #drainHandshakes(): void {
    const host = this.#host;
    for (;;) {
      let got;
      try {
        // Ask for 2 bytes so an oversized datagram shows up as truncated.
        got = recvMsg(this.#serverFd, 2, MAX_FDS_PER_MESSAGE);
      } catch (err) {
        host.rejected(this.id, `recvmsg failed: ${(err as Error).message}`);
        return;
      }
      if (got === 'again' || got === 'eof') return;
      this.#accept(got);
    }
  }

  /** One datagram from the handshake socket: a valid handshake's connection is served, anything else refused. */
  #accept(got: Received): void {
    const received = new OwnedFds(got.fds);
    const valid = got.bytes.length === 1 && got.bytes[0] === HANDSHAKE_BYTE && !got.truncated && !got.controlTruncated && received.size === 1;
    if (!valid) {
      received.closeAll();
      this.#host.rejected(this.id, `bad handshake datagram: ${got.bytes.length}${got.truncated ? '+' : ''} bytes, ${got.fds.length}${got.controlTruncated ? '+' : ''} fds`);
      return;
    }
    this.#admit(received.takeAll()[0]!);
  }

  /** A handshake's connection: served, unless the session is ending or has too many in flight. */
  #admit(fd: Fd): void {
    const host = this.#host;
    const limit = host.settings.maxConnectionsPerSession;
    if (this.#ended || this.#connections.size >= limit) {
      closeQuietly(fd);
      host.rejected(this.id, this.#ended ? 'session ended' : `more than ${limit} connections in flight`);
      return;
    }
    void this.#serve(fd);
  }

  async #serve(fd: Fd): Promise<void> {
    // No O_NONBLOCK needed: every recv and send is MSG_DONTWAIT, and a poll (only if the request is not already there) sets it itself.
    const channel = new StreamChannel(fd, MAX_FRAME_BYTES, this.#frameBudget);
    this.#connections.add(channel);
    // The request's program fd, once resolved: ours until the connection is done.
    const held = new OwnedFds();
    try {
      await this.#handle(channel, held);
    } catch (err) {
      const msg = err instanceof ChannelClosedError || err instanceof ProtocolError ? err.message : String((err as Error)?.message ?? err);
      this.#host.rejected(this.id, msg);
    } finally {
      held.closeAll();
      channel.close();
      this.#connections.delete(channel);
    }
  }

  /** Read and resolve the request, decide, reply; dispatch an escalation to the executor. */
  async #handle(channel: StreamChannel, held: OwnedFds): Promise<void> {
    const host = this.#host;
    // From here to the reply without a single await when the request is already there (our wrapper writes it
    // before the handshake) and the decision is synchronous: under concurrency each request is answered before
    // the next is started, instead of all of them interleaving at every await.
    let ready;
    try {
      ready = channel.tryReadFrame();
    } catch (err) {
      // Before any fcntl or poll (both set O_NONBLOCK on the shared file description), a hostile sandbox could send
      // its terminal or a pipe it shares with the user's shell: the first recvmsg (MSG_DONTWAIT, which changes
      // nothing) refuses anything but a socket with ENOTSOCK, so no fstat is needed to find out.
      if ((err as NodeJS.ErrnoException).code === 'ENOTSOCK') throw new Error('unusable connection fd: connection fd is not a socket', { cause: err });
      throw err;
    }
    const frame = ready !== 'again' ? ready : await channel.readFrame(host.settings.frameTimeoutMs);
    const started = process.hrtime.bigint();
    const requestId = host.nextRequestId();

    let request: ResolvedRequest;
    let auditArgv: Record<string, unknown> | undefined;
    // The wrapper's O_PATH handle on the program (ext 2), never polled or fcntl'd: any fd type is safe there;
    // then, at ext 3, its exec filter's listener (checked below: only a seccomp listener is kept).
    const attached = new OwnedFds(frame.fds);
    // The listener rides on the request (DIRECT_EXECS_ENV_VAR): `held` owns it until it joins the hub.
    let listenerFd: Fd | undefined;
    try {
      if (attached.size > 2) throw new ProtocolError(`${attached.size} file descriptors attached to a request (at most 2)`);
      // Large frames are decoded off the event loop (see parse-request.ts).
      const parsing = parseRequest(frame.payload, this.id);
      const parsed = isPromiseLike(parsing) ? await parsing : parsing;
      if (this.#abort.signal.aborted) throw new ChannelClosedError('session ended');
      auditArgv = parsed.auditArgv;
      const [fd, second] = attached.takeAll(); // resolveRequest owns fd from here on
      if (second !== undefined) held.add((listenerFd = second));
      request = resolveRequest(parsed.request, { sessionId: this.id, requestId }, { peerFd: channel.fd, ...(fd !== undefined ? { attachedFd: fd } : {}) });
      if (request.programFd !== undefined) held.add(request.programFd);
      if (listenerFd !== undefined && (request.peerExtensions < EXT_EXEC_LISTENER || !isSeccompListener(listenerFd))) {
        throw new ProtocolError(`the second fd on a request must be an exec filter's listener (ext ${EXT_EXEC_LISTENER})`);
      }
    } catch (err) {
      attached.closeAll();
      // Tell the wrapper why before dropping it: it prints the reason and exits 126.
      const reason = clipReason((err as Error).message);
      await channel.writeFrame(encodeFrame(toWireResponse({ kind: 'deny', reason }))).catch(() => {});
      throw err;
    }

    // Read before deciding: a decision taken under rules that change meanwhile is not remembered.
    const generation = this.#fast?.generation;
    const deciding = this.#decide(request, channel);
    const synchronous = !isPromiseLike(deciding);
    const decision = isPromiseLike(deciding) ? await deciding : deciding;
    if (decision === null) return; // client went away while we decided
    let action = finalAction(decision, request);
    let plan: EscalationPlan | undefined;
    if (action.kind === 'escalate') {
      const prepared = prepareEscalation(request, decision, channel.fd, host.settings.escalationChecks);
      if (prepared.ok) plan = prepared.plan;
      else action = { kind: 'deny', reason: prepared.reason };
    }
    // Layer 2: a Run'd program runs under the exec filter. Its listener came with the request: it joins the
    // hub now (Escalate, Deny, or direct execs off: it is closed, and the reply says it was not kept).
    // Without one, a Run reply asks for it; the grant lets a nested wrapper's own exec through.
    let kept = false;
    if (listenerFd !== undefined) {
      held.take(listenerFd);
      kept = action.kind === 'run' && this.#direct !== undefined && this.#direct.adopt(listenerFd);
      if (!kept && (action.kind !== 'run' || this.#direct === undefined)) closeQuietly(listenerFd);
    }
    const grant =
      listenerFd === undefined && action.kind === 'run' && this.#direct && request.peerExtensions >= EXT_EXEC_LISTENER ? this.#grantFor(channel, request, action) : undefined;
    try {
      const writing = channel.writeFrameSoon(this.#responseFrame(action, request.peerExtensions, kept || grant !== undefined));
      if (writing) await writing;
    } catch (err) {
      plan?.release();
      if (grant) this.#direct?.revoke(grant.pid, grant.program);
      throw err;
    }
    const latencyUs = Number(process.hrtime.bigint() - started) / 1000;
    this.#decisions++;
    this.#logDecision(request, action, decision, auditArgv, latencyUs, plan);
    host.observe((o) => o.decided?.({ request, action, latencyUs, decision }));
    // The same bytes for the same program will get the same answer: let the fast path give it (see fast-path.ts).
    if (
      this.#fast !== undefined &&
      generation !== undefined &&
      synchronous &&
      action.kind === 'run' &&
      action.rewrite === undefined &&
      grant === undefined &&
      request.resolved &&
      request.programFd !== undefined &&
      request.peerExtensions >= EXT_PROGRAM_FD &&
      // The program's fd alone, or with a listener the hub kept (a hit hands its new one to the hub).
      (listenerFd === undefined ? frame.fds.length === 1 : kept && frame.fds.length === 2)
    ) {
      const { programFd: _fd, ...template } = request;
      const fds = listenerFd === undefined ? 1 : 2;
      this.#fast.remember(wireStringToBytes(request.program), frame.payload, this.#responseFrame(action, request.peerExtensions, kept), fds, generation, {
        request: template,
        action,
        decision,
        auditArgv,
      });
    }
    if (grant) {
      try {
        await this.#adoptListener(channel);
      } finally {
        this.#direct?.revoke(grant.pid, grant.program);
      }
    }
    if (plan) {
      try {
        await this.#executor.execute({ channel, request, plan });
      } finally {
        plan.release();
      }
    }
  }

  /** A request the fast path answered: counted, logged and reported like the decision it repeats. */
  #repeated(remembered: RememberedDecision | undefined, latencyUs: number, listener: Fd | undefined): void {
    const host = this.#host;
    this.#decisions++;
    // The reply told the wrapper its listener is kept: the hub watches it now (or, closed, its tree's execs fail).
    if (listener !== undefined && !this.#direct?.adopt(listener)) {
      if (this.#direct === undefined) closeQuietly(listener);
      host.rejected(this.id, 'cannot watch the seccomp listener: its execs fail');
    }
    if (remembered === undefined) {
      host.logger.error({ event: 'decision', session: this.id, via: 'fast-path', action: 'run', error: 'answered from a forgotten template' }, 'run (unknown)');
      return;
    }
    const request: ResolvedRequest = { ...remembered.request, requestId: host.nextRequestId() };
    this.#logDecision(request, remembered.action, remembered.decision, remembered.auditArgv, latencyUs, undefined, remembered.request.requestId);
    host.observe((o) => o.decided?.({ request, action: remembered.action, latencyUs, decision: remembered.decision }));
  }

  /** The audit line of one decision; `repeatOf`: the request whose decision the fast path replayed. */
  #logDecision(
    request: ResolvedRequest,
    action: Action,
    decision: PolicyDecision,
    auditArgv: Record<string, unknown> | undefined,
    latencyUs: number,
    plan: EscalationPlan | undefined,
    repeatOf?: string,
  ): void {
    const host = this.#host;
    // The line is built only when it is written (a silent logger, the library default, costs nothing).
    if (host.logger.isLevelEnabled('info')) host.logger.info(
      {
        event: 'decision',
        session: this.id,
        request: request.requestId,
        program: request.program,
        // Bounded: a request may carry 6 MiB of argv; the line shows at most 64 KiB of it, plus sizes and sha256.
        ...boundedString('file', request.file),
        ...(auditArgv ?? boundedList('argv', request.argv)),
        ...boundedString('workdir', request.workdir),
        // The shell's hint of the pipeline this exec is a stage of (the sandbox can forge it).
        ...(request.pipeline !== undefined ? { pipeline: request.pipeline } : {}),
        via: 'wrapper',
        ...(repeatOf !== undefined ? { repeat_of: repeatOf } : {}),
        // The wrapper stands in for the shell that forked it.
        ...(this.enoexecShell !== undefined ? { parent: this.enoexecShell } : {}),
        action: action.kind,
        reason: action.kind === 'deny' ? action.reason : (decision.reason ?? null),
        latency_us: Math.round(latencyUs),
        ...decision.audit,
        ...(plan && plan.envDropped.length ? boundedList('env_dropped', plan.envDropped) : {}),
        ...(plan?.argv0Replaced ? { argv0_replaced: plan.argv0Replaced } : {}),
      },
      `${action.kind} ${request.program}`,
    );
  }

  /** Record that the wrapper behind `channel` may exec the program it is told to Run (undefined: cannot be identified, no filter asked). */
  #grantFor(channel: StreamChannel, request: ResolvedRequest, action: Extract<Action, { kind: 'run' }>): { pid: number; program: FileId } | undefined {
    try {
      const { pid } = peerCredentials(channel.fd);
      let program: FileId | undefined;
      if (action.rewrite) program = statId(action.rewrite.file);
      else if (request.programFd !== undefined) program = fileId(request.programFd);
      if (!(pid > 0) || program === undefined) return { pid: 0, program: { dev: -1, ino: -1 } };
      this.#direct!.grant(pid, program);
      return { pid, program };
    } catch {
      return { pid: 0, program: { dev: -1, ino: -1 } };
    }
  }

  /**
   * After a Run reply with "listener": the wrapper sends its filter's listener
   * fd on one {"listener":true} frame and execs; a nested wrapper (already
   * under a filter) sends nothing and its connection ends with its exec.
   */
  async #adoptListener(channel: StreamChannel): Promise<void> {
    let frame;
    try {
      frame = await channel.readFrame(this.#host.settings.frameTimeoutMs);
    } catch {
      return; // EOF (nested wrapper exec'd, or the wrapper died) or timeout: nothing to adopt
    }
    const fds = new OwnedFds(frame.fds);
    try {
      let ok = false;
      try {
        // Our wrapper's frame is these exact bytes (valid by the schema); anything else is the schema's to judge.
        const text = frame.payload.toString('utf8');
        ok = text === LISTENER_FRAME_PAYLOAD || (await loadSchemas()).ListenerFrameSchema.safeParse(JSON.parse(text)).success;
      } catch {
        ok = false;
      }
      if (!ok || fds.size !== 1) {
        this.#host.rejected(this.id, `bad listener frame: ${fds.size} fds`);
        return;
      }
      const fd = fds.takeAll()[0]!;
      // Only a seccomp listener is polled: anything else the sandbox might send is refused.
      if (!isSeccompListener(fd)) {
        closeQuietly(fd);
        this.#host.rejected(this.id, 'listener frame carried an fd that is not a seccomp listener');
        return;
      }
      if (!this.#direct!.adopt(fd)) this.#host.rejected(this.id, 'cannot watch the seccomp listener: its execs fail');
    } finally {
      fds.closeAll();
    }
  }

  /** The encoded reply; a plain Run (nearly every decision) is the same bytes each time, encoded once per session. */
  #responseFrame(action: Action, peerExtensions: number, listener: boolean): Buffer {
    const extended = peerExtensions >= 1;
    const extra = extended ? { shell: this.enoexecShell, listener } : {};
    if (action.kind !== 'run' || action.rewrite) return encodeFrame(toWireResponse(action, extra));
    const key = (extended ? 1 : 0) | (listener ? 2 : 0);
    let frame = this.#runFrames.get(key);
    if (!frame) {
      frame = encodeFrame(toWireResponse(action, extra));
      this.#runFrames.set(key, frame);
    }
    return frame;
  }

  /** Ask the policy, failing closed; null if the client hung up meanwhile. */
  #decide(request: ResolvedRequest, channel: StreamChannel): PolicyDecision | Promise<PolicyDecision | null> {
    const host = this.#host;
    // Most decisions (rules and prefixes, no hook, no approver) are synchronous: nothing can arrive or end
    // while they run, so the abort signal, the session listener and the peer watch are only set up for one
    // that returns a promise (the signal itself on first use).
    let controller: AbortController | undefined;
    const ctx: DecisionContext = {
      get signal() {
        return (controller ??= new AbortController()).signal;
      },
    };
    let pending: PolicyDecision | Promise<PolicyDecision>;
    try {
      pending = host.policy.decide(request, ctx);
    } catch (err) {
      return this.#policyFailed(request, err);
    }
    if (!isPromiseLike(pending)) return pending;
    return this.#awaitDecision(request, channel, pending, (controller ??= new AbortController()));
  }

  #policyFailed(request: ResolvedRequest, err: unknown): PolicyDecision {
    this.#host.logger.error({ event: 'policy_error', session: this.id, request: request.requestId, error: String((err as Error)?.message ?? err) }, 'policy failed; denying');
    return { action: 'deny', reason: `policy error: ${(err as Error)?.message ?? String(err)}` };
  }

  async #awaitDecision(request: ResolvedRequest, channel: StreamChannel, pending: Promise<PolicyDecision>, controller: AbortController): Promise<PolicyDecision | null> {
    const host = this.#host;
    const session = this.#abort.signal;
    const onSessionAbort = () => controller.abort(session.reason);
    session.addEventListener('abort', onSessionAbort, { once: true });
    // Nothing may arrive while we decide: data is a protocol error, EOF means the wrapper is gone.
    channel.onPeerActivity(() => {
      try {
        const extra = channel.tryReadFrame();
        if (extra === 'again') return;
        new OwnedFds(extra.fds).closeAll();
        controller.abort(new ProtocolError('unexpected frame before the response'));
      } catch (err) {
        controller.abort(err);
      }
      channel.onPeerActivity(null);
    });
    try {
      const decision = await pending;
      if (controller.signal.aborted) {
        host.rejected(this.id, `request ${request.requestId} abandoned: ${String((controller.signal.reason as Error)?.message ?? controller.signal.reason)}`);
        return null;
      }
      return decision;
    } catch (err) {
      if (controller.signal.aborted) return null;
      return this.#policyFailed(request, err);
    } finally {
      channel.onPeerActivity(null);
      session.removeEventListener('abort', onSessionAbort);
    }
  }
}

function isPromiseLike<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** The wire action for a policy decision; rewrites need a wrapper that can run them. */
function finalAction(decision: PolicyDecision, request: ResolvedRequest): Action {
  const rewrite = decision.rewrite;
  switch (decision.action) {
    case 'run':
      if (!rewrite) return { kind: 'run' };
      // An upstream wrapper cannot run a different command: refuse rather than let it run the original.
      if (request.peerExtensions < 1) return { kind: 'deny', reason: 'a hook rewrote this command, and this wrapper cannot run rewritten commands' };
      return { kind: 'run', rewrite: { file: rewrite.program, argv: rewrite.argv } };
    case 'deny':
      return { kind: 'deny', reason: decision.reason ?? null };
    case 'escalate':
      // Safety checks (file identity, workdir, env) follow in prepareEscalation.
      return { kind: 'escalate' };
  }
}
