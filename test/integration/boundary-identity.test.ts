/**
 * Identity at the sandbox boundary, attacked as a prompt-injected script
 * would, through the real CLI (patched bash, built wrapper, bubblewrap and
 * --sandbox none): what runs outside is matched by what it is, never by a
 * name, a path text or an environment variable the script chose.
 *  1. argv[0] (`exec -a git-clone`, a symlink named git-clone) must not turn
 *     an allowed `git status` into `git clone --upload-pack=...` outside.
 *  2. The workdir is compared by device and inode: a directory of the
 *     sandbox's private /tmp named like a host one is not the host one.
 *  3. The shell for `#!`-less scripts comes from the session, never from the
 *     command's environment (CODEX_ESCALATE_SHELL=/usr/bin/rm ./s victim).
 *  4. /proc/self/fd/N, /dev/fd/N, /dev/stdin, links to them and paths of the
 *     private /tmp are the requester's, not the server's.
 * A proof file under /var/tmp appearing means code ran outside the sandbox
 * (its root is read-only inside bwrap).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { closeFd, countOpenFds, openPath, socketPair } from '../../src/native/index.js';
import { createStaticPolicy } from '../../src/policy/static-policy.js';
import { EscalationServer, type EscalationSession } from '../../src/server/escalation-server.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { lacks, requireSandbox, requireTool } from '../helpers/tools.js';
import { cliEnv, readJsonLines, runCli, sq } from '../helpers/e2e.js';
import { RawClient } from '../helpers/raw-client.js';

type Sandbox = 'bwrap' | 'none';
const SANDBOXES: readonly Sandbox[] = ['bwrap', 'none'];

const GIT_RULES = 'host_executable(name="git", paths=["/usr/bin/git"])\nprefix_rule(pattern=["git","status"], decision="allow")\n';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly audit: Record<string, unknown>[];
  readonly decisions: Record<string, unknown>[];
}

/** `codex-escalate run --sandbox S ARGS -- SCRIPT` in `dir` (a fresh empty one by default), with its audit log. */
async function ce(sandbox: Sandbox, args: readonly string[], script: string, dir = tempDir('cse-identity-')): Promise<Run & { dir: string }> {
  const log = path.join(dir, `audit-${randomUUID()}.jsonl`);
  const r = await runCli(['run', '--sandbox', sandbox, '--shell', patchedBash(), '--log-file', log, ...args, '--', script], { cwd: dir, env: cliEnv(), timeoutMs: 60_000 });
  expect(r.timedOut).toBe(false);
  const audit = readJsonLines(log);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, audit, decisions: audit.filter((l) => l.event === 'decision'), dir };
}

const proofs: string[] = [];
/** A unique proof-file path under /var/tmp (outside every sandbox-writable place), removed after the suite. */
function proof(tag: string): string {
  const p = `/var/tmp/cse-identity-${tag}-${randomUUID()}`;
  proofs.push(p);
  return p;
}

afterAll(() => {
  for (const p of proofs) rmSync(p, { force: true, recursive: true });
});

describe.each(SANDBOXES)('1. argv[0] of an escalated command is the matched name (--sandbox %s)', (sandbox) => {
  requireSandbox(sandbox);
  requireTool('git');
  it('exec -a git-clone on an allowed `git status` does not run git clone outside', async () => {
    const p = proof('clone');
    const dir = tempDir('cse-identity-');
    writeFileSync(path.join(dir, 'r.rules'), GIT_RULES);
    const r = await ce(sandbox, ['--rules', 'r.rules'], `mkdir status; git -C status init -q; (exec -a git-clone git status dst --no-local --upload-pack=${sq(`touch ${p}; false`)}); echo "rc=$?"`, dir);
    expect(existsSync(p)).toBe(false);
    expect(existsSync(path.join(dir, 'dst'))).toBe(false);
    const esc = r.decisions.find((d) => d.action === 'escalate');
    expect(esc).toMatchObject({ program: '/usr/bin/git', argv: ['git-clone', 'status', 'dst', '--no-local', `--upload-pack=touch ${p}; false`], argv0_replaced: { from: 'git-clone', to: 'git' } });
  });

  it('exec -a git-archive --output=/var/tmp/... writes nothing outside', async () => {
    const p = proof('archive');
    const dir = tempDir('cse-identity-');
    writeFileSync(path.join(dir, 'r.rules'), GIT_RULES);
    // A branch named `status` makes `git archive status` valid: the name is the only thing that differs.
    const r = await ce(sandbox, ['--rules', 'r.rules'], `git init -q . && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && git branch status; (exec -a git-archive git status --output=${sq(p)}); echo "rc=$?"`, dir);
    expect(existsSync(p)).toBe(false);
    expect(r.decisions.find((d) => d.action === 'escalate')).toMatchObject({ argv0_replaced: { from: 'git-archive', to: 'git' } });
  });

  it('a symlink named git-clone -> /usr/bin/git in the cwd runs as git, not git clone', async () => {
    const p = proof('link');
    const dir = tempDir('cse-identity-');
    writeFileSync(path.join(dir, 'r.rules'), GIT_RULES);
    const r = await ce(sandbox, ['--rules', 'r.rules'], `mkdir status; git -C status init -q; ln -s /usr/bin/git git-clone; ./git-clone status dst --no-local --upload-pack=${sq(`touch ${p}; false`)}; echo "rc=$?"`, dir);
    expect(existsSync(p)).toBe(false);
    expect(existsSync(path.join(dir, 'dst'))).toBe(false);
    expect(r.decisions.find((d) => d.action === 'escalate')).toMatchObject({ file: './git-clone', program: '/usr/bin/git', argv0_replaced: { from: './git-clone', to: 'git' } });
  });

  it('the escalated program sees the matched name as argv[0]; a Run keeps exactly what bash gave', async () => {
    // Each shell prints its own command line (NUL-separated): argv[0] first.
    const cmdline = 'cat /proc/$$/cmdline; echo';
    const r = await ce(sandbox, ['--escalate', 'dash'], `(exec -a evil-name dash -c ${sq(cmdline)}); (exec -a fancy-name /bin/bash -c ${sq(cmdline)}); /usr/bin/dash -c ${sq(cmdline)}`);
    expect(r.stdout.split('\n').map((l) => l.split('\0')[0])).toEqual(['dash', 'fancy-name', '/usr/bin/dash', '']);
    const shells = r.decisions.filter((d) => d.program !== '/usr/bin/cat').map((d) => [d.program, d.action, d.argv0_replaced ?? null]);
    expect(shells).toEqual([
      ['/usr/bin/dash', 'escalate', { from: 'evil-name', to: 'dash' }],
      ['/usr/bin/bash', 'run', null],
      ['/usr/bin/dash', 'escalate', null],
    ]);
  });
});

describe('2. the workdir is compared by device and inode, not by its text', () => {
  let host: string;
  beforeAll(() => {
    host = mkdtempSync('/tmp/cse-host-');
    writeFileSync(path.join(host, 'HOST-MARKER'), 'host only\n');
  });
  afterAll(() => rmSync(host, { recursive: true, force: true }));

  it.skipIf(lacks('bwrap', 'git'))('bwrap: a private-/tmp directory named like a host directory cannot run an escalated ls in the host one', async () => {
    const r = await ce('bwrap', ['--escalate', 'ls', '--escalate', 'git status'], `mkdir -p ${host} && cd ${host} && touch sandbox-file && ls; echo "ls=$?"; git status; echo "git=$?"`);
    expect(r.stdout).not.toContain('HOST-MARKER');
    expect(r.stdout).toContain('ls=126\n');
    expect(r.stdout).toContain('git=126\n');
    expect(r.stderr).toContain(`codex-execve-wrapper: /usr/bin/ls: denied: cannot escalate: working directory ${host} is not the same directory outside the sandbox as the requester's cwd\n`);
    expect(r.decisions.filter((d) => d.program === '/usr/bin/ls' || d.program === '/usr/bin/git').map((d) => d.action)).toEqual(['deny', 'deny']);
  });

  it.skipIf(lacks('bwrap'))('bwrap: the real (bind-mounted) working directory still escalates, and lists its files', async () => {
    const r = await ce('bwrap', ['--escalate', 'ls'], 'touch here-file && ls; echo "ls=$?"');
    expect(r.stdout).toContain('here-file\n');
    expect(r.stdout).toContain('ls=0\n');
    expect(r.decisions.find((d) => d.program === '/usr/bin/ls')?.action).toBe('escalate');
  });

  it('none: the host directory is the requester\'s own cwd, so the escalation is right to run there', async () => {
    const r = await ce('none', ['--escalate', 'ls'], `cd ${host} && ls; echo "ls=$?"`);
    expect(r.stdout).toBe('HOST-MARKER\nls=0\n');
  });
});

describe.each(SANDBOXES)('3. the #!-less script shell is the session\'s, not the environment\'s (--sandbox %s)', (sandbox) => {
  requireSandbox(sandbox);
  it('CODEX_ESCALATE_SHELL=/usr/bin/rm ./s victim deletes nothing; the script runs under the patched bash, its rm decided', async () => {
    const dir = tempDir('cse-identity-');
    writeFileSync(path.join(dir, 'victim'), 'keep\n');
    writeFileSync(path.join(dir, 'victim2'), 'keep\n');
    const r = await ce(sandbox, ['--deny', 'rm'], 'printf \'echo "hi $0"\\nrm victim2\\n\' > s; chmod +x s; CODEX_ESCALATE_SHELL=/usr/bin/rm ./s victim; echo "rc=$?"; env | grep -c CODEX_ESCALATE_SHELL', dir);
    expect(readFileSync(path.join(dir, 'victim'), 'utf8')).toBe('keep\n');
    expect(readFileSync(path.join(dir, 'victim2'), 'utf8')).toBe('keep\n');
    // rc=126: the script's own `rm victim2` was intercepted (the session's shell is the patched bash) and denied.
    expect(r.stdout).toBe('hi ./s\nrc=126\n0\n');
    expect(r.stderr).toContain('codex-execve-wrapper: /usr/bin/rm: denied: matches --deny "rm"');
    expect(r.decisions.filter((d) => d.program === '/usr/bin/rm').map((d) => d.action)).toEqual(['deny']);
  });
});

describe.each(SANDBOXES)('4. programs are resolved in the requester\'s view (--sandbox %s)', (sandbox) => {
  requireSandbox(sandbox);
  it('/proc/self/fd/7, /dev/fd/7, /dev/stdin, ./r -> /proc/self/fd/7, /proc/thread-self/fd/7, /proc/$$/fd/7, a link in /tmp: all decided as rm and denied', async () => {
    const dir = tempDir('cse-identity-');
    const victims = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7'];
    for (const v of victims) writeFileSync(path.join(dir, v), 'keep\n');
    const script = [
      'exec 7</usr/bin/rm',
      '/proc/self/fd/7 v1',
      '/dev/fd/7 v2',
      '/dev/stdin v3 </usr/bin/rm',
      'ln -s /proc/self/fd/7 r; ./r v4',
      '/proc/thread-self/fd/7 v5',
      '/proc/$$/fd/7 v7',
      'd=$(mktemp -d /tmp/cse-link-XXXX); ln -s /proc/self/fd/7 "$d/rr"; "$d/rr" v6; rm -rf "$d" 2>/dev/null',
      'echo done',
    ].join('\n');
    const r = await ce(sandbox, ['--deny', 'rm'], script, dir);
    expect(r.stdout).toBe('done\n');
    for (const v of victims) expect(existsSync(path.join(dir, v)), v).toBe(true);
    const rm = r.decisions.filter((d) => d.program === '/usr/bin/rm' && d.file !== '/usr/bin/rm');
    expect(rm.map((d) => [d.file, d.action])).toEqual([
      ['/proc/self/fd/7', 'deny'],
      ['/dev/fd/7', 'deny'],
      ['/dev/stdin', 'deny'],
      ['./r', 'deny'],
      ['/proc/thread-self/fd/7', 'deny'],
      [expect.stringMatching(/^\/proc\/\d+\/fd\/7$/), 'deny'],
      [expect.stringMatching(/^\/tmp\/cse-link-.*\/rr$/), 'deny'],
    ]);
    // Nothing was ever decided as one of the server's own fds.
    expect(r.decisions.filter((d) => !String(d.program).startsWith('/'))).toEqual([]);
  });

  it('a program opened through /proc/self/fd is escalated as that file (and runs outside)', async () => {
    const p = proof('fd-escalate');
    const r = await ce(sandbox, ['--escalate', 'touch'], `exec 7</usr/bin/touch; /proc/self/fd/7 ${p}; echo "rc=$?"`);
    expect(r.stdout).toBe('rc=0\n');
    expect(existsSync(p)).toBe(true);
    expect(r.decisions.find((d) => d.file === '/proc/self/fd/7')).toMatchObject({ program: '/usr/bin/touch', action: 'escalate' });
  });
});

describe('4. a file of the sandbox\'s private /tmp is never escalated as the host file of the same path (bwrap)', () => {
  requireTool('bwrap');
  let hostBin: string;
  beforeAll(() => {
    hostBin = mkdtempSync('/tmp/cse-hostbin-');
    copyFileSync('/usr/bin/true', path.join(hostBin, 'true'));
  });
  afterAll(() => rmSync(hostBin, { recursive: true, force: true }));

  it('the sandbox puts touch at the host path of an allowed `true`: denied, nothing written outside', async () => {
    const p = proof('tmp-twin');
    // Named by its absolute path, so the by-name gate for sandbox-writable roots (/tmp) does not decide first: this is the identity check.
    const r = await ce('bwrap', ['--escalate', `${hostBin}/true`], `mkdir -p ${hostBin} && cp /usr/bin/touch ${hostBin}/true && ${hostBin}/true ${p}; echo "rc=$?"`);
    expect(existsSync(p)).toBe(false);
    expect(r.stdout).toBe('rc=126\n');
    const d = r.decisions.find((x) => x.file === `${hostBin}/true`);
    expect(d).toMatchObject({ program: `${hostBin}/true`, action: 'deny', reason: `cannot escalate: ${hostBin}/true is not the same file in the requester's view of the filesystem as outside the sandbox` });
  });

  it('a program only in the private /tmp is decided on its sandbox path and never escalated', async () => {
    const p = proof('tmp-only');
    const r = await ce('bwrap', ['--escalate', 'true'], `d=$(mktemp -d /tmp/cse-only-XXXX); cp /usr/bin/touch "$d/true"; "$d/true" ${p}; echo "rc=$?"`);
    expect(existsSync(p)).toBe(false);
    expect(r.stdout).toBe('rc=126\n');
    expect(r.decisions.find((x) => String(x.file).endsWith('/true'))).toMatchObject({ action: 'deny' });
  });
});

describe('4. the program fd on the request frame (raw client: any fd, any count)', () => {
  let server: EscalationServer;
  let session: EscalationSession;
  beforeAll(async () => {
    server = new EscalationServer({ policy: createStaticPolicy({ deny: ['rm'], escalate: ['true'] }) });
    session = await server.startSession();
  });
  afterAll(() => server.close());

  async function ask(message: Record<string, unknown>, fds: number[]): Promise<unknown> {
    const c = RawClient.connect(session.clientFd);
    try {
      c.send({ argv: ['x'], workdir: process.cwd(), env: {}, ...message }, fds);
      return await c.receive(5000);
    } finally {
      c.close();
    }
  }
  const settle = async (want: number) => {
    for (let i = 0; i < 100 && countOpenFds() > want; i++) await new Promise((r) => setTimeout(r, 10));
    return countOpenFds();
  };

  it('the fd decides, not `file`: an fd on rm with file=/usr/bin/true is denied as rm', async () => {
    const fd = openPath('/usr/bin/rm');
    try {
      expect(await ask({ file: '/usr/bin/true', argv: ['true'], ext: 2 }, [fd])).toEqual({ action: { Deny: { reason: 'matches --deny "rm"' } } });
    } finally {
      closeFd(fd);
    }
  });

  it('a second fd that is not a seccomp listener (or below ext 3), or three fds, are protocol errors and all are closed; an fd below ext 2 too', async () => {
    const base = countOpenFds();
    const a = openPath('/usr/bin/true');
    const b = openPath('/usr/bin/true');
    const c = openPath('/usr/bin/true');
    const notListener = { action: { Deny: { reason: "the second fd on a request must be an exec filter's listener (ext 3)" } } };
    expect(await ask({ file: '/usr/bin/true', ext: 3 }, [a, b])).toEqual(notListener);
    expect(await ask({ file: '/usr/bin/true', ext: 2 }, [a, b])).toEqual(notListener);
    expect(await ask({ file: '/usr/bin/true', ext: 3 }, [a, b, c])).toEqual({ action: { Deny: { reason: '3 file descriptors attached to a request (at most 2)' } } });
    expect(await ask({ file: '/usr/bin/true', ext: 1 }, [a])).toEqual({ action: { Deny: { reason: 'a file descriptor is attached to a request of extension level 1 (needs 2)' } } });
    closeFd(a);
    closeFd(b);
    closeFd(c);
    expect(await settle(base)).toBe(base);
  });

  it('a socket (any fd that is not a file) as the program fd is simply not a file: never escalated, and the server keeps working', async () => {
    const [r, w] = socketPair('stream', { cloexec: true });
    try {
      const reply = await ask({ file: '/usr/bin/true', argv: ['true'], ext: 2 }, [r]);
      // Unresolved: decided on the lexical path (`true` would escalate), and an escalation of something that is not a file is refused.
      expect(reply).toEqual({ action: { Deny: { reason: 'cannot escalate: EACCES: cannot resolve /usr/bin/true' } } });
    } finally {
      closeFd(r);
      closeFd(w);
    }
    expect(await ask({ file: '/usr/bin/rm', argv: ['rm'] }, [])).toEqual({ action: { Deny: { reason: 'matches --deny "rm"' } } });
  });

  it('the ENOEXEC shell is sent only to a wrapper that declared ext >= 1 (an upstream wrapper gets the plain Run)', async () => {
    const srv = new EscalationServer({ policy: createStaticPolicy({}), shellPath: '/opt/session/bash' });
    const s = await srv.startSession();
    try {
      for (const [ext, want] of [[undefined, { action: 'Run' }], [1, { action: 'Run', shell: '/opt/session/bash' }]] as const) {
        const c = RawClient.connect(s.clientFd);
        try {
          c.send({ file: '/usr/bin/true', argv: ['true'], workdir: process.cwd(), env: {}, ...(ext !== undefined ? { ext } : {}) });
          expect(await c.receive(5000)).toStrictEqual(want);
        } finally {
          c.close();
        }
      }
      expect(s.env).not.toHaveProperty('CODEX_ESCALATE_SHELL');
    } finally {
      await srv.close();
    }
  });

  it('the command starts in the checked workdir even when the client forwards its own directory at every fd number', async () => {
    const srv = new EscalationServer({ policy: createStaticPolicy({ escalate: ['pwd'] }) });
    const s = await srv.startSession();
    const dir = tempDir('cse-identity-cwd-');
    const outFile = path.join(dir, 'pwd.out');
    const other = openPath(dir); // "the sandbox's" directory
    const out = openSync(outFile, 'w');
    const c = RawClient.connect(s.clientFd);
    try {
      c.send({ file: '/usr/bin/pwd', argv: ['pwd'], workdir: process.cwd(), env: {}, ext: 1 });
      expect(await c.receive(5000)).toEqual({ action: 'Escalate' });
      // Targets 1 and 3..1000: whatever number the server's workdir handle has, a directory of ours lands on it in the child.
      const targets = [1, ...Array.from({ length: 998 }, (_, i) => i + 3)];
      for (let i = 0; i < targets.length; i += 16) {
        const chunk = targets.slice(i, i + 16);
        c.send({ fds: chunk, ...(i + 16 < targets.length ? { more: true } : {}) }, chunk.map((t) => (t === 1 ? out : other)));
      }
      expect(await c.receive(10_000)).toEqual({ exit_code: 0 });
      expect(readFileSync(outFile, 'utf8')).toBe(`${process.cwd()}\n`);
    } finally {
      c.close();
      closeFd(other);
      closeSync(out);
      await srv.close();
    }
  });

  it('ext 2 without an fd: the wrapper could not open the program, so it is not found (never resolved in the server\'s view)', async () => {
    expect(await ask({ file: '/usr/bin/true', argv: ['true'], ext: 2 }, [])).toEqual({ action: { Deny: { reason: 'cannot escalate: ENOENT: cannot resolve /usr/bin/true' } } });
  });

  it('an upstream request (no ext, no fd) naming /proc/self/fd/7, /dev/fd/7, /dev/stdin is resolved in the requester\'s /proc/PID, not the server\'s', async () => {
    // Another process speaks the upstream protocol (no ext, no fd); its fd 7 and stdin are rm.
    const client = [
      'import json, os, socket, struct, sys',
      'mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)',
      'socket.send_fds(socket.socket(fileno=3), [b"\\0"], [theirs.fileno()]); theirs.close()',
      'body = json.dumps({"file": sys.argv[1], "argv": ["x", "victim"], "workdir": os.getcwd(), "env": {}}).encode()',
      'mine.sendall(struct.pack("<I", len(body)) + body)',
      'n = struct.unpack("<I", mine.recv(4, socket.MSG_WAITALL))[0]',
      'print(mine.recv(n, socket.MSG_WAITALL).decode())',
    ].join('\n');
    const rm = openSync('/usr/bin/rm', 'r');
    try {
      for (const file of ['/proc/self/fd/7', '/dev/fd/7', '/proc/thread-self/fd/7', '/dev/stdin']) {
        const child = spawn('python3', ['-c', client, file], { stdio: [rm, 'pipe', 'inherit', session.clientFd, 'ignore', 'ignore', 'ignore', rm] });
        let out = '';
        child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
        await new Promise((r) => child.on('close', r));
        expect(JSON.parse(out), file).toEqual({ action: { Deny: { reason: 'matches --deny "rm"' } } });
      }
    } finally {
      closeSync(rm);
    }
  });
});
