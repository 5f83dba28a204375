import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installHint, MISSING_TOOLS_DIR_ENV, TOOLS, type Tool } from './helpers/tool-list.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function step(what: string, cmd: string, args: string[]): void {
  process.stderr.write(`[setup] ${what}\n`);
  execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

/**
 * `npm test` on a fresh checkout must work on its own: build whatever is
 * missing (addon, wrapper, compiled CLI, patched bash) before any suite runs.
 */
export default function setup(): () => void {
  // Test processes (forks of this one) record the system tools they missed here: one summary line at the end.
  const missingDir = mkdtempSync(path.join(os.tmpdir(), 'cse-missing-tools-'));
  process.env[MISSING_TOOLS_DIR_ENV] = missingDir;

  // The test build treats warnings as errors (binding.gyp, wrapper/Makefile); a user's install does not.
  process.env['CODEX_ESCALATE_WERROR'] ??= '1';

  const addon = path.join(root, 'build/Release/codex_native.node');
  const sources = readdirSync(path.join(root, 'native')).map((f) => path.join(root, 'native', f));
  const stale = !existsSync(addon) || sources.some((f) => statSync(f).mtimeMs > statSync(addon).mtimeMs);
  if (stale) step('building the native addon', 'bash', ['scripts/build-native.sh']);
  step('building the wrapper', 'make', ['-s', '-C', 'wrapper']);
  step('compiling the CLI', 'npx', ['tsc', '-p', 'tsconfig.build.json']);
  // The launcher runs the bundle (bin/codex-escalate.js): the tests run what users run.
  step('bundling the CLI', process.execPath, ['scripts/bundle-cli.mjs']);
  // build-bash.sh is idempotent and returns at once when the cached build exists.
  step('ensuring the patched bash', 'bash', ['scripts/build-bash.sh']);
  return () => {
    const missing = readdirSync(missingDir).filter((t): t is Tool => t in TOOLS).sort();
    if (missing.length > 0) {
      const each = missing.map((t) => `${t} (${readFileSync(path.join(missingDir, t), 'utf8').trim()})`).join('; ');
      const what = process.env['CI'] ? 'CI is set, so the tests that need them FAILED' : 'SKIPPED the tests that need them (with CI set they fail)';
      process.stderr.write(`\n!!! missing system tools: ${each}: ${what}. Install: ${installHint(missing)}\n\n`);
    }
    rmSync(missingDir, { recursive: true, force: true });
  };
}
