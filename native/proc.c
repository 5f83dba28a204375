/* Process helpers: reap through a pidfd, signal through a pidfd, O_PATH
 * opens for exec-what-you-checked, an fd counter for leak tests, and
 * close-on-exec marking of inherited fds before a spawn. */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* waitPidfd(pidfd) -> {code, signal, coreDumped} | null (still running).
 * Reaps the child; does not close the pidfd. */
static napi_value wait_pidfd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!codex_get_args(env, info, 1, &argc, argv, "waitPidfd(pidfd)")) return NULL;
  int pidfd;
  if (!codex_get_fd(env, argv[0], "pidfd", &pidfd)) return NULL;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  do {
    r = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    codex_throw_errno(env, errno, "waitid");
    return NULL;
  }
  napi_value result, code, sig, core;
  if (si.si_pid == 0) {
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  NAPI_CALL(env, napi_get_null(env, &code));
  NAPI_CALL(env, napi_get_null(env, &sig));
  if (si.si_code == CLD_EXITED) {
    NAPI_CALL(env, napi_create_int32(env, si.si_status, &code));
  } else {
    NAPI_CALL(env, napi_create_int32(env, si.si_status, &sig));
  }
  NAPI_CALL(env, napi_get_boolean(env, si.si_code == CLD_DUMPED, &core));
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_set_named_property(env, result, "code", code));
  NAPI_CALL(env, napi_set_named_property(env, result, "signal", sig));
  NAPI_CALL(env, napi_set_named_property(env, result, "coreDumped", core));
  return result;
}

static napi_value send_signal(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (!codex_get_args(env, info, 2, &argc, argv, "sendSignal(pidfd, signal)")) return NULL;
  int pidfd;
  int64_t sig;
  if (!codex_get_fd(env, argv[0], "pidfd", &pidfd)) return NULL;
  if (!codex_get_int(env, argv[1], "signal", 0, NSIG - 1, &sig)) return NULL;
  if (syscall(SYS_pidfd_send_signal, pidfd, (int)sig, NULL, 0) != 0 && errno != ESRCH) {
    codex_throw_errno(env, errno, "pidfd_send_signal");
    return NULL;
  }
  return NULL;
}

static napi_value open_path(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!codex_get_args(env, info, 1, &argc, argv, "openPath(path)")) return NULL;
  char *path = codex_get_cstring(env, argv[0], "path");
  if (!path) return NULL;
  int fd;
  do {
    fd = open(path, O_PATH | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    napi_value e = codex_make_errno_error(env, err, "open", path);
    napi_value p;
    if (e && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &p) == napi_ok)
      napi_set_named_property(env, e, "path", p);
    free(path);
    if (e)
      napi_throw(env, e);
    else
      codex_throw_errno(env, err, "open");
    return NULL;
  }
  free(path);
  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    codex_throw_napi_failure(env, napi_generic_failure, "openPath");
    return NULL;
  }
  return result;
}

static napi_value count_open_fds(napi_env env, napi_callback_info info) {
  (void)info;
  DIR *d = opendir("/proc/self/fd");
  if (!d) {
    codex_throw_errno(env, errno, "opendir");
    return NULL;
  }
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    n++;
  }
  closedir(d);
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, n - 1, &result)); /* minus our dirfd */
  return result;
}

/* Set FD_CLOEXEC on fd if it lacks it; append it to list when changed.
 * Returns false (errno set) only on a real failure; a closed fd is skipped. */
static bool mark_one(int fd, int **list, size_t *n, size_t *cap) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return errno == EBADF;
  if (flags & FD_CLOEXEC) return true;
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    int *grown = realloc(*list, ncap * sizeof **list);
    if (!grown) return false;
    *list = grown;
    *cap = ncap;
  }
  if (fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) return errno == EBADF;
  (*list)[(*n)++] = fd;
  return true;
}

/* markCloexecFrom(minFd) -> number[]: every open fd >= minFd without
 * FD_CLOEXEC gets it; returns those it changed so the caller can restore
 * them. Node's spawn closes nothing it did not open itself, so this is how a
 * child starts with only the fds it is given. Walks /proc/self/fd; without
 * /proc, probes every number below RLIMIT_NOFILE (capped at 2^20). */
static napi_value mark_cloexec_from(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!codex_get_args(env, info, 1, &argc, argv, "markCloexecFrom(minFd)")) return NULL;
  int64_t min_fd;
  if (!codex_get_int(env, argv[0], "minFd", 0, INT32_MAX, &min_fd)) return NULL;
  int *list = NULL;
  size_t n = 0, cap = 0;
  bool ok = true;
  int err = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    int self = dirfd(d);
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
      if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
      long fd = strtol(de->d_name, NULL, 10);
      if (fd < min_fd || fd == self || fd > INT32_MAX) continue;
      ok = mark_one((int)fd, &list, &n, &cap);
      if (!ok) err = errno;
    }
    closedir(d);
  } else {
    struct rlimit rl;
    rlim_t limit = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < limit) limit = rl.rlim_cur;
    for (rlim_t fd = (rlim_t)min_fd; ok && fd < limit; fd++)
      ok = mark_one((int)fd, &list, &n, &cap);
    if (!ok) err = errno;
  }
  if (!ok) {
    if (err == 0) err = ENOMEM;
    /* Undo what we changed: the caller gets an error, not a half-marked process. */
    for (size_t i = 0; i < n; i++) {
      int flags = fcntl(list[i], F_GETFD);
      if (flags >= 0) fcntl(list[i], F_SETFD, flags & ~FD_CLOEXEC);
    }
    free(list);
    codex_throw_errno(env, err, "fcntl");
    return NULL;
  }
  napi_value result;
  if (napi_create_array_with_length(env, n, &result) != napi_ok) {
    free(list);
    codex_throw_napi_failure(env, napi_generic_failure, "markCloexecFrom");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_create_int32(env, list[i], &v) != napi_ok ||
        napi_set_element(env, result, (uint32_t)i, v) != napi_ok) {
      free(list);
      codex_throw_napi_failure(env, napi_generic_failure, "markCloexecFrom");
      return NULL;
    }
  }
  free(list);
  return result;
}

CODEX_MODULE(codex_init_proc,
             CODEX_FN("waitPidfd", wait_pidfd),
             CODEX_FN("sendSignal", send_signal),
             CODEX_FN("openPath", open_path),
             CODEX_FN("countOpenFds", count_open_fds),
             CODEX_FN("markCloexecFrom", mark_cloexec_from))
