/**
 * Full fuzz run: `npm run fuzz [-- --inputs N] [--seed S] [--load] [--json FILE]`.
 * Corpus + N generated inputs (default 100 000) in batches with every
 * invariant checked, a datagram flood, slow-loris clients and the rejection-log
 * accounting; --load adds 64 × 1 000 mixed requests with and without a
 * persistent hook; then --fast-path-seeds (default 100) exec sequences through
 * real bash decided with the native fast path on and off, which must agree.
 * Exits 1 on any violation.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { datagramFlood, finalAccounting, newStats, runBatch, runInput, sampleHeap, slowLoris, summarize } from './campaign.js';
import { FdFactory, settleFds, startTarget } from './harness.js';
import { corpus, generate } from './inputs.js';
import { runLoad, startHookedTarget } from './load.js';
import { runFastPathDifferential } from './fast-path-differential.js';
import { tempDir } from '../helpers/harness.js';

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '100000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    'batch-size': { type: 'string', default: '500' },
    load: { type: 'boolean', default: false },
    'load-requests': { type: 'string', default: '1000' },
    json: { type: 'string' },
    'fast-path-seeds': { type: 'string', default: '100' },
  },
});
const total = Number(values.inputs);
const seed = Number(values.seed);
const batchSize = Number(values['batch-size']);
const log = (s: string) => process.stdout.write(`${s}\n`);

const started = Date.now();
const frameTimeoutMs = 500;
const t = await startTarget({ frameTimeoutMs });
const fdf = await FdFactory.create();
t.rebaseline();
const stats = newStats(t);
log(`fuzz: seed ${seed}, ${total} generated inputs in batches of ${batchSize}, fd baseline ${t.baselineFds}`);

const nasty = corpus();
for (const input of nasty) await runInput(t, fdf, input);
await runBatch(t, fdf, [], stats);
stats.inputs += nasty.length;
log(`corpus: ${nasty.length} hand-written inputs, violations so far ${stats.violations.length}`);

let generated = 0;
for (let b = 0; generated < total; b++) {
  const n = Math.min(batchSize, total - generated);
  await runBatch(t, fdf, generate(n, seed + b), stats);
  generated += n;
  if (b % 20 === 19) {
    sampleHeap(stats, 64e6);
    log(`  ${generated}/${total} generated, heap ${(stats.heapEndBytes / 1e6).toFixed(1)} MB, violations ${stats.violations.length}`);
  }
}
sampleHeap(stats, 64e6);
const flood = await datagramFlood(t, 20_000, stats);
log(`flood: ${flood.sent} datagrams in ${flood.ms} ms, ${flood.linesDuring} log lines`);
const loris = await slowLoris(t, 8, 100, frameTimeoutMs, stats);
log(`slow-loris: 8 clients dropped after ${Math.min(...loris.droppedAfterMs)}-${Math.max(...loris.droppedAfterMs)} ms`);
const acc = await finalAccounting(t, stats);
log(`rejections: ${acc.rejected} = ${acc.lines} log lines + ${acc.suppressed} suppressed: ${acc.ok ? 'ok' : 'MISMATCH'}`);
const fdsEnd = await settleFds(t.baselineFds);
if (!fdsEnd.ok) stats.violations.push({ batch: stats.batches, what: `fds at the end ${fdsEnd.fds} > ${t.baselineFds}` });
sampleHeap(stats, 64e6);
await t.close();
fdf.close();

const summary: Record<string, unknown> = { seed, ...summarize(stats), rejections: acc, duration_s: Math.round((Date.now() - started) / 1000) };
if (values.load) {
  const per = Number(values['load-requests']);
  const plain = await startTarget();
  summary.load_no_hook = await runLoad(plain, 64, per);
  await plain.close();
  log(`load (no hook): ${JSON.stringify(summary.load_no_hook)}`);
  const { target, engine } = await startHookedTarget(tempDir('cse-load-'));
  summary.load_persistent_hook = await runLoad(target, 64, per);
  await target.close();
  await engine.close();
  log(`load (persistent hook): ${JSON.stringify(summary.load_persistent_hook)}`);
  for (const k of ['load_no_hook', 'load_persistent_hook'] as const) {
    const r = summary[k] as { errors: number; wrong: number };
    if (r.errors || r.wrong) stats.violations.push({ batch: 0, what: `${k}: ${r.errors} errors, ${r.wrong} wrong` });
  }
}
// The native fast path against the JS path, real bash sequences (test/fuzz/fast-path-differential.ts).
const diff = await runFastPathDifferential(seed, Number(values['fast-path-seeds']));
summary.fast_path_differential = { seeds: diff.seeds, decisions: diff.decisions, hits: diff.hits, differences: diff.differences.length };
log(`fast path differential: ${diff.seeds} sequences, ${diff.decisions} decisions, ${diff.hits} answered natively, ${diff.differences.length} differences`);
for (const d of diff.differences) stats.violations.push({ batch: 0, what: `fast path: ${d}` });
summary.violations = stats.violations.length;
log(JSON.stringify(summary, null, 2));
for (const v of stats.violations.slice(0, 20)) log(`VIOLATION (batch ${v.batch}): ${v.what}`);
if (values.json) writeFileSync(values.json, JSON.stringify({ ...summary, violation_list: stats.violations }, null, 2));
process.exit(stats.violations.length ? 1 : 0);
