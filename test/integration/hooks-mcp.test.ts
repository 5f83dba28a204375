import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HookEngine } from '../../src/hooks/engine.js';
import { alive, engineFrom, execInfo, fixtures, readFileSync, tmp, waitFor } from '../fixtures/hooks/helpers.js';

const engines: HookEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

async function mcpEngine(hooks: string, timeout = 10) {
  const dir = tmp();
  const env = { ...process.env, MCP_START_LOG: path.join(dir, 'starts'), MCP_ARGS_LOG: path.join(dir, 'args') };
  const toml = `[hooks]\ntimeout_seconds = ${timeout}\n${hooks}\n[mcp_servers.test]\ncommand = "node"\nargs = ["${path.join(fixtures, 'mcp-server.mjs')}"]\n[mcp_servers.test.env]\nMCP_START_LOG = "\${MCP_START_LOG}"\nMCP_ARGS_LOG = "\${MCP_ARGS_LOG}"\n`;
  const { engine } = await engineFrom(toml, env);
  engines.push(engine);
  const lines = (f: string) => {
    try {
      return readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  return { engine, starts: () => lines('starts').map(Number), args: () => lines('args').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const hook = (tool: string, args: string, extra = '') => `[[hooks.exec]]\nevent = "exec.before"\ntype = "mcp_tool"\nserver = "test"\ntool = "${tool}"\n${extra}\n[hooks.exec.arguments]\n${args}\n`;

describe('mcp_tool hooks (real stdio MCP server)', () => {
  it('templates arguments from the event; the server is started once and reused', async () => {
    const { engine, starts, args } = await mcpEngine(hook('reply', 'reply = "ok: fine"\ncommand = "${command}"\nargv = "${argv}"\nworkdir = "${workdir}"'));
    for (let i = 0; i < 3; i++) {
      const v = await engine.preToolUse(execInfo(['ls', '-l', 'a b'], { workdir: '/srv' }));
      expect(v.decision).toBe('none');
      expect(v.runs[0]).toMatchObject({ type: 'mcp_tool', status: 'completed', output: 'ok: fine' });
    }
    expect(starts()).toHaveLength(1);
    expect(args()[0]).toEqual({ reply: 'ok: fine', command: "ls -l 'a b'", argv: ['ls', '-l', 'a b'], workdir: '/srv' });
  });

  it('text starting with deny/block denies; isError denies', async () => {
    let { engine } = await mcpEngine(hook('reply', 'reply = "deny: too risky (${command})"'));
    let v = await engine.preToolUse(execInfo(['rm', '-rf', '/']));
    expect(v).toMatchObject({ decision: 'deny', reason: expect.stringContaining('deny: too risky (rm -rf /)') });
    ({ engine } = await mcpEngine(hook('reply', 'reply = "Blocked by policy"')));
    expect((await engine.preToolUse(execInfo(['ls']))).decision).toBe('deny');
    ({ engine } = await mcpEngine(hook('fail', 'why = "scanner exploded"')));
    v = await engine.preToolUse(execInfo(['ls']));
    expect(v).toMatchObject({ decision: 'deny', reason: expect.stringContaining('scanner exploded') });
  });

  it('a JSON decision in the text is honoured', async () => {
    const { engine } = await mcpEngine(hook('reply', `reply = '{"hookSpecificOutput":{"permissionDecision":"ask","permissionDecisionReason":"check"}}'`));
    expect(await engine.preToolUse(execInfo(['ls']))).toMatchObject({ decision: 'ask', reason: expect.stringContaining('check') });
  });

  it('a slow tool times out; an unknown tool (an isError result) denies', async () => {
    const { engine } = await mcpEngine(hook('slow', 'ms = 5000', 'timeout = 0.5\nrequired = true') + hook('nope', 'x = 1'));
    const t0 = Date.now();
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(v.runs.map((r) => r.status)).toEqual(['timed_out', 'blocked']);
    expect(v.decision).toBe('deny'); // the required one timed out
  });

  it('a server that dies is restarted on the next call', async () => {
    const { engine, starts } = await mcpEngine(hook('die', 'x = 1', 'required = true'));
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.runs[0]?.status).toBe('failed');
    expect(v.decision).toBe('deny');
    await waitFor(() => starts().length === 1 && !alive(starts()[0]!));
    await engine.preToolUse(execInfo(['ls']));
    expect(starts()).toHaveLength(2);
  });

  it('a server that cannot start is a hook failure, not a crash', async () => {
    const toml = `${hook('reply', 'reply = "x"', 'required = true')}\n[mcp_servers.test]\ncommand = "/nonexistent/mcp-server"\n`;
    const { engine } = await engineFrom(toml);
    engines.push(engine);
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.runs[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('could not start MCP server') });
    expect(v.decision).toBe('deny');
  });

  it('close() stops the server process', async () => {
    const { engine, starts } = await mcpEngine(hook('reply', 'reply = "ok"'));
    await engine.preToolUse(execInfo(['ls']));
    const pid = starts()[0]!;
    expect(alive(pid)).toBe(true);
    await engine.close();
    expect(await waitFor(() => !alive(pid))).toBe(true);
  });
});
