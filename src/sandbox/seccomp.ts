/**
 * A tiny classic-BPF seccomp program for bwrap's --seccomp: refuse the
 * terminal-injection ioctls TIOCSTI and TIOCLINUX (EPERM), allow the rest.
 *
 * Why: the sandboxed shell keeps the caller's terminal (so job control and
 * Ctrl-C work), and on kernels where dev.tty.legacy_tiocsti is 1 a process
 * could otherwise push keystrokes into that terminal, to be run outside the
 * sandbox once it exits. Flatpak blocks the same ioctls the same way.
 */

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_RET_K = 0x06;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_RET_ERRNO_EPERM = 0x00050000 | 1;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;

/** seccomp_data offsets: nr, arch, then args[] from byte 16 (low word of arg1 at 24 on little-endian). */
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG1_LO = 24;

/** (audit arch, ioctl syscall number) for the ABIs a process on this machine may use. */
const ARCHES: Record<string, readonly (readonly [number, number])[]> = {
  x64: [
    [0xc000003e, 16], // AUDIT_ARCH_X86_64, __NR_ioctl
    [0xc000003e, 0x40000000 + 514], // x32 ABI ioctl (same audit arch, X32 bit set)
    [0x40000003, 54], // AUDIT_ARCH_I386 (32-bit binaries), __NR_ioctl
  ],
  arm64: [
    [0xc00000b7, 29], // AUDIT_ARCH_AARCH64
    [0x40000028, 54], // AUDIT_ARCH_ARM (compat)
  ],
};

type Insn = [code: number, jt: number, jf: number, k: number];

/** The filter as bwrap reads it (an array of struct sock_filter), or null on an architecture we do not know. */
export function terminalInjectionFilter(arch: string = process.arch): Buffer | null {
  const arches = ARCHES[arch];
  if (!arches || process.platform !== 'linux') return null;
  // Layout: per arch a 4-insn block, then the shared tail:
  //   ld arch; jeq A ? next : next-block; ld nr; jeq ioctl ? check : next-block (last block: allow)
  //   check: ld arg1; jeq TIOCSTI ? deny : next; jeq TIOCLINUX ? deny : allow
  //   allow; deny
  const insns: Insn[] = [];
  const blocks = arches.length;
  const tailStart = blocks * 4; // index of "ld arg1"
  const allowAt = tailStart + 3;
  const denyAt = tailStart + 4;
  arches.forEach(([auditArch, nr], i) => {
    const base = i * 4;
    insns.push([BPF_LD_W_ABS, 0, 0, OFF_ARCH]);
    // Not this arch: jump to the next block (or to allow after the last one).
    const nextBlock = i + 1 < blocks ? (i + 1) * 4 : allowAt;
    insns.push([BPF_JEQ_K, 0, nextBlock - (base + 2), auditArch]);
    insns.push([BPF_LD_W_ABS, 0, 0, OFF_NR]);
    insns.push([BPF_JEQ_K, tailStart - (base + 4), nextBlock - (base + 4), nr]);
  });
  insns.push([BPF_LD_W_ABS, 0, 0, OFF_ARG1_LO]);
  insns.push([BPF_JEQ_K, denyAt - (tailStart + 2), 0, TIOCSTI]);
  insns.push([BPF_JEQ_K, denyAt - (tailStart + 3), allowAt - (tailStart + 3), TIOCLINUX]);
  insns.push([BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW]);
  insns.push([BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO_EPERM]);
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    buf.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return buf;
}
