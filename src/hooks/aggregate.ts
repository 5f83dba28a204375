import type { HookOutcome } from './decision.js';
import type { HookDefinition, HookRunSummary, PreToolUseVerdict } from './types.js';

export interface HookResult {
  readonly hook: HookDefinition;
  readonly outcome: HookOutcome;
  readonly summary: HookRunSummary;
}

function sameArgv(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Whether this result alone denies: an explicit deny, or a required hook that failed (fail closed). */
export function deniesAlone(r: HookResult): boolean {
  return (r.outcome.kind === 'opinion' && r.outcome.decision === 'deny') || (r.outcome.kind === 'failure' && r.hook.required);
}

/**
 * Merge rule, pure: any deny wins (an explicit deny, or a failed `required`
 * hook); hooks that rewrite the command to different argvs deny; otherwise
 * `ask` beats `allow` beats no opinion, and a rewrite (one distinct argv
 * different from the original) rides along with that decision.
 */
/**
 * A hook's reason tidied, its lines kept: trailing blanks and empty lines
 * go, CRLF becomes LF. The wrapper prints each line as its own indented line.
 */
export function tidyLines(reason: string): string {
  return reason
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .join('\n');
}

/** Several hooks' reasons: `; ` between one-liners, a line each once any spans lines. */
function joinReasons(reasons: readonly string[]): string {
  return reasons.join(reasons.some((r) => r.includes('\n')) ? '\n' : '; ');
}

export function aggregate(results: readonly HookResult[], originalArgv: readonly string[]): PreToolUseVerdict {
  const runs = results.map((r) => r.summary);
  const denyReasons: string[] = [];
  for (const r of results) {
    const o = r.outcome;
    if (o.kind === 'opinion' && o.decision === 'deny') denyReasons.push(`${r.hook.id}: ${tidyLines(o.reason ?? 'denied')}`);
    else if (o.kind === 'failure' && r.hook.required) denyReasons.push(`required hook ${r.hook.id} failed: ${o.error}`);
  }
  if (denyReasons.length > 0) return { decision: 'deny', reason: joinReasons(denyReasons), runs };

  const rewrites: { argv: readonly string[]; by: string }[] = [];
  for (const r of results) {
    const o = r.outcome;
    if (o.kind !== 'opinion' || o.rewrite === undefined || sameArgv(o.rewrite, originalArgv)) continue;
    if (!rewrites.some((w) => sameArgv(w.argv, o.rewrite!))) rewrites.push({ argv: o.rewrite, by: r.hook.id });
  }
  if (rewrites.length > 1) {
    return {
      decision: 'deny',
      reason: `hooks rewrote the command differently (${rewrites.map((w) => `${w.by}: ${JSON.stringify(w.argv)}`).join(' vs ')})`,
      runs,
    };
  }
  const rewrite = rewrites[0] ? { argv: [...rewrites[0].argv] } : undefined;

  const opinions = results.flatMap((r) => (r.outcome.kind === 'opinion' ? [{ o: r.outcome, id: r.hook.id }] : []));
  const asks = opinions.filter((x) => x.o.decision === 'ask');
  if (asks.length > 0) {
    return { decision: 'ask', reason: joinReasons(asks.map((x) => `${x.id}: ${tidyLines(x.o.reason ?? 'asks for approval')}`)), rewrite, runs };
  }
  const allows = opinions.filter((x) => x.o.decision === 'allow');
  if (allows.length > 0) {
    const reasons = allows.flatMap((x) => (x.o.reason ? [`${x.id}: ${x.o.reason}`] : []));
    return { decision: 'allow', reason: reasons.length ? reasons.join('; ') : undefined, rewrite, runs };
  }
  return { decision: 'none', reason: rewrite ? `rewritten by ${rewrites[0]!.by}` : undefined, rewrite, runs };
}
