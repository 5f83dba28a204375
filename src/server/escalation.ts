import { accessSync, closeSync, constants as fsConstants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { bytesToWireString, wireStringToBytes } from '../protocol/codec.js';
import type { PolicyDecision } from '../policy/types.js';
import { openPath, peerCredentials, type Fd } from '../native/index.js';
import { OwnedFds } from './owned-fds.js';
import { fdPath, type ResolvedRequest } from './resolve-request.js';
import { applyGitSafeMode, type GitSafeOptions } from '../sandbox/git-safe-mode.js';

/** Everything needed to run an approved escalation, checked before the wrapper is told "Escalate". */
export interface EscalationPlan {
  /** Absolute, resolved program (wire string). */
  readonly program: string;
  /** argv as it will run: argv[0] is the basename of `program` unless the requester's already named it (see argv0Replaced). */
  readonly argv: readonly string[];
  /** Set when the requester's argv[0] named another program than the one matched and run (audited as argv0_replaced). */
  readonly argv0Replaced?: { readonly from: string; readonly to: string };
  readonly env: Readonly<Record<string, string>>;
  /** Variables removed by the environment filter (audited). */
  readonly envDropped: readonly string[];
  readonly workdir: string;
  /** O_PATH handle on the checked working directory (same inode as the requester's cwd): the command is started in it, not in whatever the path names later. */
  readonly workdirFd: Fd;
  /** O_PATH handle on the program: the exact file that was decided on. */
  readonly programFd: Fd;
  /** A `#!` script: the kernel cannot run it from an O_PATH fd, so it is run by path after an identity check. */
  readonly isScript: boolean;
  /** Release what the plan owns (the workdir fd, a rewrite's own program fd). */
  release(): void;
}

export interface EscalationChecks {
  /** Compare the claimed workdir with the requesting process's real cwd (default true). */
  readonly verifyWorkdir: boolean;
  readonly filterEnv: (env: Readonly<Record<string, string>>) => { env: Record<string, string>; dropped: string[] };
  /** Neutralise workspace git config and hooks for an escalated git (src/sandbox/git-safe-mode.ts); absent = off. */
  readonly gitSafe?: GitSafeOptions | undefined;
  /**
   * The patched bash by identity. Inside bwrap it is mounted over the system
   * shells (/bin/sh, /usr/bin/bash...), so there /usr/bin/dash names it while
   * outside the name is dash: an escalated `sh -c` then runs this file (ours,
   * not the sandbox's), as the requester saw it.
   */
  readonly sandboxShell?: { readonly dev: number; readonly ino: number } | undefined;
}

export type Prepared = { ok: true; plan: EscalationPlan } | { ok: false; reason: string };

/**
 * Safety checks for crossing out of the sandbox. The sandbox is untrusted:
 * the program must be the file the decision was about, the working
 * directory must be real and the requester's own, and the environment is
 * filtered. Any failure is a deny, before any fd is handed over.
 */
export function prepareEscalation(request: ResolvedRequest, decision: PolicyDecision, peerFd: Fd, checks: EscalationChecks): Prepared {
  let programFd: Fd | undefined = request.programFd;
  let program = request.program;
  let argv = request.argv;
  // What the plan owns (a rewrite's program fd, the workdir fd): released together by plan.release() or on a deny.
  const owned = new OwnedFds();
  const release = () => owned.closeAll();
  const fail = (reason: string): Prepared => {
    release();
    return { ok: false, reason: `cannot escalate: ${reason}` };
  };
  if (decision.rewrite) {
    program = decision.rewrite.program;
    argv = decision.rewrite.argv;
    try {
      programFd = openPath(wireStringToBytes(program));
    } catch (err) {
      return { ok: false, reason: `cannot escalate: ${program}: ${(err as NodeJS.ErrnoException).code ?? 'cannot open'}` };
    }
    owned.add(programFd);
    // The rules checked this path: it must still name the file we now hold.
    if (bytesToWireString(fdPath(programFd)) !== program) return fail(`${program} changed after the decision`);
  }
  let workdirFd: Fd;
  if (!request.resolved || programFd === undefined) return fail(request.resolveError ?? 'program not found');
  // bash always passes argv[0]; argc == 0 only comes from a raw client, and is an exploit primitive (pkexec, CVE-2021-4034).
  if (argv.length === 0) return fail('empty argv (argc 0)');

  const viaFd = `/proc/self/fd/${programFd}`;
  let held: Stats;
  try {
    held = fstatSync(programFd);
    if (!held.isFile()) return fail(`${program} is not a regular file`);
    accessSync(viaFd, fsConstants.X_OK);
  } catch {
    return fail(`${program} is not executable`);
  }
  const isScript = startsWithShebang(viaFd);

  const workdirBytes = wireStringToBytes(request.workdir);
  let workdirStat: Stats;
  try {
    workdirFd = openPath(workdirBytes);
    owned.add(workdirFd);
    workdirStat = fstatSync(workdirFd);
  } catch {
    return fail(`working directory ${request.workdir} does not exist`);
  }
  if (!workdirStat.isDirectory()) return fail(`working directory ${request.workdir} is not a directory`);
  if (checks.verifyWorkdir) {
    const mismatch = peerViewMismatch(workdirStat, request.workdir, program, held, peerFd, checks.sandboxShell);
    if (mismatch) return fail(mismatch);
  }
  // The rules matched the path: in our view it must name the file we hold and will run. A handle
  // from the requester may be a file of its own mounts (its private /tmp) that only shares the name.
  const isSandboxShell = checks.sandboxShell !== undefined && held.dev === checks.sandboxShell.dev && held.ino === checks.sandboxShell.ino;
  if (!isSandboxShell && !sameFile(program, programFd)) return fail(`${program} is not the same file in the requester's view of the filesystem as outside the sandbox`);
  // Programs read argv[0] (git-clone, busybox applets, `exec -a`): it must be the name the rules matched.
  const matchedName = path.posix.basename(program);
  let argv0Replaced: { from: string; to: string } | undefined;
  if (path.posix.basename(argv[0]!) !== matchedName) {
    argv0Replaced = { from: argv[0]!, to: matchedName };
    argv = [matchedName, ...argv.slice(1)];
  }
  const { env, dropped } = checks.filterEnv(request.env);
  const safe = checks.gitSafe ? applyGitSafeMode({ program, argv, env, workdir: request.workdir, exec: isScript ? program : viaFd }, checks.gitSafe) : { ok: true as const, env };
  if (!safe.ok) return fail(safe.reason);
  return {
    ok: true,
    plan: { program, argv, ...(argv0Replaced ? { argv0Replaced } : {}), env: safe.env, envDropped: dropped, workdir: request.workdir, workdirFd, programFd, isScript, release },
  };
}

function startsWithShebang(viaFd: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(viaFd, 'r');
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x23 && head[1] === 0x21;
  } catch {
    return false; // execute-only binaries cannot be read, and are not scripts
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The requester may see another filesystem than the server (a sandbox's
 * private /tmp, its own mounts), where a path can name a different file.
 * Two checks through the requesting process (SO_PEERCRED), by device and
 * inode, never by text, so neither a lying client nor a differing view can
 * make one directory or program pass for another:
 *  - its real cwd (/proc/PID/cwd, which follows into its view) must be the
 *    directory the command will run in, as the server sees the workdir;
 *  - the program path, looked up from its root (/proc/PID/root), must be the
 *    very file the server decided on and will exec.
 */
function peerViewMismatch(
  workdir: Stats,
  workdirText: string,
  program: string,
  held: Stats,
  peerFd: Fd,
  sandboxShell: EscalationChecks['sandboxShell'],
): string | null {
  let pid: number;
  try {
    pid = peerCredentials(peerFd).pid;
  } catch (err) {
    return `cannot identify the requesting process (${(err as Error).message})`;
  }
  if (pid <= 0) return 'cannot identify the requesting process';
  let actual: Stats;
  try {
    actual = statSync(`/proc/${pid}/cwd`);
  } catch (err) {
    return `cannot verify the working directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (actual.dev !== workdir.dev || actual.ino !== workdir.ino) {
    return `working directory ${workdirText} is not the same directory outside the sandbox as the requester's cwd`;
  }
  try {
    const seen = statSync(Buffer.concat([Buffer.from(`/proc/${pid}/root`), wireStringToBytes(program)]));
    // Inside bwrap our own patched bash is mounted over the system shells (/usr/bin/dash, /usr/bin/bash):
    // a path there naming it shadows nothing the sandbox could plant, so the host file it names runs.
    const ours = sandboxShell !== undefined && seen.dev === sandboxShell.dev && seen.ino === sandboxShell.ino;
    if (!ours && (seen.dev !== held.dev || seen.ino !== held.ino)) return `${program} is not the same file in the requester's view of the filesystem`;
  } catch {
    return `${program} does not exist in the requester's view of the filesystem`;
  }
  return null;
}

/** For scripts run by path: the path must still name the file we hold. */
export function sameFile(path: string, fd: Fd): boolean {
  try {
    const a = statSync(wireStringToBytes(path));
    const b = fstatSync(fd);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}
