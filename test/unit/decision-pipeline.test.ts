import { describe, expect, it } from 'vitest';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { createCallbackApprover } from '../../src/policy/approval/index.js';
import { compileRules } from '../../src/policy/rules/index.js';
import type { PreToolUseVerdict } from '../../src/hooks/types.js';
import type { ExecRequest } from '../../src/policy/types.js';

/** The merge rules of the decision pipeline (SPEC "Decision flow"), with the hooks' verdict given directly. */
const rules = compileRules([
  {
    file: 'p.rules',
    source: `
prefix_rule(pattern = ["rm", "-rf"], decision = "forbidden", justification = "no recursive deletes")
prefix_rule(pattern = ["git", "push"], decision = "prompt", justification = "publishes commits")
prefix_rule(pattern = ["git", "status"], decision = "allow")
`,
  },
]);
const req = (program: string, ...args: string[]): ExecRequest => ({
  sessionId: 's',
  requestId: 'r',
  file: program,
  program,
  argv: [program.split('/').pop()!, ...args],
  workdir: '/',
  env: { PATH: '/usr/bin:/bin' },
});
const ctx = { signal: new AbortController().signal };
const hooks = (v: Partial<PreToolUseVerdict>) => ({ preToolUse: async () => ({ decision: 'none' as const, runs: [], ...v }) });
const approver = (answer: 'allow' | 'deny', asked: string[] = []) =>
  createCallbackApprover((r) => {
    asked.push(r.rule);
    return answer === 'allow' ? { decision: 'allow' } : { decision: 'deny', reason: `no: ${r.rule}` };
  });

describe('decision pipeline merge', () => {
  it('a forbidden rule denies even when a hook allows', async () => {
    const p = createDecisionPipeline({ rules: { current: rules }, hooks: hooks({ decision: 'allow' }) });
    expect(await p.decide(req('/usr/bin/rm', '-rf', '/x'), ctx)).toMatchObject({ action: 'deny', reason: 'no recursive deletes' });
  });

  it('a hook deny wins over an allow rule', async () => {
    const p = createDecisionPipeline({ rules: { current: rules }, hooks: hooks({ decision: 'deny', reason: 'scanner says no' }) });
    expect(await p.decide(req('/usr/bin/git', 'status'), ctx)).toMatchObject({ action: 'deny', reason: 'blocked by hook: scanner says no' });
  });

  it('a hook allow answers a prompt rule without asking the approver', async () => {
    const asked: string[] = [];
    const p = createDecisionPipeline({ rules: { current: rules }, hooks: hooks({ decision: 'allow', reason: 'trusted remote' }), approver: approver('deny', asked) });
    expect(await p.decide(req('/usr/bin/git', 'push'), ctx)).toMatchObject({ action: 'escalate', audit: { approval: 'hook' } });
    expect(asked).toEqual([]);
  });

  it('a hook ask goes to the approver; approved keeps the action the rules give (run when nothing matched)', async () => {
    const asked: string[] = [];
    const p = createDecisionPipeline({ rules: { current: rules }, hooks: hooks({ decision: 'ask', reason: 'unusual' }), approver: approver('allow', asked) });
    expect(await p.decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'run' });
    expect(await p.decide(req('/usr/bin/git', 'status'), ctx)).toMatchObject({ action: 'escalate' });
    expect(asked).toEqual(['hook asks: unusual', 'hook asks: unusual']);
    const denying = createDecisionPipeline({ hooks: hooks({ decision: 'ask' }), approver: approver('deny') });
    expect(await denying.decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'deny' });
  });

  it('a rewrite is re-checked against the rules: a forbidden rewrite is denied, an allowed one escalates exactly as rewritten', async () => {
    const toRm = createDecisionPipeline({ rules: { current: rules }, hooks: hooks({ rewrite: { argv: ['rm', '-rf', '/tmp/x'] } }) });
    const denied = await toRm.decide(req('/usr/bin/ls'), ctx);
    expect(denied.action).toBe('deny');
    expect(denied.reason).toMatch(/rewritten command \["rm","-rf","\/tmp\/x"\]: no recursive deletes/);

    const toStatus = createDecisionPipeline({ rules: { current: rules }, hooks: hooks({ rewrite: { argv: ['git', 'status'] } }) });
    expect(await toStatus.decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'escalate', rewrite: { argv: ['git', 'status'], program: '/usr/bin/git' } });

    const toLs = createDecisionPipeline({ hooks: hooks({ rewrite: { argv: ['ls', '-l'] } }) });
    expect(await toLs.decide(req('/usr/bin/cat'), ctx)).toMatchObject({ action: 'run', rewrite: { argv: ['ls', '-l'], program: '/usr/bin/ls' } });
  });

  it('a rewrite to something that cannot be resolved is denied, never dropped', async () => {
    const p = createDecisionPipeline({ hooks: hooks({ rewrite: { argv: ['no-such-command-xyz'] } }) });
    expect(await p.decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'deny', reason: expect.stringMatching(/cannot be resolved/) });
  });

  it('--default prompt asks and escalates on approval; --default deny denies', async () => {
    expect(await createDecisionPipeline({ defaultAction: 'prompt', approver: approver('allow') }).decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'escalate' });
    expect(await createDecisionPipeline({ defaultAction: 'prompt' }).decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'deny', reason: expect.stringMatching(/^requires approval/) });
    expect(await createDecisionPipeline({ defaultAction: 'deny' }).decide(req('/usr/bin/ls'), ctx)).toMatchObject({ action: 'deny' });
  });

  it('hook runs are recorded in the audit fields', async () => {
    const runs = [{ hook: 'h', event: 'PreToolUse', type: 'command', status: 'completed', duration_ms: 1, required: false }] as unknown as PreToolUseVerdict['runs'];
    const d = await createDecisionPipeline({ hooks: hooks({ runs }) }).decide(req('/usr/bin/ls'), ctx);
    expect(d.audit).toMatchObject({ hooks: runs });
  });
});
