/*
 * Hand-written JSON for codex-execve-wrapper; see json.h. The reader is
 * strict (RFC 8259 grammar, UTF-8 validated, no duplicate keys where we
 * care) because every byte from the server side is untrusted input, and a
 * response we do not understand must end in a refusal, never a guess.
 */
#include "json.h"

#include <string.h>

size_t utf8_sequence_length(const unsigned char *s, size_t avail) {
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
  size_t n;

  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0; /* overlong below U+0800 */
    else if (c == 0xED)
      hi = 0x9F; /* UTF-16 surrogates D800-DFFF */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90; /* overlong below U+10000 */
    else if (c == 0xF4)
      hi = 0x8F; /* above U+10FFFF */
  } else
    return 0; /* continuation byte, C0/C1 overlong, F5-FF */
  if (avail < n || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return n;
}

static const char hexdigits[] = "0123456789abcdef";

char *json_put_string(char *out, const unsigned char *s, size_t len) {
  size_t i = 0;

  *out++ = '"';
  while (i < len) {
    unsigned char c = s[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      *out++ = (char)c;
      i++;
    } else if (c == '"' || c == '\\') {
      *out++ = '\\';
      *out++ = (char)c;
      i++;
    } else if (c < 0x20) {
      memcpy(out, "\\u00", 4);
      out[4] = hexdigits[c >> 4];
      out[5] = hexdigits[c & 15];
      out += 6;
      i++;
    } else {
      size_t n = utf8_sequence_length(s + i, len - i);
      if (n) {
        memcpy(out, s + i, n);
        out += n;
        i += n;
      } else {
        /* One undecodable byte; the next byte starts
         * afresh, as Python's decoder does. */
        memcpy(out, "\\udc", 4);
        out[4] = hexdigits[c >> 4];
        out[5] = hexdigits[c & 15];
        out += 6;
        i++;
      }
    }
  }
  *out++ = '"';
  return out;
}

/* ---------------------------------------------------------------- reader */

struct reader {
  unsigned char *start, *p, *end;
  const char *err;
  size_t err_at;
};

/* Nesting allowed inside values we skip; deeper input is refused rather than
 * risking the stack. */
#define MAX_DEPTH 64

static int fail(struct reader *r, const char *what) {
  if (!r->err) {
    r->err = what;
    r->err_at = (size_t)(r->p - r->start);
  }
  return -1;
}

static void skip_ws(struct reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static int expect(struct reader *r, char c, const char *what) {
  skip_ws(r);
  if (r->p >= r->end || *r->p != (unsigned char)c) return fail(r, what);
  r->p++;
  return 0;
}

static int peek(struct reader *r) {
  skip_ws(r);
  return r->p < r->end ? *r->p : -1;
}

static int hex4(const unsigned char *p, unsigned *v) {
  unsigned x = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = p[i];
    x <<= 4;
    if (c >= '0' && c <= '9')
      x |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      x |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      x |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *v = x;
  return 0;
}

/* Decoded output. Writes may alias the input: a decoded string is never
 * longer than its JSON form, so the write position never passes the read
 * position. out == NULL only counts. */
struct sink {
  unsigned char *out;
  size_t cap, len;
};

static void put(struct sink *k, unsigned char c) {
  if (k->out && k->len < k->cap) k->out[k->len] = c;
  k->len++;
}

static void put_codepoint(struct sink *k, unsigned cp) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) {
    /* A lone low surrogate in this range is how a raw byte travels
     * (surrogateescape); give the byte back. */
    put(k, (unsigned char)(cp & 0xFF));
    return;
  }
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* other lone surrogates have no bytes */
  if (cp < 0x80)
    put(k, (unsigned char)cp);
  else if (cp < 0x800) {
    put(k, (unsigned char)(0xC0 | (cp >> 6)));
    put(k, (unsigned char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    put(k, (unsigned char)(0xE0 | (cp >> 12)));
    put(k, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
    put(k, (unsigned char)(0x80 | (cp & 0x3F)));
  } else {
    put(k, (unsigned char)(0xF0 | (cp >> 18)));
    put(k, (unsigned char)(0x80 | ((cp >> 12) & 0x3F)));
    put(k, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
    put(k, (unsigned char)(0x80 | (cp & 0x3F)));
  }
}

/* Parses the string at r->p (after whitespace) into k. */
static int parse_string(struct reader *r, struct sink *k) {
  skip_ws(r);
  if (r->p >= r->end || *r->p != '"') return fail(r, "expected a string");
  r->p++;
  for (;;) {
    if (r->p >= r->end) return fail(r, "unterminated string");
    unsigned char c = *r->p;
    if (c == '"') {
      r->p++;
      return 0;
    }
    if (c < 0x20) return fail(r, "control character in string");
    if (c != '\\') {
      size_t n = utf8_sequence_length(r->p, (size_t)(r->end - r->p));
      if (!n) return fail(r, "invalid UTF-8 in string");
      for (size_t i = 0; i < n; i++)
        put(k, r->p[i]);
      r->p += n;
      continue;
    }
    if (r->end - r->p < 2) return fail(r, "unterminated string");
    unsigned char e = r->p[1];
    r->p += 2;
    switch (e) {
    case '"': put(k, '"'); break;
    case '\\': put(k, '\\'); break;
    case '/': put(k, '/'); break;
    case 'b': put(k, '\b'); break;
    case 'f': put(k, '\f'); break;
    case 'n': put(k, '\n'); break;
    case 'r': put(k, '\r'); break;
    case 't': put(k, '\t'); break;
    case 'u': {
      unsigned cp, lo;
      if (r->end - r->p < 4 || hex4(r->p, &cp)) {
        r->p -= 2;
        return fail(r, "invalid \\u escape");
      }
      r->p += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' &&
          hex4(r->p + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        r->p += 6;
      }
      put_codepoint(k, cp);
      break;
    }
    default: r->p -= 2; return fail(r, "invalid escape in string");
    }
  }
}

/* Parses a string and says whether it equals the ASCII word. */
static int parse_key(struct reader *r, const char **keys, int nkeys, int *which) {
  unsigned char buf[16];
  struct sink k = {buf, sizeof buf, 0};

  if (parse_string(r, &k)) return -1;
  *which = -1;
  for (int i = 0; i < nkeys; i++) {
    size_t n = strlen(keys[i]);
    if (k.len == n && memcmp(buf, keys[i], n) == 0) *which = i;
  }
  return 0;
}

static int literal(struct reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return fail(r, "invalid literal");
  r->p += n;
  return 0;
}

static int is_digit(struct reader *r) {
  return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

/* Number grammar check; *integral says there was no fraction or exponent. */
static int scan_number(struct reader *r, int *integral) {
  *integral = 1;
  if (r->p < r->end && *r->p == '-') r->p++;
  if (!is_digit(r)) return fail(r, "invalid number");
  if (*r->p == '0')
    r->p++;
  else
    while (is_digit(r))
      r->p++;
  if (r->p < r->end && *r->p == '.') {
    *integral = 0;
    r->p++;
    if (!is_digit(r)) return fail(r, "invalid number");
    while (is_digit(r))
      r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    *integral = 0;
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (!is_digit(r)) return fail(r, "invalid number");
    while (is_digit(r))
      r->p++;
  }
  return 0;
}

static int skip_value(struct reader *r, int depth);

/* After a member or item: ',' (0: another follows), the closing bracket (1),
 * anything else an error (-1). */
static int after_item(struct reader *r, char close) {
  int c = peek(r);

  r->p++;
  if (c == close) return 1;
  if (c == ',') return 0;
  r->p--;
  return fail(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* The members of an object ('}': "key": value pairs) or the items of an
 * array (']'), from its opening bracket through the closing one. */
static int skip_items(struct reader *r, int depth, char close) {
  int c;

  r->p++;
  if (peek(r) == close) {
    r->p++;
    return 0;
  }
  for (;;) {
    if (close == '}') {
      struct sink k = {NULL, 0, 0};
      if (parse_string(r, &k) || expect(r, ':', "expected ':'")) return -1;
    }
    if (skip_value(r, depth + 1)) return -1;
    if ((c = after_item(r, close)) != 0) return c < 0 ? -1 : 0;
  }
}

static int skip_value(struct reader *r, int depth) {
  int c = peek(r), integral;

  if (depth > MAX_DEPTH) return fail(r, "nesting too deep");
  switch (c) {
  case '"': {
    struct sink k = {NULL, 0, 0};
    return parse_string(r, &k);
  }
  case '{': return skip_items(r, depth, '}');
  case '[': return skip_items(r, depth, ']');
  case 't': return literal(r, "true");
  case 'f': return literal(r, "false");
  case 'n': return literal(r, "null");
  default:
    if (c == '-' || (c >= '0' && c <= '9')) return scan_number(r, &integral);
    return fail(r, "expected a value");
  }
}

/* Walks a top-level object; calls on_key for the keys in `keys` (each at
 * most once) and skips every other value. */
typedef int (*key_handler)(struct reader *r, int which, void *ctx);

static int parse_top_object(struct reader *r, const char **keys, int nkeys, key_handler on_key,
                            void *ctx, unsigned *seen) {
  *seen = 0;
  if (expect(r, '{', "expected a JSON object")) return -1;
  if (peek(r) == '}') {
    r->p++;
  } else {
    for (;;) {
      int which, c;
      if (parse_key(r, keys, nkeys, &which) || expect(r, ':', "expected ':'")) return -1;
      if (which >= 0) {
        if (*seen & (1u << which)) return fail(r, "duplicate key");
        *seen |= 1u << which;
        if (on_key(r, which, ctx)) return -1;
      } else if (skip_value(r, 1))
        return -1;
      if ((c = after_item(r, '}')) != 0) {
        if (c < 0) return -1;
        break;
      }
    }
  }
  skip_ws(r);
  if (r->p != r->end) return fail(r, "trailing data after the JSON object");
  return 0;
}

/* {"reason": null | string} — exactly that key. */
static int parse_deny(struct reader *r, struct escalate_response *out) {
  static const char *keys[] = {"reason"};
  int which;

  if (expect(r, '{', "expected the Deny object")) return -1;
  if (peek(r) != '"') return fail(r, "expected \"reason\"");
  if (parse_key(r, keys, 1, &which)) return -1;
  if (which != 0) return fail(r, "unexpected key in Deny");
  if (expect(r, ':', "expected ':'")) return -1;
  if (peek(r) == 'n') {
    if (literal(r, "null")) return -1;
    out->reason = NULL;
    out->reason_len = 0;
  } else {
    unsigned char *dst;
    struct sink k;
    if (peek(r) != '"') return fail(r, "reason must be a string or null");
    dst = r->p; /* decode in place, over the quote and onwards */
    k.out = dst;
    k.cap = (size_t)-1;
    k.len = 0;
    if (parse_string(r, &k)) return -1;
    /* The closing quote was at or after dst + k.len, already read. */
    dst[k.len] = '\0';
    out->reason = (char *)dst;
    out->reason_len = k.len;
  }
  return expect(r, '}', "expected '}' after reason");
}

/* Decodes the string at r->p (after whitespace) to dst, which may be at or
 * before the string's opening quote (see struct sink), NUL-terminates it and
 * refuses an embedded NUL: it could never reach execve intact. */
static int parse_exec_string(struct reader *r, unsigned char *dst, size_t *len,
                             const char *nul_msg) {
  unsigned char *start;
  struct sink k;

  if (peek(r) != '"') return fail(r, "expected a string");
  start = r->p;
  k.out = dst;
  k.cap = (size_t)-1;
  k.len = 0;
  if (parse_string(r, &k)) return -1;
  if (memchr(dst, 0, k.len)) {
    r->p = start;
    return fail(r, nul_msg);
  }
  /* The closing quote was at or after dst + k.len, already read. */
  dst[k.len] = '\0';
  *len = k.len;
  return 0;
}

/* [ext] {"file": string, "argv": [string, ...]} — exactly those keys, any
 * order. argv strings are packed NUL-separated from its first string's
 * opening quote on: each decoded string plus its NUL is shorter than its
 * JSON form with quotes, so the write position never passes the read one. */
static int parse_run_rewritten(struct reader *r, struct escalate_response *out) {
  static const char *keys[] = {"file", "argv"};
  unsigned seen = 0;
  size_t len;
  int which, c;

  if (expect(r, '{', "expected the RunRewritten object")) return -1;
  for (;;) {
    if (peek(r) != '"') return fail(r, "expected \"file\" or \"argv\"");
    if (parse_key(r, keys, 2, &which)) return -1;
    if (which < 0) return fail(r, "unexpected key in RunRewritten");
    if (seen & (1u << which)) return fail(r, "duplicate key");
    seen |= 1u << which;
    if (expect(r, ':', "expected ':'")) return -1;
    if (which == 0) {
      unsigned char *at;
      if (peek(r) != '"') return fail(r, "file must be a string");
      at = r->p;
      if (parse_exec_string(r, at, &len, "NUL byte in file")) return -1;
      if (len == 0) {
        r->p = at;
        return fail(r, "file is empty");
      }
      out->file = (char *)at;
    } else {
      unsigned char *w;
      if (peek(r) != '[') return fail(r, "argv must be an array of strings");
      r->p++;
      if (peek(r) == ']') return fail(r, "argv is empty");
      w = r->p;
      out->argv_packed = (char *)w;
      out->argc = 0;
      for (;;) {
        if (peek(r) != '"') return fail(r, "argv must be an array of strings");
        if (parse_exec_string(r, w, &len, "NUL byte in argv")) return -1;
        w += len + 1;
        out->argc++;
        if ((c = after_item(r, ']')) != 0) {
          if (c < 0) return -1;
          break;
        }
      }
    }
    if ((c = after_item(r, '}')) != 0) {
      if (c < 0) return -1;
      break;
    }
  }
  if (!(seen & 1)) return fail(r, "missing \"file\" in RunRewritten");
  if (!(seen & 2)) return fail(r, "missing \"argv\" in RunRewritten");
  return 0;
}

static int on_response_key(struct reader *r, int which, void *ctx) {
  struct escalate_response *out = ctx;
  static const char *variants[] = {"Run", "Escalate"};
  static const char *objects[] = {"Deny", "RunRewritten"};
  int v;

  if (which == 1) {
    /* [ext] "shell": decoded in place like the RunRewritten file. */
    unsigned char *at;
    size_t len;
    if (peek(r) != '"') return fail(r, "shell must be a string");
    at = r->p;
    if (parse_exec_string(r, at, &len, "NUL byte in shell")) return -1;
    if (len == 0 || at[0] != '/') {
      r->p = at;
      return fail(r, "shell must be an absolute path");
    }
    out->shell = (char *)at;
    return 0;
  }
  if (which == 2) {
    /* [ext 3] "listener": a JSON boolean (peek skips the whitespace before it). */
    (void)peek(r);
    if ((size_t)(r->end - r->p) >= 4 && memcmp(r->p, "true", 4) == 0) {
      r->p += 4;
      out->listener = 1;
      return 0;
    }
    if ((size_t)(r->end - r->p) >= 5 && memcmp(r->p, "false", 5) == 0) {
      r->p += 5;
      return 0;
    }
    return fail(r, "listener must be a boolean");
  }
  switch (peek(r)) {
  case '"':
    if (parse_key(r, variants, 2, &v)) return -1;
    if (v < 0) return fail(r, "unknown action");
    out->action = v == 0 ? ACTION_RUN : ACTION_ESCALATE;
    return 0;
  case '{':
    r->p++;
    if (peek(r) != '"') return fail(r, "expected an action variant");
    if (parse_key(r, objects, 2, &v)) return -1;
    if (v < 0) return fail(r, "unknown action");
    if (expect(r, ':', "expected ':'")) return -1;
    if (v == 0) {
      if (parse_deny(r, out)) return -1;
      out->action = ACTION_DENY;
      return expect(r, '}', "expected '}' after the Deny variant");
    }
    if (parse_run_rewritten(r, out)) return -1;
    out->action = ACTION_RUN_REWRITTEN;
    return expect(r, '}', "expected '}' after the RunRewritten variant");
  default: return fail(r, "action must be a string or an object");
  }
}

const char *json_parse_escalate_response(unsigned char *buf, size_t len,
                                         struct escalate_response *out, size_t *err_at) {
  static const char *keys[] = {"action", "shell", "listener"};
  struct reader r = {buf, buf, buf + len, NULL, 0};
  unsigned seen;

  out->reason = NULL;
  out->reason_len = 0;
  out->file = NULL;
  out->argv_packed = NULL;
  out->argc = 0;
  out->shell = NULL;
  out->listener = 0;
  if (parse_top_object(&r, keys, 3, on_response_key, out, &seen) == 0 && !(seen & 1))
    fail(&r, "missing \"action\"");
  *err_at = r.err_at;
  return r.err;
}

/* A JSON integer into *value; *in_range cleared when it does not fit. */
static int parse_integer(struct reader *r, const char *what, long long *value, int *in_range) {
  unsigned char *start;
  int integral, neg;

  if (peek(r) != '-' && !is_digit(r)) return fail(r, what);
  start = r->p;
  if (scan_number(r, &integral)) return -1;
  if (!integral) {
    r->p = start;
    return fail(r, what);
  }
  neg = *start == '-';
  *value = 0;
  *in_range = 1;
  for (unsigned char *q = start + neg; q < r->p; q++) {
    if (*value > 100000000000000LL) {
      *in_range = 0;
      break;
    }
    *value = *value * 10 + (*q - '0');
  }
  if (neg) *value = -*value;
  return 0;
}

static int on_result_key(struct reader *r, int which, void *ctx) {
  struct exec_result *res = ctx;

  if (which == 0)
    return parse_integer(r, "exit_code must be an integer", &res->exit_code, &res->in_range);
  if (peek(r) == 'n') return literal(r, "null");
  res->has_signal = 1;
  return parse_integer(r, "signal must be an integer or null", &res->signal, &res->signal_in_range);
}

const char *json_parse_exec_result(unsigned char *buf, size_t len, struct exec_result *out,
                                   size_t *err_at) {
  static const char *keys[] = {"exit_code", "signal"};
  struct reader r = {buf, buf, buf + len, NULL, 0};
  unsigned seen;

  out->exit_code = 0;
  out->in_range = 1;
  out->has_signal = 0;
  out->signal = 0;
  out->signal_in_range = 1;
  if (parse_top_object(&r, keys, 2, on_result_key, out, &seen) == 0 && !(seen & 1))
    fail(&r, "missing \"exit_code\"");
  *err_at = r.err_at;
  return r.err;
}
