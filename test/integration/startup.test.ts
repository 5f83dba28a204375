/**
 * Start-up: what `codex-escalate run` loads. Every call an agent wraps pays
 * for each module the CLI imports, so a plain run must not import what only
 * a configuration needs (zod for config files and odd frames, the MCP SDK and
 * execa for hooks, pino-pretty for a terminal). The module list comes from
 * the real CLI process (a `--import` preload records every ES module and
 * CommonJS file it loads); the lazily loaded parts are checked to still load,
 * and work, when they are needed. No timings here: those are the bench's
 * (bench/run.ts, start-up section).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { cliEnv, cliPath, runCli } from '../helpers/e2e.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { requireSandbox } from '../helpers/tools.js';

const preload = path.join(packageRoot, 'test', 'fixtures', 'startup', 'module-log.mjs');

interface Loaded {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Every module URL / CommonJS path the process loaded. */
  readonly modules: readonly string[];
}

/** Run the CLI with the module-log preload, in a fresh directory with no hooks or rules anywhere (cliEnv's empty CODEX_HOME). */
function runLogged(args: readonly string[], opts: { cwd?: string } = {}): Promise<Loaded> {
  const dir = tempDir('cse-startup-');
  const log = path.join(dir, 'modules.txt');
  writeFileSync(log, '');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', preload, cliPath, ...args],
      { cwd: opts.cwd ?? dir, env: cliEnv({ MODULE_LOG: log }), timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr, modules: withBundledInputs(readFileSync(log, 'utf8').split('\n').filter(Boolean)) });
      },
    );
  });
}

const bundleDir = path.join(packageRoot, 'dist', 'cli-bundle');

/**
 * The launcher runs the CLI's bundle (scripts/bundle-cli.mjs): a loaded chunk stands for our modules it holds
 * (its meta.json), so the checks below read as module names whichever way the CLI was loaded.
 */
function withBundledInputs(modules: readonly string[]): string[] {
  const { chunks } = JSON.parse(readFileSync(path.join(bundleDir, 'meta.json'), 'utf8')) as { chunks: Record<string, string[]> };
  const out = [...modules];
  for (const m of modules) {
    if (!m.startsWith(pathToFileURL(bundleDir).href + '/')) continue;
    for (const input of chunks[path.basename(m)] ?? []) out.push(path.join(packageRoot, input));
  }
  return out;
}

const bundled = (modules: readonly string[]): boolean => modules.some((m) => m.startsWith(pathToFileURL(bundleDir).href + '/'));

/** The packages (node_modules/NAME) and our own dist modules (dist/...) in a module list. */
function packagesOf(modules: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const m of modules) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m);
    if (match) names.add(match[1]!);
  }
  return names;
}

const ours = (modules: readonly string[], rel: string): boolean => modules.some((m) => m.endsWith(`/dist/${rel}`));

/** What only a configuration, a hook or a terminal needs. */
const NOT_FOR_A_PLAIN_RUN = ['zod', '@modelcontextprotocol/sdk', 'execa', 'pino-pretty', 'smol-toml', 'shell-quote'];

describe.each(['none', 'bwrap'] as const)('run --sandbox %s -- true, with no hooks or rules configured', (sandbox) => {
  requireSandbox(sandbox);

  it('exits 0 without loading zod, the MCP SDK, execa, pino-pretty, the hooks config or the rules engine', async () => {
    const r = await runLogged(['run', '--sandbox', sandbox, '--shell', patchedBash(), '-q', '--', 'true']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The preload saw the CLI (so an empty list below is not a preload that recorded nothing).
    expect(ours(r.modules, 'cli/commands/run.js')).toBe(true);
    // What users run: the bundle, not the ~70 separate modules.
    expect(bundled(r.modules)).toBe(true);
    expect(r.modules.filter((m) => m.startsWith(pathToFileURL(path.join(packageRoot, 'dist', 'cli')).href + '/'))).toEqual([]);
    expect(ours(r.modules, 'server/escalation-server.js')).toBe(true);
    expect(packagesOf(r.modules)).toContain('pino');
    const loaded = packagesOf(r.modules);
    expect(NOT_FOR_A_PLAIN_RUN.filter((p) => loaded.has(p))).toEqual([]);
    expect(['hooks/config.js', 'hooks/engine.js', 'protocol/messages.js', 'policy/rules/parser.js', 'policy/rules/eval.js'].filter((m) => ours(r.modules, m))).toEqual([]);
  });

  it('runs a script with Run decisions and their audit lines, still without zod', async () => {
    const dir = tempDir('cse-startup-');
    const audit = path.join(dir, 'audit.jsonl');
    const r = await runLogged(['run', '--sandbox', sandbox, '--shell', patchedBash(), '--log-file', audit, '--', '/bin/echo one; /bin/true; /bin/echo two']);
    expect(r.stdout).toBe('one\ntwo\n');
    expect(r.code).toBe(0);
    const decisions = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'decision');
    expect(decisions.map((d) => [path.basename(String(d.program)), d.action])).toEqual([['echo', 'run'], ['true', 'run'], ['echo', 'run']]);
    expect(packagesOf(r.modules).has('zod')).toBe(false);
  });
});

describe('what a plain run leaves out still loads, and works, when it is needed', () => {
  it('an escalation loads the wire schemas for its SuperExecMessage, and the escalated command runs with its status', async () => {
    const dir = tempDir('cse-startup-');
    const audit = path.join(dir, 'audit.jsonl');
    // /bin/sh is dash on Debian: prefixes match the resolved program's name.
    const r = await runLogged(['run', '--sandbox', 'none', '--shell', patchedBash(), '--log-file', audit, '--escalate', 'dash -c', '--', "/bin/sh -c 'echo escalated; exit 3'; echo \"status=$?\""]);
    expect(r.stdout).toBe('escalated\nstatus=3\n');
    expect(r.code).toBe(0);
    const decisions = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'decision');
    expect(decisions.map((d) => d.action)).toEqual(['escalate']);
    expect(packagesOf(r.modules)).toContain('zod');
    expect(ours(r.modules, 'protocol/messages.js')).toBe(true);
  });

  it('a malformed request is denied with the schema\'s reason (zod is loaded for it), and the session goes on deciding', async () => {
    const forge = path.join(packageRoot, 'test', 'fixtures', 'startup', 'forge-request.py');
    const bad = JSON.stringify({ file: '', argv: ['x'], workdir: '/', env: {} });
    const r = await runLogged(['run', '--sandbox', 'none', '--shell', patchedBash(), '-q', '--', `python3 ${forge} '${bad}'; /bin/echo after`]);
    expect(r.stdout).toBe(`${JSON.stringify({ action: { Deny: { reason: 'invalid request: file: file is empty' } } })}\nafter\n`);
    expect(r.code).toBe(0);
    expect(packagesOf(r.modules)).toContain('zod');
  });

  it('a hooks file with a type error is refused with zod\'s message and the field\'s place, before anything runs', async () => {
    const dir = tempDir('cse-startup-');
    const hooks = path.join(dir, 'hooks.json');
    writeFileSync(hooks, JSON.stringify({ hooks: { PreToolUse: [{ hooks: [{ type: 'command', command: 'true', timeout: 'soon' }] }] } }));
    const r = await runLogged(['run', '--sandbox', 'none', '--shell', patchedBash(), '--hooks', hooks, '--', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`hooks did not load: ${hooks}: hooks.PreToolUse[0].hooks[0]: field "timeout": Invalid input: expected number, received string`);
    expect(packagesOf(r.modules)).toContain('zod');
  });

  it('a discovered but untrusted project hooks file is still reported (the config module loads for it)', async () => {
    const dir = tempDir('cse-startup-');
    mkdirSync(path.join(dir, '.codex'));
    writeFileSync(path.join(dir, '.codex', 'hooks.json'), JSON.stringify({ hooks: {} }));
    const r = await runLogged(['run', '--sandbox', 'none', '--shell', patchedBash(), '-q', '--', 'true'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/hooks file .*\.codex\/hooks\.json is not trusted: its hooks do not run/);
    expect(ours(r.modules, 'hooks/config.js')).toBe(true);
  });
});

describe('the shell is the CLI\'s own child, born in the session\'s sandbox cgroup (no /bin/sh trampoline)', () => {
  it.each(['none', 'bwrap'] as const)('--sandbox %s: the cgroup from the first instruction, the signals relayed, the status returned', async (sandbox) => {
    requireSandbox(sandbox);
    // $PPID is the CLI with --sandbox none (no sh in between); under bwrap it is bwrap's own process.
    const r = await runCli(['run', '--sandbox', sandbox, '--shell', patchedBash(), '-q', '--', 'grep "^0::" /proc/self/cgroup; cat /proc/$PPID/comm; kill -TERM $$']);
    const [cgroup, parent] = r.stdout.split('\n');
    expect(cgroup).toMatch(/^0::\/(.*\/)?codex-escalate-\d+-[0-9a-f-]+\/sandbox$/);
    expect(parent).toBe(sandbox === 'none' ? 'node' : 'bwrap');
    expect(r.code).toBe(128 + 15);
  });
});
