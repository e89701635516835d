/* A growable byte buffer, reused across operations to avoid allocation on hot paths.
 * The owner frees it with spine_buf_free(); data is always NUL-terminated when len > 0. */
#ifndef SPINE_BUF_H
#define SPINE_BUF_H

#include <stddef.h>

#include "err.h"

typedef struct spine_buf {
  char *data;
  size_t len;
  size_t cap;
} spine_buf;

#define SPINE_BUF_INIT                                                                             \
  { NULL, 0, 0 }

/* Ensures room for `extra` more bytes plus a NUL. Returns 0 or SPINE_ENOMEM. */
int spine_buf_reserve(spine_buf *b, size_t extra);
int spine_buf_append(spine_buf *b, const void *data, size_t len);
int spine_buf_puts(spine_buf *b, const char *s);
int spine_buf_putc(spine_buf *b, char c);
int spine_buf_printf(spine_buf *b, const char *fmt, ...) SPINE_PRINTF(2, 3);
/* Empties the buffer, keeping its memory. */
void spine_buf_reset(spine_buf *b);
void spine_buf_free(spine_buf *b);
/* Borrowed: "" when empty. Valid until the next change to the buffer. */
const char *spine_buf_str(const spine_buf *b);
/* Appends the whole file at `path` (at most `max` bytes; blocking: for start-up, never on the
 * loop). Returns 0, SPINE_EIO (unreadable, or larger than max; e names the path) or
 * SPINE_ENOMEM. */
int spine_buf_read_file(spine_buf *b, const char *path, size_t max, spine_err *e);

/* An array of `*cap` elements of `size` bytes grown (doubling, at least 8) to hold `need`:
 * returns it, *cap updated. For small control arrays: aborts when out of memory. */
void *spine_buf_grow_array(void *p, int *cap, int need, size_t size);

#endif
