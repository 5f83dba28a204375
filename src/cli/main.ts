import { Command, CommanderError } from 'commander';
import { registerCheckCommand } from './commands/check.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerHooksCommands } from './commands/hooks.js';
import { registerRunCommand } from './commands/run.js';
import { CliError } from './errors.js';

export function buildProgram(): Command {
  const program = new Command('codex-escalate')
    .description(
      'Exec-interception escalation server for a patched bash: every execve goes through codex-execve-wrapper ' +
        'and is decided Run (in place, inside the sandbox), Escalate (run by the server, outside it) or Deny.',
    )
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerRunCommand(program);
  registerCheckCommand(program);
  registerHooksCommands(program);
  registerDoctorCommand(program);
  return program;
}

/** Entry point; returns the process exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
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
