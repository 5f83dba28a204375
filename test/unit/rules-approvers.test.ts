import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createApprover,
  createCallbackApprover,
  createCommandApprover,
  createDenyApprover,
  createTtyApprover,
  type ApprovalRequest,
} from '../../src/policy/approval/index.js';
import { waitFor } from '../helpers/e2e.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.join(root, 'test/fixtures/rules');
const run = promisify(execFile);

const req: ApprovalRequest = {
  sessionId: 's1',
  requestId: 'r1',
  program: '/usr/bin/git',
  argv: ['git', 'push', 'origin'],
  workdir: '/work',
  rule: 'prefix_rule(["git", "push"], decision="prompt") at t.rules:3:1',
  matchedPrefix: ['git', 'push'],
  justification: 'network access',
  matchedRules: [{ prefixRuleMatch: { matchedPrefix: ['git', 'push'], decision: 'prompt', justification: 'network access' } }],
};
const live = (): AbortSignal => new AbortController().signal;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'approvers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
async function script(name: string, body: string): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, `#!/bin/sh\n${body}\n`);
  await chmod(p, 0o755);
  return p;
}

describe('deny approver', () => {
  it('denies with "requires approval: <rule>"', async () => {
    expect(await createDenyApprover().approve(req, live())).toEqual({
      decision: 'deny',
      reason: 'requires approval: prefix_rule(["git", "push"], decision="prompt") at t.rules:3:1 (network access)',
    });
  });
});

describe('createApprover', () => {
  it('parses specs and rejects unknown ones', async () => {
    expect((await createApprover('deny').approve(req, live())).decision).toBe('deny');
    const allow = await createApprover(`command:${await script('a0.sh', 'cat >/dev/null; echo \'{"decision":"allow"}\'')}`).approve(req, live());
    expect(allow.decision).toBe('allow');
    expect(() => createApprover('ask')).toThrow('invalid approval mode "ask": expected deny, tty or command:CMD');
    expect(() => createApprover('command:  ')).toThrow(/approval command is empty/);
  });
});

describe('command approver (real scripts)', () => {
  it('gets the request as JSON on stdin and allows on exit 0 + {"decision":"allow"}', async () => {
    const seen = path.join(dir, 'stdin.json');
    const cmd = await script('allow.sh', `cat > '${seen}'; echo '{"decision":"allow","reason":"looks fine"}'`);
    const r = await createCommandApprover(cmd).approve(req, live());
    expect(r).toEqual({ decision: 'allow', scope: 'once', reason: 'looks fine' });
    const payload = JSON.parse(await readFile(seen, 'utf8'));
    expect(payload).toMatchObject({
      hook_event_name: 'PermissionRequest',
      session_id: 's1',
      request_id: 'r1',
      cwd: '/work',
      tool_input: { program: '/usr/bin/git', argv: ['git', 'push', 'origin'], workdir: '/work' },
      matched_prefix: ['git', 'push'],
      justification: 'network access',
      matched_rules: req.matchedRules,
    });
  });

  it('"scope":"prefix" counts only when the request offers a prefix (prefix_scope in the payload); else it is once', async () => {
    const seen = path.join(dir, 'prefix-stdin.json');
    const cmd = await script('prefix.sh', `cat > '${seen}'; echo '{"decision":"allow","scope":"prefix"}'`);
    expect(await createCommandApprover(cmd).approve(req, live())).toMatchObject({ decision: 'allow', scope: 'once' });
    expect(JSON.parse(await readFile(seen, 'utf8')).prefix_scope).toBeNull();
    expect(await createCommandApprover(cmd).approve({ ...req, prefixScope: ['git', 'push'] }, live())).toMatchObject({ decision: 'allow', scope: 'prefix' });
    expect(JSON.parse(await readFile(seen, 'utf8')).prefix_scope).toEqual(['git', 'push']);
  });

  it('"scope":"session" is passed through', async () => {
    const cmd = await script('session.sh', `cat >/dev/null; echo '{"decision":"allow","scope":"session"}'`);
    expect(await createCommandApprover(cmd).approve(req, live())).toMatchObject({ decision: 'allow', scope: 'session' });
  });

  it('deny carries the script’s reason', async () => {
    const cmd = await script('deny.sh', `cat >/dev/null; echo '{"decision":"deny","reason":"not on Fridays"}'`);
    const r = await createCommandApprover(cmd).approve(req, live());
    expect(r.decision).toBe('deny');
    expect(r.reason).toMatch(/^requires approval: .*; denied by approval command: not on Fridays$/);
  });

  it('fails closed: non-zero exit, bad JSON, wrong decision, crash, timeout, missing command', async () => {
    const cases: [string, RegExp][] = [
      [await script('exit3.sh', `cat >/dev/null; echo '{"decision":"allow"}'; echo oops >&2; exit 3`), /approval command exited with status 3: oops$/],
      [await script('garbage.sh', 'cat >/dev/null; echo allow'), /did not print a JSON object/],
      [await script('array.sh', 'cat >/dev/null; echo "[1]"'), /did not print a JSON object/],
      [await script('maybe.sh', `cat >/dev/null; echo '{"decision":"maybe"}'`), /returned decision "maybe": expected "allow" or "deny"/],
      [await script('empty.sh', 'cat >/dev/null'), /did not print a JSON object/],
      [await script('killed.sh', 'kill -9 $$'), /killed by SIGKILL|exited with status 137/],
      [path.join(dir, 'no-such-approver'), /exited with status 127/],
    ];
    for (const [cmd, why] of cases) {
      const r = await createCommandApprover(cmd).approve(req, live());
      expect(r.decision, cmd).toBe('deny');
      expect(r.reason, cmd).toMatch(why);
    }
    const slow = await script('slow.sh', `sleep 5; echo '{"decision":"allow"}'`);
    const t0 = Date.now();
    const r = await createCommandApprover(slow, { timeoutMs: 300 }).approve(req, live());
    expect(r).toMatchObject({ decision: 'deny' });
    expect(r.reason).toMatch(/timed out after 300 ms/);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('a cancelled request denies and stops the command', async () => {
    const started = path.join(dir, 'slow2.started');
    const slow = await script('slow2.sh', `echo $$ > ${started}; sleep 5; echo '{"decision":"allow"}'`);
    const ac = new AbortController();
    // Cancelled once the approver command is running.
    const pidOf = (): number => (existsSync(started) ? Number(readFileSync(started, 'utf8').trim()) : 0);
    void waitFor(() => pidOf() > 0, 'the approver command to start').then(() => ac.abort());
    const t0 = Date.now();
    const r = await createCommandApprover(slow).approve(req, ac.signal);
    expect(r.decision).toBe('deny');
    expect(r.reason).toMatch(/request cancelled/);
    expect(Date.now() - t0).toBeLessThan(4000);
    await waitFor(() => !existsSync(`/proc/${pidOf()}`), 'the approver command to be stopped', 3000);
  });
});

describe('callback approver', () => {
  it('maps booleans and results; a throw or junk is a deny', async () => {
    expect(await createCallbackApprover(() => true).approve(req, live())).toEqual({ decision: 'allow', scope: 'once' });
    expect((await createCallbackApprover(() => false).approve(req, live())).decision).toBe('deny');
    expect(await createCallbackApprover(async () => ({ decision: 'allow', scope: 'session' })).approve(req, live())).toEqual({
      decision: 'allow',
      scope: 'session',
    });
    const thrown = await createCallbackApprover(() => {
      throw new Error('boom');
    }).approve(req, live());
    expect(thrown).toMatchObject({ decision: 'deny' });
    expect(thrown.reason).toMatch(/approval callback failed: boom/);
    const junk = await createCallbackApprover(() => ({ decision: 'yes' }) as never).approve(req, live());
    expect(junk.reason).toMatch(/invalid result/);
  });
});

interface PtyRun {
  transcript: string;
  status: number;
  steps: number;
  snapshots: string[];
}
async function onPty(mode: string, steps: [string, number, string][]): Promise<{ pty: PtyRun; results: unknown[] }> {
  const out = path.join(dir, `tty-${mode}-${Date.now()}.json`);
  const { stdout } = await run(
    'python3',
    [path.join(fixtures, 'pty-drive.py'), process.execPath, '--import', 'tsx', path.join(fixtures, 'tty-approver-driver.ts'), out, mode],
    { cwd: root, env: { ...process.env, STEPS: JSON.stringify(steps), PTY_TIMEOUT: '40' } },
  );
  const pty = JSON.parse(stdout) as PtyRun;
  const results = JSON.parse(await readFile(out, 'utf8')) as unknown[];
  return { pty, results };
}

describe('tty approver (real pseudo-terminal)', () => {
  it('asks on /dev/tty, one prompt at a time, and maps allow once / session / deny', async () => {
    const { pty, results } = await onPty('queue', [
      ['Allow?', 1, 'maybe\r'], // not an answer: asked again
      ['Allow?', 2, 's\r'],
      ['Allow?', 3, 'd\r'],
      ['Allow?', 4, 'a\r'],
    ]);
    expect(pty.status).toBe(0);
    expect(pty.steps).toBe(4);
    expect(results).toEqual([
      { decision: 'allow', scope: 'session', reason: 'approved for this session on the terminal' },
      { decision: 'deny', reason: expect.stringMatching(/^requires approval: .*\(network access\); denied on the terminal$/) },
      { decision: 'allow', scope: 'once', reason: 'approved once on the terminal' },
    ]);
    // Queued: the second question only appears after the first was answered.
    expect(pty.snapshots[0]).toContain('target1');
    expect(pty.snapshots[0]).not.toContain('target2');
    expect(pty.snapshots[1]).not.toContain('target2');
    expect(pty.snapshots[2]).toContain('target2');
    expect(pty.snapshots[2]).not.toContain('target3');
    expect(pty.transcript).toContain('rule:     prefix_rule(["git", "push"], decision="prompt") at t.rules:1:1');
    expect(pty.transcript).toContain('why:      network access');
    // Control characters from argv are shown escaped, never sent raw.
    expect(pty.transcript).toContain('\\x1b[31m');
    expect(pty.transcript).not.toContain('\x1b[31m');
  }, 60_000);

  it('a cancelled request stops asking and denies', async () => {
    const { pty, results } = await onPty('abort', []);
    expect(pty.status).toBe(0);
    expect(results).toEqual([{ decision: 'deny', reason: expect.stringMatching(/request cancelled$/) }]);
    expect(pty.transcript).toContain('(cancelled: the requesting process went away)');
  }, 60_000);

  it('end of input on the terminal denies', async () => {
    const { results } = await onPty('eof', [['Allow?', 1, '\x04']]);
    expect(results).toEqual([{ decision: 'deny', reason: expect.stringMatching(/terminal closed before an answer$/) }]);
  }, 60_000);

  it('no controlling terminal: denies with a clear reason', async () => {
    const out = path.join(dir, 'tty-none.json');
    // setsid: a new session has no controlling terminal, so /dev/tty cannot be opened.
    await run('setsid', ['-w', process.execPath, '--import', 'tsx', path.join(fixtures, 'tty-approver-driver.ts'), out, 'eof'], {
      cwd: root,
    });
    const results = JSON.parse(await readFile(out, 'utf8')) as { decision: string; reason: string }[];
    expect(results[0]?.decision).toBe('deny');
    expect(results[0]?.reason).toMatch(/no terminal to ask on \(\/dev\/tty: (ENXIO|ENOENT|ENODEV)\)$/);
  }, 60_000);

  it('a device that is not a terminal: denies', async () => {
    const r = await createTtyApprover({ ttyPath: '/dev/null' }).approve(req, live());
    expect(r).toMatchObject({ decision: 'deny' });
    expect(r.reason).toMatch(/\/dev\/null is not a terminal/);
  });
});
