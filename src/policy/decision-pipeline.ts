/**
 * The decision for one exec: prefixes and rules, then PreToolUse hooks, then
 * the merge (SPEC "Decision flow"):
 *   - any deny wins (a forbidden rule, a --deny prefix, a hook's deny);
 *   - a hook's rewrite is re-checked against the rules and then runs exactly
 *     as rewritten, or is denied — never silently dropped;
 *   - `prompt` (rule or default) and a hook's `ask` go to the approver; a
 *     hook's `allow` answers a rule's `prompt` in the approver's stead;
 *   - an explicit allow (rule or --escalate prefix) escalates;
 *   - nothing matched → the configured default.
 */
import { realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { HookEngine } from '../hooks/engine.js';
import type { PreToolUseVerdict } from '../hooks/types.js';
import { bytesToWireString, wireStringToBytes } from '../protocol/codec.js';
import { createDenyApprover } from './approval/deny.js';
import { requiresApprovalReason, type ApprovalRequest, type Approver, type SandboxFreezer } from './approval/types.js';
import { toCheckJson } from './rules/check-json.js';
import { describeRule, evaluationOf, normalizeAbsolute, RuleSet, type MatchedRule, type RuleDecision } from './rules/ruleset.js';
import { rootContaining } from './sandbox-roots.js';
import { matchesPrefix, parsePrefix } from './prefix.js';
import type { DecisionContext, EscalationPolicy, ExecRequest, PolicyDecision, RepeatableDecisions } from './types.js';

export type DefaultAction = 'run' | 'deny' | 'prompt';

export interface DecisionPipelineOptions {
  /**
   * The rules in force (a RulesStore, or `{ current: ruleSet }`). Only a store that tells of changes
   * (`subscribe`, as RulesStore does) lets the server answer repeated requests itself (`repeatable`).
   */
  readonly rules?: { readonly current: RuleSet; subscribe?(listener: () => void): () => void };
  /** Command prefixes (shell words) from `--deny` / `--escalate`. */
  readonly denyPrefixes?: readonly string[];
  readonly escalatePrefixes?: readonly string[];
  /** PreToolUse hooks, consulted on every decision. */
  readonly hooks?: Pick<HookEngine, 'preToolUse'>;
  /** The session's working directory, handed to hooks (default: the exec's workdir). */
  readonly sessionCwd?: (sessionId: string) => string | undefined;
  /** Who answers `prompt` / `ask` (default: deny — headless). */
  readonly approver?: Approver;
  /** What to do when nothing matched (default `run`). */
  readonly defaultAction?: DefaultAction;
  /**
   * Real paths the sandbox can write (see sandbox-roots.ts). A program under
   * one is never escalated because of its name, only when a rule or
   * --escalate names its absolute path. Empty: no such check (library use).
   */
  readonly sandboxWritableRoots?: readonly string[];
  /** The session's freezer, handed to the approver (the tty approver freezes the sandbox while it asks). */
  readonly sessionFreezer?: (sessionId: string) => SandboxFreezer | undefined;
}

export interface DecisionPipeline extends EscalationPolicy {
  /** Forget the "allow for this session" answers of one session, or of all. */
  clearSessionApprovals(sessionId?: string): void;
}

/** What the rules (and prefixes) say about one command, before hooks and approvals. */
interface RulesVerdict {
  readonly decision: RuleDecision | undefined;
  readonly reason: string | undefined;
  /** The rule to name when asking for approval. */
  readonly ruleName: string;
  readonly matchedPrefix: readonly string[];
  readonly justification: string | undefined;
  readonly matchedRules: ReturnType<typeof toCheckJson>['matchedRules'];
  /** The prompt rule's matched prefix, when a rule (not the default or a hook) asks: what a `prefix` approval covers. */
  readonly prefixScope: readonly string[] | undefined;
  readonly audit: Record<string, unknown>;
  /** The decisive rule or prefix names the program by its absolute path (not by a name any file can have). */
  readonly namedByPath: boolean;
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

export function createDecisionPipeline(opts: DecisionPipelineOptions = {}): DecisionPipeline {
  const defaultAction = opts.defaultAction ?? 'run';
  if (!['run', 'deny', 'prompt'].includes(defaultAction)) {
    throw new Error(`invalid default action ${JSON.stringify(defaultAction)}: expected run, deny or prompt`);
  }
  const rules = opts.rules ?? { current: RuleSet.empty() };
  const deny = (opts.denyPrefixes ?? []).map(prefixOf);
  const escalate = (opts.escalatePrefixes ?? []).map(prefixOf);
  const roots = opts.sandboxWritableRoots ?? [];
  const approver = opts.approver ?? createDenyApprover();
  /** sessionId -> approval keys answered "for this session" (exact command, or a rule's prefix). */
  const sessionApprovals = new Map<string, Set<string>>();

  /** The command as the --deny / --escalate prefixes see it (only built when there are prefixes: most policies have none). */
  function prefixViews(request: Pick<ExecRequest, 'program' | 'argv' | 'file' | 'workdir'>) {
    const args = request.argv.slice(1);
    return {
      real: [path.posix.basename(request.program), ...args],
      invoked: [path.posix.basename(request.file), ...args],
      // An absolute first word names one file: it matches the resolved program (and, for --deny, the invoked path).
      byPath: [request.program, ...args],
      invokedPath: request.file.includes('/') ? [normalizeAbsolute(path.posix.resolve(request.workdir, request.file)), ...args] : undefined,
    };
  }

  function evaluate(request: Pick<ExecRequest, 'program' | 'argv' | 'file' | 'workdir'>): RulesVerdict {
    const views = deny.length > 0 || escalate.length > 0 ? prefixViews(request) : undefined;
    // --deny also matches the invoked name (a deny for `sh` catches /bin/sh -> dash); --escalate only the real program.
    const denied =
      views &&
      deny.find((p) =>
        p.absolute
          ? matchesPrefix(views.byPath, p.words) || (views.invokedPath !== undefined && matchesPrefix(views.invokedPath, p.words))
          : matchesPrefix(views.real, p.words) || matchesPrefix(views.invoked, p.words),
      );
    const base = { matchedRules: [], prefixScope: undefined, justification: undefined, namedByPath: false } as const;
    if (denied) {
      const reason = `matches --deny "${denied.text}"`;
      return { ...base, decision: 'forbidden', reason, ruleName: `--deny "${denied.text}"`, matchedPrefix: denied.words, audit: { matched: denied.text } };
    }
    const matched = matchRequest(rules.current, request);
    // Nothing matched (most execs): no evaluation, check shape or audit fields to build.
    const evaluation = matched.length ? evaluationOf(matched) : undefined;
    const check = evaluation && toCheckJson(evaluation);
    const decisive = evaluation ? matched.filter((m) => m.decision === evaluation.decision) : matched;
    const lead = decisive.find((m) => m.justification !== undefined) ?? decisive[0];
    const audit: Record<string, unknown> = evaluation && check
      ? {
          // Each match says where its rule is (file:line), next to the upstream check shape.
          matchedRules: check.matchedRules.map((m, i) => ({ ...m, source: ruleSource(matched[i]!.rule) })),
          rulesDecision: evaluation.decision ?? null,
          justification: lead?.justification ?? null,
          rules: matched.map((m) => describeRule(m.rule)),
        }
      : {};
    // (evaluation and check exist whenever lead does: both are built as soon as anything matched.)
    if (lead === undefined || evaluation === undefined || check === undefined) {
      const escalated = views && escalate.find((p) => matchesPrefix(p.absolute ? views.byPath : views.real, p.words));
      if (escalated) {
        return {
          ...base,
          decision: 'allow',
          reason: `matches --escalate "${escalated.text}"`,
          ruleName: `--escalate "${escalated.text}"`,
          matchedPrefix: escalated.words,
          audit: { matched: escalated.text },
          namedByPath: escalated.absolute,
        };
      }
      return { ...base, decision: undefined, reason: undefined, ruleName: 'no rule matched (default: prompt)', matchedPrefix: [request.program], audit };
    }
    const ruleName = describeRule(lead.rule);
    const reason =
      evaluation.decision === 'forbidden' ? (lead.justification ?? `forbidden by ${ruleName}`) : evaluation.decision === 'allow' ? `allowed by ${ruleName}` : undefined;
    return {
      decision: evaluation.decision,
      reason,
      ruleName,
      matchedPrefix: lead.matchedPrefix,
      justification: lead.justification,
      matchedRules: check.matchedRules,
      prefixScope: evaluation.decision === 'prompt' ? lead.matchedPrefix : undefined,
      audit,
      namedByPath: decisive.some((m) => namesByPath(rules.current, m, request.program)),
    };
  }

  /**
   * Why `request.program` may not be escalated, if it lies where the sandbox
   * can write and the policy named it only by its basename (or not at all, as
   * with `--default prompt`). Called only on the way to an Escalate.
   */
  function locationBlock(request: Pick<ExecRequest, 'program'>, verdict: RulesVerdict): string | undefined {
    if (verdict.namedByPath || roots.length === 0) return undefined;
    const root = rootContaining(request.program, roots);
    if (root === undefined) return undefined;
    return `cannot escalate ${request.program} by name: it is in a sandbox-writable location (${root}); name it by path in a host_executable(...) to allow it`;
  }

  async function ask(request: ExecRequest, ctx: DecisionContext, verdict: RulesVerdict, rule: string, approved: 'escalate' | 'run', audit: Record<string, unknown>): Promise<PolicyDecision> {
    // "For this session" covers what the question showed, in this session only, and only while the program is the
    // same file (a sandbox-writable script edited after the approval is asked about again). No identity: no memory.
    const identity = await fileIdentity(request.program);
    const remembered = sessionApprovals.get(request.sessionId);
    const prefixScope = rule === verdict.ruleName ? verdict.prefixScope : undefined;
    const exactKey = identity === undefined ? undefined : JSON.stringify(['exact', request.program, identity, request.workdir, request.argv, rule]);
    const prefixKey = identity === undefined || prefixScope === undefined ? undefined : JSON.stringify(['prefix', request.program, identity, rule, prefixScope.slice(1)]);
    if (remembered !== undefined) {
      if (exactKey !== undefined && remembered.has(exactKey)) {
        return { action: approved, reason: `approved earlier for this session (this exact command): ${rule}`, audit: { ...audit, approval: 'session' } };
      }
      if (prefixKey !== undefined && remembered.has(prefixKey)) {
        return { action: approved, reason: `approved earlier for this session (all ${JSON.stringify(prefixScope!.join(' ') + ' …')} commands): ${rule}`, audit: { ...audit, approval: 'prefix' } };
      }
    }
    const req: ApprovalRequest = {
      sessionId: request.sessionId,
      requestId: request.requestId,
      program: request.program,
      argv: request.argv,
      workdir: request.workdir,
      rule,
      matchedPrefix: verdict.matchedPrefix,
      justification: verdict.justification,
      matchedRules: verdict.matchedRules,
      ...(prefixKey !== undefined ? { prefixScope } : {}),
    };
    let result;
    try {
      result = await approver.approve(req, ctx.signal, { freezer: opts.sessionFreezer?.(request.sessionId) });
    } catch (err) {
      result = { decision: 'deny' as const, reason: requiresApprovalReason(req, `approver failed: ${(err as Error)?.message ?? String(err)}`) };
    }
    if (result.decision === 'allow' && !ctx.signal.aborted) {
      // A scope that was not offered (prefix without a rule's prefix) counts as once.
      const key = result.scope === 'session' ? exactKey : result.scope === 'prefix' ? prefixKey : undefined;
      const scope = key !== undefined ? result.scope : 'once';
      if (key !== undefined) {
        const set = remembered ?? new Set<string>();
        set.add(key);
        sessionApprovals.set(request.sessionId, set);
      }
      return { action: approved, reason: result.reason ?? `approved: ${rule}`, audit: { ...audit, approval: scope } };
    }
    const reason = result.decision === 'deny' ? result.reason : requiresApprovalReason(req, 'request cancelled');
    return { action: 'deny', reason, audit: { ...audit, approval: 'denied' } };
  }

  /** Rules verdict + the hooks' opinion (deny already handled) → action; a promise only when an approver is asked. */
  function settle(request: ExecRequest, ctx: DecisionContext, verdict: RulesVerdict, hooks: PreToolUseVerdict | undefined, audit: Record<string, unknown>): PolicyDecision | Promise<PolicyDecision> {
    if (verdict.decision === 'forbidden') return { action: 'deny', reason: verdict.reason, audit };
    const hookAsks = hooks?.decision === 'ask';
    const hookAllows = hooks?.decision === 'allow';
    // Every route to Escalate passes here first (before any approver is bothered): a file the sandbox made is not ours to run.
    const refused = (): PolicyDecision | undefined => {
      const reason = locationBlock(request, verdict);
      return reason === undefined ? undefined : { action: 'deny', reason, audit: { ...audit, refused: 'sandbox-writable-location' } };
    };
    // What an approval leads to: escalation where the rules allow or prompt, else the default's own action.
    const onApproval: 'escalate' | 'run' = verdict.decision !== undefined || defaultAction === 'prompt' ? 'escalate' : 'run';
    if (verdict.decision === 'prompt') {
      const r = refused();
      if (r) return r;
      if (hookAllows) return { action: 'escalate', reason: `approved by hook: ${hooks?.reason ?? verdict.ruleName}`, audit: { ...audit, approval: 'hook' } };
      return ask(request, ctx, verdict, verdict.ruleName, 'escalate', audit);
    }
    if (hookAsks) {
      const r = onApproval === 'escalate' ? refused() : undefined;
      if (r) return r;
      return ask(request, ctx, verdict, `hook asks: ${hooks?.reason ?? 'approval required'}`, onApproval, audit);
    }
    if (verdict.decision === 'allow') return refused() ?? { action: 'escalate', reason: verdict.reason, audit };
    if (defaultAction === 'run') return { action: 'run', audit };
    if (defaultAction === 'deny') return { action: 'deny', reason: 'no rule matches this command and the default is deny', audit };
    return refused() ?? ask(request, ctx, verdict, verdict.ruleName, 'escalate', audit);
  }

  async function decideWithHooks(engine: NonNullable<DecisionPipelineOptions['hooks']>, request: ExecRequest, ctx: DecisionContext, verdict: RulesVerdict): Promise<PolicyDecision> {
    const hooks = await engine.preToolUse(
      {
        sessionId: request.sessionId,
        requestId: request.requestId,
        program: request.program,
        argv: request.argv,
        workdir: request.workdir,
        cwd: opts.sessionCwd?.(request.sessionId) ?? request.workdir,
        ...(request.pipeline !== undefined ? { pipeline: request.pipeline } : {}),
      },
      ctx.signal,
    );
    const audit = { ...verdict.audit, hooks: hooks.runs, ...(hooks.decision !== 'none' ? { hookDecision: hooks.decision } : {}) };
    if (verdict.decision === 'forbidden') return { action: 'deny', reason: verdict.reason, audit };
    if (hooks.decision === 'deny') return { action: 'deny', reason: `blocked by hook: ${hooks.reason ?? 'no reason given'}`, audit };
    if (!hooks.rewrite) return settle(request, ctx, verdict, hooks, audit);

    // A rewrite replaces the command: resolve it as bash would, re-check it, and run exactly it or nothing.
    const rewrittenArgv = [...hooks.rewrite.argv];
    const program = await resolveProgram(rewrittenArgv[0] ?? '', request);
    if (program === null) {
      return { action: 'deny', reason: `hook rewrote the command to ${JSON.stringify(rewrittenArgv)}, which cannot be resolved to an executable`, audit };
    }
    const rewritten: ExecRequest = { ...request, file: rewrittenArgv[0]!, program, argv: rewrittenArgv };
    const again = evaluate(rewritten);
    const rewriteAudit = { ...audit, ...again.audit, rewrite: { argv: rewrittenArgv, program } };
    const decision = await settle(rewritten, ctx, again, { ...hooks, rewrite: undefined }, rewriteAudit);
    if (decision.action === 'deny') return { ...decision, reason: `rewritten command ${JSON.stringify(rewrittenArgv)}: ${decision.reason ?? 'denied'}` };
    return { ...decision, rewrite: { argv: rewrittenArgv, program } };
  }

  // A synchronous decision reads the request, the rules, the prefixes and the default: nothing else. Hooks are
  // programs (state, clocks, files); an unobservable `{ current }` may change without telling.
  const repeatable: RepeatableDecisions | undefined = opts.hooks
    ? undefined
    : opts.rules === undefined
      ? { onChange: () => () => {} }
      : typeof opts.rules.subscribe === 'function'
        ? { onChange: (listener) => opts.rules!.subscribe!(listener) }
        : undefined;

  return {
    repeatable,
    clearSessionApprovals(sessionId?: string) {
      if (sessionId === undefined) sessionApprovals.clear();
      else sessionApprovals.delete(sessionId);
    },

    // Synchronous when neither a hook nor an approver is involved (the common case: the server then answers
    // without a promise, an abort signal or a poll); a promise otherwise.
    decide(request: ExecRequest, ctx: DecisionContext): PolicyDecision | Promise<PolicyDecision> {
      let verdict: RulesVerdict;
      try {
        verdict = evaluate(request);
      } catch (err) {
        // Fail closed: a matcher bug must not turn into an unchecked exec.
        return { action: 'deny', reason: `rules evaluation failed: ${(err as Error)?.message ?? String(err)}` };
      }
      if (!opts.hooks) return settle(request, ctx, verdict, undefined, verdict.audit);
      return decideWithHooks(opts.hooks, request, ctx, verdict);
    },
  };
}

/** `file:line` of a rule's prefix_rule(...) call. */
export function ruleSource(rule: MatchedRule['rule']): string {
  return `${rule.origin.file}:${rule.origin.line}`;
}

interface Prefix {
  readonly text: string;
  readonly words: readonly string[];
  /** The first word is an absolute path: it names one file, not every file of that name. */
  readonly absolute: boolean;
}

function prefixOf(text: string): Prefix {
  const words = parsePrefix(text);
  const first = words[0]!;
  if (!first.startsWith('/')) return { text, words, absolute: false };
  // Programs are compared by real path (python3 -> python3.11): canonicalise once, at start.
  let real = normalizeAbsolute(first);
  try {
    real = realpathSync(real);
  } catch {
    // Not there (yet): keep it lexical; it then only matches a program at exactly this path.
  }
  return { text, words: [real, ...words.slice(1)], absolute: true };
}

/** Did this match name the program by its absolute path: an absolute-path pattern, or a host_executable path list that holds it? */
function namesByPath(rules: RuleSet, m: MatchedRule, program: string): boolean {
  if (m.rule.program.startsWith('/')) return true;
  if (m.resolvedProgram === undefined) return false;
  const listed = rules.hostExecutables().get(m.rule.program);
  return listed !== undefined && listed.includes(program);
}

/** dev:ino:ctime of the program (bigint ns): changes when the file is replaced or written. */
async function fileIdentity(program: string): Promise<string | undefined> {
  try {
    const st = await stat(wireStringToBytes(program), { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** PATH search as bash does it, with the exec's own PATH and workdir; the result is absolute and symlink-free. */
export async function resolveProgram(name: string, request: Pick<ExecRequest, 'env' | 'workdir'>): Promise<string | null> {
  if (name === '') return null;
  const candidates = name.includes('/')
    ? [path.posix.resolve(request.workdir, name)]
    : (request.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').map((dir) => path.posix.resolve(request.workdir, dir || '.', name));
  for (const candidate of candidates) {
    const bytes = wireStringToBytes(candidate);
    try {
      const st = await stat(bytes);
      // Like bash: a regular file with some execute bit (directories named like the command don't count).
      if (!st.isFile() || (st.mode & 0o111) === 0) continue;
      return bytesToWireString(await realpath(bytes, { encoding: 'buffer' }));
    } catch {
      // Not here: keep searching.
    }
  }
  return null;
}
