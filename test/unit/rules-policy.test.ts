import { copyFileSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCallbackApprover, type ApprovalRequest } from '../../src/policy/approval/index.js';
import { compileRules, type RuleSet } from '../../src/policy/rules/index.js';
import { createRulesPolicy } from '../../src/policy/rules-policy.js';
import type { ExecRequest } from '../../src/policy/types.js';

const rules = (source: string): RuleSet => compileRules([{ file: 'p.rules', source }]);
const POLICY = `
prefix_rule(pattern = ["rm", "-rf"], decision = "forbidden", justification = "Use trash instead.")
prefix_rule(pattern = ["shred"], decision = "forbidden")
prefix_rule(pattern = ["git", "push"], decision = "prompt", justification = "publishes commits")
prefix_rule(pattern = ["git", "status"], decision = "allow")
prefix_rule(pattern = ["python3"], decision = "forbidden", justification = "no python")
prefix_rule(pattern = ["node"], decision = "allow")
host_executable(name = "node", paths = ["/usr/local/bin/node"])
`;

/** Another real file named git (session approvals are tied to the program file). */
const otherGit = path.join(mkdtempSync(path.join(os.tmpdir(), 'rules-policy-')), 'git');
copyFileSync('/bin/true', otherGit);

let n = 0;
function request(program: string, argv: string[], file = program): ExecRequest {
  n += 1;
  return { sessionId: 's1', requestId: `r${n}`, file, program, argv, workdir: '/work', env: {} };
}
const ctx = () => ({ signal: new AbortController().signal });

describe('createRulesPolicy', () => {
  it('forbidden → deny with the justification as the reason; matched rules in the audit', async () => {
    const policy = createRulesPolicy({ store: { current: rules(POLICY) } });
    const d = await policy.decide(request('/usr/bin/rm', ['rm', '-rf', '/']), ctx());
    expect(d.action).toBe('deny');
    expect(d.reason).toBe('Use trash instead.');
    expect(d.audit).toMatchObject({
      matchedRules: [{ prefixRuleMatch: { matchedPrefix: ['rm', '-rf'], decision: 'forbidden', resolvedProgram: '/usr/bin/rm', justification: 'Use trash instead.' } }],
      rulesDecision: 'forbidden',
      justification: 'Use trash instead.',
      rules: ['prefix_rule(["rm", "-rf"], decision="forbidden") at p.rules:2:1'],
    });
    const noJust = await policy.decide(request('/usr/bin/shred', ['shred', 'x']), ctx());
    expect(noJust).toMatchObject({ action: 'deny', reason: 'forbidden by prefix_rule(["shred"], decision="forbidden") at p.rules:3:1' });
  });

  it('evaluates the resolved program in place of argv[0] (argv[0] itself is not trusted)', async () => {
    const policy = createRulesPolicy({ store: { current: rules(POLICY) } });
    // argv[0] claims to be "ls" but the program is rm: the rm rules apply.
    expect((await policy.decide(request('/usr/bin/rm', ['ls', '-rf', 'x']), ctx())).action).toBe('deny');
    // host_executable limits which node may escalate.
    expect((await policy.decide(request('/usr/local/bin/node', ['node', 'x.js']), ctx())).action).toBe('escalate');
    expect((await policy.decide(request('/tmp/evil/node', ['node', 'x.js']), ctx())).action).toBe('run');
  });

  it('allow → escalate; no match → the configured default', async () => {
    const current = rules(POLICY);
    expect(await createRulesPolicy({ store: { current } }).decide(request('/usr/bin/git', ['git', 'status']), ctx())).toMatchObject({
      action: 'escalate',
      reason: 'allowed by prefix_rule(["git", "status"], decision="allow") at p.rules:5:1',
    });
    const ls = request('/usr/bin/ls', ['ls', '-l']);
    expect((await createRulesPolicy({ store: { current } }).decide(ls, ctx())).action).toBe('run');
    expect((await createRulesPolicy({ store: { current }, defaultAction: 'run' }).decide(ls, ctx())).action).toBe('run');
    expect(await createRulesPolicy({ store: { current }, defaultAction: 'deny' }).decide(ls, ctx())).toMatchObject({
      action: 'deny',
      reason: 'no rule matches this command and the default is deny',
    });
    const asked: ApprovalRequest[] = [];
    const prompting = createRulesPolicy({
      store: { current },
      defaultAction: 'prompt',
      approver: createCallbackApprover((r) => {
        asked.push(r);
        return false;
      }),
    });
    expect((await prompting.decide(ls, ctx())).action).toBe('deny');
    expect(asked[0]?.rule).toBe('no rule matched (default: prompt)');
    expect(() => createRulesPolicy({ store: { current }, defaultAction: 'maybe' as never })).toThrow(/invalid default action "maybe"/);
  });

  it('prompt → headless deny by default, with "requires approval: <rule>"', async () => {
    const d = await createRulesPolicy({ store: { current: rules(POLICY) } }).decide(request('/usr/bin/git', ['git', 'push']), ctx());
    expect(d).toMatchObject({
      action: 'deny',
      reason: 'requires approval: prefix_rule(["git", "push"], decision="prompt") at p.rules:4:1 (publishes commits)',
    });
  });

  it('prompt → approver; "allow for this session" covers exactly the command shown (program file, argv, workdir)', async () => {
    const asked: ApprovalRequest[] = [];
    const policy = createRulesPolicy({
      store: { current: rules(POLICY) },
      approver: createCallbackApprover((r) => {
        asked.push(r);
        return { decision: 'allow', scope: 'session' };
      }),
    });
    const d1 = await policy.decide(request('/usr/bin/git', ['git', 'push', 'origin']), ctx());
    expect(d1).toMatchObject({ action: 'escalate', audit: { approval: 'session' } });
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({
      program: '/usr/bin/git',
      argv: ['git', 'push', 'origin'],
      matchedPrefix: ['git', 'push'],
      prefixScope: ['git', 'push'],
      justification: 'publishes commits',
      workdir: '/work',
    });
    // The same command again: no new question.
    expect(await policy.decide(request('/usr/bin/git', ['git', 'push', 'origin']), ctx())).toMatchObject({ action: 'escalate', audit: { approval: 'session' } });
    expect(asked).toHaveLength(1);
    // Other arguments, another workdir, another binary, another session: each is asked.
    await policy.decide(request('/usr/bin/git', ['git', 'push', 'upstream']), ctx());
    expect(asked).toHaveLength(2);
    await policy.decide({ ...request('/usr/bin/git', ['git', 'push', 'origin']), workdir: '/elsewhere' }, ctx());
    expect(asked).toHaveLength(3);
    await policy.decide(request(otherGit, ['git', 'push', 'origin']), ctx());
    expect(asked).toHaveLength(4);
    await policy.decide({ ...request('/usr/bin/git', ['git', 'push', 'origin']), sessionId: 's2' }, ctx());
    expect(asked).toHaveLength(5);
    policy.clearSessionApprovals();
    await policy.decide(request('/usr/bin/git', ['git', 'push', 'origin']), ctx());
    expect(asked).toHaveLength(6);
  });

  it('"allow for this session" is tied to the program file: a rewritten program is asked about again', async () => {
    const asked: ApprovalRequest[] = [];
    const policy = createRulesPolicy({
      store: { current: rules(POLICY) },
      approver: createCallbackApprover((r) => {
        asked.push(r);
        return { decision: 'allow', scope: 'session' };
      }),
    });
    const script = path.join(mkdtempSync(path.join(os.tmpdir(), 'rules-policy-edit-')), 'git');
    writeFileSync(script, '#!/bin/sh\necho harmless\n', { mode: 0o755 });
    await policy.decide(request(script, ['git', 'push']), ctx());
    await policy.decide(request(script, ['git', 'push']), ctx());
    expect(asked).toHaveLength(1);
    // The sandbox can write where this script lives: new content is not what was approved.
    // Rewritten in place (same inode); the ctime moves at the clock's granularity, so write until it has.
    const approvedCtime = statSync(script, { bigint: true }).ctimeNs;
    do writeFileSync(script, '#!/bin/sh\nrm -rf "$HOME"\n');
    while (statSync(script, { bigint: true }).ctimeNs === approvedCtime);
    await policy.decide(request(script, ['git', 'push']), ctx());
    expect(asked).toHaveLength(2);
    // A program that cannot be identified is never remembered.
    await policy.decide(request('/nonexistent/git', ['git', 'push']), ctx());
    await policy.decide(request('/nonexistent/git', ['git', 'push']), ctx());
    expect(asked).toHaveLength(4);
  });

  it('"prefix" scope: every command of that program starting with the rule\'s matched prefix, only when offered', async () => {
    const asked: ApprovalRequest[] = [];
    const policy = createRulesPolicy({
      store: { current: rules(POLICY) },
      defaultAction: 'prompt',
      approver: createCallbackApprover((r) => {
        asked.push(r);
        return { decision: 'allow', scope: 'prefix' };
      }),
    });
    expect(await policy.decide(request('/usr/bin/git', ['git', 'push', 'origin']), ctx())).toMatchObject({ action: 'escalate', audit: { approval: 'prefix' } });
    expect(await policy.decide(request('/usr/bin/git', ['git', 'push', 'upstream', '--force']), ctx())).toMatchObject({ action: 'escalate', audit: { approval: 'prefix' } });
    expect(asked).toHaveLength(1);
    // Another binary under the same name is not covered.
    await policy.decide(request(otherGit, ['git', 'push']), ctx());
    expect(asked).toHaveLength(2);
    // No rule matched (--default prompt): no prefix is offered, so a "prefix" answer counts once.
    const ls = await policy.decide(request('/usr/bin/ls', ['ls', '-l']), ctx());
    expect(ls).toMatchObject({ action: 'escalate', audit: { approval: 'once' } });
    expect(asked[2]?.prefixScope).toBeUndefined();
    await policy.decide(request('/usr/bin/ls', ['ls', '-l']), ctx());
    expect(asked).toHaveLength(4);
  });

  it('"allow once" is not remembered; an approver deny is a deny with its reason', async () => {
    let answer: 'once' | 'deny' = 'once';
    let calls = 0;
    const policy = createRulesPolicy({
      store: { current: rules(POLICY) },
      approver: createCallbackApprover(() => {
        calls++;
        return answer === 'once' ? { decision: 'allow', scope: 'once' } : { decision: 'deny', reason: 'operator said no' };
      }),
    });
    expect((await policy.decide(request('/usr/bin/git', ['git', 'push']), ctx())).action).toBe('escalate');
    answer = 'deny';
    expect(await policy.decide(request('/usr/bin/git', ['git', 'push']), ctx())).toMatchObject({ action: 'deny', reason: 'operator said no' });
    expect(calls).toBe(2);
  });

  it('an approver that throws, or a cancelled request, ends in deny', async () => {
    const throwing = createRulesPolicy({
      store: { current: rules(POLICY) },
      approver: {
        approve: () => Promise.reject(new Error('approver exploded')),
      },
    });
    const d = await throwing.decide(request('/usr/bin/git', ['git', 'push']), ctx());
    expect(d.action).toBe('deny');
    expect(d.reason).toMatch(/approver failed: approver exploded/);

    const ac = new AbortController();
    const late = createRulesPolicy({
      store: { current: rules(POLICY) },
      approver: createCallbackApprover(async () => {
        ac.abort();
        return true;
      }),
    });
    expect((await late.decide(request('/usr/bin/git', ['git', 'push']), { signal: ac.signal })).action).toBe('deny');
  });

  it('a symlinked path keeps its restrictive rules but its allow rules do not escalate another binary', async () => {
    const policy = createRulesPolicy({ store: { current: rules(POLICY) } });
    // bash ran /usr/bin/python3, which resolves to python3.11.
    const d = await policy.decide(request('/usr/bin/python3.11', ['python3', '-c', '1'], '/usr/bin/python3'), ctx());
    expect(d).toMatchObject({ action: 'deny', reason: 'no python' });
    // A relative `file` is resolved against workdir.
    const rel = await policy.decide(request('/usr/bin/python3.11', ['python3'], '../usr/bin/python3'), ctx());
    expect(rel.action).toBe('deny');
    // `node` is allowed only at /usr/local/bin/node; a link elsewhere pointing at another binary must not escalate.
    const link = await policy.decide(request('/opt/other/bin/node-real', ['node'], '/usr/local/bin/node'), ctx());
    expect(link.action).toBe('run');
  });

  it('reads the rules in force at each decision (reload takes effect for the next exec)', async () => {
    const store = { current: rules('prefix_rule(pattern=["ls"], decision="forbidden")') };
    const policy = createRulesPolicy({ store });
    expect((await policy.decide(request('/bin/ls', ['ls']), ctx())).action).toBe('deny');
    store.current = rules('prefix_rule(pattern=["ls"], decision="allow")');
    expect((await policy.decide(request('/bin/ls', ['ls']), ctx())).action).toBe('escalate');
  });
});
