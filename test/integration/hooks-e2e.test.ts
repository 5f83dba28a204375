/**
 * Issue 4 end to end: lifecycle hooks around the real patched bash, through
 * the library (HookEngine + createDecisionPipeline + hooksObserver) and
 * through the real CLI (`codex-escalate run --hooks ...`). Destructive
 * commands only target fresh temp dirs, or a fake `rm` that only records.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHooks } from '../../src/hooks/config.js';
import { HookEngine } from '../../src/hooks/engine.js';
import { hooksObserver } from '../../src/hooks/server-observer.js';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { RulesStore } from '../../src/policy/rules/index.js';
import { packageRoot } from '../../src/paths.js';
import { createAuditLogger } from '../../src/server/audit-log.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { E2EServer, e2eFixtures, fixtureHook, readJsonLines, runCli, sq, writeExecutable, writeHooksJson, type HooksJson } from '../helpers/e2e.js';

const hooksRules = path.join(e2eFixtures, 'hooks.rules');
const scanner = path.join(packageRoot, 'examples', 'hooks', 'security', 'scan-commands.cjs');

interface Hooked {
  srv: E2EServer;
  engine: HookEngine;
  close(): Promise<void>;
}

/** One server whose decisions go through these hooks (and optionally hooks.rules), with the hooks observer attached. */
async function hookedServer(hooks: HooksJson, opts: { rules?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Hooked & { dir: string; hooksFile: string }> {
  const dir = tempDir('cse-e2e-hooks-');
  const hooksFile = writeHooksJson(dir, hooks);
  const engine = new HookEngine(await loadHooks({ files: [hooksFile] }), { env: { ...process.env, ...opts.env } });
  const store = opts.rules ? await RulesStore.open([hooksRules]) : undefined;
  const policy = createDecisionPipeline({ hooks: engine, ...(store ? { rules: store } : {}) });
  const srv = new E2EServer({ policy, observer: hooksObserver(engine, createAuditLogger({ level: 'silent' })) });
  return {
    srv,
    engine,
    dir,
    hooksFile,
    async close() {
      await srv.close();
      await engine.close();
      store?.close();
    },
  };
}

/** A dir holding a file that a recursive delete of it would take along. */
function victim(parent: string, name: string): string {
  const d = path.join(parent, name);
  mkdirSync(d);
  writeFileSync(path.join(d, 'keep'), 'precious\n');
  return d;
}

/** Lines written by record-event.sh: event, CODEX_EXIT_CODE, parsed stdin JSON. */
interface Recorded {
  event: string;
  exitEnv: string;
  payload: Record<string, unknown> & { session_id: string; hook_event_name: string };
}
function recorded(file: string, sessionId?: string): Recorded[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [event, exitEnv, json] = l.split('\t') as [string, string, string];
      return { event, exitEnv, payload: JSON.parse(json) as Recorded['payload'] };
    })
    .filter((r) => sessionId === undefined || r.payload.session_id === sessionId);
}

describe('PreToolUse hooks decide every exec (library)', () => {
  let h: Hooked;
  beforeAll(async () => {
    h = await hookedServer(
      { PreToolUse: [{ matcher: 'Bash', hooks: [fixtureHook('deny-rm-rf.sh', [], { required: true }), fixtureHook('rewrite.sh', [], { required: true })] }] },
      { rules: true },
    );
  });
  afterAll(() => h.close());

  it('denies rm -rf at top level, inside a pipeline and inside a subshell; the reason is on stderr; nothing deleted', async () => {
    const dir = tempDir('cse-e2e-victims-');
    const [top, pipe, sub] = ['top', 'pipe', 'sub'].map((n) => victim(dir, n)) as [string, string, string];
    const r = await h.srv.run(
      `rm -rf ${sq(top)}; echo "top=$?"; true | rm -rf ${sq(pipe)} | cat; echo "pipe=\${PIPESTATUS[1]}"; (rm -rf ${sq(sub)}); echo "sub=$?"; /bin/echo still-here`,
    );
    expect(r.stdout).toBe('top=126\npipe=126\nsub=126\nstill-here\n');
    const reason = 'codex-execve-wrapper: /usr/bin/rm: denied: blocked by hook: hooks.json#hooks.PreToolUse[0].hooks[0]: e2e hook: recursive delete blocked\n';
    expect(r.stderr).toBe(reason.repeat(3));
    for (const d of [top, pipe, sub]) expect(existsSync(path.join(d, 'keep')), d).toBe(true);
    const rm = r.decisions.filter((d) => d.request.program === '/usr/bin/rm');
    expect(rm.map((d) => d.action.kind)).toEqual(['deny', 'deny', 'deny']);
    // The hook runs are in the audit fields: one blocked, the rewriter had no opinion.
    expect((rm[0]!.decision.audit?.hooks as { status: string }[]).map((x) => x.status).sort()).toEqual(['blocked', 'completed']);
  });

  it('a rewrite whose final action is Escalate runs the rewritten command outside the shell', async () => {
    const r = await h.srv.run('/bin/echo escalate-me; echo "status=$?"');
    expect(r.stdout).toBe(`rewritten-escalated ppid=${process.pid}\nstatus=0\n`);
    expect(r.decisions).toHaveLength(1);
    expect(r.decisions[0]!.action.kind).toBe('escalate');
    expect(r.decisions[0]!.decision.rewrite).toEqual({ argv: ['/bin/dash', '-c', 'echo rewritten-escalated ppid=$PPID'], program: '/usr/bin/dash' });
    // The server ran (and reports the exit of) the rewritten program, not the original.
    expect(r.exits.map((e) => [e.request.program, e.request.argv, e.exitCode])).toEqual([['/usr/bin/dash', ['/bin/dash', '-c', 'echo rewritten-escalated ppid=$PPID'], 0]]);
  });

  it('a rewrite to a forbidden command is denied (re-checked against the rules), never run', async () => {
    const file = path.join(tempDir('cse-e2e-rw-'), 'made');
    const r = await h.srv.run(`/bin/echo make ${sq(file)}; echo "status=$?"`);
    expect(r.stdout).toBe('status=126\n');
    expect(r.stderr).toBe(`codex-execve-wrapper: /bin/echo: denied: rewritten command ${JSON.stringify(['touch', file])}: read-only tree\n`);
    expect(existsSync(file)).toBe(false);
  });

  // In place = the wrapper's RunRewritten protocol extension.
  it('updatedInput.command rewrite runs the rewritten command in place', async () => {
    const r = await h.srv.run('/bin/echo original; echo "status=$?"');
    expect(r.decisions[0]!.decision.rewrite).toEqual({ argv: ['/bin/echo', 'rewritten'], program: '/usr/bin/echo' });
    expect(r.decisions[0]!.action).toEqual({ kind: 'run', rewrite: { file: '/usr/bin/echo', argv: ['/bin/echo', 'rewritten'] } });
    expect(r.stdout).not.toContain('original'); // never the original, whatever the wrapper supports
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('rewritten\nstatus=0\n');
  });

  it('seed {"decision":"modify","content":...} rewrite runs the rewritten command in place', async () => {
    const r = await h.srv.run('/bin/echo seed-original');
    expect(r.decisions[0]!.decision.rewrite?.argv).toEqual(['/bin/echo', 'seed-rewritten']);
    expect(r.stdout).not.toContain('seed-original');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('seed-rewritten\n');
  });
});

describe('session and exec events (library)', () => {
  let h: Hooked & { dir: string };
  let events: string;
  beforeAll(async () => {
    events = path.join(tempDir('cse-e2e-events-'), 'events.tsv');
    const rec = fixtureHook('record-event.sh', [events]);
    h = await hookedServer(
      { SessionStart: [{ hooks: [rec] }], Stop: [{ hooks: [rec] }], PostToolUse: [{ matcher: 'Bash', hooks: [rec] }] },
      { rules: true },
    );
  });
  afterAll(() => h.close());

  it('PostToolUse of an escalated command sees its exit status; denies and Run hand-offs are marked as such', async () => {
    const file = path.join(tempDir('cse-e2e-post-'), 'x');
    const r = await h.srv.run(`/bin/sh -c 'exit 3'; echo "st=$?"; touch ${sq(file)}; /bin/true`);
    expect(r.stdout).toBe('st=3\n');
    const post = recorded(events, r.sessionId).filter((x) => x.event === 'exec.after');
    const byOutcome = (o: string) => post.filter((x) => (x.payload.tool_response as { outcome: string }).outcome === o);
    expect(post).toHaveLength(3);
    const [exited] = byOutcome('exited');
    expect(exited!.exitEnv).toBe('3');
    expect(exited!.payload).toMatchObject({
      hook_event_name: 'PostToolUse',
      tool_name: 'Bash',
      tool_input: { command: "/bin/sh -c 'exit 3'", argv: ['/bin/sh', '-c', 'exit 3'], program: '/usr/bin/dash' },
      tool_response: { outcome: 'exited', exit_code: 3, exit_status_known: true },
    });
    expect(byOutcome('denied')[0]!.payload).toMatchObject({ tool_input: { program: '/usr/bin/touch' }, tool_response: { reason: 'read-only tree', exit_status_known: false } });
    expect(byOutcome('run-handed-off')[0]!.payload).toMatchObject({ tool_input: { program: '/usr/bin/true' }, tool_response: { exit_code: null, exit_status_known: false } });
  });

  it('SessionStart and Stop fire exactly once per session, however many execs, subshells and nested shells; Stop sees the exit status', async () => {
    const script = [
      '/bin/true; (/bin/true); x=$(/bin/echo y)',
      '/bin/sh -c "exit 0"', // escalated
      '"$BASH" -c \'/bin/true; "$BASH" -c /bin/true\'', // nested shells share the session
      'for i in 1 2 3; do /bin/true & done; wait',
      'exit 7',
    ].join('\n');
    const [a, b] = await Promise.all([h.srv.run(script), h.srv.run('/bin/true')]);
    expect(a.exitCode).toBe(7);
    expect(a.decisions.length).toBeGreaterThanOrEqual(10);
    for (const [run, exit] of [[a, '7'], [b, '0']] as const) {
      const lines = recorded(events, run.sessionId);
      const starts = lines.filter((x) => x.event === 'session_start');
      const stops = lines.filter((x) => x.event === 'session_end');
      expect(starts).toHaveLength(1);
      expect(stops).toHaveLength(1);
      expect(lines[0]!.event).toBe('session_start');
      expect(lines.at(-1)!.event).toBe('session_end');
      expect(starts[0]!.payload).toMatchObject({ hook_event_name: 'SessionStart', source: 'startup' });
      expect(stops[0]!.exitEnv).toBe(exit);
      expect(stops[0]!.payload).toMatchObject({ hook_event_name: 'Stop', exit_code: Number(exit) });
    }
  });
});

describe('persistent hook mode end to end: the example security scanner', () => {
  let h: Hooked & { dir: string; hooksFile: string };
  let secLog: string;
  let fakeBin: string;
  let fakeLog: string;
  beforeAll(async () => {
    const dir = tempDir('cse-e2e-scan-');
    secLog = path.join(dir, 'security.log');
    // A stand-in rm that only records it ran: `rm -rf /` is invoked by this absolute path, never the real rm.
    fakeBin = path.join(dir, 'bin');
    fakeLog = path.join(dir, 'fake-rm-ran');
    mkdirSync(fakeBin);
    writeExecutable(path.join(fakeBin, 'rm'), `#!/bin/sh\necho "$*" >> ${sq(fakeLog)}\n`);
    h = await hookedServer({
      PreToolUse: [
        { matcher: 'Bash', hooks: [{ type: 'command', command: ['node', scanner, '--persistent'], persistent: true, required: true, timeout: 10, env: { CODEX_SECURITY_LOG: secLog } }] },
      ],
    });
  });
  afterAll(() => h.close());

  it('blocks rm -rf / and chmod 777, lets harmless commands run, one process for every decision', async () => {
    const target = path.join(tempDir('cse-e2e-chmod-'), 'f');
    writeFileSync(target, 'x');
    const mode = statSync(target).mode & 0o777;
    const rm = path.join(fakeBin, 'rm');
    const r1 = await h.srv.run(`${sq(rm)} -rf /; echo "rm=$?"; chmod 777 ${sq(target)}; echo "chmod=$?"; /bin/echo fine`);
    expect(r1.stdout).toBe('rm=126\nchmod=126\nfine\n');
    expect(r1.stderr).toMatch(new RegExp(`^codex-execve-wrapper: ${rm}: denied: blocked by hook: hooks\\.json#hooks\\.PreToolUse\\[0\\]\\.hooks\\[0\\]: security scanner: high risk: rm on /, ~ or \\*\\n`));
    expect(r1.stderr).toContain('/usr/bin/chmod: denied: blocked by hook: hooks.json#hooks.PreToolUse[0].hooks[0]: security scanner: high risk: chmod 777\n');
    expect(existsSync(fakeLog)).toBe(false);
    expect(statSync(target).mode & 0o777).toBe(mode);

    const hookId = h.engine.config.hooks[0]!.id;
    const pid = h.engine.persistentPid(hookId);
    expect(pid).toBeGreaterThan(0);
    const r2 = await h.srv.run(`/bin/echo again; ${sq(rm)} -rf /; echo "rm=$?"`);
    expect(r2.stdout).toBe('again\nrm=126\n');
    // Same process across sessions: started once per server, not per exec.
    expect(h.engine.persistentPid(hookId)).toBe(pid);
    expect(existsSync(fakeLog)).toBe(false);

    const scans = readJsonLines(secLog);
    expect(scans.map((s) => s.risk_level)).toEqual(['high', 'high', 'low', 'low', 'high']);
    expect(scans.map((s) => s.session_id)).toEqual([r1.sessionId, r1.sessionId, r1.sessionId, r2.sessionId, r2.sessionId]);
  });
});

describe('hooks through the real CLI (codex-escalate run --hooks)', () => {
  it('a hook written for Claude Code (.claude/settings.json, $CLAUDE_PROJECT_DIR, exit 2) blocks rm -rf in a pipeline and a subshell unchanged', async () => {
    const proj = tempDir('cse-e2e-claude-');
    mkdirSync(path.join(proj, '.claude', 'hooks'), { recursive: true });
    copyFileSync(path.join(e2eFixtures, 'claude-bash-guard.sh'), path.join(proj, '.claude', 'hooks', 'claude-bash-guard.sh'));
    // The settings file exactly as Claude Code reads it.
    const settings = path.join(proj, '.claude', 'settings.json');
    writeFileSync(
      settings,
      JSON.stringify({
        permissions: { allow: ['Bash(npm run test:*)'] },
        hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: '"$CLAUDE_PROJECT_DIR"/.claude/hooks/claude-bash-guard.sh' }] }] },
      }),
    );
    const [pipe, sub] = [victim(proj, 'pipe'), victim(proj, 'sub')];
    const r = await runCli([
      'run', '--shell', patchedBash(), '--hooks', settings, '--log-file', path.join(proj, 'audit.jsonl'), '--cwd', proj,
      '--', 'true | rm -rf pipe | cat; echo "pipe=${PIPESTATUS[1]}"; (rm -rf sub); echo "sub=$?"; rm -r -f sub; echo "split-flags=$?"',
    ]);
    // The guard matches the literal "rm -rf": `rm -r -f` is not its business (and sub is gone only then).
    expect(r.stdout).toBe('pipe=126\nsub=126\nsplit-flags=0\n');
    expect(r.code).toBe(0);
    const msg = `denied: blocked by hook: settings.json#hooks.PreToolUse[0].hooks[0]: Blocked by claude-bash-guard: 'rm -rf' is not allowed`;
    expect(r.stderr.split(msg).length - 1).toBe(2);
    expect(existsSync(path.join(pipe, 'keep'))).toBe(true);
    expect(existsSync(sub)).toBe(false);
  });

  it('SessionStart and Stop once per run with the exit status; PostToolUse sees an escalated exit status; rewrites are re-checked', async () => {
    const dir = tempDir('cse-e2e-cli-hooks-');
    const events = path.join(dir, 'events.tsv');
    const rec = fixtureHook('record-event.sh', [events]);
    const hooksFile = writeHooksJson(dir, {
      SessionStart: [{ hooks: [rec] }],
      Stop: [{ hooks: [rec] }],
      PostToolUse: [{ matcher: 'Bash', hooks: [rec] }],
      PreToolUse: [{ matcher: 'Bash', hooks: [fixtureHook('rewrite.sh')] }],
    });
    const log = path.join(dir, 'audit.jsonl');
    const r = await runCli([
      'run', '--shell', patchedBash(), '--hooks', hooksFile, '--rules', hooksRules, '--log-file', log, '--cwd', dir,
      '--', `/bin/sh -c 'exit 3'; echo "st=$?"; (/bin/true); "$BASH" -c /bin/true; /bin/echo escalate-me; /bin/echo make made; echo "make=$?"; /bin/echo original; exit 7`,
    ]);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe(`st=3\nrewritten-escalated ppid=${r.pid}\nmake=126\nrewritten\n`);
    expect(existsSync(path.join(dir, 'made'))).toBe(false);
    const lines = recorded(events);
    expect(lines.filter((x) => x.event === 'session_start')).toHaveLength(1);
    expect(lines.filter((x) => x.event === 'session_end').map((x) => [x.exitEnv, x.payload.exit_code])).toEqual([['7', 7]]);
    expect(lines[0]!.event).toBe('session_start');
    expect(lines.at(-1)!.event).toBe('session_end');
    const exited = lines.filter((x) => x.event === 'exec.after' && (x.payload.tool_response as { outcome: string }).outcome === 'exited');
    expect(exited.map((x) => [x.exitEnv, (x.payload.tool_input as { argv: string[] }).argv])).toEqual([
      ['3', ['/bin/sh', '-c', 'exit 3']],
      ['0', ['/bin/dash', '-c', 'echo rewritten-escalated ppid=$PPID']],
    ]);
    // The audit line of the rewrite records it with the hook run.
    const rw = readJsonLines(log).find((l) => l.event === 'decision' && (l.argv as string[])[1] === 'escalate-me')!;
    expect(rw).toMatchObject({ action: 'escalate', rewrite: { argv: ['/bin/dash', '-c', 'echo rewritten-escalated ppid=$PPID'], program: '/usr/bin/dash' } });
    expect(rw.hooks).toEqual([expect.objectContaining({ event: 'exec.before', status: 'completed', rewrite: ['/bin/dash', '-c', 'echo rewritten-escalated ppid=$PPID'] })]);
  });

  it('the persistent scanner from a hooks.json blocks high-risk commands (harmless variants) under the CLI', async () => {
    const dir = tempDir('cse-e2e-cli-scan-');
    const secLog = path.join(dir, 'security.log');
    const hooksFile = writeHooksJson(dir, {
      PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: ['node', scanner, '--persistent'], persistent: true, required: true, env: { CODEX_SECURITY_LOG: secLog } }] }],
    });
    const target = path.join(dir, 'f');
    writeFileSync(target, 'x');
    const mode = statSync(target).mode & 0o777;
    const r = await runCli([
      'run', '--shell', patchedBash(), '--hooks', hooksFile, '--log-file', path.join(dir, 'audit.jsonl'), '--cwd', dir,
      '--', 'chmod 777 f; echo "chmod=$?"; dd if=/dev/zero of=/dev/null count=1; echo "dd=$?"; /bin/echo ok',
    ]);
    expect(r.stdout).toBe('chmod=126\ndd=126\nok\n');
    expect(r.stderr).toContain('security scanner: high risk: chmod 777');
    expect(r.stderr).toContain('security scanner: high risk: dd onto a device (dd of=/dev/...)');
    expect(statSync(target).mode & 0o777).toBe(mode);
    expect(readJsonLines(secLog).map((l) => l.risk_level)).toEqual(['high', 'high', 'low']);
  });

  it('a hooks.json that does not load stops the run before anything executes, naming file, entry and field', async () => {
    const dir = tempDir('cse-e2e-badhooks-');
    const bad = writeHooksJson(dir, { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 42 }] }] });
    const marker = path.join(dir, 'ran');
    const r = await runCli(['run', '--shell', patchedBash(), '--hooks', bad, '--cwd', dir, '--', `touch ${sq(marker)}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/hooks did not load: .*hooks\.json: hooks\.PreToolUse\[0\]\.hooks\[0\].*command/);
    expect(existsSync(marker)).toBe(false);
  });
});
