/**
 * Differential check of the native fast path (src/server/fast-path.ts): random
 * exec sequences through the real patched bash, once with the fast path off and
 * once on; stdout and every decision line must be the same. The commands differ
 * by argument, by name, by environment and by the file behind one name (a
 * symlink relinked mid-sequence), so a replay keyed on anything less than the
 * request's bytes and the program's real path would disagree somewhere.
 * `npm test` runs a few seeds (test/integration/fast-path.test.ts), `npm run
 * fuzz` many.
 */
import { symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { RulesStore } from '../../src/policy/rules/store.js';
import { RuleSet } from '../../src/policy/rules/ruleset.js';
import { createAuditLogger } from '../../src/server/audit-log.js';
import { EscalationServer, type EscalationSession } from '../../src/server/escalation-server.js';
import { patchedBash, runInSession, tempDir, wrapperPath } from '../helpers/harness.js';

type Line = Record<string, unknown>;
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: os.tmpdir(), LC_ALL: 'C' };
// `(exec NAME)`: a PATH search for a name bash would otherwise run as its builtin.
const COMMANDS = ['/bin/true', '/bin/true a', '/bin/true b', '(exec true)', '(exec true a)', '/bin/false', '(exec false x)', '/bin/echo a', '(exec echo a)', '"$L"', '"$L" a', 'X=1 /bin/true', 'X=2 /bin/true'];
const RELINK = ['/bin/ln -sfn /bin/true "$L"', '/bin/ln -sfn /bin/false "$L"', '/bin/ln -sfn /bin/echo "$L"'];
const DENY = ['false x', 'true b', 'echo'];

/** A decision line without what differs from run to run (ids, clock, latency, the replayed request's id). */
export function decisionView(lines: readonly Line[]): Line[] {
  return lines
    .filter((l) => l.event === 'decision')
    .map(({ time: _t, session: _s, request: _r, latency_us: _l, repeat_of: _o, ...rest }) => rest);
}

async function runOnce(script: string, cwd: string, fastPath: boolean): Promise<{ stdout: string; lines: Line[]; hits: number }> {
  const lines: Line[] = [];
  const logger = createAuditLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Line) } });
  const policy = createDecisionPipeline({ rules: RulesStore.fromRuleSet(RuleSet.empty()), denyPrefixes: DENY });
  let session: EscalationSession | undefined;
  const server = new EscalationServer({ policy, wrapperPath, shellPath: patchedBash(), logger, fastPath, observer: { sessionStarted: (s) => void (session = s) } });
  try {
    const r = await runInSession(server, script, { env: ENV, cwd });
    return { stdout: r.stdout, lines, hits: session?.fastPathStats?.hits ?? 0 };
  } finally {
    await server.close();
  }
}

export interface DifferentialResult {
  readonly seeds: number;
  readonly decisions: number;
  readonly hits: number;
  /** One line per seed that disagreed. */
  readonly differences: string[];
}

export async function runFastPathDifferential(firstSeed: number, seeds: number, steps = 40): Promise<DifferentialResult> {
  const differences: string[] = [];
  let decisions = 0;
  let hits = 0;
  for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
    let x = (seed * 2654435761) % 2147483648;
    const next = (n: number) => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    const dir = tempDir('fast-diff-');
    const link = path.join(dir, 'l');
    symlinkSync('/bin/true', link);
    const cmds = Array.from({ length: steps }, () => (next(5) === 0 ? RELINK[next(RELINK.length)]! : COMMANDS[next(COMMANDS.length)]!));
    // Ends by relinking to /bin/true: the second run starts where the first did.
    const script = `L=${link}\n${cmds.map((c) => `${c} >/dev/null; echo $?`).join('\n')}\n/bin/ln -sfn /bin/true "$L"`;
    const slow = await runOnce(script, dir, false);
    const fast = await runOnce(script, dir, true);
    const a = JSON.stringify(decisionView(slow.lines));
    const b = JSON.stringify(decisionView(fast.lines));
    if (slow.stdout !== fast.stdout || a !== b) differences.push(`seed ${seed}: ${slow.stdout !== fast.stdout ? 'stdout' : 'decision lines'} differ`);
    decisions += decisionView(fast.lines).length;
    hits += fast.hits;
  }
  return { seeds, decisions, hits, differences };
}
