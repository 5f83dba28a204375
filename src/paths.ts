import { accessSync, existsSync, constants as fsConstants } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root: the nearest directory above this module holding package.json and binding.gyp. This module
 * runs from src/ (tsx), dist/ (compiled) and dist/cli-bundle/ (the CLI's bundle), so no fixed depth fits all.
 */
export const packageRoot: string = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'binding.gyp')) && existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}

/** Default location of the built C wrapper. CODEX_EXECVE_WRAPPER overrides it. */
export function defaultWrapperPath(): string {
  return process.env.CODEX_EXECVE_WRAPPER || path.join(packageRoot, 'wrapper', 'codex-execve-wrapper');
}

/** Codex's user config directory: $CODEX_HOME, else ~/.codex (where Codex keeps hooks and rules/). */
export function codexHomeDir(env: NodeJS.ProcessEnv = process.env): string {
  const ch = env.CODEX_HOME;
  return ch !== undefined && ch !== '' ? path.resolve(ch) : path.join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.codex');
}

/** The first executable `name` (no slash) on this process's PATH, as execvp would find it; undefined if none. */
export function searchPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}
