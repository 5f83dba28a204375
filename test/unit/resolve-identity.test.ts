/**
 * Pure pieces of the boundary-identity fixes (the attacks themselves are in
 * test/integration/boundary-identity.test.ts): the self-path rewrite for
 * upstream requests and the ENOEXEC shell in Run replies.
 */
import { describe, expect, it } from 'vitest';
import { EscalateResponseSchema, toWireResponse } from '../../src/protocol/messages.js';
import { rewriteSelfPath } from '../../src/server/resolve-request.js';

describe('rewriteSelfPath (upstream requests: the requester\'s /proc/PID, never the server\'s /proc/self)', () => {
  const pid = () => 4242;
  it.each([
    ['/proc/self/fd/7', '/proc/4242/fd/7'],
    ['/proc/self', '/proc/4242'],
    ['/proc/self/exe', '/proc/4242/exe'],
    ['/proc/thread-self/fd/7', '/proc/4242/fd/7'],
    ['/dev/fd/7', '/proc/4242/fd/7'],
    ['/dev/fd', '/proc/4242/fd'],
    ['/dev/stdin', '/proc/4242/fd/0'],
    ['/dev/stdout', '/proc/4242/fd/1'],
    ['/dev/stderr', '/proc/4242/fd/2'],
    ['/proc/self/cwd/tool', '/proc/4242/cwd/tool'],
  ])('%s -> %s', (from, to) => {
    expect(rewriteSelfPath(from, pid)).toBe(to);
  });

  it.each(['/proc/selfish/x', '/dev/fdx/7', '/dev/stdinx', '/usr/bin/rm', '/proc/1/fd/7', '/devfd/7'])('%s is left alone, and the pid is not even looked up', (p) => {
    expect(rewriteSelfPath(p, () => { throw new Error('pid looked up'); })).toBeUndefined();
  });
});

describe('the ENOEXEC shell travels in the Run reply, not in the environment', () => {
  it('is added to Run and RunRewritten only, as a top-level field', () => {
    const shell = { shell: '/opt/patched/bash' };
    expect(JSON.stringify(toWireResponse({ kind: 'run' }, shell))).toBe('{"action":"Run","shell":"/opt/patched/bash"}');
    expect(toWireResponse({ kind: 'run', rewrite: { file: '/bin/echo', argv: ['echo'] } }, shell)).toEqual({ action: { RunRewritten: { file: '/bin/echo', argv: ['echo'] } }, shell: '/opt/patched/bash' });
    expect(JSON.stringify(toWireResponse({ kind: 'escalate' }, shell))).toBe('{"action":"Escalate"}');
    expect(JSON.stringify(toWireResponse({ kind: 'deny', reason: 'x' }, shell))).toBe('{"action":{"Deny":{"reason":"x"}}}');
    expect(JSON.stringify(toWireResponse({ kind: 'run' }, { shell: undefined }))).toBe('{"action":"Run"}');
    expect(EscalateResponseSchema.parse({ action: 'Run', shell: '/bin/bash' })).toEqual({ action: 'Run', shell: '/bin/bash' });
  });
});
