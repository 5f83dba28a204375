/**
 * Fault injection through real processes: the server SIGKILLed mid-session,
 * hooks and rules failing while the server keeps deciding, an audit log that
 * cannot be written.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/harness.js';

const fixture = path.resolve(import.meta.dirname, '../fixtures/hardening/server-child.ts');

/** Pids of processes whose argv is exactly `argv`. */
function pidsRunning(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8') === want) found.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe('server SIGKILLed mid-session', () => {
  it('wrappers waiting on a decision and on an escalated command exit 126 with a message within 1 s; no escalated process survives', async () => {
    const dir = tempDir('cse-kill-');
    const out = path.join(dir, 'shell.out');
    const tag = `31.${process.pid}`; // unique argv to find the escalated sleep
    const script = [
      `( /usr/bin/echo slow; echo "slow-status=$?" ) &`,
      `( /usr/bin/sleep ${tag}; echo "sleep-status=$?" ) &`,
      'wait',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { env: { ...process.env, SCRIPT: script, SHELL_OUT: out }, stdio: ['ignore', 'pipe', 'inherit'] });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        seen += d;
        if (seen.includes('asked slow') && seen.includes(`escalated /usr/bin/sleep ${tag}`)) resolve();
      });
      child.once('exit', () => reject(new Error(`server exited early: ${seen}`)));
    });
    // The escalated command really runs, as the server's child.
    const deadline0 = Date.now() + 2000;
    while (pidsRunning(['/usr/bin/sleep', tag]).length === 0 && Date.now() < deadline0) await sleep(10);
    expect(pidsRunning(['/usr/bin/sleep', tag])).toHaveLength(1);

    const killedAt = Date.now();
    child.kill('SIGKILL');
    const statuses = () => readFileSync(out, 'utf8');
    while (!(statuses().includes('slow-status=') && statuses().includes('sleep-status=')) && Date.now() - killedAt < 3000) await sleep(10);
    const elapsed = Date.now() - killedAt;
    const text = statuses();
    expect(text).toContain('slow-status=126');
    expect(text).toContain('sleep-status=126');
    expect(elapsed).toBeLessThan(1000);
    // Each wrapper said why.
    expect(text).toMatch(/codex-execve-wrapper: \/usr\/bin\/echo: .+/);
    expect(text).toMatch(/codex-execve-wrapper: \/usr\/bin\/sleep: .+/);
    // No orphan: the escalated command died with its server.
    while (pidsRunning(['/usr/bin/sleep', tag]).length > 0 && Date.now() - killedAt < 1000) await sleep(10);
    expect(pidsRunning(['/usr/bin/sleep', tag])).toEqual([]);
  });
});
