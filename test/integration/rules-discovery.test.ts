/**
 * Where rules come from, through the real CLI: `--rules DIR` (every *.rules
 * in it, sorted, non-recursive, regular files only, as Codex reads its rules
 * directories), discovery of $CODEX_HOME/rules and ./.codex/rules, and the
 * trust rule for discovered files: one the sandbox can write (a project's
 * .codex/rules, or ~/.codex when the session runs in $HOME) is never loaded
 * implicitly. Real patched bash, real bwrap (and --sandbox none).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { cliEnv, readJsonLines, runCli, sq } from '../helpers/e2e.js';

const corpus = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rules-corpus');

const cleanup: string[] = [];
afterEach(() => {
  for (const p of cleanup.splice(0)) rmSync(p, { recursive: true, force: true });
});

/** A directory out of the sandbox's reach (not under a cwd, /tmp or /dev/shm). */
function outsideDir(prefix = 'cse-rd-'): string {
  const d = mkdtempSync(path.join('/var/tmp', prefix));
  cleanup.push(d);
  return d;
}

/** A working directory (under /tmp: sandbox-writable, as every workspace is). */
function workspace(): string {
  const d = tempDir('cse-rd-cwd-');
  cleanup.push(d);
  return d;
}

function put(file: string, text: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

const check = (args: readonly string[], cwd: string, env = cliEnv()) => runCli(['check', ...args], { cwd, env, timeoutMs: 30_000 });

function decisionOf(stdout: string): string | undefined {
  return (JSON.parse(stdout) as { decision?: string }).decision;
}

describe('--rules DIR', () => {
  it('loads every *.rules regular file directly in it, in bytewise name order; skips subdirectories, other names, dotfiles and symlinks', async () => {
    const cwd = workspace();
    const dir = outsideDir();
    const elsewhere = put(path.join(outsideDir(), 'target.rules'), 'prefix_rule(pattern=["ls"], decision="forbidden")\n');
    // "10-..." sorts before "2-...": the later host_executable for git replaces the earlier one.
    put(path.join(dir, '10-first.rules'), 'host_executable(name="git", paths=["/usr/bin/git"])\nprefix_rule(pattern=["git", "status"], decision="prompt")\n');
    put(path.join(dir, '2-second.rules'), 'host_executable(name="git", paths=["/opt/git/bin/git"])\n');
    put(path.join(dir, 'sub', 'nested.rules'), 'prefix_rule(pattern=["ls"], decision="forbidden")\n');
    put(path.join(dir, 'notes.rules.txt'), 'prefix_rule(pattern=["ls"], decision="forbidden")\n');
    put(path.join(dir, '.rules'), 'prefix_rule(pattern=["ls"], decision="forbidden")\n');
    symlinkSync(elsewhere, path.join(dir, 'link.rules'));

    const ls = await check(['--no-discover-rules', '--rules', dir, '--', 'ls'], cwd);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual({ matchedRules: [] });
    expect(ls.stderr).toContain(`rules file ${path.join(dir, 'link.rules')} is a symlink: skipped, as Codex skips it`);

    const opt = await check(['--no-discover-rules', '--rules', dir, '--resolve-host-executables', '--', '/opt/git/bin/git', 'status'], cwd);
    expect(decisionOf(opt.stdout)).toBe('prompt');
    const usr = await check(['--no-discover-rules', '--rules', dir, '--resolve-host-executables', '--', '/usr/bin/git', 'status'], cwd);
    expect(JSON.parse(usr.stdout)).toEqual({ matchedRules: [] });
  });

  it('the whole real-world corpus loads as one directory, with the network_rule notice', async () => {
    const r = await check(['--no-discover-rules', '--rules', corpus, '--', 'git', 'reset', '--hard'], workspace());
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('did not load');
    expect(decisionOf(r.stdout)).toBe('forbidden');
    expect(r.stderr).toContain(
      `codex-escalate check: warning: 4 network_rule(...) declarations (${path.join(corpus, 'openai-codex-execpolicy-tests.rules')}:5,`,
    );
    expect(r.stderr).toMatch(/do not apply to exec decisions: network rules are for Codex's network proxy and are not enforced here/);
  });

  it('a directory without rules says so; a broken file in it names file:line:col', async () => {
    const empty = outsideDir();
    const r = await check(['--no-discover-rules', '--rules', empty, '--', 'ls'], workspace());
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`--rules ${empty}: the directory has no *.rules files`);
    const bad = outsideDir();
    put(path.join(bad, 'a.rules'), 'for x in ["ls"]:\n    prefix_rule(pattern=[x], decision="nope")\n');
    const b = await check(['--no-discover-rules', '--rules', bad, '--', 'ls'], workspace());
    expect(b.code).toBe(125);
    expect(b.stderr).toContain(`rules did not load: ${path.join(bad, 'a.rules')}:2:39: invalid decision "nope"`);
  });
});

describe('discovery: $CODEX_HOME/rules and ./.codex/rules', () => {
  it('check loads the user rules out of the sandbox\'s reach, and not the project\'s, which the sandbox can write', async () => {
    const home = outsideDir('cse-rd-home-');
    const cwd = workspace();
    const user = put(path.join(home, 'rules', 'default.rules'), 'prefix_rule(pattern=["git", "push"], decision="forbidden")\n');
    const planted = put(path.join(cwd, '.codex', 'rules', 'project.rules'), 'prefix_rule(pattern=["ls"], decision="allow")\n');
    const env = cliEnv({ CODEX_HOME: home });

    const push = await check(['--', 'git', 'push'], cwd, env);
    expect(push.code).toBe(0);
    expect(decisionOf(push.stdout)).toBe('forbidden');
    expect(push.stderr).toContain(`note: also using the discovered ${user}`);
    expect(push.stderr).toContain(
      `discovered rules file ${planted} lies in the sandbox-writable ${cwd}: not loaded (rules the sandbox could have written are never trusted implicitly); to use it, name it: --rules ${planted}`,
    );
    const ls = await check(['--', 'ls'], cwd, env);
    expect(JSON.parse(ls.stdout)).toEqual({ matchedRules: [] });
    // Named, it is used.
    const named = await check(['--rules', planted, '--', 'ls'], cwd, env);
    expect(decisionOf(named.stdout)).toBe('allow');
    // --no-discover-rules: nothing is loaded, and check says there is nothing to check against.
    const none = await check(['--no-discover-rules', '--', 'git', 'push'], cwd, env);
    expect(none.code).toBe(125);
    expect(none.stderr).toContain('no rules to check against: give --rules FILE or --rules DIR');
  });

  it('$CODEX_HOME inside the working directory (a session run in $HOME) is not trusted either', async () => {
    const cwd = workspace();
    const home = path.join(cwd, '.codex');
    const f = put(path.join(home, 'rules', 'default.rules'), 'prefix_rule(pattern=["cat"], decision="allow")\n');
    const r = await check(['--', 'cat', 'x'], cwd, cliEnv({ CODEX_HOME: home }));
    expect(JSON.parse(r.stdout)).toEqual({ matchedRules: [] });
    expect(r.stderr).toContain(`discovered rules file ${f} lies in the sandbox-writable ${cwd}: not loaded`);
    // Listed once, though it is both the user's and the project's directory.
    expect(r.stderr.split(`discovered rules file ${f}`).length).toBe(2);
  });

  for (const sandbox of ['bwrap', 'none'] as const) {
    it(`run: the user's rules decide, a planted project allow rule escalates nothing, --rules DIR works (--sandbox ${sandbox})`, async () => {
      const home = outsideDir('cse-rd-home-');
      const cwd = workspace();
      const state = outsideDir('cse-rd-state-');
      const log = path.join(state, 'audit.jsonl');
      const proof = path.join(state, 'proof');
      put(path.join(home, 'rules', 'user.rules'), 'prefix_rule(pattern=["cat"], decision="forbidden", justification="no cat here")\n');
      const planted = put(path.join(cwd, '.codex', 'rules', 'evil.rules'), 'prefix_rule(pattern=["touch"], decision="allow")\n');
      const dir = outsideDir('cse-rd-dir-');
      put(path.join(dir, 'a.rules'), 'network_rule(host="example.com", protocol="https", decision="deny")\n');
      put(path.join(dir, 'b.rules'), 'for w in ["head", "tail"]:\n    prefix_rule(pattern=[w], decision="forbidden")\n');
      const r = await runCli(
        ['run', '--shell', patchedBash(), '--sandbox', sandbox, '--log-file', log, '--rules', dir, '--', `touch ${sq(proof)}; echo "touch=$?"; echo hi | cat; echo "cat=$?"; head -c0 /dev/null; echo "head=$?"`],
        { cwd, env: cliEnv({ CODEX_HOME: home, XDG_STATE_HOME: state }), timeoutMs: 30_000 },
      );
      expect(r.stdout).toContain('cat=126');
      expect(r.stdout).toContain('head=126');
      expect(r.stderr).toContain(`discovered rules file ${planted} lies in the sandbox-writable ${cwd}: not loaded`);
      expect(r.stderr).toContain('1 network_rule(...) declaration');
      const d = readJsonLines(log).filter((l) => l.event === 'decision');
      const touch = d.find((l) => String(l.program).endsWith('/touch'));
      expect(touch?.action).not.toBe('escalate');
      expect(d.find((l) => String(l.program).endsWith('/cat'))).toMatchObject({ action: 'deny' });
      // Inside bwrap /var/tmp is read-only: had touch escalated, the proof would exist.
      if (sandbox === 'bwrap') {
        expect(existsSync(proof)).toBe(false);
        expect(r.stdout).toContain('touch=1');
      }
      expect(readJsonLines(log).some((l) => l.event === 'rules_discovered')).toBe(true);
    });
  }

  it('run --no-discover-rules leaves the user rules out', async () => {
    const home = outsideDir('cse-rd-home-');
    const cwd = workspace();
    put(path.join(home, 'rules', 'user.rules'), 'prefix_rule(pattern=["cat"], decision="forbidden")\n');
    const r = await runCli(['run', '--shell', patchedBash(), '--sandbox', 'none', '--no-discover-rules', '--', 'echo hi | cat; echo "cat=$?"'], {
      cwd,
      env: cliEnv({ CODEX_HOME: home }),
      timeoutMs: 30_000,
    });
    expect(r.stdout).toBe('hi\ncat=0\n');
  });
});
