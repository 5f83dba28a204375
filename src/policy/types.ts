/**
 * The contract between the escalation server and whatever decides.
 * The server validates and resolves the request, then asks an
 * EscalationPolicy; rules, hooks and approvers all sit behind this interface.
 */

/** One intercepted exec, validated and resolved by the server. */
export interface ExecRequest {
  /** Server-assigned id of the shell session. */
  readonly sessionId: string;
  /** Server-assigned id of this request (unique per server). */
  readonly requestId: string;
  /** The path bash resolved, exactly as the wrapper sent it (may be relative). */
  readonly file: string;
  /** Absolute, symlink-free path of the program that would run. */
  readonly program: string;
  /** Full argv, argv[0] included. */
  readonly argv: readonly string[];
  /** Absolute working directory of the exec. */
  readonly workdir: string;
  /** Environment of the exec (protocol variables removed). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * The pipeline this exec is a stage of, as the patched bash printed it (non-empty; absent when it is none or
   * bash could not tell). The sandbox can forge it: hooks may deny because of it, nothing may allow because of it.
   */
  readonly pipeline?: string | undefined;
}

export type DecisionAction = 'run' | 'escalate' | 'deny';

export interface PolicyDecision {
  readonly action: DecisionAction;
  /** Why: shown to the user on Deny, logged always. */
  readonly reason?: string | undefined;
  /**
   * A rewritten command (from a hook's updatedInput / modify) that must be
   * executed instead of the original, exactly as given, or not at all.
   */
  readonly rewrite?: { readonly argv: readonly string[]; readonly program: string } | undefined;
  /** Extra structured fields for the audit line (matched rules, hook runs...). */
  readonly audit?: Readonly<Record<string, unknown>> | undefined;
}

export interface DecisionContext {
  /** Aborted when the requesting client goes away or the session ends. */
  readonly signal: AbortSignal;
}

export interface EscalationPolicy {
  decide(request: ExecRequest, context: DecisionContext): Promise<PolicyDecision> | PolicyDecision;
  /**
   * Present only when every synchronous decision of this policy is a function of the request and the rules in
   * force alone (no hook, no approver, no clock, no file read at decision time): the server may then answer a
   * byte-identical repeat of a Run request itself (src/server/fast-path.ts). `onChange` must call its listener
   * synchronously, before any decision under the new rules, whenever the rules in force change; it returns the
   * unsubscribe function.
   */
  readonly repeatable?: RepeatableDecisions | undefined;
}

export interface RepeatableDecisions {
  onChange(listener: () => void): () => void;
}
