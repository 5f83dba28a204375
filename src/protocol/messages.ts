import { z } from 'zod';
import { wireByteLength } from './codec.js';
import { PIPELINE_MAX_BYTES } from './constants.js';

/**
 * Wire messages, shaped exactly as the upstream Rust crate serialises them
 * (serde's externally tagged enums). Everything that arrives is untrusted, so
 * every incoming message is parsed with these schemas; fields we add are
 * optional so an upstream peer still interoperates.
 */

// NUL can never reach execve: reject it at the boundary instead of truncating.
const noNul = (what: string) =>
  z.string().refine((s) => !s.includes('\0'), { message: `${what} contains a NUL byte` });

export const EscalateRequestSchema = z.object({
  file: noNul('file').min(1, 'file is empty'),
  argv: z.array(noNul('argv element')),
  workdir: noNul('workdir').min(1, 'workdir is empty'),
  env: z.record(
    noNul('env name').refine((k) => k.length > 0 && !k.includes('='), { message: 'invalid env name' }),
    noNul('env value'),
  ),
  /**
   * Extension level of our wrapper (upstream sends none; servers ignore
   * unknown fields). 1: it understands extended responses (RunRewritten, the
   * `shell` of a Run). 2: it also attaches an O_PATH fd on the program,
   * opened in its own view, to the request frame.
   */
  ext: z.number().int().nonnegative().optional(),
  /**
   * [ext] The pipeline this exec is a stage of, as the patched bash printed it
   * (PIPELINE_ENV_VAR). The sandbox can forge it: a hint for hooks only, never
   * read by rules, prefixes or escalation.
   */
  pipeline: noNul('pipeline').refine(pipelineWithinBound, { message: `pipeline is longer than ${PIPELINE_MAX_BYTES} bytes` }).optional(),
});
export type EscalateRequest = z.infer<typeof EscalateRequestSchema>;

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
function pipelineWithinBound(s: string): boolean {
  return 3 * s.length <= PIPELINE_MAX_BYTES || wireByteLength(s) <= PIPELINE_MAX_BYTES;
}

export const EscalateActionSchema = z.union([
  z.literal('Run'),
  z.literal('Escalate'),
  z.object({ Deny: z.object({ reason: z.string().nullable() }) }),
  /**
   * Extension (sent only to wrappers that declared `ext >= 1`): run this
   * command in place instead of the original (a hook rewrote it). A new
   * variant rather than an extra field, so a peer that does not know it fails
   * to parse it — closed — instead of running the original.
   */
  z.object({ RunRewritten: z.object({ file: z.string(), argv: z.array(z.string()) }) }),
]);

export const EscalateResponseSchema = z.object({
  action: EscalateActionSchema,
  /**
   * Extension (sent only to wrappers that declared `ext >= 1`, with Run and
   * RunRewritten): the absolute path of the shell to run a `#!`-less script
   * with (ENOEXEC). Fixed by the session; without it the wrapper uses /bin/bash.
   */
  shell: z.string().optional(),
  /**
   * Extension (sent only to wrappers that declared `ext >= 3`, with Run and
   * RunRewritten): install the direct-exec filter before the exec and hand
   * its seccomp listener back as one {"listener":true} frame (docs/protocol.md).
   */
  listener: z.boolean().optional(),
});
export type EscalateResponse = z.infer<typeof EscalateResponseSchema>;

export const SuperExecMessageSchema = z.object({
  fds: z.array(z.number().int().min(0).max(1 << 20)),
  /**
   * Extension: more SuperExecMessage frames follow (a command inheriting more
   * than 16 fds). Upstream servers ignore it and use the first 16.
   */
  more: z.boolean().optional(),
});
export type SuperExecMessage = z.infer<typeof SuperExecMessageSchema>;

export const SuperExecResultSchema = z.object({
  exit_code: z.number().int(),
  /** Extension: the command died of this signal (exit_code is then 128+signal); our wrapper re-raises it. */
  signal: z.number().int().min(1).max(64).optional(),
});

/**
 * Extension, wrapper → server while an escalated command runs: relay this
 * signal (the wrapper received it) to the command's process group.
 * Upstream servers never read these frames.
 */
export const RelaySignalSchema = z.object({ signal: z.number().int().min(1).max(64) });
export type RelaySignal = z.infer<typeof RelaySignalSchema>;
export type SuperExecResult = z.infer<typeof SuperExecResultSchema>;

/** Every frame either peer may put on a session stream (docs/protocol.md). */
export type ServerFrame = EscalateResponse | SuperExecResult;
export type ClientFrame = EscalateRequest | SuperExecMessage | RelaySignal;

/** The decision the server takes for one exec, before it is put on the wire. */
export type Action =
  | { readonly kind: 'run'; readonly rewrite?: { readonly file: string; readonly argv: readonly string[] } }
  | { readonly kind: 'escalate' }
  | { readonly kind: 'deny'; readonly reason: string | null };

/** Extension, wrapper → server right after a Run reply that asked for it: the listener fd rides on this frame. */
export const ListenerFrameSchema = z.object({ listener: z.literal(true) }).strict();

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
