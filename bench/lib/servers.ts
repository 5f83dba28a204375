/**
 * The escalation servers the benchmark runs its intercepted variants
 * against, each with its policy, plus a recorder that captures the server's
 * own per-decision timing (DecisionRecord.latencyUs) and action counts.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadHooks } from '../../src/hooks/config.js';
import { HookEngine } from '../../src/hooks/engine.js';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { syntheticRuleSet } from './synthetic-rules.js';
import { RulesStore } from '../../src/policy/rules/store.js';
import { EscalationServer, type DecisionRecord } from '../../src/server/escalation-server.js';
import type { AuditLogger } from '../../src/server/audit-log.js';

export const BENCH_DIR = path.resolve(import.meta.dirname, '..');

/** Collects what the server observed during one measured run. */
export class DecisionRecorder {
  latencies: number[] = [];
  actions: Record<string, number> = {};

  onDecided(r: DecisionRecord): void {
    this.latencies.push(r.latencyUs);
    this.actions[r.action.kind] = (this.actions[r.action.kind] ?? 0) + 1;
  }

  get count(): number {
    return this.latencies.length;
  }

  reset(): void {
    this.latencies = [];
    this.actions = {};
  }
}

export interface BenchServer {
  readonly server: EscalationServer;
  readonly recorder: DecisionRecorder;
  readonly close: () => Promise<void>;
}

export type PolicyKind = 'run' | 'spawned-hook' | 'persistent-hook' | 'escalate';

/** The rules every intercepted variant carries: a 200-rule policy /bin/true matches none of (default Run). */
export const POLICY_RULES = 200;

async function hookEngine(kind: 'spawned-hook' | 'persistent-hook', tmp: string): Promise<HookEngine> {
  const hook =
    kind === 'spawned-hook'
      ? { type: 'command', command: ['sh', path.join(BENCH_DIR, 'hooks/noop-hook.sh')], timeout: 10 }
      : { type: 'command', command: [process.execPath, path.join(BENCH_DIR, 'hooks/persistent-allow.mjs')], persistent: true, timeout: 10 };
  const file = path.join(tmp, `${kind}.hooks.json`);
  writeFileSync(file, JSON.stringify({ hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [hook] }] } }));
  return new HookEngine(await loadHooks({ files: [file] }));
}

/** A server whose policy is the decision pipeline with POLICY_RULES synthetic rules and, per kind, hooks or an escalate prefix. */
export async function createBenchServer(
  kind: PolicyKind,
  opts: { wrapperPath: string; tmp: string; rules?: number; directExecs?: boolean; fastPath?: boolean; logger?: AuditLogger },
): Promise<BenchServer> {
  const recorder = new DecisionRecorder();
  const hooks = kind === 'spawned-hook' || kind === 'persistent-hook' ? await hookEngine(kind, opts.tmp) : undefined;
  const policy = createDecisionPipeline({
    // A store (not a bare { current }) tells of rule changes: what lets the fast path remember decisions, as in the CLI.
    rules: RulesStore.fromRuleSet(syntheticRuleSet(opts.rules ?? POLICY_RULES)),
    ...(hooks ? { hooks } : {}),
    ...(kind === 'escalate' ? { escalatePrefixes: ['true'] } : {}),
    defaultAction: 'run',
  });
  // directExecs: as `codex-escalate run` does by default (inside bwrap or as root), Run'd programs get the exec filter.
  const server = new EscalationServer({
    policy,
    wrapperPath: opts.wrapperPath,
    directExecs: opts.directExecs ?? false,
    fastPath: opts.fastPath ?? false,
    ...(opts.logger ? { logger: opts.logger } : {}), observer: { decided: (r) => recorder.onDecided(r) },
  });
  return {
    server,
    recorder,
    close: async () => {
      await server.close();
      await hooks?.close();
    },
  };
}
