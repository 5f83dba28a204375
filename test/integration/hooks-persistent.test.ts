import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HookEngine } from '../../src/hooks/engine.js';
import { alive, engineFrom, examples, execInfo, fixtures, readFileSync, tmp, waitFor } from '../fixtures/hooks/helpers.js';

const engines: HookEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

async function persistentEngine(mode: string, timeout = 5, required = false) {
  const dir = tmp();
  const startLog = path.join(dir, 'starts');
  const hook = { type: 'command', command: ['node', path.join(fixtures, 'persistent-hook.mjs')], persistent: true, timeout, required };
  const { engine } = await engineFrom({ hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [hook] }] } }, { ...process.env, MODE: mode, START_LOG: startLog });
  engines.push(engine);
  const starts = () => {
    try {
      return readFileSync(startLog, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  return { engine, starts, id: 'hooks.json#hooks.PreToolUse[0].hooks[0]' };
}

describe('persistent command hooks', () => {
  it('one process answers many requests, with the same decision forms', async () => {
    const { engine, starts } = await persistentEngine('scan');
    for (let i = 0; i < 5; i++) {
      expect((await engine.preToolUse(execInfo(['ls', String(i)]))).decision).toBe('none');
      const v = await engine.preToolUse(execInfo(['rm', '-rf', String(i)]));
      expect(v.decision).toBe('deny');
      expect(v.reason).toContain('persistent: no rm');
    }
    expect(starts()).toHaveLength(1);
  });

  it('concurrent requests are multiplexed by id (answers out of order reach the right request)', async () => {
    const { engine } = await persistentEngine('reverse');
    const [a, b] = await Promise.all([engine.preToolUse(execInfo(['first'])), engine.preToolUse(execInfo(['second']))]);
    expect(a).toMatchObject({ decision: 'ask', reason: expect.stringContaining('answer for first') });
    expect(b).toMatchObject({ decision: 'ask', reason: expect.stringContaining('answer for second') });
  });

  it('a dead hook fails the in-flight request and is restarted for the next one', async () => {
    const { engine, starts } = await persistentEngine('die', 5, true);
    const v1 = await engine.preToolUse(execInfo(['ls']));
    expect(v1.runs[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('exited') });
    expect(v1.decision).toBe('deny'); // required: fail closed
    await engine.preToolUse(execInfo(['ls']));
    expect(starts()).toHaveLength(2);
  });

  it('a killed hook is restarted', async () => {
    const { engine, starts, id } = await persistentEngine('scan');
    await engine.preToolUse(execInfo(['ls']));
    const pid = engine.persistentPid(id)!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => engine.persistentPid(id) === undefined);
    expect((await engine.preToolUse(execInfo(['rm', 'x']))).decision).toBe('deny');
    expect(starts()).toHaveLength(2);
    expect(engine.persistentPid(id)).not.toBe(pid);
  });

  it('a silent hook times out, is killed, and the failure follows required', async () => {
    const { engine, starts } = await persistentEngine('silent', 0.4, false);
    const t0 = Date.now();
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(v.runs[0]?.status).toBe('timed_out');
    expect(v.decision).toBe('none'); // optional
    const first = starts()[0]!;
    expect(await waitFor(() => !alive(first))).toBe(true);
  });

  it('a line that is not JSON fails the request', async () => {
    const { engine } = await persistentEngine('garbage', 2, true);
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.runs[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('not JSON') });
    expect(v.decision).toBe('deny');
  });

  it('close() stops the persistent process', async () => {
    const { engine, starts } = await persistentEngine('scan');
    await engine.preToolUse(execInfo(['ls']));
    const pid = starts()[0]!;
    expect(alive(pid)).toBe(true);
    await engine.close();
    expect(await waitFor(() => !alive(pid))).toBe(true);
  });

  it('costs a small fraction of a spawned hook per decision (same scanner, both modes)', async () => {
    const env = { ...process.env, CODEX_SECURITY_LOG: path.join(tmp(), 'security.log') };
    const scanner = path.join(examples, 'hooks/security/scan-commands.cjs');
    const spawned = await engineFrom({ hooks: { PreToolUse: [{ hooks: [{ type: 'command', command: ['node', scanner] }] }] } }, env);
    const persistent = await engineFrom({ hooks: { PreToolUse: [{ hooks: [{ type: 'command', command: ['node', scanner, '--persistent'], persistent: true }] }] } }, env);
    engines.push(spawned.engine, persistent.engine);
    const measure = async (engine: HookEngine, n: number) => {
      await engine.preToolUse(execInfo(['ls'])); // warm-up (starts the persistent process)
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const v = await engine.preToolUse(execInfo(i % 2 ? ['rm', '-rf', '/'] : ['ls', '-la']));
        expect(v.decision).toBe(i % 2 ? 'deny' : 'none');
      }
      return (performance.now() - t0) / n;
    };
    const spawnedMs = await measure(spawned.engine, 20);
    const persistentMs = await measure(persistent.engine, 200);
    console.log(`[hooks bench] per PreToolUse decision: spawned node hook ${spawnedMs.toFixed(2)} ms, persistent ${persistentMs.toFixed(3)} ms (ratio ${(spawnedMs / persistentMs).toFixed(1)}x)`);
    expect(persistentMs).toBeLessThan(spawnedMs / 5);
  });
});
