/*
 * Shared helpers for the codex_native addon: argument validation and
 * errno -> JS Error conversion. Plain C on node_api.h only.
 */
#ifndef CODEX_NATIVE_COMMON_H
#define CODEX_NATIVE_COMMON_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Largest single recvMsg buffer we allocate; bigger requests are a caller bug. */
#define CODEX_MAX_RECV_BYTES (64u * 1024u * 1024u)
/* Kernel limit on fds in one SCM_RIGHTS message (SCM_MAX_FD). */
#define CODEX_MAX_SCM_FDS 253
#define CODEX_STR_(x) #x
#define CODEX_STR(x) CODEX_STR_(x)

/* Scope-bound cleanup, after bubblewrap's utils.h: every early return
 * (NAPI_CALL included) releases what the function still owns; ownership
 * handed on is taken out with steal_pointer / steal_fd. */
static inline void codex_freep(void *pp) {
  free(*(void **)pp);
}
static inline void codex_closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}
/* A NULL-terminated array of malloc'd strings (calloc'd, so a partly filled
 * one is terminated too). */
static inline void codex_strv_free(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}
static inline void codex_strvp(char ***pv) {
  codex_strv_free(*pv);
}
static inline void *codex_steal_pointer(void *pp) {
  void *p = *(void **)pp;
  *(void **)pp = NULL;
  return p;
}
static inline int codex_steal_fd(int *fd) {
  int v = *fd;
  *fd = -1;
  return v;
}
#define cleanup_free __attribute__((cleanup(codex_freep)))
#define cleanup_fd __attribute__((cleanup(codex_closep)))
#define cleanup_strv __attribute__((cleanup(codex_strvp)))
#define steal_pointer(pp) codex_steal_pointer(pp)
#define steal_fd(fdp) codex_steal_fd(fdp)

/* Bail out of a napi callback returning NULL when a napi call fails; the
 * failing call normally leaves an exception pending already. Declare what
 * must be released with the cleanup_* attributes above. */
#define NAPI_CALL(env, call)                           \
  do {                                                 \
    napi_status status_ = (call);                      \
    if (status_ != napi_ok) {                          \
      codex_throw_napi_failure((env), status_, #call); \
      return NULL;                                     \
    }                                                  \
  } while (0)

void codex_throw_napi_failure(napi_env env, napi_status status, const char *what);

/* Throws Error with .code ("EPIPE"), .errno (negative, like Node), .syscall. */
void codex_throw_errno(napi_env env, int err, const char *syscall);
/* Builds (does not throw) the same kind of Error; NULL on failure. */
napi_value codex_make_errno_error(napi_env env, int err, const char *syscall, const char *extra);

/* Fetches the callback's arguments into argv (capacity *argc; missing ones
 * are undefined) and sets *argc to how many were passed. Fewer than min:
 * throws TypeError "<usage> needs at least <min> arguments" and returns false. */
bool codex_get_args(napi_env env, napi_callback_info info, size_t min, size_t *argc,
                    napi_value *argv, const char *usage);

/* Validators: on failure they throw TypeError/RangeError and return false. */
bool codex_get_fd(napi_env env, napi_value v, const char *name, int *out);
bool codex_get_int(napi_env env, napi_value v, const char *name, int64_t min, int64_t max,
                   int64_t *out);
bool codex_get_bool(napi_env env, napi_value v, const char *name, bool *out);
/* Accepts a Buffer or any TypedArray/DataView-free byte view (Uint8Array). */
bool codex_get_bytes(napi_env env, napi_value v, const char *name, const uint8_t **data,
                     size_t *len);
/* Malloc'd NUL-terminated copy of a Buffer/Uint8Array; rejects embedded NULs.
 * NULL (with an exception pending) on failure. */
char *codex_get_cstring(napi_env env, napi_value v, const char *name);
bool codex_get_array(napi_env env, napi_value v, const char *name, uint32_t *len);
bool codex_get_function(napi_env env, napi_value v, const char *name);
/* A bigint that fits in 64 unsigned bits. */
bool codex_get_bigint_u64(napi_env env, napi_value v, const char *name, uint64_t *out);

/* Classes around a native handle (Poller, SeccompHub): the JS object owns the
 * struct (napi_wrap), and the JS callback is a property of that object, not a
 * napi_ref, so a callback closing over its own object is a collectable cycle. */

/* The constructor's arguments: TypeError unless called with new ("<class>
 * must be called with new") and with at least min of them ("<usage> needs
 * <min> arguments"). */
bool codex_ctor_args(napi_env env, napi_callback_info info, size_t min, size_t *argc,
                     napi_value *argv, napi_value *thisv, const char *class_name,
                     const char *usage);
/* A method's native struct (TypeError ERR_INVALID_THIS when `this` has none),
 * with its arguments (fewer than min: TypeError `usage`) and, when self is
 * given, `this`. NULL: exception pending. */
void *codex_unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                        napi_value *self, const char *class_name, size_t min, const char *usage);
/* Stores fn as obj[prop] and opens the async context callbacks run in
 * (resource: its name in async_hooks). */
bool codex_attach_callback(napi_env env, napi_value obj, const char *prop, napi_value fn,
                           const char *resource, napi_async_context *actx);
/* obj[prop] = undefined: a closed handle lets go of its callback. */
void codex_detach_callback(napi_env env, napi_value obj, const char *prop);
/* The object behind self and its callback; false when either is gone. */
bool codex_get_callback(napi_env env, napi_ref self, const char *prop, napi_value *obj,
                        napi_value *cb);
/* Calls cb like a Node I/O callback (nextTicks and microtasks drained after);
 * an exception it throws is fatal, as from a throwing 'data' handler. */
void codex_invoke_callback(napi_env env, napi_async_context actx, napi_value obj, napi_value cb,
                           size_t argc, const napi_value *args);

/* One enumerable function property of the module, and a table of them. */
#define CODEX_FN(js_name, fn) \
  { (js_name), NULL, (fn), NULL, NULL, NULL, napi_enumerable, NULL }
#define CODEX_DEFINE_ALL(env, exports, props) \
  NAPI_CALL((env),                            \
            napi_define_properties((env), (exports), sizeof(props) / sizeof(props)[0], (props)))
/* One method of a class, and a class (constructor ctor, methods[]) defined
 * as exports[export_name]. */
#define CODEX_METHOD(js_name, fn) \
  { (js_name), NULL, (fn), NULL, NULL, NULL, napi_default, NULL }
#define CODEX_DEFINE_CLASS(env, exports, export_name, class_name, ctor, methods)                \
  do {                                                                                          \
    napi_value cls_;                                                                            \
    NAPI_CALL((env), napi_define_class((env), (class_name), NAPI_AUTO_LENGTH, (ctor), NULL,     \
                                       sizeof(methods) / sizeof(methods)[0], (methods), &cls_)); \
    NAPI_CALL((env), napi_set_named_property((env), (exports), (export_name), cls_));          \
  } while (0)
/* A module part whose exports are only functions: defines its init function. */
#define CODEX_MODULE(init, ...)                               \
  napi_value init(napi_env env, napi_value exports) {         \
    napi_property_descriptor props[] = {__VA_ARGS__};         \
    CODEX_DEFINE_ALL(env, exports, props);                    \
    return exports;                                           \
  }

/* Module parts register their exports through these. */
napi_value codex_init_fdpass(napi_env env, napi_value exports);
napi_value codex_init_poller(napi_env env, napi_value exports);
napi_value codex_init_spawn(napi_env env, napi_value exports);
napi_value codex_init_proc(napi_env env, napi_value exports);
napi_value codex_init_tty(napi_env env, napi_value exports);
napi_value codex_init_seccomp_notify(napi_env env, napi_value exports);
napi_value codex_init_fast_path(napi_env env, napi_value exports);

#endif
