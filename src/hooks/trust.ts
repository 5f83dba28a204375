/**
 * Explicit trust for discovered hooks files, the way Claude Code and Codex ask
 * before running a project's hooks. A discovered file (project `.codex/` or
 * the user's `$CODEX_HOME`) runs only if its exact content (sha256) was
 * trusted with `codex-escalate hooks trust FILE`: an earlier session could
 * have planted or edited either (a session whose cwd was $HOME can write
 * ~/.codex). The store lives outside every sandbox-writable path
 * (`$XDG_STATE_HOME/codex-shell-escalation/trusted-hooks.json`, default
 * `~/.local/state/...`); a store that lies inside one of this session's
 * writable roots is not believed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { parse as shellParse } from 'shell-quote';
import { z } from 'zod';
import { describeExposure, sandboxExposure } from '../policy/sandbox-roots.js';
import type { HookDefinition, McpServerConfig } from './types.js';

export type TrustState = 'trusted' | 'changed' | 'untrusted';

const storeSchema = z.strictObject({
  version: z.literal(1),
  files: z.record(z.string(), z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/), trustedAt: z.string() })),
});
type StoreData = z.infer<typeof storeSchema>;

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Where the trust store lives for this environment. */
export function trustStorePath(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' && path.isAbsolute(env.XDG_STATE_HOME)
    ? env.XDG_STATE_HOME
    : path.join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.local', 'state');
  return path.join(state, 'codex-shell-escalation', 'trusted-hooks.json');
}

/** The command a user runs to trust `file` (quoted for a POSIX shell). */
export function trustCommand(file: string): string {
  return `codex-escalate hooks trust '${file.replace(/'/g, `'\\''`)}'`;
}

export class TrustStore {
  readonly path: string;
  /** Why the store is not believed (it lies where the sandbox can write), if so. */
  readonly distrusted: string | undefined;
  /** A store that could not be read or parsed (treated as empty). */
  readonly problem: string | undefined;
  readonly #data: StoreData;

  private constructor(file: string, data: StoreData, distrusted: string | undefined, problem: string | undefined) {
    this.path = file;
    this.#data = data;
    this.distrusted = distrusted;
    this.problem = problem;
  }

  /**
   * Reads the store. Missing: empty. Unparseable: empty, with `problem` set
   * (nothing is trusted by accident). Under one of `roots`: not believed.
   */
  static open(file: string, roots: readonly string[] = []): TrustStore {
    const exposure = roots.length > 0 ? sandboxExposure(file, roots) : undefined;
    const distrusted = exposure === undefined ? undefined : `the hooks trust store ${describeExposure(file, exposure)}, so it is not believed: discovered hooks files are not run`;
    let data: StoreData = { version: 1, files: {} };
    let problem: string | undefined;
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problem = `cannot read the hooks trust store ${file}: ${(err as Error).message}`;
    }
    if (text !== undefined) {
      try {
        const parsed = storeSchema.safeParse(JSON.parse(text));
        if (parsed.success) data = parsed.data;
        else problem = `the hooks trust store ${file} is malformed (${parsed.error.issues[0]?.message ?? 'invalid'}); nothing in it is trusted`;
      } catch (err) {
        problem = `the hooks trust store ${file} is not JSON (${(err as Error).message}); nothing in it is trusted`;
      }
    }
    return new TrustStore(file, data, distrusted, problem);
  }

  /**
   * Trust state of a file's content, by the absolute path it is found at (not
   * its real path: a symlink the sandbox plants at .codex/hooks.json, pointing
   * to a file trusted elsewhere, is a different, untrusted file).
   */
  state(file: string, digest: string): TrustState {
    if (this.distrusted !== undefined) return 'untrusted';
    const e = Object.hasOwn(this.#data.files, file) ? this.#data.files[file] : undefined;
    if (e === undefined) return 'untrusted';
    return e.sha256 === digest ? 'trusted' : 'changed';
  }

  entries(): { path: string; sha256: string; trustedAt: string }[] {
    return Object.entries(this.#data.files).map(([p, e]) => ({ path: p, ...e }));
  }

  trust(file: string, digest: string): void {
    this.#data.files[file] = { sha256: digest, trustedAt: new Date().toISOString() };
  }

  untrust(file: string): boolean {
    if (!Object.hasOwn(this.#data.files, file)) return false;
    delete this.#data.files[file];
    return true;
  }

  /** Writes atomically (temp file + rename), private to the user. */
  save(): void {
    mkdirSync(path.dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.#data, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}

/** The absolute path (the trust key), real path and digest of a hooks file as it is now (what `hooks trust` records). */
export function fingerprint(file: string): { path: string; realPath: string; sha256: string } {
  const realPath = realpathSync(file);
  return { path: path.resolve(file), realPath, sha256: sha256(readFileSync(realPath)) };
}

/**
 * Files a hook (or MCP server) runs that the sandbox can change: a trusted
 * hooks file still runs whatever script it names, and a script in the
 * workspace is the sandbox's to edit. Warned at start; not refused (the user
 * named it). Words that look like paths are checked: absolute, ./ or ../, or
 * an existing file relative to the hook's working directory.
 * `$CLAUDE_PROJECT_DIR` / `$CODEX_CWD` expand to the session's directory.
 */
export function hookPathExposures(h: HookDefinition | McpServerConfig, sessionDir: string, roots: readonly string[]): string[] {
  let words: string[];
  let cwd: string;
  let what: string;
  if ('type' in h) {
    if (h.type !== 'command') return [];
    cwd = h.cwd ?? sessionDir;
    what = `hook ${h.entry} in ${h.source}`;
    if (typeof h.command === 'string') {
      const vars: Record<string, string> = { CLAUDE_PROJECT_DIR: sessionDir, CODEX_CWD: sessionDir };
      words = shellParse(h.command, (name) => vars[name] ?? `\${${name}}`).filter((w): w is string => typeof w === 'string');
    } else {
      words = [...h.command];
    }
  } else {
    cwd = h.cwd ?? sessionDir;
    what = `MCP server "${h.name}" in ${h.source}`;
    words = [h.command, ...h.args];
  }
  const out: string[] = [];
  for (const [i, w] of words.entries()) {
    if (w === '' || w.includes('${')) continue;
    const pathLike = w.startsWith('/') || w.startsWith('./') || w.startsWith('../');
    const candidate = path.resolve(cwd, w);
    // A bare first word is a PATH lookup, not a file here.
    if (!pathLike && (i === 0 || !existsSync(candidate))) continue;
    const e = sandboxExposure(candidate, roots, { hardlinks: false });
    if (e !== undefined) out.push(`${what} runs ${describeExposure(candidate, e)}: the sandbox can edit what this hook runs outside it`);
  }
  return out;
}
