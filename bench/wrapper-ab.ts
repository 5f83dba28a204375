/**
 * A/B of wrapper builds on the Run + exec filter loop (workload 1), with
 * everything else equal, reps interleaved in rotating order:
 *
 *   npx tsx bench/wrapper-ab.ts --wrappers A,B [--execs 2000] [--reps 5]
 *
 * Variants: stock bash; Run without the filter (first wrapper); Run + exec
 * filter with each wrapper. Per exec: wall, CPU of the shell's tree (bash's
 * `times`: user + system of the shell and its children) and CPU of this
 * process (the server). Medians; a loaded machine distorts CPU less than wall.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launchShell } from '../src/server/run-shell.js';
import { boostServerPriority } from '../src/server/escalation-server.js';
import { ensurePatchedBash } from '../src/shell/patched-bash.js';
import { PROTOCOL_ENV_VARS } from '../src/protocol/constants.js';
import { BENCH_DIR, createBenchServer, type BenchServer } from './lib/servers.js';
import { median } from './lib/stats.js';

const { values: args } = parseArgs({
  options: { wrappers: { type: 'string' }, execs: { type: 'string', default: '2000' }, reps: { type: 'string', default: '5' } },
});
if (!args.wrappers) throw new Error('--wrappers A,B (paths of wrapper builds)');
const execs = Number(args.execs);
const reps = Number(args.reps);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'wrapper-ab-'));
// Private copies: a rebuild of wrapper/ meanwhile must not change what is measured.
const wrappers = args.wrappers.split(',').map((w, i) => {
  const copy = path.join(tmp, `wrapper-${i}`);
  copyFileSync(path.resolve(w), copy);
  return { name: w, path: copy };
});
const script = path.join(BENCH_DIR, 'workloads', 'exec-loop.sh');
const loop = `. ${JSON.stringify(script)} ${execs}; times`;

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of PROTOCOL_ENV_VARS) delete env[k];
  return env;
}

/** bash's `times`: second line is the children's user and system time. */
function treeCpuUs(out: string): number {
  const lines = out.trim().split('\n');
  const secs = (s: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(s);
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  };
  let total = 0;
  for (const line of lines.slice(-2)) for (const part of line.trim().split(/\s+/)) total += secs(part);
  return total * 1e6;
}

interface Sample {
  wall: number;
  tree: number;
  server: number;
}

async function stock(): Promise<Sample> {
  const t0 = performance.now();
  const child = spawn('/bin/bash', ['-c', loop], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`stock loop exited ${code}`);
  return { wall: (performance.now() - t0) * 1000, tree: treeCpuUs(out), server: 0 };
}

async function intercepted(bs: BenchServer, shell: string): Promise<Sample> {
  const before = bs.recorder.count;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { child, done } = await launchShell(bs.server, { command: shell, args: ['-c', loop], cwd: tmp, env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  const base = boostServerPriority(bs.server);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  const { exitCode } = await done.finally(() => {
    if (base !== undefined) os.setPriority(0, base);
  });
  const wall = (performance.now() - t0) * 1000;
  const cpu = process.cpuUsage(cpu0);
  if (exitCode !== 0) throw new Error(`intercepted loop exited ${exitCode}`);
  if (bs.recorder.count - before < execs) throw new Error(`only ${bs.recorder.count - before} decisions`);
  return { wall, tree: treeCpuUs(out), server: cpu.user + cpu.system };
}

const patched = await ensurePatchedBash();
const variants: { id: string; run: () => Promise<Sample> }[] = [{ id: 'stock', run: stock }];
const noFilter = await createBenchServer('run', { wrapperPath: wrappers[0]!.path, tmp });
variants.push({ id: `run (${wrappers[0]!.name})`, run: () => intercepted(noFilter, patched) });
for (const w of wrappers) {
  const bs = await createBenchServer('run', { wrapperPath: w.path, tmp, directExecs: true });
  variants.push({ id: `run+filter (${w.name})`, run: () => intercepted(bs, patched) });
}
for (const v of variants) await v.run(); // warm-up
const samples = new Map<string, Sample[]>(variants.map((v) => [v.id, []]));
for (let r = 0; r < reps; r++) {
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + r) % variants.length]!;
    samples.get(v.id)!.push(await v.run());
  }
}
const stockWall = median(samples.get('stock')!.map((s) => s.wall));
console.log(`load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${execs} execs x ${reps} reps; per exec (µs), medians`);
console.log(`${'variant'.padEnd(44)} ${'wall'.padStart(8)} ${'ratio'.padStart(6)} ${'tree cpu'.padStart(9)} ${'server cpu'.padStart(11)}`);
for (const v of variants) {
  const s = samples.get(v.id)!;
  const wall = median(s.map((x) => x.wall));
  console.log(
    `${v.id.padEnd(44)} ${(wall / execs).toFixed(1).padStart(8)} ${(wall / stockWall).toFixed(2).padStart(6)} ${(median(s.map((x) => x.tree)) / execs).toFixed(1).padStart(9)} ${(median(s.map((x) => x.server)) / execs).toFixed(1).padStart(11)}`,
  );
}
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
