/*
 * Poller: a uv_poll_t on a raw fd, so sockets/pidfds made by this addon can
 * be driven by Node's event loop without handing them to net.Socket (which
 * cannot carry SCM_RIGHTS).
 *
 * Lifetime: the JS object owns the C struct. While armed, a strong reference
 * keeps the JS object alive (an armed poller whose object was collected would
 * call into freed state). The struct is freed once both the uv handle has
 * finished closing and the JS object has been finalized, whichever is last.
 * The JS callback lives as a property of the object, not in a napi_ref, so a
 * callback closing over its own Poller is an ordinary collectable cycle.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <uv.h>

#define CB_PROP "_codexOnEvent"

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref self;
  napi_async_context actx;
  int fd;
  bool started;
  bool closing;   /* uv_close requested */
  bool closed;    /* uv close callback ran */
  bool finalized; /* JS object collected (or env torn down) */
  bool hooked;    /* env cleanup hook registered */
} poller_t;

static void cleanup_hook(void *arg);

static void unhook(poller_t *p) {
  if (!p->hooked) return;
  p->hooked = false;
  napi_remove_env_cleanup_hook(p->env, cleanup_hook, p);
}

static void on_uv_close(uv_handle_t *h) {
  poller_t *p = h->data;
  p->closed = true;
  unhook(p);
  if (p->finalized) free(p);
}

/* Environment teardown (worker exit/terminate): the loop must be left with no
 * open handle of ours, and no JS may run any more. */
static void cleanup_hook(void *arg) {
  poller_t *p = arg;
  p->hooked = false; /* Node drops the hook after running it */
  if (p->closing) return;
  if (p->started) uv_poll_stop(&p->handle);
  p->started = false;
  p->closing = true;
  uv_close((uv_handle_t *)&p->handle, on_uv_close);
}

static void set_started(poller_t *p, bool on) {
  if (p->started == on) return;
  p->started = on;
  uint32_t rc;
  if (on)
    napi_reference_ref(p->env, p->self, &rc);
  else
    napi_reference_unref(p->env, p->self, &rc);
}

static void do_close(napi_env env, poller_t *p, napi_value obj) {
  if (p->closing) return;
  if (p->started) uv_poll_stop(&p->handle);
  set_started(p, false);
  p->closing = true;
  uv_close((uv_handle_t *)&p->handle, on_uv_close);
  napi_async_destroy(env, p->actx);
  p->actx = NULL;
  if (obj) codex_detach_callback(env, obj, CB_PROP);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  poller_t *p = data;
  p->finalized = true;
  if (p->self) napi_delete_reference(env, p->self);
  p->self = NULL;
  if (!p->closing) {
    /* Only reachable at env teardown or if never started: close quietly. */
    if (p->started) uv_poll_stop(&p->handle);
    p->started = false;
    p->closing = true;
    uv_close((uv_handle_t *)&p->handle, on_uv_close);
    if (p->actx) napi_async_destroy(env, p->actx);
    p->actx = NULL;
    return;
  }
  if (p->closed) free(p);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  napi_env env = p->env;
  if (p->closing || !p->self) return;
  if (status < 0) set_started(p, false); /* libuv stopped the handle itself */

  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value obj = NULL, cb, args[2], r, w, d;
  if (!codex_get_callback(env, p->self, CB_PROP, &obj, &cb)) goto out;
  if (status < 0) {
    args[0] = codex_make_errno_error(env, -status, "uv_poll", NULL);
    if (!args[0]) goto out;
  } else if (napi_get_null(env, &args[0]) != napi_ok) {
    goto out;
  }
  if (napi_create_object(env, &args[1]) != napi_ok ||
      napi_get_boolean(env, (events & UV_READABLE) != 0, &r) != napi_ok ||
      napi_get_boolean(env, (events & UV_WRITABLE) != 0, &w) != napi_ok ||
      napi_get_boolean(env, (events & UV_DISCONNECT) != 0, &d) != napi_ok ||
      napi_set_named_property(env, args[1], "readable", r) != napi_ok ||
      napi_set_named_property(env, args[1], "writable", w) != napi_ok ||
      napi_set_named_property(env, args[1], "disconnect", d) != napi_ok)
    goto out;
  /* make_callback drains nextTicks/microtasks like any Node I/O callback.
   * Nothing below touches p: the callback may have closed the poller. */
  codex_invoke_callback(env, p->actx, obj, cb, 2, args);
out:
  napi_close_handle_scope(env, scope);
}

/* The poller behind `this`; all *argc arguments are required (TypeError `usage`). */
static poller_t *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                             napi_value *self, const char *usage) {
  return codex_unwrap_this(env, info, argc, argv, self, "Poller", *argc, usage);
}

static napi_value poller_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], thisv;
  if (!codex_ctor_args(env, info, 2, &argc, argv, &thisv, "Poller", "new Poller(fd, onEvent)"))
    return NULL;
  int fd;
  if (!codex_get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (!codex_get_function(env, argv[1], "onEvent")) return NULL;
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  poller_t *p = calloc(1, sizeof *p);
  if (!p) {
    codex_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  p->env = env;
  p->fd = fd;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r != 0) {
    free(p);
    codex_throw_errno(env, -r, "uv_poll_init");
    return NULL;
  }
  p->handle.data = p;
  if (!codex_attach_callback(env, thisv, CB_PROP, argv[1], "CodexPoller", &p->actx)) {
    p->closing = p->finalized = true;
    uv_close((uv_handle_t *)&p->handle, on_uv_close);
    codex_throw_napi_failure(env, napi_generic_failure, "Poller constructor");
    return NULL;
  }
  if (napi_wrap(env, thisv, p, finalize, NULL, NULL) != napi_ok) {
    napi_async_destroy(env, p->actx);
    p->closing = p->finalized = true;
    uv_close((uv_handle_t *)&p->handle, on_uv_close);
    codex_throw_napi_failure(env, napi_generic_failure, "napi_wrap");
    return NULL;
  }
  /* From here the finalizer owns cleanup. */
  if (napi_add_env_cleanup_hook(env, cleanup_hook, p) == napi_ok) p->hooked = true;
  if (napi_create_reference(env, thisv, 0, &p->self) != napi_ok) {
    codex_throw_napi_failure(env, napi_generic_failure, "napi_create_reference");
    return NULL;
  }
  return thisv;
}

/* start(readable: boolean, writable: boolean) */
static napi_value poller_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  poller_t *p = unwrap_this(env, info, &argc, argv, NULL, "start(readable, writable)");
  if (!p) return NULL;
  bool rd, wr;
  if (!codex_get_bool(env, argv[0], "readable", &rd)) return NULL;
  if (!codex_get_bool(env, argv[1], "writable", &wr)) return NULL;
  if (p->closing) {
    napi_throw_error(env, "ERR_POLLER_CLOSED", "Poller is closed");
    return NULL;
  }
  if (!rd && !wr) {
    if (p->started) uv_poll_stop(&p->handle);
    set_started(p, false);
    return NULL;
  }
  /* libuv aborts the process if epoll_ctl fails inside the loop, so refuse
   * an fd that was closed under us while we can still throw. */
  if (fcntl(p->fd, F_GETFD) < 0) {
    codex_throw_errno(env, errno, "uv_poll_start");
    return NULL;
  }
  int ev = UV_DISCONNECT | (rd ? UV_READABLE : 0) | (wr ? UV_WRITABLE : 0);
  int r = uv_poll_start(&p->handle, ev, on_poll);
  if (r != 0) {
    codex_throw_errno(env, -r, "uv_poll_start");
    return NULL;
  }
  set_started(p, true);
  return NULL;
}

static napi_value poller_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t *p = unwrap_this(env, info, &argc, NULL, NULL, NULL);
  if (!p) return NULL;
  if (p->closing) return NULL;
  if (p->started) uv_poll_stop(&p->handle);
  set_started(p, false);
  return NULL;
}

static napi_value poller_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  poller_t *p = unwrap_this(env, info, &argc, NULL, &self, NULL);
  if (!p) return NULL;
  do_close(env, p, self);
  return NULL;
}

static napi_value poller_set_ref(napi_env env, napi_callback_info info, bool on) {
  size_t argc = 0;
  poller_t *p = unwrap_this(env, info, &argc, NULL, NULL, NULL);
  if (!p) return NULL;
  if (p->closing) return NULL;
  if (on)
    uv_ref((uv_handle_t *)&p->handle);
  else
    uv_unref((uv_handle_t *)&p->handle);
  return NULL;
}

static napi_value poller_ref(napi_env env, napi_callback_info info) {
  return poller_set_ref(env, info, true);
}

static napi_value poller_unref(napi_env env, napi_callback_info info) {
  return poller_set_ref(env, info, false);
}

napi_value codex_init_poller(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      CODEX_METHOD("start", poller_start), CODEX_METHOD("stop", poller_stop),
      CODEX_METHOD("close", poller_close), CODEX_METHOD("ref", poller_ref),
      CODEX_METHOD("unref", poller_unref),
  };
  CODEX_DEFINE_CLASS(env, exports, "Poller", "NativePoller", poller_new, methods);
  return exports;
}
