/* API tokens (issue 14): `spn_<43 base64url characters>`, 32 random bytes from libcrypto's
 * RAND_bytes. The database keeps the SHA-256 of the token (spine.api_tokens, migration 0012),
 * never the token: `spine tokens create` prints it once. A token has a subject (the actor its
 * requests record) and scopes. Blocking libpq: the CLI, or a worker thread of `spine serve`. */
#ifndef SPINE_API_TOKENS_H
#define SPINE_API_TOKENS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SPINE_API_TOKEN_PREFIX "spn_"

/* Who a request is: the token's id, subject and scopes (comma-separated). */
typedef struct spine_api_principal {
  char token_id[40]; /* "" for a principal not from an API token (single sign-on) */
  char subject[128];
  char scopes[512];
} spine_api_principal;

/* The scopes there are, NULL-terminated: cases:start, workflows:read, workflows:operate,
 * tasks:resolve, intents:apply, admin (admin implies every other). */
extern const char *const spine_api_tokens_scopes[];

/* 1 when `p` may act within `scope`: it has it, or admin. */
int spine_api_tokens_allows(const spine_api_principal *p, const char *scope);

/* Creates a token for `subject` with `scopes` (comma-separated, each one of the scopes above),
 * expiring `expires_ms` from now (0: never). Writes the token (never stored) into token[64] and
 * its id into id[40]. 0, SPINE_EINVAL naming the field (subject, scopes, expires), or
 * SPINE_EDB. */
int spine_api_tokens_create(PGconn *c, const char *subject, const char *scopes, int64_t expires_ms,
                            char token[64], char id[40], spine_err *e);
/* Appends {"tokens": [{id, subject, scopes, created_at, expires_at, revoked_at, last_used_at,
 * status}]} to out (status: active, expired or revoked), newest first. 0 or SPINE_EDB. */
int spine_api_tokens_list(PGconn *c, spine_buf *out, spine_err *e);
/* Revokes token `id` (again: nothing new). 0, SPINE_ENOTFOUND, or SPINE_EDB. */
int spine_api_tokens_revoke(PGconn *c, const char *id, spine_err *e);

/* Checks a bearer token (`len` bytes, as sent): fills *p and notes its use. 0; SPINE_ENOTFOUND
 * with the reason in e (missing, unknown, expired, revoked: answer 401); or SPINE_EDB. The
 * token is looked up by its SHA-256, so no comparison of the secret itself can leak it by
 * timing; the digests are compared again in constant time. */
int spine_api_tokens_check(PGconn *c, const char *bearer, size_t len, spine_api_principal *p,
                           spine_err *e);

#endif
