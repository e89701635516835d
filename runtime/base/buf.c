/* Growable byte buffer. Owns its memory; never shrinks until freed. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spine_buf_reserve(spine_buf *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) return SPINE_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int spine_buf_append(spine_buf *b, const void *data, size_t len) {
  if (spine_buf_reserve(b, len)) return SPINE_ENOMEM;
  if (len) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int spine_buf_puts(spine_buf *b, const char *s) {
  return spine_buf_append(b, s, strlen(s));
}

int spine_buf_putc(spine_buf *b, char c) {
  return spine_buf_append(b, &c, 1);
}

int spine_buf_printf(spine_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return SPINE_EINVAL;
  if (spine_buf_reserve(b, (size_t)n)) return SPINE_ENOMEM;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void spine_buf_reset(spine_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void spine_buf_free(spine_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

const char *spine_buf_str(const spine_buf *b) {
  return b->len ? b->data : "";
}

int spine_buf_read_file(spine_buf *b, const char *path, size_t max, spine_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return spine_err_set(e, SPINE_EIO, path, NULL, "cannot read the file");
  int rc = 0;
  size_t start = b->len;
  while (!rc) {
    rc = spine_buf_reserve(b, 4096);
    if (rc) break;
    size_t n = fread(b->data + b->len, 1, b->cap - b->len - 1, f);
    b->len += n;
    b->data[b->len] = '\0';
    if (b->len - start > max)
      rc = spine_err_set(e, SPINE_EIO, path, NULL, "larger than %zu bytes", max);
    else if (n == 0)
      break;
  }
  if (!rc && ferror(f)) rc = spine_err_set(e, SPINE_EIO, path, NULL, "cannot read the file");
  fclose(f);
  return rc == SPINE_ENOMEM ? spine_err_set(e, rc, path, NULL, "out of memory") : rc;
}

void *spine_buf_grow_array(void *p, int *cap, int need, size_t size) {
  if (need <= *cap) return p;
  int n = *cap ? *cap * 2 : 8;
  while (n < need)
    n *= 2;
  void *q = realloc(p, (size_t)n * size);
  if (!q) abort(); /* small control arrays: out of memory here is not recoverable */
  *cap = n;
  return q;
}
