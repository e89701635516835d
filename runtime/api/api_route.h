/* The pieces of the HTTP API's routing that read what a client sent, pure functions (fuzzed by
 * tests/fuzz/fuzz_api_route.c): a path against a pattern with {name} segments, and the pairs of
 * a query string, percent-decoded. Every input may be hostile: lengths are bounded, nothing
 * allocates. */
#ifndef SPINE_API_ROUTE_H
#define SPINE_API_ROUTE_H

#include <stddef.h>

#define SPINE_API_ROUTE_CAPS    2   /* {name} segments a pattern may have */
#define SPINE_API_ROUTE_CAP_MAX 200 /* bytes of one captured segment */

/* Matches `path` (len bytes, as sent: not decoded) against `pattern` ("/v1/workflows/{id}/
 * cancel"): literal segments must be equal, each {name} takes one non-empty segment of letters,
 * digits and . _ : - (at most SPINE_API_ROUTE_CAP_MAX bytes) into caps[i]. Returns the number
 * of captures, or -1 when the path does not match. */
int spine_api_route_match(const char *pattern, const char *path, size_t len,
                          char caps[SPINE_API_ROUTE_CAPS][SPINE_API_ROUTE_CAP_MAX + 1]);

/* Reads the next "key=value" pair of the query string at *p (up to end), percent-decoding both
 * ('+' is a space) into key[ksize] and value[vsize]. Returns 1 with *p past the pair, 0 at the
 * end, or -1 for a pair that is too long, has a bad escape or decodes to a NUL or a control
 * character. */
int spine_api_route_query_next(const char **p, const char *end, char *key, size_t ksize,
                               char *value, size_t vsize);

#endif
