import { z } from 'zod';
import { PIPELINE_MAX_BYTES } from './constants.js';
import { pipelineWithinBound } from './wire.js';

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

/** Extension, wrapper → server right after a Run reply that asked for it: the listener fd rides on this frame. */
export const ListenerFrameSchema = z.object({ listener: z.literal(true) }).strict();


// The zod-free half (bounds, hot-path checks, the reply encoder), re-exported for the public API and the tests.
export * from './wire.js';
