/**
 * Server-side figures that need many decisions, measured in a fresh process
 * (so earlier workloads' garbage does not blur RSS) with the in-process
 * protocol client instead of real wrapper execs:
 *
 *   --mode rss   --first N --second M   RSS/heap after N and after M decisions
 *   --mode rules --counts 10,1000,10000 --requests K --rounds R
 *                                       p50 decision latency per rule count
 *
 * Run with `node --expose-gc --import tsx`; prints one JSON object on stdout.
 */
import { parseArgs } from 'node:util';
import { createDecisionPipeline } from '../src/policy/decision-pipeline.js';
import { SYNTHETIC_HOT_COMMAND, syntheticRuleSet } from './lib/synthetic-rules.js';
import type { ExecRequest } from '../src/policy/types.js';
import { EscalationServer } from '../src/server/escalation-server.js';
import { DirectClient, drive, type WireRequest } from './lib/direct-client.js';
import { DecisionRecorder, POLICY_RULES } from './lib/servers.js';
import { percentiles, round } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    mode: { type: 'string' },
    first: { type: 'string', default: '10000' },
    second: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '16' },
    counts: { type: 'string', default: '10,1000,10000' },
    requests: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    'wrapper-path': { type: 'string', default: '/nonexistent/codex-execve-wrapper' },
  },
});

function int(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

const gc = (globalThis as { gc?: () => void }).gc;
function collect(): void {
  // Several passes: weak callbacks and finalizers free more on the second.
  for (let i = 0; i < 3; i++) gc?.();
}

const TRUE_REQUEST: WireRequest = { file: '/bin/true', argv: ['true'], workdir: '/tmp', env: { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C' } };
const HOT_REQUEST: WireRequest = { file: '/usr/bin/git', argv: [...SYNTHETIC_HOT_COMMAND], workdir: '/tmp', env: { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C' } };

function expectAction(kind: string): (res: unknown) => void {
  return (res) => {
    const a = (res as { action?: unknown }).action;
    const got = typeof a === 'string' ? a : a && typeof a === 'object' ? Object.keys(a)[0] : String(a);
    if (got !== kind) throw new Error(`expected ${kind} from the server, got ${JSON.stringify(res)}`);
  };
}

async function rssMode(): Promise<object> {
  const first = int('first', values.first);
  const second = int('second', values.second);
  const concurrency = int('concurrency', values.concurrency);
  if (second <= first) throw new Error('--second must be larger than --first');
  const recorder = new DecisionRecorder();
  const server = new EscalationServer({
    policy: createDecisionPipeline({ rules: { current: syntheticRuleSet(POLICY_RULES) } }),
    wrapperPath: values['wrapper-path']!,
    observer: { decided: (r) => recorder.onDecided(r) },
  });
  const session = await server.startSession({ cwd: '/tmp' });
  const client = new DirectClient(session.clientFd);
  const check = expectAction('Run');
  // Warm up the JIT and allocator pools so the first checkpoint is not a cold start.
  await drive(client, TRUE_REQUEST, Math.min(1000, first), concurrency, check);
  collect();
  const rssStart = process.memoryUsage().rss;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await drive(client, TRUE_REQUEST, first, concurrency, check);
  collect();
  const m1 = process.memoryUsage();
  // Only the latest window's latencies matter; keeping every sample would itself grow the heap.
  const lat1 = percentiles(recorder.latencies);
  recorder.reset();
  await drive(client, TRUE_REQUEST, second - first, concurrency, check);
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const lat2 = percentiles(recorder.latencies);
  recorder.reset();
  collect();
  const m2 = process.memoryUsage();
  await session.end();
  return {
    gcForced: gc !== undefined,
    concurrency,
    decisions: { first, second },
    rssStartBytes: rssStart,
    rssFirstBytes: m1.rss,
    rssSecondBytes: m2.rss,
    heapUsedFirstBytes: m1.heapUsed,
    heapUsedSecondBytes: m2.heapUsed,
    rssGrowth: round(m2.rss / m1.rss - 1, 4),
    decisionsPerSecond: round(second / (elapsed / 1000), 0),
    // Server and client share this process: an upper bound on the server's share.
    cpuUsPerDecisionWithClient: round((cpu.user + cpu.system) / second, 2),
    latencyUsFirstWindow: lat1,
    latencyUsSecondWindow: lat2,
    sessionDecisions: session.decisionCount,
  };
}

async function rulesMode(): Promise<object> {
  const counts = values.counts!.split(',').map((c) => int('counts', c));
  const requests = int('requests', values.requests);
  const rounds = Math.max(1, int('rounds', values.rounds));
  const setups = await Promise.all(
    counts.map(async (n) => {
      const t0 = performance.now();
      const rules = syntheticRuleSet(n);
      const compileMs = performance.now() - t0;
      const policy = createDecisionPipeline({ rules: { current: rules } });
      const recorder = new DecisionRecorder();
      const server = new EscalationServer({ policy, wrapperPath: values['wrapper-path']!, observer: { decided: (r) => recorder.onDecided(r) } });
      const session = await server.startSession({ cwd: '/tmp' });
      return { n, compileMs, policy, recorder, session, client: new DirectClient(session.clientFd), evalUs: [] as number[] };
    }),
  );
  // The hot command hits a forbidden rule: every decision is a real match, not a miss.
  const check = expectAction('Deny');
  for (const s of setups) {
    await drive(s.client, HOT_REQUEST, Math.min(200, requests), 1, check);
    s.recorder.reset();
  }
  const execReq: ExecRequest = { sessionId: 's', requestId: 'r', file: '/usr/bin/git', program: '/usr/bin/git', argv: SYNTHETIC_HOT_COMMAND, workdir: '/tmp', env: {} };
  const signal = new AbortController().signal;
  for (let r = 0; r < rounds; r++) {
    // Interleaved rounds: drift on the machine affects every rule count alike.
    for (const s of setups) {
      await drive(s.client, HOT_REQUEST, Math.ceil(requests / rounds), 1, check);
      const t0 = performance.now();
      const reps = Math.ceil(requests / rounds);
      for (let i = 0; i < reps; i++) await s.policy.decide(execReq, { signal });
      s.evalUs.push(((performance.now() - t0) * 1000) / reps);
    }
  }
  const out: Record<string, object> = {};
  for (const s of setups) {
    const p = percentiles(s.recorder.latencies);
    out[String(s.n)] = {
      rules: s.n,
      compileMs: round(s.compileMs, 1),
      serverLatencyUs: p,
      pipelineDecideUs: round(s.evalUs.sort((a, b) => a - b)[s.evalUs.length >> 1]!, 2),
    };
    await s.session.end();
  }
  return { requestsPerCount: requests, rounds, command: SYNTHETIC_HOT_COMMAND, byCount: out };
}

const mode = values.mode;
const result = mode === 'rss' ? await rssMode() : mode === 'rules' ? await rulesMode() : null;
if (result === null) {
  process.stderr.write(`decisions-worker: --mode must be rss or rules, got ${JSON.stringify(mode)}\n`);
  process.exit(2);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
