/*
 * Mutation smoke-fuzzer for the wrapper's JSON reader and writer, meant to
 * be built with -fsanitize=address,undefined (make check-fuzz). Every byte
 * of a response is attacker-controlled, so the reader must neither crash nor
 * read outside the frame nor accept what the grammar forbids; the writer must
 * produce strict JSON (UTF-8, no raw controls) for any input bytes.
 * Deterministic (fixed seed) so a failure reproduces.
 */
#include "../json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 88172645463325252ULL;

static unsigned rnd(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (unsigned)(state >> 11);
}

static const char *seeds[] = {
    "{\"action\":\"Run\"}",
    "{\"action\":\"Escalate\"}",
    "{\"action\":{\"Deny\":{\"reason\":null}}}",
    "{\"action\":{\"Deny\":{\"reason\":\"no \\\"x\\\" \\u00e9 \\ud83d\\ude00 \\udcff\"}}}",
    " { \"x\" : [ 1 , -2.5e+3 , { \"a\" : [ true , false , null ] } ] , \"action\" : \"Run\" } ",
    "{\"exit_code\":0}",
    "{\"exit_code\":-12,\"extra\":{\"k\":\"v\"}}",
    "{\"exit_code\":130,\"signal\":2}",
    "{\"signal\":null,\"exit_code\":1}",
    "{\"action\":{\"RunRewritten\":{\"file\":\"/bin/"
    "echo\",\"argv\":[\"echo\",\"a\\u00e9\\udcff\",\"\"]}}}",
    "{\"action\":{\"RunRewritten\":{\"argv\":[\"x\\ud83d\\ude00\", \"\\\"q\\\"\"] , "
    "\"file\":\"caf\\udce9\"}}}",
    "{\"action\":\"Run\",\"shell\":\"/bin/b\\u0061sh\"}",
    "{\"shell\":\"/x\\udcff\",\"action\":{\"RunRewritten\":{\"file\":\"/f\",\"argv\":[\"f\"]}}}",
};

static const char alphabet[] =
    "{}[]\":,\\u0123456789abcdefABCDEF-+.eEtrunlsfa \n\t\x01\x7f\x80\xc3\xa9\xed\xa0\xff";

static void mutate(unsigned char *buf, size_t *len, size_t cap) {
  int n = 1 + (int)(rnd() % 4);
  while (n--) {
    size_t pos = *len ? rnd() % *len : 0;
    switch (rnd() % 4) {
    case 0: /* replace */
      if (*len) buf[pos] = (unsigned char)alphabet[rnd() % (sizeof alphabet - 1)];
      break;
    case 1: /* insert */
      if (*len < cap) {
        memmove(buf + pos + 1, buf + pos, *len - pos);
        buf[pos] = (unsigned char)alphabet[rnd() % (sizeof alphabet - 1)];
        (*len)++;
      }
      break;
    case 2: /* delete */
      if (*len) {
        memmove(buf + pos, buf + pos + 1, *len - pos - 1);
        (*len)--;
      }
      break;
    default: /* truncate */ *len = pos;
    }
  }
}

/* The writer's output must be strict JSON text: checked by parsing it back
 * as a value inside a response. */
static int check_writer(const unsigned char *in, size_t len) {
  char *out = malloc(JSON_STRING_BOUND(len) + 64), *p = out;
  struct escalate_response r;
  size_t at;
  const char *err;

  memcpy(p, "{\"k\":", 5);
  p = json_put_string(p + 5, in, len);
  memcpy(p, ",\"action\":\"Run\"}", 16);
  p += 16;
  err = json_parse_escalate_response((unsigned char *)out, (size_t)(p - out), &r, &at);
  if (err) {
    fprintf(stderr, "writer produced JSON the reader rejects: %s at %zu\n", err, at);
    free(out);
    return 1;
  }
  free(out);
  return 0;
}

/* RunRewritten's strings must lie inside the frame, be non-empty (file),
 * NUL-terminated and free of other NULs: walking them must stay in bounds. */
static int check_rewritten(const struct escalate_response *r, const unsigned char *buf,
                           size_t len) {
  const char *end = (const char *)buf + len, *p;

  if (!r->file || r->file < (const char *)buf || r->file >= end || !r->file[0] ||
      !memchr(r->file, 0, (size_t)(end - r->file))) {
    fprintf(stderr, "RunRewritten file escapes the buffer\n");
    return 1;
  }
  if (!r->argv_packed || r->argc == 0) {
    fprintf(stderr, "RunRewritten without argv accepted\n");
    return 1;
  }
  p = r->argv_packed;
  for (size_t i = 0; i < r->argc; i++) {
    const char *nul;
    if (p < (const char *)buf || p >= end || !(nul = memchr(p, 0, (size_t)(end - p)))) {
      fprintf(stderr, "RunRewritten argv escapes the buffer\n");
      return 1;
    }
    p = nul + 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 200000;
  unsigned char buf[512];
  long accepted = 0, rewritten = 0;

  for (long i = 0; i < iterations; i++) {
    const char *seed = seeds[rnd() % (sizeof seeds / sizeof *seeds)];
    size_t len = strlen(seed), at;
    unsigned char *heap;
    struct escalate_response r;
    struct exec_result res;

    memcpy(buf, seed, len);
    mutate(buf, &len, sizeof buf);
    /* Exactly-sized heap copy so ASan catches any read past the frame. */
    heap = malloc(len ? len : 1);
    memcpy(heap, buf, len);
    if (!json_parse_escalate_response(heap, len, &r, &at)) {
      accepted++;
      if (r.action == ACTION_DENY && r.reason &&
          (r.reason < (char *)heap || r.reason + r.reason_len >= (char *)heap + len ||
           r.reason[r.reason_len] != '\0')) {
        fprintf(stderr, "reason escapes the buffer\n");
        return 1;
      }
      /* [ext] shell: absolute, NUL-terminated inside the frame. */
      if (r.shell &&
          (r.shell < (char *)heap || r.shell >= (char *)heap + len || r.shell[0] != '/' ||
           !memchr(r.shell, 0, (size_t)((char *)heap + len - r.shell)))) {
        fprintf(stderr, "shell escapes the buffer or is not absolute\n");
        return 1;
      }
      if (r.action == ACTION_RUN_REWRITTEN) {
        rewritten++;
        if (check_rewritten(&r, heap, len)) return 1;
      }
    } else if (at > len) {
      fprintf(stderr, "error offset %zu beyond %zu\n", at, len);
      return 1;
    }
    memcpy(heap, buf, len);
    if (json_parse_exec_result(heap, len, &res, &at) && at > len) {
      fprintf(stderr, "error offset %zu beyond %zu\n", at, len);
      return 1;
    }
    free(heap);
    /* Writer: random bytes. */
    len = rnd() % 64;
    for (size_t k = 0; k < len; k++)
      buf[k] = (unsigned char)rnd();
    if (check_writer(buf, len)) return 1;
  }
  printf(
      "fuzz_json: %ld iterations, %ld mutated responses accepted (%ld RunRewritten), no faults\n",
      iterations, accepted, rewritten);
  return 0;
}
