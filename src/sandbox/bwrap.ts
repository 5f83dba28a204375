import { execFileSync } from 'node:child_process';
import { closeSync, openSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { terminalInjectionFilter } from './seccomp.js';

export interface BwrapProfile {
  /** Writable inside the sandbox (the working directory is always writable). */
  readonly cwd: string;
  readonly writable?: readonly string[];
  /**
   * Paths that must stay reachable (read-only) — the patched bash and the
   * wrapper. Only those under /tmp need it: everything else is visible
   * through the read-only root, but /tmp is replaced by a private tmpfs.
   */
  readonly readable?: readonly string[];
  /** Keep the host network (default: own, empty network namespace). */
  readonly network?: boolean;
  /** bwrap executable (default: `bwrap` on PATH). */
  readonly bwrap?: string;
}

export interface SandboxedLaunch {
  readonly command: string;
  readonly args: string[];
  /** Fds the launcher must give the child, in order from fd 3 (the escalation socket sits higher, at SHELL_SOCKET_FD). */
  readonly extraFds: number[];
  /** Release what the launch held (the seccomp program's fd). */
  release(): void;
}

let probe: { ok: true } | { ok: false; reason: string } | undefined;

/** Does bubblewrap work here (installed, and user namespaces allowed)? Probed once. */
export function bwrapUsable(bwrap = 'bwrap'): { ok: true } | { ok: false; reason: string } {
  if (probe) return probe;
  try {
    execFileSync(bwrap, ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-net', '--unshare-pid', '--die-with-parent', '/bin/true'], {
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
 * directory (and any extra paths), private /tmp, own network and pid
 * namespaces, dies with the server, inherited fds (the escalation socket)
 * passed through, terminal-injection ioctls blocked by seccomp.
 */
export function bwrapLaunch(command: string, args: readonly string[], profile: BwrapProfile): SandboxedLaunch {
  const a: string[] = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'];
  for (const p of profile.readable ?? []) {
    const abs = path.resolve(p);
    if (abs === '/tmp' || abs.startsWith('/tmp/')) a.push('--ro-bind', abs, abs);
  }
  // After the /tmp tmpfs, so a working directory under /tmp is the real one.
  for (const dir of [profile.cwd, ...(profile.writable ?? [])]) {
    const abs = path.resolve(dir);
    a.push('--bind', abs, abs);
  }
  a.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--chdir', path.resolve(profile.cwd));
  if (!profile.network) a.push('--unshare-net');
  const extraFds: number[] = [];
  let release = () => {};
  const filter = terminalInjectionFilter();
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
