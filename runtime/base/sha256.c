/* SHA-256 as a thin wrapper over libcrypto's EVP digests: OpenSSL is linked for TLS anyway, and
 * its implementation is audited and uses the CPU's SHA extensions. Owns only the incremental
 * state's context, from init to final. Not for comparing secrets: hmac.c does that. */
#include "sha256.h"

#include <openssl/evp.h>
#include <stdlib.h>

#include "log.h"

/* libcrypto fails here only when it cannot allocate: a wrong hash would be recorded as a
 * playbook's version, so stop rather than go on with one. */
static void failed(const char *what) {
  spine_log_error("sha256", "libcrypto failed (out of memory?)", "call", what, NULL);
  abort();
}

void spine_sha256_to_hex(const unsigned char digest[32], char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[digest[i] >> 4];
    hex[2 * i + 1] = digits[digest[i] & 0xf];
  }
  hex[64] = '\0';
}

void spine_sha256_hex(const void *data, size_t len, char hex[65]) {
  unsigned char digest[32];
  if (!EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL)) failed("EVP_Digest");
  spine_sha256_to_hex(digest, hex);
}

void spine_sha256_init(spine_sha256 *s) {
  s->ctx = EVP_MD_CTX_new();
  if (!s->ctx || !EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL)) failed("EVP_DigestInit_ex");
}

void spine_sha256_update(spine_sha256 *s, const void *data, size_t len) {
  if (!EVP_DigestUpdate(s->ctx, data, len)) failed("EVP_DigestUpdate");
}

void spine_sha256_final(spine_sha256 *s, unsigned char digest[32]) {
  int ok = EVP_DigestFinal_ex(s->ctx, digest, NULL);
  EVP_MD_CTX_free(s->ctx);
  s->ctx = NULL;
  if (!ok) failed("EVP_DigestFinal_ex");
}
