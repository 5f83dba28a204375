/**
 * `tty` approver: asks on the server's controlling terminal (/dev/tty), not on
 * stdin/stdout (those may be pipes or the sandboxed shell's). One question at
 * a time: concurrent requests queue. No terminal, EOF, timeout or cancel → deny.
 *
 * The sandbox shares this terminal, so a question goes:
 *   1. freeze the session (ApprovalContext.freezer): nothing of it can read
 *      the user's keys, redraw the screen or change the terminal meanwhile;
 *   2. take the terminal over (our process group in the foreground, line
 *      mode with echo) and flush its input queue;
 *   3. draw the question, wait SETTLE_MS, flush again: keys typed ahead (or
 *      in the first moments of the question) never count as an answer;
 *   4. draw the prompt line and read the answer;
 *   5. give the terminal back and thaw, on every exit path.
 * A freeze that fails is a deny: no question is asked on a live sandbox.
 */
import { closeSync, openSync } from 'node:fs';
import { ttyFlushInput, ttyGiveBack, ttyTakeOver } from '../../native/index.js';
import { open, type FileHandle } from 'node:fs/promises';
import tty from 'node:tty';
import { shlexJoin } from '../rules/shlex.js';
import { requiresApprovalReason, type ApprovalContext, type ApprovalRequest, type ApprovalResult, type Approver } from './types.js';

export interface TtyApproverOptions {
  /** Terminal device to ask on (default /dev/tty, the controlling terminal). */
  readonly ttyPath?: string;
  /** Deny if nobody answers within this many ms (default: wait until cancelled). */
  readonly timeoutMs?: number;
  /** Input arriving within this many ms after the question is drawn is discarded (default SETTLE_MS). */
  readonly settleMs?: number;
}

/**
 * Keys typed within this long after the question appears are thrown away: a
 * human cannot have read it yet, so they were typed ahead (perhaps because the
 * sandbox told the user to) or meant for the program that was running.
 */
export const SETTLE_MS = 200;

/** argv comes from the sandbox: never let it put raw control sequences on the user's terminal. */
export function terminalSafe(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Written before each question: undoes display state the sandbox may have left
 * to hide or disguise it (concealed or fg=bg text, DEC graphics charset, insert
 * mode, a tiny scroll region, hidden cursor), then goes to the bottom line.
 */
export const TERMINAL_RESET = '\x1b(B\x1b[0m\x1b[4l\x1b[?7h\x1b[?25h\x1b[r\x1b[999;1H';

function question(req: ApprovalRequest): string {
  const lines = [
    TERMINAL_RESET,
    'codex-escalate: approval required',
    `  command:  ${terminalSafe(shlexJoin(req.argv))}`,
    `  program:  ${terminalSafe(req.program)}`,
    `  workdir:  ${terminalSafe(req.workdir)}`,
    `  rule:     ${terminalSafe(req.rule)}`,
  ];
  if (req.justification !== undefined) lines.push(`  why:      ${terminalSafe(req.justification)}`);
  lines.push('  [a] allow this command once');
  lines.push('  [s] allow exactly this command (same program, arguments and workdir) for this session');
  if (req.prefixScope !== undefined) lines.push(`  [p] allow all ${JSON.stringify(terminalSafe(prefixText(req.prefixScope)))} commands for this session`);
  lines.push('  [d] deny');
  return lines.join('\n') + '\n';
}

/** `touch …`: the words the prefix choice covers, then an ellipsis for "any arguments after". */
function prefixText(words: readonly string[]): string {
  return `${shlexJoin(words)} …`;
}

function promptLine(req: ApprovalRequest): string {
  return req.prefixScope !== undefined ? 'Allow? [a/s/p/d]: ' : 'Allow? [a/s/d]: ';
}

export function createTtyApprover(opts: TtyApproverOptions = {}): Approver {
  const ttyPath = opts.ttyPath ?? '/dev/tty';
  let queue: Promise<unknown> = Promise.resolve();
  return {
    approve(req, signal, ctx) {
      const run = (): Promise<ApprovalResult> => ask(req, signal, ctx ?? {}, ttyPath, opts.timeoutMs, opts.settleMs ?? SETTLE_MS);
      const p = queue.then(run, run);
      queue = p.catch(() => undefined);
      return p;
    },
  };
}

async function ask(
  req: ApprovalRequest,
  signal: AbortSignal,
  ctx: ApprovalContext,
  ttyPath: string,
  timeoutMs: number | undefined,
  settleMs: number,
): Promise<ApprovalResult> {
  const deny = (why: string): ApprovalResult => ({ decision: 'deny', reason: requiresApprovalReason(req, why) });
  if (signal.aborted) return deny('request cancelled');

  let out: FileHandle;
  let inFd: number;
  try {
    out = await open(ttyPath, 'w');
  } catch (err) {
    return deny(`no terminal to ask on (${ttyPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    // A plain descriptor (not a FileHandle): the ReadStream owns and closes it.
    inFd = openSync(ttyPath, 'r');
  } catch (err) {
    await out.close().catch(() => undefined);
    return deny(`no terminal to ask on (${ttyPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!tty.isatty(inFd)) {
    closeSync(inFd);
    await out.close().catch(() => undefined);
    return deny(`no terminal to ask on (${ttyPath} is not a terminal)`);
  }

  const freezer = ctx.freezer;
  if (freezer !== undefined) {
    try {
      await freezer.freeze();
    } catch (err) {
      closeSync(inFd);
      await out.close().catch(() => undefined);
      return deny((err as Error).message);
    }
  }
  let saved: Buffer | undefined;
  let input: tty.ReadStream | undefined;
  const write = (s: string): Promise<unknown> => out.write(s).catch(() => undefined);
  try {
    try {
      saved = ttyTakeOver(inFd);
      ttyFlushInput(inFd);
    } catch (err) {
      return deny(`could not prepare the terminal: ${(err as Error).message}`);
    }
    if (signal.aborted) return deny('request cancelled');
    await write(question(req));
    // Whatever arrives while the question is fresh is discarded (typed ahead, not an answer to it).
    await new Promise((r) => setTimeout(r, settleMs));
    try {
      ttyFlushInput(inFd);
    } catch (err) {
      return deny(`could not prepare the terminal: ${(err as Error).message}`);
    }
    if (signal.aborted) return deny('request cancelled');
    // tty.ReadStream reads without blocking a thread, so a cancel can stop it.
    const reader = new tty.ReadStream(inFd);
    input = reader;
    const prompt = promptLine(req);
    await write(prompt);
    return await new Promise<ApprovalResult>((resolve) => {
      let buf = '';
      let timer: NodeJS.Timeout | undefined;
      const finish = (r: ApprovalResult, note?: string): void => {
        reader.removeAllListeners('data');
        reader.removeAllListeners('end');
        signal.removeEventListener('abort', onAbort);
        if (timer !== undefined) clearTimeout(timer);
        const done = note !== undefined ? write(`\n${note}\n`) : Promise.resolve();
        void done.then(() => resolve(r));
      };
      const onAbort = (): void => finish(deny('request cancelled'), '(cancelled: the requesting process went away)');
      signal.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => finish(deny(`no answer within ${timeoutMs} ms`), '(timed out: denied)'), timeoutMs);
      }
      reader.on('end', () => finish(deny('terminal closed before an answer'), '(no answer: denied)'));
      reader.on('error', () => finish(deny('terminal read failed')));
      reader.on('data', (chunk: Buffer | string) => {
        buf += chunk.toString();
        let nl: number;
        while ((nl = buf.search(/[\r\n]/)) >= 0) {
          const answer = buf.slice(0, nl).trim().toLowerCase();
          buf = buf.slice(nl + 1);
          if (answer === 'a' || answer === 'allow' || answer === 'y' || answer === 'yes' || answer === 'once') {
            finish({ decision: 'allow', scope: 'once', reason: 'approved once on the terminal' });
            return;
          }
          if (answer === 's' || answer === 'session') {
            finish({ decision: 'allow', scope: 'session', reason: 'approved for this session on the terminal' });
            return;
          }
          if ((answer === 'p' || answer === 'prefix') && req.prefixScope !== undefined) {
            finish({ decision: 'allow', scope: 'prefix', reason: `approved for this session on the terminal: all ${JSON.stringify(prefixText(req.prefixScope))} commands` });
            return;
          }
          if (answer === 'd' || answer === 'deny' || answer === 'n' || answer === 'no') {
            finish(deny('denied on the terminal'));
            return;
          }
          void write(prompt);
        }
      });
    });
  } finally {
    if (input !== undefined) input.destroy();
    else closeSync(inFd);
    if (saved !== undefined) {
      try {
        // The ReadStream may have closed inFd already: give back through the output descriptor (same terminal).
        ttyGiveBack(out.fd, saved);
      } catch {
        // The terminal went away.
      }
    }
    await out.close().catch(() => undefined);
    if (freezer !== undefined) await freezer.thaw();
  }
}
