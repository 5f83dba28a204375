/**
 * EscalationPolicy backed by execpolicy rules:
 *   forbidden → deny (reason = justification), prompt → approver,
 *   allow → escalate, no match → configured default (run unless told otherwise).
 */
import path from 'node:path';
import { createDenyApprover } from './approval/deny.js';
import { requiresApprovalReason, type ApprovalRequest, type Approver } from './approval/types.js';
import { toCheckJson } from './rules/check-json.js';
import { describeRule, evaluationOf, normalizeAbsolute, type MatchedRule, type RuleSet } from './rules/ruleset.js';
import type { DecisionContext, EscalationPolicy, ExecRequest, PolicyDecision } from './types.js';

export type DefaultAction = 'run' | 'deny' | 'prompt';

export interface RulesPolicyOptions {
  /** Anything with the rules currently in force (a RulesStore, or `{ current: ruleSet }`). */
  readonly store: { readonly current: RuleSet };
  /** What to do when no rule matches (default `run`). */
  readonly defaultAction?: DefaultAction;
  /** Who answers `prompt` (default: deny, as a headless server has nobody to ask). */
  readonly approver?: Approver;
}

export interface RulesPolicy extends EscalationPolicy {
  /** Forget every "allow for this session" answer. */
  clearSessionApprovals(): void;
}

/**
 * The rules' view of one request. The resolved program stands in for argv[0]
 * with host-executable resolution on, as upstream evaluates `[program, ...args]`.
 * When bash's own path (`file`, made absolute) differs from the resolved one
 * (a symlink such as python3 → python3.11), its restrictive matches (prompt,
 * forbidden) also count, so a rule can't be sidestepped through a link; an
 * `allow` only counts for the binary that actually runs.
 */
export function matchRequest(rules: RuleSet, request: Pick<ExecRequest, 'program' | 'argv' | 'file' | 'workdir'>): MatchedRule[] {
  const args = request.argv.slice(1);
  const matched = rules.matches([request.program, ...args], { resolveHostExecutables: true });
  const fileAbs = request.file.includes('/') ? normalizeAbsolute(path.resolve(request.workdir, request.file)) : undefined;
  if (fileAbs !== undefined && fileAbs !== request.program) {
    for (const m of rules.matches([fileAbs, ...args], { resolveHostExecutables: true })) {
      if (m.decision === 'allow') continue;
      if (matched.some((x) => x.rule === m.rule && x.matchedPrefix.join('\0') === m.matchedPrefix.join('\0'))) continue;
      matched.push(m);
    }
  }
  return matched;
}

export function createRulesPolicy(opts: RulesPolicyOptions): RulesPolicy {
  const defaultAction = opts.defaultAction ?? 'run';
  if (!['run', 'deny', 'prompt'].includes(defaultAction)) {
    throw new Error(`invalid default action ${JSON.stringify(defaultAction)}: expected run, deny or prompt`);
  }
  const approver = opts.approver ?? createDenyApprover();
  // "Allow for this session" answers, keyed by (resolved program, matched prefixes).
  const sessionApprovals = new Set<string>();

  async function ask(
    request: ExecRequest,
    ctx: DecisionContext,
    key: string,
    base: Omit<ApprovalRequest, 'sessionId' | 'requestId' | 'program' | 'argv' | 'workdir'>,
    audit: Record<string, unknown>,
  ): Promise<PolicyDecision> {
    if (sessionApprovals.has(key)) {
      return { action: 'escalate', reason: `approved earlier for this session: ${base.rule}`, audit: { ...audit, approval: 'session' } };
    }
    const req: ApprovalRequest = {
      ...base,
      sessionId: request.sessionId,
      requestId: request.requestId,
      program: request.program,
      argv: request.argv,
      workdir: request.workdir,
    };
    let result;
    try {
      result = await approver.approve(req, ctx.signal);
    } catch (err) {
      result = { decision: 'deny' as const, reason: requiresApprovalReason(req, `approver failed: ${(err as Error)?.message ?? String(err)}`) };
    }
    if (result.decision === 'allow' && !ctx.signal.aborted) {
      if (result.scope === 'session') sessionApprovals.add(key);
      return {
        action: 'escalate',
        reason: result.reason ?? `approved: ${base.rule}`,
        audit: { ...audit, approval: result.scope ?? 'once' },
      };
    }
    const reason = result.decision === 'deny' ? result.reason : requiresApprovalReason(req, 'request cancelled');
    return { action: 'deny', reason, audit: { ...audit, approval: 'denied' } };
  }

  return {
    clearSessionApprovals() {
      sessionApprovals.clear();
    },

    async decide(request: ExecRequest, ctx: DecisionContext): Promise<PolicyDecision> {
      let matched: MatchedRule[];
      try {
        matched = matchRequest(opts.store.current, request);
      } catch (err) {
        // Fail closed: a matcher bug must not turn into an unchecked exec.
        return { action: 'deny', reason: `rules evaluation failed: ${(err as Error)?.message ?? String(err)}` };
      }
      const evaluation = evaluationOf(matched);
      const check = toCheckJson(evaluation);
      const decisive = matched.filter((m) => m.decision === evaluation.decision);
      const lead = decisive.find((m) => m.justification !== undefined) ?? decisive[0];
      const audit: Record<string, unknown> = {
        matchedRules: check.matchedRules,
        rulesDecision: evaluation.decision ?? null,
        justification: lead?.justification ?? null,
        rules: matched.map((m) => describeRule(m.rule)),
      };

      if (lead === undefined) {
        if (defaultAction === 'run') return { action: 'run', audit };
        if (defaultAction === 'deny') {
          return { action: 'deny', reason: 'no rule matches this command and the default is deny', audit };
        }
        return ask(
          request,
          ctx,
          `${request.program}\0*`,
          { rule: 'no rule matched (default: prompt)', matchedPrefix: [request.program], matchedRules: check.matchedRules },
          audit,
        );
      }

      const ruleName = describeRule(lead.rule);
      switch (evaluation.decision) {
        case 'forbidden':
          return { action: 'deny', reason: lead.justification ?? `forbidden by ${ruleName}`, audit };
        case 'allow':
          return { action: 'escalate', reason: `allowed by ${ruleName}`, audit };
        case 'prompt':
        default: {
          const key = [request.program, ...decisive.map((m) => m.matchedPrefix.join('\0'))].join('\0\0');
          return ask(
            request,
            ctx,
            key,
            { rule: ruleName, matchedPrefix: lead.matchedPrefix, justification: lead.justification, matchedRules: check.matchedRules },
            audit,
          );
        }
      }
    },
  };
}
