#!/usr/bin/env node
// Launcher. The CLI is compiled to dist/ (npm's prepare in a checkout, prepack
// for the published package, which ships dist/). On a fresh git checkout that
// was never installed, set it up first so that `node bin/codex-escalate.js run
// -- SCRIPT` works as the one command; an installed package never does this.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'dist', 'cli', 'main.js');
// A git checkout (.git is a directory, or a file in a worktree) with its sources, not anything under node_modules.
const checkout =
  existsSync(path.join(root, '.git')) && existsSync(path.join(root, 'src', 'cli', 'main.ts')) && !root.split(path.sep).includes('node_modules');
if (checkout && (!existsSync(entry) || !existsSync(path.join(root, 'node_modules')))) {
  process.stderr.write('codex-escalate: first run in this checkout: npm install (native addon, wrapper, CLI)...\n');
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0 || !existsSync(entry)) {
    process.stderr.write('codex-escalate: npm install failed; see the output above (needs a C compiler, make and python3)\n');
    process.exit(2);
  }
}

if (!existsSync(entry)) {
  process.stderr.write(`codex-escalate: ${entry} is missing: this package was not built (reinstall it, or run "npm run build" in a checkout)\n`);
  process.exit(2);
}

// Node 22+ keeps V8's compiled code of our modules between runs (start-up is paid on every call an agent wraps);
// Node 20 has no module.enableCompileCache, and loses nothing. The cache sits beside the patched bash build
// (the same root as src/shell/patched-bash.ts): code from it runs outside the sandbox, so it is kept exactly as
// protected as the shell binary we already run from there, never in a shared or sandbox-writable /tmp.
if (typeof module.enableCompileCache === 'function') {
  const env = process.env;
  const cacheRoot = env.CODEX_ESCALATE_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'codex-shell-escalation');
  try {
    module.enableCompileCache(path.join(cacheRoot, 'node-compile-cache'));
  } catch {
    // A cache that cannot be set up only costs start-up time.
  }
}

// The bundle of the same build (scripts/bundle-cli.mjs, written after tsc): one file per lazily loaded part
// instead of ~70 modules, ~35 ms less start-up on Node 20. Used only when it is not older than the compiled
// CLI, so a `tsc` run without the bundler never leaves the launcher on stale code.
const bundled = path.join(root, 'dist', 'cli-bundle', 'main.js');
let chosen = entry;
try {
  // CODEX_ESCALATE_NO_BUNDLE=1: the separate modules (stack traces name dist/ files; the bench's before/after).
  if (process.env.CODEX_ESCALATE_NO_BUNDLE !== '1' && statSync(bundled).mtimeMs >= statSync(entry).mtimeMs) chosen = bundled;
} catch {
  // No bundle (a build without esbuild): the compiled modules are the same code.
}

const { main } = await import(chosen);
main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`codex-escalate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
