import type { Readable, Writable } from 'node:stream';
import { type ProcessResult } from '../decision.js';
import type { CommandHook } from '../types.js';
import { OUTPUT_CAP_BYTES, killGroup, spawnHookProcess } from './spawn.js';

/** After the hook exits, how long its pipes may stay open (held by a grandchild) before we stop reading. */
const DRAIN_GRACE_MS = 100;

class Capped {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly onOverflow: () => void) {}
  push(b: Buffer): void {
    if (this.truncated) return;
    if (this.size + b.length > OUTPUT_CAP_BYTES) {
      this.chunks.push(b.subarray(0, OUTPUT_CAP_BYTES - this.size));
      this.size = OUTPUT_CAP_BYTES;
      this.truncated = true;
      this.onOverflow();
      return;
    }
    this.chunks.push(b);
    this.size += b.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export interface SpawnRunOptions {
  readonly cwd: string;
  readonly env: Record<string, string | undefined>;
  readonly input: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Called with the pid as soon as the process exists (the engine tracks groups to kill on close). */
  readonly onSpawn?: ((pid: number) => void) | undefined;
}

/**
 * Run one command hook to completion: JSON on stdin, capped stdout/stderr,
 * and on timeout, overflow or abort the whole process group is killed.
 */
export async function runSpawnedHook(hook: CommandHook, o: SpawnRunOptions): Promise<ProcessResult & { aborted: boolean }> {
  const child = spawnHookProcess(hook, o.cwd, o.env, o.input);
  const pid = child.pid;
  let timedOut = false;
  let aborted = false;
  const kill = () => killGroup(pid);
  const out = new Capped(kill);
  const err = new Capped(kill);
  if (pid !== undefined) o.onSpawn?.(pid);
  // A hook that exits without reading its stdin (or never started) must not surface EPIPE as an uncaught error.
  (child.stdin as Writable | null)?.on('error', () => {});
  (child.stdout as Readable | null)?.on('data', (b: Buffer) => out.push(b));
  (child.stderr as Readable | null)?.on('data', (b: Buffer) => err.push(b));

  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, o.timeoutMs);
  const onAbort = () => {
    aborted = true;
    kill();
  };
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });

  // The direct child's own exit status, independent of whether its pipes have closed.
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on('exit', (code, signal) => {
    exit = { code, signal };
    // A background grandchild may hold our pipes open forever: stop reading shortly after the hook exits.
    setTimeout(() => {
      (child.stdout as Readable | null)?.destroy();
      (child.stderr as Readable | null)?.destroy();
    }, DRAIN_GRACE_MS).unref();
  });

  const result = await child;
  clearTimeout(timer);
  o.signal?.removeEventListener('abort', onAbort);

  const spawnError = pid === undefined ? (result.code ?? result.message?.split('\n')[0] ?? 'spawn failed') : undefined;
  const code = exit?.code ?? result.exitCode ?? undefined;
  const signal = exit?.signal ?? result.signal ?? undefined;
  return {
    exitCode: code ?? undefined,
    signal: timedOut || aborted ? undefined : (signal ?? undefined),
    stdout: out.text(),
    stderr: err.text(),
    truncated: out.truncated || err.truncated,
    timedOut,
    aborted,
    spawnError,
  };
}
