import { describe, expect, it } from 'vitest';
import { parsePrefix } from '../../src/policy/prefix.js';
import { createStaticPolicy } from '../../src/policy/static-policy.js';
import type { ExecRequest } from '../../src/policy/types.js';

const req = (program: string, ...args: string[]): ExecRequest => ({
  sessionId: 's',
  requestId: 'r',
  file: program,
  program,
  argv: [program.split('/').pop()!, ...args],
  workdir: '/',
  env: {},
});
const signal = new AbortController().signal;

describe('static --deny/--escalate policy', () => {
  const policy = createStaticPolicy({ deny: ['git push', 'rm -rf'], escalate: ['git', "echo 'a b'"] });

  it('matches the basename of the resolved program followed by the arguments', async () => {
    expect(await policy.decide(req('/usr/bin/git', 'push', 'origin'), { signal })).toMatchObject({ action: 'deny', reason: 'matches --deny "git push"' });
    expect(await policy.decide(req('/usr/bin/git', 'status'), { signal })).toMatchObject({ action: 'escalate' });
    expect(await policy.decide(req('/bin/rm', '-rf', '/x'), { signal })).toMatchObject({ action: 'deny' });
    expect(await policy.decide(req('/bin/rm', '-r', '/x'), { signal })).toMatchObject({ action: 'run' });
  });

  it('deny wins over escalate and quoting groups words', async () => {
    expect(await policy.decide(req('/bin/echo', 'a b', 'c'), { signal })).toMatchObject({ action: 'escalate' });
    expect(await policy.decide(req('/bin/echo', 'a', 'b'), { signal })).toMatchObject({ action: 'run' });
  });

  it('deny also matches the invoked name (symlinks), escalate only the real program', async () => {
    const viaLink = { ...req('/usr/bin/dash', '-c', 'x'), file: '/bin/sh' };
    expect(await createStaticPolicy({ deny: ['sh'] }).decide(viaLink, { signal })).toMatchObject({ action: 'deny' });
    expect(await createStaticPolicy({ escalate: ['sh'] }).decide(viaLink, { signal })).toMatchObject({ action: 'run' });
    const spoof = { ...req('/usr/bin/rm', '-rf', '/'), file: './git' };
    expect(await createStaticPolicy({ escalate: ['git'] }).decide(spoof, { signal })).toMatchObject({ action: 'run' });
  });

  it('uses the configured default when nothing matches', async () => {
    expect(await createStaticPolicy({ defaultAction: 'deny' }).decide(req('/bin/ls'), { signal })).toMatchObject({ action: 'deny' });
  });

  it('rejects patterns with shell operators or nothing in them', () => {
    expect(() => parsePrefix('a | b')).toThrow(/plain words/);
    expect(() => parsePrefix('   ')).toThrow(/empty/);
  });
});

describe('parsePrefix: shell words taken literally (policy/prefix.ts on shlex)', () => {
  // Each of these would mean something else to a shell than the literal words we match.
  it.each([
    ['echo $HOME', /"\$" would expand/],
    ['echo "$HOME"', /"\$" would expand/],
    ['echo ${HOME}', /"\$" would expand/],
    ['echo $(id)', /"\$" would expand/],
    ['echo `id`', /"`" would expand/],
    ['echo "`id`"', /"`" would expand/],
    ['rm *', /glob character "\*"/],
    ['rm -rf /tmp/?', /glob character "\?"/],
    ['rm [ab]', /glob character "\["/],
    ['echo {a,b}', /brace "\{"/],
    ['cat ~/x', /"~" would expand/],
    ['git push # comment', /"#" starts a comment/],
    ['a | b', /shell operator "\|"/],
    ['a; b', /shell operator ";"/],
    ['a && b', /shell operator "&"/],
    ['a > f', /shell operator ">"/],
    ['(a)', /shell operator "\("/],
    ["echo 'open", /unclosed '/],
    ['echo "open', /unclosed "/],
    ['echo x\\', /trailing backslash/],
  ])('%s is a clear error', (pattern, message) => {
    expect(() => parsePrefix(pattern)).toThrow(message);
    expect(() => parsePrefix(pattern)).toThrow(/only plain words are allowed/);
  });

  it.each([
    ['git push', ['git', 'push']],
    ["echo 'a b'", ['echo', 'a b']],
    ["echo '$HOME'", ['echo', '$HOME']],
    ['echo \\$HOME', ['echo', '$HOME']],
    ['echo "\\$HOME"', ['echo', '$HOME']],
    ["rm '*'", ['rm', '*']],
    ['a=b c#d e~f', ['a=b', 'c#d', 'e~f']],
    ["printf ''", ['printf', '']],
    ['  python3\t-c  ', ['python3', '-c']],
  ])('%s is the words %j', (pattern, words) => {
    expect(parsePrefix(pattern)).toEqual(words);
  });
});
