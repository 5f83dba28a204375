/**
 * `codex-escalate explain [policy flags] [--run-hooks] [--json] [--] CMD ARGS...`
 * Every step of the decision `run` would make for one exec of CMD ARGS, from
 * the same pipeline: prefix flags, rules (file:line), hooks, default, approver.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { resolveProgram } from '../../policy/decision-pipeline.js';
import type { ExecRequest } from '../../policy/types.js';
import { escapeForTerminal } from '../../server/audit-log.js';
import { quoteCommandLine } from '../command-line.js';
import { addProbeOptions, openDecisionProbe, outcomeOf, type DecisionProbe, type Probed, type ProbeFlags } from '../decision-probe.js';
import { CliError, EXIT_OK } from '../errors.js';

export interface ExplainStep {
  /** deny-prefixes, rules, escalate-prefixes, hooks, rewrite, location, default, approver. */
  readonly step: string;
  /** What this step did: matched, no-match, not-consulted, not-run, ran, used, asked... */
  readonly result: string;
  readonly detail: string;
}

export interface Explanation {
  readonly command: readonly string[];
  readonly cwd: string;
  /** What bash would pass to execve (the PATH hit), and the real program it names. */
  readonly file: string;
  readonly program: string;
  readonly steps: readonly ExplainStep[];
  /** run, escalate, deny, or prompt (the approver's answer decides). */
  readonly outcome: 'run' | 'escalate' | 'deny' | 'prompt';
  readonly reason: string | null;
  readonly hooksRun: boolean;
  /** PreToolUse hooks configured (run only with --run-hooks). */
  readonly hooksConfigured: number;
  /** The audit fields run would log for this decision. */
  readonly audit: Readonly<Record<string, unknown>>;
}

/** bash's PATH search: the path it would hand to execve (not symlink-resolved), or undefined. */
function pathHit(name: string, cwd: string, envPath: string): string | undefined {
  const candidates = name.includes('/') ? [path.resolve(cwd, name)] : envPath.split(':').map((d) => path.resolve(cwd, d || '.', name));
  for (const c of candidates) {
    try {
      const st = statSync(c);
      if (st.isFile() && (st.mode & 0o111) !== 0) return name.includes('/') ? name : c;
    } catch {
      // not here
    }
  }
  return undefined;
}

function arr(v: unknown): readonly Record<string, unknown>[] {
  return Array.isArray(v) ? (v as Record<string, unknown>[]) : [];
}

/** The steps, read from what the pipeline decided and put in its audit fields (no second matcher). */
export function explainSteps(probe: Pick<DecisionProbe, 'hooksConfigured' | 'hooksRun' | 'approval' | 'rulesLoaded'>, flags: Pick<ProbeFlags, 'deny' | 'escalate' | 'default'>, p: Probed): ExplainStep[] {
  const audit = p.decision.audit ?? {};
  const reason = p.decision.reason ?? '';
  const steps: ExplainStep[] = [];
  const bareReason = reason.replace(/^rewritten command \[[^\]]*\]: /, '');
  const deniedByPrefix = bareReason.startsWith('matches --deny ');
  const escalatedByPrefix = bareReason.startsWith('matches --escalate ');
  steps.push(
    deniedByPrefix
      ? { step: 'deny-prefixes', result: 'matched', detail: `${bareReason} (a --deny prefix is final)` }
      : { step: 'deny-prefixes', result: 'no-match', detail: flags.deny.length ? `none of ${flags.deny.length} --deny prefixes matched` : 'no --deny given' },
  );
  const matched = arr(audit['matchedRules']);
  const described = Array.isArray(audit['rules']) ? (audit['rules'] as unknown[]).map(String) : [];
  if (deniedByPrefix) steps.push({ step: 'rules', result: 'not-consulted', detail: 'a --deny prefix matched first' });
  else if (matched.length === 0) steps.push({ step: 'rules', result: 'no-match', detail: probe.rulesLoaded ? `no rule of ${probe.rulesLoaded} matched` : 'no --rules given' });
  else {
    matched.forEach((m, i) => {
      const pm = (m['prefixRuleMatch'] ?? {}) as Record<string, unknown>;
      const just = typeof pm['justification'] === 'string' ? ` — ${pm['justification']}` : '';
      steps.push({ step: 'rules', result: String(pm['decision']), detail: `${described[i] ?? String(m['source'])}${just}` });
    });
    steps.push({ step: 'rules', result: 'decision', detail: `strictest of the matches: ${String(audit['rulesDecision'])}` });
  }
  if (escalatedByPrefix) steps.push({ step: 'escalate-prefixes', result: 'matched', detail: bareReason });
  else if (deniedByPrefix || matched.length > 0) steps.push({ step: 'escalate-prefixes', result: 'not-consulted', detail: deniedByPrefix ? 'a --deny prefix matched' : 'a rule matched (rules come first)' });
  else steps.push({ step: 'escalate-prefixes', result: 'no-match', detail: flags.escalate.length ? `none of ${flags.escalate.length} --escalate prefixes matched` : 'no --escalate given' });
  if (!probe.hooksRun) {
    steps.push({
      step: 'hooks',
      result: probe.hooksConfigured ? 'not-run' : 'none',
      detail: probe.hooksConfigured ? `${probe.hooksConfigured} PreToolUse hook(s) configured, not run (pass --run-hooks): this decision leaves them out` : 'no PreToolUse hook configured',
    });
  } else {
    const runs = arr(audit['hooks']);
    if (runs.length === 0) steps.push({ step: 'hooks', result: 'no-match', detail: 'no PreToolUse hook matched this command' });
    for (const r of runs) {
      const said = r['decision'] !== undefined ? `said ${String(r['decision'])}` : 'said nothing';
      steps.push({ step: 'hooks', result: String(r['status']), detail: `${String(r['hook'])}: ${said}${r['reason'] !== undefined ? ` — ${String(r['reason'])}` : ''}${r['error'] !== undefined ? ` (error: ${String(r['error'])})` : ''}` });
    }
    if (audit['hookDecision'] !== undefined) steps.push({ step: 'hooks', result: 'decision', detail: `merged: ${String(audit['hookDecision'])}` });
  }
  const rewrite = audit['rewrite'] as { argv?: unknown; program?: unknown } | undefined;
  if (rewrite !== undefined) steps.push({ step: 'rewrite', result: 'rewritten', detail: `a hook rewrote the command to ${JSON.stringify(rewrite.argv)} (${String(rewrite.program)}): re-checked above, runs exactly so` });
  if (audit['refused'] === 'sandbox-writable-location') steps.push({ step: 'location', result: 'refused', detail: reason });
  const nothing = !deniedByPrefix && !escalatedByPrefix && matched.length === 0 && audit['hookDecision'] === undefined;
  steps.push(nothing ? { step: 'default', result: 'used', detail: `nothing matched: --default ${flags.default}` } : { step: 'default', result: 'not-used', detail: `--default ${flags.default} applies only when nothing matched` });
  if (p.asked !== undefined) {
    const after = p.decision.audit?.['approval'] !== undefined ? 'approved: escalate; refused: deny' : 'approved: escalate';
    steps.push({ step: 'approver', result: 'asked', detail: `--approval ${probe.approval} would be asked about ${p.asked.rule} (${probe.approval === 'deny' ? 'the deny approver refuses: deny' : after})` });
  } else if (audit['approval'] === 'hook') steps.push({ step: 'approver', result: 'not-asked', detail: 'a hook\'s allow answered the prompt' });
  else steps.push({ step: 'approver', result: 'not-asked', detail: 'nothing asked for approval' });
  return steps;
}

export async function explain(command: readonly string[], flags: ProbeFlags & { readonly pipeline?: string }): Promise<Explanation> {
  if (command.length === 0) throw new CliError('nothing to explain: give CMD ARGS... (after -- or not)');
  const probe = await openDecisionProbe(flags);
  try {
    const envPath = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
    const file = pathHit(command[0]!, probe.cwd, envPath);
    const program = file === undefined ? null : await resolveProgram(file, { env: { PATH: envPath }, workdir: probe.cwd });
    if (file === undefined || program === null) {
      throw new CliError(`${command[0]!}: not found (PATH=${envPath}, cwd ${probe.cwd}): bash would say "command not found" (127); no exec is decided`);
    }
    const request: ExecRequest = {
      sessionId: 'explain',
      requestId: 'explain-1',
      file,
      program,
      argv: [...command],
      workdir: probe.cwd,
      env: { PATH: envPath },
      // Only hooks read it (tool_input.pipeline), as in run.
      ...(flags.pipeline !== undefined && flags.pipeline !== '' ? { pipeline: flags.pipeline } : {}),
    };
    const probed = await probe.decide(request);
    const outcome = outcomeOf(probed);
    return {
      command,
      cwd: probe.cwd,
      file,
      program,
      steps: explainSteps(probe, flags, probed),
      outcome,
      reason: probed.decision.reason ?? null,
      hooksRun: probe.hooksRun,
      hooksConfigured: probe.hooksConfigured,
      audit: probed.decision.audit ?? {},
    };
  } finally {
    await probe.close();
  }
}

export function formatExplanation(e: Explanation): string {
  const t = escapeForTerminal;
  const lines = [`command   ${t(quoteCommandLine(e.command))}`, `program   ${t(e.program)}${e.file !== e.program ? `  (exec of ${t(e.file)})` : ''}`, `cwd       ${t(e.cwd)}`, ''];
  for (const s of e.steps) lines.push(`${s.step.padEnd(18)} ${s.result.padEnd(13)} ${t(s.detail)}`);
  lines.push('');
  const outcome = e.outcome === 'prompt' ? 'prompt (the approver decides: approved = escalate, refused = deny)' : e.outcome;
  lines.push(`decision  ${outcome}${e.reason ? ` — ${t(e.reason)}` : ''}${e.hooksRun || e.hooksConfigured === 0 ? '' : ' [hooks not run: --run-hooks]'}`);
  return `${lines.join('\n')}\n`;
}

export function registerExplainCommand(program: Command): void {
  const cmd = program
    .command('explain')
    .summary('show every step of the decision run would make for one command (nothing is run)')
    .description(
      'Decide CMD ARGS exactly as `run` would (same pipeline: --deny prefixes, rules with file:line, --escalate prefixes,\n' +
        'hooks, --default, approver) and print every step that contributed. Nothing is executed; hooks run only with\n' +
        '--run-hooks, and the approver is named, never asked. Exit status: 0 explained (whatever the decision), 125 usage or\n' +
        'configuration error.',
    )
    .usage('[options] [--] CMD ARGS...')
    .argument('[command...]', 'the command and its arguments')
    .passThroughOptions();
  cmd.option('--pipeline <text>', 'the pipeline CMD is a stage of, as the patched bash would send it (hooks see it as tool_input.pipeline)');
  addProbeOptions(cmd).action(async (command: string[], flags: ProbeFlags & { pipeline?: string }) => {
    const e = await explain(command, flags);
    process.stdout.write(flags.json ? `${JSON.stringify(e, null, 2)}\n` : formatExplanation(e));
    process.exitCode = EXIT_OK;
  });
}
