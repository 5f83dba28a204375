import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createAuditLogger, flushAuditLog } from '../../src/server/audit-log.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cse-auditdest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The same lines through an in-memory stream (the logger's other destinations): the reference bytes. */
function viaStream(log: (l: pino.Logger) => void): string {
  let out = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString('utf8');
      cb();
    },
  });
  // A write() that is synchronous, so `out` is complete when log() returns.
  const logger = createAuditLogger({ destination: { write: (s: string) => void sink.write(s) } as unknown as pino.DestinationStream });
  log(logger);
  return out;
}

describe('audit log to a regular file', () => {
  it('each line is in the file when the log call returns (no thread-pool write, nothing buffered), byte-identical to the stream output', () => {
    const file = path.join(dir, 'sync.jsonl');
    writeFileSync(file, 'existing line\n');
    const logger = createAuditLogger({ file });
    const lines = [
      { event: 'decision', program: '/usr/bin/true', argv: ['true', 'é', '\u2028', 'x\ny'], latency_us: 12 },
      { event: 'decision', program: '/bin/\udc80raw', argv: ['a"b\\c'], reason: null },
    ];
    for (const [i, l] of lines.entries()) {
      logger.info(l, `run ${l.program}`);
      const got = readFileSync(file, 'utf8').split('\n');
      expect(got).toHaveLength(i + 3); // the existing line, i + 1 lines, the trailing ''
      expect(got[0]).toBe('existing line'); // appended, never truncated
    }
    const written = readFileSync(file, 'utf8').split('\n').slice(1).join('\n');
    const reference = viaStream((l) => {
      for (const x of lines) l.info(x, `run ${x.program}`);
    });
    // Timestamps differ between the two runs: compare everything else, byte for byte.
    const strip = (s: string) => s.replace(/"time":"[^"]*"/g, '"time":"T"');
    expect(strip(written)).toBe(strip(reference));
    expect(JSON.parse(written.split('\n')[0]!)).toMatchObject({ level: 30, event: 'decision', argv: ['true', 'é', '\u2028', 'x\ny'], msg: 'run /usr/bin/true' });
  });

  it('a FIFO as the log file goes through the stream: creating the logger does not wait for a reader, and the lines arrive once one opens it', async () => {
    const fifo = path.join(dir, 'audit.fifo');
    const mk = spawn('mkfifo', [fifo]);
    expect(await new Promise((resolve) => mk.once('close', resolve))).toBe(0);
    const logger = createAuditLogger({ file: fifo }); // would block here if the FIFO were opened synchronously
    logger.info({ event: 'decision', n: 1 }, 'one');
    const reader = spawn('head', ['-n', '1', fifo]);
    let out = '';
    reader.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    await new Promise((resolve) => reader.once('close', resolve));
    expect(JSON.parse(out)).toMatchObject({ event: 'decision', n: 1, msg: 'one' });
    await flushAuditLog(logger).catch(() => {});
  });
});

describe('isoTime', () => {
  it('is pino.stdTimeFunctions.isoTime for every millisecond across minute, day and year boundaries and out of range', async () => {
    const { isoTime } = await import('../../src/server/audit-log.js');
    const ref = (t: number) => `,"time":"${new Date(t).toISOString()}"`;
    const starts = [Date.UTC(2026, 11, 31, 23, 58, 59, 0), Date.UTC(1970, 0, 1), Date.UTC(9999, 11, 31, 23, 58, 0), 0];
    for (const s of starts) for (let t = s; t < s + 125_000; t += 17) expect(isoTime(t)).toBe(ref(t));
    // Back in time (a clock step) and far out of range.
    for (const t of [Date.UTC(2030, 0, 1), Date.UTC(2020, 5, 6, 7, 8, 9, 10), -1, -86_400_001, 253402300800000, 8.64e15]) expect(isoTime(t)).toBe(ref(t));
    expect(isoTime()).toMatch(/^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
  });
});
