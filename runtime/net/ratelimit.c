/* Token buckets by source: a fixed array of buckets, a hash index over it and a recency list
 * through it. The index is keyed SipHash-2-4 under a random key, so a client choosing its
 * addresses cannot pile them into one chain; a new source past the table's size takes the least
 * recently seen bucket (an idle source's bucket is full again by then, so forgetting it loses
 * nothing). Allocates only in spine_ratelimit_new. */
#include "ratelimit.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#define MAX_N       1000000   /* rate and burst at most */
#define MAX_SOURCES (1 << 24) /* indices fit an int32_t */

/* Tokens are counted in units of 1/per_ms token: a bucket gains `rate` units a millisecond,
 * holds burst * per_ms at most and a request costs per_ms. Exact integers, no drift. */
typedef struct bucket {
  unsigned char key[16];
  int64_t units;
  uint64_t at;          /* when `units` was last brought up to date */
  int32_t chain;        /* the next bucket in the same index slot; -1: none */
  int32_t older, newer; /* the recency list; -1 at its ends */
} bucket;

struct spine_ratelimit {
  spine_ratelimit_opts o;
  uint64_t k0, k1; /* SipHash key */
  bucket *b;
  size_t used;
  int32_t *slot; /* the index: mask + 1 heads, a power of two at least twice the sources */
  size_t mask;
  int32_t newest, oldest;
};

int spine_ratelimit_parse(const char *s, const char *name, spine_ratelimit_opts *o, spine_err *e) {
  if (s && !strcmp(s, "off")) {
    o->rate = 0;
    o->per_ms = 1000;
    return 0;
  }
  char *end = NULL;
  unsigned long n = s && *s >= '0' && *s <= '9' ? strtoul(s, &end, 10) : 0;
  uint64_t per = !end                 ? 0
                 : !strcmp(end, "/s") ? 1000
                 : !strcmp(end, "/m") ? 60000
                 : !strcmp(end, "/h") ? 3600000
                                      : 0;
  if (n < 1 || n > MAX_N || !per)
    return spine_err_set(e, SPINE_EINVAL, NULL, name,
                         "\"%s\" is not a rate (expected N/s, N/m or N/h, N from 1 to %d, or off)",
                         s ? s : "", MAX_N);
  o->rate = (uint32_t)n;
  o->per_ms = per;
  return 0;
}

static uint64_t rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);                                      \
    v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;                                                         \
    v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;                                                         \
    v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);                                      \
  } while (0)

/* SipHash-2-4 of a 16-byte key (words in host order: the index is private to the process). */
static uint64_t hash(const spine_ratelimit *rl, const unsigned char key[16]) {
  uint64_t v0 = rl->k0 ^ 0x736f6d6570736575ull, v1 = rl->k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = rl->k0 ^ 0x6c7967656e657261ull, v3 = rl->k1 ^ 0x7465646279746573ull;
  uint64_t m[3];
  memcpy(m, key, 16);
  m[2] = (uint64_t)16 << 56; /* the length, in the last block */
  for (int i = 0; i < 3; i++) {
    v3 ^= m[i];
    SIPROUND;
    SIPROUND;
    v0 ^= m[i];
  }
  v2 ^= 0xff;
  for (int i = 0; i < 4; i++)
    SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

spine_ratelimit *spine_ratelimit_new(const spine_ratelimit_opts *o) {
  spine_ratelimit *rl = calloc(1, sizeof *rl);
  if (!rl) return NULL;
  rl->o = *o;
  if (!rl->o.per_ms) rl->o.per_ms = 1000;
  if (rl->o.rate > MAX_N) rl->o.rate = MAX_N;
  if (!rl->o.burst) rl->o.burst = rl->o.rate;
  if (rl->o.burst > MAX_N) rl->o.burst = MAX_N;
  if (!rl->o.sources) rl->o.sources = 10000;
  if (rl->o.sources > MAX_SOURCES) rl->o.sources = MAX_SOURCES;
  size_t slots = 2;
  while (slots < 2 * rl->o.sources)
    slots *= 2;
  rl->mask = slots - 1;
  rl->b = malloc(rl->o.sources * sizeof *rl->b);
  rl->slot = malloc(slots * sizeof *rl->slot);
  if (!rl->b || !rl->slot) {
    spine_ratelimit_free(rl);
    return NULL;
  }
  for (size_t i = 0; i < slots; i++)
    rl->slot[i] = -1;
  rl->newest = rl->oldest = -1;
  uint64_t k[2];
  if (getrandom(k, sizeof k, 0) != (ssize_t)sizeof k) {
    /* no entropy: still a different key per process and start */
    k[0] = uv_hrtime() * 0x9E3779B97F4A7C15ull;
    k[1] = (uint64_t)(uintptr_t)rl ^ rotl(k[0], 29);
  }
  rl->k0 = k[0];
  rl->k1 = k[1];
  return rl;
}

void spine_ratelimit_free(spine_ratelimit *rl) {
  if (!rl) return;
  free(rl->b);
  free(rl->slot);
  free(rl);
}

void spine_ratelimit_key(const struct sockaddr_storage *addr, unsigned char key[16]) {
  static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  memset(key, 0, 16);
  if (addr->ss_family == AF_INET) {
    memcpy(key, v4mapped, 12);
    memcpy(key + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
  } else if (addr->ss_family == AF_INET6) {
    const unsigned char *a = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
    memcpy(key, a, memcmp(a, v4mapped, 12) ? 8 : 16);
  }
}

static void unlist(spine_ratelimit *rl, int32_t i) {
  bucket *b = &rl->b[i];
  if (b->older >= 0)
    rl->b[b->older].newer = b->newer;
  else
    rl->oldest = b->newer;
  if (b->newer >= 0)
    rl->b[b->newer].older = b->older;
  else
    rl->newest = b->older;
}

static void list_newest(spine_ratelimit *rl, int32_t i) {
  bucket *b = &rl->b[i];
  b->older = rl->newest;
  b->newer = -1;
  if (rl->newest >= 0)
    rl->b[rl->newest].newer = i;
  else
    rl->oldest = i;
  rl->newest = i;
}

/* The bucket of `key` (moved to the newest end), or a new one with a full bucket. */
static bucket *source(spine_ratelimit *rl, const unsigned char key[16], uint64_t now_ms) {
  int32_t *head = &rl->slot[hash(rl, key) & rl->mask];
  for (int32_t i = *head; i >= 0; i = rl->b[i].chain) {
    if (memcmp(rl->b[i].key, key, 16)) continue;
    if (rl->newest != i) {
      unlist(rl, i);
      list_newest(rl, i);
    }
    return &rl->b[i];
  }
  int32_t i;
  if (rl->used < rl->o.sources) {
    i = (int32_t)rl->used++;
  } else { /* the least recently seen source goes */
    i = rl->oldest;
    int32_t *p = &rl->slot[hash(rl, rl->b[i].key) & rl->mask];
    while (*p != i)
      p = &rl->b[*p].chain;
    *p = rl->b[i].chain;
    unlist(rl, i);
  }
  bucket *b = &rl->b[i];
  memcpy(b->key, key, 16);
  b->units = (int64_t)rl->o.burst * (int64_t)rl->o.per_ms;
  b->at = now_ms;
  b->chain = *head;
  *head = i;
  list_newest(rl, i);
  return b;
}

uint64_t spine_ratelimit_take(spine_ratelimit *rl, const unsigned char key[16], uint64_t now_ms) {
  if (!rl->o.rate) return 0;
  bucket *b = source(rl, key, now_ms);
  int64_t full = (int64_t)rl->o.burst * (int64_t)rl->o.per_ms, cost = (int64_t)rl->o.per_ms;
  if (now_ms > b->at) {
    uint64_t elapsed = now_ms - b->at;
    /* elapsed < full <= 3.6e12 here, and rate <= 1e6: the product stays below 2^63 */
    if (elapsed >= (uint64_t)full || b->units + (int64_t)elapsed * rl->o.rate >= full)
      b->units = full;
    else
      b->units += (int64_t)elapsed * rl->o.rate;
    b->at = now_ms;
  }
  if (b->units >= cost) {
    b->units -= cost;
    return 0;
  }
  return (uint64_t)((cost - b->units + rl->o.rate - 1) / rl->o.rate);
}

size_t spine_ratelimit_sources(const spine_ratelimit *rl) {
  return rl->used;
}
