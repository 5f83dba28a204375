import path from 'node:path';
import { parse as shellParse } from 'shell-quote';
import type { DecisionAction, EscalationPolicy, ExecRequest, PolicyDecision } from './types.js';

/**
 * The built-in policy behind `--deny` / `--escalate`: each pattern is a
 * command prefix (shell words) matched against the program's basename
 * followed by its arguments. Deny wins over escalate; otherwise the default.
 */
export interface StaticPolicyOptions {
  readonly deny?: readonly string[];
  readonly escalate?: readonly string[];
  readonly defaultAction?: DecisionAction;
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

/** The words a prefix is matched against: basename of the resolved program, then argv[1..]. */
export function commandWords(request: Pick<ExecRequest, 'program' | 'argv'>): string[] {
  return [path.posix.basename(request.program), ...request.argv.slice(1)];
}

/**
 * The same with the name the command was invoked by (bash's path, before
 * symlinks). Only restrictive matches use it: a deny for `sh` must catch
 * /bin/sh -> dash, but a symlink named `git` must never earn an escalate.
 */
function invokedWords(request: Pick<ExecRequest, 'file' | 'argv'>): string[] {
  return [path.posix.basename(request.file), ...request.argv.slice(1)];
}

export function matchesPrefix(words: readonly string[], prefix: readonly string[]): boolean {
  if (prefix.length > words.length) return false;
  return prefix.every((w, i) => words[i] === w);
}

export function createStaticPolicy(opts: StaticPolicyOptions = {}): EscalationPolicy {
  const deny = (opts.deny ?? []).map((p) => ({ text: p, words: parsePrefix(p) }));
  const escalate = (opts.escalate ?? []).map((p) => ({ text: p, words: parsePrefix(p) }));
  const fallback = opts.defaultAction ?? 'run';
  return {
    decide(request): PolicyDecision {
      const words = commandWords(request);
      const invoked = invokedWords(request);
      const denied = deny.find((p) => matchesPrefix(words, p.words) || matchesPrefix(invoked, p.words));
      if (denied) return { action: 'deny', reason: `matches --deny "${denied.text}"`, audit: { matched: denied.text } };
      const escalated = escalate.find((p) => matchesPrefix(words, p.words));
      if (escalated) return { action: 'escalate', reason: `matches --escalate "${escalated.text}"`, audit: { matched: escalated.text } };
      return { action: fallback };
    },
  };
}
