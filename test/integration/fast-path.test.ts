/**
 * The native fast path (src/server/fast-path.ts, native/fast-path.c): a
 * repeated Run request is answered by the session's thread, and nothing about
 * any decision changes. Every attack here is a way a replayed answer could be
 * wrong: the same name for another file, the same program with other bytes,
 * rules that changed, forged fds, and what the sandbox may send instead of a
 * handshake. Real patched bash, real wrapper, real sockets.
 */
import { openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, openPath, sendMsg, socketPair } from '../../src/native/index.js';
import { createDecisionPipeline, type DecisionPipelineOptions } from '../../src/policy/decision-pipeline.js';
import { RulesStore } from '../../src/policy/rules/store.js';
import { RuleSet } from '../../src/policy/rules/ruleset.js';
import type { EscalationPolicy } from '../../src/policy/types.js';
import { encodeJsonFrame } from '../../src/protocol/codec.js';
import { createAuditLogger } from '../../src/server/audit-log.js';
import { boostServerPriority, EscalationServer, type EscalationSession } from '../../src/server/escalation-server.js';
import { patchedBash, runInSession, tempDir, wrapperPath } from '../helpers/harness.js';
import { RawClient } from '../helpers/raw-client.js';
import { decisionView, runFastPathDifferential } from '../fuzz/fast-path-differential.js';

type Line = Record<string, unknown>;
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: os.tmpdir(), LC_ALL: 'C' };
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function serverWith(policy: EscalationPolicy, fastPath: boolean, extra: { directExecs?: boolean } = {}) {
  const lines: Line[] = [];
  const logger = createAuditLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Line) } });
  const sessions: EscalationSession[] = [];
  const server = new EscalationServer({ policy, wrapperPath, shellPath: patchedBash(), logger, fastPath, ...extra, observer: { sessionStarted: (s) => void sessions.push(s) } });
  cleanups.push(() => server.close());
  return { server, lines, sessions };
}


async function run(policy: () => EscalationPolicy, script: string, fastPath: boolean, cwd?: string) {
  const s = serverWith(policy(), fastPath);
  const r = await runInSession(s.server, script, { env: ENV, ...(cwd !== undefined ? { cwd } : {}) });
  return { ...r, lines: s.lines, session: s.sessions[0]!, decisions: s.lines.filter((l) => l.event === 'decision') };
}

const pipeline = (o: DecisionPipelineOptions = {}) => () => createDecisionPipeline({ rules: RulesStore.fromRuleSet(RuleSet.empty()), ...o });

describe('fast path: repeats answered natively, every decision unchanged', () => {
  it('a loop of the same exec: one JS decision, the rest from the thread; the same audit lines, counted before session_end', async () => {
    const script = 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do /bin/true; done; /bin/echo done';
    const slow = await run(pipeline(), script, false);
    const fast = await run(pipeline(), script, true);
    expect(fast.stdout).toBe('done\n');
    expect(fast.exitCode).toBe(0);
    expect(decisionView(fast.lines)).toEqual(decisionView(slow.lines));
    expect(fast.session.fastPathStats?.hits).toBe(11);
    expect(slow.session.fastPathStats).toBeUndefined();
    // Hits name the decision they repeat, and are all logged before the session's end line.
    const repeats = fast.decisions.filter((l) => l.repeat_of !== undefined);
    expect(repeats).toHaveLength(11);
    const first = fast.decisions.find((l) => l.program === '/usr/bin/true' && l.repeat_of === undefined)!;
    expect(new Set(repeats.map((l) => l.repeat_of))).toEqual(new Set([first.request]));
    expect(new Set(fast.decisions.map((l) => l.request)).size).toBe(fast.decisions.length);
    const end = fast.lines.find((l) => l.event === 'session_end')!;
    expect(end.decisions).toBe(fast.decisions.length);
    expect(fast.decisions).toHaveLength(slow.decisions.length);
    expect(fast.lines.indexOf(end)).toBe(fast.lines.length - 1);
  });

  it('other bytes are another request: a --deny on an argument still denies the same program', async () => {
    const script = '/bin/true; /bin/true; /bin/true x; echo "status $?"';
    const policy = pipeline({ denyPrefixes: ['true x'] });
    const fast = await run(policy, script, true);
    expect(fast.stdout).toBe('status 126\n');
    expect(fast.decisions.map((l) => [l.argv, l.action])).toEqual([
      [['/bin/true'], 'run'],
      [['/bin/true'], 'run'],
      [['/bin/true', 'x'], 'deny'],
    ]);
    expect(decisionView(fast.lines)).toEqual(decisionView((await run(policy, script, false)).lines));
  });

  it('the same name for another file is another request: a relinked symlink is decided as what it now is', async () => {
    const dir = tempDir('fast-link-');
    const link = path.join(dir, 'p');
    symlinkSync('/bin/true', link);
    // The wrapper's request bytes are identical each time ($L, argv [$L]); only the program behind the fd changes.
    const script = `L=${link}; $L; $L; /bin/ln -sfn /bin/false $L; $L; echo "status $?"`;
    const policy = pipeline({ denyPrefixes: ['false'] });
    const fast = await run(policy, script, true);
    expect(fast.stdout).toBe('status 126\n');
    expect(fast.decisions.filter((l) => l.file === link).map((l) => [l.program, l.action])).toEqual([
      ['/usr/bin/true', 'run'],
      ['/usr/bin/true', 'run'],
      ['/usr/bin/false', 'deny'],
    ]);
    expect(fast.session.fastPathStats?.hits).toBe(1);
  });

  it('a request too large for the table is decided in JS every time and does not cost the others their entries', async () => {
    const script = `big=$(printf '%070000d' 0); /bin/true; /bin/true "$big"; /bin/true; /bin/true "$big"; /bin/true; echo ok`;
    const fast = await run(pipeline(), script, true);
    expect(fast.stdout).toBe('ok\n');
    expect(fast.decisions).toHaveLength(5);
    expect(fast.decisions.filter((l) => l.repeat_of !== undefined).map((l) => l.argv)).toEqual([['/bin/true'], ['/bin/true']]);
    expect(fast.session.fastPathStats).toMatchObject({ hits: 2, misses: 3 });
  });

  it('rules that change are in force for the next exec: the table is forgotten before anything decides under them', async () => {
    const dir = tempDir('fast-rules-');
    const file = path.join(dir, 'p.rules');
    writeFileSync(file, 'prefix_rule(pattern=["rm"], decision="forbidden")\n');
    const store = await RulesStore.open([file], { watch: true, debounceMs: 5 });
    cleanups.push(() => store.close());
    const forbid = 'prefix_rule(pattern=["true"], decision="forbidden", justification="true is forbidden now")';
    // Hits until the reload lands, then the deny ends the loop (a stale table would loop until the cap).
    const script = `for i in 1 2 3; do /bin/true; done; printf '%s\\n' '${forbid}' > ${file}; n=0; while /bin/true; do n=$((n+1)); [ $n -lt 20000 ] || break; done; echo "stopped $n"`;
    const s = serverWith(createDecisionPipeline({ rules: store }), true);
    const r = await runInSession(s.server, script, { env: ENV });
    expect(r.stdout).toMatch(/^stopped \d+\n$/);
    expect(Number(/\d+/.exec(r.stdout)![0])).toBeLessThan(20000);
    const last = s.lines.filter((l) => l.event === 'decision').at(-1)!;
    expect([last.action, last.reason]).toEqual(['deny', 'true is forbidden now']);
    expect(s.sessions[0]!.fastPathStats!.hits).toBeGreaterThan(1);
  }, 60_000);

  it('no fast path where a decision is not a function of the request: hooks, an unobservable rule set', () => {
    const hooks = { preToolUse: async () => ({ decision: 'none' as const, runs: [] }) } as unknown as NonNullable<DecisionPipelineOptions['hooks']>;
    expect(createDecisionPipeline({ hooks }).repeatable).toBeUndefined();
    expect(createDecisionPipeline({ rules: { current: RuleSet.empty() } }).repeatable).toBeUndefined();
    expect(createDecisionPipeline({ rules: RulesStore.fromRuleSet(RuleSet.empty()) }).repeatable).toBeDefined();
    expect(createDecisionPipeline({ denyPrefixes: ['rm'] }).repeatable).toBeDefined();
  });

  it('direct execs: a repeated Run hands its new listener to the hub, so the program\'s own execs are still decided', async () => {
    const dir = tempDir('fast-direct-');
    const target = path.join(dir, 'x');
    // env (Run: a hit from the second time on) execs rm itself: that exec reaches the hub through the listener the hit
    // handed over, and is denied every time; the file is never removed.
    const script = `for i in 1 2 3 4; do : > ${target}; /usr/bin/env /bin/rm ${target} 2>/dev/null; echo "$? $([ -e ${target} ] && echo kept)"; done`;
    const s = serverWith(pipeline({ denyPrefixes: ['rm'] })(), true, { directExecs: true });
    const r = await runInSession(s.server, script, { env: ENV });
    expect(r.stdout).toBe('126 kept\n'.repeat(4));
    expect(s.sessions[0]!.fastPathStats!.hits).toBe(3);
    const decisions = s.lines.filter((l) => l.event === 'decision');
    expect(decisions.filter((l) => l.program === '/usr/bin/env').map((l) => l.action)).toEqual(['run', 'run', 'run', 'run']);
    expect(decisions.filter((l) => l.program === '/usr/bin/rm').map((l) => [l.action, l.via])).toEqual(Array(4).fill(['deny', 'direct']));
    expect(s.lines.filter((l) => l.event === 'rejected')).toEqual([]);
  });
});

describe('fast path: priority', () => {
  it('boostServerPriority raises the fast path\'s thread with the event loop (decisions ahead of the workload)', async () => {
    const s = serverWith(pipeline()(), true);
    const session = await s.server.startSession({ cwd: os.tmpdir() });
    /** The nice value of every fast-path thread of this process. */
    const threadNice = () =>
      readdirSync('/proc/self/task')
        .filter((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'codex-fastpath')
        .map((tid) => {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        });
    const before = os.getPriority(0);
    expect(threadNice()).toEqual([before]);
    const base = boostServerPriority(s.server);
    try {
      if (base === undefined) return; // not permitted here (not root): nothing to check
      const boosted = Math.max(-20, base - 10);
      expect(threadNice()).toEqual([boosted]);
      // A session started afterwards gets it too.
      const later = await s.server.startSession({ cwd: os.tmpdir() });
      expect(threadNice()).toEqual([boosted, boosted]);
      await later.end();
      expect(threadNice()).toEqual([boosted]);
    } finally {
      if (base !== undefined) os.setPriority(0, base);
      await session.end();
    }
  });
});

describe('fast path: what a sandbox can send instead', () => {
  const env = { PATH: '/usr/bin:/bin' };
  const request = encodeJsonFrame({ file: '/bin/true', argv: ['true'], workdir: '/', env, ext: 2 });

  /** The reply, as the action it carries: 'run', or ['deny', reason]. */
  async function ask(session: EscalationSession, frame: Buffer, fds: number[]): Promise<unknown> {
    const { client } = await RawClient.connectWithRequest(session.clientFd, frame, fds);
    try {
      const reply = (await client.receive(5000)) as { action: unknown };
      const deny = (reply.action as { Deny?: { reason: unknown } }).Deny;
      return reply.action === 'Run' ? 'run' : deny ? ['deny', deny.reason] : reply.action;
    } finally {
      client.close();
    }
  }

  it('an identical request with a second fd, or with none, or for another program: each decided in JS', async () => {
    const s = serverWith(pipeline({ denyPrefixes: ['rm'] })(), true);
    const session = await s.server.startSession({ cwd: os.tmpdir() });
    const prog = openPath('/bin/true');
    cleanups.push(() => closeFd(prog));
    expect(await ask(session, request, [prog])).toBe('run');
    expect(await ask(session, request, [prog])).toBe('run');
    expect(session.fastPathStats!.hits).toBe(1);
    // The same bytes with two fds: our wrapper's listener slot, refused as before (not replayed as a Run).
    const [a, b] = socketPair('stream');
    cleanups.push(() => (closeFd(a), closeFd(b)));
    expect(await ask(session, request, [prog, a])).toEqual(['deny', expect.stringMatching(/second fd on a request must be an exec filter's listener/)]);
    // The same bytes with no fd: the server cannot tell the program, so JS decides (not found: Run, the exec fails).
    expect(await ask(session, request, [])).toBe('run');
    // Another program behind the same bytes.
    const rm = openPath('/bin/rm');
    cleanups.push(() => closeFd(rm));
    expect(await ask(session, request, [rm])).toEqual(['deny', 'matches --deny "rm"']);
    expect(session.fastPathStats!.hits).toBe(1);
    expect(session.fastPathStats!.misses).toBe(4);
    await session.end();
    expect(s.lines.filter((l) => l.event === 'decision').map((l) => [l.program, l.action])).toEqual([
      ['/usr/bin/true', 'run'],
      ['/usr/bin/true', 'run'],
      ['/bin/true', 'run'],
      ['/usr/bin/rm', 'deny'],
    ]);
  });

  it('datagrams that are not a handshake, connections that are not sockets: refused in JS with the same lines as without', async () => {
    const refusals = async (fastPath: boolean) => {
      const s = serverWith(pipeline()(), fastPath);
      const session = await s.server.startSession({ cwd: os.tmpdir() });
      const devnull = openSync('/dev/null', 'r');
      const opath = openPath('/dev/null');
      try {
        expect(sendMsg(session.clientFd, Buffer.from('xy'), [])).toBe(2);
        expect(sendMsg(session.clientFd, Buffer.of(0), [devnull, opath])).toBe(1);
        expect(sendMsg(session.clientFd, Buffer.of(0), [devnull])).toBe(1);
        expect(sendMsg(session.clientFd, Buffer.of(0), [opath])).toBe(1);
      } finally {
        closeFd(devnull);
        closeFd(opath);
      }
      const deadline = Date.now() + 5000;
      while (s.lines.filter((l) => l.event === 'rejected').length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await session.end();
      return s.lines.filter((l) => l.event === 'rejected' || l.event === 'decision').map((l) => l.error ?? l.event);
    };
    const fast = await refusals(true);
    expect(fast).toEqual(await refusals(false));
    expect(fast).toEqual(['bad handshake datagram: 2 bytes, 0 fds', 'bad handshake datagram: 1 bytes, 2 fds', expect.stringMatching(/not a socket/), expect.stringMatching(/EBADF/)]);
  });
});

describe('fast path: differential against the JS path', () => {
  it('random exec sequences decide exactly as with the fast path off (a bounded sample; npm run fuzz runs more)', async () => {
    const r = await runFastPathDifferential(1, 4);
    expect(r.differences).toEqual([]);
    expect(r.decisions).toBeGreaterThanOrEqual(4 * 40);
    expect(r.hits).toBeGreaterThan(20);
  }, 120_000);
});
