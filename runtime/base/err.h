/* Error codes and the error record shared by every module.
 * Codes are 0 or negative: libuv's UV_E* for system failures, ours SPINE_E* (below -5000).
 * Filling an error never allocates. */
#ifndef SPINE_ERR_H
#define SPINE_ERR_H

#include <stddef.h>

#if defined(__GNUC__)
#define SPINE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPINE_PRINTF(f, a)
#endif

/* name, kind (the Lua-visible error kind), text */
#define SPINE_ERRNO_MAP(XX)                                                                        \
  XX(EINVAL, "invalid_argument", "invalid argument")                                               \
  XX(ENOTFOUND, "not_found", "not found")                                                          \
  XX(ECONFLICT, "conflict", "conflict")                                                            \
  XX(ETRANSITION, "invalid_transition", "invalid transition")                                      \
  XX(EREJECTED, "rejected", "rejected")                                                            \
  XX(ETRANSIENT, "transient", "transient failure")                                                 \
  XX(ETIMEOUT, "timeout", "timed out")                                                             \
  XX(EDB, "database", "database error")                                                            \
  XX(ENONDET, "non_determinism", "non-determinism")                                                \
  XX(ELIMIT, "limit", "resource limit exceeded")                                                   \
  XX(ESYNTAX, "syntax", "syntax error")                                                            \
  XX(ERUNTIME, "runtime", "runtime error")                                                         \
  XX(EBUSINESS, "business", "business failure")                                                    \
  XX(ECANCELLED, "cancelled", "cancelled")                                                         \
  XX(EIO, "io", "input/output error")                                                              \
  XX(ENOMEM, "memory", "out of memory")                                                            \
  XX(EUSAGE, "usage", "usage error")                                                               \
  XX(ELOST, "lost_claim", "claim lost to another worker")

typedef enum {
  SPINE_ERR_BASE_ = -5000,
#define XX(name, kind, text) SPINE_##name,
  SPINE_ERRNO_MAP(XX)
#undef XX
} spine_errno;

typedef struct spine_err {
  int code;        /* SPINE_E* or UV_E*; 0 = none */
  char where[128]; /* "manifests/activation.json:7" */
  char field[64];  /* "variants[1].weight" */
  char msg[256];   /* never a secret */
} spine_err;

/* Fills `e` (may be NULL); returns `code`. `where` and `field` may be NULL. */
int spine_err_set(spine_err *e, int code, const char *where, const char *field, const char *fmt,
                  ...) SPINE_PRINTF(5, 6);
/* Clears `e` (may be NULL). */
void spine_err_clear(spine_err *e);
/* Static text for a code ("invalid argument"); UV_E* codes map to uv_strerror. */
const char *spine_err_text(int code);
/* Static Lua-visible kind for a code ("invalid_argument"); "internal" for unknown codes. */
const char *spine_err_kind(int code);
/* Formats "where: field: msg" into out (always NUL-terminated). Returns out. */
const char *spine_err_format(const spine_err *e, char *out, size_t size);

#endif
