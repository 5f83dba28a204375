/**
 * The human in the loop, attacked from the sandbox that shares the terminal:
 * the real CLI (`codex-escalate run --approval tty`) on a real pseudo-terminal,
 * with the real bwrap sandbox and with --sandbox none, with cgroup v2 and with
 * the signal fallback (CODEX_ESCALATE_CGROUP=off). `touch` needs approval; an
 * approved touch runs outside the sandbox, so its proof file under /var/tmp
 * appearing means it was escalated (inside bwrap /var/tmp is read-only).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TERMINAL_RESET } from '../../src/policy/approval/index.js';
import { packageRoot } from '../../src/paths.js';
import { cliEnv, cliPath, readJsonLines, sq } from '../helpers/e2e.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { requireSandbox, requireTool } from '../helpers/tools.js';

type Step = { wait: string; count?: number } | { write: string } | { sleep: number } | { snap: string };
interface PtyResult {
  readonly transcript: string;
  readonly status: number;
  readonly steps: number;
  readonly snaps: Record<string, string>;
  readonly timedOut: boolean;
}

const driver = path.join(packageRoot, 'test', 'fixtures', 'approval', 'pty-steps.py');

async function onPty(argv: readonly string[], steps: readonly Step[], opts: { env?: NodeJS.ProcessEnv; cwd: string; timeoutS?: number }): Promise<PtyResult> {
  const child = spawn('python3', [driver, ...argv], {
    env: { ...(opts.env ?? cliEnv()), STEPS: JSON.stringify(steps), PTY_TIMEOUT: String(opts.timeoutS ?? 30) },
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  try {
    const r = JSON.parse(out) as PtyResult;
    return { ...r, transcript: r.transcript.replace(/\r\n/g, '\n') };
  } catch {
    throw new Error(`pty driver failed (status ${String(code)}): ${err || out}`);
  }
}

const proofs: string[] = [];
function proof(name: string): string {
  const p = `/var/tmp/cse-approval-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  proofs.push(p);
  return p;
}
afterEach(() => {
  for (const p of proofs.splice(0)) rmSync(p, { force: true });
});

const count = (s: string, needle: string): number => s.split(needle).length - 1;
const QUESTION = 'codex-escalate: approval required';

interface Mode {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly containment: 'cgroup2' | 'signals';
}
const MODES: readonly Mode[] = [
  { name: 'bwrap, cgroup v2', args: ['--sandbox', 'bwrap'], env: {}, containment: 'cgroup2' },
  { name: 'bwrap, signal fallback', args: ['--sandbox', 'bwrap'], env: { CODEX_ESCALATE_CGROUP: 'off' }, containment: 'signals' },
  { name: 'none, cgroup v2', args: ['--sandbox', 'none'], env: {}, containment: 'cgroup2' },
  { name: 'none, signal fallback', args: ['--sandbox', 'none'], env: { CODEX_ESCALATE_CGROUP: 'off' }, containment: 'signals' },
];

/** A working directory with the rules file; returns the CLI argv for SCRIPT. */
function setup(mode: Mode, script: string, extra: readonly string[] = [], rules = 'prefix_rule(pattern = ["touch"], decision = "prompt")\n') {
  const dir = tempDir('cse-approval-');
  const rulesFile = path.join(dir, 'touch.rules');
  writeFileSync(rulesFile, rules);
  const log = path.join(dir, 'audit.jsonl');
  const argv = [process.execPath, cliPath, 'run', '--shell', patchedBash(), '--rules', rulesFile, '--approval', 'tty', '--log-file', log, ...mode.args, ...extra, '--', script];
  return { dir, log, argv, env: cliEnv(mode.env) };
}

/** The decisions that were not a plain Run (sleep, stty ... run in place). */
function decisions(log: string): Record<string, unknown>[] {
  return readJsonLines(log).filter((l) => l.event === 'decision' && l.action !== 'run');
}

describe.each(MODES)('tty approval with the sandbox on the same terminal ($name)', (mode) => {
  requireSandbox(mode.args[1]!);
  it('finding 1: a typed-ahead "a⏎" does not answer the question; it waits for a real answer', async () => {
    const p = proof('typeahead-a');
    const s = setup(mode, `echo "press a then Enter to accept the licence"; sleep 2; touch ${sq(p)}; echo "touch=$?"`);
    const r = await onPty(
      s.argv,
      [{ wait: 'press a then Enter' }, { sleep: 0.8 }, { write: 'a\r' }, { wait: 'Allow?' }, { sleep: 1.0 }, { snap: 'waiting' }, { write: 'd\r' }, { wait: 'touch=' }],
      { cwd: s.dir, env: s.env },
    );
    expect(r.timedOut).toBe(false);
    expect(r.steps).toBe(8);
    // A second after the question: still unanswered, nothing escalated.
    expect(r.snaps['waiting']).not.toContain('touch=');
    expect(existsSync(p)).toBe(false);
    expect(r.transcript).toMatch(/denied on the terminal\ntouch=126\n/);
    expect(decisions(s.log).map((d) => [d.action, d.approval])).toEqual([['deny', 'denied']]);
    expect(readJsonLines(s.log).find((l) => l.event === 'session_start')?.containment).toBe(mode.containment);
  }, 60_000);

  it('finding 1: a typed-ahead "s⏎" does not approve the session; keys typed just after the question appears are dropped too', async () => {
    const p = proof('typeahead-s');
    const s = setup(mode, `echo ready; sleep 1; touch ${sq(p)}; echo "first=$?"; touch ${sq(p)}; echo "second=$?"`);
    const r = await onPty(
      s.argv,
      [
        { wait: 'ready' },
        { write: 's\r' }, // typed ahead, while the script sleeps
        { wait: QUESTION },
        { write: 'a\r' }, // within the settle time: not an answer either
        { wait: 'Allow?' },
        { sleep: 0.8 },
        { snap: 'waiting' },
        { write: 'a\r' }, // the real answer: once
        { wait: QUESTION, count: 2 }, // asked again: the "s" never counted
        { wait: 'Allow?', count: 2 },
        { write: 'd\r' },
        { wait: 'second=' },
      ],
      { cwd: s.dir, env: s.env },
    );
    expect(r.timedOut).toBe(false);
    expect(r.steps).toBe(12);
    expect(r.snaps['waiting']).not.toContain('first=');
    expect(r.transcript).toContain('first=0\n');
    expect(r.transcript).toContain('second=126\n');
    expect(existsSync(p)).toBe(true);
    expect(count(r.transcript, QUESTION)).toBe(2);
    expect(decisions(s.log).map((d) => [d.action, d.approval])).toEqual([
      ['escalate', 'once'],
      ['deny', 'denied'],
    ]);
  }, 60_000);

  it('finding 2b: a background reader in the sandbox gets none of the keys typed while the question is up; the answer reaches the approver', async () => {
    const p = proof('reader');
    const s = setup(
      mode,
      [
        `( stty -echo </dev/tty; while read -r l </dev/tty; do printf '%s\\n' "$l" >> stolen.txt; done ) &`,
        'reader=$!',
        'sleep 1',
        `touch ${sq(p)}; echo "touch=$?"`,
        'kill $reader; stty echo </dev/tty',
      ].join('\n'),
    );
    const r = await onPty(s.argv, [{ wait: 'Allow?' }, { sleep: 0.5 }, { write: 'a\r' }, { wait: 'touch=' }], { cwd: s.dir, env: s.env });
    expect(r.timedOut).toBe(false);
    expect(r.transcript).toContain('touch=0\n');
    expect(existsSync(p)).toBe(true);
    const stolen = path.join(s.dir, 'stolen.txt');
    expect(existsSync(stolen) ? readFileSync(stolen, 'utf8') : '').toBe('');
    // The sandbox turned echo off; during the question it is back on, so the user sees the answer typed.
    expect(r.transcript).toMatch(/Allow\? \[a\/s\/p\/d\]: a\n/);
  }, 60_000);

  it('finding 2a: a sandbox redrawing the screen every 50 ms prints nothing between the question and the answer', async () => {
    const p = proof('redraw');
    const s = setup(
      mode,
      [
        // Cursor up, clear to the end of the screen, a fake question.
        `( while :; do printf '\\033[3A\\033[JMARK fake: touch harmless\\n'; sleep 0.05; done ) &`,
        'loop=$!',
        'sleep 1',
        `touch ${sq(p)}; echo "touch=$?"`,
        'kill $loop',
      ].join('\n'),
    );
    const r = await onPty(s.argv, [{ wait: 'MARK', count: 3 }, { wait: 'Allow?' }, { sleep: 1.0 }, { snap: 'answering' }, { write: 'a\r' }, { wait: 'touch=' }], {
      cwd: s.dir,
      env: s.env,
    });
    expect(r.timedOut).toBe(false);
    const snap = r.snaps['answering'] ?? '';
    const at = snap.lastIndexOf(QUESTION);
    expect(at).toBeGreaterThan(0);
    expect(snap.slice(0, at)).toContain('MARK'); // the loop was live before the question
    expect(snap.slice(at)).not.toContain('MARK'); // and silent for the whole second the question was up
    expect(snap.slice(at)).not.toContain('\x1b[3A');
    expect(r.transcript).toContain('touch=0\n');
    expect(existsSync(p)).toBe(true);
  }, 60_000);
});

describe('what "allow for this session" covers (--approval tty, bwrap)', () => {
  requireTool('bwrap');
  const mode = MODES[0]!;

  it('finding 3: with --default prompt, "s" on `python3 --version` does not cover `python3 -c ...`; no prefix choice is offered', async () => {
    const p = proof('python');
    const s = setup(mode, `python3 --version; python3 --version; python3 -c "open('${p}','w')"; echo "py=$?"`, ['--default', 'prompt'], '');
    const r = await onPty(
      s.argv,
      [{ wait: 'Allow?' }, { snap: 'q1' }, { write: 's\r' }, { wait: QUESTION, count: 2 }, { wait: 'Allow?', count: 2 }, { snap: 'q2' }, { write: 'd\r' }, { wait: 'py=' }],
      { cwd: s.dir, env: s.env },
    );
    expect(r.timedOut).toBe(false);
    expect(r.transcript).toContain('py=126\n');
    expect(existsSync(p)).toBe(false);
    // The identical second `python3 --version` ran without a question; the -c one was asked about.
    expect(count(r.transcript, 'Python 3.')).toBe(2);
    expect(count(r.transcript, QUESTION)).toBe(2);
    expect((r.snaps['q2'] ?? '').slice((r.snaps['q2'] ?? '').lastIndexOf(QUESTION))).toContain(`python3 -c`);
    const q1 = r.snaps['q1'] ?? '';
    expect(q1).toContain('[s] allow exactly this command (same program, arguments and workdir) for this session');
    expect(q1).not.toContain('[p]');
    expect(q1).toContain('Allow? [a/s/d]: ');
    expect(decisions(s.log).map((d) => [d.action, d.approval])).toEqual([
      ['escalate', 'session'],
      ['escalate', 'session'],
      ['deny', 'denied'],
    ]);
  }, 60_000);

  it('finding 3: "s" covers the exact command only; "p" covers every "touch …" for the session and the question names it', async () => {
    const a = proof('exact-a');
    const b = proof('exact-b');
    const s = setup(mode, `touch ${sq(a)}; touch ${sq(a)}; echo "again=$?"; touch ${sq(b)}; echo "other=$?"`);
    const r = await onPty(s.argv, [{ wait: 'Allow?' }, { write: 's\r' }, { wait: 'Allow?', count: 2 }, { write: 'd\r' }, { wait: 'other=' }], { cwd: s.dir, env: s.env });
    expect(r.transcript).toContain('again=0\n');
    expect(r.transcript).toContain('other=126\n');
    expect(count(r.transcript, QUESTION)).toBe(2);
    expect(existsSync(a)).toBe(true);
    expect(existsSync(b)).toBe(false);

    const c = proof('prefix-c');
    const d = proof('prefix-d');
    const s2 = setup(mode, `touch ${sq(c)}; touch -m ${sq(d)}; echo "prefix=$?"`);
    const r2 = await onPty(s2.argv, [{ wait: 'Allow?' }, { snap: 'q' }, { write: 'p\r' }, { wait: 'prefix=' }], { cwd: s2.dir, env: s2.env });
    expect(r2.snaps['q']).toContain('[p] allow all "touch …" commands for this session');
    expect(r2.snaps['q']).toContain('Allow? [a/s/p/d]: ');
    expect(r2.transcript).toContain('prefix=0\n');
    expect(count(r2.transcript, QUESTION)).toBe(1);
    expect(existsSync(c) && existsSync(d)).toBe(true);
    expect(decisions(s2.log).map((x) => x.approval)).toEqual(['prefix', 'prefix']);
  }, 60_000);
});

describe('the sandbox prepares the terminal before the question (--approval tty, bwrap)', () => {
  requireTool('bwrap');
  const mode = MODES[0]!;

  it('variant: the sandbox takes the terminal\'s foreground (set -m): the approver takes it back and gets the answer', async () => {
    const p = proof('setm');
    const s = setup(mode, `set -m; touch ${sq(p)}; echo "touch=$?"`);
    const r = await onPty(s.argv, [{ wait: 'Allow?' }, { sleep: 0.3 }, { write: 'a\r' }, { wait: 'touch=' }], { cwd: s.dir, env: s.env, timeoutS: 20 });
    expect(r.timedOut).toBe(false);
    expect(r.transcript).toContain('touch=0\n');
    expect(existsSync(p)).toBe(true);
  }, 60_000);

  it('variant: the sandbox suspends terminal output (tcflow TCOOFF): the question is still drawn and answered', async () => {
    const p = proof('tcooff');
    const s = setup(mode, `python3 -c 'import os, termios; termios.tcflow(os.open("/dev/tty", os.O_RDWR), termios.TCOOFF)'; touch ${sq(p)}; echo "touch=$?"`);
    const r = await onPty(s.argv, [{ wait: 'Allow?' }, { write: 'a\r' }, { wait: 'touch=' }], { cwd: s.dir, env: s.env, timeoutS: 20 });
    expect(r.timedOut).toBe(false);
    expect(r.transcript).toContain('touch=0\n');
    expect(existsSync(p)).toBe(true);
  }, 60_000);

  it('variant: concealed text, graphics charset and a scroll region set by the sandbox are reset before the question is drawn', async () => {
    const p = proof('conceal');
    // Conceal + black on black, DEC line drawing, a 2-line scroll region at the top.
    const s = setup(mode, `printf '\\033[8m\\033[30;40m\\033(0\\033[1;2r'; touch ${sq(p)}; echo "touch=$?"`);
    const r = await onPty(s.argv, [{ wait: 'Allow?' }, { write: 'd\r' }, { wait: 'touch=' }], { cwd: s.dir, env: s.env });
    const at = r.transcript.indexOf(QUESTION);
    expect(r.transcript.slice(0, at)).toContain('\x1b[8m');
    expect(r.transcript.slice(0, at)).toMatch(new RegExp(`${TERMINAL_RESET.replace(/[[\]()?]/g, '\\$&')}\n$`));
    expect(r.transcript).toContain('touch=126\n');
    expect(existsSync(p)).toBe(false);
  }, 60_000);
});
