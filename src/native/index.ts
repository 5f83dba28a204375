/**
 * Typed wrapper over the codex_native N-API addon (native/*.c): the Unix
 * primitives Node lacks — socketpair, SCM_RIGHTS fd passing, raw-fd polling
 * on the event loop, and byte-exact spawning with an explicit fd map and
 * pidfd-based reaping. Linux only.
 *
 * Errors from system calls are plain Errors carrying `.code` ('EPIPE',
 * 'ENOENT', ...), `.errno` (negative, Node style), `.syscall` and, where a
 * path was involved, `.path`. Bad arguments throw TypeError / RangeError.
 */
import { binding, type RawFastPath, type RawFastPathEvent, type RawHubNotification, type RawPoller, type RawSeccompHub } from './binding.js';

export type Fd = number;

/** Shape of errors thrown for failed system calls. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export function isNativeError(err: unknown): err is NativeError {
  return (
    err instanceof Error &&
    typeof (err as Partial<NativeError>).code === 'string' &&
    typeof (err as Partial<NativeError>).syscall === 'string'
  );
}

/** recvMsg refuses buffers larger than this (RangeError). */
export const MAX_RECV_BYTES = 64 * 1024 * 1024;
/** Kernel cap on fds in one SCM_RIGHTS message (SCM_MAX_FD). */
export const MAX_SCM_FDS = 253;

/** Unix socket pair. Defaults: close-on-exec and non-blocking on both ends. */
export function socketPair(
  type: 'stream' | 'dgram',
  opts?: { cloexec?: boolean; nonblock?: boolean },
): [Fd, Fd] {
  return binding.socketPair(type, opts?.cloexec ?? true, opts?.nonblock ?? true);
}

export function setCloexec(fd: Fd, on: boolean): void {
  binding.setCloexec(fd, on);
}

export function setNonblock(fd: Fd, on: boolean): void {
  binding.setNonblock(fd, on);
}

/** close(2); EINTR counts as closed (Linux always releases the fd). */
export function closeFd(fd: Fd): void {
  binding.closeFd(fd);
}

export interface Received {
  bytes: Buffer;
  /** Received fds, already O_CLOEXEC. The caller owns (and must close) them. */
  fds: Fd[];
  /** Datagram was longer than maxBytes (MSG_TRUNC); the rest is lost. */
  truncated: boolean;
  /** More fds arrived than maxFds (MSG_CTRUNC); the kernel closed the excess. */
  controlTruncated: boolean;
}

/**
 * Non-blocking recvmsg (MSG_DONTWAIT | MSG_CMSG_CLOEXEC).
 * 'again': nothing to read. 'eof': stream peer closed. A 0-byte datagram is
 * a Received with empty bytes. maxBytes is 1..MAX_RECV_BYTES, maxFds 0..MAX_SCM_FDS.
 */
export function recvMsg(fd: Fd, maxBytes: number, maxFds: number): Received | 'again' | 'eof' {
  return binding.recvMsg(fd, maxBytes, maxFds);
}

/**
 * Non-blocking sendmsg with MSG_NOSIGNAL; fds go as one SCM_RIGHTS message
 * on the first byte (data must then be non-empty). Returns bytes written —
 * on a stream this may be fewer than data.length; send the rest without fds.
 */
export function sendMsg(fd: Fd, data: Buffer | Uint8Array, fds?: readonly Fd[]): number | 'again' {
  return binding.sendMsg(fd, data, fds);
}

export interface PollEvents {
  readable: boolean;
  writable: boolean;
  disconnect: boolean;
}

/**
 * uv_poll_t on a raw fd; the callback runs on the JS thread. libuv switches
 * the fd to O_NONBLOCK. Close the Poller before closing its fd, and use at
 * most one Poller per fd.
 */
export class Poller {
  readonly #native: RawPoller;

  constructor(fd: Fd, onEvent: (err: Error | null, events: PollEvents) => void) {
    if (typeof onEvent !== 'function') throw new TypeError('onEvent must be a function');
    this.#native = new binding.Poller(fd, onEvent);
  }

  /** (Re)arms with exactly these events; disconnect is always reported. Both false = stop(). */
  start(events: { readable?: boolean; writable?: boolean }): void {
    if (typeof events !== 'object' || events === null) throw new TypeError('events must be an object');
    this.#native.start(events.readable === true, events.writable === true);
  }

  stop(): void {
    this.#native.stop();
  }

  /** Idempotent; does not close the fd; safe inside the callback. start() afterwards throws. */
  close(): void {
    this.#native.close();
  }

  /** Like net.Socket#unref: an armed poller stops keeping the process alive. */
  unref(): void {
    this.#native.unref();
  }

  ref(): void {
    this.#native.ref();
  }
}

export type FastPathEvent = RawFastPathEvent;

/**
 * A session's handshake socket served on a native thread (native/fast-path.c):
 * a request byte-identical to one remembered as Run (same program path, same
 * rules generation) is answered there without JS; every other connection and
 * datagram is queued for take(), as are the hits (for the audit log). onReady
 * runs on the JS thread when take() has something: at once for connections,
 * within 50 ms or 256 hits for hits. Close it before closing the socket.
 */
export class FastPath {
  readonly #native: RawFastPath;

  constructor(fd: Fd, opts: { handshakeByte: number; maxFds: number; maxPending: number }, onReady: () => void) {
    if (typeof onReady !== 'function') throw new TypeError('onReady must be a function');
    this.#native = new binding.FastPath(fd, opts.handshakeByte, opts.maxFds, opts.maxPending, onReady);
  }

  /**
   * Answer this exact request (frame payload) for this program path with `reply` from now on, when it comes with
   * `fds` fds (1: the program's; 2: and an exec filter's listener, handed out with the hit). 1: taken; 2: that
   * request is there already (under its first id); 0: the table is full; -1: refused (another generation, empty
   * or too large, closed).
   */
  remember(program: Uint8Array, payload: Uint8Array, reply: Uint8Array, id: number, generation: number, fds: 1 | 2): 1 | 2 | 0 | -1 {
    return this.#native.remember(program, payload, reply, id, generation, fds);
  }

  /** Forget every entry; returns the new generation (a remember() with an older one is refused). */
  clear(): number {
    return this.#native.clear();
  }

  generation(): number {
    return this.#native.generation();
  }

  /** Everything queued, oldest first; the fds in it are the caller's. */
  take(): FastPathEvent[] {
    return this.#native.take();
  }

  stats(): { hits: number; misses: number; entries: number } {
    return this.#native.stats();
  }

  /** The thread's nice value (setpriority of its tid; a closed one: nothing). */
  setNice(nice: number): void {
    this.#native.setNice(nice);
  }

  /** Stop the thread (joined before this returns); what it queued stays for take(). Idempotent. */
  close(): void {
    this.#native.close();
  }

  unref(): void {
    this.#native.unref();
  }

  ref(): void {
    this.#native.ref();
  }
}

export interface SpawnOptions {
  /** Path to execve (bytes allowed: may be non-UTF-8). Relative paths resolve against cwd. */
  file: Buffer | string;
  argv: readonly (Buffer | string)[];
  /** "NAME=value" entries, bytes allowed. */
  env: readonly (Buffer | string)[];
  cwd: Buffer | string;
  /** Child gets source dup'ed onto target; every other fd is closed in the child. */
  fdMap: ReadonlyArray<readonly [target: Fd, source: Fd]>;
  /** setpgid(0, 0) in the child. */
  newProcessGroup?: boolean;
  /** New session (setsid) instead; wins over newProcessGroup. */
  setsid?: boolean;
  /**
   * Exec this open fd (execveat AT_EMPTY_PATH) instead of `file`, so exactly
   * the checked file runs. Note: a `#!` script cannot be exec'd this way
   * (the fd is close-on-exec, the kernel reports ENOENT); use `file` for those.
   */
  execFd?: Fd;
  /** Nice value for the program (best effort); e.g. undo the escalation server's own priority boost. */
  nice?: number;
  /**
   * An open (O_WRONLY) `cgroup.procs` of a cgroup v2: the child joins that
   * cgroup before exec, so all its descendants are born inside it. A failed
   * join fails the spawn (`.syscall` 'cgroup'); the program never runs.
   */
  cgroupFd?: Fd;
  /**
   * An open directory fd of that cgroup (O_RDONLY | O_DIRECTORY): the child is born inside it (clone3
   * CLONE_INTO_CGROUP, Linux 5.7), which spares the ~6 ms a cold cgroup.procs write waits for an RCU grace period.
   * Where clone3 is refused, the child joins through `cgroupFd` instead (required with this, for that case).
   */
  cgroupDirFd?: Fd;
  /**
   * Keep running if this process dies (no PR_SET_PDEATHSIG): how child_process starts a child. Default false:
   * an escalated command must not run on, unattended and outside the sandbox, after its server was killed.
   */
  outliveParent?: boolean;
}

function toBytes(v: unknown, name: string): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`${name} must be a string or Buffer`);
}

function toBytesArray(v: unknown, name: string): Uint8Array[] {
  if (!Array.isArray(v)) throw new TypeError(`${name} must be an array of strings or Buffers`);
  return v.map((x: unknown, i) => toBytes(x, `${name}[${i}]`));
}

/**
 * clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD) + execve. The child starts with an
 * empty signal mask and default dispositions, and is SIGKILLed if this
 * process dies (PR_SET_PDEATHSIG, unless outliveParent; its own descendants are not). Failures before exec throw an
 * Error with .code and .syscall ('execve' | 'chdir' | 'dup2' | 'setsid' |
 * 'setpgid' | 'cgroup'); the failed child is already reaped. On success the caller owns
 * the pidfd (close it, or let waitForExit do so).
 */
export function spawnProcess(opts: SpawnOptions): { pid: number; pidfd: Fd } {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('spawnProcess options must be an object');
  const fdMap: unknown = opts.fdMap;
  if (!Array.isArray(fdMap)) throw new TypeError('fdMap must be an array of [target, source] pairs');
  const execFd = opts.execFd ?? -1;
  if (opts.execFd !== undefined && (typeof opts.execFd !== 'number' || opts.execFd < 0)) {
    throw new RangeError('execFd must be a non-negative fd number');
  }
  const cgroupFd = opts.cgroupFd ?? -1;
  if (opts.cgroupFd !== undefined && (typeof opts.cgroupFd !== 'number' || !Number.isInteger(opts.cgroupFd) || opts.cgroupFd < 0)) {
    throw new RangeError('cgroupFd must be a non-negative fd number');
  }
  const cgroupDirFd = opts.cgroupDirFd ?? -1;
  if (opts.cgroupDirFd !== undefined && (typeof opts.cgroupDirFd !== 'number' || !Number.isInteger(opts.cgroupDirFd) || opts.cgroupDirFd < 0 || opts.cgroupFd === undefined)) {
    throw new RangeError('cgroupDirFd must be a non-negative fd number, given with cgroupFd');
  }
  return binding.spawn(
    toBytes(opts.file, 'file'),
    toBytesArray(opts.argv, 'argv'),
    toBytesArray(opts.env, 'env'),
    toBytes(opts.cwd, 'cwd'),
    fdMap as ReadonlyArray<readonly [number, number]>,
    opts.newProcessGroup === true,
    opts.setsid === true,
    execFd,
    opts.nice ?? null,
    cgroupFd,
    cgroupDirFd,
    opts.outliveParent === true,
  );
}

export interface ExitStatus {
  /** Exit code when the child exited normally, else null. */
  code: number | null;
  /** Terminating signal number when killed, else null. */
  signal: number | null;
  coreDumped: boolean;
}

/**
 * Resolves when the child exits: polls the pidfd, then reaps with
 * waitid(P_PIDFD, WEXITED). Closes the pidfd whether it resolves or rejects.
 */
export function waitForExit(pid: number, pidfd: Fd): Promise<ExitStatus> {
  if (!Number.isInteger(pid) || pid <= 0) return Promise.reject(new RangeError(`pid must be a positive integer, got ${pid}`));
  if (!Number.isInteger(pidfd) || pidfd < 0) {
    return Promise.reject(new RangeError(`pidfd must be a non-negative integer, got ${pidfd}`));
  }
  return new Promise<ExitStatus>((resolve, reject) => {
    let poller: Poller | undefined;
    let done = false;
    const finish = (err: unknown, status?: ExitStatus): void => {
      if (done) return;
      done = true;
      poller?.close();
      try {
        closeFd(pidfd);
      } catch (closeErr) {
        err ??= closeErr;
      }
      if (status && err === undefined) resolve(status);
      else reject(err);
    };
    const tryReap = (): void => {
      try {
        const st = binding.waitPidfd(pidfd);
        if (st) finish(undefined, { code: st.code, signal: st.signal, coreDumped: st.coreDumped });
      } catch (err) {
        finish(err);
      }
    };
    tryReap();
    if (done) return;
    try {
      poller = new Poller(pidfd, (err) => {
        if (err) finish(err);
        else tryReap();
      });
      poller.start({ readable: true });
    } catch (err) {
      finish(err);
    }
  });
}

/** pidfd_send_signal; a child that already exited (ESRCH) is not an error. */
export function sendSignal(pidfd: Fd, signal: number): void {
  binding.sendSignal(pidfd, signal);
}

/** open(path, O_PATH | O_CLOEXEC): a handle for execFd that cannot be swapped underneath. */
export function openPath(path: Buffer | string): Fd {
  return binding.openPath(toBytes(path, 'path'));
}

/** Credentials of the process that created the peer socket (SO_PEERCRED), pid in our namespace. */
export function peerCredentials(fd: Fd): { pid: number; uid: number; gid: number } {
  return binding.peerCredentials(fd);
}

/** Number of open fds in this process (for leak checks). */
export function countOpenFds(): number {
  return binding.countOpenFds();
}

/**
 * Set FD_CLOEXEC on every open fd >= minFd that lacks it; returns the fds it
 * changed (restore them with setCloexec(fd, false)). Node's spawn passes on
 * every fd this process inherited without O_CLOEXEC: marking them first is
 * how a child starts with only the fds it is given. Throws (after undoing its
 * changes) if an fd cannot be marked.
 */
export function markCloexecFrom(minFd: number): Fd[] {
  return binding.markCloexecFrom(minFd);
}

/** tcflush(fd, TCIFLUSH): discard what was typed on the terminal but not read yet. */
export function ttyFlushInput(fd: Fd): void {
  binding.ttyFlushInput(fd);
}

/**
 * For one question on the terminal `fd`: our process group in the foreground
 * and canonical mode with echo (CR->NL, signals) on, undoing what a sandbox
 * sharing the terminal may have set (`set -m` jobs, `stty -echo -icanon`).
 * Returns what ttyGiveBack restores. SIGTTOU is blocked around the calls.
 */
export function ttyTakeOver(fd: Fd): Buffer {
  return binding.ttyTakeOver(fd);
}

export function ttyGiveBack(fd: Fd, saved: Uint8Array): void {
  binding.ttyGiveBack(fd, saved);
}

export type { RawNotification as ExecNotification } from './binding.js';

/**
 * A pending notification on a seccomp listener fd, read without blocking:
 * null when none is pending, `{ hup }` when no process uses the filter any
 * more, `{ gone }` when the target died before it could be read. Path and
 * argv are read from the process's memory within `bounds`, then checked
 * with ID_VALID; `error` says what could not be read (the caller denies).
 */
export function seccompNotifyRecv(fd: Fd, bounds: { path: number; arg: number; total: number; argc: number }): import('./binding.js').RawNotification | null {
  return binding.seccompNotifyRecv(fd, bounds);
}

/** Answer a notification: continue the syscall (errno 0), or fail it with that errno. False when the target is gone. */
export function seccompNotifySend(fd: Fd, id: bigint, errno: number): boolean {
  return binding.seccompNotifySend(fd, id, errno);
}

/**
 * O_PATH fd on the file that process `pid`'s execve(path) / execveat(dirfd,
 * path, .., flags) would run, resolved in that process's root and from its
 * cwd (or dirfd). Throws with the errno code (ENOENT: nothing there).
 */
export function seccompOpenTarget(pid: number, dirfd: number, path: Buffer, flags: number): Fd {
  return binding.seccompOpenTarget(pid, dirfd, path, flags);
}

/**
 * Write `line` on the stderr of the process blocked in notification `id` of
 * listener `fd`, never blocking and only where that process could write
 * itself (see native/seccomp-notify.c). 0: nothing written; 1: written, to
 * a file other than our stderr; 2: written, and it is our stderr as well.
 */
export function seccompWriteStderr(fd: Fd, id: bigint, pid: number, line: Buffer): 0 | 1 | 2 {
  return binding.seccompWriteStderr(fd, id, pid, line);
}

export type { RawHubNotification as HubNotification } from './binding.js';

/**
 * Every seccomp listener of a session behind one epoll fd and one uv_poll
 * (native/seccomp-notify.c): a listener costs nothing until its tree makes
 * an exec; a hung-up one is closed natively without calling JS. The hub owns
 * the fds it is given; answers go by listener id (never reused), so an
 * answer to a closed listener fails instead of reaching a recycled fd.
 */
export class SeccompHub {
  readonly #native: RawSeccompHub;

  constructor(bounds: { path: number; arg: number; total: number; argc: number }, onNotify: (listener: number, notification: RawHubNotification) => void) {
    if (typeof onNotify !== 'function') throw new TypeError('onNotify must be a function');
    this.#native = new binding.SeccompHub(bounds, onNotify);
  }

  /** Take ownership of a listener fd (closed even when this throws); its id. */
  add(fd: Fd): number {
    return this.#native.add(fd);
  }

  /** Continue the exec (errno 0) or fail it with errno; false when the target or its listener is gone. */
  send(listener: number, id: bigint, errno: number): boolean {
    return this.#native.send(listener, id, errno);
  }

  /** As seccompWriteStderr, through the listener's id. */
  writeStderr(listener: number, id: bigint, pid: number, line: Buffer): 0 | 1 | 2 {
    return this.#native.writeStderr(listener, id, pid, line);
  }

  /** Listeners still open. */
  get size(): number {
    return this.#native.size();
  }

  /** Idempotent: closes every listener (the kernel then fails their execs). */
  close(): void {
    this.#native.close();
  }
}
