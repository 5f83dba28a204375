/**
 * The Node floor of one Run decision: a server that does only what the
 * protocol forces (wake on the session socket, recvmsg the handshake and the
 * request, send the fixed Run reply, close the fds), with the same native
 * addon and event loop as the real server and none of its JS (no parse,
 * resolve, policy or audit). Its CPU per decision against the real server's
 * (bench/cost.ts) is what our own code costs.
 *
 *   npx tsx bench/floor/node-floor.ts [--execs 2000] [--reps 3]
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeFrame } from '../../src/protocol/codec.js';
import { DIRECT_EXECS_ENV_VAR, ESCALATE_SOCKET_ENV_VAR, EXEC_WRAPPER_ENV_VAR, PROTOCOL_ENV_VARS, SHELL_SOCKET_FD } from '../../src/protocol/constants.js';
import { toWireResponse } from '../../src/protocol/messages.js';
import { closeFd, Poller, recvMsg, sendMsg, setNonblock, socketPair } from '../../src/native/index.js';
import { ensurePatchedBash } from '../../src/shell/patched-bash.js';
import { median } from '../lib/stats.js';

const { values: args } = parseArgs({ options: { execs: { type: 'string', default: '2000' }, reps: { type: 'string', default: '3' } } });
const execs = Number(args.execs);
const benchDir = path.resolve(import.meta.dirname, '..');
const wrapper = path.join(benchDir, '..', 'wrapper', 'codex-execve-wrapper');
const patched = await ensurePatchedBash();
const reply = encodeFrame(toWireResponse({ kind: 'run' }, { shell: patched, listener: false }));

function mainThreadNs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
}

async function once(): Promise<{ decisions: number; cpuNs: number; mainNs: number }> {
  const [serverFd, clientFd] = socketPair('dgram', { cloexec: true, nonblock: true });
  setNonblock(clientFd, false);
  let decisions = 0;
  const poller = new Poller(serverFd, () => {
    for (;;) {
      const hs = recvMsg(serverFd, 2, 4);
      if (hs === 'again' || hs === 'eof') return;
      const conn = hs.fds[0]!;
      const req = recvMsg(conn, 65536, 4);
      if (req !== 'again' && req !== 'eof') {
        for (const fd of req.fds) closeFd(fd);
        sendMsg(conn, reply);
        decisions++;
      }
      closeFd(conn);
    }
  });
  poller.start({ readable: true });
  const env: NodeJS.ProcessEnv = { ...process.env, [ESCALATE_SOCKET_ENV_VAR]: String(SHELL_SOCKET_FD), [EXEC_WRAPPER_ENV_VAR]: wrapper, [DIRECT_EXECS_ENV_VAR]: '0' };
  for (const k of PROTOCOL_ENV_VARS) if (![ESCALATE_SOCKET_ENV_VAR, EXEC_WRAPPER_ENV_VAR, DIRECT_EXECS_ENV_VAR].includes(k)) delete env[k];
  const stdio: StdioOptions = ['ignore', 'ignore', 'inherit', ...Array.from({ length: SHELL_SOCKET_FD - 3 }, () => 'ignore' as const), clientFd];
  const cpu0 = process.cpuUsage();
  const m0 = mainThreadNs();
  const child = spawn(patched, [path.join(benchDir, 'workloads', 'exec-loop.sh'), String(execs)], { cwd: os.tmpdir(), env, stdio });
  closeFd(clientFd);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const cpu = process.cpuUsage(cpu0);
  const mainNs = mainThreadNs() - m0;
  poller.close();
  closeFd(serverFd);
  if (code !== 0 || decisions < execs) throw new Error(`loop failed: exit ${code}, ${decisions} decisions`);
  return { decisions, cpuNs: (cpu.user + cpu.system) * 1000, mainNs };
}

await once(); // warm-up
const rows: { decisions: number; cpuNs: number; mainNs: number }[] = [];
for (let r = 0; r < Number(args.reps); r++) rows.push(await once());
const per = (k: 'cpuNs' | 'mainNs') => +(median(rows.map((x) => x[k] / x.decisions)) / 1000).toFixed(1);
console.log(JSON.stringify({ execs, reps: rows.length, cpuUsPerDecision: per('cpuNs'), mainThreadUsPerDecision: per('mainNs'), runs: rows.map((x) => +(x.cpuNs / x.decisions / 1000).toFixed(1)) }));
