#!/usr/bin/env node
// Launcher. The CLI is compiled to dist/ at install time (npm's prepare); on a
// fresh checkout that was never installed, set it up first so that
// `node bin/codex-escalate.js run -- SCRIPT` works as the one command.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'dist', 'cli', 'main.js');
const checkout = existsSync(path.join(root, 'src', 'cli', 'main.ts'));
if (checkout && (!existsSync(entry) || !existsSync(path.join(root, 'node_modules')))) {
  process.stderr.write('codex-escalate: first run in this checkout: npm install (native addon, wrapper, CLI)...\n');
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0 || !existsSync(entry)) {
    process.stderr.write('codex-escalate: npm install failed; see the output above (needs a C compiler, make and python3)\n');
    process.exit(2);
  }
}

const { main } = await import(entry);
main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`codex-escalate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
