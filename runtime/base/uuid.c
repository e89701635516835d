/* UUIDs from a per-thread xoshiro256** generator seeded by getrandom(): ids need
 * uniqueness, not secrecy, and a system call per id would cost more than the id. Per thread:
 * `spine serve` also starts cases in a worker thread (the outbox relay's on_events). */
#define _DEFAULT_SOURCE
#include "uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static _Thread_local uint64_t st[4];
static _Thread_local int seeded;

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static uint64_t next(void) {
  if (!seeded) {
    if (getrandom(st, sizeof st, 0) != (ssize_t)sizeof st) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      st[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
      st[1] = (uint64_t)ts.tv_sec * 0x9E3779B97F4A7C15ull;
      st[2] = st[0] * 0xBF58476D1CE4E5B9ull + 1;
      st[3] = st[1] ^ 0x94D049BB133111EBull;
    }
    seeded = 1;
  }
  uint64_t result = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
  st[2] ^= st[0];
  st[3] ^= st[1];
  st[1] ^= st[2];
  st[0] ^= st[3];
  st[2] ^= t;
  st[3] = rotl(st[3], 45);
  return result;
}

void spine_uuid(char out[37]) {
  uint64_t a = next(), b = next();
  a = (a & ~0xF000ull) | 0x4000ull;       /* version 4 */
  b = (b & ~(3ull << 62)) | (2ull << 62); /* variant 10 */
  snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
           (unsigned)((a >> 16) & 0xFFFF), (unsigned)(a & 0xFFFF), (unsigned)(b >> 48),
           (unsigned long long)(b & 0xFFFFFFFFFFFFull));
}

void spine_uuid_ordered(char out[37]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  uint64_t a = (ms << 16) | 0x7000ull | (next() & 0xFFFull); /* version 7, 12 random bits */
  uint64_t b = (next() & ~(3ull << 62)) | (2ull << 62);      /* variant 10, 62 random bits */
  snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
           (unsigned)((a >> 16) & 0xFFFF), (unsigned)(a & 0xFFFF), (unsigned)(b >> 48),
           (unsigned long long)(b & 0xFFFFFFFFFFFFull));
}

void spine_uuid_trace_id(char out[33]) {
  snprintf(out, 33, "%016llx%016llx", (unsigned long long)next(), (unsigned long long)next());
}
