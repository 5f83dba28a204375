import { createWriteStream } from 'node:fs';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type AuditLogger = Logger;

export interface AuditLogOptions {
  /** Append JSON lines to this file; otherwise write to stderr. */
  readonly file?: string | undefined;
  /** Pretty-print for humans (default: when writing to a terminal). */
  readonly pretty?: boolean | undefined;
  readonly level?: pino.LevelWithSilent | undefined;
}

/**
 * One structured line per decision (plus lifecycle and error lines). A log
 * file that cannot be written must not stop decisions: the error is reported
 * once on stderr and the lines are dropped.
 */
export function createAuditLogger(opts: AuditLogOptions = {}): AuditLogger {
  const level = opts.level ?? 'info';
  const base = { base: null, timestamp: pino.stdTimeFunctions.isoTime, level } as const;
  if (opts.file) {
    const stream = createWriteStream(opts.file, { flags: 'a' });
    let reported = false;
    stream.on('error', (err) => {
      if (reported) return;
      reported = true;
      process.stderr.write(`codex-escalate: audit log ${opts.file} is not writable (${err.message}); decisions continue without it\n`);
    });
    return pino(base, stream);
  }
  const usePretty = opts.pretty ?? Boolean(process.stderr.isTTY);
  if (usePretty) {
    return pino(base, pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/** A logger that writes nothing (library default when the caller passes none). */
export function silentLogger(): AuditLogger {
  return pino({ level: 'silent' });
}
