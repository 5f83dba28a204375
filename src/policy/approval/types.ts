import type { CheckOutput } from '../rules/check-json.js';

/** What an approver is asked: one intercepted exec that a `prompt` rule matched. */
export interface ApprovalRequest {
  readonly sessionId: string;
  readonly requestId: string;
  /** Absolute, resolved program path. */
  readonly program: string;
  readonly argv: readonly string[];
  readonly workdir: string;
  /** The prompting rule, e.g. `prefix_rule(["git", "push"], decision="prompt") at default.rules:40:1`. */
  readonly rule: string;
  /** argv prefix the prompting rule matched. */
  readonly matchedPrefix: readonly string[];
  readonly justification?: string | undefined;
  /** Every rule that matched, in `codex execpolicy check` shape. */
  readonly matchedRules: CheckOutput['matchedRules'];
}

export type ApprovalScope = 'once' | 'session';

export type ApprovalResult =
  | { readonly decision: 'allow'; readonly scope?: ApprovalScope | undefined; readonly reason?: string | undefined }
  | { readonly decision: 'deny'; readonly reason: string };

export interface Approver {
  /** Must settle (never hang past `signal`), and must not throw: any failure is a deny. */
  approve(req: ApprovalRequest, signal: AbortSignal): Promise<ApprovalResult>;
}

/** `requires approval: <rule>[: <justification>]` — the reason used whenever nobody approved. */
export function requiresApprovalReason(req: ApprovalRequest, why?: string): string {
  const base = `requires approval: ${req.rule}${req.justification !== undefined ? ` (${req.justification})` : ''}`;
  return why === undefined ? base : `${base}; ${why}`;
}
