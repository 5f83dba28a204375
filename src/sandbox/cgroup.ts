/**
 * Per-session process containment: where the sandboxed shell and the
 * escalated commands live, so that the server can (a) freeze everything the
 * session started while a human answers a question on the shared terminal,
 * and (b) end every descendant of an escalated command when the session ends
 * (setsid, double forks and nohup included).
 *
 * Preferred: cgroup v2. One directory per session under our own cgroup,
 *   codex-escalate-<pid>-<session>/{sandbox,escalated}
 * The shell (bwrap and all it starts) and each escalated command are born in
 * `sandbox` and `escalated` (spawnProcess cgroupDirFd: clone3
 * CLONE_INTO_CGROUP), or join them in the spawned child before exec where
 * clone3 is refused (cgroupFd); child_process.spawn callers use a /bin/sh
 * trampoline (wrapLaunch).
 * Freezing the session directory freezes both (cgroup.freeze, verified in
 * cgroup.events); ending writes cgroup.kill. Membership is inherited and
 * cannot be left without writing to cgroupfs, which the sandbox sees
 * read-only (an escalated command runs as us and could; it was approved).
 *
 * Fallback (no writable cgroup v2): signals. Freeze = SIGSTOP every process
 * of the shell's process tree, verified stopped in /proc/PID/stat, repeated
 * until no new process appears. End = SIGKILL every process whose session
 * id, process group or ancestry leads to an escalated command. Not covered
 * by the fallback: a process that both calls setsid and is orphaned (e.g.
 * `setsid sleep 300 &`) escapes it, and with --sandbox none so does an
 * orphan of the shell tree for the freeze.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import type { SandboxFreezer } from '../policy/approval/types.js';
import type { Fd } from '../native/index.js';

export type ContainmentKind = 'cgroup2' | 'signals';

/** What a session needs from its containment (EscalationServerOptions.containment). */
export interface EscalatedContainment {
  /** Open `cgroup.procs` an escalated child joins before exec; undefined when there is no cgroup. */
  readonly escalatedCgroupFd: Fd | undefined;
  /** The same cgroup's directory, for spawning the child straight into it (spawnProcess cgroupDirFd). */
  readonly escalatedCgroupDirFd?: Fd | undefined;
  /** An escalated command started (the fallback tracks it by pid). */
  escalatedStarted(pid: number): void;
  /** Session end: kill every process left in the session (after the leaders were terminated). Never throws. */
  end(): Promise<void>;
  /**
   * The shell has exited: kill what is left of the sandbox side (background
   * jobs, daemons) before the session's socket closes, so none of them ever
   * sees "Connection refused" (docs/protocol.md, "Session end"). Never throws.
   */
  endSandbox?(): Promise<void>;
  /** Which mechanism is in use, for the session_start audit line. */
  describe?(): Record<string, unknown>;
}

const FREEZE_TIMEOUT_MS = 2000;
const EMPTY_TIMEOUT_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The cgroup2 mount point from /proc/self/mountinfo (`- cgroup2` fs type), undefined if none. */
export function findCgroup2Mount(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    if (mountPoint !== undefined) return mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return undefined;
}

/** Our own cgroup v2 path from the `0::` line of /proc/self/cgroup. */
export function ownCgroup2Path(procCgroup = readFileSync('/proc/self/cgroup', 'utf8')): string | undefined {
  const line = procCgroup.split('\n').find((l) => l.startsWith('0::'));
  if (line === undefined) return undefined;
  const p = line.slice(3).trim();
  return p.startsWith('/') ? p : undefined;
}

interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly session: number;
  readonly state: string;
  /** Clock ticks since boot at which it started (tells a reused pid apart). */
  readonly start: string;
}

/** /proc/PID/stat fields after the `(comm)` (which may hold spaces and parens). */
function readStat(pid: number): ProcInfo | undefined {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { pid, state: rest[0] ?? '?', ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]), start: rest[19] ?? '' };
}

function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readStat(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/** `root` and every live descendant of it, by ppid. */
function processTree(root: number, procs = allProcesses()): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const self = procs.find((p) => p.pid === root);
  const out: ProcInfo[] = self ? [self] : [];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!.pid) ?? []));
  return out;
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

const isStopped = (state: string): boolean => state === 'T' || state === 't' || state === 'Z' || state === 'X';

/** The session's containment; create one per session with SessionContainment.create. */
export class SessionContainment implements EscalatedContainment {
  /** Why the fallback is used (undefined with cgroup v2). */
  readonly fallbackReason: string | undefined;
  readonly freezer: SandboxFreezer;
  private escalated: SpawnFds | undefined;
  private sandbox: SpawnFds | undefined;
  private shellPid: number | undefined;
  /** Fallback: escalated leaders, pid -> start time. */
  private readonly escalatedPids = new Map<number, string>();
  private ended: Promise<void> | undefined;

  private constructor(
    readonly kind: ContainmentKind,
    /** The session's cgroup directory (cgroup2 only). */
    readonly dir: string | undefined,
    fallbackReason: string | undefined,
  ) {
    this.fallbackReason = fallbackReason;
    if (dir !== undefined) {
      this.escalated = openSpawnFds(path.join(dir, 'escalated'));
    }
    this.freezer = kind === 'cgroup2' ? this.cgroupFreezer() : this.signalFreezer();
  }

  /**
   * cgroup v2 when a child cgroup can be created under ours (and has cgroup.freeze), else the signal fallback.
   * `forceFallback` (testing, or an operator's choice) skips cgroup v2.
   */
  static create(label: string, opts: { forceFallback?: boolean } = {}): SessionContainment {
    if (opts.forceFallback) return new SessionContainment('signals', undefined, 'cgroup v2 disabled (CODEX_ESCALATE_CGROUP=off)');
    let dir: string | undefined;
    try {
      const mount = findCgroup2Mount();
      if (mount === undefined) return new SessionContainment('signals', undefined, 'no cgroup2 mount in /proc/self/mountinfo');
      const own = ownCgroup2Path();
      if (own === undefined) return new SessionContainment('signals', undefined, 'no "0::" line in /proc/self/cgroup');
      const safe = label.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
      sweepStale(path.join(mount, own));
      dir = path.join(mount, own, `codex-escalate-${process.pid}-${safe}`);
      mkdirSync(dir);
      mkdirSync(path.join(dir, 'sandbox'));
      mkdirSync(path.join(dir, 'escalated'));
      if (!existsSync(path.join(dir, 'cgroup.freeze'))) throw new Error('no cgroup.freeze (kernel < 5.2)');
      return new SessionContainment('cgroup2', dir, undefined);
    } catch (err) {
      if (dir !== undefined) removeTree(dir);
      return new SessionContainment('signals', undefined, `cgroup v2 not usable: ${(err as Error).message}`);
    }
  }

  get escalatedCgroupFd(): Fd | undefined {
    return this.escalated?.cgroupFd;
  }

  get escalatedCgroupDirFd(): Fd | undefined {
    return this.escalated?.cgroupDirFd;
  }

  /** The sandbox cgroup's cgroup.procs and directory, for spawnProcess (cgroupFd, cgroupDirFd); undefined without cgroup v2. */
  sandboxSpawnFds(): SpawnFds | undefined {
    if (this.dir === undefined) return undefined;
    this.sandbox ??= openSpawnFds(path.join(this.dir, 'sandbox'));
    return this.sandbox;
  }

  /** One line for the audit log: which mechanism, and why. */
  describe(): Record<string, unknown> {
    return { containment: this.kind, ...(this.dir !== undefined ? { cgroup: this.dir } : {}), ...(this.fallbackReason !== undefined ? { reason: this.fallbackReason } : {}) };
  }

  /**
   * The shell's launch command, made to join the sandbox cgroup before it
   * runs anything: `/bin/sh -c 'echo 0 > PROCS && exec "$@"'` (fds are kept).
   */
  wrapLaunch(command: string, args: readonly string[]): { command: string; args: string[] } {
    if (this.dir === undefined) return { command, args: [...args] };
    const procs = path.join(this.dir, 'sandbox', 'cgroup.procs');
    const script = 'echo 0 > "$0" || { echo "codex-escalate: cannot join the session cgroup $0" >&2; exit 126; }; exec "$@"';
    return { command: '/bin/sh', args: ['-c', script, procs, command, ...args] };
  }

  /** The launched shell's pid (the root of the fallback's process tree). */
  shellStarted(pid: number): void {
    this.shellPid = pid;
  }

  escalatedStarted(pid: number): void {
    if (this.kind === 'signals') this.escalatedPids.set(pid, readStat(pid)?.start ?? '');
  }

  end(): Promise<void> {
    this.ended ??= this.doEnd().catch(() => undefined);
    return this.ended;
  }

  async endSandbox(): Promise<void> {
    // bwrap has already ended them (its pid namespace dies with the shell); the fallback cannot find orphans.
    if (this.dir === undefined) return;
    await killCgroup(path.join(this.dir, 'sandbox')).catch(() => undefined);
  }

  private async doEnd(): Promise<void> {
    for (const fds of [this.escalated, this.sandbox]) {
      if (fds === undefined) continue;
      closeSync(fds.cgroupFd);
      closeSync(fds.cgroupDirFd);
    }
    this.escalated = this.sandbox = undefined;
    if (this.dir !== undefined) {
      await killCgroup(this.dir);
      removeTree(this.dir);
      return;
    }
    // Fallback: everything in an escalated leader's session or group, or below it. Repeat: a dying parent may fork.
    for (let round = 0; round < 5 && this.escalatedPids.size > 0; round++) {
      const procs = allProcesses();
      const victims = new Set<number>();
      for (const [leader, start] of this.escalatedPids) {
        const now = procs.find((p) => p.pid === leader);
        // A pid is not reused while a group or session carries it; a different process under it means ours are all gone.
        if (now !== undefined && now.start !== start) continue;
        for (const p of procs) if (p.session === leader || p.pgrp === leader) victims.add(p.pid);
        for (const p of processTree(leader, procs)) victims.add(p.pid);
      }
      victims.delete(process.pid);
      if (victims.size === 0) break;
      for (const pid of victims) kill(pid, 'SIGKILL');
      await sleep(20);
    }
  }

  private cgroupFreezer(): SandboxFreezer {
    const dir = this.dir!;
    let depth = 0;
    return {
      kind: 'cgroup2',
      freeze: async () => {
        if (depth++ > 0) return;
        try {
          writeFileSync(path.join(dir, 'cgroup.freeze'), '1');
          const deadline = Date.now() + FREEZE_TIMEOUT_MS;
          while (!/^frozen 1$/m.test(readFileSync(path.join(dir, 'cgroup.events'), 'utf8'))) {
            if (Date.now() > deadline) throw new Error(`the session did not freeze within ${FREEZE_TIMEOUT_MS} ms`);
            await sleep(2);
          }
        } catch (err) {
          depth = 0;
          thawCgroup(dir);
          throw new Error(`could not freeze the sandbox: ${(err as Error).message}`, { cause: err });
        }
      },
      thaw: () => {
        if (depth > 0 && --depth === 0) thawCgroup(dir);
        return Promise.resolve();
      },
    };
  }

  private signalFreezer(): SandboxFreezer {
    let depth = 0;
    let stopped = new Set<number>();
    const resume = (): void => {
      for (const pid of stopped) kill(pid, 'SIGCONT');
      stopped = new Set();
    };
    return {
      kind: 'signals',
      freeze: async () => {
        if (depth++ > 0) return;
        try {
          const root = this.shellPid;
          if (root === undefined) throw new Error('the shell has not started');
          const deadline = Date.now() + FREEZE_TIMEOUT_MS;
          // Stop, verify, and look again: a process may have forked before its stop landed.
          for (;;) {
            const tree = processTree(root).filter((p) => p.pid !== process.pid);
            const fresh = tree.filter((p) => !stopped.has(p.pid));
            for (const p of fresh) {
              kill(p.pid, 'SIGSTOP');
              stopped.add(p.pid);
            }
            const now = tree.map((p) => readStat(p.pid) ?? { ...p, state: 'X' });
            // A vfork parent (dash uses vfork) sleeps uninterruptibly until its child execs: with the child stopped it cannot run either.
            const stoppedChild = new Set(now.filter((p) => isStopped(p.state)).map((p) => p.ppid));
            const running = now.filter((p) => !isStopped(p.state) && !(p.state === 'D' && stoppedChild.has(p.pid)));
            if (fresh.length === 0 && running.length === 0) return;
            if (Date.now() > deadline) {
              const which = running.slice(0, 5).map((p) => `${p.pid} (${readStat(p.pid)?.state ?? '?'})`);
              throw new Error(`${running.length} process(es) of the sandbox did not stop within ${FREEZE_TIMEOUT_MS} ms: ${which.join(', ')}`);
            }
            await sleep(2);
          }
        } catch (err) {
          depth = 0;
          resume();
          throw new Error(`could not freeze the sandbox: ${(err as Error).message}`, { cause: err });
        }
      },
      thaw: () => {
        if (depth > 0 && --depth === 0) resume();
        return Promise.resolve();
      },
    };
  }
}

/** What spawnProcess needs to start a child in a cgroup: its cgroup.procs (the join fallback) and its directory (born inside). */
export interface SpawnFds {
  readonly cgroupFd: Fd;
  readonly cgroupDirFd: Fd;
}

/** Both opened close-on-exec (libuv's openSync): no child inherits them. */
function openSpawnFds(cgroupDir: string): SpawnFds {
  const cgroupFd = openSync(path.join(cgroupDir, 'cgroup.procs'), fsConstants.O_WRONLY);
  try {
    return { cgroupFd, cgroupDirFd: openSync(cgroupDir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY) };
  } catch (err) {
    closeSync(cgroupFd);
    throw err;
  }
}

/**
 * Sessions of servers that died without ending them (SIGKILL): what is still
 * in there runs unattended, outside the sandbox. End it, remove the cgroup.
 */
function sweepStale(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent).filter((n) => n.startsWith('codex-escalate-'));
  } catch {
    return;
  }
  for (const name of names) {
    const owner = Number(/^codex-escalate-(\d+)-/.exec(name)?.[1]);
    if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || existsSync(`/proc/${owner}`)) continue;
    const dir = path.join(parent, name);
    try {
      writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    } catch {
      // Kernel without cgroup.kill: the members stay; rmdir below then fails and the directory is left.
    }
    removeTree(dir);
  }
}

function thawCgroup(dir: string): void {
  try {
    writeFileSync(path.join(dir, 'cgroup.freeze'), '0');
  } catch {
    // Removed meanwhile.
  }
}

function cgroupPids(dir: string): number[] {
  const pids: number[] = [];
  const walk = (d: string): void => {
    try {
      for (const l of readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l !== '') pids.push(Number(l));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
    } catch {
      // Gone.
    }
  };
  walk(dir);
  return pids;
}

/** cgroup.kill (kernel >= 5.14), else SIGKILL each member of the frozen cgroup; then wait until empty (bounded). */
async function killCgroup(dir: string): Promise<void> {
  let viaKillFile = false;
  try {
    writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    viaKillFile = true;
  } catch {
    // Older kernel: freeze (no forks while we kill), kill each, thaw so the kills are delivered.
  }
  const deadline = Date.now() + EMPTY_TIMEOUT_MS;
  for (;;) {
    const pids = cgroupPids(dir);
    if (pids.length === 0) return;
    if (!viaKillFile) {
      writeFileSync(path.join(dir, 'cgroup.freeze'), '1');
      for (const pid of pids) kill(pid, 'SIGKILL');
      thawCgroup(dir);
    }
    if (Date.now() > deadline) return;
    await sleep(10);
  }
}

/** rmdir the session cgroup, children first; a cgroup still populated stays (and the error is swallowed). */
function removeTree(dir: string): void {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(path.join(dir, e.name));
    rmdirSync(dir);
  } catch {
    // Not there, or not empty.
  }
}
