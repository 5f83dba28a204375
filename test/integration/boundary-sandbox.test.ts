/**
 * The sandbox boundary, attacked as a prompt-injected script running as root
 * would: every test drives the real CLI (node bin/codex-escalate.js run) with
 * the real bwrap sandbox, and --sandbox none where the class applies. A proof
 * file under /var/tmp appearing means code ran outside the sandbox (its root
 * is read-only there).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markCloexecFrom, setCloexec, socketPair, closeFd } from '../../src/native/index.js';
import { REFUSED_SYSCALLS, sandboxSeccompFilter, seccompAbis } from '../../src/sandbox/seccomp.js';
import { packageRoot } from '../../src/paths.js';
import { SHELL_SOCKET_FD_MIN } from '../../src/protocol/constants.js';
import { cliEnv, cliPath } from '../helpers/e2e.js';
import { patchedBash, recordingPolicy, runBash, tempDir } from '../helpers/harness.js';
import { lacks, requireTool } from '../helpers/tools.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `codex-escalate run [args] -- script` in `cwd`. `fd251` places an extra pipe
 * at fd 251 of the CLI (inherited without O_CLOEXEC, as a caller's stray fd is).
 */
function cli(args: readonly string[], script: string, opts: { cwd?: string; fd251?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const cwd = opts.cwd ?? tempDir('cse-bsb-');
  const stdio: ('pipe' | 'ignore')[] = ['pipe', 'pipe', 'pipe'];
  if (opts.fd251) {
    while (stdio.length < 251) stdio.push('ignore');
    stdio.push('pipe');
  }
  const child = spawn(process.execPath, [cliPath, 'run', '--shell', patchedBash(), '--log-file', path.join(cwd, '.audit.jsonl'), ...args, '--', script], {
    cwd,
    env: opts.env ?? cliEnv(),
    stdio,
  });
  child.stdin!.end();
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const bwrap = (script: string, extra: readonly string[] = [], opts: { cwd?: string; fd251?: boolean } = {}) => cli(['--sandbox', 'bwrap', ...extra], script, opts);

let proofSeq = 0;
/** A fresh proof-file path under /var/tmp (read-only in the sandbox); removed after the suite. */
const proofs: string[] = [];
function proof(tag: string): string {
  const p = `/var/tmp/cse-bsb-${process.pid}-${++proofSeq}-${tag}`;
  proofs.push(p);
  return p;
}

afterAll(() => {
  for (const p of proofs) rmSync(p, { force: true, recursive: true });
});

describe('finding 1: root keeps no capability inside bwrap', () => {
  requireTool('bwrap');
  it('the shell and what it runs have CapEff, CapPrm, CapBnd and CapAmb 0, as uid 0 of their own user namespace', async () => {
    const r = await bwrap('grep -E "^Cap(Eff|Prm|Bnd|Amb)" /proc/$$/status; grep -E "^Cap(Eff|Bnd)" /proc/self/status; cat /proc/self/uid_map; id -u');
    const caps = r.stdout.split('\n').filter((l) => l.startsWith('Cap'));
    expect(caps).toHaveLength(6);
    for (const l of caps) expect(l).toMatch(/^Cap\w+:\s+0{16}$/);
    // uid 0 inside is the caller's uid 0 outside, and nothing else is mapped.
    expect(r.stdout).toMatch(/^\s*0\s+0\s+1$/m);
    expect(r.stdout.trim().endsWith('\n0') || r.stdout.trim().endsWith('0')).toBe(true);
  });

  it('mount -o remount,rw / fails, so touch /var/tmp/PROOF cannot follow (the review\'s exploit)', async () => {
    const p = proof('remount');
    const r = await bwrap(`mount -o remount,rw / && touch ${p}; echo "status=$?"`);
    expect(r.stdout).toMatch(/status=(1|32)\n/);
    expect(existsSync(p)).toBe(false);
  });

  it('no other mount gets through either: tmpfs on the cwd, a bind of /var/tmp, util-linux mount being setuid', async () => {
    const p = proof('bind');
    const work = tempDir('cse-bsb-');
    const r = await bwrap(`mkdir m && mount -t tmpfs none m; echo "tmpfs=$?"; mount --bind m /var/tmp && touch ${p}; echo "bind=$?"; mount --make-rprivate /; echo "propagation=$?"`, [], { cwd: work });
    expect(r.stdout).toMatch(/tmpfs=32\n/);
    expect(r.stdout).toMatch(/bind=32\n/);
    expect(r.stdout).toMatch(/propagation=32\n/);
    expect(existsSync(p)).toBe(false);
    expect(statSync('/usr/bin/mount').mode & 0o4000).toBe(0o4000); // the setuid bit did not help
  });

  it('unshare -r, unshare -m, unshare --user --map-root-user and unshare -n all fail', async () => {
    const r = await bwrap('for a in "-r" "-m" "--user --map-root-user" "-n" "-U"; do unshare $a true 2>/dev/null; echo "unshare $a=$?"; done');
    expect(r.stdout).toBe('unshare -r=1\nunshare -m=1\nunshare --user --map-root-user=1\nunshare -n=1\nunshare -U=1\n');
  });

  it('nsenter into pid 1\'s namespaces fails (nsenter -t 1 -m, -a)', async () => {
    const p = proof('nsenter');
    const r = await bwrap(`nsenter -t 1 -m touch ${p}; echo "m=$?"; nsenter -t 1 -a touch ${p}; echo "a=$?"`);
    expect(r.stdout).toBe('m=1\na=1\n');
    expect(existsSync(p)).toBe(false);
  });

  it.skipIf(lacks('strace', 'gdb'))('ptrace of the shell fails: PTRACE_ATTACH via python3 ctypes, strace, gdb -p', async () => {
    const attach = `python3 -c 'import ctypes, ctypes.util, os, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
r = libc.ptrace(16, int(sys.argv[1]), None, None)
print("attach", r, ctypes.get_errno())' $$`;
    const r = await bwrap(`${attach}; strace -o /dev/null true 2>/dev/null; echo "strace=$?"; gdb -nx -batch -p $$ -ex "print 1" 2>&1 | grep -c "ptrace: Operation not permitted"`);
    expect(r.stdout).toMatch(/^attach -1 1\n/);
    expect(r.stdout).toMatch(/strace=1\n/);
    expect(r.stdout).toMatch(/\n[1-9]\d*\n$/);
  });

  it.skipIf(lacks('capsh'))('setuid and capability tools give nothing back: su, setpriv, capsh, chroot', async () => {
    const p = proof('setuid');
    const r = await bwrap(
      `su -c "touch ${p}" root; echo "su=$?"; setpriv --inh-caps +all --ambient-caps +all touch ${p}; echo "setpriv=$?"; ` +
        `/usr/sbin/capsh --caps=cap_sys_admin+eip -- -c "touch ${p}"; echo "capsh=$?"; /usr/sbin/chroot / true; echo "chroot=$?"`,
    );
    expect(r.stdout).toMatch(/su=1\n/);
    expect(r.stdout).toMatch(/setpriv=127\n/); // setpriv's own code for a failed capability change
    expect(r.stderr).toMatch(/setpriv: apply capabilities: Operation not permitted/);
    expect(r.stdout).toMatch(/capsh=1\n/);
    expect(r.stderr).toMatch(/Operation not permitted/);
    expect(r.stdout).toMatch(/chroot=125\n/);
    expect(existsSync(p)).toBe(false);
  });

  it('/proc/sys, /proc/sysrq-trigger and /sys cannot be written (the sandbox is host uid 0, for which sysctls are owner-writable)', async () => {
    const before = readFileSync('/proc/sys/kernel/core_uses_pid', 'utf8');
    // Each write puts back the value already there, so even a write that got through would change nothing.
    const r = await bwrap(
      'cat /proc/sys/kernel/core_uses_pid > /proc/sys/kernel/core_uses_pid; echo "sysctl=$?"; ' +
        'echo 0 > /proc/sys/kernel/ns_last_pid 2>/dev/null; echo "ns_last_pid=$?"; ' +
        'test -w /proc/sys/kernel/core_pattern && echo core_pattern-writable; ' +
        '(echo h > /proc/sysrq-trigger) 2>/dev/null; echo "sysrq=$?"; ' +
        'cat /sys/kernel/rcu_expedited > /sys/kernel/rcu_expedited; echo "sys=$?"',
    );
    expect(r.stdout).toMatch(/sysctl=1\n/);
    expect(r.stderr).toMatch(/core_uses_pid: Read-only file system/);
    expect(r.stdout).not.toContain('core_pattern-writable');
    expect(r.stdout).toMatch(/sysrq=1\n/);
    expect(r.stdout).toMatch(/sys=1\n/);
    expect(r.stderr).toMatch(/rcu_expedited: Read-only file system/);
    expect(readFileSync('/proc/sys/kernel/core_uses_pid', 'utf8')).toBe(before);
  });

  it.skipIf(lacks('ip'))('ip link add fails for lack of CAP_NET_ADMIN, with --network (the host\'s namespace) too', async () => {
    const name = `cse${process.pid % 100000}`;
    const r = await bwrap(`ip link add ${name} type dummy; echo "status=$?"`, ['--network']);
    expect(r.stdout).toBe('status=2\n');
    expect(r.stderr).toMatch(/Operation not permitted/);
    expect(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })).not.toContain(`${name}:`);
  });

  it('kill -9 1 and kill -9 -1 reach no process outside the sandbox\'s pid namespace', async () => {
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      // kill -1 spares the caller itself; every other process it could reach would die.
      const r = await bwrap('kill -9 1; echo "after kill 1: alive"; kill -9 -1; echo "after kill -1: alive"');
      expect(r.stdout).toBe('after kill 1: alive\nafter kill -1: alive\n');
      // The host process of the same uid is still running.
      expect(sleeper.exitCode).toBeNull();
      expect(sleeper.signalCode).toBeNull();
      process.kill(sleeper.pid!, 0);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('a script calling unshare(2) itself (python3 ctypes) gets EPERM for CLONE_NEWUSER, CLONE_NEWNS and both', async () => {
    const r = await bwrap(`python3 -c 'import ctypes, ctypes.util
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
for flag in (0x10000000, 0x00020000, 0x10020000):
    print(flag, libc.unshare(flag), ctypes.get_errno())'`);
    expect(r.stdout).toBe('268435456 -1 1\n131072 -1 1\n268566528 -1 1\n');
  });

  it('host daemons\' sockets under /run are not reachable (a daemon would see the peer as uid 0)', async () => {
    const sock = `/run/cse-bsb-${process.pid}.sock`;
    const server = net.createServer((s) => s.end('HOST-DAEMON\n'));
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const connect = `python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("${sock}"); print(s.recv(64).decode().strip())'`;
      const r = await bwrap(`${connect}; echo "status=$?"`);
      expect(r.stdout).toBe('status=1\n');
      expect(r.stderr).toMatch(/FileNotFoundError/);
      // Control: the same client outside the sandbox does reach it.
      const outside = await cli(['--sandbox', 'none'], connect);
      expect(outside.stdout).toBe('HOST-DAEMON\n');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(sock, { force: true });
    }
  });

  it('no setuid/setgid file or file capability can be planted in the working directory (the host\'s, owned by the caller)', async () => {
    const work = tempDir('cse-bsb-');
    const r = await bwrap(
      'cp /bin/sh ./sh; chmod u+s ./sh; echo "chmod u+s=$?"; chmod g+s ./sh; echo "chmod g+s=$?"; chmod 6755 ./sh; echo "chmod 6755=$?"; ' +
        'install -m 4755 /bin/true ./t; echo "install=$?"; ' +
        'python3 -c "import os; os.open(\"py\", os.O_CREAT | os.O_WRONLY, 0o4755)"; echo "open=$?"; ' +
        '/usr/sbin/setcap cap_sys_admin+ep ./sh; echo "setcap=$?"; chmod 755 ./sh; echo "chmod 755=$?"',
      [],
      { cwd: work },
    );
    expect(r.stdout).toBe('chmod u+s=1\nchmod g+s=1\nchmod 6755=1\ninstall=1\nopen=1\nsetcap=1\nchmod 755=0\n');
    for (const f of ['sh', 't', 'py']) {
      const p = path.join(work, f);
      if (existsSync(p)) expect((statSync(p).mode & 0o6000).toString(8)).toBe('0');
    }
    const caps = execFileSync('/usr/sbin/getcap', [path.join(work, 'sh')], { encoding: 'utf8' });
    expect(caps.trim()).toBe('');
  });

  it.skipIf(lacks('git'))('ordinary work still runs: pipes, job control, python3, git, files in the cwd owned by the caller', async () => {
    const work = tempDir('cse-bsb-');
    const r = await bwrap(
      'set -m; echo abc | tr a-c x-z; sleep 0.2 & jobs | wc -l; wait; ' +
        'python3 -c "import threading, subprocess; t = threading.Thread(target=print, args=(\\"thread\\",)); t.start(); t.join(); print(subprocess.run([\\"echo\\", \\"sub\\"], capture_output=True, text=True).stdout.strip())"; ' +
        'git init -q repo && cd repo && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && git log --format=%s; cd ..; touch mine',
      [],
      { cwd: work },
    );
    expect(r.stdout).toBe('xyz\n1\nthread\nsub\nx\n');
    expect(r.code).toBe(0);
    expect(statSync(path.join(work, 'mine')).uid).toBe(process.getuid!());
  });

  it('doctor reports the sandbox\'s CapEff 0 and that user namespaces are refused', () => {
    const out = execFileSync(process.execPath, [cliPath, 'doctor'], { encoding: 'utf8', env: cliEnv({ CODEX_ESCALATE_BASH: patchedBash() }), cwd: tempDir('cse-bsb-') });
    expect(out).toMatch(/^ok +sandbox confinement: effective capabilities inside: 0{16} \(bounding 0{16}\); user namespace creation: refused$/m);
  });

  it('doctor fails the check when the sandbox keeps capabilities (a bwrap shim that drops the confinement flags)', () => {
    const bin = mkdtempSync(path.join(os.tmpdir(), 'cse-bsb-shim-'));
    const real = execFileSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).trim();
    const shim = path.join(bin, 'bwrap');
    writeFileSync(
      shim,
      `#!/bin/bash\nargs=()\nfor a in "$@"; do case "$a" in --unshare-user|--disable-userns|--assert-userns-disabled) ;; *) args+=("$a");; esac; done\n` +
        `# drop "--cap-drop ALL"\nout=()\nskip=0\nfor a in "\${args[@]}"; do if [ $skip = 1 ]; then skip=0; continue; fi; if [ "$a" = --cap-drop ]; then skip=1; continue; fi; out+=("$a"); done\nexec ${real} "\${out[@]}"\n`,
    );
    chmodSync(shim, 0o755);
    let code = 0;
    let out = '';
    try {
      out = execFileSync(process.execPath, [cliPath, 'doctor'], { encoding: 'utf8', env: cliEnv({ CODEX_ESCALATE_BASH: patchedBash(), PATH: `${bin}:/usr/local/bin:/usr/bin:/bin` }), cwd: tempDir('cse-bsb-') });
    } catch (err) {
      const e = err as { status: number; stdout: string };
      code = e.status;
      out = e.stdout;
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
    expect(out).toMatch(/^FAIL +sandbox confinement: effective capabilities inside: (?!0{16})[0-9a-f]{16}/m);
    expect(code).toBe(1);
  });
});

describe('finding 1, defence in depth: the seccomp program, per ABI', () => {
  requireTool('bwrap');
  let probe: string;
  let work: string;
  beforeAll(() => {
    // In the working directory: the only place both the sandbox and the host see.
    work = tempDir('cse-bsb-seccomp-');
    probe = path.join(work, 'seccomp-probe');
    execFileSync('cc', ['-O1', '-no-pie', '-Wall', '-Wextra', '-Werror', '-o', probe, path.join(packageRoot, 'test/fixtures/sandbox/seccomp-probe.c')]);
  });

  const parse = (out: string) => new Map(out.trim().split('\n').map((l) => { const [abi, name, res] = l.split(' '); return [`${abi} ${name}`, res] as const; }));
  const refused = ['unshare0', 'setns', 'clone_newns', 'clone_newuser', 'mount', 'umount2', 'pivot_root', 'chroot', 'open_tree', 'fsopen', 'fspick', 'mount_setattr', 'ptrace', 'process_vm_readv', 'pidfd_getfd', 'kexec_load', 'finit_module', 'delete_module', 'bpf', 'perf_event_open', 'open_by_handle_at', 'keyctl', 'add_key', 'userfaultfd', 'ioctl_tiocsti', 'chmod_suid', 'fchmodat_sgid', 'open_creat_suid', 'openat_creat_sgid', 'mknod_suid'];
  const allowed = { getpid: 'ok', ioctl_other: 'EBADF', clone_plain: 'ok', chmod_plain: 'ENOENT', open_nocreat_suidmode: 'ENOENT', open_creat_plain: 'ENOENT' };

  it('x86_64 and i386 (int $0x80): each refused call fails with EPERM, clone3, openat2 and io_uring_setup with ENOSYS, while getpid, other ioctls, a plain clone, chmod and open without setuid bits work', async () => {
    const r = await bwrap(`./seccomp-probe`, [], { cwd: work });
    const res = parse(r.stdout);
    for (const abi of ['x86_64', 'i386']) {
      for (const name of refused) expect(`${abi} ${name} ${res.get(`${abi} ${name}`)}`).toBe(`${abi} ${name} EPERM`);
      expect(res.get(`${abi} clone3`)).toBe('ENOSYS');
      expect(res.get(`${abi} openat2`)).toBe('ENOSYS');
      expect(res.get(`${abi} io_uring_setup`)).toBe('ENOSYS');
      for (const [name, want] of Object.entries(allowed)) expect(`${abi} ${name} ${res.get(`${abi} ${name}`)}`).toBe(`${abi} ${name} ${want}`);
    }
  });

  it('x32: every syscall is refused with EPERM', async () => {
    const r = await bwrap(`./seccomp-probe`, [], { cwd: work });
    const x32 = [...parse(r.stdout)].filter(([k]) => k.startsWith('x32 '));
    expect(x32.length).toBe(refused.length + 3 + Object.keys(allowed).length);
    for (const [k, v] of x32) expect(`${k} ${v}`).toBe(`${k} EPERM`);
  });

  it('control: with --sandbox none the same calls are not refused by anything (so the EPERMs above are the filter\'s)', async () => {
    const r = await cli(['--sandbox', 'none'], './seccomp-probe', { cwd: work });
    const res = parse(r.stdout);
    for (const abi of ['x86_64', 'i386']) {
      for (const name of [...refused, 'clone3', 'openat2', 'io_uring_setup']) expect(`${abi} ${name} ${res.get(`${abi} ${name}`)}`).not.toMatch(/ (EPERM|undefined)$/);
    }
    expect(res.get('x86_64 clone3')).toBe('EINVAL');
  });

  it('the program is well formed: one block per ABI, every jump in range, names cover the brief', () => {
    const f = sandboxSeccompFilter('x64')!;
    expect(f.length % 8).toBe(0);
    const n = f.length / 8;
    expect(n).toBeLessThan(4096); // BPF_MAXINSNS
    for (let i = 0; i < n; i++) {
      const code = f.readUInt16LE(i * 8);
      if ((code & 0x07) === 0x05) {
        expect(i + 1 + f.readUInt8(i * 8 + 2)).toBeLessThan(n);
        expect(i + 1 + f.readUInt8(i * 8 + 3)).toBeLessThan(n);
      }
    }
    expect(REFUSED_SYSCALLS).toEqual(expect.arrayContaining(['mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'kexec_load', 'init_module', 'finit_module', 'bpf', 'perf_event_open', 'open_by_handle_at', 'fsopen', 'fsmount', 'move_mount', 'open_tree', 'fspick', 'mount_setattr', 'keyctl', 'add_key', 'request_key', 'userfaultfd']));
    expect(sandboxSeccompFilter('arm64')).not.toBeNull();
    expect(sandboxSeccompFilter('riscv64')).toBeNull();
  });
});

/** A classic-BPF interpreter for the instructions the filter uses, over a synthetic struct seccomp_data. */
function runFilter(prog: Buffer, data: { arch: number; nr: number; args?: readonly number[] }): number {
  const mem = Buffer.alloc(64);
  mem.writeUInt32LE(data.nr >>> 0, 0);
  mem.writeUInt32LE(data.arch >>> 0, 4);
  (data.args ?? []).forEach((a, i) => mem.writeUInt32LE(a >>> 0, 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < prog.length / 8; ) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    pc++;
    if (code === 0x20) acc = mem.readUInt32LE(k);
    else if (code === 0x06) return k;
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x35) pc += acc >= k ? jt : jf;
    else if (code === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else throw new Error(`unexpected BPF opcode ${code.toString(16)}`);
  }
  throw new Error('fell off the end of the program');
}

describe('seccomp program logic, every ABI of x64 and arm64 (interpreted)', () => {
  const ALLOW = 0x7fff0000;
  const EPERM = 0x00050001;
  const ENOSYS = 0x00050026;
  for (const arch of ['x64', 'arm64']) {
    const prog = sandboxSeccompFilter(arch)!;
    for (const t of seccompAbis(arch)) {
      it(`${arch}/${t.name}: refused calls EPERM, clone3/openat2/io_uring ENOSYS, clone by flags, modes by bits, the rest allowed`, () => {
        const run = (nr: number, args?: number[]) => runFilter(prog, { arch: t.auditArch, nr, ...(args ? { args } : {}) });
        for (const nr of Object.values(t.refused)) expect(run(nr)).toBe(EPERM);
        expect(Object.keys(t.refused)).toEqual(expect.arrayContaining(REFUSED_SYSCALLS.filter((n) => !['umount', 'kexec_file_load'].includes(n))));
        for (const nr of [t.clone3, t.openat2, ...t.ioUring]) expect(run(nr)).toBe(ENOSYS);
        expect(run(t.clone, [0x10000000 | 17])).toBe(EPERM); // CLONE_NEWUSER | SIGCHLD
        expect(run(t.clone, [0x00020000])).toBe(EPERM); // CLONE_NEWNS
        expect(run(t.clone, [0x003d0f00])).toBe(ALLOW); // pthread_create's flags
        expect(run(t.ioctl, [0, 0x5412])).toBe(EPERM);
        expect(run(t.ioctl, [0, 0x541c])).toBe(EPERM);
        expect(run(t.ioctl, [0, 0x5413])).toBe(ALLOW);
        for (const c of t.modeCalls) {
          const args = (mode: number, flags: number) => { const a = [0, 0, 0, 0, 0, 0]; a[c.mode] = mode; if (c.flags !== undefined) a[c.flags] = flags; return a; };
          expect(run(c.nr, args(0o4755, 0o101))).toBe(EPERM);
          expect(run(c.nr, args(0o2755, 0o101))).toBe(EPERM);
          expect(run(c.nr, args(0o755, 0o101))).toBe(ALLOW);
          if (c.flags !== undefined) expect(run(c.nr, args(0o4755, 0))).toBe(ALLOW); // mode unused without O_CREAT
        }
        const special = new Set<number>([t.ioctl, t.clone, t.clone3, t.openat2, ...t.ioUring, ...Object.values(t.refused), ...t.modeCalls.map((c) => c.nr)]);
        for (let nr = 0; nr < 470; nr++) if (!special.has(nr)) expect(run(nr, [0, 0, 0, 0])).toBe(ALLOW);
        if (t.refuseFrom !== undefined) expect(run(t.refuseFrom + 39)).toBe(EPERM);
      });
    }
    it(`${arch}: a syscall from an unknown audit arch is refused`, () => {
      expect(runFilter(prog, { arch: 0xdeadbeef, nr: 0 })).toBe(EPERM);
    });
  }
});

describe('finding 2: no stray fd of the caller reaches the sandbox', () => {
  const fdsOf = (out: string, tag: string) => (out.split('\n').find((l) => l.startsWith(`${tag}:`)) ?? '').slice(tag.length + 1).trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
  // Through a file, not a pipe: while `ls` lists the shell's fds, a pipeline's pipe end can still be open in the shell.
  const list = (tag: string, dir: string) => `printf '${tag}: '; ls ${dir} > /tmp/cse-fds-$$; tr '\\n' ' ' < /tmp/cse-fds-$$; rm -f /tmp/cse-fds-$$; echo`;

  for (const sandbox of ['bwrap', 'none'] as const) {
    it.skipIf(sandbox === 'bwrap' && lacks('bwrap'))(`--sandbox ${sandbox}: with a pipe inherited at fd 251 the shell holds exactly 0, 1, 2 and the session socket (moved from 63 to SHELL_SOCKET_FD_MIN); a Run'd ls holds only those plus its own dir fd`, async () => {
      const r = await cli(['--sandbox', sandbox], `${list('shell', '/proc/$$/fd')}; ${list('ls', '/proc/self/fd')}`, { fd251: true });
      expect(fdsOf(r.stdout, 'shell')).toEqual([0, 1, 2, SHELL_SOCKET_FD_MIN]);
      expect(fdsOf(r.stdout, 'ls')).toEqual([0, 1, 2, 3, SHELL_SOCKET_FD_MIN]);
    });

    it.skipIf(sandbox === 'bwrap' && lacks('bwrap'))(`--sandbox ${sandbox}: an escalated ls sees only the stdio the wrapper forwarded (and its own dir fd)`, async () => {
      const r = await cli(['--sandbox', sandbox, '--escalate', 'ls'], `ls /proc/self/fd | tr '\\n' ' '; echo; ls -l /proc/self/fd/0 /proc/self/fd/2 >/dev/null && echo linked`, { fd251: true });
      const first = r.stdout.split('\n')[0]!.trim().split(/\s+/).map(Number);
      expect(first).toEqual([0, 1, 2, 3]);
      expect(r.stdout).toContain('linked');
    });
  }

  it('markCloexecFrom marks every fd without O_CLOEXEC and reports exactly those, so launchShell can put them back', () => {
    const [a, b] = socketPair('stream', { cloexec: false });
    try {
      const changed = markCloexecFrom(3);
      expect(changed).toEqual(expect.arrayContaining([a, b]));
      // A second pass finds nothing left to mark.
      expect(markCloexecFrom(3)).toEqual([]);
      for (const fd of changed) setCloexec(fd, false);
      expect(markCloexecFrom(3)).toEqual(expect.arrayContaining([a, b]));
      for (const fd of changed) setCloexec(fd, false);
    } finally {
      closeFd(a);
      closeFd(b);
    }
    expect(() => markCloexecFrom(-1)).toThrow(RangeError);
  });

  it('launchShell (library use, no CLI): a non-close-on-exec fd of the caller does not reach the shell, and is inheritable again afterwards', async () => {
    const [a, b] = socketPair('stream', { cloexec: false });
    try {
      const r = await runBash(`${list('shell', '/proc/$$/fd')}`, { policy: recordingPolicy().policy });
      expect(fdsOf(r.stdout, 'shell')).toEqual([0, 1, 2, SHELL_SOCKET_FD_MIN]);
      expect([a, b].some((fd) => fdsOf(r.stdout, 'shell').includes(fd))).toBe(false);
      // Still without FD_CLOEXEC: markCloexecFrom reports (and sets) exactly the fds lacking it.
      const lacking = markCloexecFrom(3);
      for (const fd of lacking) setCloexec(fd, false);
      expect(lacking).toEqual(expect.arrayContaining([a, b]));
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });
});
