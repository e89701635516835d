/* HMAC-SHA256 and constant-time comparisons as thin wrappers over libcrypto (EVP_Q_mac,
 * CRYPTO_memcmp), which wipes the key pads it derives. Owns nothing; never logs a key, a
 * message or a digest. */
#include "hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include "log.h"
#include "sha256.h"

void spine_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char mac[32]) {
  size_t n = 0;
  /* "" for an empty key: libcrypto reads a NULL key as "no key given". */
  if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key_len ? key : "", key_len, msg, msg_len, mac,
                 32, &n) ||
      n != 32) {
    /* Only out of memory: a wrong signature would go out or let a forged one in, so stop. */
    spine_log_error("hmac", "libcrypto failed (out of memory?)", "call", "EVP_Q_mac", NULL);
    abort();
  }
}

void spine_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                           char hex[65]) {
  unsigned char mac[32];
  spine_hmac_sha256(key, key_len, msg, msg_len, mac);
  spine_sha256_to_hex(mac, hex);
}

int spine_hmac_sha256_verify(const void *key, size_t key_len, const void *msg, size_t msg_len,
                             const char *sig, size_t sig_len) {
  if (!sig || sig_len != 64) return 0;
  unsigned char mac[32], got[32];
  spine_hmac_sha256(key, key_len, msg, msg_len, mac);
  /* Decode all of `sig` (its timing shows only the sender's own digits), noting bad ones,
   * then compare in constant time. */
  int bad = 0;
  for (int i = 0; i < 32; i++) {
    int hi = OPENSSL_hexchar2int((unsigned char)sig[2 * i]);
    int lo = OPENSSL_hexchar2int((unsigned char)sig[2 * i + 1]);
    bad |= (hi < 0) | (lo < 0);
    got[i] = (unsigned char)((hi & 0xf) << 4 | (lo & 0xf));
  }
  return (CRYPTO_memcmp(got, mac, sizeof mac) | bad) == 0;
}

int spine_hmac_equal(const void *a, size_t a_len, const void *b, size_t b_len) {
  /* Only the lengths may show, as hmac.h says. */
  return a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0;
}
