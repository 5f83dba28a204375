// Real child processes through spawnProcess/waitForExit/sendSignal/openPath:
// byte-exact argv/env/cwd, fd mapping, signal state, exec errors, reaping.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeFd,
  countOpenFds,
  isNativeError,
  openPath,
  recvMsg,
  sendSignal,
  setCloexec,
  setNonblock,
  socketPair,
  spawnProcess,
  waitForExit,
  type ExitStatus,
  type Fd,
  type SpawnOptions,
} from '../../src/native/index.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];

/** Reads everything until EOF from a non-blocking stream fd (the child has exited). */
function drain(fd: Fd): Buffer {
  const parts: Buffer[] = [];
  for (;;) {
    const r = recvMsg(fd, 65536, 0);
    if (r === 'eof') return Buffer.concat(parts);
    if (r === 'again') throw new Error('child output not complete at exit');
    parts.push(r.bytes);
  }
}

interface Run {
  status: ExitStatus;
  out: Buffer;
  pid: number;
}

/** Spawns with the child's stdout on a socket we read after exit. */
async function run(opts: Omit<SpawnOptions, 'fdMap'> & { fdMap?: SpawnOptions['fdMap'] }): Promise<Run> {
  const [r, w] = socketPair('stream', { nonblock: false });
  setNonblock(r, true);
  try {
    const { pid, pidfd } = spawnProcess({ ...opts, fdMap: opts.fdMap ?? [[1, w], [2, 2]] });
    closeFd(w);
    const status = await waitForExit(pid, pidfd);
    return { status, out: drain(r), pid };
  } finally {
    try {
      closeFd(w);
    } catch {
      /* already closed after a successful spawn */
    }
    closeFd(r);
  }
}

function sh(script: string, ...args: (string | Buffer)[]): Omit<SpawnOptions, 'fdMap'> {
  return { file: '/bin/sh', argv: ['sh', '-c', script, 'sh', ...args], env: ENV, cwd: '/' };
}

function hex(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

let tmp = '';
let fdsAtStart = 0;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'codex-native-'));
  fdsAtStart = countOpenFds();
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  expect(countOpenFds()).toBe(fdsAtStart);
});

describe('spawnProcess', () => {
  it('passes non-UTF-8 argv, env and cwd byte-exact', async () => {
    const arg = Buffer.from([0x66, 0xff, 0xfe, 0x80, 0x20, 0x0a, 0x6f]);
    const val = Buffer.from([0xc3, 0x28, 0xa0, 0xa1]);
    const dirName = Buffer.from([0x64, 0xe9, 0xff]); // Latin-1 'dé' + junk: invalid UTF-8
    const dir = Buffer.concat([Buffer.from(tmp + '/'), dirName]);
    mkdirSync(dir);
    const res = await run({
      file: '/bin/sh',
      argv: ['sh', '-c', 'printf %s "$1" | od -An -tx1; printf %s "$WEIRD" | od -An -tx1; pwd | od -An -tx1', 'sh', arg],
      env: [...ENV, Buffer.concat([Buffer.from('WEIRD='), val])],
      cwd: dir,
    });
    expect(res.status).toEqual({ code: 0, signal: null, coreDumped: false });
    const lines = res.out.toString().split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter(Boolean);
    const pwd = Buffer.concat([dir, Buffer.from('\n')]);
    expect(lines.join(' ')).toBe(`${hex(arg)} ${hex(val)} ${hex(pwd)}`);
  });

  it('argv[0] and the env are exactly what we pass (nothing inherited)', async () => {
    const res = await run({ file: '/bin/sh', argv: ['custom-zero', '-c', 'echo "$0"; env | sort'], env: ['A=1', 'B=two'], cwd: '/' });
    const lines = res.out.toString().trim().split('\n');
    expect(lines[0]).toBe('custom-zero');
    // sh adds PWD (and may add OLDPWD/SHLVL-like vars); ours are present, the parent's are not.
    expect(lines).toContain('A=1');
    expect(lines).toContain('B=two');
    expect(lines.some((l) => l.startsWith('HOME=') || l.startsWith('VITEST'))).toBe(false);
  });

  it('applies an overlapping fdMap (swap): each source lands on the other\'s number', async () => {
    const [r1, w1] = socketPair('stream', { nonblock: false });
    const [r2, w2] = socketPair('stream', { nonblock: false });
    const { pid, pidfd } = spawnProcess({
      file: '/bin/bash', // dash cannot redirect to fds above 9
      argv: ['bash', '-c', 'echo one >&$1; echo two >&$2', 'bash', String(w1), String(w2)],
      env: ENV,
      cwd: '/',
      // child fd w1 <- parent w2, child fd w2 <- parent w1: each source is the other's target.
      fdMap: [
        [w1, w2],
        [w2, w1],
      ],
    });
    closeFd(w1);
    closeFd(w2);
    expect(await waitForExit(pid, pidfd)).toEqual({ code: 0, signal: null, coreDumped: false });
    setNonblock(r1, true);
    setNonblock(r2, true);
    expect(drain(r2).toString()).toBe('one\n'); // written to child fd w1, which is parent's w2
    expect(drain(r1).toString()).toBe('two\n');
    closeFd(r1);
    closeFd(r2);
  });

  it('closes unmapped fds in the child, including inheritable ones', async () => {
    const [leakA, leakB] = socketPair('stream', { cloexec: false });
    const res = await run(
      sh('for n in 0 1 2 "$1" "$2"; do if [ -e /proc/$$/fd/$n ]; then echo "open $n"; else echo "closed $n"; fi; done', String(leakA), String(leakB)),
    );
    // run() maps only 1 and 2.
    expect(res.out.toString()).toBe(`closed 0\nopen 1\nopen 2\nclosed ${leakA}\nclosed ${leakB}\n`);
    closeFd(leakA);
    closeFd(leakB);
  });

  it('child starts with SIGPIPE (and everything else) at default and an empty mask', async () => {
    const ours = readFileSync('/proc/self/status', 'utf8');
    const ourIgn = BigInt('0x' + /^SigIgn:\s+([0-9a-f]+)$/m.exec(ours)![1]!);
    expect(ourIgn & (1n << 12n)).toBe(1n << 12n); // Node ignores SIGPIPE (13 -> bit 12)
    // cat installs no handlers of its own, so its status shows what it inherited.
    const res = await run({ file: '/bin/cat', argv: ['cat', '/proc/self/status'], env: ENV, cwd: '/' });
    expect(res.out.toString()).toMatch(/^SigBlk:\s+0+$/m);
    expect(res.out.toString()).toMatch(/^SigIgn:\s+0+$/m);
    expect(res.out.toString()).toMatch(/^SigCgt:\s+0+$/m);
    // And behaviourally: a writer into a closed pipe dies of SIGPIPE.
    const pipe = await run(sh('kill -PIPE $$; echo survived'));
    expect(pipe.status).toEqual({ code: null, signal: 13, coreDumped: false });
    expect(pipe.out.toString()).toBe('');
  });

  it('throws ENOENT/EACCES for execve, ENOENT for chdir, EBADF for dup2 — no fd leaks, no zombies', () => {
    const before = countOpenFds();
    const noent = thrown(() => spawnProcess({ file: '/nonexistent/prog', argv: ['x'], env: [], cwd: '/', fdMap: [] }));
    expect(isNativeError(noent) && [noent.code, noent.syscall, noent.path]).toEqual(['ENOENT', 'execve', '/nonexistent/prog']);
    const script = path.join(tmp, 'not-executable');
    writeFileSync(script, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const acces = thrown(() => spawnProcess({ file: script, argv: ['x'], env: [], cwd: '/', fdMap: [] }));
    expect(isNativeError(acces) && [acces.code, acces.syscall]).toEqual(['EACCES', 'execve']);
    const junk = path.join(tmp, 'junk');
    writeFileSync(junk, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0, 0]), { mode: 0o755 });
    const noexec = thrown(() => spawnProcess({ file: junk, argv: ['x'], env: [], cwd: '/', fdMap: [] }));
    expect(isNativeError(noexec) && [noexec.code, noexec.syscall]).toEqual(['ENOEXEC', 'execve']);
    const cd = thrown(() => spawnProcess({ file: '/bin/true', argv: ['true'], env: [], cwd: path.join(tmp, 'missing-dir'), fdMap: [] }));
    expect(isNativeError(cd) && [cd.code, cd.syscall]).toEqual(['ENOENT', 'chdir']);
    const dup = thrown(() => spawnProcess({ file: '/bin/true', argv: ['true'], env: [], cwd: '/', fdMap: [[0, 0x7ffffff0]] }));
    expect(isNativeError(dup) && [dup.code, dup.syscall]).toEqual(['EBADF', 'dup2']);
    expect(countOpenFds()).toBe(before);
    // Failed children were reaped: none of our children is a zombie.
    const children = readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const c of children) {
      let state = '';
      try {
        state = readFileSync(`/proc/${c}/stat`, 'utf8').replace(/^.*\) /, '')[0] ?? '';
      } catch {
        continue;
      }
      expect(state).not.toBe('Z');
    }
  });

  it('rejects bad options before forking', () => {
    const base: SpawnOptions = { file: '/bin/true', argv: ['true'], env: [], cwd: '/', fdMap: [] };
    expect(() => spawnProcess({ ...base, argv: [] })).toThrow(RangeError);
    expect(() => spawnProcess({ ...base, argv: ['a\0b'] })).toThrow(/NUL/);
    expect(() => spawnProcess({ ...base, file: Buffer.from('/bin/\0true') })).toThrow(TypeError);
    expect(() => spawnProcess({ ...base, env: [42 as unknown as string] })).toThrow(TypeError);
    expect(() => spawnProcess({ ...base, fdMap: [[1, 2, 3] as unknown as [number, number]] })).toThrow(TypeError);
    expect(() => spawnProcess({ ...base, fdMap: [[-1, 2]] })).toThrow(RangeError);
    expect(() => spawnProcess({ ...base, fdMap: [[1, 1], [1, 2]] })).toThrow(/appears twice/);
    expect(() => spawnProcess({ ...base, execFd: -3 })).toThrow(RangeError);
    expect(() => spawnProcess(null as unknown as SpawnOptions)).toThrow(TypeError);
  });

  it('new process group and new session', async () => {
    const stat = (out: Buffer): { pgrp: number; session: number } => {
      const f = out.toString().replace(/^.*\) /s, '').split(' ');
      return { pgrp: Number(f[2]), session: Number(f[3]) };
    };
    const cat = { file: '/bin/cat', argv: ['cat', '/proc/self/stat'], env: ENV, cwd: '/' };
    const plain = await run(cat);
    const ourStat = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /s, '').split(' ');
    expect(stat(plain.out).pgrp).toBe(Number(ourStat[2]));
    const pg = await run({ ...cat, newProcessGroup: true });
    expect(stat(pg.out).pgrp).toBe(pg.pid);
    expect(stat(pg.out).session).toBe(Number(ourStat[3]));
    const sid = await run({ ...cat, setsid: true });
    expect(stat(sid.out)).toEqual({ pgrp: sid.pid, session: sid.pid });
  });

  it('execFd runs exactly the opened file, whatever `file` says', async () => {
    const fd = openPath('/bin/echo');
    const res = await run({ file: '/nonexistent/decoy', argv: ['echo', 'via', 'fd'], env: ENV, cwd: '/', execFd: fd });
    expect(res.status.code).toBe(0);
    expect(res.out.toString()).toBe('via fd\n');
    // execFd below the highest fdMap target must survive the remapping.
    const [r, w] = socketPair('stream', { nonblock: false });
    setNonblock(r, true);
    const { pid, pidfd } = spawnProcess({
      file: 'decoy',
      argv: ['echo', 'remapped'],
      env: ENV,
      cwd: '/',
      fdMap: [[fd, w], [fd + 1, w], [1, w]],
      execFd: fd,
    });
    closeFd(w);
    expect((await waitForExit(pid, pidfd)).code).toBe(0);
    expect(drain(r).toString()).toBe('remapped\n');
    closeFd(r);
    closeFd(fd);
    // A #! script cannot run from a close-on-exec fd: the kernel says ENOENT.
    const script = path.join(tmp, 'script.sh');
    writeFileSync(script, '#!/bin/sh\necho script\n', { mode: 0o755 });
    const sfd = openPath(script);
    const viaFd = thrown(() => spawnProcess({ file: script, argv: ['script'], env: ENV, cwd: '/', fdMap: [], execFd: sfd }));
    expect(isNativeError(viaFd) && [viaFd.code, viaFd.syscall]).toEqual(['ENOENT', 'execve']);
    closeFd(sfd);
    const missing = thrown(() => openPath(Buffer.from('/nonexistent/\xff', 'latin1')));
    expect(isNativeError(missing) && [missing.code, missing.syscall]).toEqual(['ENOENT', 'open']);
  });
});

describe('waitForExit / sendSignal', () => {
  it('resolves the exit code of a normal exit', async () => {
    const res = await run(sh('exit 42'));
    expect(res.status).toEqual({ code: 42, signal: null, coreDumped: false });
  });

  it('reports signal 9 after sendSignal(SIGKILL), and closes the pidfd', async () => {
    const before = countOpenFds();
    const { pid, pidfd } = spawnProcess({ file: '/bin/sleep', argv: ['sleep', '30'], env: ENV, cwd: '/', fdMap: [] });
    const waiting = waitForExit(pid, pidfd);
    sendSignal(pidfd, 9);
    const t0 = Date.now();
    expect(await waiting).toEqual({ code: null, signal: 9, coreDumped: false });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(countOpenFds()).toBe(before);
    // The pidfd is gone; signalling it now is EBADF, not a crash.
    const err = thrown(() => sendSignal(pidfd, 9));
    expect(isNativeError(err) && err.code).toBe('EBADF');
  });

  it('sendSignal ignores a child that already exited; SIGTERM is reported as signal 15', async () => {
    const { pid, pidfd } = spawnProcess({ file: '/bin/true', argv: ['true'], env: ENV, cwd: '/', fdMap: [] });
    // Wait until it is a zombie (exited, not yet reaped).
    const deadline = Date.now() + 5000;
    while (readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z') {
      if (Date.now() > deadline) throw new Error('child did not exit');
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(() => sendSignal(pidfd, 15)).not.toThrow(); // exited: no error
    expect(await waitForExit(pid, pidfd)).toEqual({ code: 0, signal: null, coreDumped: false });
    const s = spawnProcess({ file: '/bin/sleep', argv: ['sleep', '30'], env: ENV, cwd: '/', fdMap: [] });
    sendSignal(s.pidfd, 15);
    expect(await waitForExit(s.pid, s.pidfd)).toEqual({ code: null, signal: 15, coreDumped: false });
    expect(() => sendSignal(0, 999)).toThrow(RangeError);
  });

  it('many concurrent children are all reaped with the right codes', async () => {
    const before = countOpenFds();
    const kids = Array.from({ length: 40 }, (_, i) => {
      const { pid, pidfd } = spawnProcess({ file: '/bin/sh', argv: ['sh', '-c', `exit ${i}`], env: ENV, cwd: '/', fdMap: [] });
      return waitForExit(pid, pidfd);
    });
    const codes = (await Promise.all(kids)).map((s) => s.code);
    expect(codes).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(countOpenFds()).toBe(before);
  });

  it('rejects bad arguments', async () => {
    await expect(waitForExit(0, 3)).rejects.toThrow(RangeError);
    await expect(waitForExit(1, -1)).rejects.toThrow(RangeError);
  });
});
