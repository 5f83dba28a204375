import { Command, Option } from 'commander';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { createStaticPolicy } from '../../policy/static-policy.js';
import type { DecisionAction } from '../../policy/types.js';
import { createAuditLogger } from '../../server/audit-log.js';
import { EscalationServer } from '../../server/escalation-server.js';
import { launchShell } from '../../server/run-shell.js';
import { ensurePatchedBash } from '../../shell/patched-bash.js';
import { defaultWrapperPath } from '../../paths.js';
import { CliError, collect } from '../errors.js';

export interface RunOptions {
  cwd?: string;
  shell?: string;
  logFile?: string;
  deny: string[];
  escalate: string[];
  default: DecisionAction;
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .summary('run a bash script with every exec decided by the escalation server')
    .description(
      'Start an escalation server, run the patched bash -c SCRIPT under it with this terminal\'s stdio, and exit with the script\'s status.\n' +
        'Every execve the shell makes goes through codex-execve-wrapper and is decided Run (in place), Escalate (run by the server) or Deny (exit 126).',
    )
    .argument('<script>', 'the bash script to run (pass it after --)')
    .argument('[args...]', 'positional parameters for the script ($0 $1 ...)')
    .option('--cwd <dir>', 'working directory for the script (default: current directory)')
    .option('--shell <path>', 'patched bash to use (default: the cached build, built on first use)')
    .option('--log-file <file>', 'append audit JSON lines here instead of stderr')
    .option('--deny <prefix>', 'deny commands starting with these words, e.g. --deny "git push" (repeatable)', collect, [])
    .option('--escalate <prefix>', 'escalate commands starting with these words (repeatable)', collect, [])
    .addOption(new Option('--default <action>', 'decision when nothing matched').choices(['run', 'deny']).default('run'))
    .addHelpText(
      'after',
      '\nPrefixes match the basename of the resolved program followed by its arguments: --deny "rm -rf" denies /bin/rm -rf x.\n' +
        'Symlinks are followed (/bin/sh is dash on Debian); --deny also matches the name the command was invoked by.\n' +
        'Examples:\n  codex-escalate run -- \'echo hello | tr a-z A-Z\'\n  codex-escalate run --deny "git push" --log-file audit.jsonl -- ./ci.sh',
    )
    .action(async (script: string, args: string[], opts: RunOptions) => {
      process.exitCode = await runCommand(script, args, opts);
    });
}

export async function runCommand(script: string, args: readonly string[], opts: RunOptions): Promise<number> {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new CliError(`--cwd ${cwd}: not a directory`);
  const wrapperPath = defaultWrapperPath();
  if (!existsSync(wrapperPath)) throw new CliError(`wrapper not found at ${wrapperPath}: run "npm install" (or "make -C wrapper") in the package, or "codex-escalate doctor"`);
  const shell = opts.shell
    ? path.resolve(opts.shell)
    : await ensurePatchedBash({ onProgress: (line) => process.stderr.write(`[build-bash] ${line}\n`) });

  const logger = createAuditLogger({ file: opts.logFile });
  let policy;
  try {
    policy = createStaticPolicy({ deny: opts.deny, escalate: opts.escalate, defaultAction: opts.default });
  } catch (err) {
    throw new CliError(`bad --deny/--escalate pattern: ${(err as Error).message}`);
  }
  const server = new EscalationServer({ policy, logger, wrapperPath, shellPath: shell });
  const running = await launchShell(server, { command: shell, args: ['-c', script, ...args], cwd });
  // The terminal sends Ctrl-C to the shell too; we wait for the shell to react instead of dying first.
  const forward = (sig: NodeJS.Signals) => () => {
    if (sig !== 'SIGINT') running.child.kill(sig);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    const result = await running.done;
    return result.exitCode;
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
    await server.close();
    logger.flush();
  }
}
