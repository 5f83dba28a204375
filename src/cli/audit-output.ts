/**
 * Where `run` writes its audit: a file (checked before anything runs), stdout
 * (`--log-file -`) or stderr. On a terminal, one short line per decision
 * instead of pino's multi-line pretty print; JSON lines everywhere else.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import pino from 'pino';
import { createAuditLogger, escapeForTerminal, type AuditLogger } from '../server/audit-log.js';
import { quoteCommandLine } from './command-line.js';
import { CliError } from './errors.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `--log-file -`: the audit goes to stdout. */
export const LOG_TO_STDOUT = '-';

export interface AuditOutputOptions {
  readonly logFile?: string | undefined;
  readonly logLevel?: LogLevel | undefined;
  /** No info lines on the terminal (stderr / stdout): warnings and errors only. A --log-file still gets everything. */
  readonly quiet?: boolean | undefined;
  /** An unwritable --log-file is a warning (the audit goes to stderr) instead of an error. */
  readonly logFileOptional?: boolean | undefined;
}

export interface AuditOutput {
  readonly logger: AuditLogger;
  /** The audit goes to a file (warnings are then also written there). */
  readonly toFile: boolean;
}

const LEVEL_VALUE: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

function hhmmss(time: unknown): string {
  const d = typeof time === 'string' || typeof time === 'number' ? new Date(time) : new Date();
  return Number.isNaN(d.getTime()) ? '--:--:--' : d.toTimeString().slice(0, 8);
}

/** One line of the terminal view, or undefined to leave the record out. */
export function terminalLine(rec: Record<string, unknown>, showInfo: boolean): string | undefined {
  const level = typeof rec['level'] === 'number' ? rec['level'] : LEVEL_VALUE.info!;
  const msg = escapeForTerminal(typeof rec['msg'] === 'string' ? rec['msg'] : '');
  if (rec['event'] === 'decision') {
    const argv = Array.isArray(rec['argv']) ? rec['argv'].map(String) : [];
    const program = typeof rec['program'] === 'string' ? rec['program'] : '?';
    const shown = escapeForTerminal(quoteCommandLine([program, ...argv.slice(1)]));
    const reason = typeof rec['reason'] === 'string' && rec['reason'] !== '' ? ` (${escapeForTerminal(rec['reason'])})` : '';
    return `${hhmmss(rec['time'])} ${String(rec['action']).padEnd(8)} ${shown}${reason}`;
  }
  if (level >= LEVEL_VALUE.error!) return `${hhmmss(rec['time'])} error    ${msg}${typeof rec['error'] === 'string' ? `: ${escapeForTerminal(rec['error'])}` : ''}`;
  if (level >= LEVEL_VALUE.warn!) return `${hhmmss(rec['time'])} warning  ${msg}`;
  // Lifecycle lines (session start/end, exits, hooks loaded) only when asked for with --log-level debug or trace.
  return showInfo ? `${hhmmss(rec['time'])} ${msg}` : undefined;
}

/** A pino destination printing terminalLine() of each record to fd, synchronously (lines stay in order with the script's output). */
export function terminalDestination(fd: number, showInfo: boolean): pino.DestinationStream {
  return {
    write(line: string) {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      const text = terminalLine(rec, showInfo);
      if (text !== undefined) writeSync(fd, `${text}\n`);
    },
  };
}

/** The audit logger for `run`; an unwritable --log-file is a CliError (125) unless --log-file-optional. */
export function openAuditOutput(o: AuditOutputOptions, isTty: (fd: number) => boolean = defaultIsTty): AuditOutput {
  const level: LogLevel = o.logLevel ?? 'info';
  let file = o.logFile;
  if (file !== undefined && file !== LOG_TO_STDOUT) {
    try {
      // Opened (and created) now: a security tool must not find out mid-run that its audit goes nowhere.
      closeSync(openSync(file, 'a'));
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (!o.logFileOptional) throw new CliError(`--log-file ${file}: cannot write (${why}); nothing was run (--log-file-optional to run anyway with the audit on stderr)`, undefined, { cause: err });
      process.stderr.write(`codex-escalate: warning: --log-file ${file}: cannot write (${why}); the audit goes to stderr\n`);
      file = undefined;
    }
    if (file !== undefined) return { logger: createAuditLogger({ file, level }), toFile: true };
  }
  const fd = file === LOG_TO_STDOUT ? 1 : 2;
  // --quiet: the terminal (or the pipe) gets warnings and errors only, unless a level was asked for.
  const termLevel: LogLevel = o.logLevel ?? (o.quiet ? 'warn' : 'info');
  if (isTty(fd)) {
    const showInfo = LEVEL_VALUE[termLevel] !== undefined && LEVEL_VALUE[termLevel] < LEVEL_VALUE.info!;
    return { logger: createAuditLogger({ level: termLevel, destination: terminalDestination(fd, showInfo) }), toFile: false };
  }
  return { logger: createAuditLogger({ level: termLevel, destination: pino.destination({ dest: fd, sync: false }) }), toFile: false };
}

function defaultIsTty(fd: number): boolean {
  return fd === 1 ? Boolean(process.stdout.isTTY) : Boolean(process.stderr.isTTY);
}
