/**
 * `codex-escalate check [-r FILE|DIR]... [--no-discover-rules] [--resolve-host-executables] [--pretty] [--] PROGRAM ARGS...`
 * Prints the evaluation exactly as `codex execpolicy check` does, against the
 * rules `run` would load (the --rules files plus the trusted discovered ones).
 */
import type { Command } from 'commander';
import { formatCheckJson } from '../../policy/rules/check-json.js';
import { loadRulesFiles } from '../../policy/rules/compile.js';
import { networkRulesNotice, resolveRulesFiles, rulesDiscoveryDirs } from '../../policy/rules/discover.js';
import { RulesLoadError } from '../../policy/rules/errors.js';
import { sandboxWritableRoots } from '../../policy/sandbox-roots.js';
import { configExecutingWarnings } from '../../policy/config-executing.js';
import { collect, EXIT_TOOL_FAILURE } from '../errors.js';
import { processIo, type CommandIo } from '../io.js';

export { toCheckJson, formatCheckJson } from '../../policy/rules/check-json.js';

export interface CheckArgs {
  /** Files or directories (every *.rules in it). */
  readonly rules: readonly string[];
  readonly command: readonly string[];
  /** Also load $CODEX_HOME/rules and ./.codex/rules as `run` does (default false for library callers; the CLI's default is true). */
  readonly discover?: boolean;
  readonly resolveHostExecutables?: boolean;
  readonly pretty?: boolean;
}

/** Runs the check; returns the exit status (0 evaluated, whatever the decision; 125 usage error or rules did not load). */
export async function runCheck(args: CheckArgs, io: CommandIo = processIo): Promise<number> {
  if (args.command.length === 0) {
    io.stderr('codex-escalate check: no command given: expected PROGRAM ARGS... (after -- or not)\n');
    return EXIT_TOOL_FAILURE;
  }
  const cwd = process.cwd();
  let set;
  try {
    // The roots a `run` from here would have: a discovered file there is not loaded by run, so not by check either.
    set = resolveRulesFiles({ explicit: args.rules, discoverFrom: args.discover === true ? cwd : undefined, roots: sandboxWritableRoots(cwd) });
  } catch (err) {
    io.stderr(`codex-escalate check: rules did not load: ${(err as Error).message}\n`);
    return EXIT_TOOL_FAILURE;
  }
  for (const w of set.warnings) io.stderr(`codex-escalate check: warning: ${w}\n`);
  // Nothing named and nothing found is a usage error; found-but-untrusted evaluates against no rules, as run would.
  if (set.files.length === 0 && set.untrusted.length === 0) {
    const where = args.discover === true ? ` (none found in ${rulesDiscoveryDirs(cwd).map((d) => d.dir).join(' or ')})` : '';
    io.stderr(`codex-escalate check: no rules to check against${where}: give --rules FILE or --rules DIR\n`);
    return EXIT_TOOL_FAILURE;
  }
  if (set.discovered.length > 0) {
    io.stderr(`codex-escalate check: note: also using the discovered ${set.discovered.join(', ')} (--no-discover-rules to leave ${set.discovered.length === 1 ? 'it' : 'them'} out)\n`);
  }
  let rules;
  try {
    rules = await loadRulesFiles(set.files);
  } catch (err) {
    const msg = err instanceof RulesLoadError ? err.message : (err as Error).message;
    io.stderr(`codex-escalate check: rules did not load: ${msg}\n`);
    return EXIT_TOOL_FAILURE;
  }
  const net = networkRulesNotice(rules);
  if (net !== undefined) io.stderr(`codex-escalate check: warning: ${net}\n`);
  // Said on every check, so a policy that escalates workspace-configured tools is never written by accident.
  for (const w of configExecutingWarnings(rules)) io.stderr(`codex-escalate check: warning: ${w}\n`);
  const evaluation = rules.evaluate(args.command, { resolveHostExecutables: args.resolveHostExecutables === true });
  io.stdout(formatCheckJson(evaluation, args.pretty === true) + '\n');
  return 0;
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .summary('evaluate a command against execpolicy .rules files and print the result as JSON (same shape as `codex execpolicy check`)')
    .description(
      'Evaluate a command against execpolicy .rules files and print the result as JSON (same shape as `codex execpolicy check`).\n' +
        'Exit status: 0 evaluated (whatever the decision: read "decision"), 125 usage error or the rules did not load.',
    )
    .usage('[-r RULES]... [options] [--] CMD ARGS...')
    .option('-r, --rules <path>', 'rules file, or directory of *.rules files (repeatable; merged in order, a directory\'s files sorted by name)', collect, [])
    .option('--no-discover-rules', 'do not also load $CODEX_HOME/rules/*.rules (~/.codex/rules) and ./.codex/rules/*.rules; discovered files the sandbox can write are never loaded')
    .option('--resolve-host-executables', 'let an absolute program path fall back to the rules for its basename (see host_executable)', false)
    .option('--pretty', 'indent the JSON output', false)
    .argument('[command...]', 'the command to check (after -- or not: everything after the first word is the command\'s, like `codex execpolicy check`)')
    .passThroughOptions()
    .action(async (command: string[], options: { rules: string[]; discoverRules: boolean; resolveHostExecutables: boolean; pretty: boolean }) => {
      const code = await runCheck({
        rules: options.rules,
        discover: options.discoverRules,
        command,
        resolveHostExecutables: options.resolveHostExecutables,
        pretty: options.pretty,
      });
      if (code !== 0) process.exitCode = code;
    });
}
