/*
 * The floor of one design for issues 12 and 17 (docs/performance.md, "A
 * session listener instead of a filter per tree"): one seccomp filter for a
 * whole process tree, every execve/execveat in it a user notification that
 * a listener answers CONTINUE. No wrapper, no socket pair, no filter per
 * exec: what a Run decision would cost if the shell's own execs were decided
 * on the notification channel. No policy here; only the channel.
 *
 *   session-listener [--read | --readv] CMD [ARGS...]
 *
 * The child installs the filter (NEW_LISTENER), hands the listener to this
 * process over a socket pair and execs CMD; this process answers every
 * notification until the tree is gone. --read: before answering, read the
 * path from /proc/PID/mem and check ID_VALID, as a decision must; --readv:
 * the same read with process_vm_readv (one syscall, no fd). Prints
 * the notification count and this process's CPU time on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(2);
}

static int install(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execve, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execveat, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
  int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (fd < 0) die("seccomp");
  return fd;
}

static void send_fd(int sock, int fd) {
  char c = 'L';
  struct iovec iov = {.iov_base = &c, .iov_len = 1};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
  struct cmsghdr *h = CMSG_FIRSTHDR(&m);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(h), &fd, sizeof fd);
  if (sendmsg(sock, &m, 0) != 1) die("sendmsg");
}

static int recv_fd(int sock) {
  char c;
  struct iovec iov = {.iov_base = &c, .iov_len = 1};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
  if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1) die("recvmsg");
  struct cmsghdr *h = CMSG_FIRSTHDR(&m);
  if (!h || h->cmsg_type != SCM_RIGHTS) die("no listener");
  int fd;
  memcpy(&fd, CMSG_DATA(h), sizeof fd);
  return fd;
}

int main(int argc, char **argv) {
  int argi = 1;
  int read_path = 0;
  if (argi < argc && strcmp(argv[argi], "--read") == 0) {
    read_path = 1;
    argi++;
  } else if (argi < argc && strcmp(argv[argi], "--readv") == 0) {
    read_path = 2;
    argi++;
  }
  if (argi >= argc) {
    fprintf(stderr, "usage: session-listener [--read | --readv] CMD [ARGS...]\n");
    return 2;
  }
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sp[0]);
    int l = install();
    send_fd(sp[1], l);
    close(l);
    close(sp[1]);
    execvp(argv[argi], argv + argi);
    _exit(127);
  }
  close(sp[1]);
  int lfd = recv_fd(sp[0]);
  close(sp[0]);

  struct seccomp_notif_sizes sz;
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) != 0) die("notif sizes");
  struct seccomp_notif *req = calloc(1, sz.seccomp_notif < sizeof *req ? sizeof *req : sz.seccomp_notif);
  struct seccomp_notif_resp *resp =
      calloc(1, sz.seccomp_notif_resp < sizeof *resp ? sizeof *resp : sz.seccomp_notif_resp);
  if (!req || !resp) die("calloc");
  long count = 0;
  for (;;) {
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (!(p.revents & POLLIN)) break; /* POLLHUP: the tree is gone */
    memset(req, 0, sz.seccomp_notif);
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      die("NOTIF_RECV");
    }
    if (read_path) {
      char path[4096];
      uint64_t addr = req->data.nr == SYS_execveat ? req->data.args[1] : req->data.args[0];
      if (read_path == 1) {
        char mem[64];
        snprintf(mem, sizeof mem, "/proc/%u/mem", req->pid);
        int m = open(mem, O_RDONLY | O_CLOEXEC);
        if (m >= 0) {
          (void)pread(m, path, sizeof path, (off_t)addr);
          close(m);
        }
      } else {
        /* A path may end within a page: read up to the end of the page first. */
        size_t first = 4096 - (size_t)(addr & 4095);
        struct iovec local = {.iov_base = path, .iov_len = first};
        struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = first};
        (void)process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0);
      }
      (void)ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id);
    }
    memset(resp, 0, sz.seccomp_notif_resp);
    resp->id = req->id;
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    (void)ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    count++;
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  fprintf(stderr, "session-listener: %ld notifications, %ld us CPU\n", count,
          ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L +
              ru.ru_stime.tv_usec);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
