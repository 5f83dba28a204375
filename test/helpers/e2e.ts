/**
 * Helpers for the end-to-end suites (rules-e2e, hooks-e2e): one escalation
 * server reused across many shell sessions, the real CLI as a user runs it,
 * and a real pseudo-terminal for the tty approver.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';
import type { EscalationPolicy } from '../../src/policy/types.js';
import { createAuditLogger, type AuditLogger } from '../../src/server/audit-log.js';
import { EscalationServer, type DecisionRecord, type EscalatedExitRecord, type ServerObserver } from '../../src/server/escalation-server.js';
import { patchedBash, runInSession, wrapperPath } from './harness.js';

export const e2eFixtures = path.join(packageRoot, 'test', 'fixtures', 'e2e');
export const cliPath = path.join(packageRoot, 'bin', 'codex-escalate.js');

/** The environment shells and the CLI get: no inherited surprises (no EXEC_WRAPPER from an outer session). */
export function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: os.tmpdir(), LC_ALL: 'C', ...extra };
}

let isolatedHome: string | undefined;

/** baseEnv plus an empty CODEX_HOME, so no hooks file of the machine's user is discovered by the CLI. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  isolatedHome ??= mkdtempSync(path.join(os.tmpdir(), 'cse-e2e-codex-home-'));
  return baseEnv({ CODEX_HOME: isolatedHome, ...extra });
}

/** Observers called in order; each one's failure is the server's to log. */
export function combineObservers(...observers: readonly (ServerObserver | undefined)[]): ServerObserver {
  const list = observers.filter((o): o is ServerObserver => o !== undefined);
  return {
    async sessionStarted(s) {
      for (const o of list) await o.sessionStarted?.(s);
    },
    decided(r) {
      for (const o of list) o.decided?.(r);
    },
    escalatedExited(r) {
      for (const o of list) o.escalatedExited?.(r);
    },
    protocolError(i) {
      for (const o of list) o.protocolError?.(i);
    },
    async sessionEnded(s) {
      for (const o of list) await o.sessionEnded?.(s);
    },
  };
}

export interface SessionRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
  readonly sessionId: string;
  /** Decisions and escalated exits of this session only. */
  readonly decisions: DecisionRecord[];
  readonly exits: EscalatedExitRecord[];
}

export interface SessionOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly stdin?: string;
  readonly args?: readonly string[];
}

/** One EscalationServer (patched bash, built wrapper) serving many `bash -c` sessions. */
export class E2EServer {
  readonly server: EscalationServer;
  private readonly decisions: DecisionRecord[] = [];
  private readonly exits: EscalatedExitRecord[] = [];

  constructor(opts: { policy: EscalationPolicy; observer?: ServerObserver; logger?: AuditLogger }) {
    const bash = patchedBash();
    this.server = new EscalationServer({
      policy: opts.policy,
      wrapperPath,
      shellPath: bash,
      logger: opts.logger ?? createAuditLogger({ level: 'silent' }),
      observer: combineObservers({ decided: (d) => this.decisions.push(d), escalatedExited: (e) => this.exits.push(e) }, opts.observer),
    });
  }

  /** Run `patched-bash -c script` in a new session with piped stdio; resolves once the session has fully ended. */
  async run(script: string, opts: SessionOptions = {}): Promise<SessionRun> {
    const r = await runInSession(this.server, script, { ...opts, env: opts.env ?? baseEnv() });
    const id = r.sessionId;
    return {
      stdout: r.stdout,
      stderr: r.stderr,
      exitCode: r.exitCode,
      sessionId: id,
      decisions: this.decisions.filter((d) => d.request.sessionId === id),
      exits: this.exits.filter((e) => e.request.sessionId === id),
    };
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

export interface CliResult {
  /** Pid of the CLI process: the parent of every escalated command. */
  readonly pid: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** `node bin/codex-escalate.js ARGS...` as a user runs it (dist/ is compiled by the global setup), killed after timeoutMs. */
export function runCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; stdin?: string } = {}): Promise<CliResult> {
  const { child, result } = startCli(args, opts);
  child.stdin!.on('error', () => {}).end(opts.stdin ?? '');
  return result;
}

/** Like runCli, but hands back the child so a test can drive it while it runs. */
export function startCli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): { child: ChildProcess; result: Promise<CliResult> } {
  const child = spawn(process.execPath, [cliPath, ...args], { env: opts.env ?? cliEnv(), cwd: opts.cwd ?? packageRoot, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 20_000);
  const result = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ pid: child.pid ?? -1, code, signal, stdout, stderr, timedOut });
    });
  });
  return { child, result };
}

export interface PtyRun {
  readonly transcript: string;
  /** Exit status of the program on the pty (negative: killed by that signal). */
  readonly status: number;
  /** How many steps fired. */
  readonly steps: number;
  /** The transcript at the moment each step fired. */
  readonly snapshots: string[];
}

/**
 * Run argv on a fresh pseudo-terminal (its controlling terminal) with
 * test/fixtures/rules/pty-drive.py; each step waits until `text` has
 * appeared `occurrence` times, then types `reply`.
 */
export async function onPty(
  argv: readonly string[],
  steps: readonly (readonly [text: string, occurrence: number, reply: string])[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutS?: number } = {},
): Promise<PtyRun> {
  const driver = path.join(packageRoot, 'test', 'fixtures', 'rules', 'pty-drive.py');
  const timeoutS = opts.timeoutS ?? 20;
  const child = spawn('python3', [driver, ...argv], {
    env: { ...(opts.env ?? cliEnv()), STEPS: JSON.stringify(steps), PTY_TIMEOUT: String(timeoutS) },
    cwd: opts.cwd ?? packageRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  try {
    return JSON.parse(out) as PtyRun;
  } catch {
    throw new Error(`pty driver failed (status ${String(code)}): ${err || out}`);
  }
}

/** Parse a JSON-lines file (missing file = no lines). */
export function readJsonLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Poll until `cond` holds; throws with `what` after timeoutMs (generous: only a failure waits that long, and a loaded CI box is slow). */
export async function waitFor<T>(cond: () => T | undefined | false | null, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Write an executable file. */
export function writeExecutable(file: string, body: string): string {
  writeFileSync(file, body);
  chmodSync(file, 0o755);
  return file;
}

/** Shell-quote one word for a command line (hooks.json commands and approver specs are /bin/sh lines). */
export function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

type JsonHook = Record<string, unknown> & { type: string };
export type HooksJson = Partial<Record<'PreToolUse' | 'PostToolUse' | 'SessionStart' | 'Stop' | 'ErrorOccurred', { matcher?: string; hooks: JsonHook[] }[]>>;

/** Write a Codex / Claude Code hooks.json into dir and return its path. */
export function writeHooksJson(dir: string, hooks: HooksJson, name = 'hooks.json'): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify({ hooks }, null, 2));
  return file;
}

/** A command hook running one of the e2e fixture scripts with sh, plus arguments. */
export function fixtureHook(script: string, args: readonly string[] = [], extra: Record<string, unknown> = {}): JsonHook {
  return { type: 'command', command: ['sh', sq(path.join(e2eFixtures, script)), ...args.map(sq)].join(' '), timeout: 10, ...extra };
}
