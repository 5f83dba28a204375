/** Public surface of the codex execpolicy `.rules` engine. */
export { RulesLoadError, type SourcePos } from './errors.js';
export {
  RuleSet,
  stricter,
  describeRule,
  type RuleDecision,
  type PatternToken,
  type PrefixRule,
  type NetworkRule,
  type NetworkRuleProtocol,
  type RuleOrigin,
  type MatchedRule,
  type Evaluation,
  type EvaluateOptions,
} from './ruleset.js';
export {
  parseRulesSource,
  compileRules,
  loadRulesFiles,
  readRulesFile,
  RulesBuilder,
  type ParsedRules,
  type Statement,
  type PrefixRuleDecl,
  type HostExecutableDecl,
  type Example,
  type RulesSource,
  type CompileOptions,
} from './compile.js';
export { EVAL_LIMITS } from './eval.js';
export { toCheckJson, formatCheckJson, type CheckOutput, type CheckPrefixRuleMatch } from './check-json.js';
export { RulesStore, type RulesStoreOptions, type ReloadResult } from './store.js';
export { shlexSplit, shlexJoin } from './shlex.js';
export {
  resolveRulesFiles,
  rulesFilesInDir,
  rulesDiscoveryDirs,
  networkRulesNotice,
  RULES_DIR_NAME,
  RULES_EXTENSION,
  type RulesFileSet,
  type ResolveRulesOptions,
} from './discover.js';
