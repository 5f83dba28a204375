/**
 * The decision `run` would make for one exec, without running anything:
 * explain and replay build the pipeline exactly as run does (buildPolicy),
 * with an approver that records the question instead of asking it. Hooks run
 * only when asked for (--run-hooks): they are programs with effects.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadHooksSync } from '../hooks/config.js';
import type { HookEngine } from '../hooks/engine.js';
import type { ApprovalRequest, Approver } from '../policy/approval/index.js';
import type { EscalationPolicy, ExecRequest, PolicyDecision } from '../policy/types.js';
import { silentLogger } from '../server/audit-log.js';
import { buildPolicy, loadHookEngine, sessionBoundary } from './commands/run.js';
import { CliError } from './errors.js';
import { addPolicyOptions, discoverHooks, type PolicyFlags } from './policy-options.js';

export interface ProbeFlags extends PolicyFlags {
  runHooks?: boolean;
  json?: boolean;
}

/** explain/replay: the run policy flags, plus --run-hooks and --json. */
export function addProbeOptions(cmd: Command): Command {
  addPolicyOptions(cmd, {
    cwd: 'the session\'s working directory: where hooks are discovered, and (with --writable) what the sandbox can write (default: current directory)',
    approval: 'the approver run would use (deny, tty, command:CMD): named in the answer, never asked',
  });
  return cmd.option('--run-hooks', 'run the PreToolUse hooks as run would (they are programs: without this flag they are listed, not run)').option('--json', 'machine-readable output');
}

/** The outcome for one exec: the pipeline's decision, and the approver's question if it would have been asked. */
export interface Probed {
  readonly decision: PolicyDecision;
  /** Set when run would have asked the approver (--approval): the answer decides. */
  readonly asked: ApprovalRequest | undefined;
}

export interface DecisionProbe {
  readonly cwd: string;
  readonly approval: string;
  /** PreToolUse hooks configured (run only with --run-hooks). */
  readonly hooksConfigured: number;
  readonly hooksRun: boolean;
  readonly rulesLoaded: number;
  decide(request: ExecRequest): Promise<Probed>;
  close(): Promise<void>;
}

export async function openDecisionProbe(o: ProbeFlags): Promise<DecisionProbe> {
  const cwd = path.resolve(o.cwd ?? process.cwd());
  // As run checks it: a session cannot start in a directory that is not there.
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new CliError(`--cwd ${cwd}: not a directory`);
  const logger = silentLogger();
  const session = sessionBoundary(cwd, o.writable, true);
  // Nothing is watched here, so "read once, never reloaded" would only confuse; the other warnings stand.
  const boundary = { ...session, warn: (event: string, message: string) => (event === 'rules_read_once' ? undefined : session.warn(event, message)) };
  const discoverFrom = discoverHooks(o) ? cwd : undefined;
  let hooks: HookEngine | undefined;
  let hooksConfigured = 0;
  if (o.runHooks) {
    hooks = await loadHookEngine(o.hooks, discoverFrom, logger, boundary);
    hooksConfigured = hooks ? (await configuredPreToolUse(o.hooks, discoverFrom, boundary.roots)) : 0;
  } else {
    hooksConfigured = await configuredPreToolUse(o.hooks, discoverFrom, boundary.roots);
  }
  let asked: ApprovalRequest | undefined;
  const recorder: Approver = {
    approve(req) {
      asked = req;
      return Promise.resolve({ decision: 'deny', reason: `would ask the approver (--approval ${o.approval}): ${req.rule}` });
    },
  };
  let built: { policy: EscalationPolicy; close: () => void; rules?: { current: { size: number } } };
  try {
    built = await buildPolicy({ ...o, rulesDiscoverFrom: o.discoverRules !== false ? cwd : undefined }, logger, hooks, () => cwd, boundary, undefined, { approver: recorder, watchRules: false });
  } catch (err) {
    await hooks?.close();
    throw err;
  }
  const { policy, close } = built;
  return {
    cwd,
    approval: o.approval,
    hooksConfigured,
    hooksRun: hooks !== undefined,
    rulesLoaded: built.rules?.current.size ?? 0,
    async decide(request) {
      asked = undefined;
      const decision = await policy.decide(request, { signal: new AbortController().signal });
      return { decision, asked };
    },
    async close() {
      close();
      await hooks?.close();
    },
  };
}

async function configuredPreToolUse(files: readonly string[], discoverFrom: string | undefined, roots: readonly string[]): Promise<number> {
  try {
    const cfg = loadHooksSync({ files, ...(discoverFrom !== undefined ? { discoverFrom } : {}), roots });
    return cfg.hooks.filter((h) => h.event === 'exec.before' && h.enabled).length;
  } catch (err) {
    throw new CliError(`hooks did not load: ${(err as Error).message}`, undefined, { cause: err });
  }
}

/** The action as a user reads it: `prompt` when the approver would have decided. */
export function outcomeOf(p: Probed): 'run' | 'escalate' | 'deny' | 'prompt' {
  return p.asked !== undefined ? 'prompt' : p.decision.action;
}
