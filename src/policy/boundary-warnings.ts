/**
 * Start-of-session warnings about the policy crossing the trust boundary on
 * purpose: an explicit path that names a file the sandbox can write (allowed,
 * since the user named it, but said out loud).
 */
import type { RuleSet } from './rules/index.js';
import { describeExposure, sandboxExposure } from './sandbox-roots.js';
import { parsePrefix } from './prefix.js';

export function explicitPathWarnings(rules: RuleSet | undefined, escalatePrefixes: readonly string[], roots: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const check = (p: string, what: string) => {
    // Programs often have hard links of their own (git-core): only the path and its symlinks matter here.
    const e = sandboxExposure(p, roots, { hardlinks: false });
    if (e === undefined || seen.has(`${what}\0${p}`)) return;
    seen.add(`${what}\0${p}`);
    out.push(`${what} names ${describeExposure(p, e)}: the sandbox can replace what it runs outside`);
  };
  if (rules !== undefined) {
    for (const [name, paths] of rules.hostExecutables()) {
      // Only matters when some rule for that name can escalate.
      if (!rules.rules().some((r) => r.program === name && r.decision !== 'forbidden')) continue;
      for (const p of paths) check(p, `host_executable(name="${name}")`);
    }
    for (const r of rules.rules()) {
      if (r.decision !== 'forbidden' && r.program.startsWith('/')) check(r.program, `${r.origin.file}:${r.origin.line}: ${r.decision} rule`);
    }
  }
  for (const p of escalatePrefixes) {
    let first: string | undefined;
    try {
      first = parsePrefix(p)[0];
    } catch {
      continue;
    }
    if (first?.startsWith('/')) check(first, `--escalate "${p}"`);
  }
  return out;
}
