/**
 * The environment that crosses out of the sandbox with an escalated command.
 * The sandbox is untrusted, and almost any variable can make a trusted
 * program run code or write files of the caller's choosing (loader preloads,
 * interpreter startup files, HOME/XDG_CONFIG_HOME pointing at a hostile
 * .gitconfig, GIT_TRACE=/any/path, PATH leading `#!/usr/bin/env bash` to the
 * sandbox's own bash). So this is an allow list: a few presentation variables
 * (locale, terminal, time zone) whose values are checked, plus names the user
 * allows explicitly. The identity and search variables (PATH, HOME, USER,
 * LOGNAME, SHELL, TMPDIR, XDG_*) come from the server's own environment,
 * never from the request. Every request variable not passed on is audited.
 */

/** Variables always taken from the server's environment (the request's values are dropped). */
export const SERVER_ENV_NAMES: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR'];
/** Name pattern taken from the server's environment as well. */
export const SERVER_ENV_PATTERN = /^XDG_/;

// Locale names never need a slash; with one, glibc loads locale files from that path.
const LOCALE_VALUE = /^[A-Za-z0-9_.@:+=-]*$/;
const TERM_VALUE = /^[A-Za-z0-9_.+-]*$/;
const NUMBER_VALUE = /^[0-9]{1,6}$/;
const FLAG_VALUE = /^[ -~]{0,64}$/;

/** TZ may name a zone file: only a relative name (under the default TZDIR) or a file in the system zone directory. */
function safeTz(value: string): boolean {
  if (value.length > 256 || value.includes('..') || !/^[ -~]*$/.test(value)) return false;
  const file = value.startsWith(':') ? value.slice(1) : value;
  if (!file.startsWith('/')) return true;
  return file === '/etc/localtime' || file.startsWith('/usr/share/zoneinfo/');
}

/** Name → value check of the default allow list (a value that fails is dropped and audited). */
export const DEFAULT_ALLOWED: ReadonlyMap<string, (value: string) => boolean> = new Map([
  ['LANG', (v: string) => LOCALE_VALUE.test(v) && !v.includes('..')],
  ['LANGUAGE', (v: string) => LOCALE_VALUE.test(v) && !v.includes('..')],
  ['TERM', (v: string) => TERM_VALUE.test(v) && !v.includes('..')],
  ['COLORTERM', (v: string) => FLAG_VALUE.test(v)],
  ['NO_COLOR', (v: string) => FLAG_VALUE.test(v)],
  ['FORCE_COLOR', (v: string) => FLAG_VALUE.test(v)],
  ['CLICOLOR', (v: string) => FLAG_VALUE.test(v)],
  ['CLICOLOR_FORCE', (v: string) => FLAG_VALUE.test(v)],
  ['TZ', safeTz],
  ['COLUMNS', (v: string) => NUMBER_VALUE.test(v)],
  ['LINES', (v: string) => NUMBER_VALUE.test(v)],
]);
/** LC_ALL, LC_CTYPE, LC_MESSAGES...: same value check as LANG. */
const LOCALE_CATEGORY = /^LC_[A-Z]+$/;

export interface EnvFilterOptions {
  /** Extra names (exact, or `PREFIX*`) the request may pass to escalated commands, values unchecked. Not the server-provided names. */
  readonly allow?: readonly string[];
  /** Names (exact, or `PREFIX*`) never passed, even from the default allow list or the server's environment. */
  readonly deny?: readonly string[];
  /** No default allow list: only `allow` names cross (the server-provided names still come from the server). */
  readonly noDefaults?: boolean;
  /** Where PATH, HOME, USER, LOGNAME, SHELL, TMPDIR and XDG_* come from (default: this process's environment when the filter is created). */
  readonly serverEnv?: Readonly<Record<string, string | undefined>>;
}

export interface FilteredEnv {
  readonly env: Record<string, string>;
  /** Request variables not passed on (not allowed, failed their value check, or replaced by the server's), sorted. */
  readonly dropped: string[];
}

/** True for names the server always provides itself. */
export function isServerProvided(name: string): boolean {
  return SERVER_ENV_NAMES.includes(name) || SERVER_ENV_PATTERN.test(name);
}

function nameMatcher(list: readonly string[]): (name: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const n of list) {
    if (n.endsWith('*')) prefixes.push(n.slice(0, -1));
    else exact.add(n);
  }
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

/** Reject names that cannot be variables, and allow entries that would let the request pick a server-provided one. */
function checkNames(kind: string, list: readonly string[]): void {
  for (const n of list) {
    const bare = n.endsWith('*') ? n.slice(0, -1) : n;
    if ((bare === '' && !n.endsWith('*')) || bare.includes('=') || bare.includes('*') || bare.includes('\0')) {
      throw new Error(`${kind} ${JSON.stringify(n)}: not a variable name (NAME or PREFIX*)`);
    }
  }
  if (kind !== '--env-allow') return;
  // A PREFIX* entry never reaches them either (the filter checks them first); an exact name is a mistake worth saying.
  for (const n of list) {
    if (!n.endsWith('*') && isServerProvided(n)) {
      throw new Error(`${kind} ${n}: PATH, HOME, USER, LOGNAME, SHELL, TMPDIR and XDG_* always come from the server's environment, never from the sandbox`);
    }
  }
}

export function createEnvFilter(opts: EnvFilterOptions = {}): (env: Readonly<Record<string, string>>) => FilteredEnv {
  checkNames('--env-allow', opts.allow ?? []);
  checkNames('--env-deny', opts.deny ?? []);
  const allowed = nameMatcher(opts.allow ?? []);
  const denied = nameMatcher(opts.deny ?? []);
  const defaults = !opts.noDefaults;
  const source = opts.serverEnv ?? process.env;
  // A snapshot: the server's own environment as it started is what escalated commands get.
  const fromServer: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value !== undefined && isServerProvided(name) && !denied(name)) fromServer[name] = value;
  }
  return (env) => {
    const out: Record<string, string> = { ...fromServer };
    const dropped: string[] = [];
    for (const [name, value] of Object.entries(env)) {
      let keep = false;
      if (!isServerProvided(name) && !denied(name)) {
        if (allowed(name)) keep = true;
        else if (defaults) {
          const check = DEFAULT_ALLOWED.get(name) ?? (LOCALE_CATEGORY.test(name) ? DEFAULT_ALLOWED.get('LANG') : undefined);
          keep = check !== undefined && check(value);
        }
      }
      if (keep) out[name] = value;
      else dropped.push(name);
    }
    return { env: out, dropped: dropped.sort() };
  };
}
