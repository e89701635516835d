/* JSON-lines logging to stderr. One write(2) per line so lines of concurrent processes do not
 * interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

static spine_log_level min_level = SPINE_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void spine_log_set_level(spine_log_level level) {
  min_level = level;
}

spine_log_level spine_log_get_level(void) {
  return min_level;
}

int spine_log_parse_level(const char *s, spine_log_level *out) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, level_names[i])) {
      *out = (spine_log_level)i;
      return 0;
    }
  return -1;
}

const char *spine_log_level_name(spine_log_level level) {
  return level_names[level];
}

/* 0: the byte passes through; else the letter after the backslash ('u' for \u00XX). Bytes
 * >= 0x80 pass through unvalidated: Lua strings from JSON or playbooks are UTF-8 by contract.
 * The short forms (\b \t \n \f \r) are RFC 8259's, as PostgreSQL's jsonb prints them. */
/* clang-format off */
static const char escapes[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    0,   0,   '"', 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   '\\',
};
/* clang-format on */

/* Makes room for n more bytes and the NUL; inline so the common case is one compare. */
static inline int room(spine_buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return 0;
  return spine_buf_reserve(b, n);
}

/* Invariant while copying: cap holds every raw byte not yet written, the closing quote and
 * the NUL, so runs of plain bytes are copied without checks; each escape re-reserves. The
 * codec encodes every recorded string here: keep it one pass. */
int spine_log_json_string(spine_buf *b, const char *s, size_t len) {
  static const char hexdigits[] = "0123456789abcdef";
  if (room(b, len + 2)) return SPINE_ENOMEM;
  b->data[b->len++] = '"';
  size_t run = 0;
  for (size_t i = 0; i < len; i++) {
    char x = escapes[(unsigned char)s[i]];
    if (!x) continue;
    memcpy(b->data + b->len, s + run, i - run);
    b->len += i - run;
    if (room(b, 6 + (len - i - 1) + 1)) return SPINE_ENOMEM;
    char *o = b->data + b->len;
    o[0] = '\\';
    o[1] = x;
    if (x == 'u') {
      unsigned char c = (unsigned char)s[i];
      o[2] = '0';
      o[3] = '0';
      o[4] = hexdigits[c >> 4];
      o[5] = hexdigits[c & 15];
      b->len += 6;
    } else {
      b->len += 2;
    }
    run = i + 1;
  }
  if (len > run) memcpy(b->data + b->len, s + run, len - run);
  b->len += len - run;
  b->data[b->len++] = '"';
  b->data[b->len] = '\0';
  return 0;
}

static void head(spine_buf *b, spine_log_level level, const char *component, const char *msg) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  spine_buf_printf(b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":", when,
                   ts.tv_nsec / 1000000, level_names[level]);
  spine_log_json_string(b, component, strlen(component));
  spine_buf_puts(b, ",\"msg\":");
  spine_log_json_string(b, msg, strlen(msg));
}

static void emit(spine_buf *b) {
  spine_buf_puts(b, "}\n");
  if (b->data) {
    ssize_t n = write(STDERR_FILENO, b->data, b->len);
    (void)n;
  }
  spine_buf_free(b);
}

void spine_log(spine_log_level level, const char *component, const char *msg, ...) {
  if (level < min_level) return;
  spine_buf b = SPINE_BUF_INIT;
  head(&b, level, component, msg);
  va_list ap;
  va_start(ap, msg);
  const char *k;
  while ((k = va_arg(ap, const char *))) {
    const char *v = va_arg(ap, const char *);
    if (!v) continue;
    spine_buf_putc(&b, ',');
    spine_log_json_string(&b, k, strlen(k));
    spine_buf_putc(&b, ':');
    spine_log_json_string(&b, v, strlen(v));
  }
  va_end(ap);
  emit(&b);
}

void spine_log_raw(spine_log_level level, const char *component, const char *msg,
                   const char *json_members, size_t len) {
  if (level < min_level) return;
  spine_buf b = SPINE_BUF_INIT;
  head(&b, level, component, msg);
  spine_buf_append(&b, json_members, len);
  emit(&b);
}
