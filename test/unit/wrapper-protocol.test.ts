import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * The C wrapper's own protocol suite (wrapper/tests/test_wrapper.py): a
 * scripted peer over real sockets drives every response shape, malformed
 * frame and exec-failure case. Run from here so `npm test` covers it.
 */
describe('codex-execve-wrapper protocol suite', () => {
  it('make -C wrapper check passes', async () => {
    const result = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile('make', ['-s', '-C', path.join(packageRoot, 'wrapper'), 'check'], { timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
      });
    });
    expect(result.out).not.toMatch(/FAIL/);
    expect(result.code, result.out.slice(-4000)).toBe(0);
  }, 180_000);
});
