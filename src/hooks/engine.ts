import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { aggregate, deniesAlone, type HookResult } from './aggregate.js';
import { interpretProcessResult, resolveRewrite, type HookOutcome } from './decision.js';
import { hookApplies } from './matcher.js';
import { eventEnv, fillTemplate, stdinPayload, webhookPayload, type HookEventData } from './payload.js';
import { runSpawnedHook } from './runners/command.js';
import type { McpPool } from './runners/mcp.js';
import { PersistentHook } from './runners/persistent.js';
import { killGroup } from './runners/spawn.js';
import { runWebhook } from './runners/webhook.js';
import type {
  CommandHook,
  ErrorInfo,
  ExecEventInfo,
  HookDefinition,
  HookRunSummary,
  HooksConfig,
  PostToolUseInfo,
  PreToolUseVerdict,
  RunEventInfo,
  SessionEndInfo,
  SessionStartInfo,
} from './types.js';

export interface HookEngineOptions {
  readonly logger?: Logger;
  /** Base environment of spawned hooks and of `conditions` lookups (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** One line per failed hook run, for the user (the CLI writes it to stderr); the audit log gets the details anyway. */
  readonly notice?: (line: string) => void;
}

/** A counting semaphore: a hook's `concurrency` limit. */
class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((res) => this.waiting.push(res));
    this.active++;
    try {
      return await f();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

const PRIORITY_ORDER = { high: 0, normal: 1, low: 2 } as const;

/**
 * Runs the configured hooks for each event and reduces their answers to one
 * verdict. Never throws for anything a hook does: every failure is a
 * HookRunSummary (and, for a required PreToolUse hook, a deny).
 */
export class HookEngine {
  private readonly logger: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly persistent = new Map<string, PersistentHook>();
  /** Created by the first mcp_tool hook run: the MCP SDK is a large import that most configurations never need. */
  private mcp: Promise<McpPool> | undefined;
  private readonly asyncRuns = new Set<Promise<unknown>>();
  private readonly liveGroups = new Set<number>();
  private readonly lifetime = new AbortController();
  private readonly gates = new Map<string, Gate>();
  private readonly notice: ((line: string) => void) | undefined;
  private transcriptDir: string | undefined;
  private readonly transcripts = new Map<string, string>();
  private readonly scripts = new Map<string, string>();
  private closed = false;

  constructor(
    readonly config: HooksConfig,
    opts: HookEngineOptions = {},
  ) {
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.env = opts.env ?? process.env;
    this.notice = opts.notice;
  }

  /** Hooks that would run for this event (enabled, matcher and conditions hold). */
  matching(d: HookEventData): HookDefinition[] {
    return this.config.hooks.filter((h) => hookApplies(h, d, this.env));
  }

  async preToolUse(info: ExecEventInfo, signal?: AbortSignal): Promise<PreToolUseVerdict> {
    const d = this.execData('exec.before', info);
    const results = await this.dispatch(d, signal, true);
    if (signal?.aborted) {
      return { decision: 'deny', reason: 'request aborted while PreToolUse hooks ran', runs: results.map((r) => r.summary) };
    }
    return aggregate(results, info.argv);
  }

  /** Whether any hook wants the whole script (a run-level PreToolUse): none = nothing to do before the run. */
  hasRunLevel(): boolean {
    return this.config.hooks.some((h) => h.enabled && h.event === 'exec.before' && (h.scope ?? 'exec') !== 'exec');
  }

  /**
   * The once-per-run PreToolUse: the whole script, before anything runs.
   * Also remembers the script so each exec's payload carries it. There is
   * no approver and no rewrite at this level: `ask` and a rewrite deny.
   */
  async preRun(info: RunEventInfo, signal?: AbortSignal): Promise<PreToolUseVerdict> {
    this.scripts.set(info.sessionId, info.script);
    const transcriptPath = this.transcriptPath(info.sessionId);
    const d: HookEventData = {
      event: 'exec.before',
      sessionId: info.sessionId,
      cwd: info.cwd,
      timestamp: new Date().toISOString(),
      ...(transcriptPath !== undefined ? { transcriptPath } : {}),
      run: { script: info.script, args: [...info.args] },
    };
    const results = (await this.dispatch(d, signal, true)).map((r): HookResult => {
      const o = r.outcome;
      if (o.kind === 'opinion' && (o.rewrite !== undefined || o.rewriteCandidates !== undefined)) {
        return { ...r, outcome: { kind: 'opinion', decision: 'deny', reason: 'a run-level hook cannot rewrite the script (updatedInput): denied' } };
      }
      if (o.kind === 'opinion' && o.decision === 'ask') {
        return { ...r, outcome: { kind: 'opinion', decision: 'deny', reason: `asks for approval of the whole script, which has no approver: denied (${o.reason ?? 'no reason given'})` } };
      }
      return r;
    });
    return aggregate(results, []);
  }

  /** Remember a session's script without a run-level check (every exec's payload carries it). */
  setScript(sessionId: string, script: string): void {
    this.scripts.set(sessionId, script);
  }

  async postToolUse(info: PostToolUseInfo): Promise<HookRunSummary[]> {
    const d: HookEventData = {
      ...this.execData('exec.after', info),
      outcome: info.outcome,
      ...(info.exitCode !== undefined ? { exitCode: info.exitCode } : {}),
      ...(info.durationMs !== undefined ? { durationMs: info.durationMs } : {}),
      ...(info.reason !== undefined ? { reason: info.reason } : {}),
    };
    return (await this.dispatch(d, undefined, false)).map((r) => r.summary);
  }

  async sessionStart(s: SessionStartInfo): Promise<HookRunSummary[]> {
    const d: HookEventData = { event: 'session_start', sessionId: s.sessionId, cwd: s.cwd, timestamp: new Date().toISOString() };
    return (await this.dispatch(d, undefined, false)).map((r) => r.summary);
  }

  async sessionEnd(s: SessionEndInfo): Promise<HookRunSummary[]> {
    const d: HookEventData = {
      event: 'session_end',
      sessionId: s.sessionId,
      cwd: s.cwd,
      timestamp: new Date().toISOString(),
      exitCode: s.exitCode,
      durationMs: s.durationMs,
    };
    return (await this.dispatch(d, undefined, false)).map((r) => r.summary);
  }

  async errorOccurred(e: ErrorInfo): Promise<HookRunSummary[]> {
    const d: HookEventData = {
      event: 'error.occurred',
      sessionId: e.sessionId ?? '',
      cwd: e.cwd ?? process.cwd(),
      timestamp: new Date().toISOString(),
      error: { message: e.error, kind: e.kind },
    };
    return (await this.dispatch(d, undefined, false)).map((r) => r.summary);
  }

  private mcpPool(): Promise<McpPool> {
    if (this.closed) return Promise.reject(new Error('the hook engine is closed'));
    this.mcp ??= import('./runners/mcp.js').then((m) => new m.McpPool(this.config.mcpServers, this.logger));
    return this.mcp;
  }

  /** Stops persistent hooks and MCP servers, kills every hook process group still running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lifetime.abort();
    for (const pid of this.liveGroups) killGroup(pid);
    await Promise.all([...this.persistent.values()].map((p) => p.close()));
    await this.mcp?.then((pool) => pool.close(), () => undefined);
    await Promise.allSettled([...this.asyncRuns]);
    if (this.transcriptDir !== undefined) rmSync(this.transcriptDir, { recursive: true, force: true });
  }

  /**
   * Claude Code hooks get a transcript path and some read it: an empty file
   * this session owns (outside the sandbox's reach), created on first use.
   */
  private transcriptPath(sessionId: string): string | undefined {
    const known = this.transcripts.get(sessionId);
    if (known !== undefined) return known;
    try {
      this.transcriptDir ??= mkdtempSync(path.join(tmpdir(), 'codex-escalate-transcript-'));
      const f = path.join(this.transcriptDir, `${sessionId.replace(/[^A-Za-z0-9_-]/g, '_') || 'session'}.jsonl`);
      writeFileSync(f, '', { flag: 'a', mode: 0o600 });
      this.transcripts.set(sessionId, f);
      return f;
    } catch {
      return undefined; // a hook then sees transcript_path: null, as before
    }
  }

  /** Wait for async hooks started so far (tests, orderly shutdown). */
  async drainAsync(): Promise<void> {
    while (this.asyncRuns.size > 0) await Promise.allSettled([...this.asyncRuns]);
  }

  /** Pid of a persistent hook's process, if running (tests and diagnostics). */
  persistentPid(hookId: string): number | undefined {
    return this.persistent.get(hookId)?.pid;
  }

  private execData(event: 'exec.before' | 'exec.after', info: ExecEventInfo): HookEventData {
    const transcriptPath = this.transcriptPath(info.sessionId);
    return {
      event,
      sessionId: info.sessionId,
      cwd: info.cwd,
      timestamp: new Date().toISOString(),
      ...(transcriptPath !== undefined ? { transcriptPath } : {}),
      ...(this.scripts.has(info.sessionId) ? { script: this.scripts.get(info.sessionId)! } : {}),
      exec: {
        requestId: info.requestId,
        program: info.program,
        argv: [...info.argv],
        workdir: info.workdir,
        ...(info.pipeline !== undefined ? { pipeline: info.pipeline } : {}),
      },
    };
  }

  private async dispatch(d: HookEventData, signal: AbortSignal | undefined, stopOnDeny: boolean): Promise<HookResult[]> {
    if (this.closed) return [];
    const hooks = this.matching(d);
    const sig = signal ? AbortSignal.any([signal, this.lifetime.signal]) : this.lifetime.signal;

    for (const h of hooks.filter((x) => x.mode === 'async')) {
      const p = this.runOne(h, d, this.lifetime.signal)
        .then((r) => this.logRun(r.summary, r.outcome, d.sessionId))
        .finally(() => this.asyncRuns.delete(p));
      this.asyncRuns.add(p);
    }
    const sync = hooks.filter((x) => x.mode === 'sync');
    let results: HookResult[];
    if (this.config.parallel) {
      results = await Promise.all(sync.map((h) => this.runOne(h, d, sig)));
    } else {
      // Sequential: by priority (high first), config order within a priority; a deny ends the run.
      const ordered = sync
        .map((h, i) => ({ h, i }))
        .sort((a, b) => PRIORITY_ORDER[a.h.priority] - PRIORITY_ORDER[b.h.priority] || a.i - b.i)
        .map((x) => x.h);
      results = [];
      for (const h of ordered) {
        const r = await this.runOne(h, d, sig);
        results.push(r);
        if (stopOnDeny && deniesAlone(r)) break;
      }
    }
    for (const r of results) this.logRun(r.summary, r.outcome, d.sessionId);
    return results;
  }

  private logRun(s: HookRunSummary, o: HookOutcome, sessionId: string): void {
    const level = s.status === 'failed' || s.status === 'timed_out' ? 'warn' : this.config.debug ? 'info' : 'debug';
    this.logger[level]({ hookRun: s }, `hook ${s.hook} ${s.status}`);
    if (o.kind === 'failure' && !this.closed) {
      const effect = s.event === 'exec.before' && !s.async ? (s.required ? 'the command is denied (required)' : 'ignored (required: false)') : 'ignored';
      this.notice?.(`hook ${s.hook} ${s.status === 'timed_out' ? 'timed out' : 'failed'}: ${oneLine(o.error)}; ${effect}`);
    }
    if (o.kind === 'failure' && s.event !== 'error.occurred' && !this.closed) {
      // Hook failures are themselves an event; never recurse from error hooks.
      void this.errorOccurred({ sessionId, error: `hook ${s.hook} ${s.status}: ${o.error}`, kind: 'hook' }).catch(() => undefined);
    }
  }

  private async runOne(h: HookDefinition, d: HookEventData, signal: AbortSignal): Promise<HookResult> {
    const t0 = performance.now();
    let outcome: HookOutcome;
    let output: string | undefined;
    try {
      const gate = this.gate(h);
      const r = gate ? await gate.run(() => this.execute(h, d, signal)) : await this.execute(h, d, signal);
      outcome = d.exec ? resolveRewrite(r.outcome, d.exec.argv) : r.outcome;
      output = r.output;
    } catch (e) {
      // A bug or an unexpected runtime error in a runner is a hook failure, never a crash.
      outcome = { kind: 'failure', status: 'failed', error: `internal error running hook: ${(e as Error).message}` };
    }
    const duration_ms = Math.round((performance.now() - t0) * 10) / 10;
    const summary: HookRunSummary = {
      hook: h.id,
      event: d.event,
      type: h.type,
      status:
        outcome.kind === 'failure'
          ? outcome.status
          : outcome.decision === 'deny'
            ? 'blocked'
            : 'completed',
      duration_ms,
      required: h.required,
      ...(outcome.kind === 'opinion'
        ? {
            ...(outcome.decision !== undefined ? { decision: outcome.decision } : {}),
            ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
            ...(outcome.rewrite !== undefined ? { rewrite: outcome.rewrite } : {}),
          }
        : { error: outcome.error }),
      ...(output !== undefined && output !== '' ? { output } : {}),
      ...(h.mode === 'async' ? { async: true } : {}),
    };
    return { hook: h, outcome, summary };
  }

  private gate(h: HookDefinition): Gate | undefined {
    if (h.concurrency === undefined) return undefined;
    let g = this.gates.get(h.id);
    if (!g) {
      g = new Gate(h.concurrency);
      this.gates.set(h.id, g);
    }
    return g;
  }

  private async execute(h: HookDefinition, d: HookEventData, signal: AbortSignal): Promise<{ outcome: HookOutcome; output?: string | undefined }> {
    switch (h.type) {
      case 'command':
        return h.persistent ? this.executePersistent(h, d, signal) : this.executeSpawned(h, d, signal);
      case 'webhook': {
        const r = await runWebhook(h, webhookPayload(d), signal);
        return { outcome: r, output: r.output };
      }
      case 'mcp_tool': {
        const args = fillTemplate(h.arguments, d) as Record<string, unknown>;
        const r = await (await this.mcpPool()).call(h, args, signal);
        return { outcome: r, output: r.output };
      }
    }
  }

  private async executeSpawned(h: CommandHook, d: HookEventData, signal: AbortSignal): Promise<{ outcome: HookOutcome; output?: string }> {
    let pid: number | undefined;
    const r = await runSpawnedHook(h, {
      cwd: h.cwd ?? d.cwd,
      env: { ...this.env, ...h.env, ...eventEnv(d), ...(h.pluginRoot !== undefined ? { CLAUDE_PLUGIN_ROOT: h.pluginRoot } : {}) },
      input: `${JSON.stringify(stdinPayload(d))}\n`,
      timeoutMs: h.timeoutMs,
      signal,
      onSpawn: (p) => {
        pid = p;
        this.liveGroups.add(p);
      },
    });
    if (pid !== undefined) this.liveGroups.delete(pid);
    const excerpt = [r.stdout.trim().slice(0, 500), r.stderr.trim().slice(0, 500)].filter((x) => x !== '').join('\n--- stderr ---\n');
    if (r.aborted) return { outcome: { kind: 'failure', status: 'failed', error: 'aborted' }, output: excerpt };
    return { outcome: interpretProcessResult(r), output: excerpt };
  }

  private async executePersistent(h: CommandHook, d: HookEventData, signal: AbortSignal): Promise<{ outcome: HookOutcome; output?: string | undefined }> {
    let p = this.persistent.get(h.id);
    if (!p) {
      p = new PersistentHook(h, { ...this.env }, this.logger);
      this.persistent.set(h.id, p);
    }
    const r = await p.request(stdinPayload(d), d.cwd, h.timeoutMs, signal);
    return { outcome: r, output: r.output };
  }
}

function oneLine(s: string): string {
  const t = s.replace(/\s*\n\s*/g, ' / ').trim();
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}
