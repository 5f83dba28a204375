import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * Every addon export and class method called with bad arguments, 20 rounds,
 * under valgrind: no error path may lose memory or an fd. The driver counts that each call
 * threw and that the process holds as many fds after as before.
 */
const driver = path.join(packageRoot, 'test', 'fixtures', 'native', 'bad-args.cjs');
const ROUNDS = 20;

interface DriverReport {
  calls: number;
  rounds: number;
  thrown: number;
  fdsBefore: number;
  fdsAfter: number;
  /** Every export and class method (`Poller.start`) of the addon, and those the driver called. */
  exported: string[];
  used: string[];
}

/** Valgrind reports (blank-line separated blocks) whose stack passes through the addon. */
function addonErrors(log: string): string[] {
  const blocks = log.split(/^==\d+==\s*$/m);
  return blocks.filter((b) => b.includes('codex_native') && /definitely lost|indirectly lost|Invalid (?:read|write|free)|uninitialised/.test(b));
}

describe('native addon argument-error paths under valgrind', () => {
  it('leak no memory and no fd', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'valgrind',
        ['-q', '--leak-check=full', '--show-leak-kinds=definite,indirect', '--errors-for-leak-kinds=definite,indirect', 'node', driver, String(ROUNDS)],
        { timeout: 240_000, maxBuffer: 64 << 20 },
        (err, out, errOut) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut }),
      );
    });
    expect(code, stderr.slice(-4000)).toBe(0);
    const report = JSON.parse(stdout.trim()) as DriverReport;
    expect(report.rounds).toBe(ROUNDS);
    expect(report.thrown).toBe(report.calls * ROUNDS);
    expect(report.fdsAfter).toBe(report.fdsBefore);
    expect(addonErrors(stderr)).toEqual([]);
    // A new export or method without bad-argument calls in the driver fails here.
    expect(report.exported.length).toBeGreaterThan(30);
    expect(report.exported.filter((e) => !report.used.includes(e))).toEqual([]);
  }, 300_000);

  it('the report filter sees a lost block in the addon', () => {
    const log = [
      '==1== 80 bytes in 5 blocks are definitely lost in loss record 42 of 176',
      '==1==    at 0x1: malloc (in vgpreload_memcheck.so)',
      '==1==    by 0x2: codex_get_cstring (in build/Release/codex_native.node)',
      '==1== ',
      '==1== 8 bytes in 1 blocks are definitely lost in loss record 1 of 176',
      '==1==    by 0x3: node::Start (in /usr/bin/node)',
      '==1== ',
    ].join('\n');
    expect(addonErrors(log)).toHaveLength(1);
  });
});
