/**
 * Loads build/Release/codex_native.node (built by node-gyp at `npm install`)
 * and describes its raw, positional interface. Only src/native/index.ts should
 * import this; everyone else uses the typed wrapper.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Raw exit status as returned by waitid(P_PIDFD). */
export interface RawExitStatus {
  code: number | null;
  signal: number | null;
  coreDumped: boolean;
}

export interface RawReceived {
  bytes: Buffer;
  fds: number[];
  truncated: boolean;
  controlTruncated: boolean;
}

export interface RawPollEvents {
  readable: boolean;
  writable: boolean;
  disconnect: boolean;
}

export interface RawPoller {
  start(readable: boolean, writable: boolean): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

/** A decided notification, as the hub hands it over (never `hup`: the hub closes those itself). */
export type RawHubNotification = Exclude<RawNotification, { hup: true }>;

export interface RawSeccompHub {
  add(fd: number): number;
  send(listener: number, id: bigint, err: number): boolean;
  writeStderr(listener: number, id: bigint, pid: number, line: Uint8Array): 0 | 1 | 2;
  size(): number;
  close(): void;
}

/** One thing the fast path's thread queued (see native/fast-path.c); fds are the taker's. */
export type RawFastPathEvent =
  | { kind: 'hit'; id: number; latencyUs: number; listener?: number }
  | { kind: 'connection'; fd: number }
  | { kind: 'datagram'; bytes: Buffer; fds: number[]; truncated: boolean; controlTruncated: boolean };

export interface RawFastPath {
  remember(program: Uint8Array, payload: Uint8Array, reply: Uint8Array, id: number, generation: number, fds: 1 | 2): 1 | 2 | 0 | -1;
  clear(): number;
  generation(): number;
  take(): RawFastPathEvent[];
  stats(): { hits: number; misses: number; entries: number };
  setNice(nice: number): void;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeBinding {
  socketPair(type: 'stream' | 'dgram', cloexec: boolean, nonblock: boolean): [number, number];
  setCloexec(fd: number, on: boolean): void;
  setNonblock(fd: number, on: boolean): void;
  closeFd(fd: number): void;
  recvMsg(fd: number, maxBytes: number, maxFds: number): RawReceived | 'again' | 'eof';
  sendMsg(fd: number, data: Uint8Array, fds?: readonly number[]): number | 'again';
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  Poller: new (fd: number, onEvent: (err: Error | null, events: RawPollEvents) => void) => RawPoller;
  spawn(
    file: Uint8Array,
    argv: readonly Uint8Array[],
    env: readonly Uint8Array[],
    cwd: Uint8Array,
    fdMap: ReadonlyArray<readonly [number, number]>,
    newProcessGroup: boolean,
    setsid: boolean,
    execFd: number,
    nice: number | null,
    cgroupFd: number,
    cgroupDirFd: number,
    outliveParent: boolean,
  ): { pid: number; pidfd: number };
  ttyFlushInput(fd: number): void;
  ttyTakeOver(fd: number): Buffer;
  ttyGiveBack(fd: number, saved: Uint8Array): void;
  waitPidfd(pidfd: number): RawExitStatus | null;
  sendSignal(pidfd: number, signal: number): void;
  openPath(path: Uint8Array): number;
  countOpenFds(): number;
  markCloexecFrom(minFd: number): number[];
  seccompNotifyRecv(fd: number, bounds: { path: number; arg: number; total: number; argc: number }): RawNotification | null;
  seccompNotifySend(fd: number, id: bigint, err: number): boolean;
  seccompOpenTarget(pid: number, dirfd: number, path: Uint8Array, flags: number): number;
  seccompWriteStderr(fd: number, id: bigint, pid: number, line: Uint8Array): 0 | 1 | 2;
  SeccompHub: new (
    bounds: { path: number; arg: number; total: number; argc: number },
    onNotify: (listener: number, notification: RawHubNotification) => void,
  ) => RawSeccompHub;
  FastPath: new (fd: number, handshakeByte: number, maxFds: number, maxPending: number, onReady: () => void) => RawFastPath;
}

/** One seccompNotifyRecv result (see native/seccomp-notify.c). */
export type RawNotification =
  | { hup: true }
  | { gone: true }
  | { id: bigint; pid: number; syscall: 'execve' | 'execveat' | 'other'; dirfd?: number; flags?: number; path?: Buffer; argv?: Buffer[]; error?: string };

const ADDON_RELATIVE = path.join('build', 'Release', 'codex_native.node');

/** Walks up from this module to the directory holding binding.gyp (works from src/ and dist/src/). */
function findPackageRoot(start: string): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'binding.gyp')) && existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function load(): NativeBinding {
  if (process.platform !== 'linux') {
    throw new Error(`codex-shell-escalation: the native addon supports Linux only (this is ${process.platform})`);
  }
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(here);
  // CODEX_NATIVE_ADDON lets packagers point at a prebuilt addon elsewhere.
  const override = process.env['CODEX_NATIVE_ADDON'];
  const candidate = override ?? (root ? path.join(root, ADDON_RELATIVE) : undefined);
  if (!candidate || !existsSync(candidate)) {
    const where = root ?? '<package root>';
    throw new Error(
      `codex-shell-escalation: native addon not found at ${candidate ?? path.join(where, ADDON_RELATIVE)}. ` +
        `It is compiled by node-gyp during installation: run \`npm install\` (or \`npm rebuild\`) in ${where}. ` +
        `A C compiler, make and python3 are required.`,
    );
  }
  const require = createRequire(import.meta.url);
  try {
    return require(candidate) as NativeBinding;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `codex-shell-escalation: failed to load native addon ${candidate}: ${reason}. ` +
        'If Node was upgraded since installation, run `npm rebuild`.',
      { cause: err },
    );
  }
}

export const binding: NativeBinding = load();
