import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: two levels above this file both in src/ (tsx) and dist/ (compiled). */
export const packageRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Default location of the built C wrapper. CODEX_EXECVE_WRAPPER overrides it. */
export function defaultWrapperPath(): string {
  return process.env.CODEX_EXECVE_WRAPPER || path.join(packageRoot, 'wrapper', 'codex-execve-wrapper');
}

/** Codex's user config directory: $CODEX_HOME, else ~/.codex (where Codex keeps hooks and rules/). */
export function codexHomeDir(env: NodeJS.ProcessEnv = process.env): string {
  const ch = env.CODEX_HOME;
  return ch !== undefined && ch !== '' ? path.resolve(ch) : path.join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.codex');
}
