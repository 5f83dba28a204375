import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { terminalLine } from '../../src/cli/audit-output.js';
import { quoteCommandLine, shellInvocation, COMMAND_SCRIPT } from '../../src/cli/command-line.js';

describe('terminal view of the audit', () => {
  const time = '2026-01-02T03:04:05.000Z';
  const local = new Date(time).toTimeString().slice(0, 8);

  it('a decision is one line: time, action, command, reason; a hostile argv cannot add lines or escapes', () => {
    const line = terminalLine({ level: 30, time, event: 'decision', program: '/usr/bin/x', argv: ['x', 'a\nFAKE 12:00 run /bin/ok', '\x1b[2J'], action: 'deny', reason: 'no\rreason' }, false);
    expect(line).toBe(`${local} deny     /usr/bin/x $'a\\nFAKE 12:00 run /bin/ok' $'\\x1b[2J' (no\\rreason)`);
    expect(line).not.toMatch(/[\n\r\x1b]/);
  });

  it('lifecycle lines only when asked for; warnings and errors always', () => {
    expect(terminalLine({ level: 30, time, event: 'session_start', msg: 'session started' }, false)).toBeUndefined();
    expect(terminalLine({ level: 30, time, event: 'session_start', msg: 'session started' }, true)).toBe(`${local} session started`);
    expect(terminalLine({ level: 40, time, msg: 'rules file\nX' }, false)).toBe(`${local} warning  rules file\\nX`);
    expect(terminalLine({ level: 50, time, msg: 'policy failed; denying', error: 'boom' }, false)).toBe(`${local} error    policy failed; denying: boom`);
  });
});

describe('what run hands to bash', () => {
  it('one word is a script, several are a command run exactly, -c gives positional parameters', () => {
    expect(shellInvocation(['echo hi | tr a-z A-Z'], undefined).args).toEqual(['-c', 'echo hi | tr a-z A-Z']);
    expect(shellInvocation(['ls', '-la', 'a b'], undefined)).toEqual({ args: ['-c', COMMAND_SCRIPT, 'codex-escalate', 'ls', '-la', 'a b'], script: "ls -la 'a b'", scriptArgs: [] });
    expect(shellInvocation(['n', 'x'], 'echo "$1"')).toEqual({ args: ['-c', 'echo "$1"', 'n', 'x'], script: 'echo "$1"', scriptArgs: ['n', 'x'] });
    expect(() => shellInvocation([], undefined)).toThrow(/nothing to run/);
  });

  it('the quoted command line reads back as the same words in bash', () => {
    const words = ['a', "it's", '', '$x', 'l1\nl2', 'tab\there', 'back\\slash', "both'\n\\", '\x01', 'é'];
    const line = quoteCommandLine(words);
    expect(line.startsWith(`a 'it'\\''s' '' '$x' $'l1\\nl2' $'tab\\there' 'back\\slash' `)).toBe(true);
    const out = execFileSync('bash', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(words);
  });
});
