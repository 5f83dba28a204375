import { createDecisionPipeline, type DefaultAction } from './decision-pipeline.js';
import type { EscalationPolicy } from './types.js';

/**
 * The built-in policy behind `--deny` / `--escalate`: each pattern is a
 * command prefix (shell words) matched against the resolved program's
 * basename followed by its arguments. Deny wins over escalate (and also
 * matches the name the command was invoked by); otherwise the default.
 */
export interface StaticPolicyOptions {
  readonly deny?: readonly string[];
  readonly escalate?: readonly string[];
  readonly defaultAction?: DefaultAction;
}

export function createStaticPolicy(opts: StaticPolicyOptions = {}): EscalationPolicy {
  return createDecisionPipeline({
    denyPrefixes: opts.deny ?? [],
    escalatePrefixes: opts.escalate ?? [],
    defaultAction: opts.defaultAction ?? 'run',
  });
}
