/* Error codes and records: formatting only, never allocates. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

static void copy(char *dst, size_t size, const char *src) {
  if (!src) src = "";
  size_t n = strlen(src);
  if (n >= size) n = size - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

int spine_err_set(spine_err *e, int code, const char *where, const char *field, const char *fmt,
                  ...) {
  if (!e) return code;
  e->code = code;
  copy(e->where, sizeof e->where, where);
  copy(e->field, sizeof e->field, field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return code;
}

void spine_err_clear(spine_err *e) {
  if (!e) return;
  e->code = 0;
  e->where[0] = e->field[0] = e->msg[0] = '\0';
}

const char *spine_err_text(int code) {
  switch (code) {
#define XX(name, kind, text)                                                                       \
  case SPINE_##name:                                                                               \
    return text;
    SPINE_ERRNO_MAP(XX)
#undef XX
    case 0:
      return "ok";
    default:
      return code > SPINE_ERR_BASE_ ? uv_strerror(code) : "unknown error";
  }
}

const char *spine_err_kind(int code) {
  switch (code) {
#define XX(name, kind, text)                                                                       \
  case SPINE_##name:                                                                               \
    return kind;
    SPINE_ERRNO_MAP(XX)
#undef XX
    default:
      return "internal";
  }
}

const char *spine_err_format(const spine_err *e, char *out, size_t size) {
  snprintf(out, size, "%s%s%s%s%s", e->where, e->where[0] ? ": " : "", e->field,
           e->field[0] ? ": " : "", e->msg[0] ? e->msg : spine_err_text(e->code));
  return out;
}
