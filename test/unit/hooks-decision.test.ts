import { describe, expect, it } from 'vitest';
import { aggregate, type HookResult } from '../../src/hooks/aggregate.js';
import { type HookOutcome, interpretDecisionObject, interpretProcessResult, interpretStdout, parseRewriteCommand } from '../../src/hooks/decision.js';
import { matcherMatches } from '../../src/hooks/matcher.js';
import { interpretToolResult } from '../../src/hooks/runners/mcp.js';
import type { CommandHook, HookRunSummary } from '../../src/hooks/types.js';

const dec = (o: HookOutcome): string => (o.kind === 'opinion' ? (o.decision ?? 'none') : 'failure');
const ok = { stdout: '', stderr: '', truncated: false, timedOut: false } as const;

describe('process result interpretation', () => {
  it('exit 0 with empty stdout is no opinion', () => {
    expect(interpretProcessResult({ ...ok, exitCode: 0 })).toEqual({ kind: 'opinion' });
  });
  it('exit 2 with stderr denies with stderr as reason', () => {
    expect(interpretProcessResult({ ...ok, exitCode: 2, stderr: 'no way\n' })).toEqual({ kind: 'opinion', decision: 'deny', reason: 'no way' });
  });
  it('exit 2 with empty stderr still blocks (Claude Code: exit 2 is a block)', () => {
    expect(interpretProcessResult({ ...ok, exitCode: 2, stderr: '  ' })).toMatchObject({ kind: 'opinion', decision: 'deny' });
  });
  it('other exit codes, signals, spawn errors are failures; timeouts are timed_out', () => {
    expect(interpretProcessResult({ ...ok, exitCode: 1 })).toMatchObject({ kind: 'failure', status: 'failed' });
    expect(interpretProcessResult({ ...ok, exitCode: 127 })).toMatchObject({ kind: 'failure', status: 'failed' });
    expect(interpretProcessResult({ ...ok, signal: 'SIGSEGV' })).toMatchObject({ kind: 'failure', error: expect.stringContaining('SIGSEGV') });
    expect(interpretProcessResult({ ...ok, spawnError: 'ENOENT' })).toMatchObject({ kind: 'failure', status: 'failed' });
    expect(interpretProcessResult({ ...ok, timedOut: true })).toMatchObject({ kind: 'failure', status: 'timed_out' });
  });
  it('truncated output blocks even with exit 0', () => {
    expect(interpretProcessResult({ ...ok, exitCode: 0, truncated: true })).toMatchObject({ kind: 'opinion', decision: 'deny' });
  });
  it('invalid JSON and non-object JSON are failures', () => {
    expect(interpretStdout('not json')).toMatchObject({ kind: 'failure' });
    expect(interpretStdout('[1,2]')).toMatchObject({ kind: 'failure' });
    expect(interpretStdout('"deny"')).toMatchObject({ kind: 'failure' });
  });
});

describe('decision objects', () => {
  it('hookSpecificOutput allow / deny / ask with reasons', () => {
    for (const d of ['allow', 'deny', 'ask'] as const) {
      expect(interpretDecisionObject({ hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: d, permissionDecisionReason: `r-${d}` } })).toEqual({
        kind: 'opinion',
        decision: d,
        reason: `r-${d}`,
      });
    }
  });
  it('unknown permissionDecision denies (fail closed)', () => {
    expect(interpretDecisionObject({ hookSpecificOutput: { permissionDecision: 'maybe' } })).toMatchObject({ kind: 'opinion', decision: 'deny' });
  });
  it('updatedInput.command is re-parsed into argv', () => {
    expect(interpretDecisionObject({ hookSpecificOutput: { permissionDecision: 'allow', updatedInput: { command: "ls -l 'a b' \"c d\" e\\ f" } } })).toEqual({
      kind: 'opinion',
      decision: 'allow',
      rewrite: ['ls', '-l', 'a b', 'c d', 'e f'],
    });
  });
  it('updatedInput.argv is taken as is', () => {
    expect(interpretDecisionObject({ hookSpecificOutput: { updatedInput: { argv: ['echo', '$HOME | x'] } } })).toEqual({
      kind: 'opinion',
      decision: undefined,
      rewrite: ['echo', '$HOME | x'],
    });
  });
  it('a rewrite that is not one argv denies', () => {
    for (const cmd of ['ls | wc', 'a; b', 'a && b', 'echo $HOME', 'echo `id`', 'echo $(id)', 'ls *.c', 'cat < f', 'echo ~/x', 'a\nb', 'echo {a,b}', 'x # c', "echo 'open", 'echo "$X"', '']) {
      const o = interpretDecisionObject({ hookSpecificOutput: { permissionDecision: 'allow', updatedInput: { command: cmd } } });
      expect(o, cmd).toMatchObject({ kind: 'opinion', decision: 'deny' });
    }
  });
  it('quoted shell syntax is fine in a rewrite', () => {
    expect(parseRewriteCommand(`echo 'a | b' "c;d" '$HOME' 'x*'`)).toEqual({ argv: ['echo', 'a | b', 'c;d', '$HOME', 'x*'] });
  });
  it('legacy approve / block', () => {
    expect(interpretDecisionObject({ decision: 'approve', reason: 'fine' })).toEqual({ kind: 'opinion', decision: 'allow', reason: 'fine' });
    expect(interpretDecisionObject({ decision: 'block', reason: 'bad' })).toEqual({ kind: 'opinion', decision: 'deny', reason: 'bad' });
  });
  it('seed proceed / block / modify', () => {
    expect(dec(interpretDecisionObject({ decision: 'proceed' }))).toBe('none');
    expect(interpretDecisionObject({ decision: 'block', content: 'nope' })).toMatchObject({ decision: 'deny', reason: 'nope' });
    expect(interpretDecisionObject({ decision: 'modify', content: 'echo safe' })).toMatchObject({ kind: 'opinion', rewrite: ['echo', 'safe'] });
    expect(dec(interpretDecisionObject({ decision: 'modify', content: 'echo safe' }))).toBe('none');
    expect(interpretDecisionObject({ decision: 'modify', content: { command: 'ls -a' } })).toMatchObject({ rewrite: ['ls', '-a'] });
  });
  it('seed modify without content blocks', () => {
    expect(interpretDecisionObject({ decision: 'modify' })).toMatchObject({ decision: 'deny' });
    expect(interpretDecisionObject({ decision: 'modify', content: '' })).toMatchObject({ decision: 'deny' });
  });
  it('continue:false denies with stopReason', () => {
    expect(interpretDecisionObject({ continue: false, stopReason: 'halt' })).toEqual({ kind: 'opinion', decision: 'deny', reason: 'halt' });
  });
  it('unknown decision denies (fail closed); legacy ask asks', () => {
    expect(interpretDecisionObject({ decision: 'perhaps' })).toMatchObject({ kind: 'opinion', decision: 'deny' });
    expect(interpretDecisionObject({ decision: 'ask', reason: 'sure?' })).toEqual({ kind: 'opinion', decision: 'ask', reason: 'sure?' });
  });
});

describe('mcp tool result contract', () => {
  it('isError denies, deny/block prefix denies, JSON decision is honoured, else no opinion', () => {
    expect(interpretToolResult({ isError: true, content: [{ type: 'text', text: 'boom' }] })).toMatchObject({ decision: 'deny', reason: 'boom' });
    expect(interpretToolResult({ content: [{ type: 'text', text: 'Deny: risky' }] })).toMatchObject({ decision: 'deny' });
    expect(interpretToolResult({ content: [{ type: 'text', text: 'blocked by policy' }] })).toMatchObject({ decision: 'deny' });
    expect(interpretToolResult({ content: [{ type: 'text', text: '{"hookSpecificOutput":{"permissionDecision":"ask"}}' }] })).toMatchObject({ decision: 'ask' });
    expect(dec(interpretToolResult({ content: [{ type: 'text', text: 'ok: fine, not denied' }] }))).toBe('none');
    expect(dec(interpretToolResult({}))).toBe('none');
  });
});

describe('matchers (Claude Code semantics)', () => {
  it('empty, * and missing match all', () => {
    expect(matcherMatches(undefined, 'Bash')).toBe(true);
    expect(matcherMatches('', 'Bash')).toBe(true);
    expect(matcherMatches('*', 'Bash')).toBe(true);
  });
  it('exact names and alternatives, case-sensitive', () => {
    expect(matcherMatches('Bash', 'Bash')).toBe(true);
    expect(matcherMatches('bash', 'Bash')).toBe(false);
    expect(matcherMatches('Edit|Bash', 'Bash')).toBe(true);
    expect(matcherMatches('Edit|Write', 'Bash')).toBe(false);
    expect(matcherMatches('Bas', 'Bash')).toBe(false);
  });
  it('regexes', () => {
    expect(matcherMatches('B.*', 'Bash')).toBe(true);
    expect(matcherMatches('^Ba(sh|ss)$', 'Bash')).toBe(true);
    expect(matcherMatches('Notebook.*', 'Bash')).toBe(false);
    expect(matcherMatches('(', 'Bash')).toBe(false); // invalid regex: matches nothing, no crash
  });
});

describe('aggregate (merge rule)', () => {
  const hook = (id: string, required = false): CommandHook => ({
    id,
    source: '/x',
    entry: id,
    event: 'exec.before',
    enabled: true,
    required,
    timeoutMs: 1000,
    mode: 'sync',
    priority: 'normal',
    conditions: {},
    baseDir: '/',
    type: 'command',
    command: 'true',
    env: {},
    persistent: false,
  });
  const summary = { hook: 'h', event: 'exec.before', type: 'command', status: 'completed', duration_ms: 1, required: false } as HookRunSummary;
  const r = (id: string, outcome: HookResult['outcome'], required = false): HookResult => ({ hook: hook(id, required), outcome, summary });
  const argv = ['rm', '-rf', 'x'];

  it('no hooks = none', () => expect(aggregate([], argv).decision).toBe('none'));
  it('any deny wins over allow and ask', () => {
    const v = aggregate([r('a', { kind: 'opinion', decision: 'allow' }), r('b', { kind: 'opinion', decision: 'deny', reason: 'x' }), r('c', { kind: 'opinion', decision: 'ask' })], argv);
    expect(v.decision).toBe('deny');
    expect(v.reason).toContain('b: x');
  });
  it('ask beats allow', () => {
    expect(aggregate([r('a', { kind: 'opinion', decision: 'allow' }), r('b', { kind: 'opinion', decision: 'ask' })], argv).decision).toBe('ask');
  });
  it('optional failure is ignored, required failure denies', () => {
    expect(aggregate([r('a', { kind: 'failure', status: 'failed', error: 'e' })], argv).decision).toBe('none');
    const v = aggregate([r('a', { kind: 'failure', status: 'timed_out', error: 'slow' }, true)], argv);
    expect(v.decision).toBe('deny');
    expect(v.reason).toContain('required hook a failed: slow');
  });
  it('one rewrite surfaces; identical rewrites agree; different rewrites deny', () => {
    const w = (id: string, a: string[]) => r(id, { kind: 'opinion', rewrite: a });
    expect(aggregate([w('a', ['ls'])], argv)).toMatchObject({ decision: 'none', rewrite: { argv: ['ls'] } });
    expect(aggregate([w('a', ['ls']), w('b', ['ls'])], argv)).toMatchObject({ rewrite: { argv: ['ls'] } });
    expect(aggregate([w('a', ['ls']), w('b', ['pwd'])], argv).decision).toBe('deny');
    // A "rewrite" to the original argv is no rewrite at all.
    expect(aggregate([w('a', [...argv])], argv).rewrite).toBeUndefined();
  });
  it('a rewrite rides along with ask / allow', () => {
    expect(aggregate([r('a', { kind: 'opinion', decision: 'ask', rewrite: ['ls'] })], argv)).toMatchObject({ decision: 'ask', rewrite: { argv: ['ls'] } });
  });
});
