/** Issue 14, pure logic: quoting, rewrite reconciliation, strict loading, defaults. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aggregate, tidyLines } from '../../src/hooks/aggregate.js';
import { loadHooksSync } from '../../src/hooks/config.js';
import { interpretDecisionObject, parseRewriteCommand, resolveRewrite } from '../../src/hooks/decision.js';
import { commandString, quoteWord } from '../../src/hooks/payload.js';

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'cse-fidelity-'));
}

function load(doc: unknown, name = 'hooks.json', dir = tmp()) {
  const f = path.join(dir, name);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return loadHooksSync({ files: [f], roots: [] });
}

describe('tool_input.command reads as typed', () => {
  it('no backslashes before = : ~ (inside a word) , @ %', () => {
    expect(commandString(['dd', 'if=/dev/zero', 'of=/dev/sda'])).toBe('dd if=/dev/zero of=/dev/sda');
    expect(commandString(['env', 'TOKEN=abc', 'curl', 'https://x.test/a:b?q=1'])).toBe("env TOKEN=abc curl 'https://x.test/a:b?q=1'");
    expect(commandString(['ls', 'a~b', 'user@host:/p', '50%', 'a,b'])).toBe('ls a~b user@host:/p 50% a,b');
  });
  it('quotes only what the shell would read specially', () => {
    expect(quoteWord('')).toBe("''");
    expect(quoteWord('a b')).toBe("'a b'");
    expect(quoteWord('*')).toBe("'*'");
    expect(quoteWord('~/x')).toBe("'~/x'");
    expect(quoteWord('x=~/y')).toBe("'x=~/y'");
    expect(quoteWord("it's")).toBe("'it'\\''s'");
    expect(quoteWord('$HOME')).toBe("'$HOME'");
    expect(quoteWord('a\nb')).toBe("'a\nb'");
  });
  it('round-trips: an echoed command is the same argv (no phantom rewrite)', () => {
    const argvs = [
      ['rm', '-rf', 'a b', "it's"],
      ['dd', 'if=/dev/zero', 'of=/dev/sda'],
      ['echo', '*', '~', '~/x', '$X', '`id`', 'a;b', 'a|b', '(x)', '{a,b}', '#c', '', 'x\ny', '\t'],
      ['git', 'commit', '-m', 'fix: "quoted" and \'single\''],
    ];
    for (const a of argvs) expect(parseRewriteCommand(commandString(a))).toEqual({ argv: a });
  });
});

describe('updatedInput echoing the whole tool_input', () => {
  const original = ['touch', 'danger'];
  const echo = (command: string, argv: string[]) =>
    resolveRewrite(interpretDecisionObject({ hookSpecificOutput: { permissionDecision: 'allow', updatedInput: { command, argv, program: '/usr/bin/touch', workdir: '/x' } } }), original);
  it('an edited command wins over the echoed argv', () => {
    expect(echo('touch safe', original)).toMatchObject({ decision: 'allow', rewrite: ['touch', 'safe'] });
  });
  it('an edited argv wins over the echoed command', () => {
    expect(echo('touch danger', ['touch', 'other'])).toMatchObject({ rewrite: ['touch', 'other'] });
  });
  it('both edited differently is a conflict: deny, never a silent drop', () => {
    expect(echo('touch one', ['touch', 'two'])).toMatchObject({ decision: 'deny', reason: expect.stringContaining('conflict') });
  });
  it('both unchanged: no rewrite', () => {
    const o = echo('touch danger', original);
    expect(o).toMatchObject({ kind: 'opinion', decision: 'allow' });
    expect(aggregate([{ hook: { id: 'h', required: true } as never, outcome: o, summary: {} as never }], original).rewrite).toBeUndefined();
  });
});

describe('multi-line reasons', () => {
  it('keep their lines (the wrapper indents each), without blank lines, trailing blanks or CRs', () => {
    expect(tidyLines('first\n  - second\r\n\n \nthird ')).toBe('first\n  - second\nthird');
  });
  it('from several hooks: "; " between one-liners, a line each once one spans lines', () => {
    const deny = (id: string, reason: string) => ({
      hook: { id, required: true } as never,
      outcome: { kind: 'opinion', decision: 'deny', reason } as never,
      summary: {} as never,
    });
    expect(aggregate([deny('a', 'no'), deny('b', 'never')], ['rm']).reason).toBe('a: no; b: never');
    expect(aggregate([deny('a', 'no'), deny('b', 'never\nagain')], ['rm']).reason).toBe('a: no\nb: never\nagain');
  });
});

describe('hooks.json that would guard nothing is an error', () => {
  const pre = { matcher: 'Bash', hooks: [{ type: 'command', command: 'exit 2' }] };
  it('a misspelt event', () => {
    expect(() => load({ hooks: { PreToolUes: [pre] } })).toThrow(/unknown event "PreToolUes"/);
  });
  it('an event at the top level', () => {
    expect(() => load({ PreToolUse: [pre] })).toThrow(/"PreToolUse" is an event: put it under "hooks"/);
  });
  it('an unknown top-level key', () => {
    expect(() => load({ hook: {} })).toThrow(/unknown field\(s\) "hook"/);
  });
  it('an unknown hook field, an unknown group field', () => {
    expect(() => load({ hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'x', requried: true }] }] } })).toThrow(/unknown field "requried"/);
    expect(() => load({ hooks: { PreToolUse: [{ ...pre, matchr: 'Bash' }] } })).toThrow(/matchr/);
  });
  it('scope on a non-PreToolUse hook', () => {
    expect(() => load({ hooks: { PostToolUse: [{ hooks: [{ type: 'command', command: 'x', scope: 'run' }] }] } })).toThrow(/scope/);
  });
  it('a Claude Code settings.json may carry its other settings', () => {
    const c = load({ permissions: { allow: ['Bash(ls)'] }, model: 'x', hooks: { PreToolUse: [pre] } }, '.claude/settings.json');
    expect(c.hooks).toHaveLength(1);
  });
  it('Claude Code events this system never produces: a warning', () => {
    const c = load({ hooks: { UserPromptSubmit: [pre], PreToolUse: [pre] } });
    expect(c.hooks).toHaveLength(1);
    expect(c.warnings.join('\n')).toContain('UserPromptSubmit');
  });
});

describe('defaults and layouts', () => {
  it('PreToolUse hooks are required unless they say otherwise; other events are not', () => {
    const c = load({
      hooks: {
        PreToolUse: [{ hooks: [{ type: 'command', command: 'a' }, { type: 'command', command: 'b', required: false }] }],
        PostToolUse: [{ hooks: [{ type: 'command', command: 'c' }] }],
      },
    });
    expect(c.hooks.map((h) => h.required)).toEqual([true, false, false]);
  });
  it('a plugin hooks/hooks.json gets its plugin root', () => {
    const dir = tmp();
    const c = load({ description: 'd', hooks: { PreToolUse: [{ hooks: [{ type: 'command', command: '${CLAUDE_PLUGIN_ROOT}/x.sh' }] }] } }, 'plugin/hooks/hooks.json', dir);
    const h = c.hooks[0]!;
    expect(h.type === 'command' && h.pluginRoot).toBe(path.join(dir, 'plugin'));
    expect(h.type === 'command' && h.command).toBe('${CLAUDE_PLUGIN_ROOT}/x.sh');
  });
  it('seed 000 command_start is PreToolUse (exec.before); a misspelt seed event is an error', () => {
    const c = load('[[hooks.task]]\nevent = "command_start"\ntype = "script"\ncommand = ["true"]\n', 'hooks.toml');
    expect(c.hooks.map((h) => [h.event, h.required])).toEqual([['exec.before', true]]);
    expect(() => load('[[hooks.task]]\nevent = "command_strat"\ncommand = ["true"]\n', 'hooks.toml')).toThrow(/unknown event "command_strat"/);
  });
  it('concurrency and scope load from both formats', () => {
    const j = load({ hooks: { PreToolUse: [{ hooks: [{ type: 'command', command: 'a', concurrency: 1, scope: 'both' }] }] } });
    expect(j.hooks[0]).toMatchObject({ concurrency: 1, scope: 'both' });
    const t = load('[[hooks.exec]]\nevent = "exec.before"\ncommand = ["a"]\nconcurrency = 1\nscope = "run"\n', 'hooks.toml');
    expect(t.hooks[0]).toMatchObject({ concurrency: 1, scope: 'run' });
  });
});
