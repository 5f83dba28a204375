/**
 * The exit-status table of docs/cli.md, every row, with the real CLI: 125 is
 * the tool's own failure (nothing ran), anything else is the script's or the
 * command's documented answer. The test also reads the table itself, so a row
 * added to the docs without a case here (or the reverse) fails.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { cliEnv, runCli, writeHooksJson } from '../helpers/e2e.js';
import { patchedBash, tempDir } from '../helpers/harness.js';

const dir = tempDir('cse-exit-codes-');
const rules = path.join(dir, 'policy.rules');
writeFileSync(rules, 'prefix_rule(pattern = ["git", "push"], decision = "forbidden")\n');
const brokenRules = path.join(packageRoot, 'test', 'fixtures', 'rules', 'broken.rules');
const badHooks = writeHooksJson(dir, { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 42 }] }] }, 'bad-hooks.json');
const runGuard = writeHooksJson(dir, { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: `echo '{"decision":"block","reason":"not today"}'`, scope: 'run', timeout: 10 }] }] }, 'run-guard.json');
const denyHook = writeHooksJson(dir, { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: `echo '{"decision":"block","reason":"no"}'`, timeout: 10 }] }] }, 'deny-hook.json');
const log = path.join(dir, 'audit.jsonl');
writeFileSync(
  log,
  JSON.stringify({ event: 'decision', session: 's', request: '1', program: '/usr/bin/git', file: '/usr/bin/git', argv: ['git', 'push'], workdir: dir, action: 'run', reason: null }) + '\n',
);
const run = ['run', '--shell', patchedBash(), '--sandbox', 'none', '--no-discover-hooks', '--cwd', dir];

interface Case {
  readonly command: string;
  /** As the docs' "status" column says it. */
  readonly status: string;
  readonly what: string;
  readonly args: readonly string[];
  readonly code: number;
  readonly stderr?: RegExp;
  readonly env?: NodeJS.ProcessEnv;
}

const cases: Case[] = [
  { command: 'run', status: "script's own", what: 'exit 7', args: [...run, '--log-file', '/dev/null', '--', 'exit 7'], code: 7 },
  { command: 'run', status: "script's own", what: 'CMD ARGS: the command\'s status', args: [...run, '--log-file', '/dev/null', '--', 'sh', '-c', 'exit 3'], code: 3 },
  { command: 'run', status: "script's own", what: 'a denied exec is 126 inside the script', args: [...run, '--log-file', '/dev/null', '--deny', 'true', '--', '/bin/true'], code: 126 },
  { command: 'run', status: '125', what: 'nothing after --', args: [...run], code: 125, stderr: /nothing to run/ },
  { command: 'run', status: '125', what: 'rules that do not load', args: [...run, '--rules', brokenRules, '--', 'true'], code: 125, stderr: /rules did not load: .*broken\.rules:3:42/ },
  { command: 'run', status: '125', what: 'hooks that do not load', args: [...run, '--hooks', badHooks, '--', 'true'], code: 125, stderr: /hooks did not load/ },
  { command: 'run', status: '125', what: '--shell that does not exist', args: ['run', '--shell', '/nonexistent/bash', '--', 'true'], code: 125, stderr: /--shell \/nonexistent\/bash: cannot use it: no such file/ },
  { command: 'run', status: '125', what: '--shell that is not the patched bash', args: ['run', '--sandbox', 'bwrap', '--shell', '/bin/bash', '--', 'true'], code: 125, stderr: /--shell \/bin\/bash: not the patched bash/ },
  { command: 'run', status: '125', what: '--cwd that is not a directory', args: ['run', '--shell', patchedBash(), '--cwd', '/nonexistent/dir', '--', 'true'], code: 125, stderr: /--cwd \/nonexistent\/dir: not a directory/ },
  { command: 'run', status: '125', what: 'an unwritable --log-file', args: [...run, '--log-file', '/nonexistent/dir/audit.jsonl', '--', 'true'], code: 125, stderr: /--log-file \/nonexistent\/dir\/audit\.jsonl: cannot write \(ENOENT\); nothing was run/ },
  { command: 'run', status: '125', what: 'a bad --deny pattern', args: [...run, '--deny', 'a | b', '--', 'true'], code: 125, stderr: /bad --deny\/--escalate pattern/ },
  { command: 'run', status: '126', what: 'a run-level hook refused the script', args: [...run, '--log-file', '/dev/null', '--hooks', runGuard, '--', 'true'], code: 126, stderr: /denied: blocked by hook: .*not today/ },
  { command: 'check', status: '0', what: 'a forbidden command is still an evaluation', args: ['check', '-r', rules, 'git', 'push'], code: 0 },
  { command: 'check', status: '125', what: 'no --rules and none discovered', args: ['check', '--no-discover-rules', 'git', 'push'], code: 125, stderr: /no rules to check against/ },
  { command: 'check', status: '125', what: 'rules that do not load', args: ['check', '-r', brokenRules, 'ls'], code: 125, stderr: /rules did not load/ },
  { command: 'explain', status: '0', what: 'a denied command is explained', args: ['explain', '--cwd', dir, '-r', rules, 'git', 'push'], code: 0 },
  { command: 'explain', status: '125', what: 'a command not on PATH', args: ['explain', '--cwd', dir, 'no-such-command-here'], code: 125, stderr: /no-such-command-here: not found/ },
  { command: 'explain', status: '125', what: 'rules that do not load', args: ['explain', '--cwd', dir, '-r', brokenRules, 'ls'], code: 125, stderr: /rules did not load/ },
  { command: 'replay', status: '0', what: 'nothing changed', args: ['replay', log, '--cwd', dir], code: 0 },
  { command: 'replay', status: '1', what: 'git push is now forbidden', args: ['replay', log, '--cwd', dir, '-r', rules], code: 1 },
  { command: 'explain', status: '125', what: '--cwd that is not a directory', args: ['explain', '--cwd', '/nonexistent/dir', 'ls'], code: 125, stderr: /--cwd \/nonexistent\/dir: not a directory/ },
  { command: 'replay', status: '125', what: 'a log that cannot be read', args: ['replay', path.join(dir, 'missing.jsonl')], code: 125, stderr: /cannot read the audit log/ },
  { command: 'hooks test', status: '0', what: 'not denied', args: ['hooks', 'test', '--no-discover-hooks', '--event', 'PreToolUse', '--hooks', runGuard, '--', 'ls'], code: 0 },
  { command: 'hooks test', status: '2', what: 'a hook denied', args: ['hooks', 'test', '--no-discover-hooks', '--event', 'PreToolUse', '--hooks', denyHook, '--', 'ls'], code: 2 },
  { command: 'hooks', status: '125', what: 'hooks that do not load', args: ['hooks', 'list', '--no-discover-hooks', '--hooks', badHooks], code: 125, stderr: /bad-hooks\.json/ },
  { command: 'doctor', status: '0', what: 'every component works', args: ['doctor'], code: 0, env: { CODEX_ESCALATE_BASH: patchedBash() } },
  { command: 'doctor', status: '1', what: 'a stock bash as $CODEX_ESCALATE_BASH', args: ['doctor'], code: 1, env: { CODEX_ESCALATE_BASH: '/bin/bash' } },
  { command: 'any', status: '125', what: 'an unknown option', args: ['run', '--no-such-flag', '--', 'true'], code: 125, stderr: /^codex-escalate: unknown option '--no-such-flag'; see "codex-escalate run --help"\n$/ },
  { command: 'any', status: '125', what: 'a bad choice', args: ['explain', '--default', 'maybe', 'ls'], code: 125, stderr: /^codex-escalate: option '--default <action>' argument 'maybe' is invalid\. Allowed choices are run, deny, prompt\.; see "codex-escalate explain --help"\n$/ },
  { command: 'any', status: '125', what: 'an unknown command', args: ['frobnicate'], code: 125, stderr: /unknown command 'frobnicate'/ },
];

/** The rows of the exit-status table in docs/cli.md, as "command | status". */
function documentedRows(): string[] {
  const doc = readFileSync(path.join(packageRoot, 'docs', 'cli.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Exit status'));
  return [...table.matchAll(/^\| ([a-z ]+) \| (\d+|script's own) \| [^|]+ \|$/gm)].map((m) => `${m[1]!.trim()} | ${m[2]!.trim()}`);
}

describe('exit status table (docs/cli.md)', () => {
  it('every documented row has a case here, and every case a row', () => {
    const rows = documentedRows();
    expect(rows.length).toBeGreaterThan(10);
    expect(new Set(cases.map((c) => `${c.command} | ${c.status}`))).toEqual(new Set(rows));
  });

  it.each(cases)('$command: $what -> $code', async (c) => {
    const r = await runCli(c.args, { env: cliEnv(c.env ?? {}), cwd: dir, timeoutMs: 60_000 });
    expect(r.timedOut).toBe(false);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: c.code });
    if (c.stderr) expect(r.stderr).toMatch(c.stderr);
    // 125 means nothing ran: no script output.
    if (c.code === 125) expect(r.stdout).toBe('');
  });

  it('--help and --version are 0', async () => {
    for (const args of [['--help'], ['--version'], ['run', '--help'], ['doctor', '--help']]) {
      const r = await runCli(args, { env: cliEnv() });
      expect(r.code, args.join(' ')).toBe(0);
    }
  });
});
