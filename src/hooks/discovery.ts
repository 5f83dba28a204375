import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { HooksFileInfo } from './types.js';

/**
 * Where hooks files are discovered. Kept out of config.ts, whose schemas
 * import zod: a run with no hooks file anywhere loads neither.
 */

export interface Candidate {
  readonly path: string;
  readonly origin: HooksFileInfo['origin'];
}

export function userConfigDir(env: NodeJS.ProcessEnv): string {
  const ch = env.CODEX_HOME;
  return ch !== undefined && ch !== '' ? path.resolve(ch) : path.join(env.HOME ?? homedir(), '.codex');
}

/** The files discovery would consider, in load order (existing or not). */
export function discoveryCandidates(dir: string, env: NodeJS.ProcessEnv): Candidate[] {
  const user = userConfigDir(env);
  const proj = path.join(path.resolve(dir), '.codex');
  return [
    { path: path.join(user, 'hooks.json'), origin: 'user' },
    { path: path.join(user, 'hooks.toml'), origin: 'user' },
    { path: path.join(proj, 'hooks.json'), origin: 'project' },
    { path: path.join(proj, 'hooks.toml'), origin: 'project' },
  ];
}

/** Whether loadHooks would read any file: an explicit one, or a discovered one that exists (trusted or not). */
export function anyHooksFile(files: readonly string[], discoverFrom: string | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  return files.length > 0 || (discoverFrom !== undefined && discoveryCandidates(discoverFrom, env).some((c) => existsSync(c.path)));
}
