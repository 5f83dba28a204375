// Bundle the compiled CLI (dist/cli/main.js and everything of ours it imports) into dist/cli-bundle/.
// Why: on Node 20 (no module compile cache) the ES module loader pays per file — resolve, read, link —
// and `run` imports ~70 of our modules; one chunk per lazily loaded part costs ~35 ms less start-up
// (docs/performance.md). Packages stay external (node_modules, as installed); dynamic imports stay
// lazy (code splitting), so a plain run still loads no hooks, rules engine or zod.
// meta.json records which of our modules each chunk holds (test/integration/startup.test.ts reads it).
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'cli-bundle');
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/cli/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunk-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const chunks = {};
for (const [file, out] of Object.entries(result.metafile.outputs)) chunks[path.basename(file)] = Object.keys(out.inputs).sort();
writeFileSync(path.join(outdir, 'meta.json'), `${JSON.stringify({ chunks }, null, 1)}\n`);
