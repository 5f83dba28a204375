/**
 * The classic-BPF seccomp program bwrap loads (--seccomp) before it execs
 * the sandboxed shell. Defence in depth behind the capability drop and the
 * user namespace: even a process that somehow regained a capability cannot
 *
 * - inject keystrokes into the caller's terminal (ioctl TIOCSTI/TIOCLINUX):
 *   the shell keeps the terminal for job control, and on kernels with
 *   dev.tty.legacy_tiocsti=1 pushed input would run outside the sandbox;
 * - change its mounts or namespaces (mount family incl. the new mount API,
 *   pivot_root, chroot, unshare, setns, clone with CLONE_NEW*);
 * - reach into other processes (ptrace, process_vm_readv/writev,
 *   pidfd_getfd, process_madvise);
 * - load kernel code or use kernel facilities that widen the attack surface
 *   (kexec, modules, bpf, perf_event_open, open_by_handle_at, keyrings,
 *   userfaultfd).
 *
 * - plant a setuid/setgid file where the host will find it (the working
 *   directory and --writable paths are the host's, and the sandbox's uid is
 *   the caller's, root included): chmod/fchmod/fchmodat/fchmodat2, and
 *   open/openat/creat/mknod/mknodat creating a file, with S_ISUID or S_ISGID
 *   in the mode. openat2 fails with ENOSYS (its mode sits in memory; libc
 *   and callers fall back to openat), and so does io_uring (its operations
 *   never pass through seccomp; libuv and liburing users fall back).
 *
 * Refused calls fail with EPERM. clone3 fails with ENOSYS instead: its flags
 * sit in memory a filter cannot read, and ENOSYS makes libc fall back to
 * clone, whose flags the filter checks. The whole x32 ABI is refused (no
 * Debian userland uses it, and it would need a second table). A syscall from
 * an architecture the program does not know is refused too.
 */

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
/** Marks x32 syscall numbers on AUDIT_ARCH_X86_64. */
const X32_SYSCALL_BIT = 0x40000000;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (CLONE_NEWTIME is clone3/unshare only; 0x80 is the exit signal for clone). */
const CLONE_NEW_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

const S_ISUID_ISGID = 0o6000;
/** O_CREAT | __O_TMPFILE: the open flags under which the mode argument is used (same values on x86, arm and generic). */
const O_CREATING = 0o100 | 0o20000000;

/** seccomp_data offsets: nr, arch, then args[] from byte 16; the low word of each arg comes first on little-endian. */
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LO = 16;
const OFF_ARG1_LO = 24;
const argLo = (i: number): number => 16 + 8 * i;

/** The refused syscalls, by name; each ABI table gives their numbers. */
export const REFUSED_SYSCALLS = [
  'mount', 'umount', 'umount2', 'pivot_root', 'chroot', 'unshare', 'setns',
  'open_tree', 'open_tree_attr', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd', 'process_madvise',
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
  'bpf', 'perf_event_open', 'open_by_handle_at', 'keyctl', 'add_key', 'request_key', 'userfaultfd',
] as const;
type Refused = (typeof REFUSED_SYSCALLS)[number];

export interface AbiTable {
  readonly name: string;
  readonly auditArch: number;
  readonly ioctl: number;
  readonly clone: number;
  readonly clone3: number;
  /** Syscalls this ABI lacks are simply absent. */
  readonly refused: Partial<Record<Refused, number>>;
  /** Refuse every syscall number >= this (the x32 half of AUDIT_ARCH_X86_64). */
  readonly refuseFrom?: number;
  readonly openat2: number;
  /** io_uring_setup/enter/register: its operations (an O_CREAT open with any mode, ...) bypass seccomp. */
  readonly ioUring: readonly number[];
  /** Calls whose mode argument (index `mode`) may not carry S_ISUID/S_ISGID; with `flags`, only when those flags create a file. */
  readonly modeCalls: readonly { readonly nr: number; readonly mode: number; readonly flags?: number }[];
}

/** chmod(path, mode), fchmod(fd, mode), fchmodat(dfd, path, mode), fchmodat2(dfd, path, mode, flags), creat(path, mode), mknod(path, mode, dev), mknodat(dfd, path, mode, dev), open(path, flags, mode), openat(dfd, path, flags, mode). */
function modeCalls(n: Partial<Record<'chmod' | 'fchmod' | 'fchmodat' | 'fchmodat2' | 'creat' | 'mknod' | 'mknodat' | 'open' | 'openat', number>>): AbiTable['modeCalls'] {
  const out: { nr: number; mode: number; flags?: number }[] = [];
  const add = (nr: number | undefined, mode: number, flags?: number) => {
    if (nr !== undefined) out.push(flags === undefined ? { nr, mode } : { nr, mode, flags });
  };
  add(n.chmod, 1);
  add(n.fchmod, 1);
  add(n.fchmodat, 2);
  add(n.fchmodat2, 2);
  add(n.creat, 1);
  add(n.mknod, 1);
  add(n.mknodat, 2);
  add(n.open, 2, 1);
  add(n.openat, 3, 2);
  return out;
}

/** Numbers common to every ABI since the 2019 unification (403+). */
const UNIFIED = { open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, pidfd_getfd: 438, process_madvise: 440, mount_setattr: 442, open_tree_attr: 467 } as const;

/** clone3, openat2 and io_uring have the unified numbers on every ABI here. */
const UNIFIED_CALLS = { clone3: 435, openat2: 437, ioUring: [425, 426, 427] } as const;

// Numbers from the kernel's uapi headers (asm/unistd_64.h, unistd_32.h, asm-generic/unistd.h) and arch/arm/tools/syscall.tbl.
const X86_64: AbiTable = {
  name: 'x86_64',
  auditArch: 0xc000003e,
  ioctl: 16,
  clone: 56,
  refuseFrom: X32_SYSCALL_BIT,
  ...UNIFIED_CALLS,
  modeCalls: modeCalls({ chmod: 90, fchmod: 91, fchmodat: 268, fchmodat2: 452, creat: 85, mknod: 133, mknodat: 259, open: 2, openat: 257 }),
  refused: {
    ...UNIFIED, mount: 165, umount2: 166, pivot_root: 155, chroot: 161, unshare: 272, setns: 308,
    ptrace: 101, process_vm_readv: 310, process_vm_writev: 311,
    kexec_load: 246, kexec_file_load: 320, init_module: 175, finit_module: 313, delete_module: 176,
    bpf: 321, perf_event_open: 298, open_by_handle_at: 304, keyctl: 250, add_key: 248, request_key: 249, userfaultfd: 323,
  },
};
const I386: AbiTable = {
  name: 'i386',
  auditArch: 0x40000003,
  ioctl: 54,
  clone: 120,
  ...UNIFIED_CALLS,
  modeCalls: modeCalls({ chmod: 15, fchmod: 94, fchmodat: 306, fchmodat2: 452, creat: 8, mknod: 14, mknodat: 297, open: 5, openat: 295 }),
  refused: {
    ...UNIFIED, mount: 21, umount: 22, umount2: 52, pivot_root: 217, chroot: 61, unshare: 310, setns: 346,
    ptrace: 26, process_vm_readv: 347, process_vm_writev: 348,
    kexec_load: 283, init_module: 128, finit_module: 350, delete_module: 129,
    bpf: 357, perf_event_open: 336, open_by_handle_at: 342, keyctl: 288, add_key: 286, request_key: 287, userfaultfd: 374,
  },
};
const AARCH64: AbiTable = {
  name: 'aarch64',
  auditArch: 0xc00000b7,
  ioctl: 29,
  clone: 220,
  ...UNIFIED_CALLS,
  modeCalls: modeCalls({ fchmod: 52, fchmodat: 53, fchmodat2: 452, mknodat: 33, openat: 56 }),
  refused: {
    ...UNIFIED, mount: 40, umount2: 39, pivot_root: 41, chroot: 51, unshare: 97, setns: 268,
    ptrace: 117, process_vm_readv: 270, process_vm_writev: 271,
    kexec_load: 104, kexec_file_load: 294, init_module: 105, finit_module: 273, delete_module: 106,
    bpf: 280, perf_event_open: 241, open_by_handle_at: 265, keyctl: 219, add_key: 217, request_key: 218, userfaultfd: 282,
  },
};
const ARM: AbiTable = {
  name: 'arm',
  auditArch: 0x40000028,
  ioctl: 54,
  clone: 120,
  ...UNIFIED_CALLS,
  modeCalls: modeCalls({ chmod: 15, fchmod: 94, fchmodat: 333, fchmodat2: 452, creat: 8, mknod: 14, mknodat: 324, open: 5, openat: 322 }),
  refused: {
    ...UNIFIED, mount: 21, umount: 22, umount2: 52, pivot_root: 218, chroot: 61, unshare: 337, setns: 375,
    ptrace: 26, process_vm_readv: 376, process_vm_writev: 377,
    kexec_load: 347, kexec_file_load: 401, init_module: 128, finit_module: 379, delete_module: 129,
    bpf: 386, perf_event_open: 364, open_by_handle_at: 371, keyctl: 311, add_key: 309, request_key: 310, userfaultfd: 388,
  },
};

/** The ABIs a process may use on each Node architecture (compat ABIs included). */
const ARCHES: Record<string, readonly AbiTable[]> = {
  x64: [X86_64, I386],
  arm64: [AARCH64, ARM],
};

/** The syscall tables behind the filter for a Node architecture (for tests and diagnostics). */
export function seccompAbis(arch: string = process.arch): readonly AbiTable[] {
  return ARCHES[arch] ?? [];
}

/** One instruction with symbolic jump targets, resolved by assemble(). */
type Op =
  | { readonly label: string }
  | { readonly code: number; readonly k: number; readonly jt?: string; readonly jf?: string };

/** Binary search on the syscall number (already in A): JEQ chains at the leaves, then allow. */
function searchTree(entries: readonly (readonly [number, string])[], name: string): Op[] {
  if (entries.length <= 4) {
    return [...entries.map(([nr, label]): Op => ({ code: BPF_JEQ_K, k: nr, jt: label })), { code: BPF_RET_K, k: SECCOMP_RET_ALLOW }];
  }
  const mid = entries.length >> 1;
  return [
    { code: BPF_JGE_K, k: entries[mid]![0], jt: `${name}R` },
    ...searchTree(entries.slice(0, mid), `${name}L`),
    { label: `${name}R` },
    ...searchTree(entries.slice(mid), `${name}R`),
  ];
}

/** Resolve labels to relative offsets; classic BPF jumps forward only, at most 255 instructions. */
function assemble(ops: readonly Op[]): Buffer {
  const at = new Map<string, number>();
  const insns: Extract<Op, { code: number }>[] = [];
  for (const op of ops) {
    if ('label' in op) at.set(op.label, insns.length);
    else insns.push(op);
  }
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    const rel = (label: string | undefined): number => {
      if (label === undefined) return 0;
      const target = at.get(label);
      if (target === undefined) throw new Error(`seccomp: no label ${label}`);
      const off = target - (i + 1);
      if (off < 0 || off > 255) throw new Error(`seccomp: jump to ${label} out of range (${off})`);
      return off;
    };
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(rel(insn.jt), i * 8 + 2);
    buf.writeUInt8(rel(insn.jf), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}

function abiBlock(t: AbiTable): Op[] {
  const p = t.name;
  const ops: Op[] = [{ label: p }, { code: BPF_LD_W_ABS, k: OFF_NR }];
  if (t.refuseFrom !== undefined) ops.push({ code: BPF_JGE_K, k: t.refuseFrom, jt: `${p}.eperm` });
  // Every number that needs more than "allow", with where it goes; a binary search over them keeps the common
  // (allowed) syscalls to about ten instructions instead of a chain of ~50.
  const special = new Map<number, string>();
  const add = (nr: number, label: string) => {
    if (!special.has(nr)) special.set(nr, label);
  };
  add(t.ioctl, `${p}.ioctl`);
  add(t.clone, `${p}.clone`);
  add(t.clone3, `${p}.enosys`);
  add(t.openat2, `${p}.enosys`);
  for (const nr of t.ioUring) add(nr, `${p}.enosys`);
  for (const nr of Object.values(t.refused)) add(nr, `${p}.eperm`);
  t.modeCalls.forEach((c, i) => add(c.nr, `${p}.mode${i}`));
  ops.push(...searchTree([...special].sort((a, b) => a[0] - b[0]), `${p}.t`));
  t.modeCalls.forEach((c, i) => {
    ops.push({ label: `${p}.mode${i}` });
    // open/openat ignore the mode unless they create a file.
    if (c.flags !== undefined) ops.push({ code: BPF_LD_W_ABS, k: argLo(c.flags) }, { code: BPF_JSET_K, k: O_CREATING, jf: `${p}.allow` });
    ops.push({ code: BPF_LD_W_ABS, k: argLo(c.mode) }, { code: BPF_JSET_K, k: S_ISUID_ISGID, jt: `${p}.eperm`, jf: `${p}.allow` });
  });
  ops.push(
    { label: `${p}.ioctl` },
    // The kernel truncates the ioctl request to 32 bits, so the low word is what counts.
    { code: BPF_LD_W_ABS, k: OFF_ARG1_LO },
    { code: BPF_JEQ_K, k: TIOCSTI, jt: `${p}.eperm` },
    { code: BPF_JEQ_K, k: TIOCLINUX, jt: `${p}.eperm`, jf: `${p}.allow` },
    { label: `${p}.clone` },
    // clone's flags are args[0] on every ABI here; the kernel uses only their low 32 bits.
    { code: BPF_LD_W_ABS, k: OFF_ARG0_LO },
    { code: BPF_JSET_K, k: CLONE_NEW_MASK, jt: `${p}.eperm`, jf: `${p}.allow` },
    { label: `${p}.enosys` },
    { code: BPF_RET_K, k: SECCOMP_RET_ERRNO | ENOSYS },
    { label: `${p}.allow` },
    { code: BPF_RET_K, k: SECCOMP_RET_ALLOW },
    { label: `${p}.eperm` },
    { code: BPF_RET_K, k: SECCOMP_RET_ERRNO | EPERM },
  );
  return ops;
}

/**
 * The filter as bwrap reads it (an array of struct sock_filter), or null on an
 * architecture we have no tables for (the caller then falls back to
 * --new-session against terminal injection).
 */
export function sandboxSeccompFilter(arch: string = process.arch): Buffer | null {
  const abis = ARCHES[arch];
  if (!abis || process.platform !== 'linux') return null;
  const ops: Op[] = [{ code: BPF_LD_W_ABS, k: OFF_ARCH }];
  for (const t of abis) ops.push({ code: BPF_JEQ_K, k: t.auditArch, jt: t.name });
  // An ABI we have no table for: refuse rather than allow unchecked.
  ops.push({ code: BPF_RET_K, k: SECCOMP_RET_ERRNO | EPERM });
  for (const t of abis) ops.push(...abiBlock(t));
  return assemble(ops);
}

/** @deprecated The filter now does more than refuse terminal injection; use sandboxSeccompFilter. */
export const terminalInjectionFilter = sandboxSeccompFilter;
