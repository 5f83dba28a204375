import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, createWriteStream, fstatSync, openSync, writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import { wireStringToBytes } from '../protocol/codec.js';

export type AuditLogger = Logger;

export interface AuditLogOptions {
  /** Append JSON lines to this file; otherwise write to stderr. */
  readonly file?: string | undefined;
  /** Pretty-print for humans (default: when writing to a terminal). */
  readonly pretty?: boolean | undefined;
  readonly level?: pino.LevelWithSilent | undefined;
  /** Write the lines here instead (the CLI's stdout or its one-line terminal view); `file` and `pretty` are then ignored. */
  readonly destination?: pino.DestinationStream | undefined;
}

// C0/C1 controls (newline, ESC...), DEL, Unicode line breaks and bidi overrides, lone surrogates (escaped non-UTF-8 bytes).
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A message as one visible line: a program named "x\n[12:00] INFO: ..." or
 * carrying terminal escapes cannot print fake log lines or repaint the
 * terminal. Escaped bytes (\udcXX) show as \xXX.
 */
export function escapeForTerminal(s: string): string {
  if (!UNSAFE.test(s)) return s;
  return s.replace(UNSAFE_ALL, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    if (code >= 0xdc80 && code <= 0xdcff) return `\\x${(code - 0xdc00).toString(16).padStart(2, '0')}`;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * Every message goes through here, for every destination: the human-readable
 * text is escaped in one place; structured fields are left alone (JSON and
 * pino-pretty already print them escaped).
 */
const hooks: pino.LoggerOptions['hooks'] = {
  logMethod(args, method) {
    const out: unknown[] = args.map((a) => (typeof a === 'string' ? escapeForTerminal(a) : a));
    // logger.error(err) takes err.message as the message: pass it explicitly so it is escaped too.
    if (out.length === 1 && out[0] instanceof Error) out.push(escapeForTerminal(out[0].message));
    method.apply(this, out as Parameters<typeof method>);
  },
  // pino writes short strings unescaped, so a lone surrogate (a non-UTF-8 byte from the wire, e.g. in `file`
  // or `pipeline`) would reach the file as U+FFFD. Inside the line it can only stand in a JSON string, where
  // its \uXXXX escape means the same: what JSON.stringify writes for argv.
  streamWrite(line) {
    return line.isWellFormed() ? line : line.replace(LONE_SURROGATE, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  },
};
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

let minuteStart = NaN;
let minutePrefix = '';

/**
 * pino's `stdTimeFunctions.isoTime` (`,"time":"2026-12-02T03:04:05.678Z"`),
 * with the date up to the minute formatted once a minute: a Date and its
 * toISOString per line were a measurable part of a decision's audit cost.
 * Outside years 0000–9999 (where toISOString changes shape) it is the Date.
 */
export function isoTime(now: number = Date.now()): string {
  const inMinute = now - minuteStart;
  if (!(inMinute >= 0 && inMinute < 60_000)) {
    if (!(now >= 0 && now < 253402300740000)) return `,"time":"${new Date(now).toISOString()}"`;
    minuteStart = now - (now % 60_000);
    minutePrefix = `,"time":"${new Date(minuteStart).toISOString().slice(0, 17)}`;
    return isoTime(now);
  }
  const sec = Math.floor(inMinute / 1000);
  const ms = inMinute % 1000;
  return `${minutePrefix}${sec < 10 ? '0' : ''}${sec}.${ms < 100 ? (ms < 10 ? '00' : '0') : ''}${ms}Z"`;
}

/**
 * One structured line per decision (plus lifecycle and error lines). A log
 * file that cannot be written must not stop decisions: the error is reported
 * once on stderr and the lines are dropped.
 */
export function createAuditLogger(opts: AuditLogOptions = {}): AuditLogger {
  const level = opts.level ?? 'info';
  const base = { base: null, timestamp: isoTime, level, hooks } as const;
  if (opts.destination) return pino(base, opts.destination);
  if (opts.file) {
    const file = opts.file;
    const notWritable = (err: Error) => process.stderr.write(`codex-escalate: audit log ${file} is not writable (${err.message}); decisions continue without it\n`);
    const direct = openRegularFile(file);
    if (direct !== undefined) return pino(base, new RegularFileDestination(direct, notWritable));
    const stream = createWriteStream(file, { flags: 'a' });
    let reported = false;
    stream.on('error', (err) => {
      if (reported) return;
      reported = true;
      notWritable(err);
    });
    // pino's logger.flush(cb) calls this: an empty write completes after every line before it (writes are ordered).
    // A file that cannot be written has nothing to wait for: its error was reported above.
    Object.assign(stream, { flush: (cb: (err?: Error) => void) => stream.write('', () => cb()) });
    return pino(base, stream);
  }
  const usePretty = opts.pretty ?? Boolean(process.stderr.isTTY);
  if (usePretty) {
    // Required only for a terminal (pino-pretty and its dependencies are a large load); it is CommonJS, so synchronously.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/**
 * The fd of `file` opened for appending when it is (or is created as) a
 * regular file, else undefined: a FIFO, a pipe (/dev/fd/N) or a device goes
 * through the stream, whose writes may block without holding up decisions.
 * O_NONBLOCK only so that opening a FIFO without a reader fails at once
 * instead of blocking; it means nothing for a regular file.
 */
function openRegularFile(file: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NONBLOCK, 0o666);
  } catch {
    return undefined; // the stream opens it again and reports why it cannot
  }
  try {
    if (fstatSync(fd).isFile()) return fd;
  } catch {
    // fall through: not usable directly
  }
  closeSync(fd);
  return undefined;
}

/**
 * Audit lines appended to a regular file with one write(2) each, on the
 * calling thread. The asynchronous stream cost every decision a thread-pool
 * round trip (a second wake-up of the event loop for its completion, ~100 µs
 * of server CPU); a write to a regular file does not block on a reader, and
 * each line is in the file (page cache) before the next decision, so nothing
 * is buffered in this process to lose or flush. A failed write is reported
 * once and the lines are dropped, as with the stream.
 */
class RegularFileDestination {
  #failed = false;
  constructor(
    private readonly fd: number,
    private readonly failed: (err: Error) => void,
  ) {}

  write(line: string): boolean {
    if (this.#failed) return true;
    try {
      const n = writeSync(this.fd, line);
      // Short only on a full disk or an exotic filesystem: write the rest (or fail on it) byte-exactly.
      if (n !== Buffer.byteLength(line)) this.#writeRest(Buffer.from(line, 'utf8'), n);
    } catch (err) {
      this.#failed = true;
      this.failed(err as Error);
    }
    return true;
  }

  #writeRest(bytes: Buffer, from: number): void {
    for (let off = from; off < bytes.length; ) off += writeSync(this.fd, bytes, off);
  }

  /** pino's logger.flush(cb): every line is already written. */
  flush(cb: (err?: Error) => void): void {
    cb();
  }
}

/**
 * Resolves once every line logged so far has been written (to the file or
 * stderr): what a caller, or a test, reads next includes them.
 */
export function flushAuditLog(logger: AuditLogger): Promise<void> {
  return new Promise((resolve, reject) => logger.flush((err) => (err ? reject(new Error('audit log flush failed', { cause: err })) : resolve())));
}

/** A logger that writes nothing (library default when the caller passes none). */
export function silentLogger(): AuditLogger {
  return pino({ level: 'silent' });
}

/**
 * Bounds on what one audit line repeats of a request: an element longer than
 * AUDIT_ELEMENT_CHARS is cut, and elements stop once AUDIT_TOTAL_CHARS have
 * been shown. The line then carries `<key>_truncated` with the exact size and
 * sha256 of the whole list and of each cut element, so the log stays small
 * while still identifying exactly what ran.
 */
export const AUDIT_ELEMENT_CHARS = 4096;
export const AUDIT_TOTAL_CHARS = 64 * 1024;

export interface TruncationNote {
  /** Elements in the list, and how many the line shows. */
  readonly elements: number;
  readonly shown: number;
  /** Bytes of the list as execve sees it: each element followed by a NUL. */
  readonly bytes: number;
  /** sha256 of those bytes. */
  readonly sha256: string;
  /** Elements shown cut short: index, full size in bytes, sha256 of the element. */
  readonly cut: readonly { readonly index: number; readonly bytes: number; readonly sha256: string }[];
}

function exactBytes(s: string): Buffer {
  try {
    return wireStringToBytes(s);
  } catch {
    return Buffer.from(s, 'utf8'); // unproducible (lone high surrogate): hash what we can
  }
}

/** Cut at n UTF-16 units without splitting a surrogate pair. */
function clipChars(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

/** `{ [key]: items }` when small (the usual case: one pass over the lengths), else the bounded form. */
export function boundedList(key: string, items: readonly string[]): Record<string, unknown> {
  let total = 0;
  let over = false;
  for (const s of items) {
    total += s.length;
    if (s.length > AUDIT_ELEMENT_CHARS || total > AUDIT_TOTAL_CHARS) {
      over = true;
      break;
    }
  }
  if (!over) return { [key]: items };
  const shown: string[] = [];
  const cut: { index: number; bytes: number; sha256: string }[] = [];
  let used = 0;
  for (let i = 0; i < items.length && used < AUDIT_TOTAL_CHARS; i++) {
    const s = items[i]!;
    const room = Math.min(AUDIT_ELEMENT_CHARS, AUDIT_TOTAL_CHARS - used);
    if (s.length > room) {
      const b = exactBytes(s);
      cut.push({ index: i, bytes: b.length, sha256: createHash('sha256').update(b).digest('hex') });
      shown.push(`${clipChars(s, room)}…`);
      used += room;
    } else {
      shown.push(s);
      used += s.length;
    }
  }
  // One conversion of the whole list (NUL cannot occur inside an element), not one per element.
  const all = exactBytes(items.length ? `${items.join('\0')}\0` : '');
  const note: TruncationNote = { elements: items.length, shown: shown.length, bytes: all.length, sha256: createHash('sha256').update(all).digest('hex'), cut };
  return { [key]: shown, [`${key}_truncated`]: note };
}

/** A single string field (file, workdir) bounded the same way. */
export function boundedString(key: string, s: string): Record<string, unknown> {
  if (s.length <= AUDIT_ELEMENT_CHARS) return { [key]: s };
  const b = exactBytes(s);
  return { [key]: `${clipChars(s, AUDIT_ELEMENT_CHARS)}…`, [`${key}_truncated`]: { bytes: b.length, sha256: createHash('sha256').update(b).digest('hex') } };
}
