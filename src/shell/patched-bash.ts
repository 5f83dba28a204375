/**
 * Locate or build the patched bash (bash 5.2.15 + patches/bash-exec-wrapper.patch).
 * The cache path rule mirrors scripts/build-bash.sh exactly, so a binary built
 * by either is found by both.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PATCHED_BASH_VERSION = '5.2.15';
/** Env override: use this bash instead of the cached build. */
export const PATCHED_BASH_ENV_VAR = 'CODEX_ESCALATE_BASH';

export interface EnsurePatchedBashOptions {
  /** Called with each progress line the build prints (stderr of build-bash.sh). */
  onProgress?: (line: string) => void;
  /** Rebuild even if a working binary is cached. */
  force?: boolean;
}

export class PatchedBashBuildError extends Error {
  constructor(
    message: string,
    /** Last lines the build printed, for diagnosis. */
    readonly outputTail: string,
  ) {
    super(message);
    this.name = 'PatchedBashBuildError';
  }
}

/** Package root: src/shell/ (or dist/src/shell/) → walk up to the dir holding package.json + patches/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      statSync(join(dir, 'patches', 'bash-exec-wrapper.patch'));
      statSync(join(dir, 'package.json'));
      return dir;
    } catch {
      const parent = dirname(dir);
      if (parent === dir) {
        throw new Error(
          `cannot find the codex-shell-escalation package root (patches/bash-exec-wrapper.patch) above ${fileURLToPath(import.meta.url)}`,
        );
      }
      dir = parent;
    }
  }
}

export function patchFilePath(): string {
  return join(packageRoot(), 'patches', 'bash-exec-wrapper.patch');
}

export function buildScriptPath(): string {
  return join(packageRoot(), 'scripts', 'build-bash.sh');
}

function cacheRoot(): string {
  const env = process.env;
  if (env.CODEX_ESCALATE_CACHE_DIR) return env.CODEX_ESCALATE_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(xdg, 'codex-shell-escalation');
}

/** Where build-bash.sh installs the patched bash for the current patch file. */
export function patchedBashCachePath(): string {
  const patchId = createHash('sha256').update(readFileSync(patchFilePath())).digest('hex').slice(0, 12);
  return join(cacheRoot(), `bash-${PATCHED_BASH_VERSION}-${patchId}`, 'bash');
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** $CODEX_ESCALATE_BASH if set, else the cached build if it is executable, else null. */
export function findPatchedBash(): string | null {
  const override = process.env[PATCHED_BASH_ENV_VAR];
  if (override) return isExecutableFile(override) ? resolve(override) : null;
  let cached: string;
  try {
    cached = patchedBashCachePath();
  } catch {
    return null;
  }
  return isExecutableFile(cached) ? cached : null;
}

/**
 * Return a usable patched bash, building it with scripts/build-bash.sh when
 * needed (about a minute the first time). An explicit $CODEX_ESCALATE_BASH
 * is returned as-is (an error if it is not executable); it is never built.
 */
export async function ensurePatchedBash(opts: EnsurePatchedBashOptions = {}): Promise<string> {
  const override = process.env[PATCHED_BASH_ENV_VAR];
  if (override) {
    if (!isExecutableFile(override)) {
      throw new PatchedBashBuildError(`${PATCHED_BASH_ENV_VAR}=${override} is not an executable file`, '');
    }
    return resolve(override);
  }

  // Start-up: the cached build is used as found (build-bash.sh, which also re-tests it, costs ~0.3 s per call);
  // the script runs only to build it, or when forced.
  if (!opts.force) {
    const cached = findPatchedBash();
    if (cached !== null) return cached;
  }

  const script = buildScriptPath();
  const args = [script, ...(opts.force ? ['--force'] : [])];
  // execa only on this (rare) path: it is a large import.
  const { execa } = await import('execa');
  const tail: string[] = [];
  const remember = (line: string): void => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
  };

  const child = execa('bash', args, { reject: false, stdin: 'ignore', all: false, buffer: { stdout: true, stderr: false } });
  // Stream progress as it happens rather than after the build.
  let pending = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      remember(line);
      opts.onProgress?.(line);
    }
  });
  const result = await child;
  if (pending) {
    remember(pending);
    opts.onProgress?.(pending);
  }

  const outputTail = tail.join('\n');
  if (result.failed) {
    const why = result.exitCode !== undefined ? `exit code ${result.exitCode}` : (result.shortMessage ?? 'unknown failure');
    const lastError = [...tail].reverse().find((l) => l.includes('error:')) ?? tail[tail.length - 1] ?? '';
    throw new PatchedBashBuildError(`building the patched bash failed (${why}): ${lastError}`, outputTail);
  }
  const stdout = typeof result.stdout === 'string' ? result.stdout : '';
  const path = stdout.trim().split('\n').pop()?.trim() ?? '';
  if (!path || !isExecutableFile(path)) {
    throw new PatchedBashBuildError(`build-bash.sh succeeded but printed no executable path (got ${JSON.stringify(path)})`, outputTail);
  }
  return path;
}
