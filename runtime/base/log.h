/* Structured logs: one JSON object per line on stderr, with the workflow and trace ids when a
 * workflow logs. Never logs secrets: callers pass only what may be shown. */
#ifndef SPINE_LOG_H
#define SPINE_LOG_H

#include <stddef.h>

typedef enum { SPINE_LOG_DEBUG, SPINE_LOG_INFO, SPINE_LOG_WARN, SPINE_LOG_ERROR } spine_log_level;

/* The lowest level written (default INFO; SPINE_LOG_LEVEL=debug|info|warn|error). */
void spine_log_set_level(spine_log_level level);
spine_log_level spine_log_get_level(void);
/* Parses "debug"... into *out; returns 0 or -1. */
int spine_log_parse_level(const char *s, spine_log_level *out);
const char *spine_log_level_name(spine_log_level level);

/* Writes {"ts","level","component","msg", k1: v1, ...}; the key/value strings end with NULL.
 * A value NULL is skipped. */
void spine_log(spine_log_level level, const char *component, const char *msg, ...);
/* The same with already-encoded JSON members (`,"k":v...` or ""), for callers with fields. */
void spine_log_raw(spine_log_level level, const char *component, const char *msg,
                   const char *json_members, size_t len);

#define spine_log_info(c, m, ...)  spine_log(SPINE_LOG_INFO, c, m, __VA_ARGS__)
#define spine_log_warn(c, m, ...)  spine_log(SPINE_LOG_WARN, c, m, __VA_ARGS__)
#define spine_log_error(c, m, ...) spine_log(SPINE_LOG_ERROR, c, m, __VA_ARGS__)

/* Appends `s` as a JSON string to the buffer: the one escaper of Spine's JSON (the codec's
 * canonical text, logs, CLI and HTTP output). Escapes '"', '\\' and bytes below 0x20 (\b \t \n
 * \f \r, else \u00XX); other bytes pass through. Returns 0 or SPINE_ENOMEM (output then cut). */
struct spine_buf;
int spine_log_json_string(struct spine_buf *b, const char *s, size_t len);

#endif
