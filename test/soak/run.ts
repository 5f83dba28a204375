/**
 * Soak: `npm run soak [-- --minutes N] [--json FILE]` (default 10 minutes; not
 * in CI). One server under steady mixed load (Run / Deny / Escalate from 16
 * concurrent clients) with a trickle of hostile fuzz inputs. Every 10 s the
 * load pauses briefly and RSS, heap after GC and the open fd count are
 * sampled: fds must be back at baseline each time, and RSS/heap flat (last
 * third vs first third after warm-up). Exits 1 if not.
 */
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { runInput } from '../fuzz/campaign.js';
import { FdFactory, heapAfterGc, settleFds, startTarget } from '../fuzz/harness.js';
import { generate } from '../fuzz/inputs.js';
import { runLoad } from '../fuzz/load.js';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, json: { type: 'string' }, 'sample-seconds': { type: 'string', default: '10' } } });
const minutes = Number(values.minutes);
const sampleMs = Number(values['sample-seconds']) * 1000;
const log = (s: string) => process.stdout.write(`${s}\n`);

const t = await startTarget({ frameTimeoutMs: 500 });
const fdf = await FdFactory.create();
t.rebaseline();
const end = Date.now() + minutes * 60_000;
let paused = false;
let requests = 0;
let fuzzInputs = 0;
let errors = 0;
let wrong = 0;
let active = 0;

const loadLoop = async () => {
  while (Date.now() < end) {
    if (paused) {
      await sleep(20);
      continue;
    }
    active++;
    const r = await runLoad(t, 16, 10);
    active--;
    requests += r.requests;
    errors += r.errors;
    wrong += r.wrong;
  }
};
const fuzzLoop = async () => {
  for (let seed = 1; Date.now() < end; seed++) {
    if (paused) {
      await sleep(20);
      continue;
    }
    active++;
    for (const input of generate(50, seed)) await runInput(t, fdf, input);
    active--;
    fuzzInputs += 50;
    await sleep(50);
  }
};

interface Sample {
  at_s: number;
  rss_mb: number;
  heap_mb: number;
  fds: number;
  requests: number;
}
const samples: Sample[] = [];
const t0 = Date.now();
const sampler = async () => {
  while (Date.now() < end) {
    await sleep(Math.min(sampleMs, Math.max(0, end - Date.now())));
    paused = true;
    while (active > 0) await sleep(5);
    const settled = await settleFds(t.baselineFds, 3000);
    const s: Sample = { at_s: Math.round((Date.now() - t0) / 1000), rss_mb: Number((process.memoryUsage().rss / 1e6).toFixed(1)), heap_mb: Number((heapAfterGc() / 1e6).toFixed(1)), fds: settled.fds, requests };
    samples.push(s);
    log(`t=${s.at_s}s rss=${s.rss_mb}MB heap=${s.heap_mb}MB fds=${s.fds}/${t.baselineFds} requests=${requests} fuzz=${fuzzInputs} errors=${errors} wrong=${wrong}`);
    paused = false;
  }
};
await Promise.all([loadLoop(), fuzzLoop(), sampler()]);
await t.close();
fdf.close();

const problems: string[] = [];
if (errors || wrong) problems.push(`${errors} errors, ${wrong} wrong decisions`);
for (const s of samples) if (s.fds > t.baselineFds) problems.push(`fds ${s.fds} > baseline ${t.baselineFds} at ${s.at_s}s`);
const warm = samples.slice(1);
const third = Math.max(1, Math.floor(warm.length / 3));
const avg = (xs: Sample[], k: 'rss_mb' | 'heap_mb') => xs.reduce((a, s) => a + s[k], 0) / xs.length;
let growth = { rss_mb: 0, heap_mb: 0 };
if (warm.length >= 3) {
  growth = { rss_mb: Number((avg(warm.slice(-third), 'rss_mb') - avg(warm.slice(0, third), 'rss_mb')).toFixed(1)), heap_mb: Number((avg(warm.slice(-third), 'heap_mb') - avg(warm.slice(0, third), 'heap_mb')).toFixed(1)) };
  if (growth.rss_mb > 40) problems.push(`RSS grew by ${growth.rss_mb} MB`);
  if (growth.heap_mb > 10) problems.push(`heap grew by ${growth.heap_mb} MB`);
}
const summary = { minutes, requests, fuzz_inputs: fuzzInputs, errors, wrong, fd_baseline: t.baselineFds, samples: samples.length, growth, problems };
log(JSON.stringify(summary, null, 2));
if (values.json) writeFileSync(values.json, JSON.stringify({ ...summary, samples }, null, 2));
process.exit(problems.length ? 1 : 0);
