import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EscalationServer, type DecisionRecord, type EscalatedExitRecord } from '../../src/server/escalation-server.js';
import { launchShell } from '../../src/server/run-shell.js';
import type { EscalationPolicy, ExecRequest, PolicyDecision } from '../../src/policy/types.js';
import { findPatchedBash } from '../../src/shell/patched-bash.js';
import { defaultWrapperPath } from '../../src/paths.js';
import { createAuditLogger, type AuditLogger } from '../../src/server/audit-log.js';

export function patchedBash(): string {
  const p = findPatchedBash();
  if (!p) throw new Error('patched bash not built: the global setup should have built it (bash scripts/build-bash.sh)');
  return p;
}

export const wrapperPath = defaultWrapperPath();

export function tempDir(prefix = 'cse-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A policy from a plain function, recording every request it was asked about. */
export function recordingPolicy(fn: (r: ExecRequest) => PolicyDecision | Promise<PolicyDecision> = () => ({ action: 'run' })) {
  const requests: ExecRequest[] = [];
  const policy: EscalationPolicy = {
    decide(r) {
      requests.push(r);
      return fn(r);
    },
  };
  return { policy, requests };
}

export interface BashRun {
  stdout: string;
  stderr: string;
  exitCode: number;
  decisions: DecisionRecord[];
  exits: EscalatedExitRecord[];
  server: EscalationServer;
}

/** Run `patched-bash -c script` in a fresh session with piped stdio and collect everything. */
export async function runBash(
  script: string,
  opts: { policy: EscalationPolicy; cwd?: string; stdin?: string; env?: NodeJS.ProcessEnv; logger?: AuditLogger; args?: string[] },
): Promise<BashRun> {
  const decisions: DecisionRecord[] = [];
  const exits: EscalatedExitRecord[] = [];
  const bash = patchedBash();
  const server = new EscalationServer({
    policy: opts.policy,
    wrapperPath,
    shellPath: bash,
    logger: opts.logger ?? createAuditLogger({ level: 'silent' }),
    observer: { decided: (d) => decisions.push(d), escalatedExited: (e) => exits.push(e) },
  });
  const r = await runInSession(server, script, {
    ...opts,
    env: opts.env ?? { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: os.tmpdir(), LC_ALL: 'C' },
  });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode, decisions, exits, server };
}

/**
 * Launch `patched-bash -c script` in a new session of `server` with piped
 * stdio, feed stdin, and resolve once the session has ended and stdout and
 * stderr are fully drained.
 */
export async function runInSession(
  server: EscalationServer,
  script: string,
  opts: { cwd?: string; stdin?: string; env: NodeJS.ProcessEnv; args?: readonly string[] },
): Promise<{ stdout: string; stderr: string; exitCode: number; sessionId: string }> {
  const running = await launchShell(server, {
    command: patchedBash(),
    args: ['-c', script, 'bash', ...(opts.args ?? [])],
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    env: opts.env,
    stdio: 'pipe',
  });
  let stdout = '';
  let stderr = '';
  running.child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  running.child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise((r) => running.child.once('close', r));
  running.child.stdin!.on('error', () => {}).end(opts.stdin ?? '');
  const result = await running.done;
  await closed; // stdout/stderr fully drained
  return { stdout, stderr, exitCode: result.exitCode, sessionId: running.session.id };
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Run a command with a hard wall-clock bound; resolves with status and output. */
export function runBounded(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; stdio3?: number; timeoutMs?: number; cwd?: string } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? {},
      cwd: opts.cwd,
      stdio: opts.stdio3 === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', opts.stdio3],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 5000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}
