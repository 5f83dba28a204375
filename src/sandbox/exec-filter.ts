import { spawnSync } from 'node:child_process';

let probed: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Can a process here install the direct-exec filter (seccomp with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER)? Asked of the wrapper itself
 * (`--probe-exec-filter`, in a child that then exits), once per process:
 * old kernels and some container runtimes refuse user notification.
 */
export function execFilterUsable(wrapperPath: string): { ok: true } | { ok: false; reason: string } {
  if (probed) return probed;
  const r = spawnSync(wrapperPath, ['--probe-exec-filter'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) probed = { ok: true };
  else probed = { ok: false, reason: `seccomp user notification refused here: ${(r.stdout || r.stderr || String(r.error ?? 'probe failed')).trim().split('\n')[0]}` };
  return probed;
}

export type DirectExecsMode = 'auto' | 'on' | 'off';

/**
 * Whether a session decides direct execs (layer 2). auto: where it costs
 * nothing, that is inside bwrap (no_new_privs is set there anyway) or as
 * root (CAP_SYS_ADMIN needs no no_new_privs); --sandbox none as another user
 * would need no_new_privs on every Run'd program, so setuid programs (sudo,
 * su, passwd) would lose their privileges: only with `on`.
 */
export function directExecsEnabled(mode: DirectExecsMode, sandboxed: boolean, wrapperPath: string, warn: (message: string) => void): boolean {
  if (mode === 'off') return false;
  if (mode === 'auto' && !sandboxed && process.geteuid?.() !== 0) {
    warn('--sandbox none as a non-root user: only the shell\'s execs are decided (--direct-execs on decides every exec, but sets no_new_privs: setuid programs lose their privileges)');
    return false;
  }
  const usable = execFilterUsable(wrapperPath);
  if (!usable.ok) {
    warn(`${usable.reason}: only the shell's execs are decided, not those programs make directly`);
    return false;
  }
  return true;
}
