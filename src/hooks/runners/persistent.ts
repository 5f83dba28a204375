import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { interpretDecisionObject, type HookOutcome } from '../decision.js';
import type { CommandHook } from '../types.js';
import { OUTPUT_CAP_BYTES, killGroup, spawnHookProcess } from './spawn.js';

/**
 * A command hook started once and kept running. Protocol (one JSON object per
 * line, UTF-8):
 *   engine → hook: the same object a spawned hook reads on stdin, plus `"id"`;
 *   hook → engine: `{"id": <same id>, ...}` where the rest is exactly what a
 *   spawned hook would print on stdout (`{}` = no opinion).
 * Requests are multiplexed by id and may be answered in any order.
 * A hook that exits, prints a line that is not such an object, writes a line
 * over 1 MiB, or leaves a request unanswered past its timeout is killed (its
 * whole process group); every request in flight fails, and the next request
 * starts a fresh process.
 */

interface Pending {
  resolve: (o: HookOutcome & { output?: string }) => void;
  timer: NodeJS.Timeout;
}

/** Consecutive starts that die before answering anything; past this the hook is not restarted again. */
const MAX_FRUITLESS_STARTS = 5;

export class PersistentHook {
  private child: ReturnType<typeof spawnHookProcess> | undefined;
  private pending = new Map<string, Pending>();
  private nextId = 1;
  private buf = '';
  private stderrTail = '';
  private fruitlessStarts = 0;
  private closed = false;

  constructor(
    readonly hook: CommandHook,
    private readonly baseEnv: Record<string, string | undefined>,
    private readonly logger: Logger,
  ) {}

  /** Pid of the running process (tests and diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private start(cwd: string): void {
    const env = { ...this.baseEnv, ...this.hook.env, CODEX_HOOK_PERSISTENT: '1' };
    const child = spawnHookProcess(this.hook, this.hook.cwd ?? cwd, env);
    this.child = child;
    this.buf = '';
    this.stderrTail = '';
    this.fruitlessStarts++;
    // Never let a broken pipe on stdin surface as an uncaught error.
    (child.stdin as Writable | null)?.on('error', () => {});
    (child.stdout as Readable | null)?.on('data', (b: Buffer) => this.onData(child, b));
    (child.stderr as Readable | null)?.on('data', (b: Buffer) => {
      this.stderrTail = (this.stderrTail + b.toString('utf8')).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      const why = `persistent hook exited (${signal ?? `status ${String(code)}`})${this.stderrTail.trim() ? `: ${this.stderrTail.trim().slice(-500)}` : ''}`;
      if (!this.closed) this.logger.warn({ hook: this.hook.id, code, signal }, why);
      this.failAll(why);
    });
    void child.catch(() => {});
  }

  private onData(child: NonNullable<PersistentHook['child']>, b: Buffer): void {
    if (this.child !== child) return;
    this.buf += b.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line !== '') this.onLine(line);
      if (this.child !== child) return;
    }
    if (this.buf.length > OUTPUT_CAP_BYTES) this.restart('persistent hook wrote a line over 1 MiB', 'truncated');
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.restart(`persistent hook printed a line that is not JSON: ${line.slice(0, 200)}`);
      return;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || !('id' in msg)) {
      this.restart(`persistent hook printed a JSON line without an "id": ${line.slice(0, 200)}`);
      return;
    }
    const { id, ...rest } = msg as Record<string, unknown>;
    const p = this.pending.get(String(id));
    if (!p) {
      this.logger.warn({ hook: this.hook.id, id }, 'persistent hook answered an unknown request id');
      return;
    }
    this.pending.delete(String(id));
    clearTimeout(p.timer);
    this.fruitlessStarts = 0;
    p.resolve({ ...interpretDecisionObject(rest), output: line.slice(0, 500) });
  }

  /** Kill the process (its group) and fail everything in flight. */
  private restart(why: string, kind: 'failed' | 'timed_out' | 'truncated' = 'failed'): void {
    const child = this.child;
    this.child = undefined;
    killGroup(child?.pid);
    this.logger.warn({ hook: this.hook.id }, why);
    this.failAll(why, kind);
  }

  private failAll(why: string, kind: 'failed' | 'timed_out' | 'truncated' = 'failed'): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.resolve(
        kind === 'truncated'
          ? { kind: 'opinion', decision: 'deny', reason: 'hook output exceeded the 1 MiB cap (truncated output blocks)' }
          : { kind: 'failure', status: kind, error: why },
      );
    }
  }

  request(payload: Record<string, unknown>, cwd: string, timeoutMs: number, signal?: AbortSignal): Promise<HookOutcome & { output?: string }> {
    if (this.closed) return Promise.resolve({ kind: 'failure', status: 'failed', error: 'hook engine is closed' });
    if (signal?.aborted) return Promise.resolve({ kind: 'failure', status: 'failed', error: 'aborted' });
    if (!this.child) {
      if (this.fruitlessStarts >= MAX_FRUITLESS_STARTS) {
        return Promise.resolve({
          kind: 'failure',
          status: 'failed',
          error: `persistent hook died ${MAX_FRUITLESS_STARTS} times without answering; not restarting it${this.stderrTail.trim() ? `: ${this.stderrTail.trim().slice(-300)}` : ''}`,
        });
      }
      this.start(cwd);
    }
    const child = this.child;
    if (!child || child.pid === undefined) {
      this.child = undefined;
      return Promise.resolve({ kind: 'failure', status: 'failed', error: `could not start persistent hook ${this.hook.id}` });
    }
    const id = String(this.nextId++);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // A silent hook is as good as dead: restart it so later requests are not stuck behind it.
        this.pending.delete(id);
        resolve({ kind: 'failure', status: 'timed_out', error: `persistent hook did not answer within ${timeoutMs} ms` });
        this.restart(`persistent hook did not answer request ${id} within ${timeoutMs} ms`);
      }, timeoutMs);
      const onAbort = () => {
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        resolve({ kind: 'failure', status: 'failed', error: 'aborted' });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (o) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(o);
        },
        timer,
      });
      (child.stdin as Writable | null)?.write(`${JSON.stringify({ id, ...payload })}\n`);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.child = undefined;
    this.failAll('hook engine closed');
    if (child) {
      (child.stdin as Writable | null)?.end();
      killGroup(child.pid, 'SIGTERM');
      const t = setTimeout(() => killGroup(child.pid), 500);
      await child.catch(() => undefined);
      clearTimeout(t);
      killGroup(child.pid);
    }
  }
}
