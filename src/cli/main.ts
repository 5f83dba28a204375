import { Command, CommanderError, type Help, type Option } from 'commander';
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

/**
 * Each command's module, loaded only when that command runs (or for help):
 * `run` must not pay for what `hooks` or `doctor` import, and start-up is
 * paid on every call an agent wraps.
 */
const COMMANDS = {
  run: async (p: Command) => (await import('./commands/run.js')).registerRunCommand(p),
  check: async (p: Command) => (await import('./commands/check.js')).registerCheckCommand(p),
  explain: async (p: Command) => (await import('./commands/explain.js')).registerExplainCommand(p),
  replay: async (p: Command) => (await import('./commands/replay.js')).registerReplayCommand(p),
  hooks: async (p: Command) => (await import('./commands/hooks.js')).registerHooksCommands(p),
  doctor: async (p: Command) => (await import('./commands/doctor.js')).registerDoctorCommand(p),
} as const satisfies Record<string, (p: Command) => Promise<void>>;
type CommandName = keyof typeof COMMANDS;

const isCommandName = (w: string): w is CommandName => Object.hasOwn(COMMANDS, w);

/**
 * The commands argv needs: the one it names; none for a bare --version;
 * every one otherwise (help, a typo: commander lists or suggests them).
 */
function commandsFor(argv: readonly string[]): readonly CommandName[] {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  if (first !== undefined && isCommandName(first)) return [first];
  const args = argv.slice(2);
  if (first === undefined && args.length === 1 && (args[0] === '--version' || args[0] === '-V')) return [];
  return Object.keys(COMMANDS).filter(isCommandName);
}

export async function buildProgram(argv?: readonly string[]): Promise<Command> {
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
  const names = argv ? commandsFor(argv) : Object.keys(COMMANDS).filter(isCommandName);
  // In the order help lists them.
  for (const name of names) await COMMANDS[name](program);
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
  const program = await buildProgram(argv);
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
