/**
 * Synthetic rule sets for benchmarks: N rules spread over many programs plus
 * a fixed block for one "hot" program, so evaluating the hot program's commands
 * should cost the same at 10, 1,000 or 10,000 rules (rules are indexed by program).
 *
 *   const src = syntheticRulesSource(10_000);
 *   const rules = compileRules([{ file: 'synthetic.rules', source: src }]);
 *   rules.evaluate(SYNTHETIC_HOT_COMMAND);
 */
import { compileRules } from '../../src/policy/rules/compile.js';
import type { RuleSet } from '../../src/policy/rules/ruleset.js';

/** A command that matches the hot program's rules (the last one forbids it). */
export const SYNTHETIC_HOT_COMMAND: readonly string[] = ['git', 'push', '--force', 'origin', 'main'];

const HOT_RULES = `prefix_rule(pattern = ["git", "status"], decision = "allow")
prefix_rule(pattern = ["git", ["push", "fetch"]], decision = "prompt", justification = "network access")
prefix_rule(pattern = ["git", "push", ["--force", "-f"]], decision = "forbidden", justification = "no force pushes")
`;

/** `.rules` source with `n` rules in total (at least the 3 hot ones). */
export function syntheticRulesSource(n: number): string {
  const lines: string[] = [HOT_RULES];
  const decisions = ['allow', 'prompt', 'forbidden'];
  for (let i = 3; i < n; i++) {
    // ~10 rules per synthetic program, like a real policy with many tools.
    const prog = `tool${Math.floor(i / 10)}`;
    lines.push(`prefix_rule(pattern = ["${prog}", "sub${i % 10}", ["a", "b"]], decision = "${decisions[i % 3]}")`);
  }
  return lines.join('\n') + '\n';
}

export function syntheticRuleSet(n: number): RuleSet {
  return compileRules([{ file: `synthetic-${n}.rules`, source: syntheticRulesSource(n) }]);
}
