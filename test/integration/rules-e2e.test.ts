/**
 * Issue 3 end to end: `.rules` policies enforced on the real patched bash,
 * through the library (createDecisionPipeline + RulesStore) and through the
 * real CLI (`codex-escalate run --rules ...`), including every approver and
 * live reload. Destructive commands only ever target fresh temp dirs.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApprover, createCallbackApprover, type ApprovalRequest } from '../../src/policy/approval/index.js';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { RulesStore } from '../../src/policy/rules/index.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { E2EServer, e2eFixtures, onPty, readJsonLines, runCli, sq, startCli, waitFor, writeExecutable } from '../helpers/e2e.js';

const policyRules = path.join(e2eFixtures, 'policy.rules');
const promptRules = path.join(e2eFixtures, 'prompt.rules');
const approverScript = path.join(e2eFixtures, 'approver.sh');
const DENIED_RM = 'codex-execve-wrapper: /usr/bin/rm: denied: no recursive deletes';

const count = (s: string, needle: string) => s.split(needle).length - 1;
const actionsOf = (r: { decisions: { request: { program: string }; action: { kind: string } }[] }) => r.decisions.map((d) => [d.request.program, d.action.kind]);

/** Target dirs, one per nesting level, each holding a file a recursive delete would take with it. */
function targets(names: readonly string[]): { dir: string; path: (n: string) => string } {
  const dir = tempDir('cse-e2e-rules-');
  for (const n of names) {
    mkdirSync(path.join(dir, n));
    writeFileSync(path.join(dir, n, 'keep'), 'precious\n');
  }
  return { dir, path: (n) => path.join(dir, n) };
}

/** A script exercising `rm -rf` at every nesting level; each level prints `<level>=<status>`. */
function nestingScript(t: { dir: string; path: (n: string) => string }): string {
  // No #!: the wrapper hands it to CODEX_ESCALATE_SHELL (the patched bash), so its execs are intercepted too.
  writeExecutable(path.join(t.dir, 'plain.sh'), `rm -rf ${sq(t.path('script'))}\necho "script=$?"\n`);
  // #! naming the patched bash itself (a #!/bin/bash script would run stock bash, whose execs nobody sees).
  writeExecutable(path.join(t.dir, 'shebang.sh'), `#!${patchedBash()}\nrm -rf ${sq(t.path('shebang'))}\necho "shebang=$?"\n`);
  return [
    `rm -rf ${sq(t.path('top'))}; echo "top=$?"`,
    `true | rm -rf ${sq(t.path('pipe'))} | cat; echo "pipe=\${PIPESTATUS[1]}"`,
    `(rm -rf ${sq(t.path('sub'))}); echo "sub=$?"`,
    `out=$(rm -rf ${sq(t.path('cs'))} 2>&1); echo "cs=$?"; printf '%s\\n' "$out" >&2`,
    `${sq(path.join(t.dir, 'plain.sh'))}`,
    `${sq(path.join(t.dir, 'shebang.sh'))}`,
    `"$BASH" -c 'rm -rf "$1"; echo "nested=$?"' nested ${sq(t.path('nested'))}`,
    'echo end',
  ].join('\n');
}
const LEVELS = ['top', 'pipe', 'sub', 'cs', 'script', 'shebang', 'nested'] as const;

describe('rules through the library (one server, policy.rules)', () => {
  let srv: E2EServer;
  beforeAll(async () => {
    const store = await RulesStore.open([policyRules]);
    srv = new E2EServer({ policy: createDecisionPipeline({ rules: store }) });
  });
  afterAll(() => srv.close());

  it('a forbidden rule denies rm -rf at every nesting level: 126, justification on stderr, nothing deleted', async () => {
    const t = targets(LEVELS);
    const r = await srv.run(nestingScript(t), { cwd: t.dir });
    expect(r.stdout).toBe(LEVELS.map((l) => `${l}=126\n`).join('') + 'end\n');
    expect(count(r.stderr, DENIED_RM)).toBe(LEVELS.length);
    for (const l of LEVELS) expect(existsSync(path.join(t.path(l), 'keep')), l).toBe(true);
    const rmDecisions = r.decisions.filter((d) => d.request.program === '/usr/bin/rm');
    expect(rmDecisions).toHaveLength(LEVELS.length);
    for (const d of rmDecisions) {
      expect(d.action).toEqual({ kind: 'deny', reason: 'no recursive deletes' });
      expect(d.decision.audit).toMatchObject({
        matchedRules: [{ prefixRuleMatch: { matchedPrefix: ['rm', '-rf'], decision: 'forbidden', justification: 'no recursive deletes' } }],
        justification: 'no recursive deletes',
      });
    }
    // The scripts and the nested shell were themselves decided (and allowed to run).
    expect(r.decisions.filter((d) => d.request.program === patchedBash()).map((d) => d.action.kind)).toEqual(['run']);
    expect(r.decisions.filter((d) => d.request.program.endsWith('.sh')).map((d) => d.action.kind)).toEqual(['run', 'run']);
  });

  it('rm without -rf matches no rule and runs in place', async () => {
    const t = targets(['x']);
    const r = await srv.run(`rm ${sq(path.join(t.path('x'), 'keep'))}; echo "rm=$?"`);
    expect(r.stdout).toBe('rm=0\n');
    expect(existsSync(path.join(t.path('x'), 'keep'))).toBe(false);
    expect(actionsOf(r)).toEqual([['/usr/bin/rm', 'run']]);
  });

  it('an allow rule escalates (the server is the parent); an unmatched command runs inside the shell', async () => {
    const r = await srv.run(
      [
        'echo "bash=$$"',
        `/bin/sh -c 'echo "escalated=$PPID"'`,
        `/bin/dash -e -c 'echo "ran=$PPID"'`, // prefix is ["dash", "-c"]: -e first does not match
        `/bin/sh -c 'exit 3'; echo "status=$?"`,
      ].join('\n'),
    );
    const bashPid = /bash=(\d+)/.exec(r.stdout)![1];
    expect(r.stdout).toBe(`bash=${bashPid}\nescalated=${process.pid}\nran=${bashPid}\nstatus=3\n`);
    expect(actionsOf(r)).toEqual([
      ['/usr/bin/dash', 'escalate'],
      ['/usr/bin/dash', 'run'],
      ['/usr/bin/dash', 'escalate'],
    ]);
    expect(r.decisions[0]!.decision.reason).toMatch(/^allowed by prefix_rule\(\["dash", "-c"\]/);
    expect(r.exits.map((e) => e.exitCode)).toEqual([0, 3]);
  });
});

describe('prompt rules with each approver (library)', () => {
  it('default approver (headless deny): "requires approval: <rule> (<justification>)", never runs', async () => {
    const srv = new E2EServer({ policy: createDecisionPipeline({ rules: await RulesStore.open([promptRules]) }) });
    try {
      const r = await srv.run(`/bin/sh -c 'echo should-not-run'; echo "status=$?"`);
      expect(r.stdout).toBe('status=126\n');
      expect(r.stderr).toBe(
        `codex-execve-wrapper: /bin/sh: denied: requires approval: prefix_rule(["dash", "-c"], decision="prompt") at ${promptRules}:2:1 (needs a human)\n`,
      );
    } finally {
      await srv.close();
    }
  });

  it('command:CMD approver: a real script gets the request JSON, allows one command (escalated) and denies another', async () => {
    const log = path.join(tempDir('cse-e2e-approver-'), 'requests.jsonl');
    const approver = createApprover(`command:sh ${sq(approverScript)} ${sq(log)}`);
    const srv = new E2EServer({ policy: createDecisionPipeline({ rules: await RulesStore.open([promptRules]), approver }) });
    try {
      const r = await srv.run(`/bin/sh -c 'echo "allowed ppid=$PPID"'; echo "a=$?"; /bin/sh -c 'echo other'; echo "b=$?"`);
      expect(r.stdout).toBe(`allowed ppid=${process.pid}\na=0\nb=126\n`);
      expect(r.stderr).toMatch(/^codex-execve-wrapper: \/bin\/sh: denied: requires approval: .*\(needs a human\); denied by approval command: e2e approver says no\n$/);
      expect(actionsOf(r)).toEqual([
        ['/usr/bin/dash', 'escalate'],
        ['/usr/bin/dash', 'deny'],
      ]);
      const reqs = readJsonLines(log);
      expect(reqs).toHaveLength(2);
      expect(reqs[0]).toMatchObject({
        hook_event_name: 'PermissionRequest',
        session_id: r.sessionId,
        tool_input: { program: '/usr/bin/dash', argv: ['/bin/sh', '-c', 'echo "allowed ppid=$PPID"'] },
        rule: `prefix_rule(["dash", "-c"], decision="prompt") at ${promptRules}:2:1`,
        matched_prefix: ['dash', '-c'],
        justification: 'needs a human',
        matched_rules: [{ prefixRuleMatch: { matchedPrefix: ['dash', '-c'], decision: 'prompt', justification: 'needs a human' } }],
      });
      expect((reqs[1]!.tool_input as { argv: string[] }).argv).toEqual(['/bin/sh', '-c', 'echo other']);
    } finally {
      await srv.close();
    }
  });

  it('callback approver: "allow for this session" is asked once for identical execs, remembered per session', async () => {
    const asked: ApprovalRequest[] = [];
    const approver = createCallbackApprover((req) => {
      asked.push(req);
      return { decision: 'allow', scope: 'session' };
    });
    const srv = new E2EServer({ policy: createDecisionPipeline({ rules: await RulesStore.open([promptRules]), approver }) });
    try {
      const r = await srv.run(`for i in 1 2 3; do /bin/sh -c 'echo "same $PPID"'; done`);
      expect(r.stdout).toBe(`same ${process.pid}\n`.repeat(3));
      expect(asked).toHaveLength(1);
      expect(r.decisions.map((d) => d.decision.audit?.approval)).toEqual(['session', 'session', 'session']);
      expect(r.decisions.map((d) => d.decision.reason?.startsWith('approved earlier for this session'))).toEqual([false, true, true]);
    } finally {
      await srv.close();
    }
  });
});

describe('rules through the real CLI (codex-escalate run --rules)', () => {
  it('denies at every nesting level, escalates the allowed command, and the audit line carries matchedRules and justification', async () => {
    const t = targets(LEVELS);
    const log = path.join(t.dir, 'audit.jsonl');
    // Escalated = started by the CLI itself, outside the shell's sandbox (bwrap by default, own pid namespace).
    const script = `/bin/sh -c 'echo "escalated_ppid=$PPID"'\n${nestingScript(t)}`;
    const r = await runCli(['run', '--shell', patchedBash(), '--rules', policyRules, '--log-file', log, '--cwd', t.dir, '--', script]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`escalated_ppid=${r.pid}\n` + LEVELS.map((l) => `${l}=126\n`).join('') + 'end\n');
    expect(count(r.stderr, DENIED_RM)).toBe(LEVELS.length);
    for (const l of LEVELS) expect(existsSync(path.join(t.path(l), 'keep')), l).toBe(true);

    const decisions = readJsonLines(log).filter((l) => l.event === 'decision');
    const denies = decisions.filter((d) => d.program === '/usr/bin/rm');
    expect(denies).toHaveLength(LEVELS.length);
    for (const d of denies) {
      expect(d).toMatchObject({
        action: 'deny',
        reason: 'no recursive deletes',
        justification: 'no recursive deletes',
        rulesDecision: 'forbidden',
        matchedRules: [{ prefixRuleMatch: { matchedPrefix: ['rm', '-rf'], decision: 'forbidden', resolvedProgram: '/usr/bin/rm', justification: 'no recursive deletes' }, source: `${policyRules}:2` }],
      });
      expect(d.rules).toEqual([expect.stringContaining(`prefix_rule(["rm", "-rf"], decision="forbidden") at ${policyRules}:2:1`)]);
    }
    expect(decisions.find((d) => d.program === '/usr/bin/dash')).toMatchObject({
      action: 'escalate',
      justification: 'trusted helper shell',
      matchedRules: [{ prefixRuleMatch: { matchedPrefix: ['dash', '-c'], decision: 'allow', justification: 'trusted helper shell' } }],
    });
  });

  it('--approval command:CMD allows one command and denies another', async () => {
    const dir = tempDir('cse-e2e-cli-approver-');
    const log = path.join(dir, 'requests.jsonl');
    const r = await runCli([
      'run', '--shell', patchedBash(), '--rules', promptRules, '--log-file', path.join(dir, 'audit.jsonl'),
      '--approval', `command:sh ${sq(approverScript)} ${sq(log)}`,
      '--', `/bin/sh -c 'echo "allowed ppid=$PPID"'; /bin/sh -c 'echo nope'; echo "b=$?"`,
    ]);
    expect(r.stdout).toBe(`allowed ppid=${r.pid}\nb=126\n`);
    expect(r.stderr).toContain('denied by approval command: e2e approver says no');
    expect(readJsonLines(log).map((q) => (q.tool_input as { argv: string[] }).argv[2])).toEqual(['echo "allowed ppid=$PPID"', 'echo nope']);
  });

  it('--approval tty through a real pseudo-terminal: allow once escalates, deny denies', async () => {
    const log = path.join(tempDir('cse-e2e-tty-'), 'audit.jsonl');
    const pty = await onPty(
      [process.execPath, 'bin/codex-escalate.js', 'run', '--shell', patchedBash(), '--rules', promptRules, '--approval', 'tty', '--log-file', log, '--',
        // The parent's name tells where it ran: the CLI (node) when escalated, the shell when run in place.
        `/bin/sh -c 'read -r c < /proc/$PPID/comm; echo "once parent=$c"'; echo "s1=$?"; /bin/sh -c 'echo never-ran'; echo "s2=$?"`],
      [
        ['Allow?', 1, 'a\r'],
        ['Allow?', 2, 'd\r'],
      ],
    );
    expect(pty.status).toBe(0);
    expect(pty.steps).toBe(2);
    const out = pty.transcript.replace(/\r\n/g, '\n');
    expect(out).toContain('\nonce parent=node\ns1=0\n');
    expect(out).toContain('  rule:     prefix_rule(["dash", "-c"], decision="prompt")');
    expect(out).toContain('  why:      needs a human');
    expect(out).toMatch(/denied: requires approval: .*; denied on the terminal\ns2=126\n/);
    expect(out).not.toMatch(/^never-ran$/m);
    // The second question only came after the first command ran.
    expect(pty.snapshots[1]).toContain('s1=0');
    const actions = readJsonLines(log).filter((l) => l.event === 'decision').map((l) => [l.action, l.approval]);
    expect(actions).toEqual([
      ['escalate', 'once'],
      ['deny', 'denied'],
    ]);
  });

  it('--approval tty: "allow for this session" is asked once for two identical execs', async () => {
    const pty = await onPty(
      [process.execPath, 'bin/codex-escalate.js', 'run', '--shell', patchedBash(), '--rules', promptRules, '--approval', 'tty', '--log-file', '/dev/null', '--',
        // Identical argv: "s" covers exactly the command shown (an argument that differs is asked about again).
        `for i in 1 2; do /bin/sh -c 'echo "same-$PPID"'; echo "i=$i"; done; printenv HOME; echo "printenv=$?"`],
      [
        ['Allow?', 1, 's\r'],
        ['Allow?', 2, 'd\r'], // another rule: asked again
      ],
    );
    expect(pty.status).toBe(0);
    expect(pty.steps).toBe(2);
    const out = pty.transcript.replace(/\r\n/g, '\n');
    expect(out).toMatch(/same-(\d+)\ni=1\nsame-\1\ni=2\n/);
    expect(count(out, 'Allow?')).toBe(2);
    // Both identical execs ran before the second question, which is about printenv.
    expect(pty.snapshots[1]).toContain('i=2');
    expect(out).toMatch(/command: {2}printenv HOME\n/);
    expect(out).toContain('printenv=126\n');
  });

  it('reload: a broken edit keeps the old policy, a good edit takes effect for the next exec', async () => {
    const t = targets(['t1', 't2', 't3']);
    // Out of the sandbox's reach (not the cwd, not /tmp): a rules file the sandbox can write is never reloaded.
    const rulesDir = mkdtempSync('/var/tmp/cse-e2e-rules-');
    const rules = path.join(rulesDir, 'live.rules');
    copyFileSync(policyRules, rules);
    const log = path.join(t.dir, 'audit.jsonl');
    for (const f of ['go1', 'go2']) execFileSync('mkfifo', [path.join(t.dir, f)]);
    // Editors save by rename: write aside, then move over the watched file.
    const edit = (text: string) => {
      writeFileSync(`${rules}.tmp`, text);
      renameSync(`${rules}.tmp`, rules);
    };
    const script = [
      `rm -rf ${sq(t.path('t1'))}; echo "first=$?"`,
      'read -r _ < go1',
      `rm -rf ${sq(t.path('t2'))}; echo "second=$?"`,
      'read -r _ < go2',
      `rm -rf ${sq(t.path('t3'))}; echo "third=$?"`,
      `touch ${sq(path.join(t.dir, 'touched'))}; echo "touch=$?"`,
    ].join('\n');
    const { child, result } = startCli(['run', '--shell', patchedBash(), '--rules', rules, '--log-file', log, '--cwd', t.dir, '--', script]);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stdin!.end();
    const events = () => readJsonLines(log).map((l) => l.event);

    await waitFor(() => stdout.includes('first=126\n'), 'the first rm to be denied');
    edit('prefix_rule(pattern = ["rm", "-rf"], decision = "forbidden"\n'); // unterminated call
    await waitFor(() => events().includes('rules_reload_failed'), 'the broken edit to be rejected');
    await writeFile(path.join(t.dir, 'go1'), 'go\n');
    await waitFor(() => stdout.includes('second='), 'the second rm');
    expect(stdout).toContain('second=126\n');
    expect(existsSync(path.join(t.path('t2'), 'keep'))).toBe(true);

    edit('prefix_rule(pattern = ["touch"], decision = "forbidden", justification = "read-only now")\n');
    await waitFor(() => events().includes('rules_reload'), 'the good edit to load');
    await writeFile(path.join(t.dir, 'go2'), 'go\n');
    const r = await result;
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('first=126\nsecond=126\nthird=0\ntouch=126\n');
    expect(existsSync(t.path('t1'))).toBe(true);
    expect(existsSync(t.path('t3'))).toBe(false);
    expect(existsSync(path.join(t.dir, 'touched'))).toBe(false);
    expect(r.stderr).toContain('codex-execve-wrapper: /usr/bin/touch: denied: read-only now\n');

    const lines = readJsonLines(log);
    const failed = lines.find((l) => l.event === 'rules_reload_failed')!;
    expect(String(failed.error)).toContain(`${rules}:`);
    const rm = lines.filter((l) => l.event === 'decision' && l.program === '/usr/bin/rm').map((l) => [l.action, l.justification ?? null]);
    expect(rm).toEqual([
      ['deny', 'no recursive deletes'],
      ['deny', 'no recursive deletes'],
      ['run', null],
    ]);
    expect(readFileSync(rules, 'utf8')).toContain('read-only now');
    rmSync(rulesDir, { recursive: true, force: true });
  });

  it('SIGHUP to `codex-escalate run` reloads the rules and the script keeps running', async () => {
    const t = targets(['t1', 't2']);
    execFileSync('mkfifo', [path.join(t.dir, 'go')]);
    const log = path.join(t.dir, 'audit.jsonl');
    const script = `rm -rf ${sq(t.path('t1'))}; echo "first=$?"; read -r _ < go; rm -rf ${sq(t.path('t2'))}; echo "second=$?"`;
    // Out of every sandbox-writable root wherever the checkout lives (a checkout under /tmp would make it read-once).
    const rulesDir = mkdtempSync('/var/tmp/cse-e2e-sighup-');
    const rules = path.join(rulesDir, 'policy.rules');
    copyFileSync(policyRules, rules);
    const { child, result } = startCli(['run', '--shell', patchedBash(), '--rules', rules, '--log-file', log, '--cwd', t.dir, '--', script]);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stdin!.end();
    await waitFor(() => stdout.includes('first=126\n'), 'the first rm to be denied');
    child.kill('SIGHUP');
    await waitFor(() => readJsonLines(log).some((l) => l.event === 'rules_reload'), 'the SIGHUP reload');
    const fed = writeFile(path.join(t.dir, 'go'), 'go\n');
    const r = await result;
    // If the shell died of the SIGHUP, nobody reads the fifo: be the reader so our write's open returns.
    const reader = openSync(path.join(t.dir, 'go'), fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    await fed;
    closeSync(reader);
    expect(r.stdout).toBe('first=126\nsecond=126\n');
    expect(r.code).toBe(0);
    expect(existsSync(path.join(t.path('t2'), 'keep'))).toBe(true);
    rmSync(rulesDir, { recursive: true, force: true });
  });
});

