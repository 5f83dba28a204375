/**
 * The environment that crosses out of the sandbox with an escalated command.
 * The sandbox is untrusted, and many variables make a trusted program run
 * code of the caller's choosing (loader preloads, interpreter startup files,
 * git hooks and helpers, exported bash functions). Those are dropped by
 * default; the lists are configurable, and what was dropped is audited.
 */

/** Exact names dropped by default. */
export const DEFAULT_DENIED_NAMES: readonly string[] = [
  'BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PROMPT_COMMAND', 'IFS', 'CDPATH', 'GLOBIGNORE',
  'PYTHONSTARTUP', 'PYTHONPATH', 'PYTHONHOME', 'PYTHONINSPECT', 'PYTHONUSERBASE', 'PYTHONSAFEPATH',
  'NODE_OPTIONS', 'NODE_PATH', 'NODE_REPL_EXTERNAL_MODULE',
  'PERL5OPT', 'PERL5LIB', 'PERLLIB', 'PERL5DB',
  'RUBYOPT', 'RUBYLIB',
  'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'CLASSPATH',
  'LUA_INIT', 'LUA_PATH', 'LUA_CPATH', 'TCLLIBPATH', 'R_PROFILE', 'R_PROFILE_USER',
  'GCONV_PATH', 'HOSTALIASES', 'LOCALDOMAIN', 'RES_OPTIONS', 'NLSPATH', 'MALLOC_CHECK_', 'MALLOC_TRACE',
  'LESSOPEN', 'LESSCLOSE', 'PAGER', 'MANPAGER', 'EDITOR', 'VISUAL', 'BROWSER',
  'SSH_ASKPASS', 'SUDO_ASKPASS', 'GIT_SSH', 'GIT_SSH_COMMAND', 'GIT_ASKPASS', 'GIT_EDITOR', 'GIT_PAGER',
  'GIT_EXTERNAL_DIFF', 'GIT_PROXY_COMMAND', 'GIT_EXEC_PATH', 'GIT_TEMPLATE_DIR', 'GIT_CONFIG', 'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_SYSTEM', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_PARAMETERS', 'GIT_DIR', 'GIT_WORK_TREE', 'GIT_SEQUENCE_EDITOR',
];

/** Name patterns dropped by default. */
export const DEFAULT_DENIED_PATTERNS: readonly RegExp[] = [
  /^LD_/, // LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT...
  /^DYLD_/,
  /^BASH_FUNC_/, // exported functions shadow commands in any bash the command runs
  /^GIT_CONFIG_(KEY|VALUE)_\d+$/,
];

export interface EnvFilterOptions {
  /** Names always kept, even if a default rule would drop them (e.g. PAGER). */
  readonly allow?: readonly string[];
  /** Extra names (exact, or `PREFIX*`) to drop. */
  readonly deny?: readonly string[];
  /** Disable the default lists entirely (not recommended). */
  readonly noDefaults?: boolean;
}

export interface FilteredEnv {
  readonly env: Record<string, string>;
  /** Names removed, sorted. */
  readonly dropped: string[];
}

export function createEnvFilter(opts: EnvFilterOptions = {}): (env: Readonly<Record<string, string>>) => FilteredEnv {
  const allow = new Set(opts.allow ?? []);
  const exact = new Set([...(opts.noDefaults ? [] : DEFAULT_DENIED_NAMES)]);
  const patterns = [...(opts.noDefaults ? [] : DEFAULT_DENIED_PATTERNS)];
  for (const d of opts.deny ?? []) {
    if (d.endsWith('*')) patterns.push(new RegExp(`^${d.slice(0, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    else exact.add(d);
  }
  return (env) => {
    const out: Record<string, string> = {};
    const dropped: string[] = [];
    for (const [name, value] of Object.entries(env)) {
      if (!allow.has(name) && (exact.has(name) || patterns.some((p) => p.test(name)))) dropped.push(name);
      else out[name] = value;
    }
    return { env: out, dropped: dropped.sort() };
  };
}
