import { execFileSync } from 'node:child_process';
import { closeSync, openSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sandboxSeccompFilter } from './seccomp.js';

export interface BwrapProfile {
  /** Writable inside the sandbox (the working directory is always writable). */
  readonly cwd: string;
  readonly writable?: readonly string[];
  /**
   * Paths that must stay reachable (read-only) — the patched bash and the
   * wrapper. Only those under /tmp or /run need it: everything else is
   * visible through the read-only root, but those two are private tmpfs.
   */
  readonly readable?: readonly string[];
  /** Keep the host network (default: own, empty network namespace). */
  readonly network?: boolean;
  /** bwrap executable (default: `bwrap` on PATH). */
  readonly bwrap?: string;
  /**
   * The patched bash: bound read-only over the system shells (SYSTEM_SHELLS),
   * so `bash -c`, `sh -c`, `#!/bin/sh` scripts, system() and make recipes keep
   * sending their execs through the wrapper.
   */
  readonly shell?: string;
}

/** The shells a nested `bash -c`, `sh -c`, `#!` line or system() runs; replaced by the patched bash in the sandbox. */
export const SYSTEM_SHELLS = ['/bin/bash', '/usr/bin/bash', '/bin/sh', '/usr/bin/sh'] as const;

/**
 * Where to mount the patched bash so that every SYSTEM_SHELLS path runs it:
 * their real paths, deduplicated. A mount follows symlinks, so the real path
 * is what gets covered anyway: on merged-/usr Debian /bin is a link to
 * usr/bin, and /usr/bin/sh a link to dash, so the mounts land on
 * /usr/bin/bash and /usr/bin/dash (dash run by name is the patched bash too,
 * not in POSIX mode; run as sh it is). A missing shell is left alone.
 */
export function shellMountTargets(paths: readonly string[] = SYSTEM_SHELLS): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    try {
      out.add(realpathSync(p));
    } catch {
      // Not on this system: nothing to replace.
    }
  }
  return [...out];
}

export interface SandboxedLaunch {
  readonly command: string;
  readonly args: string[];
  /** Fds the launcher must give the child, in order from fd 3 (the escalation socket sits higher, at SHELL_SOCKET_FD). */
  readonly extraFds: number[];
  /** Release what the launch held (the seccomp program's fd). */
  release(): void;
}

/**
 * No capabilities and no way back to any: a user namespace (the caller's uid
 * maps to itself, so files written in the working directory stay the
 * caller's), every capability dropped (bounding set included, so a setuid
 * binary gains none), and no nested user namespace. Without these, root
 * keeps all capabilities inside and can simply remount / read-write.
 */
const CONFINE = ['--unshare-user', '--disable-userns', '--assert-userns-disabled', '--cap-drop', 'ALL'] as const;

let probe: { ok: true } | { ok: false; reason: string } | undefined;

/** Does bubblewrap work here (installed, and user namespaces allowed)? Probed once. */
export function bwrapUsable(bwrap = 'bwrap'): { ok: true } | { ok: false; reason: string } {
  if (probe) return probe;
  try {
    // The confinement flags bwrapLaunch relies on, so a bwrap too old for them is reported here, not at every run.
    execFileSync(bwrap, ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', ...CONFINE, '--unshare-net', '--unshare-pid', '--die-with-parent', '/bin/true'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 10_000,
    });
    probe = { ok: true };
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    probe = { ok: false, reason: e.code === 'ENOENT' ? 'bwrap is not installed (apt-get install bubblewrap)' : String(e.stderr ?? err).trim().split('\n')[0] ?? 'bwrap failed' };
  }
  return probe;
}

/**
 * Wrap `command args` in bubblewrap: read-only root, writable working
 * directory (and any extra paths), private /tmp and /run, read-only
 * /proc/sys, own user, network and pid namespaces, no capabilities, dies with
 * the server, inherited fds (the escalation socket) passed through, and the
 * seccomp program of seccomp.ts (terminal injection, mount and namespace
 * calls, ptrace and friends refused).
 */
export function bwrapLaunch(command: string, args: readonly string[], profile: BwrapProfile): SandboxedLaunch {
  const a: string[] = [
    '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc',
    // The sandbox's uid is the host's uid 0 when root runs us, and sysctl files are owner-writable for that uid with no
    // capability at all (kernel.core_pattern runs a program as host root). bwrap leaves /proc/sys writable here.
    '--ro-bind', '/proc/sys', '/proc/sys', '--ro-bind-try', '/proc/sysrq-trigger', '/proc/sysrq-trigger',
    '--tmpfs', '/tmp',
    // /run holds the host daemons' sockets (dbus, systemd, docker, ...). Connecting needs no write access to the
    // read-only root, and a daemon would see the peer as uid 0 and trust it: hide them all.
    '--tmpfs', '/run',
  ];
  if (profile.network) {
    // systemd-resolved and NetworkManager keep resolv.conf under /run; keep DNS working when the network is.
    const resolv = realResolvConf();
    if (resolv && underPrivate(resolv)) a.push('--ro-bind', resolv, resolv);
  }
  for (const p of profile.readable ?? []) {
    const abs = path.resolve(p);
    if (underPrivate(abs)) a.push('--ro-bind', abs, abs);
  }
  if (profile.shell !== undefined) {
    const shell = path.resolve(profile.shell);
    for (const target of shellMountTargets()) if (target !== shell) a.push('--ro-bind', shell, target);
  }
  // After the /tmp and /run tmpfs, so a working directory under them is the real one.
  for (const dir of [profile.cwd, ...(profile.writable ?? [])]) {
    const abs = path.resolve(dir);
    a.push('--bind', abs, abs);
  }
  a.push(...CONFINE, '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--chdir', path.resolve(profile.cwd));
  if (!profile.network) a.push('--unshare-net');
  const extraFds: number[] = [];
  let release = () => {};
  const filter = sandboxSeccompFilter();
  if (filter) {
    // bwrap reads the program from an fd; a short-lived file is the portable way to get one.
    const file = path.join(os.tmpdir(), `codex-escalate-seccomp-${process.pid}-${Date.now()}.bpf`);
    writeFileSync(file, filter, { mode: 0o600 });
    const fd = openSync(file, 'r');
    unlinkSync(file);
    extraFds.push(fd);
    a.push('--seccomp', String(3 + extraFds.length - 1));
    release = () => closeSync(fd);
  } else {
    // Unknown architecture: detach from the terminal instead (no job control, but no injection either).
    a.push('--new-session');
  }
  return { command: profile.bwrap ?? 'bwrap', args: [...a, '--', command, ...args], extraFds, release };
}

/** Paths the sandbox replaces with a private tmpfs. */
function underPrivate(abs: string): boolean {
  return ['/tmp', '/run'].some((d) => abs === d || abs.startsWith(`${d}/`));
}

function realResolvConf(): string | undefined {
  try {
    return realpathSync('/etc/resolv.conf');
  } catch {
    return undefined;
  }
}
