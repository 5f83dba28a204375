import { Command, CommanderError, type Help, type Option } from 'commander';
import { registerCheckCommand } from './commands/check.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerExplainCommand } from './commands/explain.js';
import { registerHooksCommands } from './commands/hooks.js';
import { registerReplayCommand } from './commands/replay.js';
import { registerRunCommand } from './commands/run.js';
import { CliError, EXIT_OK, EXIT_TOOL_FAILURE } from './errors.js';

/**
 * An option's help text: its description, choices and a default worth saying.
 * Not commander's `(default: [])` for repeatable options, nor `(default: false)`
 * for a flag whose description already says what happens without it.
 */
function optionDescription(this: Help, option: Option): string {
  const extra: string[] = [];
  if (option.argChoices) extra.push(`choices: ${option.argChoices.join(', ')}`);
  const d: unknown = option.defaultValue;
  const worthSaying = d !== undefined && typeof d !== 'boolean' && !(Array.isArray(d) && d.length === 0) && !/\(default:/.test(option.description);
  if (worthSaying) extra.push(`default: ${option.defaultValueDescription ?? JSON.stringify(d)}`);
  return extra.length ? `${option.description} (${extra.join('; ')})` : option.description;
}

export function buildProgram(): Command {
  const program = new Command('codex-escalate')
    .description(
      'Exec-interception escalation server for a patched bash: every execve goes through codex-execve-wrapper ' +
        'and is decided Run (in place, inside the sandbox), Escalate (run by the server, outside it) or Deny.',
    )
    .version('0.1.0')
    // Options after a subcommand belong to it; `run`, `check` and `explain` take the rest of the line as the command.
    .enablePositionalOptions()
    // Errors are printed by main() as one line (commander would print the message, then the whole help).
    .configureOutput({ outputError: () => {} })
    .configureHelp({ optionDescription })
    .exitOverride();
  registerRunCommand(program);
  registerCheckCommand(program);
  registerExplainCommand(program);
  registerReplayCommand(program);
  registerHooksCommands(program);
  registerDoctorCommand(program);
  return program;
}

/** The subcommand words of argv (e.g. "run", "hooks test"), for "see --help". */
function commandPath(program: Command, args: readonly string[]): string {
  const words: string[] = [];
  let cmd: Command = program;
  for (const a of args) {
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (sub === undefined) break;
    words.push(sub.name());
    cmd = sub;
  }
  return ['codex-escalate', ...words].join(' ');
}

/** Entry point; returns the process exit status (table in docs/cli.md). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with status 0.
      if (err.exitCode === 0) return EXIT_OK;
      const message = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      process.stderr.write(`codex-escalate: ${message}; see "${commandPath(program, argv.slice(2))} --help"\n`);
      return EXIT_TOOL_FAILURE;
    }
    if (err instanceof CliError) {
      process.stderr.write(`codex-escalate: ${err.message}\n`);
      return err.exitCode;
    }
    // Anything else is the tool failing (e.g. the patched bash did not build): one line, never the script's status.
    process.stderr.write(`codex-escalate: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_TOOL_FAILURE;
  }
}
