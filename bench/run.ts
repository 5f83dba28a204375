/**
 * `npm run bench` — the benchmark suite of issue 6. Measures, in one run on
 * one machine, intercepted vs stock bash (ratios hold across machines) and
 * the server's own figures; prints a table, writes bench/results/latest.json
 * and an SVG chart of the ratios (also copied to docs/ on full runs).
 *
 *   npm run bench                  full run (a few minutes)
 *   npm run bench -- --smoke       reduced run in seconds (BENCH_SMOKE=1 too)
 *   options: --out-dir DIR  --reps N  --only w1,w2,w3,w4,server,rules  --no-docs-chart
 *            --variants stock,floor,run200,...   (workload 1 subset, for profiling)
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launchShell } from '../src/server/run-shell.js';
import { boostServerPriority } from '../src/server/escalation-server.js';
import { ensurePatchedBash } from '../src/shell/patched-bash.js';
import { PROTOCOL_ENV_VARS } from '../src/protocol/constants.js';
import { BENCH_DIR, createBenchServer, POLICY_RULES, type BenchServer, type PolicyKind } from './lib/servers.js';
import { median, percentiles, round, type Percentiles } from './lib/stats.js';
import { barChartSvg, type Bar } from './lib/svg.js';
import { execLoopScript, startupFigure, type StartupFigure } from './lib/startup.js';

const ROOT = path.resolve(BENCH_DIR, '..');
const STOCK_BASH = '/bin/bash';

const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    'out-dir': { type: 'string' },
    reps: { type: 'string' },
    only: { type: 'string' },
    'no-docs-chart': { type: 'boolean', default: false },
    variants: { type: 'string' },
  },
});

const SMOKE = args.smoke || process.env.BENCH_SMOKE === '1';
const DEFAULT_SECTIONS = 'w1,w2,w3,w4,server,rules,startup';
const SECTIONS = new Set((args.only ?? DEFAULT_SECTIONS).split(',').map((s) => s.trim()));
const ALL_SECTIONS = SECTIONS.size === DEFAULT_SECTIONS.split(',').length;

/** Sizes: the full run fits in ~5 minutes on 2 cores; smoke in seconds, same shape. */
const CFG = SMOKE
  ? { startupReps: 3, loopExecs: 40, reps: 1, concLoops: 16, concExecs: 5, concReps: 1, realScale: 0, realReps: 1, rssFirst: 500, rssSecond: 2000, rulesCounts: [10, 1000, 10000], rulesRequests: 100, rulesRounds: 1 }
  : { startupReps: 21, loopExecs: 2000, reps: 5, concLoops: 16, concExecs: 1000, concReps: 3, realScale: 2, realReps: 5, rssFirst: 10_000, rssSecond: 100_000, rulesCounts: [10, 1000, 10000], rulesRequests: 3000, rulesRounds: 3 };
if (args.reps !== undefined) {
  const r = Number(args.reps);
  if (!Number.isInteger(r) || r < 1) fail(`--reps must be a positive integer, got ${JSON.stringify(args.reps)}`);
  CFG.reps = r;
  CFG.concReps = r;
  CFG.realReps = r;
}
const OUT_DIR = path.resolve(args['out-dir'] ?? path.join(BENCH_DIR, 'results'));
const DOCS_CHART = path.join(ROOT, 'docs', 'performance-ratios.svg');

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------- setup

function sh(cmd: string, argv: string[]): string {
  return execFileSync(cmd, argv, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

async function buildPrerequisites(tmpDir: string): Promise<{ patched: string; wrapper: string; wrapperSource: string; floor: string }> {
  if (!existsSync(path.join(ROOT, 'build/Release/codex_native.node'))) {
    log('building the native addon');
    execFileSync('npm', ['run', 'install', '--silent'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  log('building the wrapper (make -C wrapper)');
  execFileSync('make', ['-s', '-C', 'wrapper'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  // BENCH_WRAPPER: measure another wrapper build (e.g. linked against musl) with everything else equal.
  const wrapper = process.env.BENCH_WRAPPER ? path.resolve(process.env.BENCH_WRAPPER) : path.join(ROOT, 'wrapper', 'codex-execve-wrapper');
  if (!existsSync(wrapper)) fail(`wrapper not found at ${wrapper}${process.env.BENCH_WRAPPER ? ' (BENCH_WRAPPER)' : ' after make -C wrapper'}`);
  // Measure a private copy: a rebuild of wrapper/ during the run (another build, a test's make) would
  // otherwise make execs fail half-way with EACCES/ETXTBSY.
  const wrapperCopy = path.join(tmpDir, 'codex-execve-wrapper');
  copyFileSync(wrapper, wrapperCopy);
  chmodSync(wrapperCopy, 0o755);
  log('building the floor wrapper (bench/floor/exec-only.c)');
  const floor = path.join(tmpDir, 'exec-only');
  const src = path.join(BENCH_DIR, 'floor/exec-only.c');
  try {
    // Built like the real wrapper (wrapper/Makefile): static musl when installed, else static glibc.
    const musl = (() => {
      try {
        execFileSync('musl-gcc', ['--version'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    })();
    execFileSync(musl ? 'musl-gcc' : 'cc', ['-O2', '-static', '-o', floor, src], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    // No static libc: a dynamic build still measures an exec-only wrapper (slightly slower).
    execFileSync('cc', ['-O2', '-o', floor, src], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  log('ensuring the patched bash (builds it the first time, ~1 minute)');
  const patched = await ensurePatchedBash({ onProgress: (line) => log(`  ${line}`) });
  if (!existsSync(STOCK_BASH)) fail(`stock bash not found at ${STOCK_BASH}`);
  return { patched, wrapper: wrapperCopy, wrapperSource: wrapper, floor };
}

function machineInfo(patched: string, wrapper: string): Record<string, unknown> {
  const cpus = os.cpus();
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = sh('git', ['rev-parse', 'HEAD']);
    dirty = sh('git', ['status', '--porcelain', '--untracked-files=no']) !== '';
  } catch {
    // Not a git checkout (tarball): keep "unknown".
  }
  const version = (bash: string) => {
    try {
      return sh(bash, ['-c', 'echo $BASH_VERSION']);
    } catch {
      return 'unknown';
    }
  };
  return {
    machine: {
      cores: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      kernel: os.release(),
      platform: `${os.platform()}-${os.arch()}`,
      node: process.version,
      totalMemBytes: os.totalmem(),
      loadAvgAtStart: os.loadavg().map((x) => round(x, 2)),
    },
    git: { commit, dirty },
    shells: { stock: STOCK_BASH, stockVersion: version(STOCK_BASH), patched, patchedVersion: version(patched) },
    wrapper,
  };
}

// ---------------------------------------------------------------- running shells

interface RunResult {
  readonly wallMs: number;
  readonly cpuUs: number;
  readonly decisions: number;
}

/** Environment without any interception variables (a leftover EXEC_WRAPPER would turn "off" into "on"). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of PROTOCOL_ENV_VARS) delete env[k];
  return env;
}

function collectStderr(stream: NodeJS.ReadableStream | null): () => string {
  let buf = '';
  stream?.on('data', (b: Buffer) => {
    buf = (buf + b.toString('utf8')).slice(-4000);
  });
  return () => buf;
}

/** Run a shell directly (no server): stock bash, or the patched bash with interception off. */
async function runPlain(shell: string, argv: string[], cwd: string, extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const child = spawn(shell, argv, { cwd, env: { ...cleanEnv(), ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = collectStderr(child.stderr);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (code !== 0) fail(`${shell} ${argv.join(' ')} exited ${String(code)}: ${stderr()}`);
  return { wallMs, cpuUs: cpu.user + cpu.system, decisions: 0 };
}

/** Run the patched bash inside a session of `bs`; the bench process is the server, so its CPU delta is the server's cost. */
async function runIntercepted(bs: BenchServer, shell: string, argv: string[], cwd: string, minDecisions: number): Promise<RunResult> {
  const before = bs.recorder.count;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { child, done } = await launchShell(bs.server, { command: shell, args: argv, cwd, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  // As `codex-escalate run` does: once the shell is spawned, decisions go ahead of the workload (when permitted).
  const base = boostServerPriority(bs.server);
  const stderr = collectStderr(child.stderr);
  const { exitCode } = await done.finally(() => {
    if (base !== undefined) os.setPriority(0, base);
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (exitCode !== 0) fail(`intercepted ${argv.join(' ')} exited ${exitCode}: ${stderr()}`);
  const decisions = bs.recorder.count - before;
  // If the shell was not actually intercepted the numbers would be meaningless: refuse them.
  if (decisions < minDecisions) fail(`intercepted run made only ${decisions} decisions, expected at least ${minDecisions} (is EXEC_WRAPPER honoured?)`);
  return { wallMs, cpuUs: cpu.user + cpu.system, decisions };
}

interface Variant {
  readonly id: string;
  readonly label: string;
  readonly run: () => Promise<RunResult>;
  /** Policy server this variant uses (for latency and action figures). */
  readonly server?: BenchServer;
  /** Upper bound of the ratio to stock, when the issue sets one. */
  readonly target?: number;
  /** Run in at most this many of the reps (a slow variant with no target needs fewer samples). */
  readonly maxReps?: number;
}

interface VariantResult {
  label: string;
  wallMs: number[];
  medianMs: number;
  ratio: number;
  decisionsPerRun: number;
  serverCpuUsPerDecision: number | null;
  serverLatencyUs: Percentiles | null;
  actions: Record<string, number> | null;
  target: number | null;
  met: boolean | null;
}

/** Interleave the variants rep by rep (rotating the order) and take medians; ratios are against variants[0] (stock). */
async function measure(name: string, variants: Variant[], reps: number): Promise<Record<string, VariantResult>> {
  const walls = new Map<string, number[]>();
  const cpus = new Map<string, number[]>();
  const decisions = new Map<string, number[]>();
  for (const v of variants) v.server?.recorder.reset();
  for (let rep = 0; rep < reps; rep++) {
    const order = variants.map((_, i) => variants[(i + rep) % variants.length]!);
    for (const v of order) {
      if (v.maxReps !== undefined && rep >= v.maxReps) continue;
      const r = await v.run();
      walls.set(v.id, [...(walls.get(v.id) ?? []), r.wallMs]);
      cpus.set(v.id, [...(cpus.get(v.id) ?? []), r.cpuUs]);
      decisions.set(v.id, [...(decisions.get(v.id) ?? []), r.decisions]);
      log(`${name} rep ${rep + 1}/${reps} ${v.id}: ${r.wallMs.toFixed(0)} ms${r.decisions ? `, ${r.decisions} decisions` : ''}, ${openFds()} fds open`);
    }
  }
  const stock = median(walls.get(variants[0]!.id)!);
  const out: Record<string, VariantResult> = {};
  for (const v of variants) {
    const w = walls.get(v.id)!;
    const d = decisions.get(v.id)!;
    const totalDecisions = d.reduce((a, b) => a + b, 0);
    const cpuTotal = cpus.get(v.id)!.reduce((a, b) => a + b, 0);
    const ratio = median(w) / stock;
    out[v.id] = {
      label: v.label,
      wallMs: w.map((x) => round(x, 1)),
      medianMs: round(median(w), 1),
      ratio: round(ratio, 3),
      decisionsPerRun: round(median(d), 0),
      serverCpuUsPerDecision: totalDecisions > 0 ? round(cpuTotal / totalDecisions, 1) : null,
      serverLatencyUs: v.server ? roundP(percentiles(v.server.recorder.latencies)) : null,
      actions: v.server ? { ...v.server.recorder.actions } : null,
      target: v.target ?? null,
      met: v.target === undefined ? null : ratio <= v.target,
    };
  }
  return out;
}

/** Open fds of this (server) process: a leak shows up here long before EMFILE. */
function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

function roundP(p: Percentiles): Percentiles {
  return { count: p.count, p50: round(p.p50, 1), p90: round(p.p90, 1), p99: round(p.p99, 1), max: round(p.max, 1), mean: round(p.mean, 1) };
}

/** Run a worker script in a fresh node (with --expose-gc) and parse its JSON line. */
async function worker(argv: string[]): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(BENCH_DIR, 'decisions-worker.ts'), ...argv], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  const stderr = collectStderr(child.stderr);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) fail(`decisions-worker ${argv.join(' ')} exited ${String(code)}: ${stderr()}`);
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return fail(`decisions-worker printed no JSON: ${out.slice(-500)} ${stderr()}`);
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = performance.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'codex-bench-'));
  const { patched, wrapper, wrapperSource, floor } = await buildPrerequisites(tmp);
  const info = machineInfo(patched, wrapperSource);
  mkdirSync(OUT_DIR, { recursive: true });
  const loop = path.join(BENCH_DIR, 'workloads/exec-loop.sh');
  const conc = path.join(BENCH_DIR, 'workloads/concurrency.sh');
  const real = path.join(BENCH_DIR, 'workloads/real-work.sh');
  const direct = path.join(BENCH_DIR, 'workloads/direct-exec.sh');
  log(`${SMOKE ? 'SMOKE run' : 'full run'}; results in ${OUT_DIR}`);

  const servers: Partial<Record<PolicyKind, BenchServer>> = {};
  const server = async (kind: PolicyKind) => (servers[kind] ??= await createBenchServer(kind, { wrapperPath: wrapper, tmp }));
  // The same Run policy with the direct-exec filter on (layer 2), as the CLI runs by default.
  let directServer: BenchServer | undefined;
  const withFilter = async () => (directServer ??= await createBenchServer('run', { wrapperPath: wrapper, tmp, directExecs: true }));
  let fastServer: BenchServer | undefined;
  const withFast = async () => (fastServer ??= await createBenchServer('run', { wrapperPath: wrapper, tmp, fastPath: true }));
  let filterFastServer: BenchServer | undefined;
  const withFilterFast = async () => (filterFastServer ??= await createBenchServer('run', { wrapperPath: wrapper, tmp, directExecs: true, fastPath: true }));
  const result: Record<string, unknown> = { schema: 1, generatedAt: new Date().toISOString(), smoke: SMOKE, ...info, config: { ...CFG, policyRules: POLICY_RULES, sections: [...SECTIONS] } };
  const workloads: Record<string, unknown> = {};
  result.workloads = workloads;

  try {
    // Workload 1: exec loop.
    if (SECTIONS.has('w1')) {
      const n = CFG.loopExecs;
      const a = [loop, String(n)];
      const run = await server('run');
      const spawned = await server('spawned-hook');
      const persistent = await server('persistent-hook');
      const escalate = await server('escalate');
      const variants: Variant[] = [
        { id: 'stock', label: 'stock bash', run: () => runPlain(STOCK_BASH, a, tmp) },
        { id: 'patchedOff', label: 'patched bash, no EXEC_WRAPPER', run: () => runPlain(patched, a, tmp), target: 1.02 },
        // Not a product variant: the cost of the extra execve alone, for reference.
        { id: 'floor', label: 'floor: exec-only wrapper, no server', run: () => runPlain(patched, a, tmp, { EXEC_WRAPPER: floor }) },
        { id: 'run200', label: `Run, ${POLICY_RULES}-rule policy`, run: () => runIntercepted(run, patched, a, tmp, n), server: run, target: 1.8 },
        // The same policy with repeats answered by the native fast path (what `codex-escalate run` does without hooks).
        { id: 'run200Fast', label: `Run, ${POLICY_RULES}-rule, fast path`, run: async () => runIntercepted(await withFast(), patched, a, tmp, n), server: await withFast(), target: 1.3 },
        // Before/after of layer 2: the wrapper installs the exec filter and hands its listener over on every Run.
        { id: 'run200Filter', label: `Run + exec filter, ${POLICY_RULES}-rule`, run: async () => runIntercepted(await withFilter(), patched, a, tmp, n), server: await withFilter(), target: 1.8 },
        // Both: the CLI's default inside bwrap or as root, without hooks.
        { id: 'run200FilterFast', label: `Run + exec filter, fast path`, run: async () => runIntercepted(await withFilterFast(), patched, a, tmp, n), server: await withFilterFast() },
        // ~5 ms per exec: 3 samples are plenty for a variant with no target, and save a minute.
        { id: 'spawnedHook', label: 'spawned sh PreToolUse hook', run: () => runIntercepted(spawned, patched, a, tmp, n), server: spawned, maxReps: 3 },
        { id: 'persistentHook', label: 'persistent PreToolUse hook', run: () => runIntercepted(persistent, patched, a, tmp, n), server: persistent, target: 2.0 },
        { id: 'escalate', label: 'Escalate (server runs it)', run: () => runIntercepted(escalate, patched, a, tmp, n), server: escalate },
      ].filter((v) => v.id === 'stock' || !args.variants || args.variants.split(',').includes(v.id));
      // Warm-up: JIT, page cache, the persistent hook's process start.
      log('workload 1 warm-up');
      const warm = [loop, String(Math.min(50, n))];
      for (const bs of [run, spawned, persistent, escalate, await withFilter(), await withFast(), await withFilterFast()]) await runIntercepted(bs, patched, warm, tmp, 1);
      await runPlain(STOCK_BASH, warm, tmp);
      const res = await measure('w1', variants, CFG.reps);
      const s = res.spawnedHook;
      const p = res.persistentHook;
      const stock = res.stock!.medianMs;
      workloads.execLoop = {
        description: `bash script running ${n} x /bin/true`,
        execs: n,
        reps: CFG.reps,
        variants: res,
        persistentHookSpeedup: s && p && {
          // Wall time of the whole run, and the extra cost per exec over stock bash.
          wallRatio: round(s.medianMs / p.medianMs, 2),
          perExecOverheadUs: { spawned: round(((s.medianMs - stock) * 1000) / n, 1), persistent: round(((p.medianMs - stock) * 1000) / n, 1) },
          overheadRatio: round((s.medianMs - stock) / Math.max(1e-9, p.medianMs - stock), 1),
          serverLatencyP50Ratio: s.serverLatencyUs && p.serverLatencyUs ? round(s.serverLatencyUs.p50 / p.serverLatencyUs.p50, 1) : null,
        },
      };
    }

    // Workload 2: 16 parallel loops.
    if (SECTIONS.has('w2')) {
      const run = await server('run');
      const a = [conc, String(CFG.concLoops), String(CFG.concExecs)];
      const min = CFG.concLoops * CFG.concExecs;
      const variants: Variant[] = [
        { id: 'stock', label: 'stock bash', run: () => runPlain(STOCK_BASH, a, tmp) },
        { id: 'run200', label: `Run, ${POLICY_RULES}-rule policy`, run: () => runIntercepted(run, patched, a, tmp, min), server: run, target: 1.8 },
        { id: 'run200Fast', label: `Run, ${POLICY_RULES}-rule, fast path`, run: async () => runIntercepted(await withFast(), patched, a, tmp, min), server: await withFast() },
      ];
      const res = await measure('w2', variants, CFG.concReps);
      workloads.concurrency = {
        description: `${CFG.concLoops} parallel loops (xargs -P ${CFG.concLoops}) of ${CFG.concExecs} x /bin/true`,
        loops: CFG.concLoops,
        execsPerLoop: CFG.concExecs,
        reps: CFG.concReps,
        variants: res,
      };
    }

    // Workload 3: real work.
    if (SECTIONS.has('w3')) {
      const run = await server('run');
      let k = 0;
      const fresh = () => path.join(tmp, `real-${k++}`);
      const variants: Variant[] = [
        { id: 'stock', label: 'stock bash', run: () => runPlain(STOCK_BASH, [real, fresh(), String(CFG.realScale)], tmp) },
        { id: 'run200', label: `Run, ${POLICY_RULES}-rule policy`, run: () => runIntercepted(run, patched, [real, fresh(), String(CFG.realScale)], tmp, 10), server: run },
      ];
      await runPlain(STOCK_BASH, [real, fresh(), String(CFG.realScale)], tmp); // warm the page cache (cc, headers)
      const res = await measure('w3', variants, CFG.realReps);
      workloads.realWork = {
        description: 'bench/workloads/real-work.sh: configure-style probes, a small C build, text processing, tar',
        scale: CFG.realScale,
        reps: CFG.realReps,
        variants: res,
      };
    }
    // Workload 4: direct execs (layer 2): xargs execs /bin/true itself, N times.
    if (SECTIONS.has('w4')) {
      const n = CFG.loopExecs;
      const a = [direct, String(n)];
      const filtered = await withFilter();
      const variants: Variant[] = [
        { id: 'stock', label: 'stock bash', run: () => runPlain(STOCK_BASH, a, tmp) },
        { id: 'direct', label: `direct execs decided, ${POLICY_RULES}-rule`, run: () => runIntercepted(filtered, patched, a, tmp, n), server: filtered },
      ];
      await runIntercepted(filtered, patched, [direct, String(Math.min(50, n))], tmp, 1);
      const res = await measure('w4', variants, CFG.reps);
      workloads.directExec = {
        description: `xargs -n1 /bin/true over ${n} lines (each exec a seccomp notification; latency: the direct decisions)`,
        execs: n,
        reps: CFG.reps,
        variants: res,
      };
    }
  } finally {
    await Promise.all([...Object.values(servers), ...(directServer ? [directServer] : []), ...(fastServer ? [fastServer] : []), ...(filterFastServer ? [filterFastServer] : [])].map((s) => s.close()));
  }

  // Server side: RSS and CPU with the direct client (fresh process).
  if (SECTIONS.has('server')) {
    log(`server: ${CFG.rssSecond} decisions through the direct client`);
    result.rss = await worker(['--mode', 'rss', '--first', String(CFG.rssFirst), '--second', String(CFG.rssSecond), '--wrapper-path', wrapper]);
  }
  if (SECTIONS.has('rules')) {
    log(`rules scaling: ${CFG.rulesCounts.join(' / ')} rules`);
    result.rulesScaling = await worker([
      '--mode',
      'rules',
      '--counts',
      CFG.rulesCounts.join(','),
      '--requests',
      String(CFG.rulesRequests),
      '--rounds',
      String(CFG.rulesRounds),
      '--wrapper-path',
      wrapper,
    ]);
  }

  if (SECTIONS.has('startup')) {
    log(`start-up: whole processes, median of ${CFG.startupReps}`);
    result.startup = startup(tmp);
  }

  result.server = serverSummary(result);
  result.targets = targets(result);
  result.durationS = round((performance.now() - started) / 1000, 1);
  rmSync(tmp, { recursive: true, force: true });

  const jsonPath = path.join(OUT_DIR, 'latest.json');
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  const svg = chart(result);
  const svgPath = path.join(OUT_DIR, 'ratios.svg');
  writeFileSync(svgPath, svg);
  // Only a full run of everything may replace the chart the docs show.
  if (!SMOKE && ALL_SECTIONS && !args['no-docs-chart'] && args['out-dir'] === undefined) copyFileSync(svgPath, DOCS_CHART);
  process.stdout.write(table(result));
  process.stdout.write(`\nwrote ${path.relative(ROOT, jsonPath) || jsonPath}, ${path.relative(ROOT, svgPath) || svgPath} in ${result.durationS as number} s\n`);
}

/**
 * Whole CLI processes as an agent starts them (the CLI from dist/, the cached patched bash, no hooks file
 * discovered): bare node for reference, --version (argument parsing only), run of a script that execs nothing,
 * and the peak RSS of run over the exec loop of workload 1.
 */
function startup(tmp: string): Record<string, StartupFigure> {
  const cli = path.join(ROOT, 'bin', 'codex-escalate.js');
  const base: NodeJS.ProcessEnv = { ...cleanEnv(), CODEX_HOME: mkdtempSync(path.join(tmp, 'codex-home-')) };
  // NODE_EXTRA_CA_CERTS makes Node 20 parse that CA bundle before any JavaScript runs (+50 ms on this machine kind
  // for every node process, `node -e 0` included): the targets are measured without it, and the figures with it
  // are reported beside them when the environment sets it.
  const caCerts = base['NODE_EXTRA_CA_CERTS'];
  delete base['NODE_EXTRA_CA_CERTS'];
  const opts = { cwd: tmp, env: base };
  const reps = CFG.startupReps;
  const node = process.execPath;
  const runTrue = [node, cli, 'run', '--sandbox', 'none', '--', 'true'];
  const figures: Record<string, StartupFigure> = {
    nodeBare: startupFigure('node -e 0', [node, '-e', '0'], reps, opts),
    version: startupFigure('codex-escalate --version', [node, cli, '--version'], reps, opts),
    runTrue: startupFigure('codex-escalate run --sandbox none -- true', runTrue, reps, opts),
    runTrueUnbundled: startupFigure('  the same, CODEX_ESCALATE_NO_BUNDLE=1 (before the bundle)', runTrue, reps, { cwd: tmp, env: { ...base, CODEX_ESCALATE_NO_BUNDLE: '1' } }),
    runTrueNoCgroup: startupFigure('  the same, CODEX_ESCALATE_CGROUP=off (no session cgroup)', runTrue, reps, { cwd: tmp, env: { ...base, CODEX_ESCALATE_CGROUP: 'off' } }),
    // One escalation, cold: the escalated process is born in the session's cgroup (no migration to wait for).
    runEscalateOnce: startupFigure('run --sandbox none --escalate true -- /bin/true', [node, cli, 'run', '--sandbox', 'none', '--escalate', 'true', '--', '/bin/true'], reps, opts),
  };
  if (caCerts !== undefined) {
    const withCa = { cwd: tmp, env: { ...base, NODE_EXTRA_CA_CERTS: caCerts } };
    figures.nodeBareCaCerts = startupFigure('node -e 0, with NODE_EXTRA_CA_CERTS (as set here)', [node, '-e', '0'], reps, withCa);
    figures.runTrueCaCerts = startupFigure('run --sandbox none -- true, with NODE_EXTRA_CA_CERTS', runTrue, reps, withCa);
  }
  const n = CFG.loopExecs;
  figures.runLoop = startupFigure(`codex-escalate run --sandbox none, ${n} x /bin/true`, [node, cli, 'run', '--sandbox', 'none', '--log-file', '/dev/null', '--', execLoopScript(n)], Math.min(3, reps), opts);
  return figures;
}

// ---------------------------------------------------------------- summaries

type Json = Record<string, unknown>;

function get(o: unknown, ...keys: string[]): unknown {
  let cur = o;
  for (const k of keys) cur = cur && typeof cur === 'object' ? (cur as Json)[k] : undefined;
  return cur;
}

function num(o: unknown, ...keys: string[]): number {
  const v = get(o, ...keys);
  return typeof v === 'number' ? v : Number.NaN;
}

function serverSummary(r: Json): Json {
  return {
    latencyUs: {
      execLoopRun200: get(r, 'workloads', 'execLoop', 'variants', 'run200', 'serverLatencyUs') ?? null,
      execLoopPersistentHook: get(r, 'workloads', 'execLoop', 'variants', 'persistentHook', 'serverLatencyUs') ?? null,
      execLoopSpawnedHook: get(r, 'workloads', 'execLoop', 'variants', 'spawnedHook', 'serverLatencyUs') ?? null,
      concurrencyRun200: get(r, 'workloads', 'concurrency', 'variants', 'run200', 'serverLatencyUs') ?? null,
      execLoopRun200Fast: get(r, 'workloads', 'execLoop', 'variants', 'run200Fast', 'serverLatencyUs') ?? null,
      concurrencyRun200Fast: get(r, 'workloads', 'concurrency', 'variants', 'run200Fast', 'serverLatencyUs') ?? null,
    },
    cpuUsPerDecision: {
      execLoopRun200: get(r, 'workloads', 'execLoop', 'variants', 'run200', 'serverCpuUsPerDecision') ?? null,
      concurrencyRun200: get(r, 'workloads', 'concurrency', 'variants', 'run200', 'serverCpuUsPerDecision') ?? null,
      execLoopRun200Fast: get(r, 'workloads', 'execLoop', 'variants', 'run200Fast', 'serverCpuUsPerDecision') ?? null,
      concurrencyRun200Fast: get(r, 'workloads', 'concurrency', 'variants', 'run200Fast', 'serverCpuUsPerDecision') ?? null,
      directClientUpperBound: get(r, 'rss', 'cpuUsPerDecisionWithClient') ?? null,
    },
    rssBytes: {
      afterFirst: get(r, 'rss', 'rssFirstBytes') ?? null,
      afterSecond: get(r, 'rss', 'rssSecondBytes') ?? null,
      decisions: get(r, 'rss', 'decisions') ?? null,
      growth: get(r, 'rss', 'rssGrowth') ?? null,
    },
  };
}

interface Target {
  id: string;
  description: string;
  measured: number;
  limit: number;
  unit: string;
  met: boolean;
}

function targets(r: Json): Target[] {
  const t: Target[] = [];
  const add = (id: string, description: string, measured: number, limit: number, unit: string) => {
    if (Number.isFinite(measured)) t.push({ id, description, measured: round(measured, 3), limit, unit, met: measured <= limit });
  };
  const w1 = (v: string) => num(r, 'workloads', 'execLoop', 'variants', v, 'ratio');
  add('w1-run200', 'exec loop, Run with 200 rules, vs stock bash', w1('run200'), 1.8, '×');
  add('w1-run200-fast', 'exec loop, Run with 200 rules, fast path (the CLI default without hooks or direct execs), vs stock bash', w1('run200Fast'), 1.3, '×');
  add('cpu-run200-fast', 'server CPU per Run decision, fast path, exec loop', num(r, 'workloads', 'execLoop', 'variants', 'run200Fast', 'serverCpuUsPerDecision'), 60, 'µs');
  add('latency-p50-16-fast', 'server decision latency p50, 16 concurrent loops, fast path', num(r, 'workloads', 'concurrency', 'variants', 'run200Fast', 'serverLatencyUs', 'p50'), 100, 'µs');
  add('latency-p99-16-fast', 'server decision latency p99, 16 concurrent loops, fast path', num(r, 'workloads', 'concurrency', 'variants', 'run200Fast', 'serverLatencyUs', 'p99'), 1000, 'µs');
  add('w1-patched-off', 'patched bash without EXEC_WRAPPER vs stock bash', w1('patchedOff'), 1.02, '×');
  add('w1-persistent-hook', 'exec loop with a persistent hook vs stock bash', w1('persistentHook'), 2.0, '×');
  add('latency-p50-16', 'server decision latency p50, 16 concurrent loops, no hooks', num(r, 'workloads', 'concurrency', 'variants', 'run200', 'serverLatencyUs', 'p50'), 100, 'µs');
  add('latency-p99-16', 'server decision latency p99, 16 concurrent loops, no hooks', num(r, 'workloads', 'concurrency', 'variants', 'run200', 'serverLatencyUs', 'p99'), 1000, 'µs');
  add('rss-growth', 'RSS growth from the first to the second checkpoint', num(r, 'rss', 'rssGrowth') * 100, 10, '%');
  const by = (n: string) => num(r, 'rulesScaling', 'byCount', n, 'serverLatencyUs', 'p50');
  add('rules-10k-vs-10', 'p50 decision latency, 10 000 rules vs 10 rules', by('10000') / by('10'), 2, '×');
  add('startup-run-true', 'codex-escalate run --sandbox none -- true, whole process (NODE_EXTRA_CA_CERTS unset)', num(r, 'startup', 'runTrue', 'wallMs'), 150, ' ms');
  add('startup-run-true-rss', 'peak RSS of run -- true', num(r, 'startup', 'runTrue', 'peakRssMiB'), 55, ' MiB');
  add('startup-run-loop-rss', 'peak RSS of run over the exec loop', num(r, 'startup', 'runLoop', 'peakRssMiB'), 70, ' MiB');
  return t;
}

function fmt(x: unknown, digits = 2): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

function table(r: Json): string {
  const lines: string[] = [];
  const row = (cells: string[], widths: number[]) => lines.push(cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const m = r.machine as Json;
  lines.push('');
  lines.push(`codex-shell-escalation benchmark${SMOKE ? ' (SMOKE: reduced sizes, figures not representative)' : ''}`);
  lines.push(`${String(m.cores)} cores, ${String(m.cpuModel)}, Linux ${String(m.kernel)}, node ${String(m.node)}, commit ${String(get(r, 'git', 'commit')).slice(0, 12)}${get(r, 'git', 'dirty') ? '+dirty' : ''}`);
  const w = [40, 10, 8, 9, 10, 10, 10, 8];
  for (const [key, title] of [
    ['execLoop', 'Workload 1: exec loop'],
    ['concurrency', 'Workload 2: concurrency'],
    ['realWork', 'Workload 3: real work'],
    ['directExec', 'Workload 4: direct execs'],
  ] as const) {
    const wl = get(r, 'workloads', key) as Json | undefined;
    if (!wl) continue;
    lines.push('');
    lines.push(`${title} — ${String(wl.description)}`);
    row(['variant', 'median ms', 'ratio', 'target', 'p50 µs', 'p99 µs', 'cpu µs/dec', 'met'], w);
    for (const v of Object.values(wl.variants as Record<string, VariantResult>)) {
      row(
        [
          v.label,
          fmt(v.medianMs, 0),
          `${fmt(v.ratio)}×`,
          v.target === null ? '' : `≤${v.target}×`,
          fmt(v.serverLatencyUs?.p50, 0),
          fmt(v.serverLatencyUs?.p99, 0),
          fmt(v.serverCpuUsPerDecision, 0),
          v.met === null ? '' : v.met ? 'yes' : 'NO',
        ],
        w,
      );
    }
    const sp = wl.persistentHookSpeedup as Json | undefined;
    if (sp) lines.push(`  persistent hook vs spawned: ${fmt(sp.wallRatio)}× faster wall time, ${fmt(sp.overheadRatio, 1)}× less overhead per exec (${fmt(get(sp, 'perExecOverheadUs', 'spawned'), 0)} vs ${fmt(get(sp, 'perExecOverheadUs', 'persistent'), 0)} µs)`);
  }
  const lat = get(r, 'server', 'latencyUs') as Record<string, Percentiles | null> | undefined;
  if (lat) {
    lines.push('');
    lines.push('Server decision latency (µs, request received → response written)');
    const lw = [40, 8, 8, 8, 8, 8];
    row(['run', 'count', 'p50', 'p90', 'p99', 'max'], lw);
    for (const [k, p] of Object.entries(lat)) if (p) row([k, String(p.count), fmt(p.p50, 0), fmt(p.p90, 0), fmt(p.p99, 0), fmt(p.max, 0)], lw);
  }
  if (r.rss) {
    const rss = r.rss as Json;
    lines.push('');
    lines.push(
      `RSS: ${fmt(num(rss, 'rssFirstBytes') / 2 ** 20, 1)} MiB after ${String(get(rss, 'decisions', 'first'))} decisions, ${fmt(num(rss, 'rssSecondBytes') / 2 ** 20, 1)} MiB after ${String(get(rss, 'decisions', 'second'))} (${fmt(num(rss, 'rssGrowth') * 100, 1)} %); heap ${fmt(num(rss, 'heapUsedFirstBytes') / 2 ** 20, 1)} → ${fmt(num(rss, 'heapUsedSecondBytes') / 2 ** 20, 1)} MiB; ${String(rss.decisionsPerSecond)} decisions/s via the direct client`,
    );
  }
  const rules = get(r, 'rulesScaling', 'byCount') as Record<string, Json> | undefined;
  if (rules) {
    lines.push('');
    lines.push(`Rules scaling (command: ${(get(r, 'rulesScaling', 'command') as string[]).join(' ')}, one client)`);
    const rw = [40, 10, 10, 10, 12];
    row(['rules', 'p50 µs', 'p99 µs', 'decide µs', 'compile ms'], rw);
    for (const v of Object.values(rules)) row([String(v.rules), fmt(num(v, 'serverLatencyUs', 'p50'), 1), fmt(num(v, 'serverLatencyUs', 'p99'), 0), fmt(v.pipelineDecideUs, 2), fmt(v.compileMs, 1)], rw);
  }
  const st = r.startup as Record<string, StartupFigure> | undefined;
  if (st) {
    lines.push('');
    lines.push('Start-up (whole processes, medians; NODE_EXTRA_CA_CERTS unset unless the row says so)');
    const sw = [52, 10, 10, 14];
    row(['command', 'wall ms', 'cpu ms', 'peak RSS MiB'], sw);
    for (const f of Object.values(st)) row([f.label, fmt(f.wallMs, 1), fmt(f.cpuMs, 1), fmt(f.peakRssMiB, 1)], sw);
  }
  lines.push('');
  lines.push('Targets');
  for (const t of r.targets as Target[]) lines.push(`  ${t.met ? 'met   ' : 'MISSED'}  ${t.description}: ${fmt(t.measured)}${t.unit} (target ≤ ${t.limit}${t.unit})`);
  return `${lines.join('\n')}\n`;
}

function chart(r: Json): string {
  const bars: Bar[] = [];
  const add = (wl: string, prefix: string) => {
    const vs = get(r, 'workloads', wl, 'variants') as Record<string, VariantResult> | undefined;
    if (!vs) return;
    for (const [id, v] of Object.entries(vs)) if (id !== 'stock') bars.push({ label: `${prefix}: ${v.label}`, value: v.ratio, target: v.target ?? undefined });
  };
  add('execLoop', 'W1');
  add('concurrency', 'W2 ×16');
  add('realWork', 'W3');
  const m = r.machine as Json;
  return barChartSvg({
    title: `Wall time vs stock bash (lower is better)${SMOKE ? ' — SMOKE' : ''}`,
    subtitle: `${String(m.cores)} cores, Linux ${String(m.kernel)}, node ${String(m.node)}, commit ${String(get(r, 'git', 'commit')).slice(0, 12)}; red tick = target`,
    bars,
    unit: '×',
  });
}

await main();
