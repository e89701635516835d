/* Base64 (RFC 4648): the standard and URL-safe alphabets, padded or not, and the strict
 * base64url reading JWS needs (RFC 7515 §2). Pure functions; nothing allocates. */
#ifndef SPINE_BASE64_H
#define SPINE_BASE64_H

#include <stddef.h>

/* Room spine_base64_encode needs for n bytes, its NUL included. */
#define SPINE_BASE64_SIZE(n) (4 * ((n) + 2) / 3 + 3)

/* Encodes in[n] into out (room for SPINE_BASE64_SIZE(n)) with the URL-safe alphabet ("-_") or
 * the standard one ("+/"), with '=' padding or none; NUL-terminates, returns the length. */
size_t spine_base64_encode(const unsigned char *in, size_t n, int url, int pad, char *out);

/* Decodes base64url text s[n] as JWS writes it: no padding, no other character, and the bits
 * past the last byte zero, so each value has one text. Writes at most n * 3 / 4 bytes to out;
 * returns how many, or -1. */
long spine_base64_url_decode(const char *s, size_t n, unsigned char *out);

#endif
