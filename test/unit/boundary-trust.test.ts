/**
 * Pure logic behind the trust boundary (the e2e attacks are in
 * test/integration/boundary-trust.test.ts): which routes to Escalate the
 * by-name gate closes, path exposure, the config-executing list, git safe mode.
 */
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCallbackApprover } from '../../src/policy/approval/index.js';
import { configExecuted, configExecutingWarnings } from '../../src/policy/config-executing.js';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { compileRules } from '../../src/policy/rules/index.js';
import { rootContaining, sandboxExposure } from '../../src/policy/sandbox-roots.js';
import type { ExecRequest } from '../../src/policy/types.js';
import { applyGitSafeMode, gitGlobalOptions, gitSafeOverrides, parseGitConfigList, safePath, type GitConfigEntry } from '../../src/sandbox/git-safe-mode.js';

const ctx = { signal: new AbortController().signal };
const ROOTS = ['/w', '/tmp', '/dev/shm'];
const req = (program: string, ...args: string[]): ExecRequest => ({
  sessionId: 's',
  requestId: 'r',
  file: program,
  program,
  argv: [path.basename(program), ...args],
  workdir: '/w',
  env: { PATH: '/usr/bin:/bin' },
});
const rulesOf = (source: string) => ({ current: compileRules([{ file: 'p.rules', source }]) });
const BLOCKED = 'cannot escalate /w/cat by name: it is in a sandbox-writable location (/w); name it by path in a host_executable(...) to allow it';

describe('the by-name gate covers every route to Escalate', () => {
  it('allow rule by name: refused under a root, escalated elsewhere', async () => {
    const p = createDecisionPipeline({ rules: rulesOf('prefix_rule(pattern=["cat"], decision="allow")'), sandboxWritableRoots: ROOTS });
    expect(await p.decide(req('/w/cat'), ctx)).toMatchObject({ action: 'deny', reason: BLOCKED });
    expect(await p.decide(req('/usr/bin/cat'), ctx)).toMatchObject({ action: 'escalate' });
  });

  it('host_executable listing the path, or an absolute-path pattern, names it: escalated', async () => {
    const listed = createDecisionPipeline({
      rules: rulesOf('host_executable(name="cat", paths=["/w/cat"])\nprefix_rule(pattern=["cat"], decision="allow")'),
      sandboxWritableRoots: ROOTS,
    });
    expect(await listed.decide(req('/w/cat'), ctx)).toMatchObject({ action: 'escalate' });
    const abs = createDecisionPipeline({ rules: rulesOf('prefix_rule(pattern=["/w/cat"], decision="allow")'), sandboxWritableRoots: ROOTS });
    expect(await abs.decide(req('/w/cat'), ctx)).toMatchObject({ action: 'escalate' });
  });

  it('--escalate by name is refused, --escalate /abs/path escalates exactly that file', async () => {
    const byName = createDecisionPipeline({ escalatePrefixes: ['cat'], sandboxWritableRoots: ROOTS });
    expect(await byName.decide(req('/tmp/x/cat'), ctx)).toMatchObject({ action: 'deny', reason: expect.stringContaining('(/tmp)') });
    const byPath = createDecisionPipeline({ escalatePrefixes: ['/w/cat -n'], sandboxWritableRoots: ROOTS });
    expect(await byPath.decide(req('/w/cat', '-n'), ctx)).toMatchObject({ action: 'escalate' });
    expect(await byPath.decide(req('/w/other/cat', '-n'), ctx)).toMatchObject({ action: 'run' });
  });

  it('--deny /abs/path denies that file', async () => {
    const p = createDecisionPipeline({ denyPrefixes: ['/usr/bin/rm'] });
    expect(await p.decide(req('/usr/bin/rm', 'x'), ctx)).toMatchObject({ action: 'deny' });
    expect(await p.decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'run' });
  });

  it('prompt rule, --default prompt and a hook ask are refused before the approver is asked', async () => {
    const asked: string[] = [];
    const approver = createCallbackApprover((r) => {
      asked.push(r.rule);
      return { decision: 'allow' };
    });
    const prompt = createDecisionPipeline({ rules: rulesOf('prefix_rule(pattern=["cat"], decision="prompt")'), approver, sandboxWritableRoots: ROOTS });
    expect(await prompt.decide(req('/w/cat'), ctx)).toMatchObject({ action: 'deny', reason: BLOCKED });
    const dflt = createDecisionPipeline({ defaultAction: 'prompt', approver, sandboxWritableRoots: ROOTS });
    expect(await dflt.decide(req('/w/cat'), ctx)).toMatchObject({ action: 'deny', reason: BLOCKED });
    const hookAsk = createDecisionPipeline({
      defaultAction: 'prompt',
      approver,
      sandboxWritableRoots: ROOTS,
      hooks: { preToolUse: async () => ({ decision: 'ask' as const, runs: [] }) },
    });
    expect(await hookAsk.decide(req('/w/cat'), ctx)).toMatchObject({ action: 'deny' });
    expect(asked).toEqual([]);
    // Outside the roots the approver is asked as before.
    expect(await dflt.decide(req('/usr/bin/cat'), ctx)).toMatchObject({ action: 'escalate' });
    expect(asked).toHaveLength(1);
  });

  it("a hook's allow for a prompt rule and a hook's rewrite to a file in the cwd are refused", async () => {
    const allow = createDecisionPipeline({
      rules: rulesOf('prefix_rule(pattern=["cat"], decision="prompt")'),
      sandboxWritableRoots: ROOTS,
      hooks: { preToolUse: async () => ({ decision: 'allow' as const, runs: [] }) },
    });
    expect(await allow.decide(req('/w/cat'), ctx)).toMatchObject({ action: 'deny', reason: BLOCKED });
    const dir = mkdtempSync('/var/tmp/cse-unit-rw-');
    try {
      writeFileSync(path.join(dir, 'cat'), '#!/bin/sh\n', { mode: 0o755 });
      const rewrite = createDecisionPipeline({
        rules: rulesOf('prefix_rule(pattern=["cat"], decision="allow")'),
        sandboxWritableRoots: [dir],
        hooks: { preToolUse: async () => ({ decision: 'none' as const, runs: [], rewrite: { argv: [path.join(dir, 'cat')] } }) },
      });
      const d = await rewrite.decide({ ...req('/usr/bin/cat'), workdir: dir }, ctx);
      expect(d).toMatchObject({ action: 'deny', reason: expect.stringContaining(`cannot escalate ${dir}/cat by name`) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a Run is unaffected (the gate is only on the way to Escalate)', async () => {
    const p = createDecisionPipeline({ sandboxWritableRoots: ROOTS });
    expect(await p.decide(req('/w/cat'), ctx)).toEqual({ action: 'run', audit: {} });
  });
});

describe('sandbox exposure of a path', () => {
  const base = mkdtempSync('/var/tmp/cse-unit-exp-');
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const root = path.join(base, 'root');
  const out = path.join(base, 'out');
  mkdirSync(root);
  mkdirSync(out);
  writeFileSync(path.join(out, 'f'), 'x');
  writeFileSync(path.join(root, 'g'), 'x');

  it('inside, through a symlink under a root, hard-linked, or clean', () => {
    expect(rootContaining('/w', ['/w'])).toBe('/w');
    expect(rootContaining('/wx', ['/w'])).toBeUndefined();
    expect(sandboxExposure(path.join(root, 'g'), [root])).toMatchObject({ why: 'inside', root });
    expect(sandboxExposure(path.join(root, 'new', 'file'), [root])).toMatchObject({ why: 'inside' });
    expect(sandboxExposure(path.join(out, 'f'), [root])).toBeUndefined();
    symlinkSync(path.join(out, 'f'), path.join(root, 'link'));
    symlinkSync(path.join(root, 'link'), path.join(out, 'viaroot'));
    expect(sandboxExposure(path.join(out, 'viaroot'), [root])).toMatchObject({ why: 'symlink', path: path.join(root, 'link') });
    linkSync(path.join(out, 'f'), path.join(out, 'f2'));
    expect(sandboxExposure(path.join(out, 'f'), [root])).toMatchObject({ why: 'hardlink' });
    expect(sandboxExposure(path.join(out, 'f'), [root], { hardlinks: false })).toBeUndefined();
  });

  it('a symlink loop is hostile (cannot tell where it leads)', () => {
    symlinkSync(path.join(out, 'l2'), path.join(out, 'l1'));
    symlinkSync(path.join(out, 'l1'), path.join(out, 'l2'));
    expect(sandboxExposure(path.join(out, 'l1'), [root])).toMatchObject({ why: 'symlink' });
  });
});

describe('programs that execute configuration from their working directory', () => {
  it('one list, versioned interpreters included, and warnings naming file:line', () => {
    for (const p of ['git', '/usr/bin/make', 'npm', 'npx', 'yarn', 'pnpm', 'cargo', 'pip3', 'python3.11', 'node', 'bundle', 'rake', 'gradle', 'mvn']) {
      expect(configExecuted(p), p).toBeDefined();
    }
    for (const p of ['cat', 'ls', 'grep', 'gitk2x']) expect(configExecuted(p), p).toBeUndefined();
    const rules = compileRules([{ file: 'r.rules', source: 'prefix_rule(pattern=["ls"], decision="allow")\nprefix_rule(pattern=["npm", "test"], decision="allow")\nprefix_rule(pattern=["make"], decision="prompt")\n' }]);
    const w = configExecutingWarnings(rules, ['cargo build', 'cat']);
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/^r\.rules:2: allow rule for "npm"/);
    expect(w[1]).toMatch(/^--escalate "cargo build": /);
  });
});

describe('git safe mode (pure part)', () => {
  const entry = (scope: string, origin: string, key: string, value = 'x'): GitConfigEntry => ({ scope, origin, key, value });

  it('parses git config --list -z --show-scope --show-origin', () => {
    const raw = Buffer.from('system\0file:/etc/gitconfig\0credential.helper\ncache\0local\0file:.git/config\0core.bare\0');
    expect(parseGitConfigList(raw)).toEqual([
      { scope: 'system', origin: 'file:/etc/gitconfig', key: 'credential.helper', value: 'cache' },
      { scope: 'local', origin: 'file:.git/config', key: 'core.bare', value: undefined },
    ]);
  });

  it('neutralises command-running keys from repo config and from files under a root; keeps the user\'s own', () => {
    const o = gitSafeOverrides(
      [
        entry('global', 'file:/root/.gitconfig', 'credential.helper'),
        entry('global', 'file:/w/.gitconfig', 'filter.lfs.clean'),
        entry('local', 'file:.git/config', 'alias.st'),
        entry('local', 'file:.git/config', 'diff.Evil.textconv'),
        entry('local', 'file:.git/config', 'user.name'),
        entry('worktree', 'file:.git/config.worktree', 'core.sshCommand'),
      ],
      ['/w'],
      '/w',
    );
    expect(o).toEqual([
      ['core.fsmonitor', 'false'],
      ['core.hooksPath', '/dev/null'],
      ['core.pager', 'cat'],
      ['protocol.ext.allow', 'never'],
      ['filter.lfs.clean', ''],
      ['alias.st', ''],
      ['diff.Evil.textconv', 'cat'],
      ['core.sshCommand', 'ssh'],
    ]);
  });

  it('refuses global options that would beat the overrides, replays -C', () => {
    expect(gitGlobalOptions(['git', '-C', 'sub', '--no-pager', 'status'])).toEqual({ ok: true, replay: ['-C', 'sub'] });
    for (const bad of ['-c', '--config-env=core.pager=X', '--exec-path=/w', '--git-dir=/w/.git', '--work-tree=/w', '-p', '--paginate', '--weird']) {
      expect(gitGlobalOptions(['git', bad, 'status']).ok, bad).toBe(false);
    }
    // After the subcommand, options are the subcommand's.
    expect(gitGlobalOptions(['git', 'log', '-p']).ok).toBe(true);
  });

  it('sets the overrides in GIT_CONFIG_*, the server HOME, a PATH without writable or relative dirs; fails closed on a config read error', () => {
    const r = applyGitSafeMode(
      { program: '/usr/bin/git', argv: ['git', 'status'], workdir: '/w', env: { PATH: '.:/w/bin:/usr/bin:/bin', HOME: '/w', GIT_CONFIG_KEY_9: 'x', KEEP: '1' } },
      { roots: ['/w'], home: '/root', readConfig: () => [entry('local', 'file:.git/config', 'core.editor')] },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env).toMatchObject({ HOME: '/root', PATH: '/usr/bin:/bin', KEEP: '1', GIT_CONFIG_COUNT: '5', GIT_CONFIG_KEY_4: 'core.editor', GIT_CONFIG_VALUE_4: 'false' });
    expect(r.env.GIT_CONFIG_KEY_9).toBeUndefined();
    expect(safePath(undefined, ['/usr/local'])).toBe('/usr/bin:/bin');
    const failed = applyGitSafeMode({ program: '/usr/bin/git', argv: ['git', 'status'], workdir: '/w', env: {} }, { roots: ['/w'], readConfig: () => 'bad config line 3' });
    expect(failed).toEqual({ ok: false, reason: "git safe mode: cannot read the repository's configuration: bad config line 3" });
    // Not git: untouched.
    const other = applyGitSafeMode({ program: '/usr/bin/cat', argv: ['cat'], workdir: '/w', env: { PATH: '.' } }, { roots: ['/w'], readConfig: () => 'unused' });
    expect(other).toEqual({ ok: true, env: { PATH: '.' } });
  });
});

describe('the hooks trust store', () => {
  const base = mkdtempSync('/var/tmp/cse-unit-store-');
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('trusts by path and content; a malformed store trusts nothing; a store reached through a writable root is not believed', async () => {
    const { TrustStore, sha256, trustStorePath } = await import('../../src/hooks/trust.js');
    expect(trustStorePath({ XDG_STATE_HOME: '/s' })).toBe('/s/codex-shell-escalation/trusted-hooks.json');
    expect(trustStorePath({ HOME: '/h', XDG_STATE_HOME: 'relative' })).toBe('/h/.local/state/codex-shell-escalation/trusted-hooks.json');
    const file = path.join(base, 'store.json');
    const s = TrustStore.open(file);
    const digest = sha256(Buffer.from('x'));
    s.trust('/p/.codex/hooks.json', digest);
    s.save();
    const again = TrustStore.open(file);
    expect(again.state('/p/.codex/hooks.json', digest)).toBe('trusted');
    expect(again.state('/p/.codex/hooks.json', sha256(Buffer.from('y')))).toBe('changed');
    expect(again.state('/q/.codex/hooks.json', digest)).toBe('untrusted');
    writeFileSync(file, '{"version":1,"files":{"/p/.codex/hooks.json":{"sha256":"nothex","trustedAt":"t"}}}');
    const bad = TrustStore.open(file);
    expect(bad.problem).toContain('malformed');
    expect(bad.state('/p/.codex/hooks.json', digest)).toBe('untrusted');
    const root = path.join(base, 'root');
    mkdirSync(root);
    symlinkSync(base, path.join(root, 'link'));
    const viaRoot = TrustStore.open(path.join(root, 'link', 'store.json'), [root]);
    expect(viaRoot.distrusted).toContain('goes through the symlink');
  });
});
