/* API tokens: made from RAND_bytes, kept as their SHA-256, looked up by it (api_tokens.h). */
#include "api_tokens.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "hmac.h"
#include "pgconn.h"
#include "sha256.h"

const char *const spine_api_tokens_scopes[] = {
    "cases:start", "workflows:read", "workflows:operate", "tasks:resolve", "intents:apply", "admin",
    NULL};

static int known_scope(const char *s, size_t len) {
  for (int i = 0; spine_api_tokens_scopes[i]; i++)
    if (strlen(spine_api_tokens_scopes[i]) == len && !memcmp(spine_api_tokens_scopes[i], s, len))
      return 1;
  return 0;
}

/* 1 when the comma-separated list has `scope` (len bytes). */
static int has(const char *list, const char *scope, size_t len) {
  for (const char *p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == len && !memcmp(p, scope, len)) return 1;
    p += n + (end ? 1 : 0);
  }
  return 0;
}

int spine_api_tokens_allows(const spine_api_principal *p, const char *scope) {
  return has(p->scopes, "admin", 5) || has(p->scopes, scope, strlen(scope));
}

/* "{a,b}" from "a,b" (the scopes were checked: no quotes or braces in them). */
static int scopes_array(const char *scopes, char *out, size_t size, spine_err *e) {
  size_t o = 0;
  int n = 0;
  out[o++] = '{';
  for (const char *p = scopes; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && *p == ' ')
      p++, len--;
    while (len && p[len - 1] == ' ')
      len--;
    if (!known_scope(p, len))
      return spine_err_set(e, SPINE_EINVAL, NULL, "scopes",
                           "unknown scope \"%.*s\" (one of cases:start, workflows:read,"
                           " workflows:operate, tasks:resolve, intents:apply, admin)",
                           (int)(len > 64 ? 64 : len), p);
    if (o + len + 2 >= size)
      return spine_err_set(e, SPINE_EINVAL, NULL, "scopes", "too many scopes");
    if (n++) out[o++] = ',';
    memcpy(out + o, p, len);
    o += len;
    p += (end ? (size_t)(end - p) + 1 : strlen(p));
  }
  if (!n) return spine_err_set(e, SPINE_EINVAL, NULL, "scopes", "give at least one scope");
  out[o++] = '}';
  out[o] = '\0';
  return 0;
}

int spine_api_tokens_create(PGconn *c, const char *subject, const char *scopes, int64_t expires_ms,
                            char token[64], char id[40], spine_err *e) {
  token[0] = id[0] = '\0';
  if (!subject || !*subject || strlen(subject) >= sizeof((spine_api_principal *)0)->subject)
    return spine_err_set(e, SPINE_EINVAL, NULL, "subject",
                         "give a subject of 1 to 127 characters (ops:jane)");
  for (const char *s = subject; *s; s++)
    if ((unsigned char)*s < 0x20)
      return spine_err_set(e, SPINE_EINVAL, NULL, "subject", "a control character in the subject");
  char array[512];
  int rc = scopes_array(scopes ? scopes : "", array, sizeof array, e);
  if (rc) return rc;
  if (expires_ms < 0)
    return spine_err_set(e, SPINE_EINVAL, NULL, "expires", "an expiry must be in the future");
  unsigned char secret[32], rid[6];
  if (RAND_bytes(secret, sizeof secret) != 1 || RAND_bytes(rid, sizeof rid) != 1)
    return spine_err_set(e, SPINE_EIO, NULL, NULL, "no random bytes for a token");
  char b64[48];
  spine_base64_encode(secret, sizeof secret, 1, 0, b64);
  snprintf(token, 64, SPINE_API_TOKEN_PREFIX "%s", b64);
  snprintf(id, 40, "tok_%02x%02x%02x%02x%02x%02x", rid[0], rid[1], rid[2], rid[3], rid[4], rid[5]);
  char hash[65], ms[32];
  spine_sha256_hex(token, strlen(token), hash);
  snprintf(ms, sizeof ms, "%lld", (long long)expires_ms);
  const char *p[5] = {id, subject, array, hash, expires_ms ? ms : NULL};
  PGresult *r = spine_pgconn_query(c,
                                   "INSERT INTO spine.api_tokens (id, subject, scopes, token_hash,"
                                   " expires_at) VALUES ($1, $2, $3::text[], $4,"
                                   " now() + $5::int8 * interval '1 millisecond')",
                                   5, p, e);
  if (!r) {
    token[0] = '\0';
    return SPINE_EDB;
  }
  PQclear(r);
  return 0;
}

/* clang-format off */
#define ISO(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* clang-format on */

int spine_api_tokens_list(PGconn *c, spine_buf *out, spine_err *e) {
  return spine_pgconn_text(
      c,
      "SELECT jsonb_build_object('tokens', coalesce(jsonb_agg(jsonb_build_object('id', id,"
      " 'subject', subject, 'scopes', to_jsonb(scopes), 'created_at', " ISO(
          "created_at") ","
                        " 'expires_at', " ISO("expires_at") ", 'revoked_at', " ISO(
                            "revoked_at") ","
                                          " 'last_used_at', " ISO(
                                              "last_used_at") ", 'status', CASE WHEN revoked_at IS NOT NULL"
                                                              " THEN 'revoked' WHEN expires_at <= now() THEN 'expired' ELSE 'active' END)"
                                                              " ORDER BY created_at DESC, id), '[]'))::text FROM spine.api_tokens",
      0, NULL, out, e);
}

int spine_api_tokens_revoke(PGconn *c, const char *id, spine_err *e) {
  const char *p[1] = {id};
  PGresult *r = spine_pgconn_query(c,
                                   "UPDATE spine.api_tokens SET revoked_at = coalesce(revoked_at,"
                                   " now()) WHERE id = $1 RETURNING id",
                                   1, p, e);
  if (!r) return SPINE_EDB;
  int found = PQntuples(r) == 1;
  PQclear(r);
  return found ? 0 : spine_err_set(e, SPINE_ENOTFOUND, NULL, "id", "no token %s", id);
}

int spine_api_tokens_check(PGconn *c, const char *bearer, size_t len, spine_api_principal *p,
                           spine_err *e) {
  memset(p, 0, sizeof *p);
  if (!bearer || len == 0)
    return spine_err_set(e, SPINE_ENOTFOUND, NULL, NULL, "a bearer token is required");
  char hash[65];
  spine_sha256_hex(bearer, len, hash);
  const char *params[1] = {hash};
  /* The use is noted only for a token that is valid now. */
  PGresult *r = spine_pgconn_query(
      c,
      "WITH t AS (SELECT * FROM spine.api_tokens WHERE token_hash = $1),"
      " u AS (UPDATE spine.api_tokens a SET last_used_at = now() FROM t WHERE a.id = t.id"
      " AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()))"
      " SELECT id, subject, array_to_string(scopes, ','), revoked_at IS NOT NULL,"
      " coalesce(expires_at <= now(), false), token_hash FROM t",
      1, params, e);
  if (!r) return SPINE_EDB;
  int rc = 0;
  if (PQntuples(r) != 1 || !spine_hmac_equal(PQgetvalue(r, 0, 5), 64, hash, 64))
    rc = spine_err_set(e, SPINE_ENOTFOUND, NULL, NULL, "unknown token");
  else if (!strcmp(PQgetvalue(r, 0, 3), "t"))
    rc = spine_err_set(e, SPINE_ENOTFOUND, NULL, NULL, "the token was revoked");
  else if (!strcmp(PQgetvalue(r, 0, 4), "t"))
    rc = spine_err_set(e, SPINE_ENOTFOUND, NULL, NULL, "the token has expired");
  if (!rc) {
    snprintf(p->token_id, sizeof p->token_id, "%s", PQgetvalue(r, 0, 0));
    snprintf(p->subject, sizeof p->subject, "%s", PQgetvalue(r, 0, 1));
    snprintf(p->scopes, sizeof p->scopes, "%s", PQgetvalue(r, 0, 2));
  }
  PQclear(r);
  return rc;
}
