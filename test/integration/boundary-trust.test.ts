/**
 * The trust boundary, attacked the way a prompt-injected script would, through
 * the real CLI and the real bwrap sandbox (and `--sandbox none` where the
 * class applies): what may be escalated by name, workspace config run by an
 * escalated tool, and policy files (hooks, rules) the sandbox can plant or edit.
 * A proof file under /var/tmp appearing means code ran outside the sandbox
 * (inside bwrap the root is read-only). With `--sandbox none` the script could
 * write it itself, so there the audit log's decision is the evidence.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { cliEnv, cliPath, onPty, readJsonLines, runCli, sq, startCli, waitFor, writeExecutable } from '../helpers/e2e.js';
import { lacks } from '../helpers/tools.js';

const NARROW = [
  'host_executable(name="git", paths=["/usr/bin/git"])',
  'host_executable(name="cat", paths=["/usr/bin/cat"])',
  'prefix_rule(pattern=["rm"], decision="forbidden")',
  'prefix_rule(pattern=["git", "status"], decision="allow")',
  'prefix_rule(pattern=["cat"], decision="allow")',
  '',
].join('\n');

const cleanup: string[] = [];
afterEach(() => {
  for (const p of cleanup.splice(0)) rmSync(p, { recursive: true, force: true });
});

let n = 0;
/** A proof-file path outside every sandbox-writable root, unique to this test. */
function proof(name: string): string {
  const p = `/var/tmp/cse-bt-proof-${name}-${process.pid}-${++n}`;
  cleanup.push(p);
  return p;
}

/** A directory out of the sandbox's reach (not under the cwd, /tmp or /dev/shm). */
function outsideDir(prefix = 'cse-bt-'): string {
  const d = mkdtempSync(path.join('/var/tmp', prefix));
  cleanup.push(d);
  return d;
}

interface Session {
  readonly cwd: string;
  readonly log: string;
  readonly env: NodeJS.ProcessEnv;
}

/** A fresh empty working directory, a log, and a trust store out of the sandbox's reach. */
function fresh(extraEnv: NodeJS.ProcessEnv = {}): Session {
  const cwd = tempDir('cse-bt-cwd-');
  cleanup.push(cwd);
  const state = outsideDir('cse-bt-state-');
  return { cwd, log: path.join(state, 'audit.jsonl'), env: cliEnv({ XDG_STATE_HOME: state, ...extraEnv }) };
}

function run(s: Session, args: readonly string[], script: string) {
  return runCli(['run', '--shell', patchedBash(), '--log-file', s.log, ...args, '--', script], { cwd: s.cwd, env: s.env, timeoutMs: 30_000 });
}

function decisions(s: Session): { program: string; action: string; reason: string | null }[] {
  return readJsonLines(s.log)
    .filter((l) => l.event === 'decision')
    .map((l) => ({ program: String(l.program), action: String(l.action), reason: (l.reason as string | null) ?? null }));
}

function writeRules(dir: string, text: string, name = 'narrow.rules'): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

const SANDBOXES = ['bwrap', 'none'] as const;

describe('finding 1: nothing the sandbox can write is escalated by name', () => {
  for (const sandbox of SANDBOXES) {
    it.skipIf(sandbox === 'bwrap' && lacks('bwrap'))(`--escalate cat does not escalate a copy of bash named ./cat (--sandbox ${sandbox})`, async () => {
      const s = fresh();
      const p = proof(`esc-copy-${sandbox}`);
      const r = await run(s, ['--sandbox', sandbox, '--escalate', 'cat'], `cp /usr/bin/bash ./cat && ./cat -c ${sq(`touch ${p}`)}; echo "copy=$?"; echo hi | cat`);
      expect(r.stdout).toBe('copy=126\nhi\n');
      expect(r.stderr).toContain(
        `cannot escalate ${s.cwd}/cat by name: it is in a sandbox-writable location (${s.cwd}); name it by path in a host_executable(...) to allow it`,
      );
      const d = decisions(s);
      expect(d.find((x) => x.program === `${s.cwd}/cat`)?.action).toBe('deny');
      // The real cat, reached by the same name, still escalates.
      expect(d.find((x) => x.program === '/usr/bin/cat')?.action).toBe('escalate');
      if (sandbox === 'bwrap') expect(existsSync(p)).toBe(false);
    });
  }

  it('an allow rule without host_executable does not escalate a #!/bin/sh script named ./cat', async () => {
    const s = fresh();
    const p = proof('allow-script');
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["cat"], decision="allow")\n');
    const r = await run(s, ['--rules', rules], `printf '#!/bin/sh\\ntouch ${p}\\n' > cat; chmod +x cat; ./cat; echo "script=$?"`);
    expect(r.stdout).toBe('script=126\n');
    expect(r.stderr).toContain(`cannot escalate ${s.cwd}/cat by name`);
    expect(existsSync(p)).toBe(false);
  });

  it('a file in a --writable directory, reached through a symlink chain in the cwd, is refused too (--sandbox none)', async () => {
    const s = fresh();
    const w = outsideDir('cse-bt-writable-');
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["cat"], decision="allow")\n');
    const r = await run(
      s,
      ['--sandbox', 'none', '--rules', rules, '--writable', w],
      `cp /usr/bin/bash ${sq(w)}/cat && ln -s ${sq(w)}/cat link1 && ln -s link1 link2 && ./link2 -c true; echo "chain=$?"`,
    );
    expect(r.stdout).toBe('chain=126\n');
    expect(r.stderr).toContain(`cannot escalate ${w}/cat by name: it is in a sandbox-writable location (${w})`);
  });

  it('a hard link of bash named ./cat is refused (--sandbox none: bwrap mounts refuse the link)', async () => {
    const s = fresh();
    const r = await run(s, ['--sandbox', 'none', '--escalate', 'cat'], 'ln /usr/bin/bash ./cat && ./cat -c true; echo "hardlink=$?"');
    expect(r.stdout).toBe('hardlink=126\n');
    expect(decisions(s).find((x) => x.program === `${s.cwd}/cat`)?.action).toBe('deny');
  });

  it('a copy under the private /tmp is refused (--sandbox none, where /tmp is the host one)', async () => {
    const s = fresh();
    const dir = path.join('/tmp', `cse-bt-tmpcat-${process.pid}`);
    cleanup.push(dir);
    const r = await run(s, ['--sandbox', 'none', '--escalate', 'cat'], `mkdir -p ${dir} && cp /usr/bin/bash ${dir}/cat && ${dir}/cat -c true; echo "tmp=$?"`);
    expect(r.stdout).toBe('tmp=126\n');
    expect(r.stderr).toMatch(/sandbox-writable location \(\/tmp\)/);
  });

  it('a symlink from the cwd to /usr/bin/cat escalates: the resolved program is /usr/bin/cat', async () => {
    const s = fresh();
    const r = await run(s, ['--rules', writeRules(outsideDir(), NARROW)], 'ln -s /usr/bin/cat ./cat && echo via-link | ./cat');
    expect(r.stdout).toBe('via-link\n');
    expect(decisions(s).find((x) => x.program === '/usr/bin/cat')?.action).toBe('escalate');
  });

  it('a prompt rule approved by the approver does not escalate ./cat, and the approver is not even asked', async () => {
    const s = fresh();
    const p = proof('prompt');
    const asked = path.join(outsideDir(), 'asked');
    const approver = writeExecutable(path.join(outsideDir(), 'yes.sh'), `#!/bin/sh\ncat > /dev/null\ntouch ${asked}\necho '{"decision":"allow"}'\n`);
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["cat"], decision="prompt")\n');
    const r = await run(s, ['--rules', rules, '--approval', `command:${approver}`], `cp /usr/bin/bash ./cat && ./cat -c ${sq(`touch ${p}`)}; echo "prompt=$?"`);
    expect(r.stdout).toBe('prompt=126\n');
    expect(r.stderr).toContain(`cannot escalate ${s.cwd}/cat by name`);
    expect(existsSync(p)).toBe(false);
    expect(existsSync(asked)).toBe(false);
  });

  it('--default prompt approved by the approver does not escalate a program in the cwd', async () => {
    const s = fresh();
    const p = proof('default-prompt');
    const approver = writeExecutable(path.join(outsideDir(), 'yes.sh'), `#!/bin/sh\ncat > /dev/null\necho '{"decision":"allow"}'\n`);
    const r = await run(s, ['--default', 'prompt', '--approval', `command:${approver}`], `cp /usr/bin/bash ./tool && ./tool -c ${sq(`touch ${p}`)}; echo "tool=$?"`);
    // cp itself is approved and escalated (it is /usr/bin/cp); ./tool is not.
    expect(r.stdout).toBe('tool=126\n');
    expect(r.stderr).toContain(`cannot escalate ${s.cwd}/tool`);
    expect(existsSync(p)).toBe(false);
  });

  it("a hook's allow for a prompt rule does not escalate ./cat", async () => {
    const s = fresh();
    const p = proof('hook-allow');
    const hooksDir = outsideDir();
    const allow = writeExecutable(
      path.join(hooksDir, 'allow.sh'),
      `#!/bin/sh\ncat > /dev/null\necho '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"hook says yes"}}'\n`,
    );
    const hooks = path.join(hooksDir, 'hooks.json');
    writeFileSync(hooks, JSON.stringify({ hooks: { PreToolUse: [{ hooks: [{ type: 'command', command: allow }] }] } }));
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["cat"], decision="prompt")\n');
    const r = await run(s, ['--rules', rules, '--hooks', hooks], `cp /usr/bin/bash ./cat && ./cat -c ${sq(`touch ${p}`)}; echo "hook=$?"`);
    expect(r.stdout).toBe('hook=126\n');
    expect(r.stderr).toContain(`cannot escalate ${s.cwd}/cat by name`);
    expect(existsSync(p)).toBe(false);
  });

  it('a host_executable path naming a file in the cwd is allowed, with a warning at start', async () => {
    const s = fresh();
    const p = proof('explicit');
    writeExecutable(path.join(s.cwd, 'tool'), `#!/bin/sh\ntouch ${p}\n`);
    const rules = writeRules(outsideDir(), `host_executable(name="tool", paths=["${s.cwd}/tool"])\nprefix_rule(pattern=["tool"], decision="allow")\n`);
    const r = await run(s, ['--rules', rules], './tool; echo "tool=$?"');
    expect(r.stdout).toBe('tool=0\n');
    expect(r.stderr).toContain(`codex-escalate: warning: host_executable(name="tool") names ${s.cwd}/tool lies in the sandbox-writable ${s.cwd}`);
    expect(existsSync(p)).toBe(true); // named by path: the user's choice, said out loud
  });

  it('--escalate /abs/path names one file: it escalates that file and warns when the sandbox can write it', async () => {
    const s = fresh();
    const p = proof('escalate-abs');
    writeExecutable(path.join(s.cwd, 'tool'), `#!/bin/sh\ntouch ${p}\n`);
    const r = await run(s, ['--escalate', `${s.cwd}/tool`], './tool; echo "tool=$?"');
    expect(r.stdout).toBe('tool=0\n');
    expect(r.stderr).toContain(`codex-escalate: warning: --escalate "${s.cwd}/tool" names ${s.cwd}/tool lies in the sandbox-writable ${s.cwd}`);
    expect(existsSync(p)).toBe(true);
  });
});

describe('finding 2: an escalated tool does not run workspace configuration', () => {
  for (const sandbox of SANDBOXES) {
    it.skipIf(lacks('git') || (sandbox === 'bwrap' && lacks('bwrap')))(`the core.fsmonitor reproduction: git status works, the fsmonitor does not run, run warns (--sandbox ${sandbox})`, async () => {
      const s = fresh();
      const p = proof(`fsmonitor-${sandbox}`);
      const rules = writeRules(outsideDir(), NARROW);
      const r = await run(s, ['--sandbox', sandbox, '--rules', rules], `git init -q . && git config core.fsmonitor ${sq(`touch ${p}; false`)} && git status; echo "status=$?"`);
      expect(r.stdout).toContain('No commits yet');
      expect(r.stdout).toContain('status=0\n');
      expect(decisions(s).find((x) => x.program === '/usr/bin/git' && x.action === 'escalate')).toBeDefined();
      expect(r.stderr).toContain(`codex-escalate: warning: ${rules}:4: allow rule for "git" escalates a program that executes repo config`);
      // With either sandbox only the fsmonitor would create it (the script never touches it itself).
      expect(existsSync(p)).toBe(false);
    });
  }

  it.skipIf(lacks('git'))('--no-git-safe brings the hole back (the control for the test above)', async () => {
    const s = fresh();
    const p = proof('fsmonitor-unsafe');
    const r = await run(s, ['--no-git-safe', '--rules', writeRules(outsideDir(), NARROW)], `git init -q . && git config core.fsmonitor ${sq(`touch ${p}; false`)} && git status >/dev/null`);
    expect(r.code).toBe(0);
    expect(existsSync(p)).toBe(true);
  });

  const GIT_ID = '-c user.email=t@example.com -c user.name=t';
  it.skipIf(lacks('git'))('a .git/hooks/post-checkout hook and a core.hooksPath hook do not run from an escalated git checkout', async () => {
    const s = fresh();
    const p1 = proof('post-checkout');
    const p2 = proof('hookspath');
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["git", "checkout"], decision="allow")\n');
    const script = [
      `git init -q . && git ${GIT_ID} commit -q --allow-empty -m init`,
      `printf '#!/bin/sh\\ntouch ${p1}\\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout`,
      'git checkout -q -b one; echo "one=$?"',
      `mkdir .myhooks && printf '#!/bin/sh\\ntouch ${p2}\\n' > .myhooks/post-checkout && chmod +x .myhooks/post-checkout && git config core.hooksPath .myhooks`,
      'git checkout -q -b two; echo "two=$?"; git branch --show-current',
    ].join('\n');
    const r = await run(s, ['--rules', rules], script);
    expect(r.stdout).toBe('one=0\ntwo=0\ntwo\n');
    expect(decisions(s).filter((x) => x.program === '/usr/bin/git' && x.action === 'escalate')).toHaveLength(2);
    expect(existsSync(p1)).toBe(false);
    expect(existsSync(p2)).toBe(false);
  });

  it.skipIf(lacks('git'))('a workspace alias, a clean filter and a -c on the command line do not run (broad git allow)', async () => {
    const s = fresh();
    const [pa, pf, pc] = [proof('alias'), proof('filter'), proof('dash-c')];
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["git"], decision="allow")\n');
    const script = [
      'git init -q .',
      `git config alias.st ${sq(`!touch ${pa}`)}`,
      'git st; echo "alias=$?"',
      `echo '* filter=evil' > .gitattributes && git config filter.evil.clean ${sq(`touch ${pf}; cat`)} && echo data > f`,
      'git add f; echo "add=$?"; git ls-files',
      `git -c core.fsmonitor=${sq(`touch ${pc}; false`)} status >/dev/null; echo "dashc=$?"`,
    ].join('\n');
    const r = await run(s, ['--rules', rules], script);
    expect(r.stdout).toBe('alias=1\nadd=0\nf\ndashc=126\n');
    expect(r.stderr).toContain('git safe mode: the global option "-c" is not allowed on an escalated git');
    for (const p of [pa, pf, pc]) expect(existsSync(p)).toBe(false);
  });

  it.skipIf(lacks('git'))('a workspace pager (core.pager, pager.log) does not run from an escalated git on a terminal; the control without safe mode does', async () => {
    const s = fresh();
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["git", "log"], decision="allow")\n');
    const setup = (p1: string, p2: string) =>
      [
        `git init -q . && git ${GIT_ID} commit -q --allow-empty -m first`,
        `git config core.pager ${sq(`touch ${p1}; cat`)} && git config pager.log ${sq(`touch ${p2}; cat`)}`,
        'git log --oneline | cat >/dev/null; git log -1 --format=LOGGED-%s; echo "log=$?"',
      ].join('\n');
    const [p1, p2] = [proof('core-pager'), proof('pager-log')];
    const safe = await onPty([process.execPath, cliPath, 'run', '--shell', patchedBash(), '--log-file', s.log, '--rules', rules, '--', setup(p1, p2)], [], { cwd: s.cwd, env: s.env });
    expect(safe.transcript).toContain('LOGGED-first');
    expect(safe.transcript).toContain('log=0');
    expect(existsSync(p1)).toBe(false);
    expect(existsSync(p2)).toBe(false);
    const c = fresh();
    const [q1, q2] = [proof('core-pager-unsafe'), proof('pager-log-unsafe')];
    const unsafe = await onPty([process.execPath, cliPath, 'run', '--no-git-safe', '--shell', patchedBash(), '--log-file', c.log, '--rules', rules, '--', setup(q1, q2)], [], { cwd: c.cwd, env: c.env });
    expect(unsafe.transcript).toContain('log=0');
    expect(existsSync(q2)).toBe(true); // the pager really is invoked on a terminal: the test above can fail
  });

  it.skipIf(lacks('git'))('config the sandbox writes into a global ~/.gitconfig it can reach (HOME is the cwd) is neutralised too', async () => {
    const s = fresh();
    const p = proof('global');
    const env = { ...s.env, HOME: s.cwd };
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["git", "add"], decision="allow")\n');
    const script = `git init -q . && git config --global filter.evil.clean ${sq(`touch ${p}; cat`)} && echo '* filter=evil' > .gitattributes && echo x > f && git add f; echo "add=$?"`;
    const r = await runCli(['run', '--shell', patchedBash(), '--log-file', s.log, '--rules', rules, '--', script], { cwd: s.cwd, env, timeoutMs: 30_000 });
    expect(r.stdout).toBe('add=0\n');
    expect(existsSync(path.join(s.cwd, '.gitconfig'))).toBe(true);
    expect(existsSync(p)).toBe(false);
  });

  it('check warns, with file:line, for an allow rule naming a config-executing program', async () => {
    const rules = writeRules(outsideDir(), 'prefix_rule(pattern=["ls"], decision="allow")\nprefix_rule(pattern=["make"], decision="allow")\n');
    const r = await runCli(['check', '--rules', rules, '--', 'ls'], { env: cliEnv() });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`codex-escalate check: warning: ${rules}:2: allow rule for "make" escalates a program that executes the Makefile from its working directory: in the workspace, that is code the sandbox wrote running outside it\n`);
  });
});

function plantHooks(dir: string, p: string, event: 'SessionStart' | 'PreToolUse' = 'SessionStart'): string {
  mkdirSync(path.join(dir, '.codex'), { recursive: true });
  const f = path.join(dir, '.codex', 'hooks.json');
  writeFileSync(f, JSON.stringify({ hooks: { [event]: [{ hooks: [{ type: 'command', command: `touch ${p}` }] }] } }));
  return f;
}

describe('finding 3: hooks the sandbox planted do not run without explicit trust', () => {
  for (const sandbox of SANDBOXES) {
    it.skipIf(sandbox === 'bwrap' && lacks('bwrap'))(`session 1 plants .codex/hooks.json, session 2 does not run it and says how to trust it (--sandbox ${sandbox})`, async () => {
      const s = fresh();
      const p = proof(`planted-${sandbox}`);
      const json = JSON.stringify({ hooks: { SessionStart: [{ hooks: [{ type: 'command', command: `touch ${p}` }] }], PreToolUse: [{ hooks: [{ type: 'command', command: `touch ${p}` }] }] } });
      const one = await run(s, ['--sandbox', sandbox], `mkdir -p .codex; printf '%s' ${sq(json)} > .codex/hooks.json`);
      expect(one.code).toBe(0);
      const two = await run(s, ['--sandbox', sandbox], 'true; echo ok');
      expect(two.stdout).toBe('ok\n');
      expect(existsSync(p)).toBe(false);
      const file = path.join(s.cwd, '.codex', 'hooks.json');
      expect(two.stderr).toContain(`codex-escalate: warning: hooks file ${file} is not trusted: its hooks do not run; trust it with: codex-escalate hooks trust '${file}'`);
    });
  }

  it('hooks trust makes it run; an edit afterwards makes it "changed" and it stops running; hooks untrust forgets it', async () => {
    const s = fresh();
    const p = proof('trusted');
    const file = plantHooks(s.cwd, p);
    const t = await runCli(['hooks', 'trust'], { cwd: s.cwd, env: s.env });
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(new RegExp(`^trusted ${file}  sha256:[0-9a-f]{64}\\n$`));
    const list = await runCli(['hooks', 'list'], { cwd: s.cwd, env: s.env });
    expect(list.stdout).toContain(`${file}  (json, project, trusted)`);
    await run(s, [], 'true');
    expect(existsSync(p)).toBe(true);
    rmSync(p);
    // The sandbox edits the trusted file.
    const r = await run(s, [], `printf ' ' >> .codex/hooks.json`);
    expect(r.code).toBe(0);
    rmSync(p); // that session still started with the trusted content
    const again = await run(s, [], 'true');
    expect(existsSync(p)).toBe(false);
    expect(again.stderr).toContain(`hooks file ${file} is changed since it was trusted: its hooks do not run`);
    const listed = await runCli(['hooks', 'list'], { cwd: s.cwd, env: s.env });
    expect(listed.stdout).toContain(`${file}  (json, project, CHANGED since trusted: not run;`);
    const u = await runCli(['hooks', 'untrust', file], { cwd: s.cwd, env: s.env });
    expect(u.stdout).toBe(`untrusted ${file}\n`);
  });

  it('a planted .codex/hooks.json symlink to a hooks file trusted elsewhere is not trusted here', async () => {
    const s = fresh();
    const p = proof('symlinked-trust');
    const other = outsideDir('cse-bt-other-');
    const trusted = plantHooks(other, p);
    expect((await runCli(['hooks', 'trust', trusted], { cwd: other, env: s.env })).code).toBe(0);
    await run(s, [], `mkdir -p .codex && ln -s ${sq(trusted)} .codex/hooks.json`);
    const r = await run(s, [], 'true');
    expect(existsSync(p)).toBe(false);
    expect(r.stderr).toContain(`hooks file ${path.join(s.cwd, '.codex', 'hooks.json')} is not trusted`);
  });

  it('a planted .codex/hooks.toml PreToolUse hook does not run on any exec', async () => {
    const s = fresh();
    const p = proof('toml');
    const r1 = await run(s, [], `mkdir -p .codex && printf '[[hooks.x]]\\nevent = "PreToolUse"\\ncommand = "touch ${p}"\\n' > .codex/hooks.toml`);
    expect(r1.code).toBe(0);
    const r2 = await run(s, [], '/usr/bin/true; ls >/dev/null; echo done');
    expect(r2.stdout).toBe('done\n');
    expect(existsSync(p)).toBe(false);
    expect(r2.stderr).toContain(`hooks file ${path.join(s.cwd, '.codex', 'hooks.toml')} is not trusted`);
  });

  it('a user-level $CODEX_HOME/hooks.json planted by an earlier session (CODEX_HOME was writable) needs trust too', async () => {
    const codexHome = outsideDir('cse-bt-codexhome-');
    const s = fresh({ CODEX_HOME: codexHome });
    const p = proof('user-level');
    const json = JSON.stringify({ hooks: { SessionStart: [{ hooks: [{ type: 'command', command: `touch ${p}` }] }] } });
    await run(s, ['--writable', codexHome], `printf '%s' ${sq(json)} > ${sq(codexHome)}/hooks.json`);
    expect(existsSync(path.join(codexHome, 'hooks.json'))).toBe(true);
    const r = await run(s, [], 'true');
    expect(existsSync(p)).toBe(false);
    expect(r.stderr).toContain(`hooks file ${path.join(codexHome, 'hooks.json')} is not trusted`);
  });

  it('a trust store inside the sandbox-writable cwd is not believed', async () => {
    const s = fresh();
    const p = proof('store-in-cwd');
    const file = plantHooks(s.cwd, p);
    // The sandbox writes a store that trusts its own file (what `hooks trust` would have written).
    const env = { ...s.env, XDG_STATE_HOME: path.join(s.cwd, 'state') };
    const t = await runCli(['hooks', 'trust', file], { cwd: s.cwd, env });
    expect(t.stderr).toContain('sessions there will not believe it');
    const r = await runCli(['run', '--shell', patchedBash(), '--', 'true'], { cwd: s.cwd, env });
    expect(existsSync(p)).toBe(false);
    expect(r.stderr).toContain(`the hooks trust store ${path.join(s.cwd, 'state', 'codex-shell-escalation', 'trusted-hooks.json')} lies in the sandbox-writable ${s.cwd}, so it is not believed`);
  });

  it('an explicit --hooks file in the cwd runs as named, with a start warning; its script in the cwd is warned about too', async () => {
    const s = fresh();
    const p = proof('explicit-hooks');
    writeExecutable(path.join(s.cwd, 'hook.sh'), `#!/bin/sh\ntouch ${p}\n`);
    const hooks = path.join(s.cwd, 'hooks.json');
    writeFileSync(hooks, JSON.stringify({ hooks: { SessionStart: [{ hooks: [{ type: 'command', command: '"$CLAUDE_PROJECT_DIR"/hook.sh' }] }] } }));
    const r = await run(s, ['--hooks', hooks], 'true');
    expect(existsSync(p)).toBe(true);
    expect(r.stderr).toContain(`codex-escalate: warning: hooks file ${hooks} lies in the sandbox-writable ${s.cwd}: read once at start and trusted because it was named with --hooks`);
    expect(r.stderr).toContain(`runs ${s.cwd}/hook.sh lies in the sandbox-writable ${s.cwd}: the sandbox can edit what this hook runs outside it`);
  });
});

describe('finding 4: a rules file the sandbox can write is read once, never reloaded', () => {
  for (const sandbox of SANDBOXES) {
    it.skipIf(sandbox === 'bwrap' && lacks('bwrap'))(`appending an allow rule to --rules .codex/p.rules does not take effect (--sandbox ${sandbox})`, async () => {
      const s = fresh();
      const p = proof(`reload-${sandbox}`);
      mkdirSync(path.join(s.cwd, '.codex'));
      writeFileSync(path.join(s.cwd, '.codex', 'p.rules'), 'prefix_rule(pattern=["rm"], decision="forbidden")\n');
      const r = await run(
        s,
        ['--sandbox', sandbox, '--rules', '.codex/p.rules'],
        `echo 'prefix_rule(pattern=["bash"], decision="allow")' >> .codex/p.rules; sleep 1; bash -c ${sq(`touch ${p}`)}; echo "bash=$?"`,
      );
      expect(r.stderr).toContain(`codex-escalate: warning: rules file ${path.join(s.cwd, '.codex', 'p.rules')} lies in the sandbox-writable ${s.cwd}: read once now, never reloaded this session`);
      expect(readJsonLines(s.log).some((l) => l.event === 'rules_reload')).toBe(false);
      const bash = decisions(s).filter((x) => x.program === '/usr/bin/bash');
      expect(bash.length).toBeGreaterThan(0);
      expect(bash.every((x) => x.action === 'run')).toBe(true);
      if (sandbox === 'bwrap') {
        expect(r.stdout).toBe('bash=1\n');
        expect(existsSync(p)).toBe(false);
      }
    });
  }

  it('SIGHUP does not reload it either', async () => {
    const s = fresh();
    const rules = path.join(s.cwd, 'p.rules');
    writeFileSync(rules, 'prefix_rule(pattern=["rm"], decision="forbidden")\n');
    execFileSync('mkfifo', [path.join(s.cwd, 'go')]);
    const script = `echo 'prefix_rule(pattern=["rm"], decision="allow")' > p.rules; echo edited; read -r _ < go; rm -f nothing; echo "rm=$?"`;
    const { child, result } = startCli(['run', '--shell', patchedBash(), '--log-file', s.log, '--rules', rules, '--', script], { cwd: s.cwd, env: s.env });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin!.end();
    await waitFor(() => out.includes('edited'), 'the edit');
    child.kill('SIGHUP');
    await new Promise((res) => setTimeout(res, 300));
    const fed = writeFile(path.join(s.cwd, 'go'), 'go\n');
    const r = await result;
    const reader = openSync(path.join(s.cwd, 'go'), fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    await fed;
    closeSync(reader);
    expect(r.stdout).toBe('edited\nrm=126\n');
    expect(readJsonLines(s.log).some((l) => l.event === 'rules_reload')).toBe(false);
  });

  it('a rules path outside that goes through a symlink in the cwd (to a file outside), or is a hard link, is read once too', async () => {
    const s = fresh();
    const outside = outsideDir();
    const real = path.join(outside, 'real.rules');
    writeFileSync(real, 'prefix_rule(pattern=["rm"], decision="forbidden")\n');
    // outside/link.rules -> cwd/inner (a symlink the sandbox can re-point) -> outside/real.rules
    symlinkSync(real, path.join(s.cwd, 'inner'));
    const viaLink = path.join(outside, 'link.rules');
    symlinkSync(path.join(s.cwd, 'inner'), viaLink);
    // A hard link needs one filesystem: keep both ends under /var/tmp.
    const hardDir = outsideDir();
    const work = path.join(hardDir, 'work');
    mkdirSync(work);
    const original = path.join(work, 'h.rules');
    writeFileSync(original, 'prefix_rule(pattern=["touch"], decision="forbidden")\n');
    const hard = path.join(hardDir, 'h.rules');
    linkSync(original, hard);
    const r = await run(s, ['--sandbox', 'none', '--rules', viaLink, '--rules', hard], 'true');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`rules file ${viaLink} goes through the symlink ${s.cwd}/inner, which lies in the sandbox-writable ${s.cwd}: read once now`);
    expect(r.stderr).toContain(`rules file ${hard} has other hard links, which may lie in a sandbox-writable location: read once now`);
  });

  it('a rules file in a --writable directory is read once', async () => {
    const s = fresh();
    const w = outsideDir('cse-bt-writable-');
    const rules = writeRules(w, 'prefix_rule(pattern=["rm"], decision="forbidden")\n', 'w.rules');
    const r = await run(s, ['--writable', w, '--rules', rules], 'true');
    expect(r.stderr).toContain(`rules file ${rules} lies in the sandbox-writable ${w}: read once now`);
  });
});

describe('the shipped examples', () => {
  it('the example hooks files raise no trust warning in a session (no script the sandbox could edit)', async () => {
    const s = fresh();
    // A copy outside every sandbox-writable root: the checkout itself may live under /tmp (then the warnings are right).
    const shipped = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'examples');
    const copy = mkdtempSync('/var/tmp/cse-bt-examples-');
    try {
      cpSync(shipped, copy, { recursive: true });
      const r = await runCli(['hooks', 'list', '--hooks', path.join(copy, 'hooks.toml'), '--hooks', path.join(copy, 'hooks.json')], { cwd: s.cwd, env: s.env });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('hook(s) from 2 file(s)');
      expect(r.stderr).toBe('');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('no example rules file makes check warn about a config-executing program', async () => {
    const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'examples', 'rules');
    const files = execFileSync('find', [dir, '-name', '*.rules'], { encoding: 'utf8' }).trim().split('\n');
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const r = await runCli(['check', '--rules', f, '--', 'git', 'status'], { env: cliEnv() });
      expect(r.code, f).toBe(0);
      expect(r.stderr, f).toBe('');
    }
  });
});

