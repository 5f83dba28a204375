/**
 * EscalationPolicy backed by execpolicy rules alone (no hooks, no prefixes):
 *   forbidden → deny (reason = justification), prompt → approver,
 *   allow → escalate, no match → configured default (run unless told otherwise).
 * It is the decision pipeline with only its rules stage configured.
 */
import type { Approver } from './approval/types.js';
import { createDecisionPipeline, type DecisionPipeline, type DefaultAction } from './decision-pipeline.js';
import type { RuleSet } from './rules/ruleset.js';

export { matchRequest, type DefaultAction } from './decision-pipeline.js';

export interface RulesPolicyOptions {
  /** Anything with the rules currently in force (a RulesStore, or `{ current: ruleSet }`). */
  readonly store: { readonly current: RuleSet };
  /** What to do when no rule matches (default `run`). */
  readonly defaultAction?: DefaultAction;
  /** Who answers `prompt` (default: deny, as a headless server has nobody to ask). */
  readonly approver?: Approver;
}

export type RulesPolicy = DecisionPipeline;

export function createRulesPolicy(opts: RulesPolicyOptions): RulesPolicy {
  return createDecisionPipeline({
    rules: opts.store,
    ...(opts.defaultAction !== undefined ? { defaultAction: opts.defaultAction } : {}),
    ...(opts.approver !== undefined ? { approver: opts.approver } : {}),
  });
}
