import { Command, CommanderError } from 'commander';
import { CliError } from './errors.js';

/**
 * Each command's module, loaded only when that command runs (or for help):
 * `run` must not pay for what `hooks` or `doctor` import, and start-up is
 * paid on every call an agent wraps.
 */
const COMMANDS = {
  run: async (p: Command) => (await import('./commands/run.js')).registerRunCommand(p),
  check: async (p: Command) => (await import('./commands/check.js')).registerCheckCommand(p),
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
    .showHelpAfterError()
    .exitOverride();
  const names = argv ? commandsFor(argv) : Object.keys(COMMANDS).filter(isCommandName);
  // In the order help lists them.
  for (const name of names) await COMMANDS[name](program);
  return program;
}

/** Entry point; returns the process exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CliError) {
      process.stderr.write(`codex-escalate: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
