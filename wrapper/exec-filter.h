/*
 * The direct-exec filter (docs/protocol.md, "Direct execs"), shared by the
 * wrapper and bench/floor/filter-exec.c (which measures what it costs with
 * no server), so both install exactly the same program. libc only.
 */
#ifndef CODEX_EXEC_FILTER_H
#define CODEX_EXEC_FILTER_H

#include <errno.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#define NO_EXEC_FILTER 1 /* [ext 3] only where the filter's arch is known */
#endif

/*
 * docs/protocol.md, "Direct execs". After a Run reply with "listener":true
 * this process installs a seccomp filter that makes every execve/execveat of
 * the program it is about to run, and of all its descendants, a user
 * notification for the server; its own next exec gets through on a random
 * 64-bit cookie in execveat's unused sixth argument, so the program we were
 * told to Run is not decided twice and costs no round trip. The cookie dies
 * with the exec (the new image cannot read the old one's memory).
 * linux/seccomp.h is not in musl's headers: the ABI values are spelled here.
 */
#define SECCOMP_OP_SET_MODE_FILTER 1u
#define SECCOMP_FLAG_NEW_LISTENER (1u << 3)
#define SECCOMP_FLAG_SPEC_ALLOW (1u << 2)
#define SECCOMP_RET_ALLOW_ 0x7fff0000u
#define SECCOMP_RET_USER_NOTIF_ 0x7fc00000u
#define SECCOMP_RET_ERRNO_ 0x00050000u
#define BPF_LD_W_ABS 0x20
#define BPF_JEQ_K 0x15
#define BPF_JGE_K 0x35
#define BPF_JSET_K 0x45
#define BPF_RET_K 0x06
/* seccomp_data: nr, arch, ip, then args[6]; low word first (little-endian). */
#define OFF_NR 0
#define OFF_ARCH 4
#define OFF_ARG_LO(i) (16 + 8 * (i))
#define OFF_ARG_HI(i) (20 + 8 * (i))
/* The x32 bit of x86_64 syscall numbers; x32's own execve/execveat. */
#define FOREIGN_NR_FROM 0x40000000u
#define X32_NR_EXECVE 520u
#define X32_NR_EXECVEAT 545u
/* The compat ABI a 64-bit kernel also runs (i386, 32-bit arm), with its
 * numbers: its execs are notified too, and the server refuses them. */
#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH 0xc000003eu
#define COMPAT_AUDIT_ARCH 0x40000003u
#define COMPAT_NR_EXECVE 11u
#define COMPAT_NR_EXECVEAT 358u
#define COMPAT_NR_SECCOMP 354u
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH 0xc00000b7u
#define COMPAT_AUDIT_ARCH 0x40000028u
#define COMPAT_NR_EXECVE 11u
#define COMPAT_NR_EXECVEAT 387u
#define COMPAT_NR_SECCOMP 383u
#endif

struct bpf_insn_ {
  uint16_t code;
  uint8_t jt, jf;
  uint32_t k;
};
struct bpf_prog_ {
  unsigned short len;
  const struct bpf_insn_ *filter;
};

#ifndef NO_EXEC_FILTER
/* flags: SECCOMP_FLAG_NEW_LISTENER (the wrapper), or others (the bench).
 * Returns the listener fd (close-on-exec, from the kernel), or -1 with errno:
 * EBUSY means a listener filter is already on this process (a nested shell
 * inside a Run'd program): its execs are notified already. */
static int exec_filter_install(uint64_t cookie, unsigned int flags) {
  const uint32_t lo = (uint32_t)cookie, hi = (uint32_t)(cookie >> 32);
  /* Jump offsets count from the next instruction; the labels at the end. */
  const struct bpf_insn_ insns[] = {
      /* 0 */ {BPF_LD_W_ABS, 0, 0, OFF_ARCH},
      /* 1 */ {BPF_JEQ_K, 7, 0, NATIVE_AUDIT_ARCH},
      /* 2 */ {BPF_JEQ_K, 0, 25, COMPAT_AUDIT_ARCH},
      /* 3 compat (i386, arm): its execs are notified (and refused: not decided) */ {BPF_LD_W_ABS, 0, 0, OFF_NR},
      /* 4 */ {BPF_JEQ_K, 22, 0, COMPAT_NR_EXECVE},
      /* 5 */ {BPF_JEQ_K, 21, 0, COMPAT_NR_EXECVEAT},
      /* 6 */ {BPF_JEQ_K, 16, 0, COMPAT_NR_SECCOMP},
      /* 7 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
      /* 8 (unreachable) */ {BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO_ | EPERM},
      /* 9 native */ {BPF_LD_W_ABS, 0, 0, OFF_NR},
      /* 10 */ {BPF_JGE_K, 4, 0, FOREIGN_NR_FROM},
      /* 11 */ {BPF_JEQ_K, 7, 0, (uint32_t)SYS_execveat},
      /* 12 */ {BPF_JEQ_K, 14, 0, (uint32_t)SYS_execve},
      /* 13 */ {BPF_JEQ_K, 9, 0, (uint32_t)SYS_seccomp},
      /* 14 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
      /* 15 x32 */ {BPF_JEQ_K, 11, 0, FOREIGN_NR_FROM | X32_NR_EXECVE},
      /* 16 */ {BPF_JEQ_K, 10, 0, FOREIGN_NR_FROM | X32_NR_EXECVEAT},
      /* 17 */ {BPF_JEQ_K, 5, 0, FOREIGN_NR_FROM | (uint32_t)SYS_seccomp},
      /* 18 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
      /* 19 execveat: the cookie? */ {BPF_LD_W_ABS, 0, 0, OFF_ARG_LO(5)},
      /* 20 */ {BPF_JEQ_K, 0, 6, lo},
      /* 21 */ {BPF_LD_W_ABS, 0, 0, OFF_ARG_HI(5)},
      /* 22 */ {BPF_JEQ_K, 3, 4, hi},
      /* 23 seccomp: a second listener would be asked first */ {BPF_LD_W_ABS, 0, 0, OFF_ARG_LO(1)},
      /* 24 */ {BPF_JSET_K, 4, 0, SECCOMP_FLAG_NEW_LISTENER},
      /* 25 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
      /* 26 allow */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
      /* 27 notify */ {BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF_},
      /* 28 refuse */ {BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO_ | EPERM},
      /* 29 a second listener: EBUSY, as the kernel says itself */ {BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO_ | EBUSY},
  };
  const struct bpf_prog_ prog = {(unsigned short)(sizeof insns / sizeof *insns), insns};
  long fd = syscall(SYS_seccomp, SECCOMP_OP_SET_MODE_FILTER, flags, &prog);

  if (fd < 0 && errno == EACCES) {
    /* Neither no_new_privs nor CAP_SYS_ADMIN (--sandbox none, not root):
     * the server asked for the filter knowing it costs setuid programs. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    fd = syscall(SYS_seccomp, SECCOMP_OP_SET_MODE_FILTER, flags, &prog);
  }
  return (int)fd;
}
#endif


#endif
