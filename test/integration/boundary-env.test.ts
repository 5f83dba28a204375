/**
 * What crosses the sandbox boundary besides the exec itself: the environment
 * escalated commands get (an allow list; identity and search variables are
 * the server's), the environment the sandboxed shell starts with (no
 * secrets by default), and the log lines a hostile program name can print.
 * All through the real CLI, with bubblewrap and without. A proof file under
 * /var/tmp appearing means code ran outside the sandbox (inside bwrap the
 * root is read-only).
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliEnv, cliPath, onPty, readJsonLines, runCli, writeExecutable } from '../helpers/e2e.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { lacks, requireSandbox, requireTool } from '../helpers/tools.js';

const proofs: string[] = [];
const dirs: string[] = [];
/** A fresh proof-file path under /var/tmp (removed after the test). */
function proof(what: string): string {
  const p = `/var/tmp/cse-envlog-${what}-${randomUUID()}`;
  proofs.push(p);
  return p;
}
afterEach(() => {
  for (const p of proofs.splice(0)) rmSync(p, { force: true });
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A git work tree made on the host (its own .git/config is clean). */
function gitRepo(): string {
  const dir = tempDir('cse-envlog-repo-');
  dirs.push(dir);
  return dir;
}

const run = (sandbox: string, args: readonly string[], script: string, env?: NodeJS.ProcessEnv) =>
  runCli(['run', '--shell', patchedBash(), '--sandbox', sandbox, ...args, '--', script], { env: env ?? cliEnv(), timeoutMs: 30_000 });

describe.each(['bwrap', 'none'])('escalated commands: the environment is an allow list (--sandbox %s)', (sandbox) => {
  requireSandbox(sandbox);
  // --no-git-safe in this pair: git safe mode would neutralise fsmonitor anyway; these tests are about the environment alone.
  it.skipIf(lacks('git'))('HOME or XDG_CONFIG_HOME pointing at a hostile git config does not reach an escalated git (core.fsmonitor never runs)', async () => {
    const repo = gitRepo();
    const log = path.join(repo, '..', `${path.basename(repo)}.audit.jsonl`);
    dirs.push(log);
    const viaHome = proof('home');
    const viaXdg = proof('xdg');
    const script = [
      'git init -q . || exit 9',
      'mkdir -p h x/git',
      `printf '[core]\\n\\tfsmonitor = "touch ${viaHome} #"\\n' > h/.gitconfig`,
      `printf '[core]\\n\\tfsmonitor = "touch ${viaXdg} #"\\n' > x/git/config`,
      'HOME=$PWD/h git status >/dev/null 2>&1',
      'XDG_CONFIG_HOME=$PWD/x git status >/dev/null 2>&1',
      'echo done',
    ].join('\n');
    const r = await run(sandbox, ['--cwd', repo, '--escalate', 'git', '--no-git-safe', '--log-file', log], script);
    expect(r.stderr).not.toMatch(/denied/);
    expect(r.stdout).toBe('done\n');
    expect(existsSync(viaHome)).toBe(false);
    expect(existsSync(viaXdg)).toBe(false);
    const gits = readJsonLines(log).filter((l) => l.event === 'decision' && l.program === '/usr/bin/git');
    expect(gits.map((l) => l.action)).toEqual(['escalate', 'escalate', 'escalate']);
    expect(gits[1]!.env_dropped).toContain('HOME');
    expect(gits[2]!.env_dropped).toContain('XDG_CONFIG_HOME');
  });

  it.skipIf(lacks('git'))("the server's own HOME is the one an escalated git reads (the same config there does run: the check above can fail)", async () => {
    const repo = gitRepo();
    const home = tempDir('cse-envlog-home-');
    dirs.push(home);
    const ran = proof('server-home');
    writeFileSync(path.join(home, '.gitconfig'), `[core]\n\tfsmonitor = "touch ${ran} #"\n`);
    const r = await run(sandbox, ['--cwd', repo, '--escalate', 'git', '--no-git-safe', '--log-file', '/dev/null'], 'git init -q . && git status >/dev/null 2>&1; echo done', cliEnv({ HOME: home }));
    expect(r.stdout).toBe('done\n');
    expect(existsSync(ran)).toBe(true);
  });

  it.skipIf(lacks('git'))('GIT_TRACE* and other unlisted variables cannot make an escalated git write a host path', async () => {
    const repo = gitRepo();
    const names = ['GIT_TRACE', 'GIT_TRACE_PACKET', 'GIT_TRACE_SETUP', 'GIT_TRACE_PERFORMANCE', 'GIT_TRACE2', 'GIT_TRACE2_EVENT', 'GIT_TRACE2_PERF'];
    const files = names.map((n) => proof(n.toLowerCase()));
    const assigns = names.map((n, i) => `${n}=${files[i]}`).join(' ');
    const r = await run(sandbox, ['--cwd', repo, '--escalate', 'git', '--log-file', '/dev/null'], `git init -q . && ${assigns} git status >/dev/null 2>&1; echo "status=$?"`);
    expect(r.stdout).toBe('status=0\n');
    for (const f of files) expect(existsSync(f), f).toBe(false);
  });

  it("PATH cannot lead an escalated #!/usr/bin/env bash program to the sandbox's own bash", async () => {
    // The allowed tool lives outside the working directory, on a path both views share (not /tmp: it is private in bwrap).
    const tools = mkdtempSync('/var/tmp/cse-envlog-tools-');
    dirs.push(tools);
    const tool = writeExecutable(path.join(tools, 'gtool'), '#!/usr/bin/env bash\necho "tool ran"\n');
    const rules = path.join(tools, 'tool.rules');
    writeFileSync(rules, `host_executable(name = "gtool", paths = [${JSON.stringify(tool)}])\nprefix_rule(pattern = ["gtool"], decision = "allow")\n`);
    const cwd = tempDir('cse-envlog-cwd-');
    dirs.push(cwd);
    const hijacked = proof('path');
    const script = [
      'mkdir -p e',
      `printf '#!/bin/sh\\ntouch ${hijacked}\\necho hijacked\\n' > e/bash && chmod +x e/bash`,
      `PATH=$PWD/e:$PATH ${tool}`,
      `PATH=$PWD/e ${tool}`,
    ].join('\n');
    const r = await run(sandbox, ['--cwd', cwd, '--rules', rules, '--log-file', '/dev/null'], script);
    expect(r.stdout).toBe('tool ran\ntool ran\n');
    expect(existsSync(hijacked)).toBe(false);
  });

  it('locale and terminal variables cross with checked values; a locale or TZ path into the workspace does not', async () => {
    const cwd = tempDir('cse-envlog-loc-');
    dirs.push(cwd);
    const r = await run(
      sandbox,
      ['--cwd', cwd, '--escalate', 'env', '--log-file', '/dev/null'],
      `LANG=C.UTF-8 LC_TIME=C TERM=xterm-256color COLUMNS=80 LC_CTYPE=$PWD/loc TZ=$PWD/tz LANGUAGE=../../x KEEP=1 /usr/bin/env`,
    );
    const lines = r.stdout.split('\n');
    expect(lines).toEqual(expect.arrayContaining(['LANG=C.UTF-8', 'LC_TIME=C', 'TERM=xterm-256color', 'COLUMNS=80']));
    for (const n of ['LC_CTYPE', 'TZ', 'LANGUAGE', 'KEEP']) expect(lines.some((l) => l.startsWith(`${n}=`)), n).toBe(false);
  });
});

describe('escalation environment options are checked', () => {
  it('--env-allow PATH (or HOME, XDG_*) is refused with a clear error: those always come from the server', async () => {
    for (const name of ['PATH', 'HOME', 'XDG_CONFIG_HOME']) {
      const r = await run('none', ['--env-allow', name], 'true');
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`--env-allow ${name}: PATH, HOME, USER, LOGNAME, SHELL, TMPDIR and XDG_* always come from the server's environment`);
    }
  });

  it.skipIf(lacks('bwrap'))('--env-allow lets a named variable cross; --env-deny drops a default one', async () => {
    const r = await run('bwrap', ['--escalate', 'env', '--env-allow', 'KEEP', '--env-deny', 'TERM', '--log-file', '/dev/null'], 'KEEP=1 TERM=xterm /usr/bin/env');
    const lines = r.stdout.split('\n');
    expect(lines).toContain('KEEP=1');
    expect(lines.some((l) => l.startsWith('TERM='))).toBe(false);
  });
});

const secrets = { SECRET_TOKEN: 's1', AWS_SECRET_ACCESS_KEY: 's2', GITHUB_TOKEN: 's3', DB_PASSWORD: 's4', SSH_AUTH_SOCK: '/x/agent' };

describe.each(['bwrap', 'none'])('the sandboxed shell does not inherit secrets (--sandbox %s)', (sandbox) => {
  requireSandbox(sandbox);
  const env = () => cliEnv({ ...secrets, KEEP_ME: 'k', GIT_AUTHOR_NAME: 'A U Thor' });

  it('by default: secret-looking names are absent inside, other names present, one notice line naming no values', async () => {
    const r = await run(sandbox, ['--log-file', '/dev/null'], 'env', env());
    expect(r.code).toBe(0);
    const names = r.stdout.split('\n').map((l) => l.split('=')[0]);
    for (const n of Object.keys(secrets)) expect(names, n).not.toContain(n);
    expect(names).toEqual(expect.arrayContaining(['KEEP_ME', 'GIT_AUTHOR_NAME', 'PATH', 'HOME']));
    const notices = r.stderr.split('\n').filter((l) => l.includes('withheld from the sandboxed shell'));
    expect(notices).toEqual([
      'codex-escalate: 5 environment variables withheld from the sandboxed shell (AWS_SECRET_ACCESS_KEY, DB_PASSWORD, GITHUB_TOKEN, SECRET_TOKEN, SSH_AUTH_SOCK); --shell-env inherit=all keeps them',
    ]);
    for (const v of Object.values(secrets)) expect(r.stderr).not.toContain(`=${v}`);
  });

  it('an escalated command cannot get them either (they never entered the sandbox)', async () => {
    const r = await run(sandbox, ['--escalate', 'env', '--env-allow', 'SECRET_TOKEN', '--log-file', '/dev/null'], '/usr/bin/env', env());
    expect(r.stdout).not.toContain('SECRET_TOKEN');
    expect(r.stdout).toContain('PATH=');
  });

  it('inherit=all keeps them, with no notice', async () => {
    const r = await run(sandbox, ['--shell-env', 'inherit=all', '--log-file', '/dev/null'], 'env', env());
    const lines = r.stdout.split('\n');
    for (const [k, v] of Object.entries(secrets)) expect(lines).toContain(`${k}=${v}`);
    expect(r.stderr).not.toContain('withheld');
  });

  it('inherit=core keeps only the basics; --shell-env-exclude (glob, any case) and --shell-env-set apply after', async () => {
    const r = await run(sandbox, ['--shell-env', 'inherit=core', '--shell-env-exclude', 'lc_*', '--shell-env-set', 'ADDED=yes', '--log-file', '/dev/null'], 'env', env());
    const names = r.stdout.split('\n').map((l) => l.split('=')[0]);
    expect(names).toEqual(expect.arrayContaining(['PATH', 'HOME', 'ADDED']));
    for (const n of ['KEEP_ME', 'GIT_AUTHOR_NAME', 'LC_ALL', 'CODEX_HOME', ...Object.keys(secrets)]) expect(names, n).not.toContain(n);
    expect(r.stderr).toMatch(/^codex-escalate: \d+ environment variables withheld from the sandboxed shell \(.*\)$/m);
  });

  it('inherit=none, or excluding the protocol variables, still intercepts every exec (they are set after the policy)', async () => {
    for (const args of [['--shell-env', 'inherit=none'], ['--shell-env-exclude', 'EXEC_WRAPPER', '--shell-env-exclude', 'CODEX_*']]) {
      const r = await run(sandbox, [...args, '--deny', 'touch', '--log-file', '/dev/null'], 'touch x; echo "touch=$?"', env());
      expect(r.stdout, args.join(' ')).toBe('touch=126\n');
      expect(r.stderr).toContain('denied: matches --deny "touch"');
    }
  });
});

describe('shell environment options are checked', () => {
  it('bad --shell-env / --shell-env-set values are clear errors', async () => {
    const bad = await run('none', ['--shell-env', 'inherit=most'], 'true');
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('--shell-env "inherit=most": expected inherit=all, inherit=core, inherit=none or inherit=default');
    const set = await run('none', ['--shell-env-set', 'NOEQUALS'], 'true');
    expect(set.code).toBe(125);
    expect(set.stderr).toContain('--shell-env-set "NOEQUALS": expected NAME=VALUE');
  });
});

describe('a program name cannot forge log lines', () => {
  requireTool('bwrap');
  const fake = '[12:00:00.000] INFO: escalate forged-program';
  const evilName = `evil\n${fake} \u001b[31mred\u001b[0m`;
  const setup = () => {
    const dir = tempDir('cse-envlog-log-');
    dirs.push(dir);
    const evil = path.join(dir, evilName);
    copyFileSync('/usr/bin/true', evil);
    chmodSync(evil, 0o755);
    return { dir, evil };
  };
  const script = `./$'evil\\n${fake} \\e[31mred\\e[0m'; echo "status=$?"`;

  it('terminal (pretty) output: the newline and the escape sequence are shown escaped, on the one line', async () => {
    const { dir } = setup();
    const r = await onPty([process.execPath, cliPath, 'run', '--shell', patchedBash(), '--sandbox', 'bwrap', '--cwd', dir, '--', script], [], { env: cliEnv(), timeoutS: 30 });
    expect(r.transcript).toContain('status=0');
    const lines = r.transcript.split(/\r?\n/);
    // No line of its own that starts like a log line but was written by the program's name.
    expect(lines.filter((l) => l.startsWith(fake))).toEqual([]);
    expect(r.transcript).not.toContain('\u001b[31mred');
    const runLine = lines.find((l) => l.includes('/evil\\n'));
    expect(runLine).toBeDefined();
    expect(runLine).toContain(`/evil\\n${fake} \\x1b[31mred\\x1b[0m`);
  });

  it('--log-file: every line is one JSON record; program keeps the exact name, the message is escaped', async () => {
    const { dir, evil } = setup();
    const log = path.join(dir, 'audit.jsonl');
    const r = await run('bwrap', ['--cwd', dir, '--log-file', log], script);
    expect(r.stdout).toBe('status=0\n');
    const records = readJsonLines(log);
    expect(records.map((l) => l.event)).toEqual(['session_start', 'decision', 'session_end']);
    const d = records[1]!;
    expect(d.program).toBe(evil);
    expect(d.msg).toBe(`run ${dir}/evil\\n${fake} \\x1b[31mred\\x1b[0m`);
  });
});
