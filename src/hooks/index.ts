export * from './types.js';
export { loadHooks, loadHooksSync, discoveryCandidates, userConfigDir, normalizeEvent, DEFAULT_TIMEOUT_SECONDS, type LoadHooksOptions } from './config.js';
export { HookEngine, type HookEngineOptions } from './engine.js';
export { TrustStore, trustStorePath, trustCommand, fingerprint, hookPathExposures, type TrustState } from './trust.js';
export { aggregate, type HookResult } from './aggregate.js';
export {
  interpretProcessResult,
  interpretStdout,
  interpretDecisionObject,
  parseRewriteCommand,
  rewriteFromInput,
  type HookOutcome,
  type Opinion,
  type Failure,
  type ProcessResult,
} from './decision.js';
export { matcherMatches, conditionsHold } from './matcher.js';
export { commandString, stdinPayload, eventEnv, webhookPayload, fillTemplate, type HookEventData } from './payload.js';
export { interpretToolResult } from './runners/mcp.js';
export { OUTPUT_CAP_BYTES } from './runners/spawn.js';
