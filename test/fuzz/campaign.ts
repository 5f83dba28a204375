/**
 * Drives fuzz inputs at a Target in batches and checks the invariants after
 * each one. Shared by `npm run fuzz` (full) and the bounded smoke in npm test.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { closeFd, recvMsg } from '../../src/native/index.js';
import {
  checkRejectionAccounting,
  connectStream,
  ECHO_PROGRAM,
  heapAfterGc,
  percentile,
  probe,
  probeRequest,
  runDatagramInput,
  runStreamInput,
  sendDatagram,
  settleFds,
  TRUE_PROGRAM,
  DENY_WORD,
  writeAll,
  encodeFrame,
  type FdFactory,
  type Target,
} from './harness.js';
import type { FuzzInput } from './inputs.js';

export interface Violation {
  readonly batch: number;
  readonly what: string;
}

export interface CampaignStats {
  inputs: number;
  datagrams: number;
  streams: number;
  batches: number;
  probes: number;
  probeLatenciesMs: number[];
  violations: Violation[];
  /** A probe slower than this is a violation. */
  probeBudgetMs: number;
  heapStartBytes: number;
  heapEndBytes: number;
  heapMaxBytes: number;
  fdBaseline: number;
}

export function newStats(t: Target, probeBudgetMs = 50): CampaignStats {
  return { inputs: 0, datagrams: 0, streams: 0, batches: 0, probes: 0, probeLatenciesMs: [], violations: [], probeBudgetMs, heapStartBytes: heapAfterGc(), heapEndBytes: 0, heapMaxBytes: 0, fdBaseline: t.baselineFds };
}

const PROBES: readonly [string, string][] = [
  [ECHO_PROGRAM, 'probe'],
  [ECHO_PROGRAM, DENY_WORD],
  [TRUE_PROGRAM, 'probe'],
];

/** Run one input; failures on our side (the server hung up on us) are expected and ignored. */
export async function runInput(t: Target, fdf: FdFactory, input: FuzzInput): Promise<void> {
  if (input.channel === 'datagram') await runDatagramInput(t, fdf, input.bytes, input.fds);
  else await runStreamInput(t, fdf, input.chunks);
}

/**
 * One batch: inputs with `concurrency` in flight, a correct probe of each
 * kind sent while the server still digests them (decided right, < 50 ms), then
 * fds back to baseline and at least one server event per input.
 */
export async function runBatch(t: Target, fdf: FdFactory, inputs: readonly FuzzInput[], stats: CampaignStats, opts: { concurrency?: number; probeBudgetMs?: number } = {}): Promise<void> {
  const batch = ++stats.batches;
  const before = t.events.rejected + t.events.decided;
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) {
      const input = inputs[next++]!;
      await runInput(t, fdf, input);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, inputs.length) }, worker));
  for (const i of inputs) i.channel === 'datagram' ? stats.datagrams++ : stats.streams++;
  stats.inputs += inputs.length;

  for (const [program, arg] of PROBES) {
    const r = await probe(t.session, program, arg);
    stats.probes++;
    stats.probeLatenciesMs.push(r.latencyMs);
    if (!r.ok) stats.violations.push({ batch, what: `probe ${program} ${arg}: ${r.detail}` });
    else if (r.latencyMs > (opts.probeBudgetMs ?? stats.probeBudgetMs)) stats.violations.push({ batch, what: `probe ${program} ${arg} took ${r.latencyMs.toFixed(1)} ms` });
  }

  // Every input ends in a decision or a rejection the server saw (and logged, rate-limited).
  const deadline = Date.now() + 2000;
  const want = before + inputs.length + PROBES.length;
  while (t.events.rejected + t.events.decided < want && Date.now() < deadline) await sleep(5);
  if (t.events.rejected + t.events.decided < want) stats.violations.push({ batch, what: `${want - t.events.rejected - t.events.decided} inputs left no trace` });
  // Only now: while the server still holds a connection, its fd stands in for the one we closed.
  const settled = await settleFds(t.baselineFds);
  if (!settled.ok) stats.violations.push({ batch, what: `fds not back to baseline: ${settled.fds} > ${t.baselineFds}` });
}

/** Heap after GC; records the max and flags unbounded growth. */
export function sampleHeap(stats: CampaignStats, limitBytes: number): void {
  const h = heapAfterGc();
  stats.heapEndBytes = h;
  stats.heapMaxBytes = Math.max(stats.heapMaxBytes, h);
  if (h - stats.heapStartBytes > limitBytes) stats.violations.push({ batch: stats.batches, what: `heap grew by ${((h - stats.heapStartBytes) / 1e6).toFixed(1)} MB` });
}

/** Datagram flood: `count` bad datagrams as fast as the queue takes them; the server keeps answering and logs a bounded number of lines. */
export async function datagramFlood(t: Target, count: number, stats: CampaignStats): Promise<{ sent: number; linesDuring: number; ms: number }> {
  const lines0 = t.log.rejectedLines;
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    await sendDatagram(t.session.clientFd, Buffer.of(1, 2, 3), []);
  }
  stats.inputs += count;
  stats.datagrams += count;
  const ms = Date.now() - t0;
  const r = await probe(t.session, ECHO_PROGRAM);
  stats.probes++;
  stats.probeLatenciesMs.push(r.latencyMs);
  if (!r.ok || r.latencyMs > stats.probeBudgetMs) stats.violations.push({ batch: stats.batches, what: `probe after flood: ${r.ok ? `${r.latencyMs.toFixed(1)} ms` : r.detail}` });
  const linesDuring = t.log.rejectedLines - lines0;
  // 20 per second, plus one window of slack at each end.
  const allowed = 20 * (Math.ceil((Date.now() - t0) / 1000) + 1);
  if (linesDuring > allowed) stats.violations.push({ batch: stats.batches, what: `flood produced ${linesDuring} log lines (> ${allowed})` });
  return { sent: count, linesDuring, ms };
}

/**
 * Slow-loris clients: each sends a valid request one byte every `intervalMs`.
 * The server must drop each once `frameTimeoutMs` has passed (the deadline is
 * per frame, not per byte) while still deciding probes within budget.
 */
export async function slowLoris(t: Target, clients: number, intervalMs: number, frameTimeoutMs: number, stats: CampaignStats): Promise<{ droppedAfterMs: number[] }> {
  const frame = encodeFrame(probeRequest(ECHO_PROGRAM));
  const dropped: number[] = [];
  const one = async () => {
    const fd = await connectStream(t.session.clientFd);
    const t0 = Date.now();
    try {
      for (let i = 0; i < frame.length; i++) {
        if (!(await writeAll(fd, frame.subarray(i, i + 1)))) break;
        await sleep(intervalMs);
        let got;
        try {
          got = recvMsg(fd, 4096, 0);
        } catch {
          break; // reset: the server dropped us with our bytes unread
        }
        if (got === 'eof') break;
        if (got !== 'again') {
          stats.violations.push({ batch: stats.batches, what: 'a slow-loris request was answered' });
          break;
        }
      }
      dropped.push(Date.now() - t0);
    } finally {
      closeFd(fd);
    }
  };
  const running = Promise.all(Array.from({ length: clients }, one));
  // Meanwhile, ordinary requests are still decided promptly.
  const probeDeadline = Date.now() + frameTimeoutMs;
  while (Date.now() < probeDeadline) {
    const r = await probe(t.session, ECHO_PROGRAM);
    stats.probes++;
    stats.probeLatenciesMs.push(r.latencyMs);
    if (!r.ok || r.latencyMs > stats.probeBudgetMs) stats.violations.push({ batch: stats.batches, what: `probe during slow-loris: ${r.ok ? `${r.latencyMs.toFixed(1)} ms` : r.detail}` });
    await sleep(Math.max(20, intervalMs));
  }
  await running;
  stats.inputs += clients;
  stats.streams += clients;
  for (const ms of dropped) {
    if (ms > frameTimeoutMs + 3 * intervalMs + 500) stats.violations.push({ batch: stats.batches, what: `slow-loris client held for ${ms} ms (timeout ${frameTimeoutMs})` });
  }
  return { droppedAfterMs: dropped };
}

export async function finalAccounting(t: Target, stats: CampaignStats): Promise<Awaited<ReturnType<typeof checkRejectionAccounting>>> {
  const acc = await checkRejectionAccounting(t);
  stats.inputs++;
  stats.datagrams++;
  if (!acc.ok) stats.violations.push({ batch: stats.batches, what: `rejections ${acc.rejected} != log lines ${acc.lines} + suppressed ${acc.suppressed}` });
  return acc;
}

export function summarize(stats: CampaignStats): Record<string, unknown> {
  const lat = [...stats.probeLatenciesMs];
  return {
    inputs: stats.inputs,
    datagrams: stats.datagrams,
    streams: stats.streams,
    batches: stats.batches,
    probes: stats.probes,
    probe_p50_ms: Number(percentile(lat, 50).toFixed(2)),
    probe_p99_ms: Number(percentile(lat, 99).toFixed(2)),
    probe_max_ms: Number(Math.max(...lat).toFixed(2)),
    heap_start_mb: Number((stats.heapStartBytes / 1e6).toFixed(1)),
    heap_end_mb: Number((stats.heapEndBytes / 1e6).toFixed(1)),
    heap_max_mb: Number((stats.heapMaxBytes / 1e6).toFixed(1)),
    fd_baseline: stats.fdBaseline,
    violations: stats.violations.length,
  };
}
