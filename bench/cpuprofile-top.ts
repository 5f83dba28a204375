/**
 * Summarise a V8 .cpuprofile (node --cpu-prof): the top frames by self time
 * and by inclusive time, optionally restricted to a time window, in µs per
 * unit of work (e.g. per decision) when --per N is given.
 *
 *   npx tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top 30] [--per 2000] [--from-ms A --to-ms B | --between FN] [--inclusive]
 *
 * --between FN: the window from the first to the last sample with a frame
 * named FN on the stack (e.g. --between '#handle': the exec loop, without
 * start-up and shutdown).
 *
 * Self time is charged to the frame on top of the stack ("(program)" is V8
 * and native code outside any JS frame: libuv, syscalls made from C++, the
 * event loop itself; "(idle)" is time asleep in epoll_wait; "(garbage
 * collector)" is GC on the main thread).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '30' },
    per: { type: 'string' },
    'from-ms': { type: 'string' },
    'to-ms': { type: 'string' },
    inclusive: { type: 'boolean', default: false },
    between: { type: 'string' },
  },
});
const file = positionals[0];
if (!file) throw new Error('usage: cpuprofile-top.ts FILE.cpuprofile [--top N] [--per N] [--from-ms A --to-ms B] [--inclusive]');
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(src|dist|node_modules)\//, '$1/').replace(/^node:/, '')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

let from = args['from-ms'] !== undefined ? Number(args['from-ms']) * 1000 : -Infinity;
let to = args['to-ms'] !== undefined ? Number(args['to-ms']) * 1000 : Infinity;
if (args.between !== undefined) {
  const fn = args.between;
  const hit = new Map<number, boolean>();
  const has = (id: number): boolean => {
    let v = hit.get(id);
    if (v === undefined) {
      const p = parent.get(id);
      v = byId.get(id)!.callFrame.functionName === fn || (p !== undefined && has(p));
      hit.set(id, v);
    }
    return v;
  };
  let at = 0;
  from = Infinity;
  to = -Infinity;
  for (let i = 0; i < prof.samples.length; i++) {
    at += prof.timeDeltas[i] ?? 0;
    if (!has(prof.samples[i]!)) continue;
    from = Math.min(from, at);
    to = Math.max(to, at);
  }
}
const self = new Map<string, number>();
const incl = new Map<string, number>();
let t = 0;
let total = 0;
let busy = 0;
for (let i = 0; i < prof.samples.length; i++) {
  // timeDeltas[i] is the time before sample i: charge the interval up to the next sample to sample i.
  const dt = prof.timeDeltas[i + 1] ?? 0;
  t += prof.timeDeltas[i] ?? 0;
  if (t < from || t > to) continue;
  const leaf = byId.get(prof.samples[i]!)!;
  total += dt;
  const l = label(leaf);
  if (l !== '(idle)') busy += dt;
  self.set(l, (self.get(l) ?? 0) + dt);
  if (args.inclusive) {
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const name = label(byId.get(id)!);
      if (seen.has(name)) continue;
      seen.add(name);
      incl.set(name, (incl.get(name) ?? 0) + dt);
    }
  }
}
const per = args.per !== undefined ? Number(args.per) : undefined;
const fmt = (us: number) => (per ? `${(us / per).toFixed(1).padStart(8)} µs/unit` : `${(us / 1000).toFixed(1).padStart(9)} ms`);
console.log(`window ${((total) / 1000).toFixed(0)} ms, busy (not idle) ${(busy / 1000).toFixed(0)} ms${per ? ` = ${(busy / per).toFixed(1)} µs per unit (${per})` : ''}`);
const top = Number(args.top);
console.log('\nself time');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)} ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
if (args.inclusive) {
  console.log('\ninclusive time');
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)} ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
