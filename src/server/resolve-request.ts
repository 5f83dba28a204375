import { fstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { bytesToWireString, ProtocolError, wireStringToBytes } from '../protocol/codec.js';
import type { EscalateRequest } from '../protocol/messages.js';
import type { ExecRequest } from '../policy/types.js';
import { closeFd, openPath, type Fd } from '../native/index.js';

export interface ResolvedRequest extends ExecRequest {
  /** False when the program could not be resolved to an existing file (it may still be Run: the exec then fails as it would under stock bash). */
  readonly resolved: boolean;
  /** Why resolution failed, when it did. */
  readonly resolveError?: string;
  /**
   * O_PATH handle on the very file `program` names, opened once at resolve
   * time: an escalation execs this file, so swapping a symlink or a path
   * component after the decision cannot change what runs. Owned by the
   * server's connection; closed when the request is done.
   */
  readonly programFd?: Fd;
  /** Whether the peer understands our protocol extensions. */
  readonly peerExtensions: number;
}

/** The path an O_PATH fd refers to (the kernel's view: absolute, symlink-free). */
export function fdPath(fd: Fd): Buffer {
  return readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
}

/**
 * Turn a validated wire request into what the policy sees: an absolute,
 * symlink-free program path. Relative `file` is resolved against the
 * request's workdir, which must itself be absolute. Sync on purpose: an open
 * and a readlink are a few microseconds, far less than a thread-pool trip.
 */
export function resolveRequest(wire: EscalateRequest, ids: { sessionId: string; requestId: string }): ResolvedRequest {
  if (!wire.workdir.startsWith('/')) throw new ProtocolError(`workdir is not absolute: ${JSON.stringify(wire.workdir)}`);
  // Paths may carry escaped non-UTF-8 bytes: resolve on the exact bytes.
  const lexical = path.posix.resolve(wire.workdir, wire.file);
  const base = {
    sessionId: ids.sessionId,
    requestId: ids.requestId,
    file: wire.file,
    argv: wire.argv,
    workdir: wire.workdir,
    env: wire.env,
    peerExtensions: wire.ext ?? 0,
  };
  let fd: Fd;
  try {
    fd = openPath(wireStringToBytes(lexical));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ...base, program: lexical, resolved: false, resolveError: `${code}: cannot resolve ${lexical}` };
  }
  try {
    const real = fdPath(fd);
    // A file unlinked meanwhile reads back as "path (deleted)": nothing to run.
    if (fstatSync(fd).nlink === 0) throw Object.assign(new Error('deleted'), { code: 'ENOENT' });
    return { ...base, program: bytesToWireString(real), resolved: true, programFd: fd };
  } catch (err) {
    closeQuietly(fd);
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ...base, program: lexical, resolved: false, resolveError: `${code}: cannot resolve ${lexical}` };
  }
}

function closeQuietly(fd: Fd): void {
  try {
    closeFd(fd);
  } catch {
    // Already released.
  }
}
