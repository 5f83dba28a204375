import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

type Probe = { ok: true } | { ok: false; reason: string };

let probed: Probe | undefined;
let probing: Promise<Probe> | undefined;

const refusal = (out: string): Probe => ({ ok: false, reason: `seccomp user notification refused here: ${out.trim().split('\n')[0]}` });

/**
 * Can a process here install the direct-exec filter (seccomp with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER)? Asked of the wrapper itself
 * (`--probe-exec-filter`, in a child that then exits), once per process:
 * old kernels and some container runtimes refuse user notification.
 */
export function execFilterUsable(wrapperPath: string): Probe {
  if (probed) return probed;
  const r = spawnSync(wrapperPath, ['--probe-exec-filter'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  probed = r.status === 0 ? { ok: true } : refusal(r.stdout || r.stderr || String(r.error ?? 'probe failed'));
  return probed;
}

/**
 * The same probe without blocking: `run` starts it first thing, so the child's few ms overlap the rest of the
 * start-up instead of adding to it (directExecsEnabled awaits it). Spawned by the addon (no copy of this
 * process's page tables, unlike child_process); only a refusal is asked again, for its message.
 */
export function probeExecFilter(wrapperPath: string): Promise<Probe> {
  if (probed) return Promise.resolve(probed);
  probing ??= (async (): Promise<Probe> => {
    let status: number | null = null;
    try {
      const { spawnProcess, waitForExit } = await import('../native/index.js');
      const devNull = openSync('/dev/null', 'r+');
      let child;
      try {
        const env = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
        child = spawnProcess({ file: wrapperPath, argv: [wrapperPath, '--probe-exec-filter'], env, cwd: '/', fdMap: [[0, devNull], [1, devNull], [2, devNull]] });
      } finally {
        closeSync(devNull);
      }
      status = (await waitForExit(child.pid, child.pidfd)).code;
    } catch {
      // Could not even start it: the synchronous probe below says why.
    }
    probed = status === 0 ? { ok: true } : execFilterUsable(wrapperPath);
    return probed;
  })();
  return probing;
}

export type DirectExecsMode = 'auto' | 'on' | 'off';

/**
 * Whether a session decides direct execs (layer 2). auto: where it costs
 * nothing, that is inside bwrap (no_new_privs is set there anyway) or as
 * root (CAP_SYS_ADMIN needs no no_new_privs); --sandbox none as another user
 * would need no_new_privs on every Run'd program, so setuid programs (sudo,
 * su, passwd) would lose their privileges: only with `on`.
 */
export async function directExecsEnabled(mode: DirectExecsMode, sandboxed: boolean, wrapperPath: string, warn: (message: string) => void): Promise<boolean> {
  if (mode === 'off') return false;
  if (mode === 'auto' && !sandboxed && process.geteuid?.() !== 0) {
    warn('--sandbox none as a non-root user: only the shell\'s execs are decided (--direct-execs on decides every exec, but sets no_new_privs: setuid programs lose their privileges)');
    return false;
  }
  const usable = await probeExecFilter(wrapperPath);
  if (!usable.ok) {
    warn(`${usable.reason}: only the shell's execs are decided, not those programs make directly`);
    return false;
  }
  return true;
}
