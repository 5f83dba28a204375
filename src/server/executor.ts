import { parseJsonPayload, encodeFrame, ProtocolError } from '../protocol/codec.js';
import { MAX_FORWARDED_FDS } from '../protocol/constants.js';
import type { SuperExecResult } from '../protocol/messages.js';
import { loadSchemas } from '../protocol/lazy-schemas.js';
import type { EscalatedContainment } from '../sandbox/cgroup.js';
import { openPath, type Fd } from '../native/index.js';
import type { AuditLogger } from './audit-log.js';
import { sameFile, type EscalationPlan } from './escalation.js';
import { EscalatedProcess, relayableSignal, shellExitCode } from './escalated-process.js';
import { OwnedFds } from './owned-fds.js';
import type { ResolvedRequest } from './resolve-request.js';
import type { StreamChannel } from './stream-channel.js';

// One definition, with the other wire constants (the wrapper's protocol.h is checked against it).
export { MAX_FORWARDED_FDS } from '../protocol/constants.js';

/** One approved escalation: the wrapper was told "Escalate" and is about to send its fds. */
export interface Escalation {
  readonly channel: StreamChannel;
  readonly request: ResolvedRequest;
  readonly plan: EscalationPlan;
}

/**
 * Runs approved escalations outside the sandbox (upstream's
 * ShellCommandExecutor): collects the caller's fds, spawns the plan, relays
 * the wrapper's signals and reports the exit on the channel. The session
 * only decides and dispatches.
 */
export interface EscalationExecutor {
  /** Resolves once the command has exited and its status was reported (or the spawn failed and that was). Throws on a protocol error before the spawn. */
  execute(escalation: Escalation): Promise<void>;
  /** Terminate every command still running (session end). */
  terminateAll(): Promise<void>;
}

/** What the spawning executor needs from its session and server. */
export interface ExecutorContext {
  readonly sessionId: string;
  readonly logger: AuditLogger;
  /** How long the wrapper may take to send each fd frame. */
  readonly frameTimeoutMs: number;
  /** Grace between SIGTERM and SIGKILL when a command is ended. */
  readonly terminateGraceMs: number;
  readonly containment: EscalatedContainment | undefined;
  /** Nice value escalated commands get (undoes a server priority boost); read at each spawn. */
  escalatedNice(): number | undefined;
  /** True once the session is ending: nothing may start outside its containment any more. */
  ending(): boolean;
  /** Rate-limited report of hostile or broken input. */
  rejected(error: string): void;
  /** Observer callbacks (errors they throw are the context's to log). */
  spawnFailed(error: string): void;
  exited(record: { request: ResolvedRequest; exitCode: number; signal: number | null; durationMs: number }): void;
}

/** The default executor: EscalatedProcess (native spawn from the decided O_PATH fd) in the session's containment. */
export class SpawningExecutor implements EscalationExecutor {
  private readonly running = new Set<EscalatedProcess>();

  constructor(private readonly ctx: ExecutorContext) {}

  async execute({ channel, request, plan }: Escalation): Promise<void> {
    const ctx = this.ctx;
    const { targets, fds } = await collectFds(channel, ctx.frameTimeoutMs);
    // Loaded by collectFds (the relay handler below is synchronous).
    const { RelaySignalSchema } = await loadSchemas();
    const started = Date.now();
    let proc: EscalatedProcess;
    const spare = new OwnedFds();
    try {
      // Start in the directory that was checked (by inode), not in whatever the path names by now.
      const cwdFd = workdirHandle(plan.workdirFd, new Set(targets));
      if (cwdFd !== plan.workdirFd) spare.add(cwdFd);
      // Scripts must run by path (the kernel cannot hand an O_PATH fd to the interpreter): re-check the path still names the same file.
      if (plan.isScript && !sameFile(plan.program, plan.programFd)) throw Object.assign(new Error(`${plan.program} changed after the decision`), { code: 'ESTALE' });
      // Ending: its containment is going away, and nothing may start outside it.
      if (ctx.ending()) throw new Error('session ended');
      const nice = ctx.escalatedNice();
      proc = new EscalatedProcess({
        program: plan.program,
        argv: plan.argv,
        env: plan.env,
        workdir: `/proc/self/fd/${cwdFd}`,
        fdMap: targets.map((t, i) => [t, fds.list()[i]!] as const),
        ...(plan.isScript ? {} : { execFd: plan.programFd }),
        ...(nice !== undefined ? { nice } : {}),
        ...(ctx.containment?.escalatedCgroupFd !== undefined ? { cgroupFd: ctx.containment.escalatedCgroupFd } : {}),
        ...(ctx.containment?.escalatedCgroupDirFd !== undefined ? { cgroupDirFd: ctx.containment.escalatedCgroupDirFd } : {}),
      });
      ctx.containment?.escalatedStarted(proc.pid);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const exitCode = e.code === 'ENOENT' ? 127 : 126;
      ctx.logger.error({ event: 'spawn_error', session: ctx.sessionId, request: request.requestId, program: plan.program, error: e.message }, 'escalated spawn failed');
      ctx.spawnFailed(`spawn failed: ${e.message}`);
      await report(channel, { exit_code: exitCode });
      return;
    } finally {
      // The child has its own copies now.
      fds.closeAll();
      spare.closeAll();
    }
    this.running.add(proc);
    // Signals the wrapper relays reach the command; the wrapper's death ends it (it must not run on unattended).
    channel.onPeerActivity(() => {
      try {
        for (;;) {
          const extra = channel.tryReadFrame();
          if (extra === 'again') return;
          new OwnedFds(extra.fds).closeAll();
          const relay = RelaySignalSchema.safeParse(parseJsonPayload(extra.payload));
          if (relay.success) proc.signalGroup(relayableSignal(relay.data.signal));
          else ctx.rejected('unexpected frame while an escalated command runs');
        }
      } catch {
        channel.onPeerActivity(null);
        void proc.terminate(ctx.terminateGraceMs);
      }
    });
    const status = await proc.exited;
    this.running.delete(proc);
    channel.onPeerActivity(null);
    const exitCode = shellExitCode(status);
    const durationMs = Date.now() - started;
    // Observers (PostToolUse) see the argv that was decided on, as PreToolUse did; a safety replacement of argv[0] is in the audit line.
    const argv = plan.argv0Replaced ? [plan.argv0Replaced.from, ...plan.argv.slice(1)] : plan.argv;
    ctx.logger.info(
      { event: 'exit', session: ctx.sessionId, request: request.requestId, program: plan.program, exit_code: exitCode, signal: status.signal, duration_ms: durationMs },
      `exit ${exitCode} ${plan.program}`,
    );
    ctx.exited({ request: { ...request, program: plan.program, argv }, exitCode, signal: status.signal, durationMs });
    if (!channel.peerGone) await report(channel, status.signal !== null ? { exit_code: exitCode, signal: status.signal } : { exit_code: exitCode });
  }

  async terminateAll(): Promise<void> {
    await Promise.all([...this.running].map((p) => p.terminate(this.ctx.terminateGraceMs)));
  }
}

/** The wrapper may be gone by now: a result nobody reads is not an error. */
function report(channel: StreamChannel, result: SuperExecResult): Promise<void> {
  return channel.writeFrame(encodeFrame(result)).catch(() => {});
}

/**
 * Read the caller's fds: one or more SuperExecMessage frames, each listing
 * the target numbers of the fds attached to it. On any error every fd
 * received so far is closed.
 */
async function collectFds(channel: StreamChannel, timeoutMs: number): Promise<{ targets: number[]; fds: OwnedFds }> {
  const targets: number[] = [];
  const fds = new OwnedFds();
  try {
    // An escalation is the slow path: the schemas are loaded here, on the first (in parallel with its frame's arrival).
    const schemas = loadSchemas();
    for (;;) {
      const frame = await channel.readFrame(timeoutMs);
      fds.add(...frame.fds);
      const { SuperExecMessageSchema } = await schemas;
      const parsed = SuperExecMessageSchema.safeParse(parseJsonPayload(frame.payload));
      if (!parsed.success) throw new ProtocolError(`invalid SuperExecMessage: ${parsed.error.issues[0]?.message ?? 'bad shape'}`);
      const listed = parsed.data.fds;
      if (listed.length !== frame.fds.length) throw new ProtocolError(`SuperExecMessage lists ${listed.length} fds but ${frame.fds.length} were attached`);
      targets.push(...listed);
      if (!parsed.data.more) break;
      if (targets.length > MAX_FORWARDED_FDS) throw new ProtocolError(`more than ${MAX_FORWARDED_FDS} fds forwarded`);
    }
    if (new Set(targets).size !== targets.length) throw new ProtocolError('SuperExecMessage lists a target fd twice');
  } catch (err) {
    fds.closeAll();
    throw err;
  }
  return { targets, fds };
}

/**
 * A number for the checked workdir the child can chdir to through
 * /proc/self/fd/N: the child dup2s the forwarded fds onto their targets
 * before its chdir, so N must not be one of them (a sandbox could otherwise
 * forward a directory of its own at that number). Returns `fd` itself or a
 * new fd the caller owns.
 */
function workdirHandle(fd: Fd, targets: ReadonlySet<number>): Fd {
  // Held until the end, so each open gets a new number.
  const spare = new OwnedFds();
  try {
    let cur = fd;
    while (targets.has(cur)) {
      cur = openPath(`/proc/self/fd/${fd}`);
      spare.add(cur);
    }
    return cur === fd ? fd : spare.take(cur)!;
  } finally {
    spare.closeAll();
  }
}
