/**
 * Layer 2 of "every exec is decided" (docs/protocol.md, "Direct execs"): the
 * execs a Run'd program makes itself (env rm, xargs, find -exec, python
 * os.execv, make, npm...) reach the server as seccomp user notifications on
 * the listener fd its wrapper handed over. Each one goes through the same
 * policy as a wrapper request; Run continues the exec, Deny fails it with
 * EACCES (the reason on the process's stderr and in the audit), Escalate
 * cannot be honoured for an exec the kernel is about to perform in the
 * sandbox, so it runs there as a Run and the audit line says so.
 */
import { fstatSync, readlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { bytesToWireString } from '../protocol/codec.js';
import { NOTIFY_MAX_ARG_BYTES, NOTIFY_MAX_ARGC, NOTIFY_MAX_ARGV_BYTES, NOTIFY_MAX_PATH_BYTES } from '../protocol/constants.js';
import { openPath, SeccompHub, seccompOpenTarget, type Fd, type HubNotification } from '../native/index.js';
import type { EscalationPolicy, PolicyDecision } from '../policy/types.js';
import { boundedList, boundedString, type AuditLogger } from './audit-log.js';
import { clipReason } from './parse-request.js';
import { closeQuietly } from './owned-fds.js';
import { fdPath, rewriteSelfPath, type ResolvedRequest } from './resolve-request.js';

const BOUNDS = { path: NOTIFY_MAX_PATH_BYTES, arg: NOTIFY_MAX_ARG_BYTES, total: NOTIFY_MAX_ARGV_BYTES, argc: NOTIFY_MAX_ARGC } as const;
/** The Deny line written to the process's stderr is at most this long. */
const MAX_STDERR_LINE = 1024;
/** Denials remembered to recognise execvp's retries (one per pid; pids are few at a time). */
const MAX_DENIED_REMEMBERED = 4096;
const AT_FDCWD = -100;
const { EACCES, ENOENT, ENOTDIR } = osConstants.errno;

/** A file by identity (what an O_PATH fd on it fstat()s to). */
export interface FileId {
  readonly dev: number;
  readonly ino: number;
}

export function fileId(fd: Fd): FileId {
  const st = fstatSync(fd);
  return { dev: st.dev, ino: st.ino };
}

const sameFile = (a: FileId, b: FileId): boolean => a.dev === b.dev && a.ino === b.ino;

/** What a session lends its direct-exec channel. */
export interface DirectExecHost {
  readonly sessionId: string;
  readonly policy: EscalationPolicy;
  readonly logger: AuditLogger;
  /** The trusted wrapper binary: a nested patched shell's exec of it is a hop, not a decision. */
  readonly wrapper: FileId | undefined;
  nextRequestId(): string;
  /** Session aborted (ended): in-flight decisions give up. */
  readonly signal: AbortSignal;
  /** Where a Deny's line goes when the process's stderr is not ours (the CLI: its stderr); undefined: nowhere else. */
  readonly echo?: ((line: string) => void) | undefined;
  /** Tell the observer (same record as a wrapper decision). */
  decided(request: ResolvedRequest, decision: PolicyDecision, action: 'run' | 'deny', latencyUs: number): void;
}

/**
 * The session's direct-exec channel: its listeners and the grants that let a
 * nested wrapper's own exec through without a second decision.
 */
export class DirectExecs {
  readonly #host: DirectExecHost;
  /** Every listener of the session, in one native epoll set (created with the first one). */
  #hub: SeccompHub | undefined;
  /** pid of a wrapper that was just told Run → the program it was told to run. Consumed by the matching exec. */
  readonly #grants = new Map<number, FileId>();
  /**
   * pid → the exec last denied to it. execvp() goes on to the next PATH
   * directory after EACCES (/usr/bin/rm, then /bin/rm: the same file): the
   * retry is refused again without a second audit line or message.
   */
  readonly #denied = new Map<number, string>();
  #closed = false;

  constructor(host: DirectExecHost) {
    this.#host = host;
  }

  get listenerCount(): number {
    return this.#hub?.size ?? 0;
  }

  /** A wrapper (pid) was told to Run `program`: its own exec of it, if notified (nested shell), is not decided again. */
  grant(pid: number, program: FileId): void {
    this.#grants.set(pid, program);
  }

  /** The wrapper's connection is gone: its grant, if unused, dies with it. */
  revoke(pid: number, program: FileId): void {
    const g = this.#grants.get(pid);
    if (g && sameFile(g, program)) this.#grants.delete(pid);
  }

  /**
   * Take ownership of a listener fd a wrapper handed over. False: it could
   * not be watched and is closed, so its tree's execs fail (fail closed).
   */
  adopt(fd: Fd): boolean {
    if (this.#closed) {
      closeQuietly(fd);
      return false;
    }
    try {
      this.#hub ??= new SeccompHub(BOUNDS, (listener, n) => {
        if (!('gone' in n)) void this.handle(listener, n);
      });
    } catch {
      closeQuietly(fd);
      return false;
    }
    try {
      this.#hub.add(fd); // the hub owns fd now, even when this throws
      return true;
    } catch {
      return false;
    }
  }

  /** Session end: close every listener; the kernel then fails their pending and future execs (ENOSYS). */
  close(): void {
    this.#closed = true;
    this.#hub?.close();
    this.#grants.clear();
  }

  /** @internal One notification: answer it (allow or EACCES), auditing a real decision. */
  async handle(listener: number, n: Extract<HubNotification, { id: bigint }>): Promise<void> {
    const host = this.#host;
    const started = process.hrtime.bigint();
    const hub = this.#hub!;
    const fd = { hub, listener };
    const reply = (allow: boolean, errno: number = EACCES) => {
      try {
        hub.send(listener, n.id, allow ? 0 : errno);
      } catch {
        // The listener was closed meanwhile (session end): the kernel fails the exec.
      }
    };
    let programFd: Fd | undefined;
    try {
      const parent = readParent(n.pid);
      if (n.error !== undefined || n.path === undefined || n.argv === undefined) {
        return this.#deny(fd, reply, n, n.error ?? 'unreadable exec', parent, started);
      }
      try {
        programFd = openTarget(n.pid, n.dirfd ?? AT_FDCWD, n.path, n.flags ?? 0);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        // Fail closed: what we cannot resolve as the kernel would is not run. A missing file (a PATH
        // search trying each directory) fails quietly with the kernel's own answer: nothing would have run.
        if (code === 'ENOENT') return reply(false, ENOENT);
        if (code === 'ENOTDIR') return reply(false, ENOTDIR);
        return this.#deny(fd, reply, n, `cannot resolve the program (${code})`, parent, started);
      }
      const id = fileId(programFd);
      if (host.wrapper && sameFile(id, host.wrapper)) return reply(true); // a nested patched shell's hop into the wrapper
      const granted = this.#grants.get(n.pid);
      if (granted && sameFile(granted, id)) {
        // The nested wrapper's own exec of what it was just told to Run: decided already.
        this.#grants.delete(n.pid);
        return reply(true);
      }
      const request: ResolvedRequest = {
        sessionId: host.sessionId,
        requestId: host.nextRequestId(),
        file: bytesToWireString(n.path),
        program: bytesToWireString(fdPath(programFd)),
        argv: n.argv.map((a) => bytesToWireString(a)),
        workdir: readCwd(n.pid),
        // Not read (keeps a direct decision cheap): Escalate, the one use of the env, is not honoured here.
        env: {},
        resolved: true,
        programFd,
        peerExtensions: 0,
      };
      const key = `${id.dev}:${id.ino}\0${request.argv.join('\0')}`;
      if (this.#denied.get(n.pid) === key) return reply(false);
      let decision: PolicyDecision;
      try {
        decision = await host.policy.decide(request, { signal: host.signal });
      } catch (err) {
        decision = { action: 'deny', reason: `policy error: ${(err as Error)?.message ?? String(err)}` };
      }
      if (host.signal.aborted) return reply(false);
      let action: 'run' | 'deny' = decision.action === 'deny' ? 'deny' : 'run';
      let reason = decision.reason ?? null;
      const extra: Record<string, unknown> = {};
      if (decision.action === 'escalate') {
        extra['escalate_not_honoured'] = true;
        reason = `escalate cannot be honoured for a direct exec: runs in the sandbox${reason ? ` (${reason})` : ''}`;
      }
      if (decision.rewrite && action === 'run') {
        // The kernel runs what the process asked for: a rewrite cannot be applied, so nothing runs.
        action = 'deny';
        reason = 'a hook rewrote this command, and a direct exec cannot run rewritten commands';
      }
      if (action === 'deny') {
        writeDenial(this.#host.echo, fd, n.id, n.pid, request.file, reason);
        this.#denied.delete(n.pid);
        this.#denied.set(n.pid, key);
        // Bounded: the oldest entries go first (Map keeps insertion order).
        if (this.#denied.size > MAX_DENIED_REMEMBERED) this.#denied.delete(this.#denied.keys().next().value as number);
      } else this.#denied.delete(n.pid);
      reply(action === 'run');
      const latencyUs = Number(process.hrtime.bigint() - started) / 1000;
      host.logger.info(
        {
          event: 'decision',
          session: host.sessionId,
          request: request.requestId,
          via: 'direct',
          parent,
          program: request.program,
          ...boundedString('file', request.file),
          ...boundedList('argv', request.argv),
          ...boundedString('workdir', request.workdir),
          action,
          reason,
          latency_us: Math.round(latencyUs),
          ...decision.audit,
          ...extra,
        },
        `${action} ${request.program} (direct exec)`,
      );
      host.decided(request, decision, action, latencyUs);
    } catch (err) {
      // Fail closed: an error anywhere in the decision is a Deny.
      this.#deny(fd, reply, n, `internal error: ${(err as Error)?.message ?? String(err)}`, undefined, started);
    } finally {
      if (programFd !== undefined) closeQuietly(programFd);
    }
  }

  #deny(fd: ListenerRef, reply: (allow: boolean) => void, n: Extract<HubNotification, { id: bigint }>, why: string, parent: string | undefined, started: bigint): void {
    const file = n.path ? bytesToWireString(n.path) : '?';
    const reason = clipReason(why);
    writeDenial(this.#host.echo, fd, n.id, n.pid, file, reason);
    reply(false);
    this.#host.logger.info(
      {
        event: 'decision',
        session: this.#host.sessionId,
        request: this.#host.nextRequestId(),
        via: 'direct',
        parent: parent ?? null,
        ...boundedString('file', file),
        action: 'deny',
        reason,
        latency_us: Math.round(Number(process.hrtime.bigint() - started) / 1000),
      },
      `deny ${file} (direct exec)`,
    );
  }
}

/** Where a notification came from: answers go through the hub by listener id. */
interface ListenerRef {
  readonly hub: SeccompHub;
  readonly listener: number;
}

/** The exec's program as the kernel will find it: /proc/self, /dev/fd, /dev/stdin... name the process's own fds. */
function openTarget(pid: number, dirfd: number, file: Buffer, flags: number): Fd {
  const s = bytesToWireString(file);
  if (s.startsWith('/')) {
    const self = rewriteSelfPath(path.posix.normalize(s), () => pid);
    if (self !== undefined) return openPath(self);
  }
  return seccompOpenTarget(pid, dirfd, file, flags);
}

/** The program making the exec (its current image). */
function readParent(pid: number): string | undefined {
  try {
    return bytesToWireString(readlinkSync(`/proc/${pid}/exe`, { encoding: 'buffer' }));
  } catch {
    return undefined;
  }
}

function readCwd(pid: number): string {
  try {
    return bytesToWireString(readlinkSync(`/proc/${pid}/cwd`, { encoding: 'buffer' }));
  } catch {
    return '/';
  }
}

/**
 * "codex-escalate: FILE: denied: REASON" on the process's stderr (best
 * effort, bounded, never blocking), and to `echo` unless that stderr is the
 * server's own: a program that captures its child's stderr (Node's
 * execFileSync, a test runner) would otherwise swallow the reason.
 */
function writeDenial(echo: ((line: string) => void) | undefined, fd: ListenerRef, id: bigint, pid: number, file: string, reason: string | null): void {
  const line = `codex-escalate: ${file}: denied: ${reason ?? 'by policy'}`.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, MAX_STDERR_LINE - 1);
  let shown: 0 | 1 | 2 = 0;
  try {
    shown = fd.hub.writeStderr(fd.listener, id, pid, Buffer.from(`${line}\n`));
  } catch {
    // The exec still fails with EACCES, and the audit line has the reason.
  }
  if (shown !== 2) echo?.(line);
}
