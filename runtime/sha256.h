/* SHA-256, for content hashes of playbook sources. */
#ifndef SPINE_SHA256_H
#define SPINE_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 64 lowercase hex digits and a NUL of SHA-256(data) into hex[65]. */
void spine_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
