/**
 * `codex-escalate replay AUDIT.log [policy flags] [--run-hooks] [--json]`
 * Re-decide every exec of a past audit log under a new policy, with the same
 * pipeline run uses, and say what would change: counts, then each changed line.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import type { ExecRequest } from '../../policy/types.js';
import { escapeForTerminal } from '../../server/audit-log.js';
import { quoteCommandLine } from '../command-line.js';
import { addProbeOptions, openDecisionProbe, outcomeOf, type ProbeFlags } from '../decision-probe.js';
import { CliError } from '../errors.js';

/** Exit statuses: nothing changed, some decision changed (like diff). 125: usage, configuration or unreadable log. */
export const REPLAY_UNCHANGED = 0;
export const REPLAY_CHANGED = 1;

type Outcome = 'run' | 'escalate' | 'deny' | 'prompt';

/** The fields of an audit decision line that a decision depends on (audit-log.ts writes them). */
const DecisionLine = z.object({
  event: z.literal('decision'),
  session: z.string().optional(),
  request: z.string().optional(),
  program: z.string().min(1),
  file: z.string().min(1),
  argv: z.array(z.string()).min(1),
  workdir: z.string().min(1),
  // The shell's hint, for hooks (--run-hooks): what they saw when the line was written.
  pipeline: z.string().optional(),
  action: z.enum(['run', 'escalate', 'deny']),
  reason: z.string().nullable().optional(),
  approval: z.string().optional(),
  argv_truncated: z.unknown().optional(),
  file_truncated: z.unknown().optional(),
  workdir_truncated: z.unknown().optional(),
});

export interface ReplayChange {
  /** 1-based line of the audit log. */
  readonly line: number;
  readonly program: string;
  readonly argv: readonly string[];
  readonly workdir: string;
  readonly before: Outcome;
  readonly after: Outcome;
  readonly reason: string | null;
}

export interface ReplaySkip {
  readonly line: number;
  readonly why: string;
}

export interface ReplayReport {
  readonly log: string;
  /** Decision lines in the log. */
  readonly decisions: number;
  readonly replayed: number;
  readonly unchanged: number;
  readonly changed: number;
  /** "before -> after": count. */
  readonly transitions: Readonly<Record<string, number>>;
  readonly changes: readonly ReplayChange[];
  /** Decision lines that cannot be replayed (truncated argv, missing fields), and lines that are not JSON. */
  readonly skipped: readonly ReplaySkip[];
  readonly hooksRun: boolean;
  /** PreToolUse hooks configured (run only with --run-hooks). */
  readonly hooksConfigured: number;
}

/** What the past decision was, in replay's terms: a decision an approver answered counts as `prompt`. */
function pastOutcome(l: z.infer<typeof DecisionLine>): Outcome {
  if (l.approval !== undefined && l.approval !== 'hook') return 'prompt';
  return l.action;
}

export async function replay(log: string, flags: ProbeFlags): Promise<ReplayReport> {
  let text: string;
  try {
    text = readFileSync(log, 'utf8');
  } catch (err) {
    throw new CliError(`${log}: cannot read the audit log: ${(err as Error).message}`, undefined, { cause: err });
  }
  const probe = await openDecisionProbe(flags);
  const changes: ReplayChange[] = [];
  const skipped: ReplaySkip[] = [];
  const transitions: Record<string, number> = {};
  let decisions = 0;
  let replayed = 0;
  try {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!.trim();
      if (raw === '') continue;
      let rec: unknown;
      try {
        rec = JSON.parse(raw);
      } catch {
        skipped.push({ line: i + 1, why: 'not a JSON line' });
        continue;
      }
      if (typeof rec !== 'object' || rec === null || (rec as { event?: unknown }).event !== 'decision') continue;
      decisions++;
      const parsed = DecisionLine.safeParse(rec);
      if (!parsed.success) {
        skipped.push({ line: i + 1, why: `decision line without ${parsed.error.issues.map((x) => x.path.join('.') || x.message).join(', ')}` });
        continue;
      }
      const l = parsed.data;
      // A cut argv is not the command that ran: deciding a prefix of it could say anything.
      if (l.argv_truncated !== undefined || l.file_truncated !== undefined || l.workdir_truncated !== undefined) {
        skipped.push({ line: i + 1, why: 'the line is truncated (argv, file or workdir too long for the log)' });
        continue;
      }
      const request: ExecRequest = {
        sessionId: l.session ?? 'replay',
        requestId: l.request ?? `replay-${i + 1}`,
        file: l.file,
        program: l.program,
        argv: l.argv,
        workdir: l.workdir,
        env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' },
        ...(l.pipeline !== undefined && l.pipeline !== '' ? { pipeline: l.pipeline } : {}),
      };
      const probed = await probe.decide(request);
      replayed++;
      const before = pastOutcome(l);
      const after = outcomeOf(probed);
      if (before === after) continue;
      const key = `${before} -> ${after}`;
      transitions[key] = (transitions[key] ?? 0) + 1;
      changes.push({ line: i + 1, program: l.program, argv: l.argv, workdir: l.workdir, before, after, reason: probed.decision.reason ?? null });
    }
  } finally {
    await probe.close();
  }
  return { log, decisions, replayed, unchanged: replayed - changes.length, changed: changes.length, transitions, changes, skipped, hooksRun: probe.hooksRun, hooksConfigured: probe.hooksConfigured };
}

export function formatReplay(r: ReplayReport): string {
  const t = escapeForTerminal;
  const out = [
    `${r.decisions} decisions in ${t(r.log)}: ${r.replayed} replayed, ${r.unchanged} unchanged, ${r.changed} changed, ${r.skipped.length} skipped${r.hooksRun || r.hooksConfigured === 0 ? '' : ` (${r.hooksConfigured} PreToolUse hook(s) not run: --run-hooks)`}`,
  ];
  for (const [k, n] of Object.entries(r.transitions)) out.push(`  ${k}: ${n}`);
  for (const c of r.changes) {
    out.push(`line ${c.line}: ${c.before} -> ${c.after}  ${t(quoteCommandLine([c.program, ...c.argv.slice(1)]))}  (in ${t(c.workdir)})${c.reason ? `: ${t(c.reason)}` : ''}`);
  }
  for (const s of r.skipped) out.push(`line ${s.line}: skipped: ${s.why}`);
  return `${out.join('\n')}\n`;
}

export function registerReplayCommand(program: Command): void {
  const cmd = program
    .command('replay')
    .summary('re-decide every exec of a past audit log under a new policy and show what would change')
    .description(
      'Read the decision lines of an audit log (run --log-file) and decide each exec again, exactly as `run` would under\n' +
        'the policy flags given here (same pipeline). Prints the counts, each transition (e.g. run -> deny) and every\n' +
        'changed line. A decision an approver answered counts as "prompt". Nothing is executed; hooks run only with\n' +
        '--run-hooks. Exit status: 0 nothing changed, 1 some decision changed, 125 usage, configuration or unreadable log.',
    )
    .argument('<audit-log>', 'JSON-lines audit log written by codex-escalate run');
  addProbeOptions(cmd).action(async (log: string, flags: ProbeFlags) => {
    const r = await replay(log, flags);
    process.stdout.write(flags.json ? `${JSON.stringify(r, null, 2)}\n` : formatReplay(r));
    process.exitCode = r.changed > 0 ? REPLAY_CHANGED : REPLAY_UNCHANGED;
  });
}
