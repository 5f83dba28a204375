import { Command, Option } from 'commander';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { createApprover, type Approver, type SandboxFreezer } from '../../policy/approval/index.js';
import { networkRulesNotice, resolveRulesFiles } from '../../policy/rules/discover.js';
import type { RulesStore } from '../../policy/rules/store.js';
import { createDecisionPipeline } from '../../policy/decision-pipeline.js';
import type { HookEngine } from '../../hooks/engine.js';
import { anyHooksFile } from '../../hooks/discovery.js';
import { hooksObserver } from '../../hooks/server-observer.js';
import type { EscalationPolicy } from '../../policy/types.js';
import type { AuditLogger } from '../../server/audit-log.js';
import { boostServerPriority, EscalationServer } from '../../server/escalation-server.js';
import { launchShellDirect } from '../../server/run-shell.js';
import { bwrapLaunch, bwrapUsable, type SandboxedLaunch } from '../../sandbox/bwrap.js';
import { SessionContainment } from '../../sandbox/cgroup.js';
import { parseAssignment, parseInherit, shellEnvironment, shellEnvNotice, type ShellEnvInherit } from '../../sandbox/shell-env.js';
import { ensurePatchedBash, PATCHED_BASH_ENV_VAR } from '../../shell/patched-bash.js';
import { directExecsEnabled, probeExecFilter, type DirectExecsMode } from '../../sandbox/exec-filter.js';
import { defaultWrapperPath } from '../../paths.js';
import { CliError, collect, EXIT_DENIED, EXIT_TOOL_FAILURE } from '../errors.js';
import { openAuditOutput, LOG_LEVELS, type LogLevel } from '../audit-output.js';
import { shellInvocation } from '../command-line.js';
import { addPolicyOptions, discoverHooks, type PolicyFlags } from '../policy-options.js';
import { checkedShell } from '../shell-check.js';
import { explicitPathWarnings } from '../../policy/boundary-warnings.js';
import { configExecutingWarnings } from '../../policy/config-executing.js';
import { describeExposure, sandboxExposure, sandboxWritableRoots } from '../../policy/sandbox-roots.js';

export interface RunOptions extends PolicyFlags {
  shell?: string;
  /** Hidden: let --shell be an unpatched bash (bash's test-suite runner compares against stock bash). */
  unpatchedShell?: boolean;
  command?: string;
  logFile?: string;
  logLevel?: LogLevel;
  quiet?: boolean;
  logFileOptional?: boolean;
  sandbox?: 'bwrap' | 'none';
  network: boolean;
  envAllow: string[];
  envDeny: string[];
  shellEnv?: string;
  shellEnvExclude: string[];
  shellEnvSet: string[];
  priorityBoost: boolean;
  gitSafe: boolean;
  directExecs?: DirectExecsMode;
  fastPath: boolean;
}

export function registerRunCommand(program: Command): void {
  const cmd = program
    .command('run')
    .summary('run a bash script, or one command, with every exec decided by the escalation server')
    .description(
      'Start an escalation server, run the patched bash under it with this terminal\'s stdio, and exit with the script\'s status.\n' +
        'Every execve the shell makes goes through codex-execve-wrapper and is decided Run (in place), Escalate (run by the server) or Deny (exit 126).\n\n' +
        '  -- SCRIPT                 one word: bash -c SCRIPT\n' +
        '  -- CMD ARGS...            several words: exactly this command, via the shell\n' +
        '  -c SCRIPT [NAME ARGS...]  bash -c SCRIPT NAME ARGS... ($0 $1 ...)',
    )
    .usage('[options] -- SCRIPT | CMD ARGS... | -c SCRIPT [NAME ARGS...]')
    .argument('[words...]', 'SCRIPT (one word), or CMD ARGS..., or with -c the positional parameters NAME ARGS...')
    .option('-c, --command <script>', 'the bash script; the words after it are its $0 $1 ... (like bash -c)')
    // Everything after the first word belongs to the command: `run -- ls -la` keeps its -la.
    .passThroughOptions();
  addPolicyOptions(cmd, {
    cwd: 'working directory for the script (default: current directory)',
    approval: 'who answers "prompt": deny (headless), tty (ask on the terminal), command:CMD (request JSON on stdin)',
    rules: 'codex execpolicy .rules file, or a directory of *.rules files (repeatable; loaded in order and merged, a directory\'s files sorted by name; reloaded on change or SIGHUP, except a file the sandbox can write: read once)',
  });
  cmd
    .option('--shell <path>', 'patched bash to use (default: the cached build, built on first use); an unpatched bash is refused')
    // For comparisons only (scripts/bash-suite.ts runs stock bash in the same sandbox): its execs are not decided.
    .addOption(new Option('--unpatched-shell', 'accept an unpatched --shell (its execs are NOT decided)').hideHelp())
    .option('--log-file <file>', 'append audit JSON lines to this file (created now: an unwritable file is an error before anything runs); "-" for stdout (default: stderr)')
    .option('--log-file-optional', 'if --log-file cannot be written, warn and send the audit to stderr instead of refusing to run')
    .addOption(new Option('--log-level <level>', 'audit lines at this level and above').choices([...LOG_LEVELS]))
    .option('-q, --quiet', 'no audit lines on stderr/stdout, only warnings and errors (a --log-file still gets every line)')
    .addOption(new Option('--sandbox <kind>', 'sandbox for the shell and everything it Runs (default: bwrap when it works here, else none with a warning)').choices(['bwrap', 'none']))
    .addOption(
      new Option('--direct-execs <mode>', 'decide the execs programs make themselves (env, xargs, find -exec, python, make...) through seccomp user notification: auto (inside bwrap, or as root), on, off')
        .choices(['auto', 'on', 'off'])
        .default('auto'),
    )
    .option('--network', 'keep network access inside the sandbox (default: none; escalated commands always have it)', false)
    .option('--env-allow <name>', 'let this variable (or NAME* prefix) of the sandbox reach escalated commands; by default only locale, terminal and TZ variables do (repeatable)', collect, [])
    .option('--env-deny <name>', 'drop this variable (or NAME* prefix) from escalated commands\' environment, even a default one (repeatable)', collect, [])
    .option('--no-git-safe', 'let an escalated git use the workspace\'s config and hooks (default: neutralised: core.fsmonitor, hooks, aliases, pager, drivers, helpers; see docs/security.md)')
    .option('--shell-env <inherit=MODE>', 'environment of the sandboxed shell: inherit=default (all but secret-looking names), all, core (PATH, HOME, USER... and locale) or none')
    .option('--shell-env-exclude <pattern>', 'also withhold these variables from the sandboxed shell (glob, case-insensitive; repeatable)', collect, [])
    .option('--shell-env-set <NAME=VALUE>', 'set this variable in the sandboxed shell (repeatable)', collect, [])
    .option('--no-fast-path', 'decide every exec in JavaScript; by default a request identical to one already answered Run (same bytes, same program, same rules; not with hooks) is answered by a native thread')
    .option('--no-priority-boost', 'do not raise the server\'s scheduling priority above the workload (it is raised when permitted: root or CAP_SYS_NICE)')
    .addHelpText(
      'after',
      `
How each exec is decided:
  --deny prefix, forbidden rule, hook deny         Deny: exit 126, reason on stderr
  rewrite by a hook                                re-checked against the rules, then run exactly as rewritten
  prompt rule, hook "ask", --default prompt        asked of the approver (--approval); approved -> Escalate
  --escalate prefix, allow rule                    Escalate: the server runs it outside the sandbox
  nothing matched                                  --default (run: exec in place, inside the sandbox)

Prefixes match the basename of the resolved program followed by its arguments: --deny "rm -rf" denies /bin/rm -rf x;
an absolute first word (--escalate /opt/tool/bin/x) matches that one file. A program the sandbox can write (under
the working directory, --writable, /tmp, /dev/shm) is never escalated by a name: only a path names it.
Symlinks are followed (/bin/sh is dash, /usr/bin/python3 is python3.11 on Debian 12); --deny also matches the
name the command was invoked by, --escalate only the real program.

Every decision is one JSON line in the audit log (--log-file, else stderr): time, session, request, program,
file, argv, workdir, action, reason, latency_us, matched rules (with file:line), hook runs, env_dropped.
On a terminal the audit is one short line per decision (time, action, command, reason); --log-level debug adds the
session's lifecycle lines, --quiet leaves only warnings and errors.

Environments:
  the sandboxed shell   this environment minus names matching *KEY* *SECRET* *TOKEN* *PASSWORD* *PASSWD*
                        *PASSPHRASE* *CREDENTIAL* *COOKIE* and the word AUTH (--shell-env, --shell-env-exclude,
                        --shell-env-set); a one-line notice on stderr says how many were withheld
  escalated commands    PATH HOME USER LOGNAME SHELL TMPDIR XDG_* from this environment; from the sandbox only
                        LANG LANGUAGE LC_* TERM COLORTERM NO_COLOR FORCE_COLOR CLICOLOR* TZ COLUMNS LINES (values
                        checked) and --env-allow names

Answering on the terminal (--approval tty): while the question is up the whole session is frozen and keys typed
before it (or within 200 ms of it) are discarded.
  a   allow this exec once                 s   allow exactly this command (program file, argv, workdir) for the session
  d   deny                                 p   allow every command starting with the prompt rule's matched words for the
                                               session (offered only when a prompt rule matched; the question names it)

Escalated commands and everything they start end when the session ends (cgroup v2, else signals).

Exit status: the script's own; 125 when codex-escalate itself failed (usage, configuration, cannot start) and nothing
ran; 126 when a run-level hook refused the whole script (see docs/cli.md).

Examples:
  codex-escalate run -- 'echo hello | tr a-z A-Z'
  codex-escalate run -- ls -la /etc/hostname
  codex-escalate run -c 'echo "$1 $2"' name a b
  codex-escalate run --rules examples/rules/default.rules --approval tty -- ./build.sh
  codex-escalate run --deny "git push" --hooks .codex/hooks.json --log-file audit.jsonl -- ./ci.sh`,
    )
    .action(async (words: string[], opts: RunOptions) => {
      process.exitCode = await runCommand(words, opts);
    });
}

export async function runCommand(words: readonly string[], opts: RunOptions): Promise<number> {
  // Everything that can be checked is checked before anything starts: a usage error runs nothing (exit 125).
  const invocation = shellInvocation(words, opts.command);
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new CliError(`--cwd ${cwd}: not a directory`);
  const wrapperPath = defaultWrapperPath();
  if (!existsSync(wrapperPath)) throw new CliError(`wrapper not found at ${wrapperPath}: run "npm install" (or "make -C wrapper") in the package, or "codex-escalate doctor"`);
  // Overlaps the rest of the start-up (its answer is awaited when the server is built).
  if (opts.directExecs !== 'off') void probeExecFilter(wrapperPath);
  const override = process.env[PATCHED_BASH_ENV_VAR];
  if (opts.unpatchedShell && !opts.shell) throw new CliError('--unpatched-shell goes with --shell PATH');
  if (opts.unpatchedShell) process.stderr.write('codex-escalate: warning: --unpatched-shell: the execs of this shell are not decided (for comparisons only)\n');
  const shell = opts.shell
    ? checkedShell(opts.shell, '--shell', opts.unpatchedShell === true)
    : override
      ? checkedShell(override, PATCHED_BASH_ENV_VAR)
      : await ensurePatchedBash({ onProgress: (line) => process.stderr.write(`[build-bash] ${line}\n`) });

  const shellEnv = sandboxShellEnv(opts);
  const { logger, toFile } = openAuditOutput(opts);
  const boundary = sessionBoundary(cwd, opts.writable, opts.gitSafe !== false, toFile ? logger : undefined);
  const hooks = await loadHookEngine(opts.hooks, discoverHooks(opts) ? cwd : undefined, logger, boundary);
  const sessionId = randomUUID();
  if (hooks) {
    // The whole-script PreToolUse: its deny stops the run before anything executes.
    const refused = await runLevelRefusal(hooks, { sessionId, cwd, script: invocation.script, args: invocation.scriptArgs }, logger);
    if (refused !== undefined) {
      process.stderr.write(`codex-escalate: denied: ${refused}\n`);
      await hooks.close();
      logger.flush();
      return EXIT_DENIED;
    }
  }
  // One session: its containment (cgroup v2, else signals) holds the shell and every escalated command,
  // is frozen while the tty approver asks, and is emptied when the session ends.
  let containment: SessionContainment | undefined;
  const contain = (sessionId: string): SessionContainment => {
    if (containment) return containment;
    containment = SessionContainment.create(sessionId, { forceFallback: process.env['CODEX_ESCALATE_CGROUP'] === 'off' });
    return containment;
  };
  const { policy, close } = await buildPolicy({ ...opts, rulesDiscoverFrom: opts.discoverRules !== false ? cwd : undefined }, logger, hooks, () => cwd, boundary, () => containment?.freezer);
  const launch = sandboxLaunch(opts, shell, [...invocation.args], cwd, [path.dirname(shell), path.dirname(wrapperPath)]);
  const directExecs = await directExecsEnabled(opts.directExecs ?? 'auto', launch.command !== shell, wrapperPath, (m) => boundary.warn('direct_execs_off', m));
  let server: EscalationServer;
  try {
    server = new EscalationServer({
      policy,
      logger,
      wrapperPath,
      shellPath: shell,
      escalationEnv: { allow: opts.envAllow, deny: opts.envDeny },
      ...(boundary.gitSafe ? { gitSafe: { roots: boundary.roots } } : {}),
      containment: contain,
      directExecs,
      fastPath: opts.fastPath !== false,
      directDenialEcho: (line) => process.stderr.write(`${line}\n`),
      ...(hooks ? { observer: hooksObserver(hooks, logger) } : {}),
    });
  } catch (err) {
    launch.release();
    close();
    await hooks?.close();
    throw new CliError((err as Error).message, EXIT_TOOL_FAILURE, { cause: err });
  }
  let running;
  try {
    // The shell is born in the session's sandbox cgroup (or joins it before it runs anything).
    const c = contain(sessionId);
    running = await launchShellDirect(server, { sessionId, command: launch.command, args: launch.args, cwd, env: shellEnv, extraFds: launch.extraFds, cgroup: c.sandboxSpawnFds() });
    c.shellStarted(running.pid);
  } finally {
    // The child has its own copies once spawned.
    launch.release();
  }
  // Now that the shell has been spawned at the normal priority, let decisions go ahead of the workload.
  if (opts.priorityBoost) boostServerPriority(server);
  // The terminal sends Ctrl-C to the shell too; we wait for the shell to react instead of dying first.
  const forward = (sig: NodeJS.Signals) => () => {
    if (sig !== 'SIGINT') running.kill(sig);
  };
  // With --rules, SIGHUP means "reload the rules" (the store listens for it); a real terminal hangup reaches the shell through its process group anyway.
  const relayed: NodeJS.Signals[] = opts.rules.length > 0 ? ['SIGINT', 'SIGTERM', 'SIGQUIT'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  const handlers = relayed.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    const result = await running.done;
    return result.exitCode;
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
    await server.close();
    close();
    await hooks?.close();
    logger.flush();
  }
}

/** What this session's sandbox can write, and how to say so at start (trust-boundary warnings). */
export interface SessionBoundary {
  /** Real paths the sandbox can write: cwd, --writable, /tmp, /dev/shm (the same with --sandbox none: the workspace is untrusted either way). */
  readonly roots: readonly string[];
  /** Escalated git runs in safe mode (--git-safe, the default). */
  readonly gitSafe: boolean;
  /** One stderr line (and an audit line when logging to a file). */
  readonly warn: (event: string, message: string) => void;
}

export function sessionBoundary(cwd: string, writable: readonly string[], gitSafe: boolean, fileLogger?: AuditLogger): SessionBoundary {
  return {
    roots: sandboxWritableRoots(cwd, writable),
    gitSafe,
    warn: (event, message) => {
      process.stderr.write(`codex-escalate: warning: ${message}\n`);
      fileLogger?.warn({ event, warning: message }, message);
    },
  };
}

/** Rules files the sandbox can change (inside a writable root, through a symlink there, or hard-linked): read once, never reloaded. */
function readOnceRules(files: readonly string[], boundary: SessionBoundary | undefined): string[] {
  if (boundary === undefined) return [];
  const once: string[] = [];
  for (const f of files) {
    const e = sandboxExposure(f, boundary.roots);
    if (e === undefined) continue;
    once.push(f);
    boundary.warn('rules_read_once', `rules file ${describeExposure(f, e)}: read once now, never reloaded this session`);
  }
  return once;
}

/** Say at start what the policy escalates across the boundary on purpose. */
function policyBoundaryWarnings(rules: Pick<RulesStore, 'current'> | undefined, escalate: readonly string[], boundary: SessionBoundary | undefined): void {
  if (boundary === undefined) return;
  for (const w of explicitPathWarnings(rules?.current, escalate, boundary.roots)) boundary.warn('escalation_path_writable', w);
  for (const w of configExecutingWarnings(rules?.current, escalate, { gitSafe: boundary.gitSafe })) boundary.warn('escalates_config_executing', w);
}

/** The sandboxed shell's environment (--shell-env*), with the one-line notice of what was withheld. */
function sandboxShellEnv(opts: RunOptions): Record<string, string> {
  let inherit: ShellEnvInherit = 'default';
  const set: Record<string, string> = {};
  try {
    if (opts.shellEnv !== undefined) inherit = parseInherit(opts.shellEnv);
    for (const spec of opts.shellEnvSet) {
      const [name, value] = parseAssignment(spec);
      set[name] = value;
    }
  } catch (err) {
    throw new CliError((err as Error).message, EXIT_TOOL_FAILURE, { cause: err });
  }
  const { env, dropped } = shellEnvironment(process.env, { inherit, exclude: opts.shellEnvExclude, set });
  const notice = shellEnvNotice(dropped, inherit);
  if (notice) process.stderr.write(notice);
  return env;
}

/** The shell's launch command: bwrap around it, or the shell alone. */
function sandboxLaunch(opts: RunOptions, shell: string, args: string[], cwd: string, readable: string[]): SandboxedLaunch {
  const none: SandboxedLaunch = { command: shell, args, extraFds: [], release: () => {} };
  if (opts.sandbox === 'none') return none;
  const usable = bwrapUsable();
  if (!usable.ok) {
    if (opts.sandbox === 'bwrap') throw new CliError(`--sandbox bwrap: ${usable.reason}`);
    process.stderr.write(`codex-escalate: warning: no sandbox (${usable.reason}); Run'd commands are not confined. Use --sandbox none to silence this.\n`);
    return none;
  }
  return bwrapLaunch(shell, args, { cwd, writable: opts.writable, network: opts.network, readable, shell });
}

/** Run the once-per-run PreToolUse hooks (if any want the whole script); a reason = the run is refused. */
async function runLevelRefusal(hooks: HookEngine, info: { sessionId: string; cwd: string; script: string; args: readonly string[] }, logger: AuditLogger): Promise<string | undefined> {
  if (!hooks.hasRunLevel()) {
    hooks.setScript(info.sessionId, info.script);
    return undefined;
  }
  let v;
  try {
    v = await hooks.preRun(info);
  } catch (err) {
    return `run-level hooks failed: ${(err as Error).message}`; // fail closed
  }
  logger.info({ event: 'run_hooks', session_id: info.sessionId, decision: v.decision, hooks: v.runs }, `run-level PreToolUse: ${v.decision}`);
  return v.decision === 'deny' ? `blocked by hook: ${v.reason ?? 'no reason given'}` : undefined;
}

/** Load hooks from --hooks files and discovery; null when none are configured (no per-exec cost then). */
export async function loadHookEngine(
  files: readonly string[],
  discoverFrom: string | undefined,
  logger: AuditLogger,
  boundary?: SessionBoundary,
): Promise<HookEngine | undefined> {
  // No hooks file named or found: nothing to load (the config module and its zod schemas stay unloaded).
  if (!anyHooksFile(files, discoverFrom)) return undefined;
  let config;
  try {
    const { loadHooksSync } = await import('../../hooks/config.js');
    config = loadHooksSync({ files, ...(discoverFrom !== undefined ? { discoverFrom } : {}), ...(boundary ? { roots: boundary.roots } : {}) });
  } catch (err) {
    throw new CliError(`hooks did not load: ${(err as Error).message}`, EXIT_TOOL_FAILURE, { cause: err });
  }
  for (const w of config.warnings) {
    // Not only in the audit: a hook that will not run is something the user must see.
    logger.warn({ event: 'hooks_warning', warning: w }, w);
    process.stderr.write(`codex-escalate: warning: ${w}\n`);
  }
  // Untrusted discovered files, a distrusted store, hook scripts the sandbox can edit: one clear line each.
  for (const w of config.trustWarnings ?? []) {
    if (boundary) boundary.warn('hooks_trust', w);
    else process.stderr.write(`codex-escalate: warning: ${w}\n`);
  }
  if (config.hooks.length === 0) return undefined;
  logger.info({ event: 'hooks_loaded', files: config.files.map((f) => f.path), hooks: config.hooks.length }, 'hooks loaded');
  // Loaded only when hooks are configured: the engine and its runners (execa) are not on the path of a plain run.
  const { HookEngine } = await import('../../hooks/engine.js');
  return new HookEngine(config, { logger, notice: (line) => process.stderr.write(`codex-escalate: ${line}\n`) });
}

/** What explain and replay change in the pipeline run builds: who answers prompts, and no rules watching. */
export interface BuildPolicyExtras {
  /** Stands in for the --approval approver (explain and replay record the question instead of asking it). */
  readonly approver?: Approver;
  /** Watch the rules files and reload on SIGHUP (default true; a one-shot command does not). */
  readonly watchRules?: boolean;
}

/** Prefixes, rules (reloaded on change/SIGHUP), hooks and approver, composed into one decision pipeline. */
export async function buildPolicy(
  opts: Pick<RunOptions, 'deny' | 'escalate' | 'rules' | 'default' | 'approval'> & {
    /** Also load the rules Codex discovers from this working directory ($CODEX_HOME/rules, ./.codex/rules). */
    readonly rulesDiscoverFrom?: string | undefined;
  },
  logger: AuditLogger,
  hooks?: HookEngine,
  sessionCwd?: (sessionId: string) => string | undefined,
  boundary?: SessionBoundary,
  sessionFreezer?: (sessionId: string) => SandboxFreezer | undefined,
  extra: BuildPolicyExtras = {},
): Promise<{ policy: EscalationPolicy; close: () => void; rules?: RulesStore }> {
  let approver;
  try {
    // The mode is validated even when explain/replay put their own recorder in its place.
    approver = createApprover(opts.approval);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT_TOOL_FAILURE, { cause: err });
  }
  if (extra.approver) approver = extra.approver;
  let store: RulesStore | undefined;
  let set;
  try {
    set = resolveRulesFiles({
      explicit: opts.rules,
      discoverFrom: opts.rulesDiscoverFrom,
      roots: boundary?.roots ?? sandboxWritableRoots(opts.rulesDiscoverFrom ?? process.cwd()),
    });
  } catch (err) {
    throw new CliError(`rules did not load: ${(err as Error).message}`, EXIT_TOOL_FAILURE, { cause: err });
  }
  const warn = (event: string, message: string): void => {
    if (boundary) boundary.warn(event, message);
    else process.stderr.write(`codex-escalate: warning: ${message}\n`);
  };
  for (const w of set.warnings) warn('rules_discovery', w);
  if (set.discovered.length > 0) logger.info({ event: 'rules_discovered', files: set.discovered }, `rules discovered: ${set.discovered.join(', ')}`);
  if (set.files.length > 0) {
    const files = [...set.files];
    const readOnce = readOnceRules(files, boundary);
    try {
      // The rules engine (lexer, parser, evaluator) is loaded only when there is a rules file to read.
      const { RulesStore } = await import('../../policy/rules/store.js');
      store = await RulesStore.open(files, {
        readOnce,
        watch: extra.watchRules !== false,
        reloadOnSighup: extra.watchRules !== false,
        onReload: (r) => {
          if (r.ok) {
            logger.info({ event: 'rules_reload', files, rules: r.rules.size }, 'rules reloaded');
            // Reloaded rules cross the boundary as knowingly as the first ones: the same warnings.
            policyBoundaryWarnings({ current: r.rules }, opts.escalate, boundary);
          } else logger.error({ event: 'rules_reload_failed', error: r.error.message }, 'rules did not load; the previous rules stay in force');
        },
      });
    } catch (err) {
      throw new CliError(`rules did not load: ${(err as Error).message}`, EXIT_TOOL_FAILURE, { cause: err });
    }
    const net = networkRulesNotice(store.current);
    if (net !== undefined) warn('network_rules_ignored', net);
  }
  policyBoundaryWarnings(store, opts.escalate, boundary);
  try {
    const policy = createDecisionPipeline({
      ...(boundary ? { sandboxWritableRoots: boundary.roots } : {}),
      ...(store ? { rules: store } : {}),
      denyPrefixes: opts.deny,
      escalatePrefixes: opts.escalate,
      defaultAction: opts.default,
      approver,
      ...(hooks ? { hooks } : {}),
      ...(sessionCwd ? { sessionCwd } : {}),
      ...(sessionFreezer ? { sessionFreezer } : {}),
    });
    return { policy, close: () => store?.close(), ...(store ? { rules: store } : {}) };
  } catch (err) {
    store?.close();
    throw new CliError(`bad --deny/--escalate pattern: ${(err as Error).message}`, EXIT_TOOL_FAILURE, { cause: err });
  }
}
