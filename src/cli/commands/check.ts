/**
 * `codex-escalate check --rules FILE [--rules FILE]... [--resolve-host-executables] [--pretty] [--] PROGRAM ARGS...`
 * Prints the evaluation exactly as `codex execpolicy check` does.
 */
import type { Command } from 'commander';
import { formatCheckJson } from '../../policy/rules/check-json.js';
import { loadRulesFiles } from '../../policy/rules/compile.js';
import { configExecutingWarnings } from '../../policy/config-executing.js';
import { collect, EXIT_TOOL_FAILURE } from '../errors.js';

export { toCheckJson, formatCheckJson } from '../../policy/rules/check-json.js';

export interface CheckArgs {
  readonly rules: readonly string[];
  readonly command: readonly string[];
  readonly resolveHostExecutables?: boolean;
  readonly pretty?: boolean;
}

export interface CheckIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

const processIo: CheckIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** Runs the check; returns the exit status (0 evaluated, whatever the decision; 125 usage error or rules did not load). */
export async function runCheck(args: CheckArgs, io: CheckIo = processIo): Promise<number> {
  if (args.rules.length === 0) {
    io.stderr('codex-escalate check: at least one --rules FILE is required\n');
    return EXIT_TOOL_FAILURE;
  }
  if (args.command.length === 0) {
    io.stderr('codex-escalate check: no command given: expected PROGRAM ARGS... (after -- or not)\n');
    return EXIT_TOOL_FAILURE;
  }
  let rules;
  try {
    rules = await loadRulesFiles(args.rules);
  } catch (err) {
    io.stderr(`codex-escalate check: rules did not load: ${(err as Error).message}\n`);
    return EXIT_TOOL_FAILURE;
  }
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
    .usage('-r RULES [options] [--] CMD ARGS...')
    .option('-r, --rules <file>', 'rules file to load (repeatable; files merge in order)', collect, [])
    .option('--resolve-host-executables', 'let an absolute program path fall back to the rules for its basename (see host_executable)', false)
    .option('--pretty', 'indent the JSON output', false)
    .argument('[command...]', 'the command to check (after -- or not: everything after the first word is the command\'s, like `codex execpolicy check`)')
    .passThroughOptions()
    .action(async (command: string[], options: { rules: string[]; resolveHostExecutables: boolean; pretty: boolean }) => {
      const code = await runCheck({
        rules: options.rules,
        command,
        resolveHostExecutables: options.resolveHostExecutables,
        pretty: options.pretty,
      });
      if (code !== 0) process.exitCode = code;
    });
}
