/**
 * The policy flags shared by `run`, `explain` and `replay`: one definition, so
 * the three commands spell and document them the same way and build the same
 * decision pipeline from them.
 */
import { type Command, Option } from 'commander';
import { collect } from './errors.js';

export interface PolicyFlags {
  deny: string[];
  escalate: string[];
  rules: string[];
  default: 'run' | 'deny' | 'prompt';
  approval: string;
  hooks: string[];
  discoverHooks: boolean;
  /** --no-discover-rules sets false. */
  discoverRules?: boolean;
  /** Hidden alias of --no-discover-hooks (the old `hooks --no-discover` spelling). */
  discover?: boolean;
  cwd?: string;
  writable: string[];
}

export function addPolicyOptions(cmd: Command, what: { cwd: string; approval: string; rules?: string }): Command {
  return cmd
    .option('--cwd <dir>', what.cwd)
    .option('--deny <prefix>', 'deny commands starting with these words, e.g. --deny "git push" (repeatable)', collect, [])
    .option('--escalate <prefix>', 'escalate commands starting with these words (repeatable)', collect, [])
    .option('-r, --rules <path>', what.rules ?? 'codex execpolicy .rules file, or a directory of *.rules files (repeatable; loaded in order and merged)', collect, [])
    .option('--no-discover-rules', 'do not load $CODEX_HOME/rules/*.rules (~/.codex/rules) and .codex/rules/*.rules of the working directory, as Codex does; a discovered file the sandbox can write is never loaded (name it with --rules)')
    .addOption(new Option('--default <action>', 'decision when no rule or prefix matched').choices(['run', 'deny', 'prompt']).default('run'))
    .option('--hooks <file>', 'hooks.json (Codex/Claude Code) or hooks.toml file (repeatable)', collect, [])
    .option('--no-discover-hooks', 'do not load .codex/hooks.{json,toml} from the working directory and $CODEX_HOME (~/.codex); discovered files run only once trusted (codex-escalate hooks trust)')
    .addOption(new Option('--no-discover', 'old spelling of --no-discover-hooks').hideHelp())
    .option('--writable <path>', 'extra path writable inside the sandbox (repeatable; the working directory always is)', collect, [])
    .option('--approval <mode>', what.approval, 'deny');
}

/** Hook discovery is on unless either spelling turned it off. */
export function discoverHooks(o: Pick<PolicyFlags, 'discoverHooks' | 'discover'>): boolean {
  return o.discoverHooks !== false && o.discover !== false;
}
