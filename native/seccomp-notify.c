/*
 * Seccomp user notification, server side: the wrapper installs a filter that
 * turns every execve/execveat of a Run'd program tree into a notification and
 * hands the listener fd to the server (docs/protocol.md, "Direct execs").
 * JS drives the listener fd with a Poller; on readable it calls
 * seccompNotifyRecv, decides, and answers with seccompNotifySend.
 *
 * Everything read here comes from a hostile process: the path and argv are
 * read from /proc/PID/mem with fixed bounds (the caller passes them, from
 * src/protocol/constants.ts), and the notification id is checked with
 * ID_VALID afterwards, so what was read belongs to the process still blocked
 * in that very syscall (not to a recycled pid).
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/audit.h>
#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH_ AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH_ AUDIT_ARCH_AARCH64
#else
#define NATIVE_AUDIT_ARCH_ 0u
#endif

struct bounds {
  size_t path, arg, total, argc;
};

/* NUL-terminated string at addr into a malloc'd buffer, at most max bytes
 * (NUL excluded). 0, or -1 with errno (E2BIG: longer than max). */
static int read_string(int mem, uint64_t addr, size_t max, char **out, size_t *len) {
  size_t cap = 256, n = 0;
  cleanup_free char *buf = malloc(cap);
  if (!buf) return -1;
  for (;;) {
    if (n == cap) {
      if (cap > max) {
        errno = E2BIG;
        return -1;
      }
      char *nb = realloc(buf, cap * 2);
      if (!nb) return -1;
      buf = nb;
      cap *= 2;
    }
    /* Reads stop at a page end: a string ending just before an unmapped
     * page must not fail. */
    size_t want = cap - n, to_page = 4096 - ((addr + n) & 4095);
    if (want > to_page) want = to_page;
    ssize_t r = pread(mem, buf + n, want, (off_t)(addr + n));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EFAULT;
      return -1;
    }
    char *nul = memchr(buf + n, '\0', (size_t)r);
    if (nul) {
      *len = (size_t)(nul - buf);
      if (*len > max) {
        errno = E2BIG;
        return -1;
      }
      *out = steal_pointer(&buf);
      return 0;
    }
    n += (size_t)r;
  }
}

static int read_word(int mem, uint64_t addr, uint64_t *out) {
  ssize_t r;
  do
    r = pread(mem, out, sizeof *out, (off_t)addr);
  while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof *out) {
    if (r >= 0) errno = EFAULT;
    return -1;
  }
  return 0;
}

static napi_value bytes_value(napi_env env, const char *s, size_t len) {
  napi_value v;
  void *data;
  if (napi_create_buffer_copy(env, len, s, &data, &v) != napi_ok) return NULL;
  return v;
}

static napi_value set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  NAPI_CALL(env, napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, key, v));
  return obj;
}

static napi_value set_int(napi_env env, napi_value obj, const char *key, int64_t val) {
  napi_value v;
  NAPI_CALL(env, napi_create_int64(env, val, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, key, v));
  return obj;
}

/*
 * seccompNotifyRecv(fd, bounds) -> null (nothing pending) | { hup: true }
 * (no process uses the filter any more) | { gone: true } (the target died
 * before we read it) | { id, pid, syscall, dirfd, flags, path?, argv?, error? }
 * error: what could not be read (too large, unreadable memory): the caller
 * denies. Never blocks: RECV is only called when poll says one is pending.
 */
static napi_value notify_recv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (!codex_get_args(env, info, 2, &argc, argv, "seccompNotifyRecv(fd, bounds)")) return NULL;
  int fd;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  struct bounds b;
  {
    static const char *keys[] = {"path", "arg", "total", "argc"};
    size_t *slots[] = {&b.path, &b.arg, &b.total, &b.argc};
    for (int i = 0; i < 4; i++) {
      napi_value v;
      int64_t x;
      NAPI_CALL(env, napi_get_named_property(env, argv[1], keys[i], &v));
      if (!codex_get_int(env, v, keys[i], 1, 1LL << 32, &x)) return NULL;
      *slots[i] = (size_t)x;
    }
  }

  napi_value result;
  struct pollfd pfd = {fd, POLLIN, 0};
  int pr;
  do
    pr = poll(&pfd, 1, 0);
  while (pr < 0 && errno == EINTR);
  if (pr < 0) {
    codex_throw_errno(env, errno, "poll");
    return NULL;
  }
  if (!(pfd.revents & POLLIN)) {
    if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
      napi_value t;
      NAPI_CALL(env, napi_create_object(env, &result));
      NAPI_CALL(env, napi_get_boolean(env, true, &t));
      NAPI_CALL(env, napi_set_named_property(env, result, "hup", t));
      return result;
    }
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }

  struct seccomp_notif req;
  memset(&req, 0, sizeof req); /* the kernel insists */
  int rr;
  do
    rr = ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req);
  while (rr < 0 && errno == EINTR);
  NAPI_CALL(env, napi_create_object(env, &result));
  if (rr < 0) {
    /* ENOENT: the target was killed (or its syscall interrupted) meanwhile. */
    if (errno == ENOENT) {
      napi_value t;
      NAPI_CALL(env, napi_get_boolean(env, true, &t));
      NAPI_CALL(env, napi_set_named_property(env, result, "gone", t));
      return result;
    }
    codex_throw_errno(env, errno, "SECCOMP_IOCTL_NOTIF_RECV");
    return NULL;
  }

  napi_value idv;
  NAPI_CALL(env, napi_create_bigint_uint64(env, req.id, &idv));
  NAPI_CALL(env, napi_set_named_property(env, result, "id", idv));
  if (!set_int(env, result, "pid", req.pid)) return NULL;

  uint64_t path_addr, argv_addr;
  int64_t dirfd = AT_FDCWD, flags = 0;
  if (req.data.arch != NATIVE_AUDIT_ARCH_) {
    path_addr = argv_addr = 0;
    (void)path_addr;
    (void)argv_addr;
    if (!set_str(env, result, "syscall", "other") ||
        !set_str(env, result, "error", "a 32-bit (compat ABI) exec is not decided"))
      return NULL;
    return result;
  } else if (req.data.nr == SYS_execve) {
    path_addr = req.data.args[0];
    argv_addr = req.data.args[1];
    if (!set_str(env, result, "syscall", "execve")) return NULL;
  } else if (req.data.nr == SYS_execveat) {
    dirfd = (int32_t)req.data.args[0];
    path_addr = req.data.args[1];
    argv_addr = req.data.args[2];
    flags = (int64_t)(uint32_t)req.data.args[4];
    if (!set_str(env, result, "syscall", "execveat")) return NULL;
  } else {
    /* A 32-bit (compat ABI) exec, or anything else: not decided, refused. */
    if (!set_str(env, result, "syscall", "other") ||
        !set_str(env, result, "error", "a 32-bit (compat ABI) exec is not decided"))
      return NULL;
    return result;
  }
  if (!set_int(env, result, "dirfd", dirfd) || !set_int(env, result, "flags", flags)) return NULL;

  char mem_path[64];
  snprintf(mem_path, sizeof mem_path, "/proc/%u/mem", req.pid);
  cleanup_fd int mem = open(mem_path, O_RDONLY | O_CLOEXEC);
  const char *error = NULL;
  cleanup_free char *path = NULL;
  size_t path_len = 0;
  napi_value args_arr;
  NAPI_CALL(env, napi_create_array(env, &args_arr));
  if (mem < 0) {
    error = "cannot read the process's memory";
  } else if (read_string(mem, path_addr, b.path, &path, &path_len) < 0) {
    error = errno == E2BIG ? "path too long" : "cannot read the path";
  } else {
    size_t total = 0;
    uint32_t n = 0;
    for (;; n++) {
      uint64_t ptr;
      cleanup_free char *arg = NULL;
      size_t len;
      if (argv_addr == 0) break; /* Linux treats a NULL argv as empty */
      if (read_word(mem, argv_addr + 8ull * n, &ptr) < 0) {
        error = "cannot read argv";
        break;
      }
      if (ptr == 0) break;
      if (n >= b.argc) {
        error = "too many arguments";
        break;
      }
      if (read_string(mem, ptr, b.arg, &arg, &len) < 0) {
        error = errno == E2BIG ? "argument too long" : "cannot read argv";
        break;
      }
      total += len + 1;
      if (total > b.total) {
        error = "arguments too large";
        break;
      }
      napi_value v = bytes_value(env, arg, len);
      if (!v) return NULL;
      NAPI_CALL(env, napi_set_element(env, args_arr, n, v));
    }
  }
  /* What was read is the blocked syscall's only if the id is still valid. */
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0) {
    napi_value t;
    NAPI_CALL(env, napi_create_object(env, &result));
    NAPI_CALL(env, napi_get_boolean(env, true, &t));
    NAPI_CALL(env, napi_set_named_property(env, result, "gone", t));
    return result;
  }
  if (error) {
    if (!set_str(env, result, "error", error)) return NULL;
    return result;
  }
  napi_value pv = bytes_value(env, path, path_len);
  if (!pv) return NULL;
  NAPI_CALL(env, napi_set_named_property(env, result, "path", pv));
  NAPI_CALL(env, napi_set_named_property(env, result, "argv", args_arr));
  return result;
}

/* seccompNotifySend(fd, id: bigint, err: number) -> true, or false when the
 * target is gone (ENOENT). err 0: the syscall continues; else it fails with
 * that errno (EACCES for a Deny, ENOENT for a program that is not there). */
static napi_value notify_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (!codex_get_args(env, info, 3, &argc, argv, "seccompNotifySend(fd, id, err)")) return NULL;
  int fd;
  bool lossless;
  int64_t err;
  uint64_t id;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (napi_get_value_bigint_uint64(env, argv[1], &id, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "id must be a bigint");
    return NULL;
  }
  if (!codex_get_int(env, argv[2], "err", 0, 4095, &err)) return NULL;
  struct seccomp_notif_resp resp;
  memset(&resp, 0, sizeof resp);
  resp.id = id;
  if (err == 0)
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  else
    resp.error = -(int32_t)err;
  int r;
  do
    r = ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  while (r < 0 && errno == EINTR);
  napi_value out;
  if (r < 0 && errno != ENOENT) {
    codex_throw_errno(env, errno, "SECCOMP_IOCTL_NOTIF_SEND");
    return NULL;
  }
  NAPI_CALL(env, napi_get_boolean(env, r == 0, &out));
  return out;
}

/* O_PATH open of `rel` beneath `root` as the process whose root it is
 * would resolve it: absolute symlinks and ".." stay inside that root. */
static int open_in_root(int root, const char *rel) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return (int)syscall(SYS_openat2, root, rel, &how, sizeof how);
}

/* The absolute path of the directory `magic` (/proc/PID/cwd, /proc/PID/fd/N)
 * re-opened inside `root`; -1 (EXDEV) unless it is the same directory, so a
 * path the server cannot express in the process's root is never guessed. */
static int dir_in_root(int root, const char *magic, char *buf, size_t cap) {
  struct stat a, b;
  ssize_t n = readlink(magic, buf, cap - 1);
  if (n <= 0 || (size_t)n >= cap - 1) {
    if (n >= 0) errno = ENAMETOOLONG;
    return -1;
  }
  buf[n] = '\0';
  if (buf[0] != '/') {
    errno = EXDEV;
    return -1;
  }
  cleanup_fd int here = open(magic, O_PATH | O_CLOEXEC | O_DIRECTORY);
  cleanup_fd int there = here < 0 ? -1 : open_in_root(root, buf + 1);
  if (here < 0 || there < 0) return -1;
  if (fstat(here, &a) < 0 || fstat(there, &b) < 0) return -1;
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    errno = EXDEV;
    return -1;
  }
  return 0;
}

/*
 * seccompOpenTarget(pid, dirfd, path: Buffer, flags) -> O_PATH fd on the
 * file execve(path)/execveat(dirfd, path, .., flags) of process pid would
 * run, resolved in that process's root (RESOLVE_IN_ROOT on /proc/PID/root)
 * and from its cwd or dirfd. Throws with the errno (ENOENT: nothing there).
 */
static napi_value open_target(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (!codex_get_args(env, info, 4, &argc, argv, "seccompOpenTarget(pid, dirfd, path, flags)")) return NULL;
  int64_t pid, dirfd, flags;
  if (!codex_get_int(env, argv[0], "pid", 1, INT32_MAX, &pid)) return NULL;
  if (!codex_get_int(env, argv[1], "dirfd", INT32_MIN, INT32_MAX, &dirfd)) return NULL;
  if (!codex_get_int(env, argv[3], "flags", 0, UINT32_MAX, &flags)) return NULL;
  cleanup_free char *path = codex_get_cstring(env, argv[2], "path");
  if (!path) return NULL;
  char magic[64], base[PATH_MAX];
  snprintf(magic, sizeof magic, "/proc/%lld/root", (long long)pid);
  cleanup_fd int root = open(magic, O_PATH | O_CLOEXEC | O_DIRECTORY);
  if (root < 0) {
    codex_throw_errno(env, errno, "open /proc/PID/root");
    return NULL;
  }
  int fd;
  if (path[0] == '\0' && (flags & AT_EMPTY_PATH)) {
    /* fexecve: the fd itself (a magic link; it names the very file). */
    snprintf(magic, sizeof magic, "/proc/%lld/fd/%d", (long long)pid, (int)dirfd);
    fd = open(magic, O_PATH | O_CLOEXEC);
  } else if (path[0] == '/') {
    fd = open_in_root(root, path + 1);
  } else {
    if (dirfd == AT_FDCWD)
      snprintf(magic, sizeof magic, "/proc/%lld/cwd", (long long)pid);
    else
      snprintf(magic, sizeof magic, "/proc/%lld/fd/%d", (long long)pid, (int)dirfd);
    if (dir_in_root(root, magic, base, sizeof base) < 0) {
      codex_throw_errno(env, errno, "resolve the exec's directory");
      return NULL;
    }
    size_t bl = strlen(base), pl = strlen(path);
    cleanup_free char *full = malloc(bl + pl + 2);
    if (!full) {
      codex_throw_errno(env, ENOMEM, "malloc");
      return NULL;
    }
    memcpy(full, base, bl);
    full[bl] = '/';
    memcpy(full + bl + 1, path, pl + 1);
    fd = open_in_root(root, full + 1);
  }
  if (fd < 0) {
    codex_throw_errno(env, errno, "open the exec's program");
    return NULL;
  }
  napi_value out;
  if (napi_create_int32(env, fd, &out) != napi_ok) {
    close(fd);
    codex_throw_napi_failure(env, napi_generic_failure, "napi_create_int32");
    return NULL;
  }
  return out;
}

/*
 * seccompWriteStderr(listenerFd, id: bigint, pid, line: Buffer) -> 0 (not
 * written), 1 (written to a file other than this process's stderr) or 2
 * (written, and it is our own stderr too: the user has seen it):
 * one line on the stderr of the process blocked in notification `id`,
 * without ever blocking: its fd 2 is taken with pidfd_getfd (after ID_VALID,
 * so the pidfd is that process and not a recycled pid), written only if that
 * open file is writable by the process; a socket with MSG_DONTWAIT, a pipe, a
 * terminal or a regular file re-opened append-only and non-blocking (our own
 * description: the process's flags stay as they are). Anything else (a
 * device the server's privileges could open) is left alone.
 */
static napi_value write_stderr(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (!codex_get_args(env, info, 4, &argc, argv, "seccompWriteStderr(fd, id, pid, line)")) return NULL;
  int fd;
  int64_t pid;
  uint64_t id;
  bool lossless;
  const uint8_t *line;
  size_t len;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (napi_get_value_bigint_uint64(env, argv[1], &id, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "id must be a bigint");
    return NULL;
  }
  if (!codex_get_int(env, argv[2], "pid", 1, INT32_MAX, &pid)) return NULL;
  if (!codex_get_bytes(env, argv[3], "line", &line, &len)) return NULL;
  bool done = false, ours = false;
  cleanup_fd int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  cleanup_fd int err = -1;
  cleanup_fd int mine = -1;
  struct stat st;
  int fl;
  if (pidfd < 0 || ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0) goto out;
  err = (int)syscall(SYS_pidfd_getfd, pidfd, 2, 0);
  if (err < 0 || fstat(err, &st) < 0 || (fl = fcntl(err, F_GETFL)) < 0) goto out;
  if ((fl & O_ACCMODE) != O_WRONLY && (fl & O_ACCMODE) != O_RDWR) goto out;
  {
    struct stat me;
    ours = fstat(STDERR_FILENO, &me) == 0 && me.st_dev == st.st_dev && me.st_ino == st.st_ino;
  }
  if (S_ISSOCK(st.st_mode)) {
    done = send(err, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
    goto out;
  }
  if (!(S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(err)))) goto out;
  {
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", err);
    mine = open(self, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (mine >= 0) done = write(mine, line, len) == (ssize_t)len;
  }
out:;
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, done ? (ours ? 2 : 1) : 0, &out));
  return out;
}

napi_value codex_init_seccomp_notify(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      CODEX_FN("seccompNotifyRecv", notify_recv),
      CODEX_FN("seccompNotifySend", notify_send),
      CODEX_FN("seccompOpenTarget", open_target),
      CODEX_FN("seccompWriteStderr", write_stderr),
  };
  CODEX_DEFINE_ALL(env, exports, props);
  return exports;
}
