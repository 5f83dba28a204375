/*
 * The little JSON the wrapper needs, and nothing more: a string writer that
 * carries arbitrary bytes (non-UTF-8 bytes travel as "\udcXX", Python's
 * surrogateescape convention) and a strict reader for the two messages the
 * server sends back. No allocation happens here.
 */
#ifndef CODEX_WRAPPER_JSON_H
#define CODEX_WRAPPER_JSON_H

#include <stddef.h>

/* Worst case output of json_put_string for len input bytes: every byte as a
 * six-character escape, plus the two quotes. */
#define JSON_STRING_BOUND(len) (6 * (size_t)(len) + 2)

/* Length (1-4) of the well-formed UTF-8 sequence at s, or 0 when the bytes
 * there are not one (overlong, surrogate, above U+10FFFF, truncated, stray
 * continuation byte). */
size_t utf8_sequence_length(const unsigned char *s, size_t avail);

/* Writes s[0..len) as a quoted JSON string at out (which must have room for
 * JSON_STRING_BOUND(len) bytes) and returns the end of what was written. */
char *json_put_string(char *out, const unsigned char *s, size_t len);

enum escalate_action {
  ACTION_RUN,
  ACTION_ESCALATE,
  ACTION_DENY,
  ACTION_RUN_REWRITTEN, /* [ext] {"RunRewritten":{"file":..,"argv":[..]}} */
};

struct escalate_response {
  enum escalate_action action;
  /* Deny only: the decoded reason as a NUL-terminated UTF-8-ish string
   * pointing into the parsed buffer, or NULL for "reason": null. */
  char *reason;
  size_t reason_len;
  /* RunRewritten only, pointing into the parsed buffer: the decoded file
   * (NUL-terminated, non-empty) and argc >= 1 decoded argv strings packed
   * one after another, each NUL-terminated. "\udcXX" escapes become the
   * raw byte XX; a NUL byte anywhere is refused. */
  char *file;
  char *argv_packed;
  size_t argc;
  /* [ext] Top-level "shell": the absolute path (NUL-terminated, pointing
   * into the parsed buffer) of the shell to run scripts without #! with,
   * or NULL when absent. Must be a non-empty absolute path without NUL. */
  char *shell;
  /* [ext 3] Top-level "listener": true when the server wants the exec
   * filter's seccomp listener fd (docs/protocol.md, "Direct execs"). */
  int listener;
};

/* Both parsers accept exactly one JSON object filling buf[0..len) (JSON
 * whitespace around it is fine), ignore unknown top-level keys, and return
 * NULL on success or a static description of what is wrong, with *err_at set
 * to the byte offset of the problem. buf is modified (strings are decoded in
 * place). */
const char *json_parse_escalate_response(unsigned char *buf, size_t len,
                                         struct escalate_response *out, size_t *err_at);

struct exec_result {
  long long exit_code;
  int in_range;   /* cleared when exit_code does not fit a long long */
  int has_signal; /* [ext] "signal" present and not null */
  long long signal;
  int signal_in_range;
};

/* {"exit_code": N} or [ext] {"exit_code": N, "signal": S}; N and S must be
 * JSON integers (S may also be null). Range checks are the caller's. */
const char *json_parse_exec_result(unsigned char *buf, size_t len, struct exec_result *out,
                                   size_t *err_at);

#endif
