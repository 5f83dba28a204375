import { parse as shellParse } from 'shell-quote';
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

export function parsePrefix(pattern: string): string[] {
  const words: string[] = [];
  for (const entry of shellParse(pattern)) {
    if (typeof entry !== 'string') throw new Error(`pattern ${JSON.stringify(pattern)}: only plain words are allowed (no operators, globs or comments)`);
    words.push(entry);
  }
  if (words.length === 0) throw new Error('pattern is empty');
  return words;
}

export function matchesPrefix(words: readonly string[], prefix: readonly string[]): boolean {
  if (prefix.length > words.length) return false;
  return prefix.every((w, i) => words[i] === w);
}

export function createStaticPolicy(opts: StaticPolicyOptions = {}): EscalationPolicy {
  return createDecisionPipeline({
    denyPrefixes: opts.deny ?? [],
    escalatePrefixes: opts.escalate ?? [],
    defaultAction: opts.defaultAction ?? 'run',
  });
}
