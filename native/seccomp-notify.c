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
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <uv.h>
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


static napi_value notification_value(napi_env env, int fd, struct seccomp_notif *req, const struct bounds *b);

static napi_value gone_value(napi_env env) {
  napi_value result, t;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_get_boolean(env, true, &t));
  NAPI_CALL(env, napi_set_named_property(env, result, "gone", t));
  return result;
}

/* One RECV (the caller knows one is pending: RECV blocks otherwise). */
static int recv_one(int fd, struct seccomp_notif *req) {
  memset(req, 0, sizeof *req); /* the kernel insists */
  int rr;
  do
    rr = ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req);
  while (rr < 0 && errno == EINTR);
  return rr;
}

/* 1: a notification is pending; 0: none; -1: hung up (no process uses the filter) or an error. */
static int pending(int fd) {
  struct pollfd pfd = {fd, POLLIN, 0};
  int pr;
  do
    pr = poll(&pfd, 1, 0);
  while (pr < 0 && errno == EINTR);
  if (pr < 0) return -1;
  if (pfd.revents & POLLIN) return 1;
  return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) ? -1 : 0;
}

/* Bounds {path, arg, total, argc} from a JS object. */
static bool get_bounds(napi_env env, napi_value obj, struct bounds *b) {
  static const char *keys[] = {"path", "arg", "total", "argc"};
  size_t *slots[] = {&b->path, &b->arg, &b->total, &b->argc};
  for (int i = 0; i < 4; i++) {
    napi_value v;
    int64_t x;
    if (napi_get_named_property(env, obj, keys[i], &v) != napi_ok) {
      codex_throw_napi_failure(env, napi_generic_failure, "bounds");
      return false;
    }
    if (!codex_get_int(env, v, keys[i], 1, 1LL << 32, &x)) return false;
    *slots[i] = (size_t)x;
  }
  return true;
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
  if (!get_bounds(env, argv[1], &b)) return NULL;
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
  int rr = recv_one(fd, &req);
  if (rr < 0) {
    /* ENOENT: the target was killed (or its syscall interrupted) meanwhile. */
    if (errno == ENOENT) return gone_value(env);
    codex_throw_errno(env, errno, "SECCOMP_IOCTL_NOTIF_RECV");
    return NULL;
  }
  return notification_value(env, fd, &req, &b);
}

/* The JS value of one RECV'd notification (see seccompNotifyRecv). */
static napi_value notification_value(napi_env env, int fd, struct seccomp_notif *reqp, const struct bounds *bp) {
  struct seccomp_notif req = *reqp;
  struct bounds b = *bp;
  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
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
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0) return gone_value(env);
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

/* SEND: err 0 continues the syscall, else fails it with that errno. 0 or -1 with errno. */
static int send_resp(int fd, uint64_t id, int err) {
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
  return r;
}

/* seccompNotifySend(fd, id: bigint, err: number) -> true, or false when the
 * target is gone (ENOENT). err 0: the syscall continues; else it fails with
 * that errno (EACCES for a Deny, ENOENT for a program that is not there). */
static napi_value notify_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (!codex_get_args(env, info, 3, &argc, argv, "seccompNotifySend(fd, id, err)")) return NULL;
  int fd;
  int64_t err;
  uint64_t id;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (!codex_get_bigint_u64(env, argv[1], "id", &id)) return NULL;
  if (!codex_get_int(env, argv[2], "err", 0, 4095, &err)) return NULL;
  int r = send_resp(fd, id, (int)err);
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

/* The core of seccompWriteStderr: 0, 1 or 2 (see below). */
static int stderr_line(int fd, uint64_t id, int64_t pid, const uint8_t *line, size_t len) {
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
out:
  return done ? (ours ? 2 : 1) : 0;
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
  const uint8_t *line;
  size_t len;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (!codex_get_bigint_u64(env, argv[1], "id", &id)) return NULL;
  if (!codex_get_int(env, argv[2], "pid", 1, INT32_MAX, &pid)) return NULL;
  if (!codex_get_bytes(env, argv[3], "line", &line, &len)) return NULL;
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, stderr_line(fd, id, pid, line, len), &out));
  return out;
}


/*
 * SeccompHub: every listener of a session in one epoll set, driven by one
 * uv_poll on the epoll fd, so a Run'd program tree costs the event loop and
 * JS nothing until it makes a direct exec. The hub owns its listener fds:
 * a hung-up listener (its tree is gone) is removed and closed here with no
 * call into JS; a pending notification is RECV'd here and handed to JS as
 * onNotify(listenerId, notification). JS answers through the hub by listener
 * id, never by fd number: an id is never reused, so an answer that comes
 * after its listener closed fails (false / 0) instead of reaching whatever
 * fd took that number. close() (session end) closes every listener: the
 * kernel then fails their pending and future execs (fail closed).
 *
 * Lifetime: the JS object keeps a strong reference to itself until close()
 * (or env teardown); the struct is freed once the uv handle has closed and
 * the JS object has been finalized, whichever is last.
 */
#define HUB_CB_PROP "_codexOnNotify"
#define HUB_MAX_EVENTS 64

typedef struct hub_listener {
  struct hub_listener *next;
  int fd;
  int64_t id;
} hub_listener_t;

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref self;
  napi_async_context actx;
  struct bounds bounds;
  hub_listener_t *listeners;
  size_t count;
  int64_t next_id;
  int epfd;
  bool closing, closed, finalized, hooked;
} hub_t;

static void hub_cleanup_hook(void *arg);

static void hub_close_listeners(hub_t *h) {
  while (h->listeners) {
    hub_listener_t *l = h->listeners;
    h->listeners = l->next;
    close(l->fd);
    free(l);
  }
  h->count = 0;
}

static void hub_on_uv_close(uv_handle_t *handle) {
  hub_t *h = handle->data;
  h->closed = true;
  if (h->hooked) {
    h->hooked = false;
    napi_remove_env_cleanup_hook(h->env, hub_cleanup_hook, h);
  }
  if (h->finalized) free(h);
}

/* Close everything; no JS is called. Safe to call twice. */
static void hub_shutdown(hub_t *h) {
  if (h->closing) return;
  h->closing = true;
  uv_poll_stop(&h->handle);
  uv_close((uv_handle_t *)&h->handle, hub_on_uv_close);
  hub_close_listeners(h);
  if (h->epfd >= 0) close(h->epfd);
  h->epfd = -1;
}

static void hub_cleanup_hook(void *arg) {
  hub_t *h = arg;
  h->hooked = false; /* Node drops the hook after running it */
  hub_shutdown(h);
}

static void hub_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  hub_t *h = data;
  h->finalized = true;
  if (h->self) napi_delete_reference(env, h->self);
  h->self = NULL;
  if (h->actx) napi_async_destroy(env, h->actx);
  h->actx = NULL;
  hub_shutdown(h);
  if (h->closed) free(h);
}

/* A listener keeps the process alive like any open handle; an empty hub does not. */
static void hub_sync_ref(hub_t *h) {
  if (h->closing) return;
  if (h->count)
    uv_ref((uv_handle_t *)&h->handle);
  else
    uv_unref((uv_handle_t *)&h->handle);
}

static hub_listener_t *hub_find(hub_t *h, int64_t id) {
  for (hub_listener_t *l = h->listeners; l; l = l->next)
    if (l->id == id) return l;
  return NULL;
}

static void hub_remove(hub_t *h, hub_listener_t *gone) {
  for (hub_listener_t **pp = &h->listeners; *pp; pp = &(*pp)->next) {
    if (*pp != gone) continue;
    *pp = gone->next;
    epoll_ctl(h->epfd, EPOLL_CTL_DEL, gone->fd, NULL);
    close(gone->fd);
    free(gone);
    h->count--;
    return;
  }
}

/* One notification to JS. false: stop (the hub was closed, or JS could not be called). */
static bool hub_deliver(hub_t *h, int64_t lid, int fd, struct seccomp_notif *req) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  bool ok = false;
  napi_value obj, cb, args[2];
  if (!codex_get_callback(env, h->self, HUB_CB_PROP, &obj, &cb)) goto out;
  if (napi_create_int64(env, lid, &args[0]) != napi_ok) goto out;
  args[1] = notification_value(env, fd, req, &h->bounds);
  if (!args[1]) {
    /* Could not even build the value: fail that exec closed rather than leave it blocked. */
    bool pend = false;
    napi_value exc;
    if (napi_is_exception_pending(env, &pend) == napi_ok && pend) napi_get_and_clear_last_exception(env, &exc);
    send_resp(fd, req->id, EACCES);
    ok = true;
    goto out;
  }
  codex_invoke_callback(env, h->actx, obj, cb, 2, args);
  ok = !h->closing;
out:
  napi_close_handle_scope(env, scope);
  return ok;
}

static void hub_on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  hub_t *h = handle->data;
  if (h->closing || !h->self) return;
  if (status < 0) {
    /* The epoll fd itself failed: fail closed, every listener goes. */
    hub_shutdown(h);
    return;
  }
  struct epoll_event ev[HUB_MAX_EVENTS];
  int n;
  do
    n = epoll_wait(h->epfd, ev, HUB_MAX_EVENTS, 0);
  while (n < 0 && errno == EINTR);
  /* Ids, not pointers: a callback may close the hub (freeing every entry). */
  int64_t ids[HUB_MAX_EVENTS];
  for (int i = 0; i < n; i++) ids[i] = (int64_t)ev[i].data.u64;
  for (int i = 0; i < n && !h->closing; i++) {
    hub_listener_t *l = hub_find(h, ids[i]);
    if (!l) continue;
    if (!(ev[i].events & EPOLLIN)) {
      /* EPOLLHUP/EPOLLERR alone: no process uses that filter any more. */
      hub_remove(h, l);
      continue;
    }
    int fd = l->fd;
    int64_t lid = l->id;
    for (;;) {
      int p = pending(fd);
      if (p <= 0) break; /* a hang-up is seen (and closed) on the next wake-up */
      struct seccomp_notif req;
      if (recv_one(fd, &req) < 0) {
        if (errno == ENOENT) continue; /* the target died meanwhile */
        l = hub_find(h, lid);
        if (l) hub_remove(h, l);
        break;
      }
      if (!hub_deliver(h, lid, fd, &req)) break;
      if (!hub_find(h, lid)) break;
    }
  }
  hub_sync_ref(h);
}

/* The hub behind `this`; all *argc arguments are required (TypeError `usage`). */
static hub_t *hub_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *self,
                         const char *usage) {
  return codex_unwrap_this(env, info, argc, argv, self, "SeccompHub", *argc, usage);
}

/* new SeccompHub(bounds, onNotify(listenerId, notification)) */
static napi_value hub_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], thisv;
  if (!codex_ctor_args(env, info, 2, &argc, argv, &thisv, "SeccompHub", "new SeccompHub(bounds, onNotify)"))
    return NULL;
  struct bounds b;
  if (!get_bounds(env, argv[0], &b)) return NULL;
  if (!codex_get_function(env, argv[1], "onNotify")) return NULL;
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  cleanup_fd int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    codex_throw_errno(env, errno, "epoll_create1");
    return NULL;
  }
  hub_t *h = calloc(1, sizeof *h);
  if (!h) {
    codex_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  h->env = env;
  h->bounds = b;
  h->next_id = 1;
  int r = uv_poll_init(loop, &h->handle, epfd);
  if (r != 0) {
    free(h);
    codex_throw_errno(env, -r, "uv_poll_init");
    return NULL;
  }
  h->epfd = steal_fd(&epfd);
  h->handle.data = h;
  if (!codex_attach_callback(env, thisv, HUB_CB_PROP, argv[1], "CodexSeccompHub", &h->actx)) {
    h->finalized = true;
    hub_shutdown(h);
    codex_throw_napi_failure(env, napi_generic_failure, "SeccompHub constructor");
    return NULL;
  }
  if (napi_wrap(env, thisv, h, hub_finalize, NULL, NULL) != napi_ok) {
    napi_async_destroy(env, h->actx);
    h->actx = NULL;
    h->finalized = true;
    hub_shutdown(h);
    codex_throw_napi_failure(env, napi_generic_failure, "napi_wrap");
    return NULL;
  }
  /* From here the finalizer owns cleanup. */
  if (napi_add_env_cleanup_hook(env, hub_cleanup_hook, h) == napi_ok) h->hooked = true;
  if (napi_create_reference(env, thisv, 1, &h->self) != napi_ok) {
    hub_shutdown(h);
    codex_throw_napi_failure(env, napi_generic_failure, "napi_create_reference");
    return NULL;
  }
  r = uv_poll_start(&h->handle, UV_READABLE, hub_on_poll);
  if (r != 0) {
    hub_shutdown(h);
    codex_throw_errno(env, -r, "uv_poll_start");
    return NULL;
  }
  hub_sync_ref(h);
  return thisv;
}

/* add(fd) -> listener id. The hub owns fd from here, even when this throws. */
static napi_value hub_add(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  hub_t *h = hub_unwrap(env, info, &argc, argv, NULL, "add(fd)");
  if (!h) return NULL;
  int fd;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  cleanup_fd int owned = fd;
  if (h->closing) {
    napi_throw_error(env, "ERR_HUB_CLOSED", "SeccompHub is closed");
    return NULL;
  }
  hub_listener_t *l = calloc(1, sizeof *l);
  if (!l) {
    codex_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  l->id = h->next_id++;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)l->id};
  if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int e = errno;
    free(l);
    codex_throw_errno(env, e, "epoll_ctl");
    return NULL;
  }
  l->fd = steal_fd(&owned);
  l->next = h->listeners;
  h->listeners = l;
  h->count++;
  hub_sync_ref(h);
  napi_value out;
  NAPI_CALL(env, napi_create_int64(env, l->id, &out));
  return out;
}

static bool hub_args(napi_env env, napi_value *argv, int64_t *lid, uint64_t *id) {
  return codex_get_int(env, argv[0], "listener", 1, INT64_C(1) << 53, lid) &&
         codex_get_bigint_u64(env, argv[1], "id", id);
}

/* send(listenerId, id: bigint, err) -> true, or false when the target or its listener is gone. */
static napi_value hub_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  hub_t *h = hub_unwrap(env, info, &argc, argv, NULL, "send(listener, id, err)");
  if (!h) return NULL;
  int64_t lid, err;
  uint64_t id;
  if (!hub_args(env, argv, &lid, &id) || !codex_get_int(env, argv[2], "err", 0, 4095, &err)) return NULL;
  hub_listener_t *l = h->closing ? NULL : hub_find(h, lid);
  int r = l ? send_resp(l->fd, id, (int)err) : -1;
  if (r < 0 && l && errno != ENOENT) {
    codex_throw_errno(env, errno, "SECCOMP_IOCTL_NOTIF_SEND");
    return NULL;
  }
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, r == 0, &out));
  return out;
}

/* writeStderr(listenerId, id: bigint, pid, line) -> 0 | 1 | 2, as seccompWriteStderr. */
static napi_value hub_write_stderr(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  hub_t *h = hub_unwrap(env, info, &argc, argv, NULL, "writeStderr(listener, id, pid, line)");
  if (!h) return NULL;
  int64_t lid, pid;
  uint64_t id;
  const uint8_t *line;
  size_t len;
  if (!hub_args(env, argv, &lid, &id) || !codex_get_int(env, argv[2], "pid", 1, INT32_MAX, &pid) ||
      !codex_get_bytes(env, argv[3], "line", &line, &len))
    return NULL;
  hub_listener_t *l = h->closing ? NULL : hub_find(h, lid);
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, l ? stderr_line(l->fd, id, pid, line, len) : 0, &out));
  return out;
}

static napi_value hub_size(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  hub_t *h = hub_unwrap(env, info, &argc, NULL, NULL, NULL);
  if (!h) return NULL;
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)h->count, &out));
  return out;
}

/* close(): idempotent; every listener is closed (their execs then fail). */
static napi_value hub_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  hub_t *h = hub_unwrap(env, info, &argc, NULL, &self, NULL);
  if (!h) return NULL;
  if (h->closing) return NULL;
  hub_shutdown(h);
  if (h->actx) napi_async_destroy(env, h->actx);
  h->actx = NULL;
  uint32_t rc;
  if (h->self) napi_reference_unref(env, h->self, &rc);
  codex_detach_callback(env, self, HUB_CB_PROP);
  return NULL;
}

napi_value codex_init_seccomp_notify(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      CODEX_FN("seccompNotifyRecv", notify_recv),
      CODEX_FN("seccompNotifySend", notify_send),
      CODEX_FN("seccompOpenTarget", open_target),
      CODEX_FN("seccompWriteStderr", write_stderr),
  };
  CODEX_DEFINE_ALL(env, exports, props);
  napi_property_descriptor methods[] = {
      CODEX_METHOD("add", hub_add),   CODEX_METHOD("send", hub_send), CODEX_METHOD("writeStderr", hub_write_stderr),
      CODEX_METHOD("size", hub_size), CODEX_METHOD("close", hub_close),
  };
  CODEX_DEFINE_CLASS(env, exports, "SeccompHub", "NativeSeccompHub", hub_new, methods);
  return exports;
}
