import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { fstatSync } from 'node:fs';
import { ByteBudget, encodeFrame, parseJsonPayload, ProtocolError } from '../protocol/codec.js';
import {
  ESCALATE_SOCKET_ENV_VAR,
  EXEC_WRAPPER_ENV_VAR,
  HANDSHAKE_BYTE,
  MAX_FDS_PER_MESSAGE,
  MAX_FORWARDED_FDS,
  MAX_FRAME_BYTES,
  SHELL_SOCKET_FD,
} from '../protocol/constants.js';
import {
  RelaySignalSchema,
  SuperExecMessageSchema,
  toWireResponse,
  type Action,
} from '../protocol/messages.js';
import type { EscalatedContainment } from '../sandbox/cgroup.js';
import { createEnvFilter, type EnvFilterOptions } from '../sandbox/escalation-env.js';
import type { GitSafeOptions } from '../sandbox/git-safe-mode.js';
import { prepareEscalation, sameFile, type EscalationChecks, type EscalationPlan } from './escalation.js';
import type { EscalationPolicy, PolicyDecision } from '../policy/types.js';
import { openPath, Poller, recvMsg, setNonblock, socketPair, type Fd } from '../native/index.js';
import { defaultWrapperPath } from '../paths.js';
import { findPatchedBash } from '../shell/patched-bash.js';
import { boundedList, boundedString, silentLogger, type AuditLogger } from './audit-log.js';
import { clipReason, parseRequest } from './parse-request.js';
import { EscalatedProcess, relayableSignal, shellExitCode } from './escalated-process.js';
import { RateLimiter } from './rate-limit.js';
import { resolveRequest, type ResolvedRequest } from './resolve-request.js';
import { ChannelClosedError, safeClose, StreamChannel } from './stream-channel.js';

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
  try {
    base = os.getPriority(0);
    const target = Math.max(-20, base - steps);
    if (target === base) return undefined;
    os.setPriority(0, target);
  } catch {
    return undefined; // not permitted: run at the normal priority
  }
  server.escalatedNice = base;
  return base;
}

const DEFAULT_SESSION_FRAME_BUDGET = 64 * 1024 * 1024;

/**
 * The escalation server: one per process is typical, with one session per
 * shell. Each session is a SOCK_DGRAM socket pair whose client end the shell
 * inherits; every wrapper sends a private SOCK_STREAM end over it.
 */
export class EscalationServer {
  readonly policy: EscalationPolicy;
  readonly logger: AuditLogger;
  readonly wrapperPath: string;
  private readonly sessions = new Set<EscalationSession>();
  private requestCounter = 0;
  private readonly rejectLog = new RateLimiter(20);
  /** @internal */
  readonly escalationChecks: EscalationChecks;
  /** Nice value for escalated commands when the server runs boosted (see boostServerPriority). */
  escalatedNice: number | undefined;

  constructor(readonly options: EscalationServerOptions) {
    this.policy = options.policy;
    this.escalationChecks = { verifyWorkdir: options.verifyWorkdir ?? true, filterEnv: createEnvFilter(options.escalationEnv), gitSafe: options.gitSafe };
    this.logger = options.logger ?? silentLogger();
    this.wrapperPath = options.wrapperPath ?? defaultWrapperPath();
  }

  /** Open a session: spawn the shell with `session.env` merged in and `session.clientFd` as fd 3, then call `session.shellSpawned()`. */
  async startSession(opts: { id?: string; cwd?: string } = {}): Promise<EscalationSession> {
    const session = new EscalationSession(this, opts.id ?? randomUUID(), opts.cwd ?? process.cwd());
    this.sessions.add(session);
    this.logger.info({ event: 'session_start', session: session.id, ...session.containmentInfo() }, 'session started');
    await this.notify('sessionStarted', session);
    return session;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** End every session (terminating escalated commands). */
  async close(): Promise<void> {
    await Promise.all([...this.sessions].map((s) => s.end()));
  }

  /** @internal */
  nextRequestId(): string {
    return `r${++this.requestCounter}`;
  }

  /** @internal */
  forget(session: EscalationSession): void {
    this.sessions.delete(session);
  }

  /** @internal Rate-limited: a flood of garbage yields a bounded number of lines. */
  logRejected(sessionId: string, error: string): void {
    this.safeObserve(() => this.options.observer?.protocolError?.({ sessionId, error }));
    const dropped = this.rejectLog.take();
    if (dropped === null) return;
    this.logger.warn({ event: 'rejected', session: sessionId, error: clipReason(error), ...(dropped > 0 ? { suppressed: dropped } : {}) }, 'rejected client input');
  }

  /** @internal */
  async notify(kind: 'sessionStarted' | 'sessionEnded', session: EscalationSession): Promise<void> {
    try {
      await this.options.observer?.[kind]?.(session);
    } catch (err) {
      this.logger.error({ event: 'observer_error', session: session.id, error: String(err) }, `${kind} observer failed`);
    }
  }

  /** @internal */
  safeObserve(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ event: 'observer_error', error: String(err) }, 'observer failed');
    }
  }
}

export class EscalationSession {
  /** Env overlay for the shell: CODEX_ESCALATE_SOCKET, EXEC_WRAPPER. */
  readonly env: Readonly<Record<string, string>>;
  /** The client end to hand to the shell as fd SHELL_SOCKET_FD; closed in this process by shellSpawned(). */
  readonly clientFd: Fd;
  readonly startedAt = Date.now();
  private readonly serverFd: Fd;
  private readonly poller: Poller;
  private clientOpen = true;
  private ended: Promise<void> | null = null;
  private readonly connections = new Set<StreamChannel>();
  private readonly escalated = new Set<EscalatedProcess>();
  private readonly abort = new AbortController();
  private decisions = 0;
  /** Bytes of half-received frames this session may hold at once (a sandbox cannot make the server allocate without bound). */
  private readonly frameBudget: ByteBudget;
  private readonly containment: EscalatedContainment | undefined;

  /** How this session's processes are contained (cgroup v2 or signals), for the audit log. */
  containmentInfo(): Record<string, unknown> {
    return this.containment?.describe?.() ?? {};
  }

  /** The shell our wrapper runs `#!`-less scripts with (undefined: the wrapper's default, /bin/bash). */
  readonly enoexecShell: string | undefined;

  /** The shell's exit status, when known (set by end()). */
  exitCode: number | undefined;

  constructor(
    private readonly server: EscalationServer,
    readonly id: string,
    /** The shell's working directory (hooks run there by default). */
    readonly cwd: string,
  ) {
    const [serverFd, clientFd] = socketPair('dgram', { cloexec: true, nonblock: true });
    // O_NONBLOCK lives on the shared file description: every wrapper must block on its send, not fail with EAGAIN.
    setNonblock(clientFd, false);
    this.serverFd = serverFd;
    this.clientFd = clientFd;
    this.frameBudget = new ByteBudget(server.options.sessionFrameBudgetBytes ?? DEFAULT_SESSION_FRAME_BUDGET);
    this.containment = server.options.containment?.(id);
    // One listener per in-flight decision (up to maxConnectionsPerSession): not a leak, so no warning.
    setMaxListeners(0, this.abort.signal);
    this.env = {
      [ESCALATE_SOCKET_ENV_VAR]: String(SHELL_SOCKET_FD),
      [EXEC_WRAPPER_ENV_VAR]: server.wrapperPath,
    };
    // Scripts without #! must run under the patched bash too, or their execs would escape interception.
    // Fixed here, per session: the wrapper learns it from our Run reply, never from the command's environment.
    const shell = server.options.shellPath ?? findPatchedBash() ?? undefined;
    // The wrapper refuses a relative one (it would be resolved against each command's cwd).
    this.enoexecShell = shell === undefined ? undefined : path.resolve(shell);
    this.poller = new Poller(serverFd, (err) => {
      if (err) {
        this.server.logger.error({ event: 'session_error', session: this.id, error: err.message }, 'escalation socket failed');
        return;
      }
      this.drainHandshakes();
    });
    this.poller.start({ readable: true });
  }

  /** Number of decisions taken in this session so far. */
  get decisionCount(): number {
    return this.decisions;
  }

  /** Call once the shell has been spawned: the shell holds the client end now, so ours must go (a dead shell must be seen as gone). */
  shellSpawned(): void {
    if (!this.clientOpen) return;
    this.clientOpen = false;
    safeClose(this.clientFd);
  }

  /** Close the session: no further requests, in-flight decisions aborted, escalated commands terminated. Idempotent. */
  end(opts: { exitCode?: number } = {}): Promise<void> {
    if (this.exitCode === undefined && opts.exitCode !== undefined) this.exitCode = opts.exitCode;
    this.ended ??= this.doEnd();
    return this.ended;
  }

  private async doEnd(): Promise<void> {
    this.abort.abort(new Error('session ended'));
    this.poller.close();
    safeClose(this.serverFd);
    this.shellSpawned();
    const grace = this.server.options.terminateGraceMs ?? 1000;
    await Promise.all([...this.escalated].map((p) => p.terminate(grace)));
    // Descendants that left the leaders' process groups (setsid, double forks, nohup): the whole session cgroup.
    if (this.containment) await this.containment.end();
    for (const c of this.connections) c.close();
    this.connections.clear();
    this.server.forget(this);
    this.server.logger.info(
      { event: 'session_end', session: this.id, decisions: this.decisions, exit_code: this.exitCode ?? null, duration_ms: Date.now() - this.startedAt },
      'session ended',
    );
    await this.server.notify('sessionEnded', this);
  }

  private drainHandshakes(): void {
    for (;;) {
      let got;
      try {
        // Ask for 2 bytes so an oversized datagram shows up as truncated.
        got = recvMsg(this.serverFd, 2, MAX_FDS_PER_MESSAGE);
      } catch (err) {
        this.server.logRejected(this.id, `recvmsg failed: ${(err as Error).message}`);
        return;
      }
      if (got === 'again' || got === 'eof') return;
      const valid = got.bytes.length === 1 && got.bytes[0] === HANDSHAKE_BYTE && !got.truncated && !got.controlTruncated && got.fds.length === 1;
      if (!valid) {
        for (const fd of got.fds) safeClose(fd);
        this.server.logRejected(
          this.id,
          `bad handshake datagram: ${got.bytes.length}${got.truncated ? '+' : ''} bytes, ${got.fds.length}${got.controlTruncated ? '+' : ''} fds`,
        );
        continue;
      }
      const fd = got.fds[0]!;
      const limit = this.server.options.maxConnectionsPerSession ?? 1024;
      if (this.ended || this.connections.size >= limit) {
        safeClose(fd);
        this.server.logRejected(this.id, this.ended ? 'session ended' : `more than ${limit} connections in flight`);
        continue;
      }
      void this.serve(fd);
    }
  }

  private async serve(fd: Fd): Promise<void> {
    let channel: StreamChannel;
    try {
      // Before any fcntl or poll (both set O_NONBLOCK on the shared file description): a hostile
      // sandbox could send its terminal or a pipe it shares with the user's shell.
      if (!fstatSync(fd).isSocket()) throw new Error('connection fd is not a socket');
      setNonblock(fd, true);
      channel = new StreamChannel(fd, MAX_FRAME_BYTES, this.frameBudget);
    } catch (err) {
      safeClose(fd);
      this.server.logRejected(this.id, `unusable connection fd: ${(err as Error).message}`);
      return;
    }
    this.connections.add(channel);
    const held: { request?: ResolvedRequest } = {};
    try {
      await this.handle(channel, held);
    } catch (err) {
      const msg = err instanceof ChannelClosedError || err instanceof ProtocolError ? err.message : String((err as Error)?.message ?? err);
      this.server.logRejected(this.id, msg);
    } finally {
      if (held.request?.programFd !== undefined) safeClose(held.request.programFd);
      channel.close();
      this.connections.delete(channel);
    }
  }

  private async handle(channel: StreamChannel, held: { request?: ResolvedRequest }): Promise<void> {
    const timeout = this.server.options.frameTimeoutMs ?? 10_000;
    const frame = await channel.readFrame(timeout);
    const started = process.hrtime.bigint();
    const requestId = this.server.nextRequestId();

    let request: ResolvedRequest;
    // At most one fd belongs on a request: the wrapper's O_PATH handle on the program (ext 2). Never polled or fcntl'd: any fd type is safe.
    let attached: Fd | undefined;
    let auditArgv: Record<string, unknown> | undefined;
    try {
      if (frame.fds.length > 1) throw new ProtocolError(`${frame.fds.length} file descriptors attached to a request (at most 1)`);
      attached = frame.fds.pop();
      // Large frames are decoded off the event loop (see parse-request.ts).
      const parsed = await parseRequest(frame.payload, this.id);
      if (this.abort.signal.aborted) throw new ChannelClosedError('session ended');
      auditArgv = parsed.auditArgv;
      const fd = attached;
      attached = undefined; // resolveRequest owns it from here on
      request = resolveRequest(parsed.request, { sessionId: this.id, requestId }, { peerFd: channel.fd, ...(fd !== undefined ? { attachedFd: fd } : {}) });
      held.request = request;
    } catch (err) {
      for (const fd of frame.fds) safeClose(fd);
      if (attached !== undefined) safeClose(attached);
      // Tell the wrapper why before dropping it: it prints the reason and exits 126.
      const reason = clipReason((err as Error).message);
      await channel.writeFrame(encodeFrame(toWireResponse({ kind: 'deny', reason }))).catch(() => {});
      throw err;
    }

    const decision = await this.decide(request, channel);
    if (decision === null) return; // client went away while we decided
    let action = finalAction(decision, request);
    let plan: EscalationPlan | undefined;
    if (action.kind === 'escalate') {
      const prepared = prepareEscalation(request, decision, channel.fd, this.server.escalationChecks);
      if (prepared.ok) plan = prepared.plan;
      else action = { kind: 'deny', reason: prepared.reason };
    }
    try {
      await channel.writeFrame(encodeFrame(toWireResponse(action, request.peerExtensions >= 1 ? { shell: this.enoexecShell } : {})));
    } catch (err) {
      plan?.release();
      throw err;
    }
    const latencyUs = Number(process.hrtime.bigint() - started) / 1000;
    this.decisions++;
    this.server.logger.info(
      {
        event: 'decision',
        session: this.id,
        request: request.requestId,
        program: request.program,
        // Bounded: a request may carry 6 MiB of argv; the line shows at most 64 KiB of it, plus sizes and sha256.
        ...boundedString('file', request.file),
        ...(auditArgv ?? boundedList('argv', request.argv)),
        ...boundedString('workdir', request.workdir),
        action: action.kind,
        reason: action.kind === 'deny' ? action.reason : (decision.reason ?? null),
        latency_us: Math.round(latencyUs),
        ...decision.audit,
        ...(plan && plan.envDropped.length ? boundedList('env_dropped', plan.envDropped) : {}),
        ...(plan?.argv0Replaced ? { argv0_replaced: plan.argv0Replaced } : {}),
      },
      `${action.kind} ${request.program}`,
    );
    this.server.safeObserve(() => this.server.options.observer?.decided?.({ request, action, latencyUs, decision }));
    if (plan) {
      try {
        await this.escalate(channel, request, plan, timeout);
      } finally {
        plan.release();
      }
    }
  }

  /** Ask the policy, failing closed; null if the client hung up meanwhile. */
  private async decide(request: ResolvedRequest, channel: StreamChannel): Promise<PolicyDecision | null> {
    const controller = new AbortController();
    const onSessionAbort = () => controller.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', onSessionAbort, { once: true });
    // Nothing may arrive while we decide: data is a protocol error, EOF means the wrapper is gone.
    channel.onPeerActivity(() => {
      try {
        const extra = channel.tryReadFrame();
        if (extra === 'again') return;
        for (const fd of extra.fds) safeClose(fd);
        controller.abort(new ProtocolError('unexpected frame before the response'));
      } catch (err) {
        controller.abort(err);
      }
      channel.onPeerActivity(null);
    });
    try {
      const decision = await this.server.policy.decide(request, { signal: controller.signal });
      if (controller.signal.aborted) {
        this.server.logRejected(this.id, `request ${request.requestId} abandoned: ${String((controller.signal.reason as Error)?.message ?? controller.signal.reason)}`);
        return null;
      }
      return decision;
    } catch (err) {
      if (controller.signal.aborted) return null;
      this.server.logger.error({ event: 'policy_error', session: this.id, request: request.requestId, error: String((err as Error)?.message ?? err) }, 'policy failed; denying');
      return { action: 'deny', reason: `policy error: ${(err as Error)?.message ?? String(err)}` };
    } finally {
      channel.onPeerActivity(null);
      this.abort.signal.removeEventListener('abort', onSessionAbort);
    }
  }

  /** Read the fds (one or more SuperExecMessage frames), run the plan, relay signals, report the exit. */
  private async escalate(channel: StreamChannel, request: ResolvedRequest, plan: EscalationPlan, timeout: number): Promise<void> {
    const fdMap: [number, Fd][] = [];
    try {
      for (;;) {
        const frame = await channel.readFrame(timeout);
        for (const fd of frame.fds) fdMap.push([-1, fd]);
        const parsed = SuperExecMessageSchema.safeParse(parseJsonPayload(frame.payload));
        if (!parsed.success) throw new ProtocolError(`invalid SuperExecMessage: ${parsed.error.issues[0]?.message ?? 'bad shape'}`);
        const targets = parsed.data.fds;
        if (targets.length !== frame.fds.length) throw new ProtocolError(`SuperExecMessage lists ${targets.length} fds but ${frame.fds.length} were attached`);
        targets.forEach((t, i) => (fdMap[fdMap.length - targets.length + i]![0] = t));
        if (!parsed.data.more) break;
        if (fdMap.length > MAX_FORWARDED_FDS) throw new ProtocolError(`more than ${MAX_FORWARDED_FDS} fds forwarded`);
      }
      if (new Set(fdMap.map(([t]) => t)).size !== fdMap.length) throw new ProtocolError('SuperExecMessage lists a target fd twice');
    } catch (err) {
      for (const [, fd] of fdMap) safeClose(fd);
      throw err;
    }

    const started = Date.now();
    let proc: EscalatedProcess;
    let cwdFd: Fd | undefined;
    try {
      // Start in the directory that was checked (by inode), not in whatever the path names by now.
      cwdFd = workdirHandle(plan.workdirFd, new Set(fdMap.map(([t]) => t)));
      // Scripts must run by path (the kernel cannot hand an O_PATH fd to the interpreter): re-check the path still names the same file.
      if (plan.isScript && !sameFile(plan.program, plan.programFd)) throw Object.assign(new Error(`${plan.program} changed after the decision`), { code: 'ESTALE' });
      // Ending: its containment is going away, and nothing may start outside it.
      if (this.ended) throw new Error('session ended');
      proc = new EscalatedProcess({
        program: plan.program,
        argv: plan.argv,
        env: plan.env,
        workdir: `/proc/self/fd/${cwdFd}`,
        fdMap,
        ...(plan.isScript ? {} : { execFd: plan.programFd }),
        ...(this.server.escalatedNice !== undefined ? { nice: this.server.escalatedNice } : {}),
        ...(this.containment?.escalatedCgroupFd !== undefined ? { cgroupFd: this.containment.escalatedCgroupFd } : {}),
      });
      this.containment?.escalatedStarted(proc.pid);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const exitCode = e.code === 'ENOENT' ? 127 : 126;
      this.server.logger.error({ event: 'spawn_error', session: this.id, request: request.requestId, program: plan.program, error: e.message }, 'escalated spawn failed');
      this.server.safeObserve(() => this.server.options.observer?.protocolError?.({ sessionId: this.id, error: `spawn failed: ${e.message}` }));
      await channel.writeFrame(encodeFrame({ exit_code: exitCode })).catch(() => {});
      return;
    } finally {
      // The child has its own copies now.
      for (const [, fd] of fdMap) safeClose(fd);
      if (cwdFd !== undefined && cwdFd !== plan.workdirFd) safeClose(cwdFd);
    }
    this.escalated.add(proc);
    // Signals the wrapper relays reach the command; the wrapper's death ends it (it must not run on unattended).
    channel.onPeerActivity(() => {
      try {
        for (;;) {
          const extra = channel.tryReadFrame();
          if (extra === 'again') return;
          for (const fd of extra.fds) safeClose(fd);
          const relay = RelaySignalSchema.safeParse(parseJsonPayload(extra.payload));
          if (relay.success) proc.signalGroup(relayableSignal(relay.data.signal));
          else this.server.logRejected(this.id, 'unexpected frame while an escalated command runs');
        }
      } catch {
        channel.onPeerActivity(null);
        void proc.terminate(this.server.options.terminateGraceMs ?? 1000);
      }
    });
    const status = await proc.exited;
    this.escalated.delete(proc);
    channel.onPeerActivity(null);
    const exitCode = shellExitCode(status);
    const durationMs = Date.now() - started;
    // Observers (PostToolUse) see the argv that was decided on, as PreToolUse did; a safety replacement of argv[0] is in the audit line.
    const argv = plan.argv0Replaced ? [plan.argv0Replaced.from, ...plan.argv.slice(1)] : plan.argv;
    const target = { ...request, program: plan.program, argv };
    this.server.logger.info(
      { event: 'exit', session: this.id, request: request.requestId, program: plan.program, exit_code: exitCode, signal: status.signal, duration_ms: durationMs },
      `exit ${exitCode} ${plan.program}`,
    );
    this.server.safeObserve(() => this.server.options.observer?.escalatedExited?.({ request: target, exitCode, signal: status.signal, durationMs }));
    if (!channel.peerGone) {
      const result = status.signal !== null ? { exit_code: exitCode, signal: status.signal } : { exit_code: exitCode };
      await channel.writeFrame(encodeFrame(result)).catch(() => {});
    }
  }
}

/**
 * A number for the checked workdir the child can chdir to through
 * /proc/self/fd/N: the child dup2s the forwarded fds onto their targets
 * before its chdir, so N must not be one of them (a sandbox could otherwise
 * forward a directory of its own at that number).
 */
function workdirHandle(fd: Fd, targets: ReadonlySet<number>): Fd {
  // Held until the end, so each open gets a new number.
  const spare: Fd[] = [];
  let cur = fd;
  try {
    while (targets.has(cur)) {
      if (cur !== fd) spare.push(cur);
      cur = fd; // not ours to close if the open below throws
      cur = openPath(`/proc/self/fd/${fd}`);
    }
    return cur;
  } finally {
    for (const f of spare) safeClose(f);
  }
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

