/*
 * What the direct-exec filter costs with no server (docs/performance.md,
 * "What layer 2 costs"): the wrapper's filter steps alone, run from stock
 * bash 2000 times by bench/floor/filter-cost.sh.
 *
 *   filter-exec MODE PROGRAM [ARGS...]      do MODE, then exec PROGRAM
 *     plain       execv, nothing else (the exec-only floor)
 *     filter      getrandom, the wrapper's filter with NEW_LISTENER
 *                 (wrapper/exec-filter.h), listener closed, execveat + cookie
 *     nolistener  the same filter without NEW_LISTENER (no anon inode)
 *     specallow   filter + SECCOMP_FILTER_FLAG_SPEC_ALLOW
 *     hold        filter, listener handed (SCM_RIGHTS) to the holder on
 *                 $HOLD_FD, as the wrapper hands it to the server
 *   filter-exec --time-install N [tiny]
 *                 N children each time the seccomp() call alone (the
 *                 wrapper's filter with NEW_LISTENER, or a 1-instruction
 *                 ALLOW filter: the kernel's fixed cost); prints p10/p50 us
 *   filter-exec --holder [--lazy] CMD [ARGS...]
 *                 runs CMD with HOLD_FD set and keeps every listener it gets:
 *                 by default in an epoll set, closing each on its hang-up
 *                 (as the native hub does); --lazy: never polled, closed in
 *                 batches of 64 (hang-ups wake nobody). Prints its wake-ups
 *                 and CPU time on stderr when CMD exits.
 */
#include "../../wrapper/exec-filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>

extern char **environ;

#define LAZY_BATCH 64

static void die(const char *what) {
  perror(what);
  exit(126);
}

static void send_fd(int sock, int fd) {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg;
  struct cmsghdr *cm;

  memset(&msg, 0, sizeof msg);
  memset(&ctl, 0, sizeof ctl);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) die("sendmsg");
}

static int recv_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg;
  struct cmsghdr *cm;
  int fd = -1;

  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) <= 0) return -1;
  cm = CMSG_FIRSTHDR(&msg);
  if (cm && cm->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

static int holder(int lazy, char **cmd) {
  int sv[2], ep, pidfd, batch[LAZY_BATCH], nbatch = 0;
  long wakeups = 0, listeners = 0, hangups = 0;
  char num[16];
  pid_t pid;
  struct epoll_event ev;
  struct rusage ru;

  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0) die("socketpair");
  fcntl(sv[0], F_SETFD, FD_CLOEXEC);
  pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    snprintf(num, sizeof num, "%d", sv[1]);
    setenv("HOLD_FD", num, 1);
    execvp(cmd[0], cmd);
    die("execvp");
  }
  close(sv[1]);
  pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) die("pidfd_open");
  ep = epoll_create1(EPOLL_CLOEXEC);
  ev.events = EPOLLIN;
  ev.data.fd = sv[0];
  epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
  ev.data.fd = pidfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev);
  for (int done = 0; !done;) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    wakeups++;
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == pidfd) {
        done = 1;
      } else if (fd == sv[0]) {
        int l;
        while ((l = recv_fd(sv[0])) >= 0) {
          listeners++;
          if (lazy) {
            if (nbatch == LAZY_BATCH) {
              for (int k = 0; k < nbatch; k++) close(batch[k]);
              nbatch = 0;
            }
            batch[nbatch++] = l;
          } else {
            ev.events = EPOLLIN;
            ev.data.fd = l;
            epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
          }
        }
      } else if (!(evs[i].events & EPOLLIN)) {
        hangups++;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
      }
    }
  }
  int status;
  waitpid(pid, &status, 0);
  getrusage(RUSAGE_SELF, &ru);
  fprintf(stderr, "holder: %ld listeners, %ld hang-ups, %ld wake-ups, cpu %ld us\n", listeners, hangups, wakeups,
          (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return x < y ? -1 : x > y;
}

static int time_install(int n, int tiny) {
  static const struct bpf_insn_ allow[] = {{BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW_}};
  const struct bpf_prog_ one = {1, allow};
  long *t = calloc((size_t)n, sizeof *t);

  if (!t || n < 1) die("--time-install N");
  /* As the wrapper outside bwrap as another user: no_new_privs first (inherited). */
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  for (int i = 0; i < n; i++) {
    int p[2];
    pid_t pid;
    if (pipe(p) < 0) die("pipe");
    if ((pid = fork()) < 0) die("fork");
    if (pid == 0) {
      long a = now_ns();
      long fd = tiny ? syscall(SYS_seccomp, SECCOMP_OP_SET_MODE_FILTER, SECCOMP_FLAG_NEW_LISTENER, &one)
                     : exec_filter_install(0x0123456789abcdefull, SECCOMP_FLAG_NEW_LISTENER);
      long d = now_ns() - a;
      if (fd < 0) _exit(1);
      if (write(p[1], &d, sizeof d) != (ssize_t)sizeof d) _exit(1);
      _exit(0);
    }
    close(p[1]);
    if (read(p[0], &t[i], sizeof t[i]) != (ssize_t)sizeof t[i]) die("seccomp in the child");
    close(p[0]);
    waitpid(pid, NULL, 0);
  }
  qsort(t, (size_t)n, sizeof *t, cmp_long);
  printf("%s install: p10 %.1f us, p50 %.1f us (%d children)\n", tiny ? "1-instruction filter" : "exec filter", t[n / 10] / 1e3,
         t[n / 2] / 1e3, n);
  free(t);
  return 0;
}

int main(int argc, char **argv) {
  uint64_t cookie;
  unsigned int flags = SECCOMP_FLAG_NEW_LISTENER;
  int fd, hold = -1;
  const char *mode;

  if (argc >= 3 && strcmp(argv[1], "--time-install") == 0)
    return time_install(atoi(argv[2]), argc > 3 && strcmp(argv[3], "tiny") == 0);
  if (argc >= 3 && strcmp(argv[1], "--holder") == 0) {
    int lazy = strcmp(argv[2], "--lazy") == 0;
    return holder(lazy, argv + 2 + lazy);
  }
  if (argc < 3) {
    fputs("usage: filter-exec plain|filter|nolistener|specallow|hold PROGRAM [ARGS...]\n", stderr);
    return 127;
  }
  mode = argv[1];
  if (strcmp(mode, "plain") == 0) {
    execv(argv[2], argv + 2);
    die("execv");
  }
  if (strcmp(mode, "nolistener") == 0) flags = 0;
  else if (strcmp(mode, "specallow") == 0) flags |= SECCOMP_FLAG_SPEC_ALLOW;
  else if (strcmp(mode, "hold") == 0) {
    const char *s = getenv("HOLD_FD");
    if (!s) die("HOLD_FD");
    hold = atoi(s);
  } else if (strcmp(mode, "filter") != 0) {
    fprintf(stderr, "filter-exec: unknown mode %s\n", mode);
    return 127;
  }
  if (getrandom(&cookie, sizeof cookie, 0) != (ssize_t)sizeof cookie) die("getrandom");
  fd = exec_filter_install(cookie, flags);
  if (fd < 0) die("seccomp");
  if (hold >= 0) send_fd(hold, fd);
  if (flags & SECCOMP_FLAG_NEW_LISTENER) close(fd);
  syscall(SYS_execveat, AT_FDCWD, argv[2], argv + 2, environ, 0, (unsigned long)cookie);
  die("execveat");
}
