/* SHA-256 over OpenSSL's libcrypto, for content hashes of playbook sources, manifests and
 * webhook bodies, and the hex form HMAC signatures share (hmac.h). */
#ifndef SPINE_SHA256_H
#define SPINE_SHA256_H

#include <openssl/types.h>
#include <stddef.h>

/* Writes the 64 lowercase hex digits and a NUL of SHA-256(data) into hex[65]. */
void spine_sha256_hex(const void *data, size_t len, char hex[65]);
/* Writes a 32-byte digest as 64 lowercase hex digits and a NUL into hex[65]. */
void spine_sha256_to_hex(const unsigned char digest[32], char hex[65]);

/* Incremental SHA-256: init, update any number of times, final. init allocates libcrypto's
 * context and final frees it, so every init must be followed by final. */
typedef struct spine_sha256 {
  EVP_MD_CTX *ctx; /* from init until final */
} spine_sha256;
void spine_sha256_init(spine_sha256 *s);
void spine_sha256_update(spine_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; `s` must be initialised again before reuse. */
void spine_sha256_final(spine_sha256 *s, unsigned char digest[32]);

#endif
