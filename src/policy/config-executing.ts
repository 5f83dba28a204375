/**
 * Programs that execute configuration found in their working directory
 * (repo config and hooks, Makefiles, package scripts, build files, local
 * modules). Escalating one of them in the workspace is code execution outside
 * the sandbox, whatever the environment filter does: the workspace is the
 * sandbox's to write. The policy may still do it, but never silently: `run`
 * and `check` warn for every allow rule and --escalate prefix naming one.
 */
import path from 'node:path';
import type { RuleSet, PrefixRule } from './rules/index.js';
import { parsePrefix } from './prefix.js';

/** name → what it runs from the working directory (one line, for the warning). */
export const CONFIG_EXECUTING: Readonly<Record<string, string>> = {
  git: 'repo config (core.fsmonitor, aliases, filters, pager) and hooks',
  make: 'the Makefile',
  gmake: 'the Makefile',
  cmake: 'CMakeLists.txt',
  ninja: 'build.ninja',
  just: 'the justfile',
  npm: 'package.json scripts and .npmrc',
  npx: 'package.json, node_modules and .npmrc',
  yarn: 'package.json scripts and .yarnrc',
  pnpm: 'package.json scripts and .npmrc',
  node: 'modules and scripts from the working directory',
  bun: 'package.json scripts and bunfig.toml',
  deno: 'deno.json tasks and local modules',
  cargo: 'build.rs, .cargo/config.toml and proc macros',
  go: 'go.mod (toolchain), go:generate and cgo flags',
  pip: 'setup.py and pyproject build backends',
  pip3: 'setup.py and pyproject build backends',
  python: 'modules from the working directory (python -m, sys.path[0])',
  python3: 'modules from the working directory (python -m, sys.path[0])',
  uv: 'pyproject.toml build backends and scripts',
  poetry: 'pyproject.toml build backends and scripts',
  pipenv: 'the Pipfile and setup.py',
  tox: 'tox.ini',
  nox: 'noxfile.py',
  'pre-commit': '.pre-commit-config.yaml',
  bundle: 'the Gemfile',
  bundler: 'the Gemfile',
  rake: 'the Rakefile',
  ruby: 'scripts and .rb files from the working directory',
  gradle: 'build.gradle and init scripts',
  gradlew: 'the wrapper script and build.gradle',
  mvn: 'pom.xml plugins and .mvn/',
  mvnw: 'the wrapper script and pom.xml',
  ant: 'build.xml',
  sbt: 'build.sbt',
  composer: 'composer.json scripts',
  dotnet: 'project files and MSBuild targets',
  mix: 'mix.exs',
  direnv: '.envrc',
  terraform: 'providers and modules from .terraform/',
  tofu: 'providers and modules from .terraform/',
};

/** What `name` (a basename, or a path) executes from its working directory, if it is such a program. */
export function configExecuted(name: string): string | undefined {
  const base = path.posix.basename(name);
  if (Object.hasOwn(CONFIG_EXECUTING, base)) return CONFIG_EXECUTING[base];
  // Versioned interpreters (python3.11, node18...) are the same program.
  const unversioned = base.replace(/[-.]?\d+(\.\d+)*$/, '');
  if (unversioned !== base && Object.hasOwn(CONFIG_EXECUTING, unversioned)) return CONFIG_EXECUTING[unversioned];
  return undefined;
}

function ruleText(rule: PrefixRule): string {
  return `${rule.origin.file}:${rule.origin.line}`;
}

/**
 * One warning per allow rule and --escalate prefix that names a program known
 * to execute configuration from its working directory.
 */
export function configExecutingWarnings(rules: RuleSet | undefined, escalatePrefixes: readonly string[] = [], opts: { readonly gitSafe?: boolean } = {}): string[] {
  const out: string[] = [];
  // git is the one tool with switches to neutralise its config: say whether they are on.
  const note = (name: string) => (opts.gitSafe === true && path.posix.basename(name) === 'git' ? ' (git safe mode is on: workspace config and hooks are neutralised)' : '');
  for (const rule of rules?.rules() ?? []) {
    if (rule.decision !== 'allow') continue;
    const what = configExecuted(rule.program);
    if (what === undefined) continue;
    out.push(
      `${ruleText(rule)}: allow rule for "${rule.program}" escalates a program that executes ${what} from its working directory: in the workspace, that is code the sandbox wrote running outside it${note(rule.program)}`,
    );
  }
  for (const p of escalatePrefixes) {
    let first: string | undefined;
    try {
      first = parsePrefix(p)[0];
    } catch {
      continue; // reported as a bad pattern elsewhere
    }
    const what = first === undefined ? undefined : configExecuted(first);
    if (what === undefined) continue;
    out.push(`--escalate "${p}": escalates a program that executes ${what} from its working directory: in the workspace, that is code the sandbox wrote running outside it${note(first!)}`);
  }
  return out;
}
