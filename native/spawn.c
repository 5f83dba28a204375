/*
 * spawnProcess: clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD) + execve with raw
 * bytes, exact fd mapping and default signal state.
 *
 * Why not child_process: it cannot take non-UTF-8 argv/env, cannot dup
 * arbitrary received fds onto arbitrary numbers, and leaves the child with
 * the pidfd-less pid only. Why CLONE_VM|CLONE_VFORK: copying the page tables
 * of a large Node heap on every fork is slow; like posix_spawn we share
 * memory and the parent thread sleeps until the child execs or exits.
 *
 * With a cgroup directory fd, the child is born in that cgroup (clone3 with
 * CLONE_INTO_CGROUP): joining by writing cgroup.procs takes the cgroup
 * threadgroup lock for writing, which waits for an RCU grace period when no
 * migration happened lately (~6 ms here, on every cold escalation and at
 * every `run` start). clone3 has no libc wrapper that runs a function on a
 * new stack, so clone3_vm below does it (x86-64); elsewhere, or when clone3
 * is refused (old kernel, valgrind, a container's seccomp), the child joins
 * by writing cgroup.procs as before.
 *
 * Rules for child_main (it runs on a private stack inside our address space):
 * only async-signal-safe calls, no allocation, writes only to memory the
 * parent set aside for it. All signals are blocked across clone() so no
 * parent handler can run on the child's side before dispositions are reset.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

#define CHILD_STACK_SIZE (256 * 1024)
#define MAX_FD_MAP 1024

enum stage {
  STAGE_NONE = 0,
  STAGE_SETSID,
  STAGE_SETPGID,
  STAGE_CGROUP,
  STAGE_DUP,
  STAGE_CHDIR,
  STAGE_EXEC,
};

static const char *stage_syscall(int stage) {
  switch (stage) {
  case STAGE_SETSID: return "setsid";
  case STAGE_SETPGID: return "setpgid";
  case STAGE_CGROUP: return "cgroup";
  case STAGE_DUP: return "dup2";
  case STAGE_CHDIR: return "chdir";
  case STAGE_EXEC: return "execve";
  default: return "spawn";
  }
}

typedef struct {
  const char *file;
  char **argv;
  char **envp;
  const char *cwd;
  size_t nmap;
  const int *targets;
  const int *sources;
  int *temps;  /* scratch owned by the parent, written by the child */
  int high;    /* temps and errfd live at or above this fd number */
  int errfd;   /* CLOEXEC pipe write end: (stage, errno) on failure */
  int exec_fd; /* -1: execve(file); else execveat(exec_fd, "") */
  bool setsid;
  bool setpgid;
  int fallback_maxfd; /* only used when close_range is unavailable */
  bool set_nice;      /* give the program this nice value (the server may run boosted) */
  int nice;
  pid_t parent;  /* to detect a parent that died before PDEATHSIG was set */
  int cgroup_fd; /* -1, or an open cgroup.procs the child joins before exec */
  bool outlive_parent; /* no PR_SET_PDEATHSIG (a shell, as child_process would start it) */
} child_args_t;

static void child_fail(const child_args_t *a, int stage, int err) {
  int msg[2] = {stage, err};
  ssize_t w;
  do {
    w = write(a->errfd, msg, sizeof msg);
  } while (w < 0 && errno == EINTR);
  _exit(127);
}

static int child_main(void *arg) {
  const child_args_t *a = arg;

  /* Node ignores SIGPIPE and installs handlers; the program must start with
   * the defaults a shell would give it. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    sigaction(s, &sa, NULL); /* glibc-reserved signals fail harmlessly */
  }

  /* The program must not outlive the process that spawned it (a SIGKILLed
   * escalation server would leave it running, unattended, outside the
   * sandbox). Set before exec; survives exec for non-setuid programs. */
  if (!a->outlive_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->parent) _exit(127);
  }

  /* Best effort: raising the nice value (less priority) is always allowed. */
  if (a->set_nice) setpriority(PRIO_PROCESS, 0, a->nice);

  if (a->setsid) {
    if (setsid() < 0) child_fail(a, STAGE_SETSID, errno);
  } else if (a->setpgid) {
    if (setpgid(0, 0) < 0) child_fail(a, STAGE_SETPGID, errno);
  }

  /* Join the cgroup before anything of the program runs: every descendant
   * (setsid, double forks, nohup) is born inside it and can be found and
   * killed as one. Writing "0" moves the writer. Failure is fatal: the
   * caller asked for tracking, an untracked program must not start. */
  if (a->cgroup_fd >= 0) {
    ssize_t w;
    do {
      w = write(a->cgroup_fd, "0", 1);
    } while (w < 0 && errno == EINTR);
    if (w != 1) child_fail(a, STAGE_CGROUP, w < 0 ? errno : EIO);
  }

  /* Everything becomes close-on-exec; only the dup2 targets below survive. */
  if (syscall(SYS_close_range, 0U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 0; fd <= a->fallback_maxfd; fd++)
      fcntl(fd, F_SETFD, FD_CLOEXEC);
  }

  /* Two phases make overlapping maps (3->1 with 1->3) safe: first copy every
   * source above all targets, then place the copies. */
  for (size_t i = 0; i < a->nmap; i++) {
    int t = fcntl(a->sources[i], F_DUPFD_CLOEXEC, a->high);
    if (t < 0) child_fail(a, STAGE_DUP, errno);
    a->temps[i] = t;
  }
  for (size_t i = 0; i < a->nmap; i++) {
    int r;
    do {
      r = dup2(a->temps[i], a->targets[i]); /* dup2 clears FD_CLOEXEC */
    } while (r < 0 && errno == EINTR);
    if (r < 0) child_fail(a, STAGE_DUP, errno);
  }

  if (chdir(a->cwd) != 0) child_fail(a, STAGE_CHDIR, errno);

  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, NULL);

  if (a->exec_fd >= 0)
    syscall(SYS_execveat, a->exec_fd, "", a->argv, a->envp, AT_EMPTY_PATH);
  else
    execve(a->file, a->argv, a->envp);
  child_fail(a, STAGE_EXEC, errno);
  return 127;
}

#if defined(__x86_64__) && defined(SYS_clone3)
#define HAVE_CLONE3_VM 1
/* struct clone_args of <linux/sched.h>, version 2 (with .cgroup, Linux 5.7). */
struct codex_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

/*
 * clone3 whose child runs fn(arg) on args->stack and exits with its value
 * (the child must never return into this frame: with CLONE_VM it would run
 * on the parent's stack). The same shape as libc's clone(): the function and
 * its argument ride in callee-saved registers through the syscall.
 */
static pid_t clone3_vm(struct codex_clone_args *args, int (*fn)(void *), void *arg) {
  register long rax __asm__("rax") = SYS_clone3;
  register struct codex_clone_args *rdi __asm__("rdi") = args;
  register size_t rsi __asm__("rsi") = sizeof *args;
  register int (*r12)(void *) __asm__("r12") = fn;
  register void *r13 __asm__("r13") = arg;
  __asm__ volatile("syscall\n\t"
                   "testq %%rax, %%rax\n\t"
                   "jnz 1f\n\t"
                   /* Child: the stack top is 16-byte aligned, as a call expects. */
                   "xorl %%ebp, %%ebp\n\t"
                   "movq %%r13, %%rdi\n\t"
                   "callq *%%r12\n\t"
                   "movl %%eax, %%edi\n\t"
                   "movl $60, %%eax\n\t" /* SYS_exit */
                   "syscall\n\t"
                   "hlt\n"
                   "1:"
                   : "+r"(rax)
                   : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
                   : "rcx", "r11", "memory");
  if (rax < 0) {
    errno = (int)-rax;
    return -1;
  }
  return (pid_t)rax;
}
#endif

/* Array of Buffers -> NULL-terminated char*[]; *count set on success. */
static char **get_strv(napi_env env, napi_value arr, const char *name, size_t *count) {
  uint32_t n;
  if (!codex_get_array(env, arr, name, &n)) return NULL;
  cleanup_strv char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) {
    codex_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  char elname[64];
  snprintf(elname, sizeof elname, "%s[i]", name);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    NAPI_CALL(env, napi_get_element(env, arr, i, &el));
    if (!(v[i] = codex_get_cstring(env, el, elname))) return NULL;
  }
  *count = n;
  return steal_pointer(&v);
}

static void unmap_stack(void **stack) {
  if (*stack != MAP_FAILED) munmap(*stack, CHILD_STACK_SIZE);
}

static void throw_child_error(napi_env env, int stage, int err, const char *path) {
  const char *sys = stage_syscall(stage);
  napi_value e = codex_make_errno_error(env, err, sys, path);
  if (!e) {
    codex_throw_errno(env, err, sys);
    return;
  }
  napi_value p;
  if (path && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &p) == napi_ok)
    napi_set_named_property(env, e, "path", p);
  napi_throw(env, e);
}

/* spawn(file, argv, env, cwd, fdMap, newProcessGroup, setsid, execFd|-1[, nice|null[,
 * cgroupFd|-1]]) */
/* Whether optional argument i was passed as something other than undefined/null; false (thrown) on a napi failure. */
static bool given(napi_env env, size_t argc, napi_value *args, size_t i, bool *present) {
  *present = false;
  if (argc <= i) return true;
  napi_valuetype t;
  napi_status st = napi_typeof(env, args[i], &t);
  if (st != napi_ok) {
    codex_throw_napi_failure(env, st, "napi_typeof");
    return false;
  }
  *present = t != napi_undefined && t != napi_null;
  return true;
}

static napi_value spawn(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value args[12];
  if (!codex_get_args(
          env, info, 8, &argc, args,
          "spawn(file, argv, env, cwd, fdMap, newProcessGroup, setsid, execFd, nice?, cgroupFd?, cgroupDirFd?, outliveParent?)"))
    return NULL;

  /* Released on every return; a napi failure anywhere is a plain return. */
  cleanup_free char *file = NULL;
  cleanup_free char *cwd = NULL;
  cleanup_strv char **argv = NULL;
  cleanup_strv char **envp = NULL;
  size_t argvc = 0, envc = 0;
  cleanup_free int *map = NULL; /* targets[0..n) then sources[0..n) then temps[0..n) */
  size_t nmap = 0;
  cleanup_fd int err_r = -1;
  cleanup_fd int err_w = -1;
  cleanup_fd int exec_dup = -1;
  __attribute__((cleanup(unmap_stack))) void *stack = MAP_FAILED;

  bool pgrp, sid;
  int64_t exec_fd64;
  if (!(file = codex_get_cstring(env, args[0], "file"))) return NULL;
  if (!(argv = get_strv(env, args[1], "argv", &argvc))) return NULL;
  if (!(envp = get_strv(env, args[2], "env", &envc))) return NULL;
  if (!(cwd = codex_get_cstring(env, args[3], "cwd"))) return NULL;
  if (!codex_get_bool(env, args[5], "newProcessGroup", &pgrp)) return NULL;
  if (!codex_get_bool(env, args[6], "setsid", &sid)) return NULL;
  if (!codex_get_int(env, args[7], "execFd", -1, INT32_MAX, &exec_fd64)) return NULL;
  /* Trailing options: absent, undefined or null means the default. */
  bool present;
  bool set_nice = false;
  int64_t nice64 = 0;
  if (!given(env, argc, args, 8, &set_nice) ||
      (set_nice && !codex_get_int(env, args[8], "nice", -20, 19, &nice64)))
    return NULL;
  int64_t cgroup_fd64 = -1;
  if (!given(env, argc, args, 9, &present) ||
      (present && !codex_get_int(env, args[9], "cgroupFd", -1, INT32_MAX, &cgroup_fd64)))
    return NULL;
  int64_t cgroup_dir_fd64 = -1;
  if (!given(env, argc, args, 10, &present) ||
      (present && !codex_get_int(env, args[10], "cgroupDirFd", -1, INT32_MAX, &cgroup_dir_fd64)))
    return NULL;
  bool outlive = false;
  if (!given(env, argc, args, 11, &present) ||
      (present && !codex_get_bool(env, args[11], "outliveParent", &outlive)))
    return NULL;
  if (argvc == 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "argv must hold at least argv[0]");
    return NULL;
  }

  uint32_t n32;
  if (!codex_get_array(env, args[4], "fdMap", &n32)) return NULL;
  if (n32 > MAX_FD_MAP) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fdMap has too many entries");
    return NULL;
  }
  nmap = n32;
  map = calloc(nmap * 3 + 1, sizeof *map);
  if (!map) {
    codex_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  int *targets = map, *sources = map + nmap, *temps = map + 2 * nmap;
  int high = 0;
  for (uint32_t i = 0; i < n32; i++) {
    napi_value pair, t, s;
    uint32_t plen;
    if (napi_get_element(env, args[4], i, &pair) != napi_ok) {
      codex_throw_napi_failure(env, napi_generic_failure, "fdMap");
      return NULL;
    }
    if (!codex_get_array(env, pair, "fdMap[i]", &plen)) return NULL;
    if (plen != 2) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                            "fdMap[i] must be a [target, source] pair");
      return NULL;
    }
    if (napi_get_element(env, pair, 0, &t) != napi_ok ||
        napi_get_element(env, pair, 1, &s) != napi_ok) {
      codex_throw_napi_failure(env, napi_generic_failure, "fdMap pair");
      return NULL;
    }
    if (!codex_get_fd(env, t, "fdMap target", &targets[i])) return NULL;
    if (!codex_get_fd(env, s, "fdMap source", &sources[i])) return NULL;
    if (targets[i] >= INT32_MAX - 1) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fdMap target too large");
      return NULL;
    }
    for (uint32_t j = 0; j < i; j++) {
      if (targets[j] == targets[i]) {
        char msg[96];
        snprintf(msg, sizeof msg, "fdMap target %d appears twice", targets[i]);
        napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", msg);
        return NULL;
      }
    }
    if (targets[i] + 1 > high) high = targets[i] + 1;
  }

  /* The error pipe and the exec fd must not sit on a target number, or the
   * child's dup2 would clobber them. */
  {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      codex_throw_errno(env, errno, "pipe2");
      return NULL;
    }
    err_r = p[0];
    err_w = p[1];
  }
  if (err_w < high) {
    int nfd = fcntl(err_w, F_DUPFD_CLOEXEC, high);
    if (nfd < 0) {
      codex_throw_errno(env, errno, "fcntl");
      return NULL;
    }
    close(err_w);
    err_w = nfd;
  }
  int exec_fd = (int)exec_fd64;
  if (exec_fd >= 0 && exec_fd < high) {
    exec_dup = fcntl(exec_fd, F_DUPFD_CLOEXEC, high);
    if (exec_dup < 0) {
      codex_throw_errno(env, errno, "fcntl");
      return NULL;
    }
    exec_fd = exec_dup;
  }

  struct rlimit rl;
  int fallback_max = 65535;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < (rlim_t)(1 << 20))
    fallback_max = (int)rl.rlim_cur - 1;

  child_args_t ca = {
      .file = file,
      .argv = argv,
      .envp = envp,
      .cwd = cwd,
      .nmap = nmap,
      .targets = targets,
      .sources = sources,
      .temps = temps,
      .high = high,
      .errfd = err_w,
      .exec_fd = exec_fd,
      .setsid = sid,
      .setpgid = pgrp,
      .fallback_maxfd = fallback_max,
      .parent = getpid(),
      .set_nice = set_nice,
      .nice = (int)nice64,
      .cgroup_fd = (int)cgroup_fd64,
      .outlive_parent = outlive,
  };

  stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    codex_throw_errno(env, errno, "mmap");
    return NULL;
  }

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  pid_t pid = -1;
  int clone_err = 0;
#ifdef HAVE_CLONE3_VM
  if (cgroup_dir_fd64 >= 0) {
    struct codex_clone_args c3 = {
        .flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_INTO_CGROUP,
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        .exit_signal = SIGCHLD,
        .stack = (uint64_t)(uintptr_t)stack,
        .stack_size = CHILD_STACK_SIZE,
        .cgroup = (uint64_t)cgroup_dir_fd64,
    };
    ca.cgroup_fd = -1; /* born inside: nothing to join */
    pid = clone3_vm(&c3, child_main, &ca);
    if (pid < 0) {
      clone_err = errno;
      ca.cgroup_fd = (int)cgroup_fd64; /* join by writing cgroup.procs instead */
      pidfd = -1;
    }
  }
#endif
  if (pid < 0 && cgroup_dir_fd64 >= 0 && ca.cgroup_fd < 0) {
    /* Born-in was asked for, cannot be had, and there is no cgroup.procs to
     * join by: an untracked program must not start. */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    codex_throw_errno(env, clone_err ? clone_err : ENOSYS, "clone3");
    return NULL;
  }
  if (pid < 0) {
    pid = clone(child_main, (char *)stack + CHILD_STACK_SIZE,
                CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &ca, &pidfd);
    clone_err = errno;
  }
  if (pid < 0 && clone_err == EINVAL) {
    /* Kernel without CLONE_PIDFD (< 5.2): open the pidfd afterwards. */
    pid =
        clone(child_main, (char *)stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &ca);
    clone_err = errno;
    if (pid > 0) {
      pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
      if (pidfd < 0) clone_err = errno;
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(steal_fd(&err_w));
  if (pid < 0) {
    codex_throw_errno(env, clone_err, "clone");
    return NULL;
  }

  int msg[2] = {0, 0};
  ssize_t got;
  do {
    got = read(err_r, msg, sizeof msg);
  } while (got < 0 && errno == EINTR);

  if (got == (ssize_t)sizeof msg || pidfd < 0) {
    /* The child failed before exec (or we have no pidfd to hand out): reap
     * it now so no zombie is left behind. */
    int st;
    if (got != (ssize_t)sizeof msg) kill(pid, SIGKILL); /* still our child */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (pidfd >= 0) close(pidfd);
    if (got == (ssize_t)sizeof msg)
      throw_child_error(env, msg[0], msg[1],
                        msg[0] == STAGE_CHDIR  ? cwd
                        : msg[0] == STAGE_EXEC ? file
                                               : NULL);
    else
      codex_throw_errno(env, clone_err ? clone_err : ENOSYS, "pidfd_open");
    return NULL;
  }

  napi_value obj, vpid, vfd;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_int32(env, pid, &vpid) != napi_ok ||
      napi_create_int32(env, pidfd, &vfd) != napi_ok ||
      napi_set_named_property(env, obj, "pid", vpid) != napi_ok ||
      napi_set_named_property(env, obj, "pidfd", vfd) != napi_ok) {
    /* The child is running but we cannot report it: kill and reap it rather
     * than leak an unsupervised process. */
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    close(pidfd);
    codex_throw_napi_failure(env, napi_generic_failure, "spawn result");
    return NULL;
  }
  return obj;
}

CODEX_MODULE(codex_init_spawn,
             CODEX_FN("spawn", spawn))
