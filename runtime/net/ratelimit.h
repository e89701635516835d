/* Token buckets by source address, for limits on what one client may send (the webhook route's
 * per-address limit): a table of at most `sources` buckets, the least recently seen one reused
 * for a new source, so clients with many addresses cannot grow it. Times are the caller's
 * (uv_now): nothing here reads a clock. One thread. */
#ifndef SPINE_RATELIMIT_H
#define SPINE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

typedef struct spine_ratelimit spine_ratelimit;

typedef struct spine_ratelimit_opts {
  uint32_t rate;   /* tokens per period; 0 = no limit */
  uint64_t per_ms; /* the period: 1000 ("N/s"), 60000 ("N/m") or 3600000 ("N/h") */
  uint32_t burst;  /* the bucket's size, what a source may send at once (0: rate) */
  size_t sources;  /* buckets kept at most (0: 10000) */
} spine_ratelimit_opts;

/* Parses "N/s", "N/m", "N/h" (N from 1 to 1000000) or "off" (rate 0) into o->rate and o->per_ms.
 * 0, or SPINE_EINVAL naming `name` in `e`. */
int spine_ratelimit_parse(const char *s, const char *name, spine_ratelimit_opts *o, spine_err *e);

/* Returns a new limiter, or NULL without memory; free with spine_ratelimit_free(). */
spine_ratelimit *spine_ratelimit_new(const spine_ratelimit_opts *o);
void spine_ratelimit_free(spine_ratelimit *rl);

/* The bucket key of an address: IPv4 (also IPv4-mapped IPv6) whole, IPv6 by its /64 prefix,
 * which one host is commonly given whole. */
void spine_ratelimit_key(const struct sockaddr_storage *addr, unsigned char key[16]);

/* Takes a token from the bucket of `key` at `now_ms` (a new source starts with a full bucket).
 * Returns 0 when one was taken, else the milliseconds until the bucket holds one again (>= 1):
 * nothing is taken then. */
uint64_t spine_ratelimit_take(spine_ratelimit *rl, const unsigned char key[16], uint64_t now_ms);

/* The sources the table holds now (at most opts.sources). */
size_t spine_ratelimit_sources(const spine_ratelimit *rl);

#endif
