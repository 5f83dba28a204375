import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: two levels above this file both in src/ (tsx) and dist/ (compiled). */
export const packageRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Default location of the built C wrapper. CODEX_EXECVE_WRAPPER overrides it. */
export function defaultWrapperPath(): string {
  return process.env.CODEX_EXECVE_WRAPPER || path.join(packageRoot, 'wrapper', 'codex-execve-wrapper');
}
