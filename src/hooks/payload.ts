import { CLAUDE_EVENT_NAMES, type HookEvent, type PostToolUseOutcome } from './types.js';

/** Everything one event carries; each hook type renders it its own way. */
export interface HookEventData {
  readonly event: HookEvent;
  readonly sessionId: string;
  /** Session working directory. */
  readonly cwd: string;
  readonly timestamp: string;
  /** A session-owned (empty) transcript file, for hooks that expect a path. */
  readonly transcriptPath?: string;
  readonly exec?: {
    readonly requestId: string;
    readonly program: string;
    readonly argv: readonly string[];
    readonly workdir: string;
    /** The pipeline the exec is a stage of, when bash could tell (a hint: the script can forge it). */
    readonly pipeline?: string;
  };
  /** The once-per-run PreToolUse (no exec yet): the whole script. */
  readonly run?: { readonly script: string; readonly args: readonly string[] };
  /** The session's script, carried on every exec's payload too (tool_input.script). */
  readonly script?: string;
  readonly outcome?: PostToolUseOutcome;
  readonly exitCode?: number;
  readonly durationMs?: number;
  readonly reason?: string;
  readonly error?: { readonly message: string; readonly kind: string };
}

/** Characters no shell treats specially anywhere in a word. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * One argument as a person would type it: bare when the shell reads it
 * literally, otherwise single-quoted (`'` as `'\''`). `~` is bare only where
 * bash never tilde-expands it (not first, not after `=` or `:`).
 */
export function quoteWord(w: string): string {
  if (w === '') return "''";
  if (PLAIN_WORD.test(w.replace(/(?<=[^=:])~/g, ''))) return w;
  return `'${w.replace(/'/g, "'\\''")}'`;
}

/** The argv as one shell line, the form Claude Code hooks read in tool_input.command (`dd if=/dev/zero`, not `if\=`). */
export function commandString(argv: readonly string[]): string {
  return argv.map(quoteWord).join(' ');
}

/** Claude Code's tool_use_id shape (`toolu_` + word characters), derived from our request id. */
export function toolUseId(requestId: string): string {
  return `toolu_${requestId.replace(/[^A-Za-z0-9_]/g, '')}`;
}

/**
 * JSON for a command hook's stdin: the Codex / Claude Code fields first (so
 * hooks written for those tools work unchanged), then ours.
 */
export function stdinPayload(d: HookEventData): Record<string, unknown> {
  const p: Record<string, unknown> = {
    session_id: d.sessionId,
    transcript_path: d.transcriptPath ?? null,
    // Claude Code sends the session's project directory; the exec's own directory is tool_input.workdir.
    cwd: d.cwd,
    hook_event_name: CLAUDE_EVENT_NAMES[d.event],
    permission_mode: 'default',
    codex_event: d.event,
    timestamp: d.timestamp,
  };
  if (d.exec) {
    p.tool_name = 'Bash';
    p.tool_use_id = toolUseId(d.exec.requestId);
    p.tool_input = {
      command: commandString(d.exec.argv),
      // Claude's Bash tool carries the model's description; here: what is being asked and by whom.
      description: `exec of ${d.exec.program} by the sandboxed script`,
      argv: d.exec.argv,
      program: d.exec.program,
      workdir: d.exec.workdir,
      ...(d.script !== undefined ? { script: d.script } : {}),
      ...(d.exec.pipeline !== undefined ? { pipeline: d.exec.pipeline } : {}),
      scope: 'exec',
    };
  }
  if (d.run) {
    // Like Claude Code's Bash tool: the command line is the whole script, exactly as given.
    p.tool_name = 'Bash';
    p.tool_use_id = toolUseId(`run_${d.sessionId}`);
    p.tool_input = {
      command: d.run.script,
      description: 'the whole script given to codex-escalate run, before any of it runs',
      args: d.run.args,
      workdir: d.cwd,
      script: d.run.script,
      scope: 'run',
    };
  }
  if (d.event === 'exec.after') {
    p.tool_response = {
      outcome: d.outcome,
      exit_code: d.exitCode ?? null,
      duration_ms: d.durationMs ?? null,
      reason: d.reason ?? null,
      // A Run is executed by the wrapper in place: the server never sees its exit.
      exit_status_known: d.outcome === 'exited',
    };
  }
  if (d.event === 'session_start') p.source = 'startup';
  if (d.event === 'session_end') {
    p.stop_hook_active = false;
    p.exit_code = d.exitCode ?? null;
    p.duration_ms = d.durationMs ?? null;
  }
  if (d.error) {
    p.error = d.error.message;
    p.error_kind = d.error.kind;
  }
  return p;
}

/** The seed's CODEX_* variables (plus CLAUDE_PROJECT_DIR, which Claude Code hooks use to find themselves). */
export function eventEnv(d: HookEventData): Record<string, string> {
  const env: Record<string, string> = {
    CODEX_EVENT_TYPE: d.event,
    CODEX_SESSION_ID: d.sessionId,
    CODEX_TIMESTAMP: d.timestamp,
    CODEX_CWD: d.cwd,
    CLAUDE_PROJECT_DIR: d.cwd,
  };
  if (d.exec) {
    env.CODEX_COMMAND = JSON.stringify(d.exec.argv);
    env.CODEX_WORKDIR = d.exec.workdir;
    env.CODEX_PROGRAM = d.exec.program;
    env.CODEX_REQUEST_ID = d.exec.requestId;
    if (d.exec.pipeline !== undefined) env.CODEX_PIPELINE = d.exec.pipeline;
  }
  if (d.run) {
    env.CODEX_SCRIPT = d.run.script;
    env.CODEX_WORKDIR = d.cwd;
  }
  if (d.outcome !== undefined) env.CODEX_OUTCOME = d.outcome;
  if (d.exitCode !== undefined) env.CODEX_EXIT_CODE = String(d.exitCode);
  if (d.durationMs !== undefined) env.CODEX_DURATION = String(Math.round(d.durationMs));
  if (d.reason !== undefined) env.CODEX_REASON = d.reason;
  if (d.error) {
    env.CODEX_ERROR = d.error.message;
    env.CODEX_CONTEXT = d.error.kind;
  }
  return env;
}

/** The seed's webhook body: `{"event": {...}, "context": {...}}`. */
export function webhookPayload(d: HookEventData): { event: Record<string, unknown>; context: Record<string, unknown> } {
  const event: Record<string, unknown> = { type: d.event, sessionId: d.sessionId, timestamp: d.timestamp };
  if (d.exec) {
    event.requestId = d.exec.requestId;
    event.command = d.exec.argv;
    event.commandLine = commandString(d.exec.argv);
    event.program = d.exec.program;
    event.workdir = d.exec.workdir;
    if (d.exec.pipeline !== undefined) event.pipeline = d.exec.pipeline;
  }
  if (d.run) {
    event.commandLine = d.run.script;
    event.script = d.run.script;
    event.workdir = d.cwd;
  }
  if (d.outcome !== undefined) event.outcome = d.outcome;
  if (d.exitCode !== undefined) event.exitCode = d.exitCode;
  if (d.durationMs !== undefined) event.duration = Math.round(d.durationMs);
  if (d.reason !== undefined) event.reason = d.reason;
  if (d.error) {
    event.error = d.error.message;
    event.context = d.error.kind;
  }
  return {
    event,
    context: { cwd: d.cwd, hook_event_name: CLAUDE_EVENT_NAMES[d.event], tool_name: d.exec ? 'Bash' : null },
  };
}

/** Placeholders an mcp_tool hook's arguments may use. */
export const TEMPLATE_KEYS = [
  'command',
  'argv',
  'script',
  'pipeline',
  'program',
  'workdir',
  'cwd',
  'session_id',
  'request_id',
  'event',
  'exit_code',
  'duration',
  'outcome',
  'reason',
  'error',
  'timestamp',
] as const;

function templateValues(d: HookEventData): Record<string, unknown> {
  return {
    command: d.exec ? commandString(d.exec.argv) : (d.run?.script ?? ''),
    argv: d.exec ? [...d.exec.argv] : [],
    script: d.run?.script ?? d.script ?? '',
    pipeline: d.exec?.pipeline ?? '',
    program: d.exec?.program ?? '',
    workdir: d.exec?.workdir ?? d.cwd,
    cwd: d.cwd,
    session_id: d.sessionId,
    request_id: d.exec?.requestId ?? '',
    event: d.event,
    exit_code: d.exitCode ?? null,
    duration: d.durationMs ?? null,
    outcome: d.outcome ?? '',
    reason: d.reason ?? '',
    error: d.error?.message ?? '',
    timestamp: d.timestamp,
  };
}

const PLACEHOLDER = /\$\{([a-z_]+)\}/g;

/**
 * Fill `${command}`-style placeholders. A string that is exactly one
 * placeholder takes the value's own type (so `"${argv}"` becomes an array);
 * inside a longer string values are stringified.
 */
export function fillTemplate(value: unknown, d: HookEventData): unknown {
  const vals = templateValues(d);
  const fill = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const whole = /^\$\{([a-z_]+)\}$/.exec(v);
      if (whole && whole[1] !== undefined && whole[1] in vals) return vals[whole[1]];
      return v.replace(PLACEHOLDER, (m, k: string) => {
        if (!(k in vals)) return m;
        const x = vals[k];
        return x === null ? '' : typeof x === 'string' ? x : JSON.stringify(x);
      });
    }
    if (Array.isArray(v)) return v.map(fill);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, fill(x)]));
    }
    return v;
  };
  return fill(value);
}
