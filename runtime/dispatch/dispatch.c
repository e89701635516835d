/* Variant assignment (dispatch.h): SHA-256 of "salt\nsubject", its first 64 bits modulo
 * 10,000. The hash is part of the contract: changing it would move every running experiment's
 * subjects, so it must never change. */
#include "dispatch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sha256.h"

int spine_dispatch_bucket(const char *salt, const char *subject) {
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, salt);
  spine_buf_putc(&b, '\n');
  spine_buf_puts(&b, subject);
  char hex[65];
  spine_sha256_hex(b.data ? b.data : "", b.len, hex);
  spine_buf_free(&b);
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    char c = hex[i];
    v = (v << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return (int)(v % SPINE_MANIFEST_BUCKETS);
}

void spine_dispatch_route(const spine_manifest *m, const char *subject, spine_route *out) {
  out->bucket = spine_dispatch_bucket(m->experiment ? m->experiment : m->process, subject);
  out->overridden = 0;
  out->variant = NULL;
  for (int i = 0; i < m->noverrides; i++)
    if (!strcmp(m->overrides[i].subject, subject)) {
      out->variant = spine_manifest_variant_named(m, m->overrides[i].variant);
      out->overridden = out->variant != NULL;
      if (out->variant) return;
    }
  int upto = 0;
  for (int i = 0; i < m->nvariants; i++) {
    upto += m->variants[i].buckets;
    if (out->bucket < upto) {
      out->variant = &m->variants[i];
      return;
    }
  }
  abort(); /* a validated manifest's buckets sum to 10,000 */
}
