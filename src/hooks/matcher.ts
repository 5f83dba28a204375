import path from 'node:path';
import type { HookEventData } from './payload.js';
import { commandString } from './payload.js';
import type { HookDefinition } from './types.js';

/**
 * Claude Code matcher semantics: empty / missing / `*` match everything; a
 * plain name (letters, digits, `_`, `|`) is an exact, case-sensitive match of
 * one of its `|` alternatives; anything else is a regular expression tested
 * against the name. A regex that does not compile matches nothing (and the
 * loader never crashes on it).
 */
export function matcherMatches(matcher: string | undefined, name: string): boolean {
  if (matcher === undefined || matcher === '' || matcher === '*') return true;
  if (/^[A-Za-z0-9_|]+$/.test(matcher)) return matcher.split('|').includes(name);
  try {
    return new RegExp(matcher).test(name);
  } catch {
    return false;
  }
}

/** What a matcher is tested against for each event (tool events: the tool name; SessionStart: its source). */
export function matcherTarget(d: HookEventData): string | undefined {
  switch (d.event) {
    case 'exec.before':
    case 'exec.after':
      return 'Bash';
    case 'session_start':
      return 'startup';
    default:
      return undefined; // events without matchers in Claude Code: a matcher is ignored
  }
}

/**
 * Seed `conditions` (all must hold):
 *  - `program`: basename or full path of the program, `A|B` alternatives;
 *  - `command`: a regular expression searched in the shell-quoted command line;
 *  - `workdir`: the exec's directory is this directory or below it;
 *  - `outcome`: PostToolUse outcome (exited | denied | run-handed-off);
 *  - any other key K: the engine's environment variable CODEX_<K upper-cased>
 *    must equal the value (so `environment = "production"` needs
 *    CODEX_ENVIRONMENT=production); unset means the hook does not run.
 */
export function conditionsHold(conditions: Readonly<Record<string, string>>, d: HookEventData, env: NodeJS.ProcessEnv): boolean {
  for (const [k, v] of Object.entries(conditions)) {
    switch (k) {
      case 'program': {
        const p = d.exec?.program;
        if (p === undefined) return false;
        const alts = v.split('|');
        if (!alts.includes(p) && !alts.includes(path.basename(p))) return false;
        break;
      }
      case 'command': {
        const line = d.exec ? commandString(d.exec.argv) : d.run?.script;
        if (line === undefined) return false;
        let re: RegExp;
        try {
          re = new RegExp(v);
        } catch {
          return false;
        }
        if (!re.test(line)) return false;
        break;
      }
      case 'workdir': {
        const w = d.exec?.workdir ?? d.cwd;
        const base = path.resolve(v);
        if (w !== base && !w.startsWith(base.endsWith('/') ? base : `${base}/`)) return false;
        break;
      }
      case 'outcome':
        if (d.outcome !== v) return false;
        break;
      default:
        if (env[`CODEX_${k.toUpperCase()}`] !== v) return false;
    }
  }
  return true;
}

export function hookApplies(h: HookDefinition, d: HookEventData, env: NodeJS.ProcessEnv): boolean {
  if (!h.enabled || h.event !== d.event) return false;
  // PreToolUse has two levels: the whole script once per run, or each exec.
  if (d.event === 'exec.before') {
    const scope = h.scope ?? 'exec';
    if (scope !== 'both' && scope !== (d.run ? 'run' : 'exec')) return false;
  }
  const target = matcherTarget(d);
  if (target !== undefined && !matcherMatches(h.matcher, target)) return false;
  return conditionsHold(h.conditions, d, env);
}
