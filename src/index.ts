/**
 * codex-shell-escalation — public API.
 *
 * Start an EscalationServer with a policy, open a session per shell, spawn the
 * patched bash with the session's env overlay and client fd (launchShell does
 * both), and every execve the shell makes is decided by the policy.
 */
export {
  EscalationServer,
  EscalationSession,
  ESCALATE_SHELL_ENV_VAR,
  SHELL_SOCKET_FD,
  type DecisionRecord,
  type EscalatedExitRecord,
  type EscalationServerOptions,
  type ServerObserver,
} from './server/escalation-server.js';
export { launchShell, type RunningShell, type ShellLaunch, type ShellResult } from './server/run-shell.js';
export { createAuditLogger, flushAuditLog, type AuditLogger, type AuditLogOptions } from './server/audit-log.js';
export { createStaticPolicy, type StaticPolicyOptions } from './policy/static-policy.js';
export type { DecisionAction, DecisionContext, EscalationPolicy, ExecRequest, PolicyDecision } from './policy/types.js';
export {
  ESCALATE_SOCKET_ENV_VAR,
  EXEC_WRAPPER_ENV_VAR,
  LEGACY_BASH_EXEC_WRAPPER_ENV_VAR,
  MAX_FDS_PER_MESSAGE,
  MAX_FRAME_BYTES,
} from './protocol/constants.js';
export {
  EscalateRequestSchema,
  EscalateResponseSchema,
  SuperExecMessageSchema,
  SuperExecResultSchema,
  type Action,
  type EscalateRequest,
  type EscalateResponse,
  type SuperExecMessage,
  type SuperExecResult,
  type ClientFrame,
  type ServerFrame,
} from './protocol/messages.js';
export { encodeFrame, encodeJsonFrame, FrameReader, ProtocolError, bytesToWireString, wireStringToBytes } from './protocol/codec.js';
export { ensurePatchedBash, findPatchedBash } from './shell/patched-bash.js';
export { defaultWrapperPath } from './paths.js';
export { createDecisionPipeline, type DecisionPipeline, type DecisionPipelineOptions, type DefaultAction } from './policy/decision-pipeline.js';
export { createRulesPolicy, type RulesPolicyOptions } from './policy/rules-policy.js';
export { loadRulesFiles, RulesStore, RuleSet, RulesLoadError, toCheckJson, type Evaluation, type RuleDecision } from './policy/rules/index.js';
export {
  createApprover,
  createCallbackApprover,
  createCommandApprover,
  createDenyApprover,
  createTtyApprover,
  type ApprovalRequest,
  type ApprovalResult,
  type Approver,
} from './policy/approval/index.js';
export { HookEngine, loadHooks, type HooksConfig, type HookRunSummary, type PreToolUseVerdict } from './hooks/index.js';
export { hooksObserver } from './hooks/server-observer.js';
export { bwrapLaunch, bwrapUsable, type BwrapProfile, type SandboxedLaunch } from './sandbox/bwrap.js';
export { createEnvFilter, type EnvFilterOptions } from './sandbox/escalation-env.js';
