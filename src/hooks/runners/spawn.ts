import { execa, type ResultPromise } from 'execa';
import type { CommandHook } from '../types.js';

/** stdout and stderr are each capped here; output past the cap blocks. */
export const OUTPUT_CAP_BYTES = 1024 * 1024;

/** How a command hook's `command` becomes file + args. */
export function commandLine(command: string | readonly string[]): { file: string; args: string[] } {
  if (typeof command === 'string') return { file: '/bin/sh', args: ['-c', command] };
  return { file: command[0]!, args: command.slice(1) };
}

/** Kill a detached child's whole process group; it may already be gone. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

/**
 * Start a hook process in its own process group (detached) so a timeout can
 * kill everything it started, not only the direct child.
 */
export function spawnHookProcess(
  hook: CommandHook,
  cwd: string,
  env: Record<string, string | undefined>,
  input?: string,
): ResultPromise {
  const { file, args } = commandLine(hook.command);
  return execa(file, args, {
    cwd,
    env,
    extendEnv: false,
    detached: true,
    buffer: false,
    reject: false,
    // We kill process groups ourselves; execa's own cleanup only reaches the direct child.
    cleanup: true,
    ...(input !== undefined ? { input } : { stdin: 'pipe' as const }),
    stdout: 'pipe',
    stderr: 'pipe',
  });
}
