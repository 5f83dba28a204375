import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HookEngine } from '../../src/hooks/engine.js';
import { alive, engineFrom, execInfo, existsSync, pre, readFileSync, readPid, tmp, waitFor } from '../fixtures/hooks/helpers.js';

const engines: HookEngine[] = [];
async function mk(config: object | string, env: NodeJS.ProcessEnv = process.env, dir?: string) {
  const r = await engineFrom(config, env, dir);
  engines.push(r.engine);
  return r;
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

/** A command hook printing `out` on stdout (exit 0). */
const prints = (out: unknown, extra: object = {}) => ({ type: 'command', command: `printf '%s' '${JSON.stringify(out)}'`, ...extra });

describe('what a command hook receives', () => {
  it('Codex/Claude stdin fields plus ours, CODEX_* env vars, cwd = session cwd', async () => {
    const dir = tmp();
    const { engine } = await mk(pre({ type: 'command', command: `cat > "${dir}/stdin.json"; env > "${dir}/env.txt"; pwd > "${dir}/pwd.txt"` }));
    const sessionCwd = tmp();
    const v = await engine.preToolUse(execInfo(['rm', '-rf', 'a b', "it's"], { requestId: 'r-42', workdir: '/var', cwd: sessionCwd, program: '/usr/bin/rm' }));
    expect(v.decision).toBe('none');
    const input = JSON.parse(readFileSync(`${dir}/stdin.json`, 'utf8'));
    expect(input).toMatchObject({
      session_id: 'sess-1',
      hook_event_name: 'PreToolUse',
      tool_name: 'Bash',
      // Claude's shape; and a transcript file the session owns.
      tool_use_id: 'toolu_r42',
      transcript_path: expect.stringMatching(/codex-escalate-transcript-.*sess-1\.jsonl$/),
      // The session's directory, as Claude Code sends its project dir (the exec's is tool_input.workdir).
      cwd: sessionCwd,
      tool_input: { command: `rm -rf 'a b' 'it'\\''s'`, argv: ['rm', '-rf', 'a b', "it's"], program: '/usr/bin/rm', workdir: '/var' },
    });
    const env = readFileSync(`${dir}/env.txt`, 'utf8');
    expect(env).toContain('CODEX_EVENT_TYPE=exec.before');
    expect(env).toContain('CODEX_SESSION_ID=sess-1');
    expect(env).toContain(`CODEX_COMMAND=["rm","-rf","a b","it's"]`);
    expect(env).toContain('CODEX_WORKDIR=/var');
    expect(env).toMatch(/CODEX_TIMESTAMP=\d{4}-\d\d-\d\dT/);
    expect(readFileSync(`${dir}/pwd.txt`, 'utf8').trim()).toBe(sessionCwd);
  });

  it('a relative command path resolves against the configured cwd (relative to the config file)', async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'hooks'));
    writeFileSync(path.join(dir, 'hooks/deny.sh'), '#!/bin/sh\necho "denied from $(basename "$PWD")" >&2\nexit 2\n', { mode: 0o755 });
    const { engine } = await mk(`[[hooks.exec]]\nevent = "exec.before"\ncommand = ["./deny.sh"]\ncwd = "hooks"\n`, process.env, dir);
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v).toMatchObject({ decision: 'deny', reason: expect.stringContaining('denied from hooks') });
  });

  it('PostToolUse, SessionStart, Stop and error.occurred carry their fields', async () => {
    const dir = tmp();
    const log = (name: string) => ({ type: 'command', command: `{ cat; echo; env | grep ^CODEX_ | sort; } > "${dir}/${name}"` });
    const { engine } = await mk({
      hooks: {
        PostToolUse: [{ matcher: 'Bash', hooks: [log('post')] }],
        SessionStart: [{ hooks: [log('start')] }],
        Stop: [{ hooks: [log('stop')] }],
        ErrorOccurred: [{ hooks: [log('error')] }],
      },
    });
    const s1 = await engine.sessionStart({ sessionId: 's9', cwd: dir });
    expect(s1[0]?.status).toBe('completed');
    expect(readFileSync(`${dir}/start`, 'utf8')).toContain('"hook_event_name":"SessionStart"');
    await engine.postToolUse({ ...execInfo(['false']), outcome: 'exited', exitCode: 1, durationMs: 12.4 });
    let t = readFileSync(`${dir}/post`, 'utf8');
    expect(t).toContain('"hook_event_name":"PostToolUse"');
    expect(t).toContain('"exit_code":1');
    expect(t).toContain('CODEX_EXIT_CODE=1');
    expect(t).toContain('CODEX_DURATION=12');
    expect(t).toContain('CODEX_OUTCOME=exited');
    await engine.postToolUse({ ...execInfo(['rm']), outcome: 'denied', reason: 'forbidden by rule' });
    t = readFileSync(`${dir}/post`, 'utf8');
    expect(t).toContain('CODEX_OUTCOME=denied');
    expect(t).toContain('CODEX_REASON=forbidden by rule');
    expect(t).not.toContain('CODEX_EXIT_CODE');
    await engine.postToolUse({ ...execInfo(['ls']), outcome: 'run-handed-off' });
    t = readFileSync(`${dir}/post`, 'utf8');
    expect(t).toContain('"outcome":"run-handed-off"');
    expect(t).toContain('"exit_status_known":false');
    await engine.sessionEnd({ sessionId: 's9', cwd: dir, exitCode: 3, durationMs: 1500 });
    t = readFileSync(`${dir}/stop`, 'utf8');
    expect(t).toContain('"hook_event_name":"Stop"');
    expect(t).toContain('CODEX_EVENT_TYPE=session_end');
    expect(t).toContain('CODEX_EXIT_CODE=3');
    expect(t).toContain('CODEX_DURATION=1500');
    await engine.errorOccurred({ sessionId: 's9', error: 'bad frame', kind: 'protocol', cwd: dir });
    t = readFileSync(`${dir}/error`, 'utf8');
    expect(t).toContain('CODEX_ERROR=bad frame');
    expect(t).toContain('CODEX_CONTEXT=protocol');
  });
});

describe('PreToolUse decision forms (real processes)', () => {
  const cases: [string, unknown, string][] = [
    ['permissionDecision allow', { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'allow', permissionDecisionReason: 'ok' } }, 'allow'],
    ['permissionDecision deny', { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: 'no' } }, 'deny'],
    ['permissionDecision ask', { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'ask', permissionDecisionReason: 'hm' } }, 'ask'],
    ['legacy approve', { decision: 'approve', reason: 'fine' }, 'allow'],
    ['legacy block', { decision: 'block', reason: 'bad' }, 'deny'],
    ['seed proceed', { decision: 'proceed' }, 'none'],
    ['seed block', { decision: 'block', content: 'x' }, 'deny'],
    ['seed modify without content', { decision: 'modify' }, 'deny'],
    ['continue false', { continue: false, stopReason: 'stop' }, 'deny'],
  ];
  for (const [name, out, want] of cases) {
    it(name, async () => {
      const { engine } = await mk(pre(prints(out)));
      const v = await engine.preToolUse(execInfo(['ls']));
      expect(v.decision).toBe(want);
      expect(v.runs[0]?.status).toBe(want === 'deny' ? 'blocked' : 'completed');
    });
  }

  it('empty stdout is no opinion', async () => {
    const { engine } = await mk(pre({ type: 'command', command: 'true' }));
    expect((await engine.preToolUse(execInfo(['ls']))).decision).toBe('none');
  });

  it('exit 2 + stderr denies with stderr as the reason', async () => {
    const { engine } = await mk(pre({ type: 'command', command: 'echo "rm is not allowed here" >&2; exit 2' }));
    const v = await engine.preToolUse(execInfo(['rm', 'x']));
    expect(v.decision).toBe('deny');
    expect(v.reason).toContain('rm is not allowed here');
    expect(v.runs[0]).toMatchObject({ status: 'blocked', decision: 'deny' });
  });

  it('updatedInput rewrite surfaces as a rewrite; seed modify too', async () => {
    let { engine } = await mk(pre(prints({ hookSpecificOutput: { permissionDecision: 'allow', updatedInput: { command: 'rm -i "my file"' } } })));
    let v = await engine.preToolUse(execInfo(['rm', 'my file']));
    expect(v).toMatchObject({ decision: 'allow', rewrite: { argv: ['rm', '-i', 'my file'] } });
    ({ engine } = await mk(pre(prints({ decision: 'modify', content: 'echo safe' }))));
    v = await engine.preToolUse(execInfo(['rm', 'x']));
    expect(v).toMatchObject({ decision: 'none', rewrite: { argv: ['echo', 'safe'] } });
  });

  it('a rewrite with shell operators is a deny, never dropped', async () => {
    const { engine } = await mk(pre(prints({ hookSpecificOutput: { permissionDecision: 'allow', updatedInput: { command: 'ls && rm -rf x' } } })));
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.decision).toBe('deny');
    expect(v.reason).toContain('&');
    expect(v.rewrite).toBeUndefined();
  });
});

describe('failure forms: optional ignored, required denies', () => {
  const failures: [string, object][] = [
    ['exit 1', { command: 'echo oops >&2; exit 1' }],
    ['invalid JSON', { command: 'echo "this is not json"' }],
    ['crash (SIGSEGV)', { command: 'kill -SEGV $$' }],
    ['missing program', { command: ['/nonexistent/hook-binary'] }],
    ['timeout', { command: 'sleep 5', timeout: 0.3 }],
  ];
  for (const [name, h] of failures) {
    it(name, async () => {
      const { engine } = await mk(pre({ type: 'command', required: false, ...h }, { type: 'command', required: true, ...h }));
      const v = await engine.preToolUse(execInfo(['ls']));
      const want = name === 'timeout' ? 'timed_out' : 'failed';
      expect(v.runs.map((r) => r.status)).toEqual([want, want]);
      expect(v.runs[0]?.error).toBeTruthy();
      // Only the required one turns into a deny.
      expect(v.decision).toBe('deny');
      expect(v.reason).toContain('required hook');
      expect(v.reason).toContain('hooks[1]');
      expect(v.reason).not.toContain('hooks[0]');
      const { engine: e2 } = await mk(pre({ type: 'command', required: false, ...h }));
      expect((await e2.preToolUse(execInfo(['ls']))).decision).toBe('none');
      // Unmarked, a PreToolUse hook is required: one that cannot give a verdict denies (fail closed).
      const { engine: e3 } = await mk(pre({ type: 'command', ...h }));
      expect((await e3.preToolUse(execInfo(['ls']))).decision).toBe('deny');
    });
  }

  it('exit 2 with empty stderr blocks, required or not', async () => {
    const { engine } = await mk(pre({ type: 'command', required: false, command: 'exit 2' }));
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.decision).toBe('deny');
    expect(v.reason).toContain('exited 2');
  });

  it('a timeout kills the whole process group (the grandchild dies too)', async () => {
    const dir = tmp();
    const { engine } = await mk(pre({ type: 'command', command: `sleep 60 & echo $! > "${dir}/gc.pid"; sleep 60`, timeout: 0.5 }));
    const t0 = Date.now();
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(v.runs[0]?.status).toBe('timed_out');
    const gc = readPid(`${dir}/gc.pid`);
    expect(await waitFor(() => !alive(gc), 3000)).toBe(true);
  });

  it('a hook that exits while a background child keeps its stdout open is not reported as timed out', async () => {
    const { engine } = await mk(pre({ type: 'command', command: `sleep 3 & printf '{"decision":"block","reason":"early"}'; exit 0`, timeout: 10 }));
    const t0 = Date.now();
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(v).toMatchObject({ decision: 'deny', reason: expect.stringContaining('early') });
  });

  it('output over 1 MiB blocks (stdout and stderr), and the hook is killed at once', async () => {
    for (const cmd of ['yes', 'yes >&2', 'head -c 1048577 /dev/zero | tr "\\0" a']) {
      const { engine } = await mk(pre({ type: 'command', command: cmd, timeout: 20 }));
      const t0 = Date.now();
      const v = await engine.preToolUse(execInfo(['ls']));
      expect(Date.now() - t0, cmd).toBeLessThan(5000);
      expect(v.decision, cmd).toBe('deny');
      expect(v.reason, cmd).toContain('1 MiB');
    }
    // Exactly at the cap is fine (empty-looking JSON object padded with spaces).
    const { engine } = await mk(pre({ type: 'command', command: `head -c 1048574 /dev/zero | tr "\\0" " "; printf '{}'` }));
    expect((await engine.preToolUse(execInfo(['ls']))).decision).toBe('none');
  });

  it('an aborted request kills running hooks and denies', async () => {
    const dir = tmp();
    const { engine } = await mk(pre({ type: 'command', command: `echo $$ > "${dir}/p.pid"; sleep 60`, timeout: 30 }));
    const ac = new AbortController();
    // Aborted once the hook is running (it has written its pid).
    void waitFor(() => existsSync(`${dir}/p.pid`) && readFileSync(`${dir}/p.pid`, 'utf8').trim() !== '').then(() => ac.abort());
    const t0 = Date.now();
    const v = await engine.preToolUse(execInfo(['ls']), ac.signal);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(v.decision).toBe('deny');
    expect(await waitFor(() => !alive(readPid(`${dir}/p.pid`)))).toBe(true);
  });

  it('a hook failure fires error.occurred hooks', async () => {
    const dir = tmp();
    const { engine } = await mk({
      hooks: {
        PreToolUse: [{ hooks: [{ type: 'command', command: 'exit 7' }] }],
        ErrorOccurred: [{ hooks: [{ type: 'command', command: `echo "$CODEX_ERROR" > "${dir}/err"` }] }],
      },
    });
    await engine.preToolUse(execInfo(['ls']));
    expect(await waitFor(() => existsSync(`${dir}/err`) && readFileSync(`${dir}/err`, 'utf8').includes('status 7'))).toBe(true);
  });
});

describe('merge and scheduling', () => {
  it('any deny wins; ask beats allow; different rewrites deny', async () => {
    let { engine } = await mk(pre(prints({ decision: 'approve' }), prints({ hookSpecificOutput: { permissionDecision: 'deny', permissionDecisionReason: 'x' } }), prints({ hookSpecificOutput: { permissionDecision: 'ask' } })));
    expect((await engine.preToolUse(execInfo(['ls']))).decision).toBe('deny');
    ({ engine } = await mk(pre(prints({ decision: 'approve' }), prints({ hookSpecificOutput: { permissionDecision: 'ask' } }))));
    expect((await engine.preToolUse(execInfo(['ls']))).decision).toBe('ask');
    ({ engine } = await mk(pre(prints({ decision: 'modify', content: 'ls -a' }), prints({ decision: 'modify', content: 'ls -l' }))));
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.decision).toBe('deny');
    expect(v.reason).toContain('differently');
  });

  it('hooks run in parallel by default', async () => {
    // Each hook logs when it starts, then waits until all three have started (or 20 s): run one at a time,
    // the first would never see the other two and the log would read start, end, start, end, ...
    const dir = tmp();
    const log = `${dir}/log`;
    const hook = (n: number) => ({
      type: 'command',
      command: `echo start${n} >> '${log}'; i=0; while [ "$(grep -c start '${log}')" -lt 3 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo end${n} >> '${log}'`,
      timeout: 30,
    });
    const { engine } = await mk(pre(hook(1), hook(2), hook(3)));
    await engine.preToolUse(execInfo(['ls']));
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    expect(lines.slice(0, 3).every((l) => l.startsWith('start')), lines.join(' ')).toBe(true);
  });

  it('sequentially by priority when parallel_execution = false; a deny stops the chain', async () => {
    const dir = tmp();
    const entry = (name: string, prio: string, extra = '') =>
      `[[hooks.exec]]\nevent = "exec.before"\npriority = "${prio}"\ncommand = "echo ${name} >> '${dir}/order'${extra}"\n`;
    const { engine } = await mk(`[hooks]\nparallel_execution = false\n${entry('low', 'low')}${entry('high', 'high')}${entry('normal1', 'normal')}${entry('normal2', 'normal')}`);
    await engine.preToolUse(execInfo(['ls']));
    expect(readFileSync(`${dir}/order`, 'utf8').split('\n').filter(Boolean)).toEqual(['high', 'normal1', 'normal2', 'low']);

    const dir2 = tmp();
    const e2 = `[[hooks.exec]]\nevent = "exec.before"\npriority = "low"\ncommand = "echo low >> '${dir2}/order'"\n[[hooks.exec]]\nevent = "exec.before"\npriority = "high"\ncommand = "echo no >&2; exit 2"\n`;
    const { engine: eng2 } = await mk(`[hooks]\nparallel_execution = false\n${e2}`);
    const v = await eng2.preToolUse(execInfo(['ls']));
    expect(v.decision).toBe('deny');
    expect(v.runs).toHaveLength(1);
    expect(existsSync(`${dir2}/order`)).toBe(false);
  });

  it('async hooks never delay the decision, and still run', async () => {
    const dir = tmp();
    const { engine } = await mk(pre({ type: 'command', command: `i=0; while [ ! -e "${dir}/gate" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo done > "${dir}/async"; exit 2`, async: true, timeout: 30 }));
    const v = await engine.preToolUse(execInfo(['ls']));
    // Decided before the hook finished: its side effect is not there yet.
    expect(existsSync(`${dir}/async`)).toBe(false);
    expect(v.decision).toBe('none'); // an async hook cannot decide
    expect(v.runs).toHaveLength(0);
    writeFileSync(`${dir}/gate`, ''); // the hook, still running after the decision, may now finish
    await engine.drainAsync();
    expect(readFileSync(`${dir}/async`, 'utf8').trim()).toBe('done');
  });

  it('close() kills process groups of hooks still running', async () => {
    const dir = tmp();
    const { engine } = await mk(pre({ type: 'command', command: `sleep 60 & echo $! > "${dir}/gc.pid"; wait`, async: true, timeout: 100 }));
    await engine.preToolUse(execInfo(['ls']));
    expect(await waitFor(() => existsSync(`${dir}/gc.pid`) && readFileSync(`${dir}/gc.pid`, 'utf8').trim() !== '')).toBe(true);
    const gc = readPid(`${dir}/gc.pid`);
    expect(alive(gc)).toBe(true);
    await engine.close();
    expect(await waitFor(() => !alive(gc))).toBe(true);
  });

  it('matchers and conditions select hooks', async () => {
    const { engine } = await mk({
      hooks: {
        PreToolUse: [
          { matcher: 'Edit|Write', hooks: [{ type: 'command', command: 'echo never >&2; exit 2' }] },
          { matcher: 'Ba.*', hooks: [{ type: 'command', command: 'echo only-rm >&2; exit 2', conditions: { program: 'rm' } }] },
        ],
      },
    });
    expect((await engine.preToolUse(execInfo(['ls']))).runs).toHaveLength(0);
    const v = await engine.preToolUse(execInfo(['rm', 'x'], { program: '/usr/bin/rm' }));
    expect(v).toMatchObject({ decision: 'deny', reason: expect.stringContaining('only-rm') });
  });
});

describe('a hook written for Claude Code works unchanged', () => {
  it('reads tool_input.command (no jq), exits 2 to block; found via $CLAUDE_PROJECT_DIR', async () => {
    const project = tmp();
    mkdirSync(path.join(project, '.claude/hooks'), { recursive: true });
    // Typical Claude Code Bash guard, as people write them.
    writeFileSync(
      path.join(project, '.claude/hooks/block-rm.py'),
      [
        '#!/usr/bin/env python3',
        'import json, re, sys',
        'data = json.load(sys.stdin)',
        'if data.get("tool_name") != "Bash":',
        '    sys.exit(0)',
        'cmd = data.get("tool_input", {}).get("command", "")',
        'if re.search(r"\\brm\\s+-[a-zA-Z]*r[a-zA-Z]*f|\\brm\\s+-[a-zA-Z]*f[a-zA-Z]*r", cmd):',
        '    print("Blocked: recursive force delete is not allowed", file=sys.stderr)',
        '    sys.exit(2)',
        'sys.exit(0)',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const settings = {
      hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'python3 "$CLAUDE_PROJECT_DIR"/.claude/hooks/block-rm.py' }] }] },
    };
    mkdirSync(path.join(project, '.codex'));
    writeFileSync(path.join(project, '.codex/hooks.json'), JSON.stringify(settings));
    const { loadHooks } = await import('../../src/hooks/config.js');
    const { HookEngine } = await import('../../src/hooks/engine.js');
    // A discovered project file runs only once trusted (as `codex-escalate hooks trust` records it), in a store out of the sandbox's reach.
    const { fingerprint, TrustStore } = await import('../../src/hooks/trust.js');
    const storeDir = mkdtempSync('/var/tmp/cse-trust-');
    const trustStore = TrustStore.open(path.join(storeDir, 'trusted-hooks.json'));
    const fp = fingerprint(path.join(project, '.codex/hooks.json'));
    trustStore.trust(fp.path, fp.sha256);
    const engine = new HookEngine(await loadHooks({ discoverFrom: project, env: { ...process.env, CODEX_HOME: tmp() }, trustStore }));
    rmSync(storeDir, { recursive: true, force: true });
    engines.push(engine);
    const denied = await engine.preToolUse(execInfo(['rm', '-rf', 'build'], { cwd: project }));
    expect(denied).toMatchObject({ decision: 'deny', reason: expect.stringContaining('Blocked: recursive force delete') });
    const fine = await engine.preToolUse(execInfo(['ls', '-la'], { cwd: project }));
    expect(fine.decision).toBe('none');
    expect(fine.runs[0]?.status).toBe('completed');
  });
});
