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

int spine_log_json_string(spine_buf *b, const char *s, size_t len) {
  int rc = spine_buf_putc(b, '"');
  for (size_t i = 0; i < len && rc == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"':
        rc = spine_buf_puts(b, "\\\"");
        break;
      case '\\':
        rc = spine_buf_puts(b, "\\\\");
        break;
      case '\n':
        rc = spine_buf_puts(b, "\\n");
        break;
      case '\r':
        rc = spine_buf_puts(b, "\\r");
        break;
      case '\t':
        rc = spine_buf_puts(b, "\\t");
        break;
      default:
        if (c < 0x20)
          rc = spine_buf_printf(b, "\\u%04x", c);
        else
          rc = spine_buf_putc(b, (char)c);
    }
  }
  return rc ? rc : spine_buf_putc(b, '"');
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
