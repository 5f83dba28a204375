/**
 * Which rules files a session loads: `--rules` arguments (a directory means
 * every `*.rules` in it) and the places Codex reads at startup,
 * `$CODEX_HOME/rules/` (default ~/.codex/rules) and the project's
 * `.codex/rules/`. Like Codex: non-recursive, regular files only (a symlink
 * is skipped), sorted by name, user layer before project layer.
 *
 * A discovered file the sandbox can write (a project's .codex/rules is always
 * under the working directory; ~/.codex is when the session runs in $HOME) is
 * never loaded implicitly: an earlier session could have planted it. Naming it
 * with --rules loads it (read once, as any rules file the sandbox can write).
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { codexHomeDir } from '../../paths.js';
import { describeExposure, sandboxExposure } from '../sandbox-roots.js';
import { RulesLoadError } from './errors.js';

/** The directory name Codex reads in each config layer, and the extension of its files. */
export const RULES_DIR_NAME = 'rules';
export const RULES_EXTENSION = 'rules';

export interface RulesFileSet {
  /** Absolute paths to load, in order: discovered (user, then project), then the --rules arguments. */
  readonly files: readonly string[];
  /** The discovered files among them. */
  readonly discovered: readonly string[];
  /** Discovered files not loaded: the sandbox can write them. */
  readonly untrusted: readonly string[];
  /** One line each: discovered files not loaded and why, symlinks skipped, directories without rules. */
  readonly warnings: readonly string[];
}

export interface ResolveRulesOptions {
  /** --rules arguments (files or directories), relative to process.cwd(). */
  readonly explicit: readonly string[];
  /** Discover the user's and this project's rules (the project is this directory); undefined: no discovery. */
  readonly discoverFrom?: string | undefined;
  /** For $CODEX_HOME / $HOME (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** The session's sandbox-writable roots (real paths). */
  readonly roots: readonly string[];
}

/** `x.rules` has the extension; `.rules` (a dotfile) does not, as with Rust's Path::extension. */
function hasRulesExtension(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && name.slice(dot + 1) === RULES_EXTENSION;
}

/** The `*.rules` regular files directly in `dir`, sorted bytewise; symlinks and subdirectories are skipped (Codex does the same). */
export function rulesFilesInDir(dir: string): { files: string[]; skippedSymlinks: string[] } {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new RulesLoadError(dir, { line: 1, column: 1 }, `cannot read rules directory: ${(err as Error).message}`, { cause: err });
  }
  const files: string[] = [];
  const skippedSymlinks: string[] = [];
  for (const e of entries) {
    if (!hasRulesExtension(e.name)) continue;
    if (e.isSymbolicLink()) skippedSymlinks.push(path.join(dir, e.name));
    else if (e.isFile()) files.push(e.name);
  }
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return { files: files.map((f) => path.join(dir, f)), skippedSymlinks };
}

/** The discovery directories in load order (lowest precedence first, as Codex layers them). */
export function rulesDiscoveryDirs(cwd: string, env: NodeJS.ProcessEnv = process.env): { dir: string; origin: 'user' | 'project' }[] {
  const user = path.join(codexHomeDir(env), RULES_DIR_NAME);
  const project = path.join(path.resolve(cwd), '.codex', RULES_DIR_NAME);
  return user === project ? [{ dir: user, origin: 'user' }] : [{ dir: user, origin: 'user' }, { dir: project, origin: 'project' }];
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** Expands --rules directories and adds the trusted discovered files. Throws RulesLoadError for an unreadable directory. */
export function resolveRulesFiles(opts: ResolveRulesOptions): RulesFileSet {
  const warnings: string[] = [];
  const explicit: string[] = [];
  for (const arg of opts.explicit) {
    const abs = path.resolve(arg);
    if (!isDirectory(abs)) {
      explicit.push(abs); // a file, or a missing path: reading it reports the error
      continue;
    }
    const { files, skippedSymlinks } = rulesFilesInDir(abs);
    for (const s of skippedSymlinks) warnings.push(`rules file ${s} is a symlink: skipped, as Codex skips it (name the target with --rules)`);
    if (files.length === 0) warnings.push(`--rules ${arg}: the directory has no *.${RULES_EXTENSION} files`);
    explicit.push(...files);
  }

  const discovered: string[] = [];
  const untrusted: string[] = [];
  if (opts.discoverFrom !== undefined) {
    const named = new Set(explicit.map(realOrSelf));
    for (const { dir } of rulesDiscoveryDirs(opts.discoverFrom, opts.env)) {
      if (!isDirectory(dir)) continue;
      let found;
      try {
        found = rulesFilesInDir(dir);
      } catch (err) {
        // An unreadable discovery directory loads nothing; say so rather than fail the run.
        warnings.push(`${(err as RulesLoadError).detail} (${dir}): its rules are not loaded`);
        continue;
      }
      for (const s of found.skippedSymlinks) warnings.push(`discovered rules file ${s} is a symlink: skipped, as Codex skips it`);
      for (const f of found.files) {
        if (named.has(realOrSelf(f))) continue; // also named with --rules: loaded once, as named
        const e = sandboxExposure(f, opts.roots);
        if (e !== undefined) {
          untrusted.push(f);
          warnings.push(
            `discovered rules file ${describeExposure(f, e)}: not loaded (rules the sandbox could have written are never trusted implicitly); to use it, name it: --rules ${f}`,
          );
          continue;
        }
        discovered.push(f);
      }
    }
  }
  return { files: [...discovered, ...explicit], discovered, untrusted, warnings };
}

/**
 * The one line `run` and `check` print when the rules declare network_rule(...):
 * upstream feeds them to Codex's network proxy; here nothing enforces them.
 */
export function networkRulesNotice(rules: { networkRules(): readonly { readonly origin: { readonly file: string; readonly line: number } }[] }): string | undefined {
  const n = rules.networkRules();
  if (n.length === 0) return undefined;
  const where = n.slice(0, 3).map((r) => `${r.origin.file}:${r.origin.line}`).join(', ') + (n.length > 3 ? `, and ${n.length - 3} more` : '');
  return `${n.length} network_rule(...) declaration${n.length === 1 ? '' : 's'} (${where}) do${n.length === 1 ? 'es' : ''} not apply to exec decisions: network rules are for Codex's network proxy and are not enforced here (the sandbox has no network unless --network)`;
}
