// Lifetime of native handles under GC, worker-thread teardown and throwing
// callbacks. Each scenario runs in its own node process: a crash there shows
// up as a signal exit instead of taking the test runner down.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ADDON = path.join(root, 'build/Release/codex_native.node');

function node(script: string, flags: string[] = []): { code: number | null; signal: string | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...flags, '-e', `const ADDON = ${JSON.stringify(ADDON)};\n${script}`], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('native handle lifetime', () => {
  it('armed pollers survive losing every JS reference; dropped idle ones are collected; the loop then drains', () => {
    const r = node(
      `
const n = require(ADDON);
const peers = [], idleFds = [];
let fired = 0;
function make(i) {
  const [a, b] = n.socketPair('stream', true, true);
  peers.push(a);
  const p = new n.Poller(b, (err, ev) => {
    if (err || !ev.readable) throw new Error('unexpected event');
    fired++;
    p.close();
    n.closeFd(b);
  });
  if (i % 2 === 0) p.start(true, false); else idleFds.push(b);
}
for (let i = 0; i < 200; i++) make(i);
(async () => {
  for (let i = 0; i < 5; i++) { gc(); await new Promise((r) => setImmediate(r)); }
  for (const a of peers) n.sendMsg(a, Buffer.from('x'));
  // The 100 armed pollers fire once each (a collected one never would: the count then stays short).
  for (const deadline = Date.now() + 10000; fired < 100 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < 5; i++) { gc(); await new Promise((r) => setImmediate(r)); }
  for (const fd of [...peers, ...idleFds]) n.closeFd(fd);
  console.log(JSON.stringify({ fired }));
  // Nothing armed any more: the process must exit on its own.
})();
`,
      ['--expose-gc'],
    );
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ fired: 100 });
  });

  it('worker threads can be terminated with armed, idle and just-closed pollers', () => {
    const r = node(`
const { Worker } = require('node:worker_threads');
const code = \`
const n = require(\${JSON.stringify(ADDON)});
const { parentPort } = require('node:worker_threads');
globalThis.keep = [];
for (let i = 0; i < 4; i++) {
  const [a, b] = n.socketPair('stream', true, true);
  const p = new n.Poller(b, () => {});
  if (i > 0) p.start(true, true);
  if (i === 3) p.close();
  globalThis.keep.push(p, a);
}
parentPort.postMessage('ready');
\`;
(async () => {
  for (let i = 0; i < 4; i++) {
    const w = new Worker(code, { eval: true });
    await new Promise((r) => w.once('message', r));
    await w.terminate();
  }
  // A worker that exits by itself after closing its poller.
  const w = new Worker(\`
const n = require(\${JSON.stringify(ADDON)});
const [a, b] = n.socketPair('stream', true, true);
const p = new n.Poller(b, () => { p.close(); });
p.start(true, false);
n.sendMsg(a, Buffer.from('x'));
\`, { eval: true });
  const code2 = await new Promise((r) => w.once('exit', r));
  console.log('ok ' + code2);
})();
`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('ok 0');
  });

  it('worker threads can be terminated with open, empty and closed seccomp hubs (the hub closes its fds at teardown)', () => {
    const r = node(`
const { Worker } = require('node:worker_threads');
const n = require(${JSON.stringify(ADDON)});
const code = \`
const n = require(\${JSON.stringify(ADDON)});
const { parentPort } = require('node:worker_threads');
const bounds = { path: 4096, arg: 4096, total: 65536, argc: 64 };
globalThis.keep = [];
for (let i = 0; i < 3; i++) {
  const h = new n.SeccompHub(bounds, () => {});
  const [a, b] = n.socketPair('stream', true, true);
  if (i > 0) h.add(b); else n.closeFd(b);
  if (i === 2) h.close();
  n.closeFd(a);
  globalThis.keep.push(h);
}
parentPort.postMessage('ready');
\`;
(async () => {
  // The first worker opens fds of Node's own that stay: counted after one.
  const w0 = new Worker('', { eval: true });
  await new Promise((r) => w0.once('exit', r));
  const before = n.countOpenFds();
  for (let i = 0; i < 4; i++) {
    const w = new Worker(code, { eval: true });
    await new Promise((r) => w.once('message', r));
    await w.terminate();
  }
  console.log('ok ' + (n.countOpenFds() - before));
})();
`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('ok 0');
  });

  it('an exception in a poller callback is an ordinary uncaught exception', () => {
    const r = node(`
const n = require(ADDON);
const [a, b] = n.socketPair('stream', true, true);
const p = new n.Poller(b, () => { throw new Error('thrown from poller callback'); });
p.start(true, false);
n.sendMsg(a, Buffer.from('x'));
`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('thrown from poller callback');
  });

  it('an unref()ed armed poller does not keep the process alive', () => {
    const r = node(`
const n = require(ADDON);
const [a, b] = n.socketPair('stream', true, true);
const p = new n.Poller(b, () => {});
p.start(true, false);
p.unref();
setTimeout(() => console.log('done'), 10);
`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('done');
  });
});
