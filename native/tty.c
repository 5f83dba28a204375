/* Terminal helpers for the tty approver: drop typed-ahead input, and put a
 * terminal the sandbox may have reconfigured (stty -echo -icanon) into a sane
 * line mode with our process group in the foreground for one question,
 * restoring what the sandbox had afterwards. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static bool one_fd(napi_env env, napi_callback_info info, int *fd, napi_value *second) {
  size_t argc = 2;
  napi_value argv[2];
  if (!codex_get_args(env, info, second ? 2 : 1, &argc, argv, second ? "(fd, saved)" : "(fd)"))
    return false;
  if (second) *second = argv[1];
  return codex_get_fd(env, argv[0], "fd", fd);
}

/* What ttyTakeOver saved: the termios and the foreground process group. */
typedef struct {
  struct termios mode;
  pid_t fg; /* -1: the terminal is not our controlling terminal */
} saved_tty_t;

/* tcsetattr/tcsetpgrp/tcflush from a background process group raise
 * SIGTTOU (which would stop the whole server); with it blocked the kernel
 * lets the call through. */
static int without_sigttou(int (*fn)(int, const void *), int fd, const void *arg) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int r = fn(fd, arg);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = err;
  return r;
}
static int do_setattr(int fd, const void *t) {
  return tcsetattr(fd, TCSANOW, t);
}
static int do_setpgrp(int fd, const void *pg) {
  return tcsetpgrp(fd, *(const pid_t *)pg);
}
static int do_flow(int fd, const void *action) {
  return tcflow(fd, *(const int *)action);
}
static int do_flush(int fd, const void *unused) {
  (void)unused;
  return tcflush(fd, TCIFLUSH);
}

/* ttyFlushInput(fd): tcflush(TCIFLUSH): discard input received but not read. */
static napi_value tty_flush_input(napi_env env, napi_callback_info info) {
  int fd;
  if (!one_fd(env, info, &fd, NULL)) return NULL;
  if (without_sigttou(do_flush, fd, NULL) != 0) {
    codex_throw_errno(env, errno, "tcflush");
    return NULL;
  }
  return NULL;
}

/* ttyTakeOver(fd) -> Buffer (what to give back): our process group in the
 * foreground (a sandbox with `set -m` may have put its own job there, so
 * our reads would stop us with SIGTTIN), and canonical mode with echo, CR->NL
 * and signals on (undoing e.g. a sandbox's `stty -echo -icanon`). */
static napi_value tty_take_over(napi_env env, napi_callback_info info) {
  int fd;
  if (!one_fd(env, info, &fd, NULL)) return NULL;
  saved_tty_t saved;
  memset(&saved, 0, sizeof saved);
  if (tcgetattr(fd, &saved.mode) != 0) {
    codex_throw_errno(env, errno, "tcgetattr");
    return NULL;
  }
  saved.fg = tcgetpgrp(fd);
  if (saved.fg >= 0) {
    pid_t me = getpgrp();
    if (saved.fg != me && without_sigttou(do_setpgrp, fd, &me) != 0) {
      codex_throw_errno(env, errno, "tcsetpgrp");
      return NULL;
    }
  } else {
    saved.fg = -1;
  }
  struct termios t = saved.mode;
  t.c_lflag |= ICANON | ECHO | ECHOE | ECHOK | ISIG | IEXTEN;
  t.c_iflag |= ICRNL;
  t.c_iflag &= ~(tcflag_t)(INLCR | IGNCR);
  t.c_oflag |= OPOST | ONLCR;
  if (without_sigttou(do_setattr, fd, &t) != 0) {
    int err = errno;
    if (saved.fg >= 0) without_sigttou(do_setpgrp, fd, &saved.fg);
    codex_throw_errno(env, err, "tcsetattr");
    return NULL;
  }
  /* Output suspended by the sandbox (tcflow TCOOFF) would block the question forever. */
  int on = TCOON;
  without_sigttou(do_flow, fd, &on);
  void *data;
  napi_value buf;
  NAPI_CALL(env, napi_create_buffer_copy(env, sizeof saved, &saved, &data, &buf));
  return buf;
}

/* ttyGiveBack(fd, saved): restore the mode and foreground group ttyTakeOver
 * found (best effort: a group that no longer exists stays ours). */
static napi_value tty_give_back(napi_env env, napi_callback_info info) {
  int fd;
  napi_value v;
  if (!one_fd(env, info, &fd, &v)) return NULL;
  const uint8_t *data;
  size_t len;
  if (!codex_get_bytes(env, v, "saved", &data, &len)) return NULL;
  if (len != sizeof(saved_tty_t)) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "saved is not what ttyTakeOver returned");
    return NULL;
  }
  saved_tty_t saved;
  memcpy(&saved, data, sizeof saved);
  if (without_sigttou(do_setattr, fd, &saved.mode) != 0) {
    codex_throw_errno(env, errno, "tcsetattr");
    return NULL;
  }
  if (saved.fg >= 0 && saved.fg != getpgrp()) without_sigttou(do_setpgrp, fd, &saved.fg);
  return NULL;
}

CODEX_MODULE(codex_init_tty,
             CODEX_FN("ttyFlushInput", tty_flush_input),
             CODEX_FN("ttyTakeOver", tty_take_over),
             CODEX_FN("ttyGiveBack", tty_give_back))
