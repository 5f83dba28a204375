/**
 * Load: N concurrent raw clients × M requests each against one server, mixed
 * Run / Deny / Escalate (an escalated /usr/bin/true with its fds forwarded),
 * optionally with a persistent PreToolUse hook consulted on every decision.
 */
import { openSync } from 'node:fs';
import path from 'node:path';
import { loadHooks } from '../../src/hooks/config.js';
import { HookEngine } from '../../src/hooks/engine.js';
import { closeFd, Poller, recvMsg, type Fd } from '../../src/native/index.js';
import { FrameReader, parseJsonPayload } from '../../src/protocol/codec.js';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { connectStream, DENY_WORD, ECHO_PROGRAM, encodeFrame, percentile, probeRequest, startTarget, TRUE_PROGRAM, writeAll, type Target } from './harness.js';

/** Reads whole frames from one non-blocking stream, waiting on the event loop. */
export class FrameConn {
  private readonly reader = new FrameReader();
  private readonly poller: Poller;
  private wake: (() => void) | null = null;

  constructor(readonly fd: Fd) {
    this.poller = new Poller(fd, () => {
      const w = this.wake;
      this.wake = null;
      this.poller.stop();
      w?.();
    });
  }

  async next(timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = recvMsg(this.fd, 65536, 16);
      if (got === 'eof') throw new Error('server closed the connection');
      if (got !== 'again') {
        for (const f of got.fds) closeFd(f);
        const frames = this.reader.push(got.bytes);
        if (frames.length) return parseJsonPayload(frames[0]!);
        continue;
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
        this.poller.start({ readable: true });
      });
    }
  }

  close(): void {
    this.poller.close();
    closeFd(this.fd);
  }
}

export interface LoadResult {
  clients: number;
  perClient: number;
  requests: number;
  errors: number;
  wrong: number;
  firstProblems: string[];
  elapsedMs: number;
  throughputPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const KINDS = [
  { program: ECHO_PROGRAM, arg: 'load', want: 'Run' },
  { program: ECHO_PROGRAM, arg: DENY_WORD, want: 'Deny' },
  { program: TRUE_PROGRAM, arg: 'load', want: 'Escalate' },
] as const;

function actionKind(reply: unknown): string {
  const a = (reply as { action?: unknown })?.action;
  if (typeof a === 'string') return a;
  if (a && typeof a === 'object') return Object.keys(a)[0] ?? '?';
  return '?';
}

/** One request/decision (and, for Escalate, the forwarded run); returns the decision latency. */
async function oneRequest(t: Target, kind: (typeof KINDS)[number], devnull: Fd): Promise<{ ms: number; problem?: string }> {
  const conn = new FrameConn(await connectStream(t.session.clientFd));
  try {
    const t0 = performance.now();
    await writeAll(conn.fd, encodeFrame(probeRequest(kind.program, kind.arg)));
    const reply = await conn.next(10_000);
    const ms = performance.now() - t0;
    const got = actionKind(reply);
    if (got !== kind.want) return { ms, problem: `${kind.program} ${kind.arg}: got ${JSON.stringify(reply)}, want ${kind.want}` };
    if (got === 'Escalate') {
      await writeAll(conn.fd, encodeFrame({ fds: [0, 1, 2] }), [devnull, devnull, devnull]);
      const result = await conn.next(10_000);
      if (JSON.stringify(result) !== '{"exit_code":0}') return { ms, problem: `escalated result ${JSON.stringify(result)}` };
    }
    return { ms };
  } finally {
    conn.close();
  }
}

export async function runLoad(t: Target, clients: number, perClient: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const problems: string[] = [];
  let errors = 0;
  let wrong = 0;
  const devnull = openSync('/dev/null', 'r+');
  const t0 = Date.now();
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; i < perClient; i++) {
          const kind = KINDS[(c + i) % KINDS.length]!;
          try {
            const r = await oneRequest(t, kind, devnull);
            latencies.push(r.ms);
            if (r.problem) {
              wrong++;
              if (problems.length < 5) problems.push(r.problem);
            }
          } catch (err) {
            errors++;
            if (problems.length < 5) problems.push(String((err as Error).message));
          }
        }
      }),
    );
  } finally {
    closeFd(devnull);
  }
  const elapsedMs = Date.now() - t0;
  const requests = clients * perClient;
  return {
    clients,
    perClient,
    requests,
    errors,
    wrong,
    firstProblems: problems,
    elapsedMs,
    throughputPerSec: Math.round((requests / elapsedMs) * 1000),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
    maxMs: Number(Math.max(...latencies).toFixed(2)),
  };
}

/**
 * A target whose policy is the real decision pipeline with a persistent
 * command hook (the persistent-hook fixture in `scan` mode: no opinion on
 * these commands) consulted on every request; same expected actions.
 */
export async function startHookedTarget(dir: string, opts: { frameTimeoutMs?: number } = {}): Promise<{ target: Target; engine: HookEngine }> {
  const fixture = path.resolve(import.meta.dirname, '../fixtures/hooks/persistent-hook.mjs');
  const { writeFileSync } = await import('node:fs');
  const file = path.join(dir, 'hooks.json');
  writeFileSync(file, JSON.stringify({ hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: ['node', fixture], persistent: true, required: true, timeout: 10 }] }] } }));
  const env = { ...process.env, MODE: 'scan' };
  const engine = new HookEngine(await loadHooks({ files: [file], env }), { env });
  const policy = createDecisionPipeline({ hooks: engine, denyPrefixes: [`echo ${DENY_WORD}`], escalatePrefixes: ['true'] });
  const target = await startTarget({ policy, ...opts });
  return { target, engine };
}
