/**
 * src/sandbox/cgroup.ts and the native pieces under it, on real processes:
 * mountinfo / cgroup parsing, spawnProcess's cgroupFd (join before exec, or
 * no exec at all), the cgroup v2 and signal freezers, and session end.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnProcess, ttyFlushInput, ttyTakeOver, waitForExit } from '../../src/native/index.js';
import { findCgroup2Mount, ownCgroup2Path, SessionContainment } from '../../src/sandbox/cgroup.js';
import { waitFor } from '../helpers/e2e.js';

function state(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2)[0] ?? '?';
  } catch {
    return 'gone';
  }
}
/** Voluntary context switches: they only grow while the process runs. */
function switches(pid: number): number {
  const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? -1);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const live: SessionContainment[] = [];
afterEach(async () => {
  for (const c of live.splice(0)) await c.end();
});

describe('cgroup v2 discovery', () => {
  it('finds the cgroup2 mount in mountinfo (escaped paths too) and our own cgroup from the 0:: line', () => {
    const mountinfo = [
      '25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw',
      '31 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755',
      '41 31 0:38 / /sys/fs/cgroup/my\\040unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(findCgroup2Mount(mountinfo)).toBe('/sys/fs/cgroup/my unified');
    expect(findCgroup2Mount('25 30 0:23 / /sys rw - sysfs sysfs rw\n')).toBeUndefined();
    expect(ownCgroup2Path('4:memory:/x\n0::/user.slice/session-1.scope\n')).toBe('/user.slice/session-1.scope');
    expect(ownCgroup2Path('4:memory:/x\n')).toBeUndefined();
    // This machine (hybrid layout): discovered, never assumed.
    expect(findCgroup2Mount()).toBe('/sys/fs/cgroup/unified');
  });
});

describe('SessionContainment (cgroup v2 on this machine)', () => {
  it('an escalated spawn joins the session cgroup before exec; freeze stops it (verified), thaw resumes, end kills and removes', async () => {
    const c = SessionContainment.create(`unit-${Date.now()}`);
    live.push(c);
    expect(c.kind).toBe('cgroup2');
    expect(c.fallbackReason).toBeUndefined();
    const { pid, pidfd } = spawnProcess({ file: '/bin/sh', argv: ['sh', '-c', 'while :; do sleep 0.01; done'], env: [], cwd: '/', fdMap: [], setsid: true, cgroupFd: c.escalatedCgroupFd! });
    const exited = waitForExit(pid, pidfd);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::/${path.basename(c.dir!)}/escalated\n`);
    await c.freezer.freeze();
    const frozenAt = switches(pid);
    // The claim is "no progress for a while": a fixed window is the test here.
    await sleep(150);
    expect(switches(pid)).toBe(frozenAt);
    await c.freezer.thaw();
    await waitFor(() => switches(pid) > frozenAt, 'the thawed loop to run again');
    await c.end();
    expect((await exited).signal).toBe(9);
    expect(existsSync(c.dir!)).toBe(false);
  });

  it('fails closed: a cgroupFd the child cannot write means no exec (syscall "cgroup")', () => {
    const ro = openSync('/proc/self/stat', 'r');
    try {
      expect(() => spawnProcess({ file: '/bin/true', argv: ['true'], env: [], cwd: '/', fdMap: [], cgroupFd: ro })).toThrow(expect.objectContaining({ syscall: 'cgroup', code: 'EBADF' }));
    } finally {
      closeSync(ro);
    }
    expect(() => spawnProcess({ file: '/bin/true', argv: ['true'], env: [], cwd: '/', fdMap: [], cgroupFd: -2 })).toThrow(RangeError);
  });

  it('cgroupDirFd: the child is born in the cgroup (clone3 CLONE_INTO_CGROUP), not moved there by a cgroup.procs write', async () => {
    const c = SessionContainment.create(`unit-born-${Date.now()}`);
    live.push(c);
    const fds = c.sandboxSpawnFds()!;
    // A cgroup.procs stand-in that accepts the write and moves nothing: only being born inside puts the child there.
    const sink = openSync('/dev/null', 'w');
    try {
      const { pid, pidfd } = spawnProcess({ file: '/bin/sh', argv: ['sh', '-c', 'sleep 5'], env: [], cwd: '/', fdMap: [], cgroupFd: sink, cgroupDirFd: fds.cgroupDirFd });
      const exited = waitForExit(pid, pidfd);
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::/${path.basename(c.dir!)}/sandbox\n`);
      await c.end();
      expect((await exited).signal).toBe(9);
    } finally {
      closeSync(sink);
    }
    // The escalated side has its directory too (the executor passes both).
    const e = SessionContainment.create(`unit-born-esc-${Date.now()}`);
    live.push(e);
    const { pid, pidfd } = spawnProcess({ file: '/bin/sleep', argv: ['sleep', '5'], env: [], cwd: '/', fdMap: [], setsid: true, cgroupFd: e.escalatedCgroupFd!, cgroupDirFd: e.escalatedCgroupDirFd! });
    const exited = waitForExit(pid, pidfd);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::/${path.basename(e.dir!)}/escalated\n`);
    await e.end();
    expect((await exited).signal).toBe(9);
  });

  it('cgroupDirFd needs cgroupFd beside it (the join where clone3 is refused), and a bad directory fd fails the spawn', () => {
    const c = SessionContainment.create(`unit-born-bad-${Date.now()}`);
    live.push(c);
    expect(() => spawnProcess({ file: '/bin/true', argv: ['true'], env: [], cwd: '/', fdMap: [], cgroupDirFd: c.sandboxSpawnFds()!.cgroupDirFd })).toThrow(/given with cgroupFd/);
    const notDir = openSync('/proc/self/stat', 'r');
    try {
      // clone3 refuses a non-directory (EBADF/ENOTDIR...); the fallback then writes to this read-only fd: no exec either way.
      expect(() => spawnProcess({ file: '/bin/true', argv: ['true'], env: [], cwd: '/', fdMap: [], cgroupFd: notDir, cgroupDirFd: notDir })).toThrow();
    } finally {
      closeSync(notDir);
    }
  });

  it('wrapLaunch: the launched command is in the sandbox cgroup from its first instruction', async () => {
    const c = SessionContainment.create(`unit-launch-${Date.now()}`);
    live.push(c);
    const w = c.wrapLaunch('/bin/cat', ['/proc/self/cgroup']);
    const out = await new Promise<string>((resolve) => {
      const child = spawn(w.command, w.args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (s += d));
      child.on('close', () => resolve(s));
    });
    expect(out).toContain(`0::/${path.basename(c.dir!)}/sandbox\n`);
  });
});

describe('SessionContainment signal fallback', () => {
  it('says why it is used; freeze SIGSTOPs the whole tree (verified in /proc), thaw SIGCONTs it', async () => {
    const c = SessionContainment.create('unit-fallback', { forceFallback: true });
    live.push(c);
    expect(c.kind).toBe('signals');
    expect(c.escalatedCgroupFd).toBeUndefined();
    expect(c.describe()).toMatchObject({ containment: 'signals', reason: expect.stringContaining('CODEX_ESCALATE_CGROUP=off') });
    // No shell yet: nothing to freeze is an error, not a silent success.
    await expect(c.freezer.freeze()).rejects.toThrow(/could not freeze the sandbox: the shell has not started/);
    const child = spawn('/bin/sh', ['-c', '(while :; do sleep 0.01; done) & while :; do sleep 0.01; done'], { stdio: 'ignore' });
    const kids = await waitFor(() => {
      const k = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      return k === '' ? undefined : k.split(/\s+/).map(Number);
    }, 'the subshell to start');
    c.shellStarted(child.pid!);
    await c.freezer.freeze();
    expect(state(child.pid!)).toBe('T');
    // A `sleep 0.01` that exited just before the stop is a zombie until the (now stopped) shell reaps it.
    for (const k of kids) expect(['T', 'Z', 'gone']).toContain(state(k));
    await c.freezer.thaw();
    await waitFor(() => state(child.pid!) !== 'T', 'the shell to be running again');
    child.kill('SIGKILL');
    for (const k of kids) if (state(k) !== 'gone') process.kill(k, 'SIGKILL');
  });
});

describe('terminal helpers', () => {
  it('refuse a descriptor that is not a terminal (ENOTTY): the approver then denies', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      expect(() => ttyFlushInput(fd)).toThrow(expect.objectContaining({ code: 'ENOTTY', syscall: 'tcflush' }));
      expect(() => ttyTakeOver(fd)).toThrow(expect.objectContaining({ code: 'ENOTTY', syscall: 'tcgetattr' }));
    } finally {
      closeSync(fd);
    }
  });
});
