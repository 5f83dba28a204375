import { parse } from 'shell-quote';

/**
 * Pure interpretation of what a hook said. Every runner (spawned, persistent,
 * webhook, MCP) reduces its raw result to a HookOutcome here so the decision
 * forms are handled in one place.
 */

export type Opinion = {
  readonly kind: 'opinion';
  /** undefined = no opinion (empty output, `proceed`, a rewrite without a verdict). */
  readonly decision?: 'allow' | 'deny' | 'ask' | undefined;
  readonly reason?: string | undefined;
  readonly rewrite?: readonly string[] | undefined;
  /**
   * updatedInput carried both `argv` and a `command` that parse differently
   * (a hook echoing our whole tool_input and editing one of them): the engine
   * resolves it against the original argv (see resolveRewrite).
   */
  readonly rewriteCandidates?: { readonly fromArgv: readonly string[]; readonly fromCommand: readonly string[] } | undefined;
};
export type Failure = { readonly kind: 'failure'; readonly status: 'failed' | 'timed_out'; readonly error: string };
export type HookOutcome = Opinion | Failure;

const REASON_MAX = 4096;

function clip(s: string, max = REASON_MAX): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Raw result of a spawned command hook. */
export interface ProcessResult {
  readonly exitCode?: number | undefined;
  readonly signal?: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout or stderr went past the cap. */
  readonly truncated: boolean;
  readonly timedOut: boolean;
  /** The process could not be started (ENOENT, EACCES...). */
  readonly spawnError?: string | undefined;
}

/**
 * Exit-code semantics (Claude Code's): 0 = look at stdout, 2 = deny with
 * stderr as the reason, anything else = the hook failed.
 */
export function interpretProcessResult(r: ProcessResult): HookOutcome {
  if (r.spawnError !== undefined) return { kind: 'failure', status: 'failed', error: `could not start hook: ${r.spawnError}` };
  if (r.timedOut) return { kind: 'failure', status: 'timed_out', error: 'hook timed out' };
  // A hook whose output was cut could have said anything after the cut: treat it as a block.
  if (r.truncated) return { kind: 'opinion', decision: 'deny', reason: 'hook output exceeded the 1 MiB cap (truncated output blocks)' };
  if (r.signal !== undefined) return { kind: 'failure', status: 'failed', error: `hook killed by ${r.signal}${stderrTail(r.stderr)}` };
  if (r.exitCode === 2) {
    const reason = r.stderr.trim();
    // Exit 2 is a block in Claude Code whether or not the hook explained itself.
    if (reason === '') return { kind: 'opinion', decision: 'deny', reason: 'hook exited 2 (no reason on stderr)' };
    return { kind: 'opinion', decision: 'deny', reason: clip(reason) };
  }
  if (r.exitCode !== 0) return { kind: 'failure', status: 'failed', error: `hook exited with status ${String(r.exitCode)}${stderrTail(r.stderr)}` };
  return interpretStdout(r.stdout);
}

function stderrTail(stderr: string): string {
  const t = stderr.trim();
  return t === '' ? '' : `: ${clip(t, 500)}`;
}

/** Exit 0: empty stdout = no opinion; otherwise it must be one JSON object. */
export function interpretStdout(stdout: string): HookOutcome {
  const text = stdout.trim();
  if (text === '') return { kind: 'opinion' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'failure', status: 'failed', error: `hook printed invalid JSON: ${clip(text, 200)}` };
  }
  return interpretDecisionObject(value);
}

function str(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The decision forms, in order of precedence:
 *  - `{"continue": false, "stopReason"}` (Claude Code) = deny;
 *  - `hookSpecificOutput.permissionDecision` allow|deny|ask (+ reason, updatedInput);
 *  - legacy `{"decision": "approve"|"block", "reason"}`;
 *  - the seed's `{"decision": "proceed"|"block"|"modify", "content"}`.
 */
export function interpretDecisionObject(value: unknown): HookOutcome {
  if (!isRecord(value)) return { kind: 'failure', status: 'failed', error: 'hook output is JSON but not an object' };

  if (value.continue === false) {
    return { kind: 'opinion', decision: 'deny', reason: clip(str(value, 'stopReason') ?? 'hook asked to stop (continue: false)') };
  }

  const hso = value.hookSpecificOutput;
  if (hso !== undefined) {
    if (!isRecord(hso)) return { kind: 'failure', status: 'failed', error: 'hookSpecificOutput is not an object' };
    const pd = hso.permissionDecision;
    const reason = str(hso, 'permissionDecisionReason');
    let decision: Opinion['decision'];
    if (pd === undefined) decision = undefined;
    else if (pd === 'allow' || pd === 'deny' || pd === 'ask') decision = pd;
    // An unknown verdict is never a pass: deny (fail closed), whatever `required` says.
    else return { kind: 'opinion', decision: 'deny', reason: `hook gave an unknown permissionDecision ${JSON.stringify(pd)} (denied: only allow, deny, ask are understood)` };
    if (decision === 'deny') return { kind: 'opinion', decision, reason: clip(reason ?? 'denied by hook') };
    if (hso.updatedInput !== undefined) {
      const rw = rewriteFromInput(hso.updatedInput);
      if ('error' in rw) return { kind: 'opinion', decision: 'deny', reason: rw.error };
      const r = reason === undefined ? undefined : clip(reason);
      if ('candidates' in rw) return { kind: 'opinion', decision, reason: r, rewriteCandidates: rw.candidates };
      if (rw.argv) return { kind: 'opinion', decision, reason: r, rewrite: rw.argv };
    }
    return { kind: 'opinion', decision, reason: reason === undefined ? undefined : clip(reason) };
  }

  const d = value.decision;
  if (d === undefined || d === null) return { kind: 'opinion', reason: str(value, 'reason') };
  const reason = str(value, 'reason');
  switch (d) {
    case 'approve':
    case 'allow':
      return { kind: 'opinion', decision: 'allow', reason };
    case 'ask':
      return { kind: 'opinion', decision: 'ask', reason };
    case 'deny':
    case 'block':
      return { kind: 'opinion', decision: 'deny', reason: clip(reason ?? str(value, 'content') ?? 'blocked by hook') };
    case 'proceed':
      return { kind: 'opinion', reason };
    case 'modify': {
      // Seed rule: modify without content is a block, never an empty substitution.
      if (value.content === undefined || value.content === null || value.content === '') {
        return { kind: 'opinion', decision: 'deny', reason: 'hook asked to modify the command but gave no content' };
      }
      const rw = rewriteFromInput(value.content);
      if ('error' in rw) return { kind: 'opinion', decision: 'deny', reason: rw.error };
      if ('candidates' in rw) return { kind: 'opinion', reason, rewriteCandidates: rw.candidates };
      if (!rw.argv) return { kind: 'opinion', decision: 'deny', reason: 'hook modify content has no command' };
      return { kind: 'opinion', reason, rewrite: rw.argv };
    }
    default:
      // Fail closed: a verdict we do not understand must not let the command through.
      return { kind: 'opinion', decision: 'deny', reason: `hook gave an unknown decision ${JSON.stringify(d)} (denied: understood are approve, block, ask, allow, deny, proceed, modify)` };
  }
}

/**
 * A rewrite given as `{argv: [...]}` (ours), `{command: "..."}` (Claude's
 * updatedInput) or a bare command string (seed `content`).
 */
export type RewriteInput = { argv?: string[] } | { error: string } | { candidates: { fromArgv: string[]; fromCommand: string[] } };

export function rewriteFromInput(input: unknown): RewriteInput {
  if (typeof input === 'string') return parseRewriteCommand(input);
  if (Array.isArray(input)) return validateArgv(input);
  if (!isRecord(input)) return { error: 'hook rewrite is neither a command string nor an object' };
  if (input.argv !== undefined && input.command !== undefined) {
    // Real rewrite hooks echo the whole tool_input back: both fields arrive, usually only one edited.
    const a = validateArgv(input.argv);
    if ('error' in a) return a;
    if (typeof input.command !== 'string') return { error: 'hook rewrite: updatedInput.command is not a string' };
    const c = parseRewriteCommand(input.command);
    if ('error' in c) return c;
    if (sameList(a.argv, c.argv)) return a;
    return { candidates: { fromArgv: a.argv, fromCommand: c.argv } };
  }
  if (input.argv !== undefined) return validateArgv(input.argv);
  if (input.command !== undefined) {
    if (typeof input.command !== 'string') return { error: 'hook rewrite: updatedInput.command is not a string' };
    return parseRewriteCommand(input.command);
  }
  return {}; // updatedInput without a command changes nothing we run
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Settle an updatedInput whose `argv` and `command` disagree: the one the
 * hook changed wins; if both changed (to different commands) it is a
 * conflict, which denies rather than silently dropping either.
 */
export function resolveRewrite(o: HookOutcome, originalArgv: readonly string[]): HookOutcome {
  if (o.kind !== 'opinion' || o.rewriteCandidates === undefined) return o;
  const { fromArgv, fromCommand } = o.rewriteCandidates;
  const { rewriteCandidates: _drop, ...rest } = o;
  if (sameList(fromCommand, originalArgv)) return { ...rest, rewrite: fromArgv };
  if (sameList(fromArgv, originalArgv)) return { ...rest, rewrite: fromCommand };
  return {
    kind: 'opinion',
    decision: 'deny',
    reason: `hook rewrite conflict: updatedInput.command ${JSON.stringify(fromCommand)} and updatedInput.argv ${JSON.stringify(fromArgv)} both changed and disagree`,
  };
}

function validateArgv(v: unknown): { argv: string[] } | { error: string } {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x): x is string => typeof x === 'string')) {
    return { error: 'hook rewrite: argv must be a non-empty array of strings' };
  }
  if (v.some((x) => x.includes('\0'))) return { error: 'hook rewrite: argv contains a NUL byte' };
  if (v[0] === '') return { error: 'hook rewrite: empty program name' };
  return { argv: [...v] };
}

/**
 * Turn a rewritten command line into ONE argv, or refuse. The server runs an
 * argv, not a shell line, so anything a shell would interpret beyond quoting
 * (operators, redirections, expansions, globs, substitutions, comments) cannot
 * be represented faithfully and must deny rather than run something else.
 */
export function parseRewriteCommand(cmd: string): { argv: string[] } | { error: string } {
  const bad = unquotedShellSyntax(cmd);
  if (bad !== undefined) return { error: `hook rewrite ${JSON.stringify(clip(cmd, 200))} cannot be run as one command: ${bad}` };
  const parts = parse(cmd, (key: string) => ({ variable: key }));
  const argv: string[] = [];
  for (const p of parts) {
    if (typeof p === 'string') {
      argv.push(p);
      continue;
    }
    const what = 'op' in p ? `operator ${String(p.op === 'glob' ? (p as { pattern: string }).pattern : p.op)}` : 'comment' in p ? 'a comment' : 'a variable expansion';
    return { error: `hook rewrite ${JSON.stringify(clip(cmd, 200))} cannot be run as one command: it contains ${what}` };
  }
  return validateArgv(argv);
}

/**
 * Scan with bash's quoting rules for syntax shell-quote would silently keep
 * as literal text (backquotes, `$`, `~`, braces, newlines), so a rewrite
 * never means one thing to the hook and another to us.
 */
function unquotedShellSyntax(cmd: string): string | undefined {
  let i = 0;
  let wordStart = true;
  while (i < cmd.length) {
    const c = cmd[i]!;
    if (c === '\\') {
      if (cmd[i + 1] === '\n') return 'a line continuation';
      i += 2;
      wordStart = false;
      continue;
    }
    if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end < 0) return 'an unterminated single quote';
      i = end + 1;
      wordStart = false;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < cmd.length && cmd[i] !== '"') {
        const d = cmd[i]!;
        if (d === '\\') i += 2;
        else if (d === '$' || d === '`') return `${d} expansion inside double quotes`;
        else i++;
      }
      if (i >= cmd.length) return 'an unterminated double quote';
      i++;
      wordStart = false;
      continue;
    }
    if (c === '\n' || c === '\r') return 'a newline (command separator)';
    if (c === '`') return 'a backquote command substitution';
    if (c === '$') return 'a $ expansion';
    if (c === '{' || c === '}') return 'brace syntax';
    if (c === '~' && wordStart) return 'a tilde expansion';
    if ('|&;<>()'.includes(c)) return `the shell operator ${c}`;
    if ('*?['.includes(c)) return `the glob character ${c}`;
    if (c === '#' && wordStart) return 'a comment';
    wordStart = c === ' ' || c === '\t';
    i++;
  }
  return undefined;
}
