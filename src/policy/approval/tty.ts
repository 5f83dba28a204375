/**
 * `tty` approver: asks on the server's controlling terminal (/dev/tty), not on
 * stdin/stdout (those may be pipes or the sandboxed shell's). One question at
 * a time: concurrent requests queue. No terminal, EOF, timeout or cancel → deny.
 */
import { closeSync, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import tty from 'node:tty';
import { shlexJoin } from '../rules/shlex.js';
import { requiresApprovalReason, type ApprovalRequest, type ApprovalResult, type Approver } from './types.js';

export interface TtyApproverOptions {
  /** Terminal device to ask on (default /dev/tty, the controlling terminal). */
  readonly ttyPath?: string;
  /** Deny if nobody answers within this many ms (default: wait until cancelled). */
  readonly timeoutMs?: number;
}

/** argv comes from the sandbox: never let it put raw control sequences on the user's terminal. */
export function terminalSafe(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function question(req: ApprovalRequest): string {
  const lines = [
    '',
    'codex-escalate: approval required',
    `  command:  ${terminalSafe(shlexJoin(req.argv))}`,
    `  program:  ${terminalSafe(req.program)}`,
    `  workdir:  ${terminalSafe(req.workdir)}`,
    `  rule:     ${terminalSafe(req.rule)}`,
  ];
  if (req.justification !== undefined) lines.push(`  why:      ${terminalSafe(req.justification)}`);
  return lines.join('\n') + '\n';
}

const PROMPT = 'Allow? [a]llow once / allow for this [s]ession / [d]eny: ';

export function createTtyApprover(opts: TtyApproverOptions = {}): Approver {
  const ttyPath = opts.ttyPath ?? '/dev/tty';
  let queue: Promise<unknown> = Promise.resolve();
  return {
    approve(req, signal) {
      const run = (): Promise<ApprovalResult> => ask(req, signal, ttyPath, opts.timeoutMs);
      const p = queue.then(run, run);
      queue = p.catch(() => undefined);
      return p;
    },
  };
}

async function ask(req: ApprovalRequest, signal: AbortSignal, ttyPath: string, timeoutMs: number | undefined): Promise<ApprovalResult> {
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

  // tty.ReadStream reads without blocking a thread, so a cancel can stop it.
  const input = new tty.ReadStream(inFd);
  const write = (s: string): Promise<unknown> => out.write(s).catch(() => undefined);

  try {
    await write(question(req) + PROMPT);
    return await new Promise<ApprovalResult>((resolve) => {
      let buf = '';
      let timer: NodeJS.Timeout | undefined;
      const finish = (r: ApprovalResult, note?: string): void => {
        input.removeAllListeners('data');
        input.removeAllListeners('end');
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
      input.on('end', () => finish(deny('terminal closed before an answer'), '(no answer: denied)'));
      input.on('error', () => finish(deny('terminal read failed')));
      input.on('data', (chunk: Buffer | string) => {
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
          if (answer === 'd' || answer === 'deny' || answer === 'n' || answer === 'no') {
            finish(deny('denied on the terminal'));
            return;
          }
          void write(PROMPT);
        }
      });
    });
  } finally {
    input.destroy();
    await out.close().catch(() => undefined);
  }
}
