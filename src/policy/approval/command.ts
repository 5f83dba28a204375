/**
 * `command:CMD` approver: runs CMD (through /bin/sh) like a PermissionRequest
 * hook, with the request as JSON on stdin. Only exit status 0 with stdout
 * `{"decision":"allow"|"deny","reason":...}` counts; anything else (non-zero
 * exit, bad JSON, timeout, crash) is a deny. Fail closed.
 */
import { requiresApprovalReason, type ApprovalRequest, type ApprovalResult, type Approver } from './types.js';

export interface CommandApproverOptions {
  /** Kill the command and deny after this long (default 60 s). */
  readonly timeoutMs?: number;
  /** Working directory for the command (default: the server's). */
  readonly cwd?: string;
}

const MAX_OUTPUT = 1024 * 1024;

/** The JSON written on the command's stdin. */
export function approvalPayload(req: ApprovalRequest): Record<string, unknown> {
  return {
    hook_event_name: 'PermissionRequest',
    session_id: req.sessionId,
    request_id: req.requestId,
    cwd: req.workdir,
    tool_name: 'exec',
    tool_input: { program: req.program, argv: req.argv, workdir: req.workdir },
    rule: req.rule,
    matched_prefix: req.matchedPrefix,
    justification: req.justification ?? null,
    matched_rules: req.matchedRules,
    // The words a {"scope":"prefix"} answer covers; null: only "once" and "session" (this exact command) are offered.
    prefix_scope: req.prefixScope ?? null,
  };
}

export function createCommandApprover(command: string, opts: CommandApproverOptions = {}): Approver {
  if (command.trim() === '') throw new Error('approval command is empty: expected --approval "command:CMD"');
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return {
    async approve(req, signal): Promise<ApprovalResult> {
      const deny = (why: string): ApprovalResult => ({ decision: 'deny', reason: requiresApprovalReason(req, why) });
      if (signal.aborted) return deny('request cancelled');
      let result;
      let timedOut = false;
      let cancelled = false;
      try {
        // Imported here, not at start-up: only the command approver needs it.
        const { execa } = await import('execa');
        if (signal.aborted) return deny('request cancelled');
        // Own process group, so a timeout or cancel kills the whole tree (a `sleep` left
        // behind would hold the pipes open and the approval would hang).
        const child = execa(command, {
          shell: true,
          detached: true,
          input: JSON.stringify(approvalPayload(req)),
          reject: false,
          maxBuffer: MAX_OUTPUT,
          stderr: 'pipe',
          ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        });
        const killTree = (): void => {
          try {
            if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        };
        const timer = setTimeout(() => {
          timedOut = true;
          killTree();
        }, timeoutMs);
        const onAbort = (): void => {
          cancelled = true;
          killTree();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          result = await child;
        } finally {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
        }
      } catch (err) {
        return deny(`approval command could not run: ${(err as Error).message}`);
      }
      if (timedOut) return deny(`approval command timed out after ${timeoutMs} ms`);
      if (cancelled || signal.aborted) return deny('request cancelled');
      if (result.isMaxBuffer) return deny('approval command printed more than 1 MiB');
      if (result.signal !== undefined) return deny(`approval command killed by ${result.signal}`);
      if (result.exitCode !== 0) {
        const err = String(result.stderr ?? '').trim().split('\n')[0] ?? '';
        return deny(`approval command exited with status ${String(result.exitCode)}${err !== '' ? `: ${err}` : ''}`);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(result.stdout));
      } catch {
        return deny('approval command did not print a JSON object like {"decision":"allow"}');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return deny('approval command did not print a JSON object like {"decision":"allow"}');
      }
      const o = parsed as { decision?: unknown; reason?: unknown; scope?: unknown };
      const reason = typeof o.reason === 'string' && o.reason.trim() !== '' ? o.reason : undefined;
      if (o.decision === 'allow') {
        const scope = o.scope === 'session' ? 'session' : o.scope === 'prefix' && req.prefixScope !== undefined ? 'prefix' : 'once';
        return { decision: 'allow', scope, reason };
      }
      if (o.decision === 'deny') return deny(reason !== undefined ? `denied by approval command: ${reason}` : 'denied by approval command');
      return deny(`approval command returned decision ${JSON.stringify(o.decision ?? null)}: expected "allow" or "deny"`);
    },
  };
}
