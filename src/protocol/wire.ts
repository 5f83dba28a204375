import { wireByteLength } from './codec.js';
import { PIPELINE_MAX_BYTES } from './constants.js';
import type { EscalateRequest, EscalateResponse } from './messages.js';

/**
 * The half of the wire messages that needs no zod: the request's bound
 * checks and hot-path shape check, the reply encoder, the listener frame's
 * exact bytes. The server's per-exec path imports only this; the schemas
 * (messages.ts, which re-exports all of this) are loaded when a frame needs
 * them (lazy-schemas.ts): zod's import alone costs more CPU than the rest of
 * `run -- true`.
 */

/**
 * What one request may carry: exactly what Linux execve accepts (fs/exec.c),
 * so nothing a real exec could pass is refused, and nothing bigger costs us
 * anything past this check.
 *  - each argv string, and each env `NAME=VALUE`, is at most MAX_ARG_STRLEN
 *    (32 pages = 131072 bytes) including its NUL;
 *  - argv + env strings (with NULs) plus one 8-byte pointer each are at most
 *    3/4 of _STK_LIM = 6 MiB (the kernel's cap on stack-rlimit/4), hence at
 *    most 699050 strings;
 *  - `file` and `workdir` are single strings: at most MAX_ARG_STRLEN too.
 */
export const MAX_ARG_STRLEN = 32 * 4096;
export const MAX_EXEC_BYTES = 6 * 1024 * 1024;
const POINTER_BYTES = 8;
export const MAX_EXEC_STRINGS = Math.floor(MAX_EXEC_BYTES / (POINTER_BYTES + 1));

/**
 * Check a parsed (not yet validated) request against the execve bounds and
 * its elements' types, cheapest test first and stopping at the first problem:
 * an impossible element count is refused without looking at the elements, and
 * the schema (which would build one issue per bad element, ~5 µs each) only
 * ever sees well-typed lists. Returns the reason, or null. The top-level shape
 * is left to the schema.
 */
export function precheckRequest(raw: unknown): string | null {
  return withinBoundsByLength(raw) ? null : precheckExact(raw);
}

/**
 * The hot path of precheckRequest: true when the request surely passes, from
 * the types and the string lengths alone. A UTF-16 unit is at most 3 bytes on
 * the wire (a pair is 4 bytes for 2 units, an escaped byte 1), so 3 bytes per
 * unit bounds every size from above without converting a string; any doubt
 * (a bad element, a bound reached) goes to precheckExact for the exact verdict
 * and message. Hence precheckRequest(r) === precheckExact(r) for every r
 * (test/unit/boundary-logic.test.ts fuzzes both).
 */
function withinBoundsByLength(raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null) return true; // precheckExact has nothing to say either
  const { argv, env, file, workdir } = raw as Record<string, unknown>;
  if (!Array.isArray(argv) || typeof env !== 'object' || env === null || Array.isArray(env)) return false;
  const names = Object.keys(env);
  if (argv.length + names.length > MAX_EXEC_STRINGS) return false;
  const limit = MAX_ARG_STRLEN - 1; // 3 × units + NUL ≤ MAX_ARG_STRLEN
  if ((typeof file === 'string' && 3 * file.length > limit) || (typeof workdir === 'string' && 3 * workdir.length > limit)) return false;
  let total = (argv.length + names.length) * (POINTER_BYTES + 1);
  for (let i = 0; i < argv.length; i++) {
    const a: unknown = argv[i];
    if (typeof a !== 'string' || 3 * a.length > limit || a.includes('\0')) return false;
    total += 3 * a.length;
  }
  const values = env as Record<string, unknown>;
  for (const name of names) {
    const v = values[name];
    if (typeof v !== 'string' || name.length === 0 || 3 * (name.length + v.length) + 1 > limit) return false;
    if (name.includes('\0') || name.includes('=') || v.includes('\0')) return false;
    total += 3 * (name.length + v.length) + 1;
  }
  return total <= MAX_EXEC_BYTES;
}

/** precheckRequest's exact verdict, element by element (sizes in wire bytes). */
export function precheckExact(raw: unknown): string | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const { argv, env, file, workdir } = raw as Record<string, unknown>;
  const argc = Array.isArray(argv) ? argv.length : 0;
  const envNames = typeof env === 'object' && env !== null && !Array.isArray(env) ? Object.keys(env) : [];
  if (argc + envNames.length > MAX_EXEC_STRINGS) {
    return `request too large: ${argc} argv + ${envNames.length} env strings, over the ${MAX_EXEC_STRINGS} execve can take (${MAX_EXEC_BYTES} bytes of arguments)`;
  }
  for (const [what, v] of [['file', file], ['workdir', workdir]] as const) {
    if (typeof v === 'string' && wireByteLength(v) + 1 > MAX_ARG_STRLEN) {
      return `request too large: ${what} is ${wireByteLength(v) + 1} bytes, over execve's per-string limit of ${MAX_ARG_STRLEN} (MAX_ARG_STRLEN, with the NUL)`;
    }
  }
  const invalid = (where: string, message: string) => `invalid request: ${where}: ${message}`;
  let total = (argc + envNames.length) * POINTER_BYTES;
  if (Array.isArray(argv)) {
    for (let i = 0; i < argc; i++) {
      const a: unknown = argv[i];
      if (typeof a !== 'string') return invalid(`argv.${i}`, `Expected string, received ${a === null ? 'null' : typeof a}`);
      if (a.includes('\0')) return invalid(`argv.${i}`, 'argv element contains a NUL byte');
      const n = wireByteLength(a) + 1;
      if (n > MAX_ARG_STRLEN) return `request too large: argv[${i}] is ${n} bytes, over execve's per-string limit of ${MAX_ARG_STRLEN} (MAX_ARG_STRLEN, with the NUL)`;
      total += n;
    }
  }
  const values = env as Record<string, unknown>;
  for (const name of envNames) {
    const v = values[name];
    const where = `env.${name.slice(0, 64)}`;
    if (name.includes('\0')) return invalid(where, 'env name contains a NUL byte');
    if (name.length === 0 || name.includes('=')) return invalid(where, 'invalid env name');
    if (typeof v !== 'string') return invalid(where, `Expected string, received ${v === null ? 'null' : typeof v}`);
    if (v.includes('\0')) return invalid(where, 'env value contains a NUL byte');
    const n = wireByteLength(name) + 1 + wireByteLength(v) + 1; // NAME=VALUE and its NUL
    if (n > MAX_ARG_STRLEN) return `request too large: env ${name.slice(0, 64)} is ${n} bytes as NAME=VALUE, over execve's per-string limit of ${MAX_ARG_STRLEN}`;
    total += n;
  }
  if (total > MAX_EXEC_BYTES) return `request too large: argv + env are ${total} bytes with pointers, over execve's limit of ${MAX_EXEC_BYTES} (E2BIG)`;
  return null;
}

/**
 * EscalateRequestSchema's result for a request whose argv and env the
 * pre-check has already validated element by element, without the schema's
 * per-call cost (~10 µs warm, several times that cold, on every exec): the
 * same checks of file, workdir and ext, unknown keys dropped. Returns
 * undefined wherever the schema could refuse; the caller then asks the schema,
 * for its error message. Differential-fuzzed against the schema:
 * test/unit/boundary-logic.test.ts.
 */
export function validRequestShape(raw: Readonly<Record<string, unknown>>, argv: string[], env: Record<string, string>): EscalateRequest | undefined {
  const { file, workdir, ext, pipeline } = raw;
  if (typeof file !== 'string' || file.length === 0 || file.includes('\0')) return undefined;
  if (typeof workdir !== 'string' || workdir.length === 0 || workdir.includes('\0')) return undefined;
  // zod's int() is a safe integer.
  if (ext !== undefined && (typeof ext !== 'number' || !Number.isSafeInteger(ext) || ext < 0)) return undefined;
  if (pipeline === undefined) return ext === undefined ? { file, argv, workdir, env } : { file, argv, workdir, env, ext };
  if (typeof pipeline !== 'string' || pipeline.includes('\0') || !pipelineWithinBound(pipeline)) return undefined;
  return ext === undefined ? { file, argv, workdir, env, pipeline } : { file, argv, workdir, env, ext, pipeline };
}

/** At most PIPELINE_MAX_BYTES on the wire (3 bytes per UTF-16 unit at most, so most strings need no count). */
export function pipelineWithinBound(s: string): boolean {
  return 3 * s.length <= PIPELINE_MAX_BYTES || wireByteLength(s) <= PIPELINE_MAX_BYTES;
}

/** The decision the server takes for one exec, before it is put on the wire. */
export type Action =
  | { readonly kind: 'run'; readonly rewrite?: { readonly file: string; readonly argv: readonly string[] } }
  | { readonly kind: 'escalate' }
  | { readonly kind: 'deny'; readonly reason: string | null };

export function toWireResponse(action: Action, ext: { readonly shell?: string | undefined; readonly listener?: boolean } = {}): EscalateResponse {
  switch (action.kind) {
    case 'run': {
      const shell = { ...(ext.shell !== undefined ? { shell: ext.shell } : {}), ...(ext.listener ? { listener: true } : {}) };
      return action.rewrite ? { action: { RunRewritten: { file: action.rewrite.file, argv: [...action.rewrite.argv] } }, ...shell } : { action: 'Run', ...shell };
    }
    case 'escalate':
      return { action: 'Escalate' };
    case 'deny':
      return { action: { Deny: { reason: action.reason } } };
  }
}

/**
 * The listener frame exactly as our wrapper writes it (wrapper/codex-execve-wrapper.c): these bytes pass
 * ListenerFrameSchema, so they are accepted without loading zod; any other payload is the schema's to judge.
 */
export const LISTENER_FRAME_PAYLOAD = '{"listener":true}';
