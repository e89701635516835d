/* HMAC-SHA256 over the incremental SHA-256 of sha256.c: H((K ^ opad) || H((K ^ ipad) || m)).
 * Owns nothing; the key block lives on the stack and is wiped before returning. */
#include "hmac.h"

#include <string.h>

#include "sha256.h"

void spine_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char mac[32]) {
  unsigned char k[64], pad[64], inner[32];
  memset(k, 0, sizeof k);
  spine_sha256 s;
  if (key_len > sizeof k) {
    spine_sha256_init(&s);
    spine_sha256_update(&s, key, key_len);
    spine_sha256_final(&s, k);
  } else if (key_len) {
    memcpy(k, key, key_len);
  }
  for (size_t i = 0; i < sizeof k; i++)
    pad[i] = k[i] ^ 0x36;
  spine_sha256_init(&s);
  spine_sha256_update(&s, pad, sizeof pad);
  spine_sha256_update(&s, msg, msg_len);
  spine_sha256_final(&s, inner);
  for (size_t i = 0; i < sizeof k; i++)
    pad[i] = k[i] ^ 0x5c;
  spine_sha256_init(&s);
  spine_sha256_update(&s, pad, sizeof pad);
  spine_sha256_update(&s, inner, sizeof inner);
  spine_sha256_final(&s, mac);
  /* volatile: the compiler may not drop the wipe of a dead buffer */
  volatile unsigned char *v = k;
  for (size_t i = 0; i < sizeof k; i++)
    v[i] = 0;
}

void spine_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                           char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char mac[32];
  spine_hmac_sha256(key, key_len, msg, msg_len, mac);
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[mac[i] >> 4];
    hex[2 * i + 1] = digits[mac[i] & 0xf];
  }
  hex[64] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int spine_hmac_sha256_verify(const void *key, size_t key_len, const void *msg, size_t msg_len,
                             const char *sig, size_t sig_len) {
  if (!sig || sig_len != 64) return 0;
  unsigned char mac[32];
  spine_hmac_sha256(key, key_len, msg, msg_len, mac);
  /* Accumulate every difference (and every bad digit) before deciding. */
  unsigned diff = 0;
  for (int i = 0; i < 32; i++) {
    int hi = hexval(sig[2 * i]), lo = hexval(sig[2 * i + 1]);
    diff |= (unsigned)(hi < 0) | (unsigned)(lo < 0);
    diff |= (unsigned)(((hi & 0xf) << 4 | (lo & 0xf)) ^ mac[i]);
  }
  return diff == 0;
}

int spine_hmac_equal(const void *a, size_t a_len, const void *b, size_t b_len) {
  const unsigned char *x = a, *y = b;
  unsigned diff = a_len != b_len;
  /* Walk all of `a` whatever `b` holds; an empty `b` compares against itself (equal only when
   * `a` is empty too, which the lengths decide). */
  for (size_t i = 0; i < a_len; i++)
    diff |= (unsigned)(x[i] ^ (b_len ? y[i % b_len] : x[i]));
  return diff == 0;
}
