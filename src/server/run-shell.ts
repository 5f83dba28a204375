import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import type { EscalationServer, EscalationSession } from './escalation-server.js';
import { SHELL_SOCKET_FD } from './escalation-server.js';
import { searchPath } from '../paths.js';
import { markCloexecFrom, sendSignal, setCloexec, spawnProcess, waitForExit, type Fd } from '../native/index.js';

export interface ShellLaunch {
  /** Executable to spawn (the patched bash, or a sandbox launcher such as bwrap). */
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  /** Base environment (default: this process's); the session overlay is merged on top. */
  readonly env?: NodeJS.ProcessEnv;
  /** stdio for fds 0-2 (default: inherit). The escalation socket is always added as fd SHELL_SOCKET_FD. */
  readonly stdio?: 'inherit' | 'pipe' | 'ignore' | readonly ['inherit' | 'pipe' | 'ignore' | number, 'inherit' | 'pipe' | 'ignore' | number, 'inherit' | 'pipe' | 'ignore' | number];
  readonly sessionId?: string;
  /** Further fds for the child, placed at 3, 4, ... (e.g. a sandbox's seccomp program). */
  readonly extraFds?: readonly number[];
}

export interface ShellResult {
  /** Exit status as a shell reports it (128+N for death by signal N). */
  readonly exitCode: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly session: EscalationSession;
}

export interface RunningShell {
  readonly child: ChildProcess;
  readonly session: EscalationSession;
  /** Resolves once the shell exited and the session has ended (escalated commands terminated). */
  readonly done: Promise<ShellResult>;
}

/**
 * spawn() whose child starts with only the fds in `stdio`. Node's spawn passes
 * on every fd this process holds without O_CLOEXEC (those it inherited: a
 * caller's pipe at fd 251, another session's socket): mark them all
 * close-on-exec for the spawn, then put back what we changed, so this
 * process's other children still get them. libuv dups the fds named in
 * `stdio` into place, which clears the flag on the child's copies. spawn()
 * returns once the child has exec'd (or failed), so restoring is safe then.
 */
function spawnOnlyGiven(command: string, args: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  let changed: number[];
  try {
    changed = markCloexecFrom(3);
  } catch (err) {
    // Fail closed: a shell that might inherit stray fds is not started.
    throw new Error(`cannot mark inherited fds close-on-exec: ${(err as Error).message}`, { cause: err });
  }
  try {
    return spawn(command, args, options);
  } finally {
    for (const fd of changed) {
      try {
        setCloexec(fd, false);
      } catch {
        // Closed meanwhile (another thread): nothing to restore.
      }
    }
  }
}

/** Start a session and spawn the shell in it, with the client socket as fd SHELL_SOCKET_FD. */
export async function launchShell(server: EscalationServer, launch: ShellLaunch): Promise<RunningShell> {
  const session = await server.startSession({ ...(launch.sessionId ? { id: launch.sessionId } : {}), cwd: launch.cwd ?? process.cwd() });
  const base = launch.stdio ?? 'inherit';
  const std = typeof base === 'string' ? [base, base, base] : [...base];
  const extra = launch.extraFds ?? [];
  if (3 + extra.length > SHELL_SOCKET_FD) throw new Error(`at most ${SHELL_SOCKET_FD - 3} extra fds`);
  // Fds between the extras and the socket stay closed in the child.
  const gap = Array.from({ length: SHELL_SOCKET_FD - 3 - extra.length }, () => 'ignore' as const);
  const stdio: StdioOptions = [...std, ...extra, ...gap, session.clientFd];
  let child: ChildProcess;
  try {
    child = spawnOnlyGiven(launch.command, [...launch.args], {
      cwd: launch.cwd,
      env: { ...(launch.env ?? process.env), ...session.env },
      stdio,
    });
  } catch (err) {
    await session.end();
    throw err;
  }
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const done = (async (): Promise<ShellResult> => {
    try {
      await spawned;
    } finally {
      session.shellSpawned();
    }
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode]);
      else child.once('exit', (c, s) => resolve([c, s]));
    });
    const exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1);
    await session.end({ exitCode });
    return { exitCode, code, signal, session };
  })();
  done.catch(() => session.end());
  return { child, session, done };
}

/** What launchShellDirect needs beyond a ShellLaunch: the cgroup the shell is born in (stdio is always this process's 0-2). */
export interface DirectShellLaunch extends Omit<ShellLaunch, 'stdio'> {
  /** The sandbox cgroup (SessionContainment.sandboxSpawnFds): the shell starts inside it, nothing of it runs outside. */
  readonly cgroup?: { readonly cgroupFd: Fd; readonly cgroupDirFd: Fd } | undefined;
}

export interface RunningDirectShell {
  readonly pid: number;
  readonly session: EscalationSession;
  /** Resolves once the shell exited and the session has ended. */
  readonly done: Promise<{ readonly exitCode: number; readonly session: EscalationSession }>;
  /** Signal the shell (nothing once it has exited: its pidfd is gone, no other process can be hit). */
  kill(signal: NodeJS.Signals): void;
}

/**
 * launchShell for the CLI: the shell is spawned by the addon (clone(CLONE_VM|CLONE_VFORK): no copy of this
 * process's page tables, ~3 ms less than child_process at this heap size) and, given the sandbox cgroup, born
 * inside it (clone3 CLONE_INTO_CGROUP) instead of joining it through a /bin/sh trampoline, which costs an
 * exec and a cgroup migration (~6 ms waiting for an RCU grace period when cold). Only fds 0-2, the extras
 * and the session socket reach it, as with launchShell. The shell stays in this process's group (a terminal's
 * job control sees it as ours) and, as with child_process, outlives a killed server: its execs then fail closed.
 */
export async function launchShellDirect(server: EscalationServer, launch: DirectShellLaunch): Promise<RunningDirectShell> {
  const session = await server.startSession({ ...(launch.sessionId ? { id: launch.sessionId } : {}), cwd: launch.cwd ?? process.cwd() });
  const extra = launch.extraFds ?? [];
  if (3 + extra.length > SHELL_SOCKET_FD) throw new Error(`at most ${SHELL_SOCKET_FD - 3} extra fds`);
  const env = { ...(launch.env ?? process.env), ...session.env };
  let child: { pid: number; pidfd: Fd };
  try {
    child = spawnProcess({
      // A name without a slash is looked up on this process's PATH, as spawn() would; execve reports ENOENT otherwise.
      file: launch.command.includes('/') ? launch.command : (searchPath(launch.command) ?? launch.command),
      argv: [launch.command, ...launch.args],
      env: Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])),
      cwd: launch.cwd ?? process.cwd(),
      fdMap: [[0, 0], [1, 1], [2, 2], ...extra.map((fd, i) => [3 + i, fd] as const), [SHELL_SOCKET_FD, session.clientFd]],
      ...(launch.cgroup ?? {}),
      // As child_process starts it: a killed server leaves the shell running, its execs failing closed (fail-closed.test.ts).
      outliveParent: true,
    });
  } catch (err) {
    session.shellSpawned();
    await session.end();
    throw err;
  }
  session.shellSpawned();
  let exited = false;
  const done = (async () => {
    let exitCode: number;
    try {
      const st = await waitForExit(child.pid, child.pidfd);
      exitCode = st.code ?? (st.signal !== null ? 128 + st.signal : 1);
    } finally {
      // Set before any later macrotask (a relayed signal) can run: waitForExit has closed the pidfd.
      exited = true;
    }
    await session.end({ exitCode });
    return { exitCode, session };
  })();
  done.catch(() => session.end());
  return {
    pid: child.pid,
    session,
    done,
    kill: (signal) => {
      if (!exited) sendSignal(child.pidfd, constants.signals[signal]);
    },
  };
}
