/*
 * FastPath: a session's handshake socket served on a thread of its own
 * (issue 17, "a fast path that never waits for JavaScript").
 *
 * The thread receives each handshake datagram. When the connection it
 * carries already holds a whole request that is byte for byte one the JS
 * policy answered Run before (same request frame, same program by the path
 * the kernel gives its O_PATH fd), under the same rules generation, the
 * thread sends that Run reply itself and records a hit. Everything else —
 * a new request, an incomplete one, another fd count, a deleted program, a
 * bad datagram — goes to JS untouched (a peek reads the request, so JS
 * finds the connection as the wrapper left it). JS fills the table only
 * with decisions that depend on nothing but those bytes (src/server/
 * fast-path.ts) and clears it whenever the rules change, so a hit is the
 * decision JS would take again: there is no second matcher to disagree.
 *
 * Hits reach JS in batches (at most one wake-up per FLUSH_NS or per
 * FLUSH_HITS hits) for the audit log; connections and bad datagrams wake it
 * at once. Everything queued is handed out in arrival order by take().
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>

#define CB_PROP "_codexOnReady"
/* Requests larger than this always go to JS (a typical one is ~1.2 KB). */
#define MAX_PAYLOAD (64u * 1024u)
#define PREFIX 4u
#define SLOTS 8192u /* power of two, twice MAX_ENTRIES */
#define MAX_ENTRIES 4096u
#define MAX_TABLE_BYTES (8u * 1024u * 1024u)
#define FLUSH_NS (50u * 1000u * 1000u)
/* A hit that carries a listener: JS must watch it soon, or the program's own execs wait. */
#define FLUSH_LISTENER_NS (1u * 1000u * 1000u)
#define FLUSH_HITS 256u
#define MAX_DGRAM_FDS 16

typedef struct {
  uint64_t hash;
  uint32_t id;
  uint32_t nfds; /* 1: the program's fd; 2: and the exec filter's listener (direct execs) */
  uint32_t path_len, payload_len, reply_len;
  uint8_t data[]; /* path, payload, reply */
} entry_t;

enum { EV_HIT, EV_CONN, EV_DGRAM };
typedef struct {
  uint8_t kind;
  uint8_t nbytes;
  bool truncated, ctruncated;
  uint8_t bytes[2];
  uint16_t nfds;
  uint32_t id;
  uint64_t latency_ns;
  int fds[MAX_DGRAM_FDS];
} event_t;

typedef struct {
  napi_env env;
  napi_threadsafe_function tsfn;
  int sock;    /* the session's datagram end; not ours to close */
  int wake_fd; /* eventfd: stop, or JS took a backlog */
  uint8_t handshake_byte;
  int max_fds;
  uint32_t max_pending; /* connections/datagrams queued before the thread stops reading */
  pthread_t thread;
  pid_t tid; /* the thread's, for setNice(); set before pthread_create returns to JS (see thread_main) */
  pthread_mutex_t tid_mu;
  pthread_cond_t tid_cv;
  bool running, hooked;
  bool sock_dead; /* the socket reports an error or hang-up with nothing to read: stop polling it */

  pthread_mutex_t mu; /* guards everything below */
  bool stopping;
  uint64_t generation;
  entry_t *slots[SLOTS];
  uint32_t entries;
  size_t table_bytes;
  event_t *events;
  size_t nevents, cap_events;
  uint32_t pending_conns; /* EV_CONN + EV_DGRAM in events */
  uint32_t pending_hits;
  uint64_t first_hit_ns; /* when the oldest unflushed hit was queued */
  bool pending_listener; /* an unflushed hit carries a listener */
  uint64_t first_listener_ns;
  bool notified;         /* a wake-up of JS is on its way; take() clears it */
  uint64_t hits, misses; /* for stats() */

  uint8_t peek[PREFIX + MAX_PAYLOAD];
  uint8_t consume[PREFIX + MAX_PAYLOAD];
} fast_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static uint64_t key_hash(const uint8_t *path, uint32_t path_len, const uint8_t *payload,
                         uint32_t payload_len) {
  uint64_t h = 14695981039346656037ull;
  h = fnv1a(h, (const uint8_t *)&path_len, sizeof path_len);
  h = fnv1a(h, path, path_len);
  return fnv1a(h, payload, payload_len);
}

/* The slot holding this key, or the empty slot where it would go (linear probing, never full). */
static entry_t **find_slot(fast_t *p, uint64_t h, const uint8_t *path, uint32_t path_len,
                           const uint8_t *payload, uint32_t payload_len) {
  for (uint32_t i = (uint32_t)h & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
    entry_t *e = p->slots[i];
    if (!e) return &p->slots[i];
    if (e->hash == h && e->path_len == path_len && e->payload_len == payload_len &&
        memcmp(e->data, path, path_len) == 0 &&
        memcmp(e->data + path_len, payload, payload_len) == 0)
      return &p->slots[i];
  }
}

static void table_clear(fast_t *p) {
  for (uint32_t i = 0; i < SLOTS; i++) {
    free(p->slots[i]);
    p->slots[i] = NULL;
  }
  p->entries = 0;
  p->table_bytes = 0;
  p->generation++;
}

/* Caller holds mu. False: out of memory (the event is dropped, see enqueue's callers). */
static bool push_event(fast_t *p, const event_t *ev) {
  if (p->nevents == p->cap_events) {
    size_t cap = p->cap_events ? p->cap_events * 2 : 64;
    event_t *n = realloc(p->events, cap * sizeof *n);
    if (!n) return false;
    p->events = n;
    p->cap_events = cap;
  }
  p->events[p->nevents++] = *ev;
  return true;
}

static void close_fds(const int *fds, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

/* Caller holds mu: wake JS if it has something to do now. */
static void maybe_notify(fast_t *p, bool urgent) {
  if (p->notified || p->nevents == 0) return;
  if (!urgent && p->pending_hits < FLUSH_HITS) {
    uint64_t now = now_ns();
    if (now - p->first_hit_ns < FLUSH_NS && !(p->pending_listener && now - p->first_listener_ns >= FLUSH_LISTENER_NS))
      return;
  }
  if (napi_call_threadsafe_function(p->tsfn, NULL, napi_tsfn_nonblocking) == napi_ok)
    p->notified = true;
}

/* A connection (or a bad datagram) for JS. On out-of-memory its fds are closed: the wrapper sees EOF and fails closed. */
static void hand_to_js(fast_t *p, event_t *ev) {
  pthread_mutex_lock(&p->mu);
  if (push_event(p, ev)) {
    p->pending_conns++;
    p->misses += ev->kind == EV_CONN;
  } else {
    close_fds(ev->fds, ev->nfds);
  }
  maybe_notify(p, true);
  pthread_mutex_unlock(&p->mu);
}

/*
 * Answer the connection from the table if its request is a known Run.
 * True: answered (or, should the stream change under us, dropped: the
 * wrapper then fails closed). False: JS must see it, untouched.
 */
static bool try_answer(fast_t *p, int conn, uint64_t started) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * 2)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {p->peek, sizeof p->peek};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  ssize_t n = recvmsg(conn, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < (ssize_t)PREFIX) {
    /* Peeked fds are real ones: close whatever came. */
    if (n >= 0)
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
          close_fds((int *)CMSG_DATA(c), (c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    return false;
  }
  int fds[2] = {-1, -1};
  size_t nfds = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int *got = (const int *)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) {
      if (nfds < 2)
        fds[nfds++] = got[i];
      else
        close(got[i]);
    }
  }
  bool answered = false;
  uint32_t len = (uint32_t)p->peek[0] | (uint32_t)p->peek[1] << 8 | (uint32_t)p->peek[2] << 16 |
                 (uint32_t)p->peek[3] << 24;
  /* Exactly our wrapper's shape: the whole frame here, the program's O_PATH handle and, with
   * direct execs, its exec filter's listener. */
  if ((msg.msg_flags & MSG_CTRUNC) || nfds < 1 || len == 0 || len > MAX_PAYLOAD ||
      (size_t)n < PREFIX + len)
    goto out;
  char link[32], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fds[0]);
  ssize_t plen = readlink(link, path, sizeof path);
  static const char deleted[] = " (deleted)";
  if (plen <= 0 || plen >= (ssize_t)sizeof path || path[0] != '/' ||
      ((size_t)plen >= sizeof deleted - 1 &&
       memcmp(path + plen - (sizeof deleted - 1), deleted, sizeof deleted - 1) == 0))
    goto out;
  if (nfds == 2) {
    /* Only a seccomp listener is ever handed to the hub (as JS checks it). */
    static const char listener[] = "anon_inode:seccomp notify";
    char what[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fds[1]);
    ssize_t wlen = readlink(link, what, sizeof what);
    if (wlen != (ssize_t)sizeof listener - 1 || memcmp(what, listener, sizeof listener - 1) != 0)
      goto out;
  }

  uint8_t reply[512];
  uint32_t reply_len = 0, id = 0;
  const uint8_t *payload = p->peek + PREFIX;
  uint64_t h = key_hash((const uint8_t *)path, (uint32_t)plen, payload, len);
  pthread_mutex_lock(&p->mu);
  entry_t *e = *find_slot(p, h, (const uint8_t *)path, (uint32_t)plen, payload, len);
  if (e && e->nfds == nfds && e->reply_len <= sizeof reply) {
    reply_len = e->reply_len;
    id = e->id;
    memcpy(reply, e->data + e->path_len + e->payload_len, reply_len);
  }
  pthread_mutex_unlock(&p->mu);
  if (!reply_len) goto out;

  /* Take the frame off the stream (no control buffer: the kernel drops its
   * fds) and check it is what was peeked; then the reply. */
  answered = true;
  ssize_t m;
  do
    m = recv(conn, p->consume, PREFIX + len, MSG_DONTWAIT);
  while (m < 0 && errno == EINTR);
  if (m != (ssize_t)(PREFIX + len) || memcmp(p->consume, p->peek, PREFIX + len) != 0) goto out;
  ssize_t w;
  do
    w = send(conn, reply, reply_len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w != (ssize_t)reply_len) goto out;
  event_t ev = {.kind = EV_HIT, .id = id, .latency_ns = now_ns() - started};
  if (nfds == 2) {
    /* The listener goes to JS for the hub; nothing else holds it now. */
    ev.fds[0] = steal_fd(&fds[1]);
    ev.nfds = 1;
    nfds = 1;
  }
  pthread_mutex_lock(&p->mu);
  if (push_event(p, &ev)) {
    if (p->pending_hits++ == 0) p->first_hit_ns = now_ns();
    if (ev.nfds && !p->pending_listener) {
      p->pending_listener = true;
      p->first_listener_ns = now_ns();
    }
    p->hits++;
  } else {
    close_fds(ev.fds, ev.nfds); /* out of memory: its tree's execs fail (ENOSYS) */
  }
  maybe_notify(p, false);
  pthread_mutex_unlock(&p->mu);
out:
  close_fds(fds, nfds);
  return answered;
}

/* One datagram. False: nothing more to read now. */
static bool serve_one(fast_t *p) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_DGRAM_FDS)];
    struct cmsghdr align;
  } ctl;
  uint8_t bytes[2];
  struct iovec iov = {bytes, sizeof bytes};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)p->max_fds);
  ssize_t n = recvmsg(p->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return errno == EINTR;
  uint64_t started = now_ns();
  event_t ev = {.kind = EV_DGRAM};
  ev.nbytes = (uint8_t)n;
  memcpy(ev.bytes, bytes, (size_t)n);
  ev.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  ev.ctruncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int *got = (const int *)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) {
      if (ev.nfds < MAX_DGRAM_FDS)
        ev.fds[ev.nfds++] = got[i];
      else
        close(got[i]);
    }
  }
  bool handshake = n == 1 && bytes[0] == p->handshake_byte && !ev.truncated && !ev.ctruncated &&
                   ev.nfds == 1;
  if (handshake) {
    if (try_answer(p, ev.fds[0], started)) {
      close(ev.fds[0]);
      return true;
    }
    ev.kind = EV_CONN;
  }
  hand_to_js(p, &ev);
  return true;
}

static void *thread_main(void *arg) {
  fast_t *p = arg;
  pthread_mutex_lock(&p->tid_mu);
  p->tid = (pid_t)syscall(SYS_gettid);
  pthread_cond_signal(&p->tid_cv);
  pthread_mutex_unlock(&p->tid_mu);
  for (;;) {
    pthread_mutex_lock(&p->mu);
    bool stopping = p->stopping;
    bool backlog = p->pending_conns >= p->max_pending || p->sock_dead;
    int timeout = -1;
    if (p->pending_hits && !p->notified) {
      uint64_t now = now_ns(), due = p->first_hit_ns + FLUSH_NS;
      if (p->pending_listener && p->first_listener_ns + FLUSH_LISTENER_NS < due)
        due = p->first_listener_ns + FLUSH_LISTENER_NS;
      timeout = now >= due ? 0 : (int)((due - now + 999999u) / 1000000u);
    }
    if (timeout == 0) {
      maybe_notify(p, true);
      timeout = -1;
    }
    pthread_mutex_unlock(&p->mu);
    if (stopping) break;
    struct pollfd pfd[2] = {{p->wake_fd, POLLIN, 0}, {p->sock, POLLIN, 0}};
    int r = poll(pfd, backlog ? 1 : 2, timeout);
    if (r < 0 && errno != EINTR) break; /* cannot wait: JS still gets what is queued on close */
    if (r <= 0) continue;
    if (pfd[0].revents) {
      uint64_t v;
      ssize_t ignored = read(p->wake_fd, &v, sizeof v);
      (void)ignored;
    }
    if (!backlog && pfd[1].revents) {
      /* A bounded burst, so a stop or a full backlog is seen between datagrams. */
      int served = 0;
      for (; served < 64; served++) {
        pthread_mutex_lock(&p->mu);
        bool full = p->pending_conns >= p->max_pending || p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (full || !serve_one(p)) break;
      }
      /* Level-triggered hang-up or error with nothing to read would spin: the socket is done. */
      if (served == 0 && (pfd[1].revents & (POLLERR | POLLHUP | POLLNVAL))) p->sock_dead = true;
    }
  }
  return NULL;
}

static void wake(fast_t *p) {
  if (p->wake_fd < 0) return;
  uint64_t one = 1;
  ssize_t ignored = write(p->wake_fd, &one, sizeof one);
  (void)ignored;
}

/* Stop and join the thread (idempotent). Queued events stay for take(). */
static void stop_thread(fast_t *p) {
  if (!p->running) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_mutex_unlock(&p->mu);
  wake(p);
  pthread_join(p->thread, NULL);
  p->running = false;
}

static void destroy(fast_t *p) {
  stop_thread(p);
  for (size_t i = 0; i < p->nevents; i++)
    close_fds(p->events[i].fds, p->events[i].nfds);
  free(p->events);
  table_clear(p);
  if (p->wake_fd >= 0) close(p->wake_fd);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->tid_mu);
  pthread_cond_destroy(&p->tid_cv);
  free(p);
}

static void release_tsfn(fast_t *p) {
  if (!p->tsfn) return;
  napi_release_threadsafe_function(p->tsfn, napi_tsfn_abort);
  p->tsfn = NULL;
}

static void cleanup_hook(void *arg) {
  fast_t *p = arg;
  p->hooked = false;
  stop_thread(p);
  release_tsfn(p);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  fast_t *p = data;
  if (p->hooked) napi_remove_env_cleanup_hook(env, cleanup_hook, p);
  p->hooked = false;
  stop_thread(p);
  release_tsfn(p);
  destroy(p);
}

/* The thread asked: JS calls its onReady(), which calls take(). */
static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  (void)data;
  if (!env || !cb) return;
  napi_value undef, result;
  if (napi_get_undefined(env, &undef) != napi_ok) return;
  if (napi_call_function(env, undef, cb, 0, NULL, &result) != napi_ok) {
    bool pending = false;
    napi_value err;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &err) == napi_ok)
      napi_fatal_exception(env, err);
  }
}

static fast_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                      const char *usage) {
  return codex_unwrap_this(env, info, argc, argv, NULL, "FastPath", *argc, usage);
}

/* new FastPath(sessionFd, handshakeByte, maxFds, maxPending, onReady) */
static napi_value fast_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], thisv;
  if (!codex_ctor_args(env, info, 5, &argc, argv, &thisv, "FastPath",
                       "new FastPath(fd, handshakeByte, maxFds, maxPending, onReady)"))
    return NULL;
  int fd;
  int64_t hb, max_fds, max_pending;
  if (!codex_get_fd(env, argv[0], "fd", &fd) ||
      !codex_get_int(env, argv[1], "handshakeByte", 0, 255, &hb) ||
      !codex_get_int(env, argv[2], "maxFds", 1, MAX_DGRAM_FDS, &max_fds) ||
      !codex_get_int(env, argv[3], "maxPending", 1, 1 << 20, &max_pending) ||
      !codex_get_function(env, argv[4], "onReady"))
    return NULL;
  fast_t *p = calloc(1, sizeof *p);
  if (!p) {
    codex_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  p->env = env;
  p->sock = fd;
  p->handshake_byte = (uint8_t)hb;
  p->max_fds = (int)max_fds;
  p->max_pending = (uint32_t)max_pending;
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->tid_mu, NULL);
  pthread_cond_init(&p->tid_cv, NULL);
  p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->wake_fd < 0) {
    int err = errno;
    destroy(p);
    codex_throw_errno(env, err, "eventfd");
    return NULL;
  }
  napi_value name;
  if (napi_create_string_utf8(env, "CodexFastPath", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, argv[4], NULL, name, 0, 1, NULL, NULL, p, call_js,
                                      &p->tsfn) != napi_ok) {
    p->tsfn = NULL;
    destroy(p);
    codex_throw_napi_failure(env, napi_generic_failure, "napi_create_threadsafe_function");
    return NULL;
  }
  if (napi_wrap(env, thisv, p, finalize, NULL, NULL) != napi_ok) {
    release_tsfn(p);
    destroy(p);
    codex_throw_napi_failure(env, napi_generic_failure, "napi_wrap");
    return NULL;
  }
  /* From here the finalizer owns cleanup. */
  if (napi_add_env_cleanup_hook(env, cleanup_hook, p) == napi_ok) p->hooked = true;
  int r = pthread_create(&p->thread, NULL, thread_main, p);
  if (r != 0) {
    codex_throw_errno(env, r, "pthread_create");
    return NULL;
  }
  p->running = true;
  pthread_setname_np(p->thread, "codex-fastpath"); /* shows in /proc/PID/task/TID/comm */
  pthread_mutex_lock(&p->tid_mu);
  while (p->tid == 0)
    pthread_cond_wait(&p->tid_cv, &p->tid_mu);
  pthread_mutex_unlock(&p->tid_mu);
  return thisv;
}

/* remember(program: Buffer, payload: Buffer, reply: Buffer, id, generation, fds) ->
 *   1 taken, 2 that key is there already (its first id stays), 0 the table is full,
 *   -1 refused (another generation, too large, empty, stopping, out of memory).
 * fds: how many the request carries (1: the program's; 2: and a listener). */
static napi_value fast_remember(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  fast_t *p = unwrap(env, info, &argc, argv, "remember(program, payload, reply, id, generation, fds)");
  if (!p) return NULL;
  const uint8_t *path, *payload, *reply;
  size_t path_len, payload_len, reply_len;
  int64_t id, gen, nfds;
  if (!codex_get_bytes(env, argv[0], "program", &path, &path_len) ||
      !codex_get_bytes(env, argv[1], "payload", &payload, &payload_len) ||
      !codex_get_bytes(env, argv[2], "reply", &reply, &reply_len) ||
      !codex_get_int(env, argv[3], "id", 1, UINT32_MAX, &id) ||
      !codex_get_int(env, argv[4], "generation", 0, INT64_MAX, &gen) ||
      !codex_get_int(env, argv[5], "fds", 1, 2, &nfds))
    return NULL;
  int result = -1;
  size_t size = sizeof(entry_t) + path_len + payload_len + reply_len;
  if (path_len > 0 && path_len < 4096 && payload_len > 0 && payload_len <= MAX_PAYLOAD &&
      reply_len > 0 && reply_len <= 512) {
    pthread_mutex_lock(&p->mu);
    uint64_t h = key_hash(path, (uint32_t)path_len, payload, (uint32_t)payload_len);
    entry_t **slot = find_slot(p, h, path, (uint32_t)path_len, payload, (uint32_t)payload_len);
    if ((uint64_t)gen != p->generation || p->stopping) {
      result = -1;
    } else if (*slot) {
      result = 2; /* a concurrent twin was remembered first: same bytes, same decision */
    } else if (p->entries >= MAX_ENTRIES || p->table_bytes + size > MAX_TABLE_BYTES) {
      result = 0;
    } else {
      entry_t *e = malloc(size);
      if (e) {
        e->hash = h;
        e->id = (uint32_t)id;
        e->nfds = (uint32_t)nfds;
        e->path_len = (uint32_t)path_len;
        e->payload_len = (uint32_t)payload_len;
        e->reply_len = (uint32_t)reply_len;
        memcpy(e->data, path, path_len);
        memcpy(e->data + path_len, payload, payload_len);
        memcpy(e->data + path_len + payload_len, reply, reply_len);
        *slot = e;
        p->entries++;
        p->table_bytes += size;
        result = 1;
      }
    }
    pthread_mutex_unlock(&p->mu);
  }
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, result, &out));
  return out;
}

/* clear() -> the new generation: no entry remembered before answers again. */
static napi_value fast_clear(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  fast_t *p = unwrap(env, info, &argc, NULL, NULL);
  if (!p) return NULL;
  pthread_mutex_lock(&p->mu);
  table_clear(p);
  uint64_t gen = p->generation;
  pthread_mutex_unlock(&p->mu);
  napi_value out;
  NAPI_CALL(env, napi_create_int64(env, (int64_t)gen, &out));
  return out;
}

static napi_value fast_generation(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  fast_t *p = unwrap(env, info, &argc, NULL, NULL);
  if (!p) return NULL;
  pthread_mutex_lock(&p->mu);
  uint64_t gen = p->generation;
  pthread_mutex_unlock(&p->mu);
  napi_value out;
  NAPI_CALL(env, napi_create_int64(env, (int64_t)gen, &out));
  return out;
}

static bool set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  return napi_set_named_property(env, obj, name, v) == napi_ok;
}

/* One event as JS sees it; its fds become the caller's. */
static napi_value event_value(napi_env env, const event_t *ev) {
  napi_value o, v;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  static const char *kinds[] = {"hit", "connection", "datagram"};
  if (napi_create_string_utf8(env, kinds[ev->kind], NAPI_AUTO_LENGTH, &v) != napi_ok ||
      !set_prop(env, o, "kind", v))
    return NULL;
  if (ev->kind == EV_HIT) {
    if (napi_create_uint32(env, ev->id, &v) != napi_ok || !set_prop(env, o, "id", v) ||
        napi_create_double(env, (double)ev->latency_ns / 1000.0, &v) != napi_ok ||
        !set_prop(env, o, "latencyUs", v))
      return NULL;
    if (ev->nfds && (napi_create_int32(env, ev->fds[0], &v) != napi_ok || !set_prop(env, o, "listener", v)))
      return NULL;
    return o;
  }
  if (ev->kind == EV_CONN) {
    if (napi_create_int32(env, ev->fds[0], &v) != napi_ok || !set_prop(env, o, "fd", v)) return NULL;
    return o;
  }
  napi_value fds, t, c;
  void *data;
  if (napi_create_buffer_copy(env, ev->nbytes, ev->bytes, &data, &v) != napi_ok ||
      !set_prop(env, o, "bytes", v) || napi_create_array_with_length(env, ev->nfds, &fds) != napi_ok)
    return NULL;
  for (uint32_t i = 0; i < ev->nfds; i++) {
    if (napi_create_int32(env, ev->fds[i], &v) != napi_ok || napi_set_element(env, fds, i, v) != napi_ok)
      return NULL;
  }
  if (!set_prop(env, o, "fds", fds) || napi_get_boolean(env, ev->truncated, &t) != napi_ok ||
      !set_prop(env, o, "truncated", t) || napi_get_boolean(env, ev->ctruncated, &c) != napi_ok ||
      !set_prop(env, o, "controlTruncated", c))
    return NULL;
  return o;
}

/* take() -> the queued events, oldest first; their fds are the caller's from here. */
static napi_value fast_take(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  fast_t *p = unwrap(env, info, &argc, NULL, NULL);
  if (!p) return NULL;
  pthread_mutex_lock(&p->mu);
  event_t *events = p->events;
  size_t n = p->nevents;
  bool resume = p->pending_conns >= p->max_pending;
  p->events = NULL;
  p->nevents = p->cap_events = 0;
  p->pending_conns = p->pending_hits = 0;
  p->pending_listener = false;
  p->notified = false;
  pthread_mutex_unlock(&p->mu);
  if (resume) wake(p);
  napi_value arr = NULL;
  size_t done = 0;
  if (napi_create_array_with_length(env, n, &arr) == napi_ok) {
    for (; done < n; done++) {
      napi_value v = event_value(env, &events[done]);
      if (!v || napi_set_element(env, arr, (uint32_t)done, v) != napi_ok) break;
    }
  }
  /* What could not be handed over is closed: those wrappers fail closed. */
  for (size_t i = done; i < n; i++)
    close_fds(events[i].fds, events[i].nfds);
  free(events);
  if (done < n) {
    codex_throw_napi_failure(env, napi_generic_failure, "FastPath.take");
    return NULL;
  }
  return arr;
}

/* stats() -> { hits, misses, entries } */
static napi_value fast_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  fast_t *p = unwrap(env, info, &argc, NULL, NULL);
  if (!p) return NULL;
  pthread_mutex_lock(&p->mu);
  double hits = (double)p->hits, misses = (double)p->misses, entries = p->entries;
  pthread_mutex_unlock(&p->mu);
  napi_value o, v;
  NAPI_CALL(env, napi_create_object(env, &o));
  NAPI_CALL(env, napi_create_double(env, hits, &v));
  NAPI_CALL(env, napi_set_named_property(env, o, "hits", v));
  NAPI_CALL(env, napi_create_double(env, misses, &v));
  NAPI_CALL(env, napi_set_named_property(env, o, "misses", v));
  NAPI_CALL(env, napi_create_double(env, entries, &v));
  NAPI_CALL(env, napi_set_named_property(env, o, "entries", v));
  return o;
}

/* close(): stop reading (the thread is joined); what is queued stays for take(). Idempotent. */
static napi_value fast_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  fast_t *p = unwrap(env, info, &argc, NULL, NULL);
  if (!p) return NULL;
  stop_thread(p);
  release_tsfn(p);
  if (p->wake_fd >= 0) close(p->wake_fd);
  p->wake_fd = -1;
  return NULL;
}

/* setNice(n): the thread's nice value (decisions ahead of the workload, as the event loop's; see boostServerPriority). */
static napi_value fast_set_nice(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  fast_t *p = unwrap(env, info, &argc, argv, "setNice(nice)");
  if (!p) return NULL;
  int64_t nice;
  if (!codex_get_int(env, argv[0], "nice", -20, 19, &nice)) return NULL;
  if (!p->running) return NULL;
  if (setpriority(PRIO_PROCESS, (id_t)p->tid, (int)nice) != 0) {
    codex_throw_errno(env, errno, "setpriority");
    return NULL;
  }
  return NULL;
}

static napi_value fast_set_ref(napi_env env, napi_callback_info info, bool on) {
  size_t argc = 0;
  fast_t *p = unwrap(env, info, &argc, NULL, NULL);
  if (!p) return NULL;
  if (!p->tsfn) return NULL;
  if (on)
    NAPI_CALL(env, napi_ref_threadsafe_function(env, p->tsfn));
  else
    NAPI_CALL(env, napi_unref_threadsafe_function(env, p->tsfn));
  return NULL;
}

static napi_value fast_ref(napi_env env, napi_callback_info info) {
  return fast_set_ref(env, info, true);
}

static napi_value fast_unref(napi_env env, napi_callback_info info) {
  return fast_set_ref(env, info, false);
}

napi_value codex_init_fast_path(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      CODEX_METHOD("remember", fast_remember), CODEX_METHOD("clear", fast_clear),
      CODEX_METHOD("generation", fast_generation), CODEX_METHOD("take", fast_take),
      CODEX_METHOD("stats", fast_stats), CODEX_METHOD("close", fast_close),
      CODEX_METHOD("ref", fast_ref), CODEX_METHOD("unref", fast_unref),
      CODEX_METHOD("setNice", fast_set_nice),
  };
  CODEX_DEFINE_CLASS(env, exports, "FastPath", "NativeFastPath", fast_new, methods);
  return exports;
}
