import { fstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { bytesToWireString, ProtocolError, wireStringToBytes } from '../protocol/codec.js';
import type { EscalateRequest } from '../protocol/messages.js';
import type { ExecRequest } from '../policy/types.js';
import { openPath, peerCredentials, type Fd } from '../native/index.js';
import { closeQuietly } from './owned-fds.js';

import { EXT_PROGRAM_FD, PIPELINE_ENV_VAR } from '../protocol/constants.js';

/** The extension level at which the wrapper sends its own O_PATH handle on the program with the request. */
export { EXT_PROGRAM_FD };

export interface ResolvedRequest extends ExecRequest {
  /** False when the program could not be resolved to an existing file (it may still be Run: the exec then fails as it would under stock bash). */
  readonly resolved: boolean;
  /** Why resolution failed, when it did. */
  readonly resolveError?: string;
  /**
   * O_PATH handle on the very file `program` names: the wrapper's own (ext 2,
   * opened in the requester's view) or one the server opened at resolve
   * time. An escalation execs this file, so swapping a symlink or a path
   * component after the decision cannot change what runs. Owned by the
   * server's connection; closed when the request is done.
   */
  readonly programFd?: Fd;
  /** Whether the peer understands our protocol extensions. */
  readonly peerExtensions: number;
}

const DELETED_SUFFIX = Buffer.from(' (deleted)');

function endsWithDeleted(p: Buffer): boolean {
  return p.length >= DELETED_SUFFIX.length && p.compare(DELETED_SUFFIX, 0, DELETED_SUFFIX.length, p.length - DELETED_SUFFIX.length) === 0;
}

/** The path an O_PATH fd refers to (the kernel's view: absolute, symlink-free). */
export function fdPath(fd: Fd): Buffer {
  return readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
}

/**
 * Paths that name the calling process's own fds or directories. Opened in
 * the server they would name the server's (`exec 7</usr/bin/rm;
 * /proc/self/fd/7` would be decided as whatever the server's fd 7 is), so
 * for a request without the wrapper's fd they are rewritten to the
 * requester's /proc/PID. Lexical: `lexical` is already normalised.
 */
const SELF_PREFIXES: readonly [prefix: string, to: (pid: number) => string][] = [
  ['/proc/self', (pid) => `/proc/${pid}`],
  ['/proc/thread-self', (pid) => `/proc/${pid}`],
  ['/dev/fd', (pid) => `/proc/${pid}/fd`],
  ['/dev/stdin', (pid) => `/proc/${pid}/fd/0`],
  ['/dev/stdout', (pid) => `/proc/${pid}/fd/1`],
  ['/dev/stderr', (pid) => `/proc/${pid}/fd/2`],
];

/** `lexical` with a self-referring prefix replaced by the peer's /proc/PID, or undefined when it has none. */
export function rewriteSelfPath(lexical: string, pid: () => number): string | undefined {
  for (const [prefix, to] of SELF_PREFIXES) {
    if (lexical === prefix || lexical.startsWith(`${prefix}/`)) return to(pid()) + lexical.slice(prefix.length);
  }
  return undefined;
}

function peerPid(peerFd: Fd): number {
  const { pid } = peerCredentials(peerFd);
  if (!(pid > 0)) throw new Error('no peer pid');
  return pid;
}

export interface ResolveOptions {
  /** The connection: the requester is identified through it (SO_PEERCRED) when its view matters. */
  readonly peerFd: Fd;
  /**
   * The fd the wrapper attached to the request (ext 2). Ownership passes to
   * resolveRequest: it ends up as the request's programFd or is closed.
   */
  readonly attachedFd?: Fd;
}

/**
 * Turn a validated wire request into what the policy sees: an absolute,
 * symlink-free program path, in the requester's view of the filesystem.
 *  - ext >= 2: the wrapper opened the program itself (its root, its cwd, its
 *    own /proc/self) and sent that O_PATH fd; the program is that file, and
 *    no fd means the wrapper could not open it (not found).
 *  - otherwise (an upstream wrapper) the server opens the path: a relative
 *    `file` through the requester's /proc/PID/cwd and self-referring paths
 *    (/proc/self, /dev/fd, /dev/stdin, ...) through its /proc/PID. Other
 *    absolute paths, and symlinks inside the path, are resolved from the
 *    server's root (see docs/protocol.md, "Program identity").
 * Sync on purpose: an open and a readlink are a few microseconds, far less
 * than a thread-pool trip.
 */
export function resolveRequest(wire: EscalateRequest, ids: { sessionId: string; requestId: string }, opts: ResolveOptions): ResolvedRequest {
  let attached = opts.attachedFd;
  try {
    if (!wire.workdir.startsWith('/')) throw new ProtocolError(`workdir is not absolute: ${JSON.stringify(wire.workdir)}`);
    const ext = wire.ext ?? 0;
    if (attached !== undefined && ext < EXT_PROGRAM_FD) throw new ProtocolError(`a file descriptor is attached to a request of extension level ${ext} (needs ${EXT_PROGRAM_FD})`);
    // Paths may carry escaped non-UTF-8 bytes: resolve on the exact bytes. Only needed without the wrapper's fd
    // or when resolution fails (path.resolve is a measurable part of an ordinary request).
    let lexicalPath: string | undefined;
    const lexical = () => (lexicalPath ??= path.posix.resolve(wire.workdir, wire.file));
    const base = {
      sessionId: ids.sessionId,
      requestId: ids.requestId,
      file: wire.file,
      argv: wire.argv,
      workdir: wire.workdir,
      // Our wrapper never sends it in env; a forged copy must not reach the decision or an escalated child.
      env: Object.hasOwn(wire.env, PIPELINE_ENV_VAR) ? withoutKey(wire.env, PIPELINE_ENV_VAR) : wire.env,
      ...(wire.pipeline ? { pipeline: wire.pipeline } : {}),
      peerExtensions: ext,
    };
    const unresolved = (code: string): ResolvedRequest => ({ ...base, program: lexical(), resolved: false, resolveError: `${code}: cannot resolve ${lexical()}` });
    let fd: Fd;
    if (ext >= EXT_PROGRAM_FD) {
      if (attached === undefined) return unresolved('ENOENT');
      fd = attached;
      attached = undefined;
    } else {
      let target = lexical();
      try {
        let pid: number | undefined;
        const getPid = () => (pid ??= peerPid(opts.peerFd));
        if (!wire.file.startsWith('/')) target = `/proc/${getPid()}/cwd/${wire.file}`;
        else target = rewriteSelfPath(target, getPid) ?? target;
      } catch {
        return unresolved('ESRCH');
      }
      try {
        fd = openPath(wireStringToBytes(target));
      } catch (err) {
        return unresolved((err as NodeJS.ErrnoException).code ?? 'error');
      }
    }
    try {
      const real = fdPath(fd);
      // pipe:[N], socket:[N], anon_inode:...: not a file with a path (any fd type is safe here: only fstat and readlink touch it).
      if (real[0] !== 0x2f) throw Object.assign(new Error('not a file'), { code: 'EACCES' });
      // A file unlinked meanwhile (no name left: nlink 0) reads back as "path (deleted)": nothing to run. The kernel
      // adds that suffix to every unlinked name, so only then is the fstat needed (a file may also be named so).
      if (endsWithDeleted(real) && fstatSync(fd).nlink === 0) throw Object.assign(new Error('deleted'), { code: 'ENOENT' });
      return { ...base, program: bytesToWireString(real), resolved: true, programFd: fd };
    } catch (err) {
      closeQuietly(fd);
      return unresolved((err as NodeJS.ErrnoException).code ?? 'error');
    }
  } finally {
    if (attached !== undefined) closeQuietly(attached);
  }
}

function withoutKey(env: Readonly<Record<string, string>>, name: string): Record<string, string> {
  const { [name]: _dropped, ...rest } = env;
  return rest;
}
