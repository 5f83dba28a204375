/*
 * The direct-exec filter (docs/protocol.md, "Direct execs"), shared by the
 * wrapper and bench/floor/filter-exec.c (which measures what it costs with
 * no server), so both install exactly the same program. libc only.
 */
#ifndef CODEX_EXEC_FILTER_H
#define CODEX_EXEC_FILTER_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
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
#define OFF_IP_LO 8
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
/*
 * Jump offsets count from the next instruction; the labels at the end.
 * Laid out for the kernel's per-arch cache of always-allowed syscalls
 * (seccomp_cache_prepare), which emulates the program for every syscall
 * number of the native and the compat arch while it installs it, inside
 * the exec path of every Run: a native number below SYS_seccomp (the
 * execve < seccomp < execveat order holds on x86_64 and aarch64) is
 * allowed after 6 instructions, and anything else than the native arch
 * starts with a load the emulator cannot follow (ip), so it stops there
 * instead of walking the compat branch for each of its numbers: about 30%
 * less work at each install (bench/floor/filter_cost.py). Which syscalls
 * get which answer is unchanged.
 */
static const struct bpf_insn_ exec_filter_template[] = {
    /* 0 */ {BPF_LD_W_ABS, 0, 0, OFF_ARCH},
    /* 1 */ {BPF_JEQ_K, 8, 0, NATIVE_AUDIT_ARCH},
    /* 2 not native: not cached (see above) */ {BPF_LD_W_ABS, 0, 0, OFF_IP_LO},
    /* 3 */ {BPF_LD_W_ABS, 0, 0, OFF_ARCH},
    /* 4 */ {BPF_JEQ_K, 0, 25, COMPAT_AUDIT_ARCH},
    /* 5 compat (i386, arm): its execs are notified (and refused: not decided) */ {BPF_LD_W_ABS, 0, 0, OFF_NR},
    /* 6 */ {BPF_JEQ_K, 22, 0, COMPAT_NR_EXECVE},
    /* 7 */ {BPF_JEQ_K, 21, 0, COMPAT_NR_EXECVEAT},
    /* 8 */ {BPF_JEQ_K, 17, 0, COMPAT_NR_SECCOMP},
    /* 9 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
    /* 10 native */ {BPF_LD_W_ABS, 0, 0, OFF_NR},
    /* 11 */ {BPF_JGE_K, 2, 0, (uint32_t)SYS_seccomp},
    /* 12 */ {BPF_JEQ_K, 16, 0, (uint32_t)SYS_execve},
    /* 13 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
    /* 14 nr >= SYS_seccomp */ {BPF_JEQ_K, 11, 0, (uint32_t)SYS_seccomp},
    /* 15 */ {BPF_JEQ_K, 6, 0, (uint32_t)SYS_execveat},
    /* 16 */ {BPF_JGE_K, 1, 0, FOREIGN_NR_FROM},
    /* 17 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
    /* 18 x32 */ {BPF_JEQ_K, 10, 0, FOREIGN_NR_FROM | X32_NR_EXECVE},
    /* 19 */ {BPF_JEQ_K, 9, 0, FOREIGN_NR_FROM | X32_NR_EXECVEAT},
    /* 20 */ {BPF_JEQ_K, 5, 0, FOREIGN_NR_FROM | (uint32_t)SYS_seccomp},
    /* 21 */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
    /* 22 execveat: the cookie? */ {BPF_LD_W_ABS, 0, 0, OFF_ARG_LO(5)},
    /* 23 */ {BPF_JEQ_K, 0, 5, 0 /* cookie, low word */},
    /* 24 */ {BPF_LD_W_ABS, 0, 0, OFF_ARG_HI(5)},
    /* 25 */ {BPF_JEQ_K, 2, 3, 0 /* cookie, high word */},
    /* 26 seccomp: a second listener would be asked first */ {BPF_LD_W_ABS, 0, 0, OFF_ARG_LO(1)},
    /* 27 */ {BPF_JSET_K, 3, 0, SECCOMP_FLAG_NEW_LISTENER},
    /* 28 allow */ {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_},
    /* 29 notify */ {BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF_},
    /* 30 refuse */ {BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO_ | EPERM},
    /* 31 a second listener: EBUSY, as the kernel says itself */ {BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO_ | EBUSY},
};
#define EXEC_FILTER_LEN (sizeof exec_filter_template / sizeof *exec_filter_template)
#define EXEC_FILTER_COOKIE_LO 23
#define EXEC_FILTER_COOKIE_HI 25

/* The program with the cookie in place: a copy of the constant template. */
static inline void exec_filter_build(struct bpf_insn_ out[EXEC_FILTER_LEN], uint64_t cookie) {
  memcpy(out, exec_filter_template, sizeof exec_filter_template);
  out[EXEC_FILTER_COOKIE_LO].k = (uint32_t)cookie;
  out[EXEC_FILTER_COOKIE_HI].k = (uint32_t)(cookie >> 32);
}

/* flags: SECCOMP_FLAG_NEW_LISTENER (the wrapper), or others (the bench).
 * Returns the listener fd (close-on-exec, from the kernel), or -1 with errno:
 * EBUSY means a listener filter is already on this process (a nested shell
 * inside a Run'd program): its execs are notified already. */
static inline int exec_filter_install(uint64_t cookie, unsigned int flags) {
  struct bpf_insn_ insns[EXEC_FILTER_LEN];
  const struct bpf_prog_ prog = {(unsigned short)EXEC_FILTER_LEN, insns};
  exec_filter_build(insns, cookie);
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
