/* Base64 (base64.h). */
#include "base64.h"

#include <stdint.h>

static const char std_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t spine_base64_encode(const unsigned char *in, size_t n, int url, int pad, char *out) {
  const char *abc = url ? url_abc : std_abc;
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = abc[w >> 18 & 63];
    out[o++] = abc[w >> 12 & 63];
    out[o++] = abc[w >> 6 & 63];
    out[o++] = abc[w & 63];
  }
  if (i < n) {
    uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    out[o++] = abc[w >> 18 & 63];
    out[o++] = abc[w >> 12 & 63];
    if (i + 1 < n) out[o++] = abc[w >> 6 & 63];
    if (pad) {
      if (i + 1 >= n) out[o++] = '=';
      out[o++] = '=';
    }
  }
  out[o] = '\0';
  return o;
}

/* The value of a base64url character, or -1. */
static int url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

long spine_base64_url_decode(const char *s, size_t n, unsigned char *out) {
  if (n % 4 == 1) return -1;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = url_value((unsigned char)s[i]);
    if (v < 0) return -1;
    acc = (acc << 6 | (uint32_t)v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  if (acc & ((1u << bits) - 1)) return -1; /* bits left over must be zero */
  return (long)o;
}
