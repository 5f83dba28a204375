import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { bytesToWireString, ProtocolError, wireStringToBytes } from '../protocol/codec.js';
import type { EscalateRequest } from '../protocol/messages.js';
import type { ExecRequest } from '../policy/types.js';

export interface ResolvedRequest extends ExecRequest {
  /** False when the program could not be resolved to an existing file (it may still be Run: the exec then fails as it would under stock bash). */
  readonly resolved: boolean;
  /** Why resolution failed, when it did. */
  readonly resolveError?: string;
  /** Whether the peer understands our protocol extensions. */
  readonly peerExtensions: number;
}

/**
 * Turn a validated wire request into what the policy sees: an absolute,
 * symlink-free program path. Relative `file` is resolved against the
 * request's workdir, which must itself be absolute.
 */
export async function resolveRequest(
  wire: EscalateRequest,
  ids: { sessionId: string; requestId: string },
): Promise<ResolvedRequest> {
  if (!wire.workdir.startsWith('/')) throw new ProtocolError(`workdir is not absolute: ${JSON.stringify(wire.workdir)}`);
  // Paths may carry escaped non-UTF-8 bytes: resolve on the exact bytes.
  const lexical = path.posix.resolve(wire.workdir, wire.file);
  let program = lexical;
  let resolved = true;
  let resolveError: string | undefined;
  try {
    const real = await realpath(wireStringToBytes(lexical), { encoding: 'buffer' });
    program = bytesToWireString(real);
  } catch (err) {
    resolved = false;
    const e = err as NodeJS.ErrnoException;
    resolveError = `${e.code ?? 'error'}: cannot resolve ${lexical}`;
  }
  return {
    sessionId: ids.sessionId,
    requestId: ids.requestId,
    file: wire.file,
    program,
    argv: wire.argv,
    workdir: wire.workdir,
    env: wire.env,
    resolved,
    ...(resolveError === undefined ? {} : { resolveError }),
    peerExtensions: wire.ext ?? 0,
  };
}
