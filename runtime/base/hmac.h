/* HMAC-SHA256 (RFC 2104) over libcrypto for webhook signatures, and constant-time comparisons
 * of a received hex signature or token. Owns nothing; keys and digests are never logged here. */
#ifndef SPINE_HMAC_H
#define SPINE_HMAC_H

#include <stddef.h>

/* Writes HMAC-SHA256(key, msg) into mac[32]. Keys longer than 64 bytes are hashed first. */
void spine_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char mac[32]);
/* The same as 64 lowercase hex digits and a NUL in hex[65]. */
void spine_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                           char hex[65]);
/* 1 when `sig` (exactly `sig_len` bytes: 64 hex digits, either case) is HMAC-SHA256(key, msg),
 * else 0. The comparison takes the same time wherever the first difference is. */
int spine_hmac_sha256_verify(const void *key, size_t key_len, const void *msg, size_t msg_len,
                             const char *sig, size_t sig_len);
/* 1 when a[a_len] and b[b_len] are the same bytes, else 0. Takes the same time wherever the
 * first difference is (only the lengths may show): for comparing signatures and tokens. */
int spine_hmac_equal(const void *a, size_t a_len, const void *b, size_t b_len);

#endif
