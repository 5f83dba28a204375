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
  /**
   * Offered only when a prompt rule matched: the command words (program
   * basename, then the rule's matched arguments) an answer of scope `prefix`
   * would cover for the rest of the session. Undefined: no such choice.
   */
  readonly prefixScope?: readonly string[] | undefined;
}

/**
 * once: this exec only. session: this exact command (program file, argv,
 * workdir, rule) again in this session. prefix: every command of this
 * program starting with `prefixScope` that this rule asks about.
 */
export type ApprovalScope = 'once' | 'session' | 'prefix';

/**
 * Stops (and resumes) everything the session started, so nothing can read
 * or redraw a terminal the approver shares with it while a question is up.
 */
export interface SandboxFreezer {
  /** 'cgroup2' | 'signals': which mechanism. */
  readonly kind: string;
  /** Resolves once every process is verified stopped; rejects (nothing left stopped) if it cannot. */
  freeze(): Promise<void>;
  /** Resume; never rejects. */
  thaw(): Promise<void>;
}

/** What the pipeline hands an approver besides the request. */
export interface ApprovalContext {
  /** The requesting session's freezer (undefined: nothing to freeze, e.g. library use without containment). */
  readonly freezer?: SandboxFreezer | undefined;
}

export type ApprovalResult =
  | { readonly decision: 'allow'; readonly scope?: ApprovalScope | undefined; readonly reason?: string | undefined }
  | { readonly decision: 'deny'; readonly reason: string };

export interface Approver {
  /** Must settle (never hang past `signal`), and must not throw: any failure is a deny. */
  approve(req: ApprovalRequest, signal: AbortSignal, ctx?: ApprovalContext): Promise<ApprovalResult>;
}

/** `requires approval: <rule>[: <justification>]` — the reason used whenever nobody approved. */
export function requiresApprovalReason(req: ApprovalRequest, why?: string): string {
  const base = `requires approval: ${req.rule}${req.justification !== undefined ? ` (${req.justification})` : ''}`;
  return why === undefined ? base : `${base}; ${why}`;
}
