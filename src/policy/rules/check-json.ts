/**
 * The JSON shape printed by `codex execpolicy check`, field order included:
 * {"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":[...],"decision":"...",
 *   "resolvedProgram":"...","justification":"..."}}],"decision":"..."}
 * Optional fields are omitted when absent; `decision` is omitted when nothing matched.
 */
import type { Evaluation, RuleDecision } from './ruleset.js';

export interface CheckPrefixRuleMatch {
  readonly matchedPrefix: readonly string[];
  readonly decision: RuleDecision;
  readonly resolvedProgram?: string;
  readonly justification?: string;
}

export interface CheckOutput {
  readonly matchedRules: readonly { readonly prefixRuleMatch: CheckPrefixRuleMatch }[];
  readonly decision?: RuleDecision;
}

export function toCheckJson(e: Evaluation): CheckOutput {
  const matchedRules = e.matchedRules.map((m) => {
    // Build in upstream's serialization order; JSON.stringify keeps insertion order.
    const prefixRuleMatch: { -readonly [K in keyof CheckPrefixRuleMatch]: CheckPrefixRuleMatch[K] } = {
      matchedPrefix: [...m.matchedPrefix],
      decision: m.decision,
    };
    if (m.resolvedProgram !== undefined) prefixRuleMatch.resolvedProgram = m.resolvedProgram;
    if (m.justification !== undefined) prefixRuleMatch.justification = m.justification;
    return { prefixRuleMatch };
  });
  return e.decision === undefined ? { matchedRules } : { matchedRules, decision: e.decision };
}

/** Compact by default (like serde_json::to_string); `pretty` indents by two spaces (like to_string_pretty). */
export function formatCheckJson(e: Evaluation, pretty = false): string {
  const out = toCheckJson(e);
  if (!pretty) return JSON.stringify(out);
  // serde's pretty printer writes empty arrays as `[]`, which JSON.stringify also does.
  return JSON.stringify(out, null, 2);
}
