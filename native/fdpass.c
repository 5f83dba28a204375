/*
 * Unix-socket primitives Node lacks: socketpair, SCM_RIGHTS send/receive,
 * and fd flag twiddling. Every call is non-blocking (MSG_DONTWAIT) so a slow
 * or hostile peer can never stall the event loop.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* socketPair(type: 'stream'|'dgram', cloexec: boolean, nonblock: boolean) */
static napi_value socket_pair(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (!codex_get_args(env, info, 3, &argc, argv, "socketPair(type, cloexec, nonblock)"))
    return NULL;
  char tbuf[16];
  size_t tlen = 0;
  napi_valuetype vt;
  NAPI_CALL(env, napi_typeof(env, argv[0], &vt));
  if (vt != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "type must be 'stream' or 'dgram'");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], tbuf, sizeof tbuf, &tlen));
  int type;
  if (strcmp(tbuf, "stream") == 0)
    type = SOCK_STREAM;
  else if (strcmp(tbuf, "dgram") == 0)
    type = SOCK_DGRAM;
  else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "type must be 'stream' or 'dgram'");
    return NULL;
  }
  bool cloexec, nonblock;
  if (!codex_get_bool(env, argv[1], "cloexec", &cloexec)) return NULL;
  if (!codex_get_bool(env, argv[2], "nonblock", &nonblock)) return NULL;
  if (cloexec) type |= SOCK_CLOEXEC;
  if (nonblock) type |= SOCK_NONBLOCK;

  int sv[2];
  if (socketpair(AF_UNIX, type, 0, sv) != 0) {
    codex_throw_errno(env, errno, "socketpair");
    return NULL;
  }
  napi_value arr, a, b;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok ||
      napi_create_int32(env, sv[0], &a) != napi_ok ||
      napi_create_int32(env, sv[1], &b) != napi_ok || napi_set_element(env, arr, 0, a) != napi_ok ||
      napi_set_element(env, arr, 1, b) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    codex_throw_napi_failure(env, napi_generic_failure, "socketPair result");
    return NULL;
  }
  return arr;
}

static napi_value set_fd_flag(napi_env env, napi_callback_info info, bool fd_flags) {
  size_t argc = 2;
  napi_value argv[2];
  if (!codex_get_args(env, info, 2, &argc, argv,
                      fd_flags ? "setCloexec(fd, on)" : "setNonblock(fd, on)"))
    return NULL;
  int fd;
  bool on;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (!codex_get_bool(env, argv[1], "on", &on)) return NULL;
  int get = fd_flags ? F_GETFD : F_GETFL, set = fd_flags ? F_SETFD : F_SETFL;
  int bit = fd_flags ? FD_CLOEXEC : O_NONBLOCK;
  int flags = fcntl(fd, get);
  if (flags < 0) {
    codex_throw_errno(env, errno, "fcntl");
    return NULL;
  }
  int nflags = on ? (flags | bit) : (flags & ~bit);
  if (nflags != flags && fcntl(fd, set, nflags) != 0) {
    codex_throw_errno(env, errno, "fcntl");
    return NULL;
  }
  return NULL;
}

static napi_value set_cloexec(napi_env env, napi_callback_info info) {
  return set_fd_flag(env, info, true);
}

static napi_value set_nonblock(napi_env env, napi_callback_info info) {
  return set_fd_flag(env, info, false);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!codex_get_args(env, info, 1, &argc, argv, "closeFd(fd)")) return NULL;
  int fd;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  /* On Linux the fd is released even when close() reports EINTR, so retrying
   * would risk closing an fd another thread just got; treat EINTR as done. */
  if (close(fd) != 0 && errno != EINTR) {
    codex_throw_errno(env, errno, "close");
    return NULL;
  }
  return NULL;
}

static void close_all(const int *fds, size_t n) {
  for (size_t i = 0; i < n; i++)
    close(fds[i]);
}

/* recvMsg(fd, maxBytes, maxFds) -> {bytes, fds, truncated, controlTruncated}
 * | 'again' | 'eof' */
static napi_value recv_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (!codex_get_args(env, info, 3, &argc, argv, "recvMsg(fd, maxBytes, maxFds)")) return NULL;
  int fd;
  int64_t max_bytes, max_fds;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (!codex_get_int(env, argv[1], "maxBytes", 1, CODEX_MAX_RECV_BYTES, &max_bytes)) return NULL;
  if (!codex_get_int(env, argv[2], "maxFds", 0, CODEX_MAX_SCM_FDS, &max_fds)) return NULL;

  size_t ctl_len = max_fds > 0 ? CMSG_SPACE((size_t)max_fds * sizeof(int)) : 0;
  cleanup_free uint8_t *data = malloc((size_t)max_bytes);
  /* calloc memory is suitably aligned for struct cmsghdr. */
  cleanup_free void *ctl = ctl_len ? calloc(1, ctl_len) : NULL;
  if (!data || (ctl_len && !ctl)) {
    codex_throw_errno(env, ENOMEM, "recvmsg");
    return NULL;
  }

  struct iovec iov = {.iov_base = data, .iov_len = (size_t)max_bytes};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = ctl_len;

  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);

  napi_value result = NULL;
  if (n < 0) {
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      NAPI_CALL(env, napi_create_string_utf8(env, "again", NAPI_AUTO_LENGTH, &result));
      return result;
    }
    codex_throw_errno(env, err, "recvmsg");
    return NULL;
  }

  /* Collect every fd the kernel installed, even from odd cmsg layouts, so
   * none can leak: the caller owns them all from here on. */
  int fds[CODEX_MAX_SCM_FDS];
  size_t nfds = 0;
  if (ctl_len) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      if (c->cmsg_len < CMSG_LEN(0)) continue;
      size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char *p = CMSG_DATA(c);
      for (size_t i = 0; i < cnt; i++) {
        int v;
        memcpy(&v, p + i * sizeof(int), sizeof v);
        if (nfds < CODEX_MAX_SCM_FDS)
          fds[nfds++] = v;
        else
          close(v); /* cannot happen with our buffer size; never leak anyway */
      }
    }
  }
  bool truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  bool ctruncated = (msg.msg_flags & MSG_CTRUNC) != 0;

  if (n == 0 && nfds == 0 && !ctruncated) {
    int so_type = 0;
    socklen_t sl = sizeof so_type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &so_type, &sl) == 0 && so_type != SOCK_DGRAM) {
      NAPI_CALL(env, napi_create_string_utf8(env, "eof", NAPI_AUTO_LENGTH, &result));
      return result;
    }
  }

  napi_value bytes, fd_arr, tv, ctv;
  if (napi_create_buffer_copy(env, (size_t)n, data, NULL, &bytes) != napi_ok) goto fail;
  if (napi_create_array_with_length(env, nfds, &fd_arr) != napi_ok) goto fail;
  for (size_t i = 0; i < nfds; i++) {
    napi_value v;
    if (napi_create_int32(env, fds[i], &v) != napi_ok ||
        napi_set_element(env, fd_arr, (uint32_t)i, v) != napi_ok)
      goto fail;
  }
  if (napi_get_boolean(env, truncated, &tv) != napi_ok ||
      napi_get_boolean(env, ctruncated, &ctv) != napi_ok ||
      napi_create_object(env, &result) != napi_ok ||
      napi_set_named_property(env, result, "bytes", bytes) != napi_ok ||
      napi_set_named_property(env, result, "fds", fd_arr) != napi_ok ||
      napi_set_named_property(env, result, "truncated", tv) != napi_ok ||
      napi_set_named_property(env, result, "controlTruncated", ctv) != napi_ok)
    goto fail;
  return result;

fail:
  close_all(fds, nfds);
  codex_throw_napi_failure(env, napi_generic_failure, "recvMsg result");
  return NULL;
}

/* sendMsg(fd, data, fds) -> bytes written | 'again' */
static napi_value send_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (!codex_get_args(env, info, 2, &argc, argv, "sendMsg(fd, data, fds?)")) return NULL;
  int fd;
  const uint8_t *data;
  size_t len;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (!codex_get_bytes(env, argv[1], "data", &data, &len)) return NULL;

  int fds[CODEX_MAX_SCM_FDS];
  uint32_t nfds = 0;
  if (argc >= 3) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[2], &t));
    if (t != napi_undefined && t != napi_null) {
      if (!codex_get_array(env, argv[2], "fds", &nfds)) return NULL;
      if (nfds > CODEX_MAX_SCM_FDS) {
        napi_throw_range_error(
            env, "ERR_OUT_OF_RANGE",
            "fds: at most " CODEX_STR(CODEX_MAX_SCM_FDS) " fds fit in one SCM_RIGHTS message");
        return NULL;
      }
      for (uint32_t i = 0; i < nfds; i++) {
        napi_value v;
        NAPI_CALL(env, napi_get_element(env, argv[2], i, &v));
        if (!codex_get_fd(env, v, "fds[i]", &fds[i])) return NULL;
      }
    }
  }
  if (nfds > 0 && len == 0) {
    /* Stream sockets silently drop rights attached to zero bytes. */
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "data must hold at least one byte to carry fds");
    return NULL;
  }

  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    struct cmsghdr align;
    unsigned char buf[CMSG_SPACE(sizeof(int) * CODEX_MAX_SCM_FDS)];
  } ctl;
  if (nfds > 0) {
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }

  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  napi_value result;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      NAPI_CALL(env, napi_create_string_utf8(env, "again", NAPI_AUTO_LENGTH, &result));
      return result;
    }
    codex_throw_errno(env, errno, "sendmsg");
    return NULL;
  }
  NAPI_CALL(env, napi_create_double(env, (double)n, &result));
  return result;
}

/* peerCredentials(fd) -> { pid, uid, gid } of the process that created the
 * peer end (SO_PEERCRED; pid translated into our pid namespace). The server
 * uses it to check a request's claimed workdir against the requester's real
 * cwd. */
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  if (!codex_get_args(env, info, 1, &argc, argv, "peerCredentials(fd)") ||
      !codex_get_fd(env, argv[0], "fd", &fd))
    return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    codex_throw_errno(env, errno, "getsockopt");
    return NULL;
  }
  napi_value obj, v;
  NAPI_CALL(env, napi_create_object(env, &obj));
  NAPI_CALL(env, napi_create_int32(env, cred.pid, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "pid", v));
  NAPI_CALL(env, napi_create_uint32(env, cred.uid, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "uid", v));
  NAPI_CALL(env, napi_create_uint32(env, cred.gid, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "gid", v));
  return obj;
}

CODEX_MODULE(codex_init_fdpass,
             CODEX_FN("socketPair", socket_pair),
             CODEX_FN("setCloexec", set_cloexec),
             CODEX_FN("setNonblock", set_nonblock),
             CODEX_FN("closeFd", close_fd),
             CODEX_FN("recvMsg", recv_msg),
             CODEX_FN("sendMsg", send_msg),
             CODEX_FN("peerCredentials", peer_credentials))
