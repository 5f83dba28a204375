/**
 * Git safe mode for escalated git (on by default in `run`, `--no-git-safe`).
 *
 * Git executes configuration from the repository it runs in: core.fsmonitor,
 * hooks, aliases, the pager, filter/diff/merge drivers, credential helpers...
 * In the workspace the sandbox wrote all of that, so an escalated `git status`
 * would be code execution outside the sandbox. No environment filter can
 * stop it; git's own switches can. Applied to the escalation plan:
 *   - always: core.fsmonitor=false, core.hooksPath=/dev/null (the hooks
 *     directory is workspace content whatever the config says),
 *     core.pager=cat, protocol.ext.allow=never;
 *   - every command-running key (see DANGEROUS) that comes from a config file
 *     the sandbox may have written (repo-local and worktree config, and any
 *     file under a sandbox-writable root, e.g. ~/.gitconfig when the cwd is
 *     $HOME) is overridden with a value that runs nothing. The keys are
 *     enumerated with `git config --list`, which reads config and runs nothing;
 *   - the overrides go in GIT_CONFIG_COUNT/KEY/VALUE (they reach every git
 *     subprocess); HOME is the server's (so "global" config is the user's
 *     own); PATH loses relative entries and those under writable roots (git
 *     runs git-<cmd>, ssh, helpers from PATH);
 *   - `-c`, `--config-env`, `--exec-path=`, `--git-dir`, `--work-tree`,
 *     `-p` and any unknown global option in argv refuse the escalation: they
 *     would come after, and beat, our overrides.
 * The transformation is pure; reading the config is injected.
 */
import { spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import path from 'node:path';
import { realpathOrLexical, rootContaining } from '../policy/sandbox-roots.js';

export interface GitConfigEntry {
  /** system, global, local, worktree, command */
  readonly scope: string;
  /** `file:PATH` (relative to the git dir's parent for local files), `command line:`, `blob:`... */
  readonly origin: string;
  /** As git prints it: section and variable lowercased, subsection as written. */
  readonly key: string;
  readonly value: string | undefined;
}

/** Always set, whatever the config says. */
export const ALWAYS: readonly (readonly [string, string])[] = [
  ['core.fsmonitor', 'false'],
  ['core.hooksPath', '/dev/null'],
  ['core.pager', 'cat'],
  ['protocol.ext.allow', 'never'],
];

/**
 * Keys that make git run a command, and the value that runs none. An empty
 * command makes git fail that operation ("cannot run") rather than run
 * anything: fail closed where git has no neutral value.
 */
export const DANGEROUS: readonly (readonly [RegExp, string])[] = [
  [/^core\.(fsmonitor)$/, 'false'],
  [/^core\.hookspath$/, '/dev/null'],
  [/^core\.pager$/, 'cat'],
  [/^pager\..+$/, 'false'],
  [/^(core|sequence)\.editor$/, 'false'],
  [/^core\.sshcommand$/, 'ssh'],
  [/^core\.askpass$/, 'false'],
  [/^core\.gitproxy$/, 'none'],
  [/^core\.alternaterefscommand$/, ''],
  [/^credential\.(.+\.)?helper$/, ''],
  [/^diff\.external$/, ''],
  [/^diff\..+\.textconv$/, 'cat'],
  [/^diff\..+\.command$/, ''],
  [/^merge\..+\.driver$/, ''],
  [/^filter\..+\.(clean|smudge|process)$/, ''],
  [/^alias\..+$/, ''],
  [/^gpg\.(.+\.)?program$/, 'false'],
  [/^gpg\.ssh\.defaultkeycommand$/, ''],
  [/^remote\..+\.uploadpack$/, 'git-upload-pack'],
  [/^remote\..+\.receivepack$/, 'git-receive-pack'],
  [/^submodule\..+\.update$/, 'checkout'],
  [/^(mergetool|difftool)\..+\.(cmd|path)$/, 'false'],
  [/^interactive\.difffilter$/, 'cat'],
  [/^trailer\..+\.(command|cmd)$/, ''],
  [/^web\.browser$/, 'false'],
  [/^(browser|man)\..+\.(cmd|path)$/, 'false'],
  [/^sendemail\.(smtpserver|sendmailcmd|tocmd|cccmd|headercmd)$/, 'false'],
  [/^uploadpack\.packobjectshook$/, ''],
];

/** Global options that cannot change which config or code git uses. `-C` takes a value. */
const HARMLESS_GLOBAL = new Set([
  '--no-pager', '-P', '--no-replace-objects', '--literal-pathspecs', '--glob-pathspecs', '--noglob-pathspecs', '--icase-pathspecs',
  '--no-optional-locks', '--no-advice', '--bare', '--version', '-v', '--help', '-h', '--exec-path', '--html-path', '--man-path', '--info-path',
]);

/** The escalated program is git itself (matched by the resolved file's name: the by-name gate keeps sandbox-made files out). */
export function isGit(program: string): boolean {
  return path.posix.basename(program) === 'git';
}

/** Leading global options of a git argv: the `-C` values to replay, or why the escalation is refused. */
export function gitGlobalOptions(argv: readonly string[]): { ok: true; replay: string[] } | { ok: false; reason: string } {
  const replay: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) break;
    if (a === '-C') {
      if (i + 1 >= argv.length) break;
      replay.push('-C', argv[++i]!);
      continue;
    }
    if (HARMLESS_GLOBAL.has(a)) continue;
    return { ok: false, reason: `git safe mode: the global option ${JSON.stringify(a.split('=')[0])} is not allowed on an escalated git (it can override the safe configuration)` };
  }
  return { ok: true, replay };
}

/** Parses `git config --list -z --show-scope --show-origin`: scope NUL origin NUL key [LF value] NUL. */
export function parseGitConfigList(out: Buffer): GitConfigEntry[] {
  const fields = out.toString('utf8').split('\0');
  const entries: GitConfigEntry[] = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const kv = fields[i + 2]!;
    const nl = kv.indexOf('\n');
    entries.push({ scope: fields[i]!, origin: fields[i + 1]!, key: nl < 0 ? kv : kv.slice(0, nl), value: nl < 0 ? undefined : kv.slice(nl + 1) });
  }
  return entries;
}

/** Could the sandbox have written this entry? Only system and global files out of its reach are the user's. */
export function untrustedEntry(e: GitConfigEntry, roots: readonly string[], workdir: string): boolean {
  if (e.scope !== 'system' && e.scope !== 'global') return true;
  if (!e.origin.startsWith('file:')) return true;
  const file = path.resolve(workdir, e.origin.slice('file:'.length));
  return rootContaining(realpathOrLexical(file), roots) !== undefined;
}

function neutralFor(key: string): string | undefined {
  // Section and variable names are case-insensitive; a subsection is not, and is kept as written.
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  const norm = first === last ? key.toLowerCase() : `${key.slice(0, first).toLowerCase()}${key.slice(first, last)}${key.slice(last).toLowerCase()}`;
  for (const [re, v] of DANGEROUS) if (re.test(norm)) return v;
  return undefined;
}

/** The config overrides for one escalated git: ALWAYS plus a neutral value for every command-running key the sandbox may have set. */
export function gitSafeOverrides(entries: readonly GitConfigEntry[], roots: readonly string[], workdir: string): [string, string][] {
  const out = new Map<string, string>(ALWAYS.map(([k, v]) => [k.toLowerCase(), v]));
  const keys: [string, string][] = ALWAYS.map(([k, v]) => [k, v]);
  for (const e of entries) {
    const neutral = neutralFor(e.key);
    if (neutral === undefined || !untrustedEntry(e, roots, workdir)) continue;
    if (out.has(e.key.toLowerCase())) continue;
    out.set(e.key.toLowerCase(), neutral);
    keys.push([e.key, neutral]);
  }
  return keys;
}

/** PATH without relative entries and without directories the sandbox can write. */
export function safePath(value: string | undefined, roots: readonly string[]): string {
  const dirs = (value ?? '/usr/local/bin:/usr/bin:/bin').split(':');
  return dirs.filter((d) => d.startsWith('/') && rootContaining(realpathOrLexical(d), roots) === undefined).join(':');
}

export interface GitSafeInput {
  readonly program: string;
  /** The path to run for `git config` (the held file's /proc/self/fd path), default `program`. */
  readonly exec?: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly workdir: string;
}

export interface GitSafeOptions {
  readonly roots: readonly string[];
  /** `git config --list` for this escalation (replaying its -C options): entries, or why it failed (default: readGitConfig). */
  readonly readConfig?: (input: GitSafeInput, replay: readonly string[], env: Readonly<Record<string, string>>) => GitConfigEntry[] | string;
  /** The server's own HOME (default os.homedir()). */
  readonly home?: string;
}

/** The safe environment for an escalated git, or why it is refused. Not git: unchanged. */
export function applyGitSafeMode(input: GitSafeInput, opts: GitSafeOptions): { ok: true; env: Record<string, string> } | { ok: false; reason: string } {
  if (!isGit(input.program)) return { ok: true, env: { ...input.env } };
  const globals = gitGlobalOptions(input.argv);
  if (!globals.ok) return globals;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.env)) {
    // Config smuggled through the environment (an --env-allow) would sit beside ours.
    if (k === 'GIT_CONFIG_PARAMETERS' || k.startsWith('GIT_CONFIG') || k === 'XDG_CONFIG_HOME') continue;
    env[k] = v;
  }
  env.HOME = opts.home ?? homedir();
  const xdg = process.env.XDG_CONFIG_HOME;
  if (xdg !== undefined && xdg !== '') env.XDG_CONFIG_HOME = xdg;
  env.PATH = safePath(input.env.PATH, opts.roots);
  const entries = (opts.readConfig ?? readGitConfig)(input, globals.replay, env);
  if (typeof entries === 'string') return { ok: false, reason: `git safe mode: cannot read the repository's configuration: ${entries}` };
  const overrides = gitSafeOverrides(entries, opts.roots, input.workdir);
  env.GIT_CONFIG_COUNT = String(overrides.length);
  overrides.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return { ok: true, env };
}

/**
 * Runs `git config --list` with the very file we will escalate (through its
 * O_PATH fd), in the escalation's workdir and safe env. Bounded: a FIFO as a
 * config file cannot hang the server for more than `timeoutMs`.
 */
export function readGitConfig(input: GitSafeInput, replay: readonly string[], env: Readonly<Record<string, string>>, timeoutMs = 3000): GitConfigEntry[] | string {
  {
    const r = spawnSync(input.exec ?? input.program, [...replay, 'config', '--list', '-z', '--show-scope', '--show-origin', '--includes'], {
      argv0: 'git',
      cwd: input.workdir,
      env,
      timeout: timeoutMs,
      maxBuffer: 4 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? 'git config timed out' : r.error.message;
    // No repository: only system/global config, listed with status 0. Anything else (a broken config file): refuse.
    if (r.status !== 0) return `git config exited ${r.status ?? r.signal}: ${r.stderr.toString('utf8').trim().split('\n')[0] ?? ''}`;
    return parseGitConfigList(r.stdout);
  }
}
