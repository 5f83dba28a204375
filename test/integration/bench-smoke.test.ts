/**
 * Keeps the benchmark from rotting: runs `bench/run.ts --smoke` end to end
 * (real patched bash, real wrapper, real server, real hooks) and checks that
 * it produced every figure. It asserts that the figures exist and are sane,
 * never how fast they are: CI machines are too noisy for that.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const outDir = mkdtempSync(path.join(tmpdir(), 'bench-smoke-'));
const docsChart = path.join(root, 'docs/performance-ratios.svg');

type Json = Record<string, unknown>;
let result: Json;
let stdout = '';
let docsChartBefore: number | null = null;

function at(o: unknown, ...keys: string[]): unknown {
  let cur = o;
  for (const k of keys) cur = cur && typeof cur === 'object' ? (cur as Json)[k] : undefined;
  return cur;
}

function positive(o: unknown, ...keys: string[]): number {
  const v = at(o, ...keys);
  expect(typeof v, `${keys.join('.')} should be a number`).toBe('number');
  expect(Number.isFinite(v as number) && (v as number) > 0, `${keys.join('.')} = ${String(v)} should be finite and > 0`).toBe(true);
  return v as number;
}

function expectPercentiles(p: unknown, what: string, count: number): void {
  expect(p, `${what} latency histogram`).toBeTruthy();
  expect(positive(p, 'count')).toBeGreaterThanOrEqual(count);
  const [p50, p90, p99, max] = ['p50', 'p90', 'p99', 'max'].map((k) => positive(p, k));
  expect(p50! <= p90! && p90! <= p99! && p99! <= max!, `${what}: percentiles must be ordered`).toBe(true);
}

beforeAll(async () => {
  docsChartBefore = existsSync(docsChart) ? statSync(docsChart).mtimeMs : null;
  const run = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out-dir', outDir], {
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 240_000,
  });
  stdout = run.stdout;
  result = JSON.parse(readFileSync(path.join(outDir, 'latest.json'), 'utf8')) as Json;
}, 250_000);

afterAll(() => {
  rmSync(outDir, { recursive: true, force: true });
});

describe('npm run bench -- --smoke', () => {
  it('records the machine, the commit and the shells', () => {
    expect(result.smoke).toBe(true);
    expect(positive(result, 'machine', 'cores')).toBeGreaterThanOrEqual(1);
    expect(at(result, 'machine', 'kernel')).toMatch(/\d/);
    expect(at(result, 'machine', 'node')).toBe(process.version);
    expect(at(result, 'git', 'commit')).toMatch(/^[0-9a-f]{40}$/);
    expect(at(result, 'shells', 'stockVersion')).toMatch(/^5\.2/);
    expect(at(result, 'shells', 'patchedVersion')).toBe(at(result, 'shells', 'stockVersion'));
  });

  it('measured every workload 1 variant against stock bash, with real interception', () => {
    const vs = at(result, 'workloads', 'execLoop', 'variants') as Json;
    expect(Object.keys(vs).sort()).toEqual(['escalate', 'floor', 'patchedOff', 'persistentHook', 'run200', 'run200Fast', 'run200Filter', 'run200FilterFast', 'spawnedHook', 'stock'].sort());
    expect(at(vs, 'stock', 'ratio')).toBe(1);
    const execs = positive(result, 'workloads', 'execLoop', 'execs');
    for (const id of ['patchedOff', 'floor', 'run200', 'run200Fast', 'run200Filter', 'run200FilterFast', 'spawnedHook', 'persistentHook', 'escalate']) positive(vs, id, 'ratio');
    for (const [id, action] of [
      ['run200', 'run'],
      ['run200Fast', 'run'],
      ['run200Filter', 'run'],
      ['run200FilterFast', 'run'],
      ['spawnedHook', 'run'],
      ['persistentHook', 'run'],
      ['escalate', 'escalate'],
    ] as const) {
      // Every exec of the loop went through the server, and got the action the variant is about.
      expect(at(vs, id, 'decisionsPerRun')).toBe(execs);
      expect(at(vs, id, 'actions')).toEqual({ [action]: execs * (at(result, 'workloads', 'execLoop', 'reps') as number) });
      expectPercentiles(at(vs, id, 'serverLatencyUs'), id, execs);
      positive(vs, id, 'serverCpuUsPerDecision');
    }
    positive(result, 'workloads', 'execLoop', 'persistentHookSpeedup', 'wallRatio');
  });

  it('measured concurrency and real work', () => {
    const conc = at(result, 'workloads', 'concurrency') as Json;
    expect(conc.loops).toBe(16);
    positive(conc, 'variants', 'run200', 'ratio');
    expect(positive(conc, 'variants', 'run200', 'decisionsPerRun')).toBeGreaterThanOrEqual(16 * (conc.execsPerLoop as number));
    expectPercentiles(at(conc, 'variants', 'run200', 'serverLatencyUs'), 'concurrency', 16);
    expect(positive(conc, 'variants', 'run200Fast', 'decisionsPerRun')).toBeGreaterThanOrEqual(16 * (conc.execsPerLoop as number));
    expectPercentiles(at(conc, 'variants', 'run200Fast', 'serverLatencyUs'), 'concurrency, fast path', 16);
    positive(result, 'workloads', 'realWork', 'variants', 'run200', 'ratio');
    expect(positive(result, 'workloads', 'realWork', 'variants', 'run200', 'decisionsPerRun')).toBeGreaterThanOrEqual(10);
  });

  it('measured the direct-exec loop (xargs -n1 /bin/true) against stock, with every exec decided', () => {
    const w4 = at(result, 'workloads', 'directExec') as Json;
    const execs = positive(w4, 'execs');
    positive(w4, 'variants', 'direct', 'ratio');
    // seq and xargs through the wrapper, every /bin/true as a notification.
    expect(at(w4, 'variants', 'direct', 'decisionsPerRun')).toBe(execs + 2);
    expectPercentiles(at(w4, 'variants', 'direct', 'serverLatencyUs'), 'directExec', execs);
  });

  it('measured RSS at two checkpoints, CPU per decision and rules scaling', () => {
    const first = positive(result, 'rss', 'rssFirstBytes');
    const second = positive(result, 'rss', 'rssSecondBytes');
    expect(first).toBeGreaterThan(10 * 2 ** 20);
    expect(second).toBeGreaterThan(10 * 2 ** 20);
    expect(at(result, 'rss', 'gcForced')).toBe(true);
    expect(at(result, 'rss', 'sessionDecisions')).toBeGreaterThanOrEqual(at(result, 'rss', 'decisions', 'second') as number);
    positive(result, 'server', 'cpuUsPerDecision', 'execLoopRun200');
    positive(result, 'server', 'cpuUsPerDecision', 'concurrencyRun200');
    for (const n of ['10', '1000', '10000']) {
      expectPercentiles(at(result, 'rulesScaling', 'byCount', n, 'serverLatencyUs'), `${n} rules`, 50);
      positive(result, 'rulesScaling', 'byCount', n, 'pipelineDecideUs');
    }
  });

  it('measured start-up: wall time and peak RSS of whole CLI processes against bare node', () => {
    for (const f of ['nodeBare', 'version', 'runTrue', 'runTrueUnbundled', 'runTrueNoCgroup', 'runEscalateOnce', 'runLoop']) {
      positive(result, 'startup', f, 'wallMs');
      positive(result, 'startup', f, 'cpuMs');
      positive(result, 'startup', f, 'peakRssMiB');
    }
    // The CLI is node plus something: a figure below bare node would mean the sampler measured the wrong process.
    expect(at(result, 'startup', 'runTrue', 'peakRssMiB') as number).toBeGreaterThan(at(result, 'startup', 'nodeBare', 'peakRssMiB') as number);
    expect(at(result, 'startup', 'runLoop', 'argv')).toContain('--sandbox');
  });

  it('evaluates every target', () => {
    const ids = (result.targets as { id: string; measured: number; met: boolean }[]).map((t) => t.id).sort();
    expect(ids).toEqual(['cpu-run200-fast', 'latency-p50-16', 'latency-p50-16-fast', 'latency-p99-16', 'latency-p99-16-fast', 'rss-growth', 'rules-10k-vs-10', 'startup-run-loop-rss', 'startup-run-true', 'startup-run-true-rss', 'w1-patched-off', 'w1-persistent-hook', 'w1-run200', 'w1-run200-fast'].sort());
    for (const t of result.targets as { measured: number; met: unknown }[]) {
      expect(Number.isFinite(t.measured)).toBe(true);
      expect(typeof t.met).toBe('boolean');
    }
  });

  it('prints the table and writes the chart, without touching the committed docs chart', () => {
    expect(stdout).toContain('Workload 1: exec loop');
    expect(stdout).toContain('Rules scaling');
    expect(stdout).toMatch(/Targets\n(\s+(met|MISSED)\s.*\n){10}/);
    expect(stdout).toContain('Start-up (whole processes, medians; NODE_EXTRA_CA_CERTS unset unless the row says so)');
    const svg = readFileSync(path.join(outDir, 'ratios.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // One bar per non-stock variant: 9 in workload 1, 2 in workload 2, 1 in workload 3.
    expect(svg.match(/<rect x="300"/g)?.length).toBe(12);
    expect(existsSync(docsChart) ? statSync(docsChart).mtimeMs : null).toBe(docsChartBefore);
  });
});
