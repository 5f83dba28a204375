/**
 * Security cases of docs/security.md: hostile argv (newlines, NULs, non-UTF-8,
 * ARG_MAX-sized), through the real wrapper + patched bash and through a raw
 * client; and a sandboxed process speaking the protocol directly gets exactly
 * the wrapper's decisions — no path to Escalate the rules did not grant.
 */
import { mkdirSync, openSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFd } from '../../src/native/index.js';
import { createStaticPolicy } from '../../src/policy/static-policy.js';
import { EscalationServer, type DecisionRecord, type EscalationSession } from '../../src/server/escalation-server.js';
import { connectStream, encodeFrame, rawFrame, writeAll } from '../fuzz/harness.js';
import { FrameConn } from '../fuzz/load.js';
import { patchedBash, runBash, runInSession, tempDir, wrapperPath } from '../helpers/harness.js';
import { RawClient } from '../helpers/raw-client.js';

// The rules every case here runs under: these escalate, `rm -rf` is denied, anything else runs in place.
const policyOptions = { deny: ['rm -rf'], escalate: ['true', 'printf', 'env', 'wc'] } as const;
const policy = () => createStaticPolicy(policyOptions);

let server: EscalationServer;
let session: EscalationSession;
let spawned = 0;
beforeAll(async () => {
  server = new EscalationServer({ policy: policy(), observer: { escalatedExited: () => void spawned++ } });
  session = await server.startSession();
});
afterAll(async () => {
  await server.close();
});

async function raw(message: unknown | Buffer, then?: (c: RawClient) => Promise<unknown>): Promise<unknown> {
  const c = RawClient.connect(session.clientFd);
  try {
    if (Buffer.isBuffer(message)) c.sendRaw(message);
    else c.send(message);
    const reply = await c.receive(10_000);
    if (then) return { reply, after: await then(c) };
    return reply;
  } finally {
    c.close();
  }
}

const req = (file: string, argv: string[], extra: Record<string, unknown> = {}) => ({ file, argv, workdir: process.cwd(), env: { PATH: '/usr/bin:/bin' }, ...extra });
const deny = (re: RegExp) => ({ action: { Deny: { reason: expect.stringMatching(re) } } });

describe('hostile argv through the real wrapper and patched bash', () => {
  it('newlines in argv reach the program intact, Run and Escalate alike', async () => {
    const r = await runBash(`/usr/bin/echo $'a\\nb' "c d"; /usr/bin/printf '%s|' $'x\\ny' $'\\n'`, { policy: policy() });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('a\nb c d\nx\ny|\n|');
    expect(r.decisions.map((d) => d.action.kind)).toEqual(['run', 'escalate']);
    expect(r.decisions[1]!.request.argv).toEqual(['/usr/bin/printf', '%s|', 'x\ny', '\n']);
  });

  it('non-UTF-8 bytes in argv reach the program byte for byte, Run and Escalate alike', async () => {
    const dir = tempDir('cse-bytes-');
    const r = await runBash(`/usr/bin/echo -n $'\\xff\\xfe\\x80ok' > run.out; /usr/bin/printf '%s' $'\\xff\\xfe\\x80ok' > esc.out`, { policy: policy(), cwd: dir });
    expect(r.exitCode).toBe(0);
    const want = Buffer.from([0xff, 0xfe, 0x80, 0x6f, 0x6b]);
    expect(readFileSync(path.join(dir, 'run.out'))).toEqual(want);
    expect(readFileSync(path.join(dir, 'esc.out'))).toEqual(want);
    expect(r.decisions.map((d) => d.action.kind)).toEqual(['run', 'escalate']);
  });

  it('an argv of 1.5 MB (15 × 100 KB, near ARG_MAX) runs and escalates as under stock bash', async () => {
    const script = [
      'chunk=$(printf "%0102400d" 0)',
      'set --; for i in {1..15}; do set -- "$@" "$chunk"; done',
      '/usr/bin/echo "$@" | /usr/bin/wc -c',
      '/usr/bin/printf "%s" "$@" | /usr/bin/wc -c',
    ].join('\n');
    const r = await runBash(script, { policy: policy() });
    expect(r.stderr).toBe('');
    // echo: 15 × 102400 + 14 spaces + newline; printf: 15 × 102400.
    expect(r.stdout).toBe(`${15 * 102400 + 15}\n${15 * 102400}\n`);
    const printf = r.decisions.find((d) => d.request.program === '/usr/bin/printf')!;
    expect(printf.action.kind).toBe('escalate');
    expect(printf.request.argv).toHaveLength(17);
  });

  it('an environment of 1.5 MB crosses to an escalated command intact (when its names are allowed)', async () => {
    const script = ['chunk=$(printf "%0102400d" 0)', 'for i in {1..15}; do export BIG$i="$chunk"; done', '/usr/bin/env | /usr/bin/wc -c'].join('\n');
    // Escalated commands get an allow-listed environment: BIG* must be allowed to cross at all.
    const decisions: DecisionRecord[] = [];
    const own = new EscalationServer({ policy: policy(), wrapperPath, shellPath: patchedBash(), escalationEnv: { allow: ['BIG*'] }, observer: { decided: (d) => void decisions.push(d) } });
    const r = await runInSession(own, script, { env: { PATH: '/usr/bin:/bin', HOME: tempDir('cse-home-'), LC_ALL: 'C' } });
    expect(r.stderr).toBe('');
    expect(Number(r.stdout.trim())).toBeGreaterThan(15 * 102400);
    expect(decisions.find((d) => d.request.program === '/usr/bin/env')?.action.kind).toBe('escalate');
  });
});

describe('hostile argv through a raw client', () => {
  it('NUL bytes anywhere are rejected with a clear reason', async () => {
    expect(await raw(req('/usr/bin/true', ['true', 'a\0b']))).toEqual(deny(/argv element contains a NUL byte/));
    expect(await raw(req('/usr/bin/true\0x', ['true']))).toEqual(deny(/file contains a NUL byte/));
    expect(await raw(req('/usr/bin/true', ['true'], { env: { A: 'x\0y' } }))).toEqual(deny(/env value contains a NUL byte/));
    expect(await raw(req('/usr/bin/true', ['true'], { workdir: '/tmp\0/etc' }))).toEqual(deny(/workdir contains a NUL byte/));
  });

  it('escaped non-UTF-8 bytes (\\udcXX) are decided like the wrapper sends them; a lone high surrogate cannot be escalated', async () => {
    expect(await raw(req('/usr/bin/true', ['true', 'x\udcffy']))).toEqual({ action: 'Escalate' });
    const bad = (await raw(req('/usr/bin/true', ['true', 'x\ud800y']), async (c) => {
      const devnull = openSync('/dev/null', 'r+');
      c.send({ fds: [0] }, [devnull]);
      closeFd(devnull);
      return c.receive(5000).catch(() => 'eof');
    })) as { reply: unknown; after: unknown };
    // Decided on the argv as a string, but the bytes cannot be produced: the command never runs.
    if (JSON.stringify(bad.reply) === '{"action":"Escalate"}') expect(bad.after).toMatchObject({ exit_code: 126 });
    else expect(bad.reply).toMatchObject({ action: { Deny: {} } });
  });

  it('an argv of 1.9 MB and a frame near the 16 MiB limit are decided; a frame over it is refused', async () => {
    // Frames larger than a socket buffer: written as the server reads them.
    const bigRaw = async (frame: Buffer) => {
      const conn = new FrameConn(await connectStream(session.clientFd));
      try {
        expect(await writeAll(conn.fd, frame)).toBe(true);
        return await conn.next(20_000);
      } finally {
        conn.close();
      }
    };
    const big = Array.from({ length: 19 }, () => 'a'.repeat(100_000));
    expect(await bigRaw(encodeFrame(req('/usr/bin/echo', ['echo', ...big])))).toEqual({ action: 'Run' });
    // JSON-escaped control bytes are 6 bytes each on the wire: 21 strings of execve's largest size (131071 bytes + NUL).
    const near = encodeFrame(req('/usr/bin/echo', ['echo', ...Array.from({ length: 21 }, () => '\u0001'.repeat(131_071))]));
    expect(near.length).toBeGreaterThan(16_000_000);
    expect(await bigRaw(near)).toEqual({ action: 'Run' });
    // One string longer than execve's MAX_ARG_STRLEN could never be exec'd: refused, with the reason.
    const tooLong = encodeFrame(req('/usr/bin/echo', ['echo', '\u0001'.repeat(2_700_000)]));
    expect(await bigRaw(tooLong)).toEqual(deny(/argv\[1\] is 2700001 bytes, over execve's per-string limit of 131072/));
    const over = Buffer.alloc(4);
    over.writeUInt32LE(16 * 1024 * 1024 + 1, 0);
    expect(await raw(over).catch(() => 'eof')).toBe('eof');
  });
});

describe('a raw client gets exactly the wrapper\'s decisions', () => {
  it('the same requests as the wrapper sent them are decided the same way', async () => {
    const dir = tempDir('cse-same-');
    const r = await runBash('/usr/bin/true; true x; /usr/bin/echo hi; rm -rf nothing-here; ./tool; /usr/bin/env >/dev/null; exit 0', { policy: policy(), cwd: dir });
    // ./tool does not exist: bash fails it itself, as stock, without asking (issue 13); the other four are decided.
    expect(r.decisions.length).toBeGreaterThanOrEqual(4);
    for (const d of r.decisions) {
      const reply = await raw({ file: d.request.file, argv: d.request.argv, workdir: d.request.workdir, env: d.request.env });
      const kind = typeof (reply as { action: unknown }).action === 'string' ? ((reply as { action: string }).action === 'Run' ? 'run' : 'escalate') : 'deny';
      // The raw client's cwd is not the shell's: an escalation may additionally be refused for that, never granted more.
      if (d.action.kind === 'escalate' && kind === 'deny') expect(JSON.stringify(reply)).toMatch(/working directory/);
      else expect(kind, d.request.argv.join(' ')).toBe(d.action.kind);
    }
  });

  it('tricks that must not earn an Escalate the rules did not grant', async () => {
    const dir = tempDir('cse-tricks-');
    mkdirSync(path.join(dir, 'bin'));
    symlinkSync('/usr/bin/touch', path.join(dir, 'bin', 'true')); // named like an allowed program
    symlinkSync('/usr/bin/true', path.join(dir, 'bin', 'mytrue')); // a link to one
    const before = spawned;
    // argv[0] spoofing: the program is what `file` resolves to.
    expect(await raw(req('/usr/bin/touch', ['true', path.join(dir, 'x')]))).toEqual({ action: 'Run' });
    // A symlink named `true` that points at touch.
    expect(await raw(req(path.join(dir, 'bin', 'true'), ['true']))).toEqual({ action: 'Run' });
    // A relative file with a lying workdir (our cwd is not dir/bin): it is looked up in our real cwd
    // (/proc/PID/cwd), where there is no ./mytrue, so it is what we would exec ourselves: Run.
    expect(await raw(req('./mytrue', ['true'], { workdir: path.join(dir, 'bin') }))).toEqual({ action: 'Run' });
    // An absolute file with a lying workdir: the workdir is not our cwd (by device and inode).
    expect(await raw(req('/usr/bin/true', ['true'], { workdir: path.join(dir, 'bin') }))).toEqual(deny(/working directory .* is not the same directory outside the sandbox as the requester's cwd/));
    // Extra fields and odd ext levels change nothing (ext >= 1 only adds the ENOEXEC shell to a Run).
    expect(await raw(req('/usr/bin/touch', ['touch', 'x'], { action: 'Escalate', escalate: true, program: '/usr/bin/true', ext: 999 }))).toMatchObject({ action: 'Run' });
    expect(await raw(req('/usr/bin/rm', ['rm', '-rf', '/nonexistent'], { ext: 1 }))).toEqual(deny(/matches --deny "rm -rf"/));
    // Duplicate env keys: the last one counts for the decision, and a dropped variable stays dropped.
    const dup = rawFrame(`{"file":"/usr/bin/env","argv":["env"],"workdir":${JSON.stringify(process.cwd())},"env":{"LD_PRELOAD":"/x.so","LD_PRELOAD":"/y.so","LANG":"C.UTF-8"}}`);
    const out = path.join(dir, 'env.out');
    const res = (await raw(dup, async (c) => {
      const fd = openSync(out, 'w');
      c.send({ fds: [1] }, [fd]);
      closeFd(fd);
      return c.receive(5000);
    })) as { reply: unknown; after: unknown };
    expect(res.reply).toEqual({ action: 'Escalate' });
    expect(res.after).toEqual({ exit_code: 0 });
    expect(readFileSync(out, 'utf8')).toContain('LANG=C.UTF-8');
    expect(readFileSync(out, 'utf8')).not.toContain('LD_PRELOAD');
    expect(spawned).toBe(before + 1); // only that env, nothing else ran outside
  });

  it('a SuperExecMessage without an Escalate, or a signal frame before the decision, runs nothing', async () => {
    const before = spawned;
    const devnull = openSync('/dev/null', 'r+');
    try {
      // Run, then the client pretends it was told Escalate.
      const ranAnyway = (await raw(req('/usr/bin/echo', ['echo', 'x']), async (c) => {
        try {
          c.send({ fds: [0] }, [devnull]);
        } catch {
          return 'closed';
        }
        return c.receive(2000).catch(() => 'eof');
      })) as { reply: unknown; after: unknown };
      expect(ranAnyway.reply).toEqual({ action: 'Run' });
      expect(['eof', 'closed']).toContain(ranAnyway.after);
      // SuperExecMessage as the very first frame.
      expect(await raw({ fds: [0] })).toEqual(deny(/invalid request/));
      // A signal frame right behind an escalatable request: the request is abandoned or escalated, never anything else.
      const c = RawClient.connect(session.clientFd);
      c.sendRaw(Buffer.concat([rawFrame(JSON.stringify(req('/usr/bin/true', ['true']))), rawFrame('{"signal":9}')]));
      const reply = await c.receive(2000).catch(() => 'eof');
      c.close();
      expect(['eof', '{"action":"Escalate"}']).toContain(typeof reply === 'string' ? reply : JSON.stringify(reply));
    } finally {
      closeFd(devnull);
    }
    await sleep(50);
    expect(spawned).toBe(before);
  });
});
