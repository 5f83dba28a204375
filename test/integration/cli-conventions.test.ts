/**
 * CLI conventions a user notices (issue 15, items 5, 7, 8, 9): `run -- CMD ARGS`
 * runs exactly that command through the patched shell, -c gives positional
 * parameters, consistent option names, short errors, an unpatched shell refused.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliEnv, fixtureHook, readJsonLines, runCli, writeHooksJson } from '../helpers/e2e.js';
import { patchedBash, tempDir } from '../helpers/harness.js';

const base = ['run', '--shell', patchedBash(), '--sandbox', 'none', '--no-discover-hooks'];

function decisions(log: string): Record<string, unknown>[] {
  return readJsonLines(log).filter((l) => l.event === 'decision');
}

describe('run -- CMD ARGS', () => {
  it('several words are one command with its arguments, passed exactly (spaces, quotes, $, newlines, empty words), and the exec is decided', async () => {
    const dir = tempDir('cse-conv-');
    const log = path.join(dir, 'audit.jsonl');
    const odd = ['a b', `it's "quoted"`, '$HOME $(id) `id`', 'line1\nline2', '', '--flag', '*', '\\', ';|&'];
    const r = await runCli([...base, '--cwd', dir, '--log-file', log, '--', '/usr/bin/printf', '<%s>\\n', ...odd], { env: cliEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(odd.map((w) => `<${w}>\n`).join(''));
    expect(decisions(log).map((d) => [d.program, d.argv, d.action])).toEqual([['/usr/bin/printf', ['/usr/bin/printf', '<%s>\\n', ...odd], 'run']]);
  });

  it('`run -- ls -la FILE` lists that file (the words are not $0 $1 of a script)', async () => {
    const dir = tempDir('cse-conv-');
    const file = path.join(dir, 'only-this');
    writeFileSync(file, 'x');
    writeFileSync(path.join(dir, 'not-this'), 'y');
    const r = await runCli([...base, '--cwd', dir, '--log-file', '/dev/null', '--', 'ls', '-la', file], { env: cliEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('only-this');
    expect(r.stdout).not.toContain('not-this');
  });

  it('the command is an exec like any other: a builtin name runs the program, and --deny / -r rules apply to it', async () => {
    const dir = tempDir('cse-conv-');
    const log = path.join(dir, 'audit.jsonl');
    const echo = await runCli([...base, '--cwd', dir, '--log-file', log, '--', 'echo', '-n', 'hi'], { env: cliEnv() });
    expect(echo.stdout).toBe('hi');
    expect(decisions(log).map((d) => d.program)).toEqual(['/usr/bin/echo']);
    const denied = await runCli([...base, '--cwd', dir, '--log-file', '/dev/null', '--deny', 'ls -la', '--', 'ls', '-la'], { env: cliEnv() });
    expect(denied.code).toBe(126);
    expect(denied.stderr).toContain('denied: matches --deny "ls -la"');
    const rules = path.join(dir, 'p.rules');
    writeFileSync(rules, 'prefix_rule(pattern = ["touch"], decision = "forbidden", justification = "no touching")\n');
    const r = await runCli([...base, '--cwd', dir, '--log-file', '/dev/null', '-r', rules, '--', 'touch', path.join(dir, 'x')], { env: cliEnv() });
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('no touching');
  });

  it('a run-level hook sees the command as one quoted command line (what a user would type)', async () => {
    const dir = tempDir('cse-conv-');
    const dump = path.join(dir, 'events.log');
    const hooks = writeHooksJson(dir, { PreToolUse: [{ matcher: 'Bash', hooks: [fixtureHook('record-event.sh', [dump], { scope: 'run' })] }] });
    const r = await runCli([...base, '--cwd', dir, '--log-file', '/dev/null', '--hooks', hooks, '--', '/usr/bin/printf', '%s', "it's", 'a\nb'], { env: cliEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("it'sa\nb");
    const payload = JSON.parse(readFileSync(dump, 'utf8').split('\t')[2]!) as { tool_input: { command: string } };
    expect(payload.tool_input.command).toBe(`/usr/bin/printf %s 'it'\\''s' $'a\\nb'`);
  });

  it('one word is a script; -c SCRIPT NAME ARGS gives positional parameters, options after it included', async () => {
    const one = await runCli([...base, '--log-file', '/dev/null', '--', 'echo hello | tr a-z A-Z'], { env: cliEnv() });
    expect(one.stdout).toBe('HELLO\n');
    const c = await runCli([...base, '--log-file', '/dev/null', '-c', 'printf "[%s]" "$0" "$@"', 'name', '--not-ours', '', 'x y'], { env: cliEnv() });
    expect(c.code).toBe(0);
    expect(c.stdout).toBe('[name][--not-ours][][x y]');
  });
});

describe('options and help', () => {
  it('help shows no "(default: [])", one default for --network, the same policy option names in run, explain and replay', async () => {
    for (const cmd of ['run', 'explain', 'replay']) {
      const h = await runCli([cmd, '--help'], { env: cliEnv() });
      expect(h.code).toBe(0);
      expect(h.stdout).not.toContain('(default: [])');
      for (const o of ['-r, --rules <path>', '--deny <prefix>', '--escalate <prefix>', '--default <action>', '--hooks <file>', '--no-discover-hooks', '--cwd <dir>', '--writable <path>', '--approval <mode>']) {
        expect(h.stdout, `${cmd}: ${o}`).toContain(o);
      }
    }
    const run = (await runCli(['run', '--help'], { env: cliEnv() })).stdout;
    const network = run.slice(run.indexOf('--network'), run.indexOf('--env-allow'));
    expect(network.match(/default/g)).toHaveLength(1);
    expect(run).toMatch(/-q, --quiet/);
    expect(run).toMatch(/--log-level <level>/);
    const hooksTest = (await runCli(['hooks', 'test', '--help'], { env: cliEnv() })).stdout;
    expect(hooksTest).toContain('--no-discover-hooks');
    expect(hooksTest).not.toMatch(/--no-discover\s/);
  });

  it('doctor --help describes the command', async () => {
    const r = await runCli(['doctor', '--help'], { env: cliEnv() });
    expect(r.stdout).toMatch(/Check every component codex-escalate needs/);
    expect(r.stdout).toMatch(/Exit status: 0 when every required check passed/);
  });

  it('the old --no-discover spelling still works (hidden) for hooks and run', async () => {
    const hooks = await runCli(['hooks', 'list', '--no-discover'], { env: cliEnv() });
    expect(hooks.code).toBe(0);
    const run = await runCli([...base, '--no-discover', '--log-file', '/dev/null', '--', 'true'], { env: cliEnv() });
    expect(run.code).toBe(0);
  });

  it('an unknown flag is one short line, not the help', async () => {
    const r = await runCli(['check', '--bogus', '-r', 'x', 'ls'], { env: cliEnv() });
    expect(r.code).toBe(125);
    expect(r.stderr).toBe('codex-escalate: unknown option \'--bogus\'; see "codex-escalate check --help"\n');
    const sub = await runCli(['hooks', 'list', '--nope'], { env: cliEnv() });
    expect(sub.stderr).toBe('codex-escalate: unknown option \'--nope\'; see "codex-escalate hooks list --help"\n');
  });
});

describe('an unpatched shell is refused', () => {
  it('run --shell /bin/bash and $CODEX_ESCALATE_BASH=/bin/bash stop before anything runs; the patched build is accepted', async () => {
    const dir = tempDir('cse-conv-');
    const marker = path.join(dir, 'ran');
    const flag = await runCli(['run', '--shell', '/bin/bash', '--cwd', dir, '--', `touch ${marker}`], { env: cliEnv() });
    expect(flag.code).toBe(125);
    expect(flag.stderr).toBe(`codex-escalate: --shell /bin/bash: not the patched bash (no exec-wrapper support in the binary): its execs would not be decided; omit --shell to use the patched build, or build one with "npm run build:bash"\n`);
    const env = await runCli(['run', '--cwd', dir, '--', `touch ${marker}`], { env: cliEnv({ CODEX_ESCALATE_BASH: '/bin/bash' }) });
    expect(env.code).toBe(125);
    expect(env.stderr).toContain('CODEX_ESCALATE_BASH /bin/bash: not the patched bash');
    // A copy of the patched build under another name is still recognised: the check reads the binary, not its path.
    const copy = path.join(dir, 'mybash');
    writeFileSync(copy, readFileSync(patchedBash()), { mode: 0o755 });
    const ok = await runCli(['run', '--shell', copy, '--sandbox', 'none', '--cwd', dir, '--log-file', '/dev/null', '--', `touch ${marker}`], { env: cliEnv() });
    expect(ok.code).toBe(0);
    expect(readFileSync(marker, 'utf8')).toBe('');
    // The hidden --unpatched-shell (bash's test-suite runner compares against stock bash) runs it, saying its execs are not decided.
    const cmp = await runCli(['run', '--shell', '/bin/bash', '--unpatched-shell', '--sandbox', 'none', '--cwd', dir, '--log-file', '/dev/null', '--', 'echo compared'], { env: cliEnv() });
    expect(cmp).toMatchObject({ code: 0, stdout: 'compared\n' });
    expect(cmp.stderr).toContain('--unpatched-shell: the execs of this shell are not decided');
    const alone = await runCli(['run', '--unpatched-shell', '--cwd', dir, '--', 'true'], { env: cliEnv() });
    expect(alone.code).toBe(125);
    expect(alone.stderr).toContain('--unpatched-shell goes with --shell PATH');
  });

  it('doctor says FAIL for a stock bash in $CODEX_ESCALATE_BASH, without running it', async () => {
    const r = await runCli(['doctor'], { env: cliEnv({ CODEX_ESCALATE_BASH: '/bin/bash' }) });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL +patched bash: \/bin\/bash: not the patched bash/m);
    expect(r.stdout).toMatch(/fix: unset CODEX_ESCALATE_BASH or point it at the patched build/);
  });
});
