/* SHA-256, for content hashes of playbook sources and for HMAC (hmac.h). */
#ifndef SPINE_SHA256_H
#define SPINE_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 64 lowercase hex digits and a NUL of SHA-256(data) into hex[65]. */
void spine_sha256_hex(const void *data, size_t len, char hex[65]);

/* Incremental SHA-256 (HMAC hashes a key block, then the message): init, update any number
 * of times, final. The caller embeds the state; nothing is allocated. */
typedef struct spine_sha256 {
  uint32_t h[8];
  unsigned char block[64];
  size_t fill;  /* bytes waiting in block */
  uint64_t len; /* bytes hashed so far */
} spine_sha256;
void spine_sha256_init(spine_sha256 *s);
void spine_sha256_update(spine_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; `s` must be initialised again before reuse. */
void spine_sha256_final(spine_sha256 *s, unsigned char digest[32]);

#endif
