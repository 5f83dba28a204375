/**
 * The environment the sandboxed shell starts with, after Codex's
 * `shell_environment_policy`: whatever the shell can read, a prompt-injected
 * script can read and send anywhere it is able to, so credentials the caller
 * happens to have exported (API keys, cloud secrets, tokens) stay out by
 * default. Order: inherit → default excludes (only with the default
 * inheritance) → --shell-env-exclude → --shell-env-set. The session's
 * protocol variables are added after this, by launchShell.
 */

/** `default`: everything but secret-looking names; `all`: everything; `core`: the basics below; `none`: nothing. */
export type ShellEnvInherit = 'default' | 'all' | 'core' | 'none';

/** What `core` keeps (plus locale and terminal variables). */
export const CORE_NAMES: readonly string[] = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'USER', 'USERNAME', 'TMPDIR', 'TEMP', 'TMP'];
const CORE_PRESENTATION = /^(LANG|LANGUAGE|LC_[A-Z]+|TERM|COLORTERM|NO_COLOR|TZ|COLUMNS|LINES)$/;

/**
 * Names dropped by default (case-insensitive globs). Codex's three, plus the
 * other usual spellings of a credential. `AUTH` counts only as a whole
 * `_`-separated word, so GIT_AUTHOR_NAME stays while SSH_AUTH_SOCK (an agent
 * that signs for the caller) and NPM_CONFIG__AUTH go.
 */
export const DEFAULT_SECRET_PATTERNS: readonly string[] = [
  '*KEY*',
  '*SECRET*',
  '*TOKEN*',
  '*PASSWORD*',
  '*PASSWD*',
  '*PASSPHRASE*',
  '*CREDENTIAL*',
  '*COOKIE*',
  'AUTH',
  'AUTH_*',
  '*_AUTH',
  '*_AUTH_*',
];

export interface ShellEnvPolicy {
  readonly inherit?: ShellEnvInherit;
  /** Further names to drop (globs with `*` and `?`, case-insensitive). */
  readonly exclude?: readonly string[];
  /** Set last (after every exclude). */
  readonly set?: Readonly<Record<string, string>>;
}

export interface ShellEnv {
  readonly env: Record<string, string>;
  /** Names of the base environment left out (sorted): for the start-up notice. */
  readonly dropped: string[];
}

/** A case-insensitive glob (`*`, `?`) as an anchored regex. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** `NAME=VALUE` → [name, value]; throws with a clear message on anything else. */
export function parseAssignment(spec: string): [string, string] {
  const eq = spec.indexOf('=');
  const name = eq < 0 ? '' : spec.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`--shell-env-set ${JSON.stringify(spec)}: expected NAME=VALUE with NAME made of letters, digits and _`);
  if (spec.includes('\0')) throw new Error('--shell-env-set: a value cannot contain a NUL byte');
  return [name, spec.slice(eq + 1)];
}

/** `inherit=all|core|none|default` → the mode. */
export function parseInherit(spec: string): ShellEnvInherit {
  const m = /^inherit=(all|core|none|default)$/.exec(spec);
  if (!m) throw new Error(`--shell-env ${JSON.stringify(spec)}: expected inherit=all, inherit=core, inherit=none or inherit=default`);
  return m[1] as ShellEnvInherit;
}

export function shellEnvironment(base: Readonly<Record<string, string | undefined>>, policy: ShellEnvPolicy = {}): ShellEnv {
  const inherit = policy.inherit ?? 'default';
  const secret = DEFAULT_SECRET_PATTERNS.map(globToRegExp);
  const excludes = (policy.exclude ?? []).map(globToRegExp);
  const env: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined) continue;
    let keep: boolean;
    switch (inherit) {
      case 'all':
        keep = true;
        break;
      case 'none':
        keep = false;
        break;
      case 'core':
        keep = CORE_NAMES.includes(name) || CORE_PRESENTATION.test(name);
        break;
      case 'default':
        keep = !secret.some((p) => p.test(name));
        break;
    }
    if (keep && excludes.some((p) => p.test(name))) keep = false;
    if (keep) env[name] = value;
    else dropped.push(name);
  }
  for (const [name, value] of Object.entries(policy.set ?? {})) env[name] = value;
  return { env, dropped: dropped.filter((n) => !(n in env)).sort() };
}

/** The one-line start-up notice (names only, never values), or null when nothing was dropped. */
export function shellEnvNotice(dropped: readonly string[], inherit: ShellEnvInherit): string | null {
  if (dropped.length === 0) return null;
  const shown = dropped.slice(0, 8).join(', ') + (dropped.length > 8 ? `, … (+${dropped.length - 8})` : '');
  const hint = inherit === 'default' ? '; --shell-env inherit=all keeps them' : '';
  const n = dropped.length;
  return `codex-escalate: ${n} environment variable${n === 1 ? '' : 's'} withheld from the sandboxed shell (${shown})${hint}\n`;
}
