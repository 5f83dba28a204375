/**
 * The one internal model that hooks.json (Codex / Claude Code) and hooks.toml
 * (seed 001) are both loaded into, plus what the engine hands back.
 */

/** Events this system produces (the seed's names). */
export const HOOK_EVENTS = ['session_start', 'session_end', 'exec.before', 'exec.after', 'error.occurred'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** Codex / Claude Code event names and ours, both ways. */
export const CLAUDE_EVENT_NAMES: Readonly<Record<HookEvent, string>> = {
  session_start: 'SessionStart',
  session_end: 'Stop',
  'exec.before': 'PreToolUse',
  'exec.after': 'PostToolUse',
  'error.occurred': 'ErrorOccurred',
};

export type HookPriority = 'high' | 'normal' | 'low';
export type HookMode = 'sync' | 'async';
export type HookScope = 'exec' | 'run' | 'both';

interface HookBase {
  /** Stable display id: `<file>#<entry>` (e.g. `hooks.toml#hooks.exec[0]`). */
  readonly id: string;
  /** Absolute path of the config file the hook came from. */
  readonly source: string;
  /** Human-readable name of the entry inside that file (for error messages and listings). */
  readonly entry: string;
  readonly event: HookEvent;
  readonly description?: string | undefined;
  /** A disabled hook (or one in a file with `enabled = false`) is listed but never run. */
  readonly enabled: boolean;
  /** Tool-name matcher (Claude Code semantics). Our only tool is "Bash". */
  readonly matcher?: string | undefined;
  /** Failure of a required hook denies (fail closed); an optional one's is logged and ignored. */
  readonly required: boolean;
  readonly timeoutMs: number;
  readonly mode: HookMode;
  readonly priority: HookPriority;
  /** Seed `conditions` table: every entry must hold for the hook to run (see matcher.ts). */
  readonly conditions: Readonly<Record<string, string>>;
  /** Directory of the config file: relative paths in the entry resolve against it. */
  readonly baseDir: string;
  /**
   * PreToolUse level: `exec` = every exec the script makes (default), `run` =
   * once per `codex-escalate run` with the whole script, `both`.
   * Undefined = `exec`.
   */
  readonly scope?: HookScope | undefined;
  /** At most this many runs of this hook at once (1 = serialised, for read-modify-write hooks); undefined = no limit. */
  readonly concurrency?: number | undefined;
}

export interface CommandHook extends HookBase {
  readonly type: 'command';
  /** A string runs through `/bin/sh -c` (Claude Code semantics); an array is exec'ed directly. */
  readonly command: string | readonly string[];
  /** Absolute working directory, or undefined = the session's working directory. */
  readonly cwd?: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  /** Start once per engine and talk JSON lines instead of spawning per event. */
  readonly persistent: boolean;
  /** A Claude Code plugin's root (the file is `<root>/hooks/hooks.json`): exported as CLAUDE_PLUGIN_ROOT. */
  readonly pluginRoot?: string | undefined;
}

export interface WebhookHook extends HookBase {
  readonly type: 'webhook';
  readonly url: string;
  readonly method: 'POST' | 'PUT' | 'PATCH';
  readonly headers: Readonly<Record<string, string>>;
  /** Extra attempts after a 5xx or network error (never after a 4xx). */
  readonly retryCount: number;
}

export interface McpToolHook extends HookBase {
  readonly type: 'mcp_tool';
  readonly server: string;
  readonly tool: string;
  /** Values may hold `${command}`, `${workdir}`... placeholders filled per event. */
  readonly arguments: Readonly<Record<string, unknown>>;
}

export type HookDefinition = CommandHook | WebhookHook | McpToolHook;

export interface McpServerConfig {
  readonly name: string;
  readonly source: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string | undefined;
}

export interface HooksFileInfo {
  readonly path: string;
  readonly format: 'json' | 'toml';
  /** How the file was found: an explicit `--hooks` or discovery. */
  readonly origin: 'explicit' | 'project' | 'user';
  readonly enabled: boolean;
  readonly hookCount: number;
  /** Why it runs: named with --hooks, or a discovered file whose content was trusted (`hooks trust`). */
  readonly trust?: 'named' | 'trusted';
}

/** A discovered hooks file that was not loaded: never trusted, or changed since it was. */
export interface UntrustedHooksFile {
  readonly path: string;
  readonly realPath: string;
  readonly origin: 'project' | 'user';
  readonly state: 'untrusted' | 'changed';
  readonly format: 'json' | 'toml';
}

export interface HooksConfig {
  readonly files: readonly HooksFileInfo[];
  readonly hooks: readonly HookDefinition[];
  readonly mcpServers: Readonly<Record<string, McpServerConfig>>;
  /** False as soon as one file sets `parallel_execution = false`. */
  readonly parallel: boolean;
  readonly debug: boolean;
  /** Non-fatal findings (e.g. seed events this system never produces). */
  readonly warnings: readonly string[];
  /** Discovered files skipped for want of trust (see hooks/trust.ts). */
  readonly untrusted?: readonly UntrustedHooksFile[];
  /** Trust-boundary warnings: a store not believed, a named file or a hook's script the sandbox can write. */
  readonly trustWarnings?: readonly string[];
}

export type HookRunStatus = 'completed' | 'blocked' | 'failed' | 'timed_out';

/** One hook invocation, as recorded in the audit line. */
export interface HookRunSummary {
  readonly hook: string;
  readonly event: HookEvent;
  readonly type: HookDefinition['type'];
  readonly status: HookRunStatus;
  readonly duration_ms: number;
  /** What the hook said, if it said anything. */
  readonly decision?: 'allow' | 'deny' | 'ask' | undefined;
  readonly reason?: string | undefined;
  /** The argv a hook asked to run instead (already validated). */
  readonly rewrite?: readonly string[] | undefined;
  /** First bytes of stdout/stderr/body, for the audit line. */
  readonly output?: string | undefined;
  readonly error?: string | undefined;
  readonly required: boolean;
  /** Async hooks are started and not waited for: their summary is logged, not returned. */
  readonly async?: boolean | undefined;
}

export interface ExecEventInfo {
  readonly sessionId: string;
  readonly requestId: string;
  /** Absolute, resolved program path. */
  readonly program: string;
  readonly argv: readonly string[];
  /** Working directory of the exec. */
  readonly workdir: string;
  /** The session's working directory (default cwd of hooks). */
  readonly cwd: string;
  /** The pipeline the exec is a stage of (ExecRequest.pipeline): a hint the script can forge. */
  readonly pipeline?: string | undefined;
}

export interface PreToolUseVerdict {
  readonly decision: 'none' | 'allow' | 'deny' | 'ask';
  readonly reason?: string | undefined;
  /** A rewrite must run exactly as given (after the rules re-check it) or not at all. */
  readonly rewrite?: { readonly argv: readonly string[] } | undefined;
  readonly runs: readonly HookRunSummary[];
}

/** The once-per-run PreToolUse: the whole script, before anything runs. */
export interface RunEventInfo {
  readonly sessionId: string;
  /** The session's working directory. */
  readonly cwd: string;
  /** The script exactly as given to `codex-escalate run`. */
  readonly script: string;
  /** Its positional arguments ($1...). */
  readonly args: readonly string[];
}

export type PostToolUseOutcome = 'exited' | 'denied' | 'run-handed-off';

export interface PostToolUseInfo extends ExecEventInfo {
  readonly outcome: PostToolUseOutcome;
  readonly exitCode?: number | undefined;
  readonly durationMs?: number | undefined;
  readonly reason?: string | undefined;
}

export interface SessionStartInfo {
  readonly sessionId: string;
  readonly cwd: string;
}

export interface SessionEndInfo extends SessionStartInfo {
  readonly exitCode: number;
  readonly durationMs: number;
}

export interface ErrorInfo {
  readonly sessionId?: string | undefined;
  readonly error: string;
  /** e.g. 'protocol', 'hook', 'spawn'. */
  readonly kind: string;
  readonly cwd?: string | undefined;
}

export class HooksConfigError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly entry?: string,
    readonly field?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'HooksConfigError';
  }
}
