import { searchPath } from '../../paths.js';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { collect, EXIT_TOOL_FAILURE } from '../errors.js';
import { processIo, type CommandIo } from '../io.js';
import { discoverHooks } from '../policy-options.js';
import { discoveryCandidates, loadHooksSync, loadJsonText, loadTomlText } from '../../hooks/config.js';
import { fingerprint, TrustStore, trustStorePath } from '../../hooks/trust.js';
import { describeExposure, sandboxExposure, sandboxWritableRoots } from '../../policy/sandbox-roots.js';
import { existsSync, readFileSync } from 'node:fs';
import { HookEngine } from '../../hooks/engine.js';
import { normalizeEvent } from '../../hooks/config.js';
import { CLAUDE_EVENT_NAMES, HooksConfigError, type HookDefinition, type HookRunSummary, type HooksConfig } from '../../hooks/types.js';

interface CommonOpts {
  hooks: string[];
  discoverHooks: boolean;
  /** Hidden alias: --no-discover. */
  discover?: boolean;
  cwd?: string;
  json?: boolean;
}

async function load(o: CommonOpts, io: CommandIo, quietTrust = false): Promise<HooksConfig | undefined> {
  const cwd = path.resolve(o.cwd ?? process.cwd());
  try {
    const cfg = loadHooksSync({ files: o.hooks, ...(discoverHooks(o) ? { discoverFrom: cwd } : {}), roots: sandboxWritableRoots(cwd) });
    if (!quietTrust) for (const w of cfg.trustWarnings ?? []) io.stderr(`codex-escalate hooks: warning: ${w}\n`);
    return cfg;
  } catch (e) {
    io.stderr(`codex-escalate hooks: ${e instanceof HooksConfigError ? e.message : String(e)}\n`);
    process.exitCode = EXIT_TOOL_FAILURE;
    return undefined;
  }
}

/** Registers `hooks trust` / `hooks untrust`: `run` gets the files named (or every discovered file) and the --cwd. */
function trustCommand(hooks: Command, name: string, description: string, filesHelp: string, run: (targets: string[], cwd: string) => void): void {
  hooks
    .command(name)
    .description(description)
    .argument('[files...]', filesHelp)
    .option('--cwd <dir>', 'directory to discover from (default: current directory)')
    .action((files: string[], o: { cwd?: string }) => {
      const cwd = path.resolve(o.cwd ?? process.cwd());
      run(trustTargets(files, cwd), cwd);
    });
}

/** `hooks trust` / `hooks untrust`: the files named, or every discovered file when none is. */
function trustTargets(files: readonly string[], cwd: string): string[] {
  if (files.length > 0) return files.map((f) => path.resolve(cwd, f));
  return discoveryCandidates(cwd, process.env)
    .map((c) => c.path)
    .filter((p) => existsSync(p));
}

function openStore(cwd: string, io: CommandIo): TrustStore {
  const store = TrustStore.open(trustStorePath(process.env));
  // The store must be out of the sandbox's reach; sessions in this directory would not believe it otherwise.
  const e = sandboxExposure(store.path, sandboxWritableRoots(cwd));
  if (e !== undefined) io.stderr(`codex-escalate hooks: warning: the trust store ${describeExposure(store.path, e)}; sessions there will not believe it (set XDG_STATE_HOME elsewhere)\n`);
  if (store.problem !== undefined) io.stderr(`codex-escalate hooks: warning: ${store.problem}\n`);
  return store;
}

function describeHook(h: HookDefinition): string {
  const what =
    h.type === 'command'
      ? typeof h.command === 'string'
        ? h.command
        : h.command.join(' ')
      : h.type === 'webhook'
        ? `${h.method} ${h.url}`
        : `${h.server}/${h.tool}`;
  const flags = [
    h.type === 'command' && h.persistent ? 'persistent' : undefined,
    h.mode === 'async' ? 'async' : undefined,
    h.required ? 'required' : undefined,
    h.enabled ? undefined : 'DISABLED',
    h.priority !== 'normal' ? `priority=${h.priority}` : undefined,
    h.matcher !== undefined ? `matcher=${JSON.stringify(h.matcher)}` : undefined,
    Object.keys(h.conditions).length ? `conditions=${JSON.stringify(h.conditions)}` : undefined,
    `timeout=${h.timeoutMs / 1000}s`,
  ].filter((x) => x !== undefined);
  return `    ${h.entry}\n      ${CLAUDE_EVENT_NAMES[h.event]} (${h.event})  ${h.type}  ${flags.join('  ')}\n      ${what}${h.description ? `\n      ${h.description}` : ''}\n`;
}

function formatRun(r: HookRunSummary): string {
  const parts = [`  ${r.hook}: ${r.status}`, `${r.duration_ms} ms`];
  if (r.decision) parts.push(`decision=${r.decision}`);
  if (r.rewrite) parts.push(`rewrite=${JSON.stringify(r.rewrite)}`);
  if (r.required) parts.push('required');
  let s = parts.join('  ');
  if (r.reason) s += `\n    reason: ${r.reason}`;
  if (r.error) s += `\n    error: ${r.error}`;
  if (r.output) s += `\n    output: ${r.output.split('\n').join('\n            ')}`;
  return `${s}\n`;
}

/** Absolute path of argv[0] as the shell would find it (PATH lookup), or argv[0] resolved against cwd. */
function resolveProgram(arg0: string, cwd: string): string {
  return arg0.includes('/') ? path.resolve(cwd, arg0) : (searchPath(arg0) ?? arg0);
}

/**
 * `hooks list` and `hooks test`.
 * Exit status of `hooks test`: 0 = not denied, 2 = denied, 125 = configuration or usage error.
 */
export function registerHooksCommands(program: Command, io: CommandIo = processIo): void {
  const hooks = program.command('hooks').description('inspect, dry-run and trust lifecycle hooks');

  hooks
    .command('list')
    .description('show the configured hooks and the files they come from')
    .option('--hooks <file>', 'hooks file (hooks.json or hooks.toml); repeatable', collect, [])
    .option('--no-discover-hooks', 'do not look for .codex/hooks.* in the working and user config directories')
    .addOption(new Option('--no-discover', 'old spelling of --no-discover-hooks').hideHelp())
    .option('--cwd <dir>', 'working directory for discovery (default: current directory)')
    .option('--json', 'machine-readable output')
    .action(async (o: CommonOpts) => {
      const cfg = await load(o, io);
      if (!cfg) return;
      const untrusted = cfg.untrusted ?? [];
      if (o.json) {
        io.stdout(
          `${JSON.stringify({ files: cfg.files, untrusted, hooks: cfg.hooks, mcpServers: cfg.mcpServers, parallel: cfg.parallel, warnings: cfg.warnings, trustWarnings: cfg.trustWarnings ?? [] }, null, 2)}\n`,
        );
        return;
      }
      if (cfg.files.length === 0 && untrusted.length === 0) {
        io.stdout('no hooks configured (no --hooks files, nothing discovered)\n');
        return;
      }
      io.stdout(`${cfg.hooks.length} hook(s) from ${cfg.files.length} file(s); execution: ${cfg.parallel ? 'parallel' : 'sequential by priority'}\n`);
      for (const f of cfg.files) {
        // An explicit file is trusted because it was named; a discovered one because its content was trusted.
        io.stdout(`\n${f.path}  (${f.format}, ${f.origin}${f.trust === 'trusted' ? ', trusted' : ''}${f.enabled ? '' : ', disabled'})\n`);
        for (const h of cfg.hooks.filter((x) => x.source === path.resolve(f.path))) io.stdout(describeHook(h));
      }
      for (const u of untrusted) {
        io.stdout(`\n${u.path}  (${u.format}, ${u.origin}, ${u.state === 'changed' ? 'CHANGED since trusted' : 'NOT TRUSTED'}: not run; trust with: codex-escalate hooks trust ${u.path})\n`);
      }
      const servers = Object.values(cfg.mcpServers);
      if (servers.length) {
        io.stdout('\nMCP servers:\n');
        for (const s of servers) io.stdout(`  ${s.name}: ${[s.command, ...s.args].join(' ')}  (${s.source})\n`);
      }
      for (const w of cfg.warnings) io.stdout(`\nwarning: ${w}\n`);
    });

  trustCommand(
    hooks,
    'trust',
    'trust hooks files as they are now (sha256 of their content); discovered files run only when trusted',
    'hooks files (default: every discovered .codex/hooks.{json,toml} here and in $CODEX_HOME)',
    (targets, cwd) => {
      if (targets.length === 0) {
        io.stderr('codex-escalate hooks trust: nothing to trust (no file named, none discovered)\n');
        process.exitCode = EXIT_TOOL_FAILURE;
        return;
      }
      const store = openStore(cwd, io);
      for (const f of targets) {
        let fp;
        try {
          fp = fingerprint(f);
          // Trust only what loads: a file that would fail at start is not worth a trust entry.
          const text = readFileSync(fp.realPath, 'utf8');
          if (fp.realPath.endsWith('.toml')) loadTomlText(text, f, process.env);
          else loadJsonText(text, f, process.env);
        } catch (e) {
          io.stderr(`codex-escalate hooks trust: ${f}: ${e instanceof HooksConfigError ? e.message : (e as Error).message}\n`);
          process.exitCode = EXIT_TOOL_FAILURE;
          return;
        }
        store.trust(fp.path, fp.sha256);
        io.stdout(`trusted ${fp.path}  sha256:${fp.sha256}\n`);
      }
      store.save();
    },
  );

  trustCommand(hooks, 'untrust', 'forget the trust of hooks files', 'hooks files (default: every discovered file)', (targets, cwd) => {
    const store = openStore(cwd, io);
    let removed = 0;
    for (const f of targets) {
      const key = path.resolve(f);
      if (store.untrust(key)) {
        removed++;
        io.stdout(`untrusted ${key}\n`);
      } else io.stderr(`codex-escalate hooks untrust: ${key} was not trusted\n`);
    }
    if (removed > 0) store.save();
  });

  hooks
    .command('test')
    .description('dry-run the hooks of one event and show each result and the merged decision')
    .requiredOption('--event <name>', 'PreToolUse | PostToolUse | SessionStart | Stop | ErrorOccurred (or exec.before, ...)')
    .option('--hooks <file>', 'hooks file (hooks.json or hooks.toml); repeatable', collect, [])
    .option('--no-discover-hooks', 'do not look for .codex/hooks.* in the working and user config directories')
    .addOption(new Option('--no-discover', 'old spelling of --no-discover-hooks').hideHelp())
    .option('--cwd <dir>', 'session working directory (default: current directory)')
    .option('--session <id>', 'session id to report', 'hooks-test')
    .option('--exit-code <n>', 'exit status for PostToolUse / Stop', '0')
    .option('--script <text>', 'PreToolUse: the whole script as `run` would get it; runs the run-level hooks on it first (and each exec payload carries it)')
    .option('--pipeline <text>', 'PreToolUse / PostToolUse: the pipeline the command is a stage of, as the patched bash would send it (tool_input.pipeline)')
    .option('--json', 'machine-readable output')
    .argument('[command...]', 'the command (argv) for PreToolUse / PostToolUse')
    .action(async (argv: string[], o: CommonOpts & { event: string; session: string; exitCode: string; script?: string; pipeline?: string }) => {
      const event = normalizeEvent(o.event);
      if (!event) {
        io.stderr(`codex-escalate hooks test: unknown event "${o.event}" (expected PreToolUse, PostToolUse, SessionStart, Stop or ErrorOccurred)\n`);
        process.exitCode = EXIT_TOOL_FAILURE;
        return;
      }
      if (o.script !== undefined && event !== 'exec.before') {
        io.stderr(`codex-escalate hooks test: --script goes with --event PreToolUse (the run-level hooks), not ${o.event}\n`);
        process.exitCode = EXIT_TOOL_FAILURE;
        return;
      }
      const needsCommand = event === 'exec.after' || (event === 'exec.before' && o.script === undefined);
      if (needsCommand && argv.length === 0) {
        io.stderr(`codex-escalate hooks test: ${o.event} needs a command: hooks test --event ${o.event} -- rm -rf /${event === 'exec.before' ? " (or --script 'SCRIPT' for the run-level hooks)" : ''}\n`);
        process.exitCode = EXIT_TOOL_FAILURE;
        return;
      }
      const exitCode = Number(o.exitCode);
      if (!Number.isInteger(exitCode)) {
        io.stderr('codex-escalate hooks test: --exit-code must be an integer\n');
        process.exitCode = EXIT_TOOL_FAILURE;
        return;
      }
      const cfg = await load(o, io);
      if (!cfg) return;
      const cwd = path.resolve(o.cwd ?? process.cwd());
      const engine = new HookEngine(cfg);
      try {
        const info = {
          sessionId: o.session,
          requestId: 'hooks-test-1',
          program: resolveProgram(argv[0] ?? '', cwd),
          argv,
          workdir: cwd,
          cwd,
          ...(o.pipeline !== undefined && o.pipeline !== '' ? { pipeline: o.pipeline } : {}),
        };
        let runs: readonly HookRunSummary[];
        let verdict: { decision: string; reason?: string | undefined; rewrite?: { argv: readonly string[] } | undefined } | undefined;
        // The run level (--script) decides first, as in `run`: its deny stops everything.
        let runLevel: { runs: readonly HookRunSummary[]; decision: string; reason?: string | undefined } | undefined;
        switch (event) {
          case 'exec.before': {
            if (o.script !== undefined) {
              runLevel = await engine.preRun({ sessionId: o.session, cwd, script: o.script, args: [] });
              if (runLevel.decision === 'deny' || argv.length === 0) {
                runs = [];
                verdict = runLevel;
                break;
              }
            }
            const v = await engine.preToolUse(info);
            runs = v.runs;
            verdict = v;
            break;
          }
          case 'exec.after':
            runs = await engine.postToolUse({ ...info, outcome: 'exited', exitCode, durationMs: 0 });
            break;
          case 'session_start':
            runs = await engine.sessionStart({ sessionId: o.session, cwd });
            break;
          case 'session_end':
            runs = await engine.sessionEnd({ sessionId: o.session, cwd, exitCode, durationMs: 0 });
            break;
          case 'error.occurred':
            runs = await engine.errorOccurred({ sessionId: o.session, error: argv.join(' ') || 'hooks test error', kind: 'test', cwd });
            break;
        }
        await engine.drainAsync();
        if (o.json) {
          const run = runLevel ? { run: { script: o.script, runs: runLevel.runs, decision: runLevel.decision, reason: runLevel.reason } } : {};
          io.stdout(`${JSON.stringify({ event, ...run, runs, ...(verdict ? { verdict: { decision: verdict.decision, reason: verdict.reason, rewrite: verdict.rewrite } } : {}) }, null, 2)}\n`);
        } else {
          if (runLevel) {
            io.stdout(`${CLAUDE_EVENT_NAMES[event]} (${event}, whole script): ${JSON.stringify(o.script)}\n`);
            if (runLevel.runs.length === 0) io.stdout('  no run-level hook matched\n');
            for (const r of runLevel.runs) io.stdout(formatRun(r));
            if (runLevel.decision === 'deny') io.stdout('  the run stops here: no exec is decided\n');
          }
          if (!runLevel || (runLevel.decision !== 'deny' && argv.length > 0)) {
            io.stdout(`${CLAUDE_EVENT_NAMES[event]} (${event})${argv.length ? `: ${JSON.stringify(argv)}` : ''}\n`);
            if (runs.length === 0) io.stdout('  no synchronous hook matched\n');
          }
          for (const r of runs) io.stdout(formatRun(r));
          if (verdict) {
            io.stdout(`merged decision: ${verdict.decision}${verdict.reason ? ` — ${verdict.reason}` : ''}\n`);
            if (verdict.rewrite) io.stdout(`rewrite: ${JSON.stringify(verdict.rewrite.argv)}\n`);
          }
        }
        if (verdict?.decision === 'deny') process.exitCode = 2;
      } finally {
        await engine.close();
      }
    });
}
