/*
 * The direct-exec filter (exec-filter.h) run by a classic-BPF interpreter
 * over every syscall number of each arch, several cookies and seccomp()
 * flags, against the rules of docs/protocol.md "Direct execs" written out
 * independently below; and the kernel's install-time cache emulation
 * (seccomp_is_const_allow) replayed to count what each install costs.
 * `make check` runs it; exit 0 = every answer as specified.
 */
#include "../exec-filter.h"

#include <stdio.h>
#include <stdlib.h>

#define OTHER_ARCH 0x12345678u

struct data {
  uint32_t nr, arch;
  uint64_t ip, args[6];
};

static uint32_t word(const struct data *d, uint32_t off) {
  uint32_t w[16];
  memcpy(w, d, sizeof *d);
  return w[off / 4];
}

/* Classic BPF, the subset the filter uses; -1 on anything else. */
static int64_t run(const struct bpf_insn_ *p, size_t len, const struct data *d) {
  uint32_t a = 0;
  for (size_t pc = 0; pc < len; pc++) {
    const struct bpf_insn_ *i = &p[pc];
    switch (i->code) {
    case BPF_LD_W_ABS: a = word(d, i->k); break;
    case BPF_RET_K: return i->k;
    case BPF_JEQ_K: pc += a == i->k ? i->jt : i->jf; break;
    case BPF_JGE_K: pc += a >= i->k ? i->jt : i->jf; break;
    case BPF_JSET_K: pc += (a & i->k) ? i->jt : i->jf; break;
    default: return -1;
    }
  }
  return -1;
}

/* The kernel's seccomp_is_const_allow: instructions walked before it knows
 * (a constant ALLOW, a constant other answer, or a load it cannot follow). */
static unsigned const_steps(const struct bpf_insn_ *p, size_t len, uint32_t arch, uint32_t nr) {
  uint32_t a = 0;
  unsigned steps = 0;
  for (size_t pc = 0; pc < len; pc++) {
    const struct bpf_insn_ *i = &p[pc];
    steps++;
    switch (i->code) {
    case BPF_LD_W_ABS:
      if (i->k == OFF_NR) a = nr;
      else if (i->k == OFF_ARCH) a = arch;
      else return steps;
      break;
    case BPF_RET_K: return steps;
    case BPF_JEQ_K: pc += a == i->k ? i->jt : i->jf; break;
    case BPF_JGE_K: pc += a >= i->k ? i->jt : i->jf; break;
    case BPF_JSET_K: pc += (a & i->k) ? i->jt : i->jf; break;
    default: return steps;
    }
  }
  return steps;
}

static uint32_t seccomp_answer(uint64_t flags) {
  return (flags & SECCOMP_FLAG_NEW_LISTENER) ? SECCOMP_RET_ERRNO_ | EBUSY : SECCOMP_RET_ALLOW_;
}

/* docs/protocol.md, "Direct execs", step 1. */
static uint32_t expected(const struct data *d, uint64_t cookie) {
  uint32_t nr = d->nr;
  if (d->arch == NATIVE_AUDIT_ARCH) {
    if (nr >= FOREIGN_NR_FROM) {
      if (nr == (FOREIGN_NR_FROM | X32_NR_EXECVE) || nr == (FOREIGN_NR_FROM | X32_NR_EXECVEAT)) return SECCOMP_RET_USER_NOTIF_;
      if (nr == (FOREIGN_NR_FROM | (uint32_t)SYS_seccomp)) return seccomp_answer(d->args[1]);
      return SECCOMP_RET_ALLOW_;
    }
    if (nr == (uint32_t)SYS_execve) return SECCOMP_RET_USER_NOTIF_;
    if (nr == (uint32_t)SYS_execveat) return d->args[5] == cookie ? SECCOMP_RET_ALLOW_ : SECCOMP_RET_USER_NOTIF_;
    if (nr == (uint32_t)SYS_seccomp) return seccomp_answer(d->args[1]);
    return SECCOMP_RET_ALLOW_;
  }
  if (d->arch == COMPAT_AUDIT_ARCH) {
    if (nr == COMPAT_NR_EXECVE || nr == COMPAT_NR_EXECVEAT) return SECCOMP_RET_USER_NOTIF_;
    if (nr == COMPAT_NR_SECCOMP) return seccomp_answer(d->args[1]);
    return SECCOMP_RET_ALLOW_;
  }
  return SECCOMP_RET_ERRNO_ | EPERM;
}

int main(void) {
  static const uint64_t cookies[] = {0, 1, 0xffffffffffffffffull, 0x0123456789abcdefull, 0x89abcdef00000000ull};
  static const uint32_t arches[] = {NATIVE_AUDIT_ARCH, COMPAT_AUDIT_ARCH, OTHER_ARCH};
  struct bpf_insn_ prog[EXEC_FILTER_LEN];
  unsigned long checked = 0, failed = 0, native_steps = 0, compat_steps = 0;

  for (size_t c = 0; c < sizeof cookies / sizeof *cookies; c++) {
    uint64_t cookie = cookies[c];
    exec_filter_build(prog, cookie);
    /* The sixth argument: the cookie, each half of it alone, and others. */
    const uint64_t arg5s[] = {cookie, cookie ^ 1, cookie ^ (1ull << 63), cookie & 0xffffffffu, cookie >> 32, 0, ~cookie};
    /* seccomp() flags: none, NEW_LISTENER alone or with others, TSYNC, and bits above 32 (ignored by the kernel too). */
    const uint64_t arg1s[] = {0, SECCOMP_FLAG_NEW_LISTENER, SECCOMP_FLAG_NEW_LISTENER | 1, 1, 1ull << 32};
    for (size_t ar = 0; ar < sizeof arches / sizeof *arches; ar++) {
      for (uint32_t base = 0; base <= FOREIGN_NR_FROM; base += FOREIGN_NR_FROM) {
        for (uint32_t n = 0; n < 1100; n++) {
          for (size_t i = 0; i < sizeof arg5s / sizeof *arg5s; i++) {
            for (size_t j = 0; j < sizeof arg1s / sizeof *arg1s; j++) {
              struct data d = {base | n, arches[ar], 0x7f0000001000ull, {0, arg1s[j], 0, 0, 0, arg5s[i]}};
              int64_t got = run(prog, EXEC_FILTER_LEN, &d);
              uint32_t want = expected(&d, cookie);
              checked++;
              if (got != (int64_t)want) {
                if (failed++ < 20)
                  fprintf(stderr, "arch %#x nr %#x arg1 %#llx arg5 %#llx cookie %#llx: got %#llx, want %#x\n", d.arch, d.nr,
                          (unsigned long long)d.args[1], (unsigned long long)d.args[5], (unsigned long long)cookie,
                          (long long)got, want);
              }
            }
          }
        }
      }
    }
  }
  /* Install-time cost: the kernel emulates each number of both arches it caches. */
  for (uint32_t n = 0; n < 512; n++) {
    unsigned s = const_steps(prog, EXEC_FILTER_LEN, NATIVE_AUDIT_ARCH, n);
    native_steps += s;
    if (n < (uint32_t)SYS_seccomp && n != (uint32_t)SYS_execve && s > 6) {
      fprintf(stderr, "native nr %u: %u instructions at install (at most 6)\n", n, s);
      failed++;
    }
    s = const_steps(prog, EXEC_FILTER_LEN, COMPAT_AUDIT_ARCH, n);
    compat_steps += s;
    if (s > 3) {
      fprintf(stderr, "compat nr %u: %u instructions at install (at most 3)\n", n, s);
      failed++;
    }
  }
  printf("filter_check: %lu cases, %lu wrong; install-time emulation of 512 numbers: native %lu, compat %lu instructions\n",
         checked, failed, native_steps, compat_steps);
  return failed ? 1 : 0;
}
