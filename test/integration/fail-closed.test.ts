import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { closeFd, Poller, recvMsg, sendMsg, socketPair, setNonblock } from '../../src/native/index.js';
import { FrameReader } from '../../src/protocol/codec.js';
import { packageRoot } from '../../src/paths.js';
import { patchedBash, runBounded, tempDir, wrapperPath } from '../helpers/harness.js';

/** Run the wrapper as bash would for `touch MARKER`, with the given escalation fd setup. */
function wrapperTouch(marker: string, env: NodeJS.ProcessEnv, stdio3?: number) {
  return runBounded(wrapperPath, ['/usr/bin/touch', 'touch', marker], { env: { PATH: '/usr/bin:/bin', ...env }, stdio3, timeoutMs: 5000 });
}

describe('wrapper fails closed without a usable server', () => {
  it.each([
    ['no CODEX_ESCALATE_SOCKET', {}, /CODEX_ESCALATE_SOCKET/],
    ['a non-numeric fd', { CODEX_ESCALATE_SOCKET: 'abc' }, /CODEX_ESCALATE_SOCKET/],
    ['an fd that is not open', { CODEX_ESCALATE_SOCKET: '99' }, /CODEX_ESCALATE_SOCKET/],
    ['an fd that is not a socket (stdout pipe)', { CODEX_ESCALATE_SOCKET: '1' }, /socket/],
  ])('%s → exit 126, one-line diagnosis, command not run', async (_name, env, message) => {
    const marker = path.join(tempDir(), 'marker');
    const r = await wrapperTouch(marker, env);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(marker)).toBe(false);
  });

  it('a server that is gone (peer closed) → 126 at once', async () => {
    const [server, client] = socketPair('dgram', { cloexec: true, nonblock: false });
    closeFd(server);
    const marker = path.join(tempDir(), 'marker');
    const r = await wrapperTouch(marker, { CODEX_ESCALATE_SOCKET: '3' }, client);
    closeFd(client);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(126);
    expect(existsSync(marker)).toBe(false);
  });
});

/**
 * A hostile or broken server: accepts the handshake, reads the request, then
 * answers with `reply` (raw bytes) or just closes.
 */
async function withFakeServer(reply: Buffer | null, closeAfter = true) {
  const [server, client] = socketPair('dgram', { cloexec: true, nonblock: true });
  const marker = path.join(tempDir(), 'marker');
  const opened: number[] = [];
  const poller = new Poller(server, () => {
    const got = recvMsg(server, 16, 16);
    if (got === 'again' || got === 'eof') return;
    const conn = got.fds[0]!;
    opened.push(conn);
    setNonblock(conn, true);
    const reader = new FrameReader();
    const connPoller = new Poller(conn, () => {
      const data = recvMsg(conn, 65536, 16);
      if (data === 'again') return;
      if (data === 'eof' || reader.push(data.bytes).length > 0) {
        connPoller.close();
        if (reply) sendMsg(conn, reply);
        if (closeAfter) closeFd(conn);
      }
    });
    connPoller.start({ readable: true });
  });
  poller.start({ readable: true });
  const r = await wrapperTouch(marker, { CODEX_ESCALATE_SOCKET: '3' }, client);
  poller.close();
  closeFd(server);
  closeFd(client);
  return { r, marker };
}

function frame(json: string): Buffer {
  const body = Buffer.from(json);
  const f = Buffer.alloc(4 + body.length);
  f.writeUInt32LE(body.length, 0);
  body.copy(f, 4);
  return f;
}

describe('wrapper fails closed on a broken or hostile server', () => {
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(0xffffffff, 0);
  it.each([
    ['closes without answering', null],
    ['random bytes', Buffer.from([0x13, 0x37, 0x00, 0x00, 0xde, 0xad])],
    ['a truncated frame', frame('{"action":"Run"}').subarray(0, 8)],
    ['valid length, invalid JSON', frame('{"action":')],
    ['an unknown action', frame('{"action":"Maybe"}')],
    ['a wrong type', frame('{"action":{"Deny":{"reason":5}}}')],
    ['a 4 GiB length prefix', huge],
    ['an empty frame', frame('')],
  ])('%s → exit 126, command not run, no hang', async (_name, reply) => {
    const { r, marker } = await withFakeServer(reply);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/^codex-execve-wrapper: \/usr\/bin\/touch: .+\n$/);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('server killed mid-session', () => {
  it('later execs of the orphaned shell exit 126 and do not run', async () => {
    const dir = tempDir();
    const marker = path.join(dir, 'marker');
    const out = path.join(dir, 'out');
    const cli = path.join(packageRoot, 'bin', 'codex-escalate.js');
    // `read` is a builtin: the shell blocks on the fifo-free pipe until we kill the server, then tries to exec.
    const script = `/bin/echo ready; read -r line; touch ${marker}; echo "status=$?" > ${out}`;
    const child = spawn(process.execPath, [cli, 'run', '--sandbox', 'none', '--shell', patchedBash(), '--log-file', path.join(dir, 'log'), '--', script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PATH: '/usr/bin:/bin' },
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', () => reject(new Error('CLI exited early')));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    child.stdin!.end('go\n'); // the orphaned bash still holds the pipe's read end
    const deadline = Date.now() + 5000;
    while (!existsSync(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(out, 'utf8')).toBe('status=126\n');
    expect(existsSync(marker)).toBe(false);
  });
});
