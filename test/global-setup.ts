import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function step(what: string, cmd: string, args: string[]): void {
  process.stderr.write(`[setup] ${what}\n`);
  execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

/**
 * `npm test` on a fresh checkout must work on its own: build whatever is
 * missing (addon, wrapper, compiled CLI, patched bash) before any suite runs.
 */
export default function setup(): void {
  const addon = path.join(root, 'build/Release/codex_native.node');
  const sources = readdirSync(path.join(root, 'native')).map((f) => path.join(root, 'native', f));
  const stale = !existsSync(addon) || sources.some((f) => statSync(f).mtimeMs > statSync(addon).mtimeMs);
  if (stale) step('building the native addon', 'bash', ['scripts/build-native.sh']);
  step('building the wrapper', 'make', ['-s', '-C', 'wrapper']);
  step('compiling the CLI', 'npx', ['tsc', '-p', 'tsconfig.build.json']);
  // build-bash.sh is idempotent and returns at once when the cached build exists.
  step('ensuring the patched bash', 'bash', ['scripts/build-bash.sh']);
}
