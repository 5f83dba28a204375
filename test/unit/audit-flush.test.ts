import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createAuditLogger, flushAuditLog, silentLogger } from '../../src/server/audit-log.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cse-flush-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('flushAuditLog', () => {
  it('resolves once every line logged before it is in the file', async () => {
    const file = path.join(dir, 'audit.jsonl');
    const logger = createAuditLogger({ file });
    for (let i = 0; i < 2000; i++) logger.info({ event: 'decision', i, pad: 'x'.repeat(200) }, 'line');
    await flushAuditLog(logger);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2000);
    expect(JSON.parse(lines[1999]!)).toMatchObject({ event: 'decision', i: 1999 });
  });

  it('resolves for a file that cannot be written (the error was reported; decisions go on) and for the silent logger', async () => {
    const logger = createAuditLogger({ file: path.join(dir, 'missing', 'audit.jsonl') });
    logger.info('dropped');
    await expect(flushAuditLog(logger)).resolves.toBeUndefined();
    await expect(flushAuditLog(silentLogger())).resolves.toBeUndefined();
  });
});
