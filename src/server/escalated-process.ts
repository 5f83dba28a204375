import { constants } from 'node:os';
import { wireStringToBytes } from '../protocol/codec.js';
import { sendSignal, spawnProcess, waitForExit, type ExitStatus, type Fd } from '../native/index.js';

export interface EscalatedSpawn {
  /** Absolute, resolved program to execute (wire string form). */
  readonly program: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly workdir: string;
  /** target fd number in the child -> fd received from the wrapper. */
  readonly fdMap: ReadonlyArray<readonly [number, Fd]>;
  /** Exec this O_PATH handle (the exact file decided on) instead of the path. */
  readonly execFd?: Fd;
  /** Nice value for the command (undoes a priority boost of the server). */
  readonly nice?: number;
  /** Open cgroup.procs the command joins before exec: its descendants stay findable (setsid, double forks). */
  readonly cgroupFd?: Fd;
  /** That cgroup's directory: the command is born in it (no migration; cgroupFd is the fallback). */
  readonly cgroupDirFd?: Fd;
}

/**
 * A command running outside the sandbox on behalf of a wrapper. It gets its
 * own session (setsid): it keeps the caller's terminal as its stdio without
 * job-control stops, and the whole tree can be signalled as one group.
 * Descendants that leave the group (setsid) are ended through the session's
 * containment (cgroup) when the session ends.
 */
export class EscalatedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  private readonly pidfd: Fd;
  private done = false;

  constructor(spec: EscalatedSpawn) {
    const { pid, pidfd } = spawnProcess({
      file: wireStringToBytes(spec.program),
      argv: spec.argv.map(wireStringToBytes),
      env: Object.entries(spec.env).map(([k, v]) => wireStringToBytes(`${k}=${v}`)),
      cwd: wireStringToBytes(spec.workdir),
      fdMap: spec.fdMap,
      setsid: true,
      ...(spec.execFd !== undefined ? { execFd: spec.execFd } : {}),
      ...(spec.nice !== undefined ? { nice: spec.nice } : {}),
      ...(spec.cgroupFd !== undefined ? { cgroupFd: spec.cgroupFd } : {}),
      ...(spec.cgroupFd !== undefined && spec.cgroupDirFd !== undefined ? { cgroupDirFd: spec.cgroupDirFd } : {}),
    });
    this.pid = pid;
    this.pidfd = pidfd;
    this.exited = waitForExit(pid, pidfd).finally(() => {
      this.done = true;
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Signal the whole process group the command leads (its descendants too). */
  signalGroup(signal: NodeJS.Signals | number): void {
    if (this.done) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // The group may already be gone; fall back to the leader via its pidfd.
      try {
        sendSignal(this.pidfd, typeof signal === 'number' ? signal : osSignal(signal));
      } catch {
        // Exited meanwhile.
      }
    }
  }

  /** SIGTERM the group, then SIGKILL what is left after the grace period. */
  async terminate(graceMs = 1000): Promise<ExitStatus> {
    this.signalGroup('SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      // Descendants that ignored SIGTERM and outlived the leader.
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // None left.
      }
    }
  }
}

function osSignal(name: NodeJS.Signals): number {
  return (constants.signals as Record<string, number | undefined>)[name] ?? constants.signals.SIGTERM;
}

/** SIGTSTP and friends are discarded by the kernel for an orphaned process group like ours: stop it with SIGSTOP instead. */
export function relayableSignal(signal: number): number {
  const s = constants.signals;
  if (signal === s.SIGTSTP || signal === s.SIGTTIN || signal === s.SIGTTOU) return s.SIGSTOP;
  return signal;
}

/** Exit status as a shell reports it: the code, or 128+N for death by signal N (upstream says 127). */
export function shellExitCode(status: ExitStatus): number {
  if (status.code !== null) return status.code;
  if (status.signal !== null) return 128 + status.signal;
  return 127;
}
