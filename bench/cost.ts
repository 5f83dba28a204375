/**
 * Cost figures of the decision round trip (issue 17) that a loaded machine
 * distorts less than wall-clock ratios: counts per decision, and CPU time.
 *
 *   npx tsx bench/cost.ts [--kind run|escalate] [--execs N] [--loops P] [--reps N] [--wrapper PATH]
 *
 * Per decision, over an N-exec loop of /bin/true under the patched bash (P
 * such loops at once with --loops; 200-rule policy; this process is the server):
 *  - server CPU (process.cpuUsage: user + system, all threads);
 *  - voluntary and involuntary context switches of the event-loop thread
 *    (/proc/thread-self/status, read on the main thread): each voluntary switch
 *    is one sleep in epoll_wait, i.e. one wake-up;
 *  - latency p50/p99 (DecisionRecord.latencyUs).
 * --filter: the session decides direct execs (the Run + exec filter variant).
 * --fast: repeated Run requests are answered by the native fast path (src/server/fast-path.ts).
 * --audit FILE: the audit log goes to FILE (as `codex-escalate run --log-file FILE`); default: none, as in the bench.
 * --direct N instead: N requests from an in-process client that writes each
 * request (with an O_PATH fd, ext 2) before its handshake, as our wrapper
 * does, one at a time: CPU per decision of server + client without any exec,
 * the steadiest figure for comparing server code.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launchShell } from '../src/server/run-shell.js';
import { boostServerPriority } from '../src/server/escalation-server.js';
import { ensurePatchedBash } from '../src/shell/patched-bash.js';
import { HANDSHAKE_BYTE, PROTOCOL_ENV_VARS } from '../src/protocol/constants.js';
import { encodeJsonFrame, FrameReader } from '../src/protocol/codec.js';
import { closeFd, openPath, Poller, recvMsg, sendMsg, socketPair } from '../src/native/index.js';
import { createAuditLogger, flushAuditLog } from '../src/server/audit-log.js';
import { BENCH_DIR, createBenchServer, type PolicyKind } from './lib/servers.js';
import { median } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    kind: { type: 'string', default: 'run' },
    execs: { type: 'string', default: '2000' },
    reps: { type: 'string', default: '3' },
    wrapper: { type: 'string' },
    loops: { type: 'string', default: '1' },
    direct: { type: 'string' },
    filter: { type: 'boolean', default: false },
    audit: { type: 'string' },
    fast: { type: 'boolean', default: false },
  },
});
const kind = args.kind as PolicyKind;
const HANDSHAKE = Buffer.from([HANDSHAKE_BYTE]);
const execs = Number(args.execs);
const reps = Number(args.reps);
const wrapperPath = path.resolve(args.wrapper ?? path.join(BENCH_DIR, '..', 'wrapper', 'codex-execve-wrapper'));

function ctxSwitches(): { vol: number; invol: number } {
  const s = readFileSync('/proc/thread-self/status', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { vol: get('voluntary_ctxt_switches'), invol: get('nonvoluntary_ctxt_switches') };
}

/** CPU ticks (user + system, 1/100 s) per thread name: which thread spends the CPU. */
function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = st.lastIndexOf(')');
      const name = st.slice(st.indexOf('(') + 1, close);
      const f = st.slice(close + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + Number(f[11]) + Number(f[12]));
    } catch {
      // thread gone
    }
  }
  return out;
}

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}


if (args.direct !== undefined) {
  await directMode(Number(args.direct));
  process.exit(0);
}

async function directMode(total: number): Promise<void> {
  const bs = await createBenchServer(kind, { wrapperPath, tmp: os.tmpdir() });
  const session = await bs.server.startSession({ cwd: os.tmpdir() });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(PROTOCOL_ENV_VARS as readonly string[]).includes(k))) as Record<string, string>;
  const frame = encodeJsonFrame({ file: '/bin/true', argv: ['true'], workdir: os.tmpdir(), env, ext: 2 });
  const one = async () => {
    const [mine, theirs] = socketPair('stream', { cloexec: true, nonblock: true });
    const prog = openPath('/bin/true');
    if (sendMsg(mine, frame, [prog]) !== frame.length) throw new Error('short write');
    closeFd(prog);
    if (sendMsg(session.clientFd, HANDSHAKE, [theirs]) !== 1) throw new Error('handshake not sent');
    closeFd(theirs);
    const reader = new FrameReader();
    await new Promise<void>((resolve, reject) => {
      const poller = new Poller(mine, (err) => {
        if (err) return reject(err);
        const got = recvMsg(mine, 65536, 0);
        if (got === 'again') return;
        poller.close();
        if (got === 'eof' || reader.push(got.bytes).length !== 1) return reject(new Error('no whole response'));
        resolve();
      });
      poller.start({ readable: true });
    });
    closeFd(mine);
  };
  for (let i = 0; i < 2000; i++) await one(); // warm-up
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < total; i++) await one();
    const cpu = process.cpuUsage(cpu0);
    out.push((cpu.user + cpu.system) / total);
  }
  await bs.close();
  console.log(JSON.stringify({ kind, direct: total, reps, cpuUsPerDecision: +median(out).toFixed(1), runs: out.map((x) => +x.toFixed(1)) }));
}

const env = { ...process.env };
for (const k of PROTOCOL_ENV_VARS) delete env[k];
const tmp = os.tmpdir();
const patched = await ensurePatchedBash();
// --filter: the session decides direct execs, so every Run also puts the program under the exec filter (layer 2).
const logger = args.audit !== undefined ? createAuditLogger({ file: args.audit }) : undefined;
const bs = await createBenchServer(kind, { wrapperPath, tmp, directExecs: args.filter === true, fastPath: args.fast === true, ...(logger ? { logger } : {}) });
const loops = Number(args.loops);
// --loops P: P concurrent loops of N execs each in one session (workload 2), else one loop (workload 1).
const script = loops > 1 ? [path.join(BENCH_DIR, 'workloads', 'concurrency.sh'), String(loops), String(execs)] : [path.join(BENCH_DIR, 'workloads', 'exec-loop.sh'), String(execs)];
const rows: { cpu: number; vol: number; invol: number; lat: number; p99: number; threadsUsPerDecision: Record<string, number> }[] = [];
for (let r = 0; r < reps + 1; r++) {
  const before = bs.recorder.count;
  bs.recorder.reset();
  const cpu0 = process.cpuUsage();
  const cs0 = ctxSwitches();
  const t0 = threadTicks();
  const { done } = await launchShell(bs.server, { command: patched, args: script, cwd: tmp, env, stdio: ['ignore', 'ignore', 'inherit'] });
  // As `codex-escalate run` and the bench do (when permitted).
  const base = boostServerPriority(bs.server);
  const { exitCode } = await done.finally(() => {
    if (base !== undefined) os.setPriority(0, base);
  });
  // Lines still queued are part of this run's cost.
  if (logger) await flushAuditLog(logger);
  const cpu = process.cpuUsage(cpu0);
  const cs1 = ctxSwitches();
  const t1 = threadTicks();
  const perThread = Object.fromEntries([...t1].map(([k, v]) => [k, v - (t0.get(k) ?? 0)]).filter(([, v]) => (v as number) > 0));
  const n = bs.recorder.count;
  if (exitCode !== 0 || n < execs * loops) throw new Error(`run failed: exit ${exitCode}, ${n} decisions (before ${before})`);
  if (r === 0) {
    // For `strace -c -p PID` (syscalls of the event-loop thread) over the measured reps.
    if (process.env.COST_PIDFILE) {
      writeFileSync(process.env.COST_PIDFILE, String(process.pid));
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
    continue; // warm-up
  }
  rows.push({
    cpu: (cpu.user + cpu.system) / n,
    vol: (cs1.vol - cs0.vol) / n,
    invol: (cs1.invol - cs0.invol) / n,
    lat: median(bs.recorder.latencies),
    p99: percentile(bs.recorder.latencies, 0.99),
    threadsUsPerDecision: Object.fromEntries(Object.entries(perThread).map(([k, v]) => [k, Math.round(((v as number) * 10_000) / n)])),
  });
}
await bs.close();
const m = (k: 'cpu' | 'vol' | 'invol' | 'lat' | 'p99') => median(rows.map((x) => x[k]));
console.log(JSON.stringify({ kind, filter: args.filter === true, audit: args.audit !== undefined, execs, reps, cpuUsPerDecision: +m('cpu').toFixed(1), volCtxPerDecision: +m('vol').toFixed(3), involCtxPerDecision: +m('invol').toFixed(3), latencyP50Us: +m('lat').toFixed(1), latencyP99Us: +m('p99').toFixed(1), rows }));
