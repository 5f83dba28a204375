/**
 * The compiled rule set and its matcher. Rules are indexed by their first
 * pattern token (the program name), so evaluating a command only looks at the
 * rules for that program: cost is flat in the total number of rules.
 */
import path from 'node:path';

export type RuleDecision = 'allow' | 'prompt' | 'forbidden';

const SEVERITY: Readonly<Record<RuleDecision, number>> = { allow: 0, prompt: 1, forbidden: 2 };

/** The stricter of two decisions (`forbidden` > `prompt` > `allow`). */
export function stricter(a: RuleDecision, b: RuleDecision): RuleDecision {
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

/** One pattern position: a literal token or a set of alternatives. */
export type PatternToken = string | readonly string[];

export interface RuleOrigin {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export interface PrefixRule {
  /** The exact first token (program name or path) this rule is indexed by. */
  readonly program: string;
  /** Tokens after the first. */
  readonly rest: readonly PatternToken[];
  readonly decision: RuleDecision;
  readonly justification?: string | undefined;
  /** Where the prefix_rule(...) call is. */
  readonly origin: RuleOrigin;
}

export type NetworkRuleProtocol = 'http' | 'https' | 'socks5_tcp' | 'socks5_udp';

/**
 * network_rule(...): parsed and validated like upstream (where it feeds
 * Codex's network proxy), kept for tooling, never consulted for an exec.
 */
export interface NetworkRule {
  /** Normalized: lowercased, port and trailing dots dropped. */
  readonly host: string;
  readonly protocol: NetworkRuleProtocol;
  readonly decision: RuleDecision;
  readonly justification?: string | undefined;
  readonly origin: RuleOrigin;
}

export interface MatchedRule {
  /** The argv prefix that matched (with the basename as first token after a host-executable fallback). */
  readonly matchedPrefix: readonly string[];
  readonly decision: RuleDecision;
  /** The absolute program path, set only when the match came through basename fallback. */
  readonly resolvedProgram?: string | undefined;
  readonly justification?: string | undefined;
  /** The rule that matched (not part of the check JSON; used for audit and approvals). */
  readonly rule: PrefixRule;
}

export interface Evaluation {
  readonly matchedRules: readonly MatchedRule[];
  /** Strictest decision across matches; absent when nothing matched. */
  readonly decision?: RuleDecision | undefined;
}

export interface EvaluateOptions {
  /** Let an absolute program path fall back to the rules for its basename (see host_executable). */
  readonly resolveHostExecutables?: boolean;
}

function tokenMatches(p: PatternToken, token: string): boolean {
  return typeof p === 'string' ? p === token : p.includes(token);
}

/** Matches `rule` against `cmd` whose first token is already known to equal rule.program. */
function matchRest(rule: PrefixRule, cmd: readonly string[]): boolean {
  if (cmd.length < rule.rest.length + 1) return false;
  for (let i = 0; i < rule.rest.length; i++) {
    if (!tokenMatches(rule.rest[i] as PatternToken, cmd[i + 1] as string)) return false;
  }
  return true;
}

/**
 * The last path component the way Rust's Path::file_name sees it: trailing
 * slashes and `.` components are ignored; a final `..` (or `/`) has none.
 */
export function pathFileName(p: string): string | undefined {
  // The usual absolute path: its last component as it stands (the split below would keep exactly it).
  const last0 = p.slice(p.lastIndexOf('/') + 1);
  if (last0 === '..') return undefined;
  if (last0 !== '' && last0 !== '.') return last0;
  const parts = p.split('/').filter((s, i) => s !== '' && !(s === '.' && (i > 0 || p.startsWith('/'))));
  const last = parts[parts.length - 1];
  if (last === undefined || last === '..' || last === '.') return undefined;
  return last;
}

/** Lexical normalization of an absolute path (no filesystem access), without a trailing slash. */
export function normalizeAbsolute(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** A short, stable description of a rule for messages: `prefix_rule(["git", "push"]) at file:line:col`. */
export function describeRule(rule: PrefixRule, programs?: readonly string[]): string {
  const head: PatternToken = programs !== undefined && programs.length > 1 ? programs : rule.program;
  const toks = [head, ...rule.rest].map((t) =>
    typeof t === 'string' ? JSON.stringify(t) : `[${t.map((a) => JSON.stringify(a)).join(', ')}]`,
  );
  return `prefix_rule([${toks.join(', ')}], decision="${rule.decision}") at ${rule.origin.file}:${rule.origin.line}:${rule.origin.column}`;
}

export class RuleSet {
  readonly #byProgram: ReadonlyMap<string, readonly PrefixRule[]>;
  /** name → allowed absolute paths (normalized). Empty array: fallback never allowed. */
  readonly #hostExecutables: ReadonlyMap<string, readonly string[]>;
  readonly #networkRules: readonly NetworkRule[];
  readonly size: number;

  constructor(
    byProgram: ReadonlyMap<string, readonly PrefixRule[]>,
    hostExecutables: ReadonlyMap<string, readonly string[]>,
    networkRules: readonly NetworkRule[] = [],
  ) {
    this.#byProgram = byProgram;
    this.#hostExecutables = hostExecutables;
    this.#networkRules = networkRules;
    let n = 0;
    for (const rules of byProgram.values()) n += rules.length;
    this.size = n;
  }

  static empty(): RuleSet {
    return new RuleSet(new Map(), new Map());
  }

  /** All rules in definition order within each program (for listing / tooling). */
  rules(): PrefixRule[] {
    return [...this.#byProgram.values()].flat();
  }

  hostExecutables(): ReadonlyMap<string, readonly string[]> {
    return this.#hostExecutables;
  }

  /** The network_rule(...) declarations, in load order: they never take part in an exec decision. */
  networkRules(): readonly NetworkRule[] {
    return this.#networkRules;
  }

  evaluate(command: readonly string[], opts: EvaluateOptions = {}): Evaluation {
    const matched = this.matches(command, opts);
    return evaluationOf(matched);
  }

  matches(command: readonly string[], opts: EvaluateOptions = {}): MatchedRule[] {
    const first = command[0];
    if (first === undefined) return [];
    const exact = this.#matchProgram(first, command, undefined);
    if (exact.length > 0 || opts.resolveHostExecutables !== true) return exact;
    return this.#matchHostExecutable(first, command);
  }

  #matchProgram(key: string, cmd: readonly string[], resolvedProgram: string | undefined): MatchedRule[] {
    const rules = this.#byProgram.get(key);
    if (rules === undefined) return [];
    const out: MatchedRule[] = [];
    for (const rule of rules) {
      if (!matchRest(rule, cmd)) continue;
      out.push({
        matchedPrefix: [key, ...cmd.slice(1, rule.rest.length + 1)],
        decision: rule.decision,
        resolvedProgram,
        justification: rule.justification,
        rule,
      });
    }
    return out;
  }

  #matchHostExecutable(first: string, cmd: readonly string[]): MatchedRule[] {
    // Only absolute paths may fall back; a bare or relative name says nothing about which binary runs.
    if (!first.startsWith('/')) return [];
    const base = pathFileName(first);
    if (base === undefined) return [];
    if (!this.#byProgram.has(base)) return [];
    const program = normalizeAbsolute(first);
    const allowed = this.#hostExecutables.get(base);
    if (allowed !== undefined && !allowed.includes(program)) return [];
    return this.#matchProgram(base, cmd, program);
  }
}

export function evaluationOf(matched: readonly MatchedRule[]): Evaluation {
  let decision: RuleDecision | undefined;
  for (const m of matched) decision = decision === undefined ? m.decision : stricter(decision, m.decision);
  return decision === undefined ? { matchedRules: matched } : { matchedRules: matched, decision };
}
