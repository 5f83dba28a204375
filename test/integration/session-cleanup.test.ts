import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { countOpenFds } from '../../src/native/index.js';
import { recordingPolicy, runBash, tempDir } from '../helpers/harness.js';

/** Pids of live processes whose parent is `ppid` (zombies included: they would be a reaping leak). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

describe('nothing outlives a session', () => {
  it('100 sessions with escalations (one left running in the background each): no process or fd left behind', async () => {
    const dir = tempDir();
    const { policy } = recordingPolicy((q) => (q.program.endsWith('/dash') ? { action: 'escalate' } : { action: 'run' }));
    const baselineFds = countOpenFds();
    const baselineChildren = childrenOf(process.pid).length;
    const sessions = 100;
    for (let batch = 0; batch < sessions; batch += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, k) => {
          const i = batch + k;
          // An escalated command that would run for 30 s, left in the background, plus one that finishes.
          const r = await runBash(`/bin/sh -c 'echo $$ > ${dir}/pid${i}; exec sleep 30' & /bin/sh -c 'exit 4'; echo "rc=$?"; while [ ! -s ${dir}/pid${i} ]; do :; done`, { policy });
          expect(r.stdout).toBe('rc=4\n');
        }),
      );
    }
    // Escalated commands are terminated at session end (SIGTERM, then SIGKILL after the grace period).
    const deadline = Date.now() + 5000;
    const pids = Array.from({ length: sessions }, (_, i) => Number(readFileSync(path.join(dir, `pid${i}`), 'utf8')));
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(pids.filter(alive)).toEqual([]);
    expect(childrenOf(process.pid).length).toBe(baselineChildren);
    expect(countOpenFds()).toBe(baselineFds);
  }, 120_000);
});
