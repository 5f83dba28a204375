/* Helpers shared by every part of the addon, and the module entry point. */
#define _GNU_SOURCE
#include "common.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <uv.h>

void codex_throw_napi_failure(napi_env env, napi_status status, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "codex_native: internal N-API failure (%d: %s) in %s", (int)status,
           info && info->error_message ? info->error_message : "unknown", what);
  napi_throw_error(env, "ERR_CODEX_NATIVE", msg);
}

/* errno -> "EPIPE". glibc knows every Linux errno (libuv lacks some, e.g.
 * ENOEXEC); libuv is the fallback for other C libraries. */
static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *g = strerrorname_np(err);
  if (g) return g;
#endif
  const char *n = uv_err_name(-err);
  return (n && n[0] == 'E') ? n : "UNKNOWN";
}

napi_value codex_make_errno_error(napi_env env, int err, const char *syscall, const char *extra) {
  char msg[512], ebuf[128];
  const char *name = errno_name(err);
  /* GNU strerror_r: thread-safe (worker threads may load the addon too). */
  const char *desc = strerror_r(err, ebuf, sizeof ebuf);
  if (extra && *extra)
    snprintf(msg, sizeof msg, "%s %s: %s (%s)", syscall, name, desc, extra);
  else
    snprintf(msg, sizeof msg, "%s %s: %s", syscall, name, desc);
  napi_value code, message, error, errnum, sys;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok ||
      napi_create_int32(env, -err, &errnum) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys) != napi_ok ||
      napi_set_named_property(env, error, "errno", errnum) != napi_ok ||
      napi_set_named_property(env, error, "syscall", sys) != napi_ok)
    return NULL;
  return error;
}

void codex_throw_errno(napi_env env, int err, const char *syscall) {
  napi_value e = codex_make_errno_error(env, err, syscall, NULL);
  if (e)
    napi_throw(env, e);
  else
    codex_throw_napi_failure(env, napi_generic_failure, "codex_throw_errno");
}

bool codex_get_args(napi_env env, napi_callback_info info, size_t min, size_t *argc,
                    napi_value *argv, const char *usage) {
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok) {
    codex_throw_napi_failure(env, napi_generic_failure, "napi_get_cb_info");
    return false;
  }
  if (*argc < min) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s needs at least %zu argument%s, got %zu", usage, min,
             min == 1 ? "" : "s", *argc);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return true;
}

static void throw_type(napi_env env, const char *name, const char *expected) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s must be %s", name, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

bool codex_get_int(napi_env env, napi_value v, const char *name, int64_t min, int64_t max,
                   int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_type(env, name, "a number");
    return false;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_type(env, name, "a number");
    return false;
  }
  if (!isfinite(d) || floor(d) != d || d < (double)min || d > (double)max) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s must be an integer in [%lld, %lld], got %g", name, (long long)min,
             (long long)max, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

bool codex_get_fd(napi_env env, napi_value v, const char *name, int *out) {
  int64_t x;
  if (!codex_get_int(env, v, name, 0, INT32_MAX, &x)) return false;
  *out = (int)x;
  return true;
}

bool codex_get_bool(napi_env env, napi_value v, const char *name, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean ||
      napi_get_value_bool(env, v, out) != napi_ok) {
    throw_type(env, name, "a boolean");
    return false;
  }
  return true;
}

bool codex_get_bytes(napi_env env, napi_value v, const char *name, const uint8_t **data,
                     size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    throw_type(env, name, "a Buffer or Uint8Array");
    return false;
  }
  napi_typedarray_type tt;
  size_t length;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &tt, &length, &ptr, NULL, NULL) != napi_ok ||
      (tt != napi_uint8_array && tt != napi_int8_array && tt != napi_uint8_clamped_array)) {
    throw_type(env, name, "a Buffer or Uint8Array");
    return false;
  }
  /* A zero-length view may report a NULL data pointer; normalise it. */
  static const uint8_t empty[1] = {0};
  *data = ptr ? (const uint8_t *)ptr : empty;
  *len = length;
  return true;
}

bool codex_get_array(napi_env env, napi_value v, const char *name, uint32_t *len) {
  bool is_arr = false;
  if (napi_is_array(env, v, &is_arr) != napi_ok || !is_arr ||
      napi_get_array_length(env, v, len) != napi_ok) {
    throw_type(env, name, "an array");
    return false;
  }
  return true;
}

bool codex_get_function(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) {
    throw_type(env, name, "a function");
    return false;
  }
  return true;
}

bool codex_get_bigint_u64(napi_env env, napi_value v, const char *name, uint64_t *out) {
  bool lossless;
  if (napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok || !lossless) {
    throw_type(env, name, "a bigint");
    return false;
  }
  return true;
}

bool codex_ctor_args(napi_env env, napi_callback_info info, size_t min, size_t *argc,
                     napi_value *argv, napi_value *thisv, const char *class_name,
                     const char *usage) {
  napi_value target;
  if (napi_get_cb_info(env, info, argc, argv, thisv, NULL) != napi_ok ||
      napi_get_new_target(env, info, &target) != napi_ok) {
    codex_throw_napi_failure(env, napi_generic_failure, class_name);
    return false;
  }
  char msg[256];
  if (!target) {
    snprintf(msg, sizeof msg, "%s must be called with new", class_name);
    napi_throw_type_error(env, "ERR_CONSTRUCT_CALL_REQUIRED", msg);
    return false;
  }
  if (*argc < min) {
    snprintf(msg, sizeof msg, "%s needs %zu argument%s", usage, min, min == 1 ? "" : "s");
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return true;
}

void *codex_unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                        napi_value *self, const char *class_name, size_t min, const char *usage) {
  napi_value thisv;
  if (napi_get_cb_info(env, info, argc, argv, &thisv, NULL) != napi_ok) return NULL;
  void *data = NULL;
  if (napi_unwrap(env, thisv, &data) != napi_ok || !data) {
    char msg[256];
    snprintf(msg, sizeof msg, "method called on an object that is not a %s", class_name);
    napi_throw_type_error(env, "ERR_INVALID_THIS", msg);
    return NULL;
  }
  if (*argc < min) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  if (self) *self = thisv;
  return data;
}

bool codex_attach_callback(napi_env env, napi_value obj, const char *prop, napi_value fn,
                           const char *resource, napi_async_context *actx) {
  napi_property_descriptor cbprop = {prop, NULL, NULL, NULL, NULL, fn, napi_writable, NULL};
  napi_value name;
  return napi_define_properties(env, obj, 1, &cbprop) == napi_ok &&
         napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name) == napi_ok &&
         napi_async_init(env, obj, name, actx) == napi_ok;
}

void codex_detach_callback(napi_env env, napi_value obj, const char *prop) {
  napi_value undef;
  if (napi_get_undefined(env, &undef) == napi_ok) napi_set_named_property(env, obj, prop, undef);
}

bool codex_get_callback(napi_env env, napi_ref self, const char *prop, napi_value *obj,
                        napi_value *cb) {
  napi_valuetype t;
  return napi_get_reference_value(env, self, obj) == napi_ok && *obj &&
         napi_get_named_property(env, *obj, prop, cb) == napi_ok &&
         napi_typeof(env, *cb, &t) == napi_ok && t == napi_function;
}

void codex_invoke_callback(napi_env env, napi_async_context actx, napi_value obj, napi_value cb,
                           size_t argc, const napi_value *args) {
  napi_value result;
  if (napi_make_callback(env, actx, obj, cb, argc, args, &result) != napi_ok) {
    bool pending = false;
    napi_value exc;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &exc) == napi_ok)
      napi_fatal_exception(env, exc);
  }
}

/* Worker threads unload their addons before the worker loop runs its last
 * close callbacks; uv close callbacks of ours would then jump into unmapped
 * code. Marking this library RTLD_NODELETE keeps the code mapped for the life
 * of the process (it is loaded at most once anyway). */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)pin_module, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static napi_value init(napi_env env, napi_value exports) {
  pin_module();
  if (!codex_init_fdpass(env, exports)) return NULL;
  if (!codex_init_poller(env, exports)) return NULL;
  if (!codex_init_spawn(env, exports)) return NULL;
  if (!codex_init_proc(env, exports)) return NULL;
  if (!codex_init_tty(env, exports)) return NULL;
  if (!codex_init_seccomp_notify(env, exports)) return NULL;
  if (!codex_init_fast_path(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

char *codex_get_cstring(napi_env env, napi_value v, const char *name) {
  const uint8_t *data;
  size_t len;
  if (!codex_get_bytes(env, v, name, &data, &len)) return NULL;
  if (memchr(data, 0, len) != NULL) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s must not contain NUL bytes", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    codex_throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  memcpy(s, data, len);
  s[len] = '\0';
  return s;
}
