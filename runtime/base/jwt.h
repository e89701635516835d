/* Bearer JWTs for single sign-on (RFC 7519, JWS compact form): the public keys of a JWKS file
 * (RFC 7517; RSA and EC P-256 only) and the check of a token against them, its issuer, audience
 * and times. Signatures RS256 and ES256 only: "none", HS* and every other alg are refused, so a
 * public key can never serve as an HMAC secret. Verifying allocates only while it runs, logs
 * nothing (but spine_jwt_log_refusal) and never puts a token or a signature in a message. */
#ifndef SPINE_JWT_H
#define SPINE_JWT_H

#include <stdint.h>

#include "err.h"

#define SPINE_JWT_MAX_TOKEN  8192      /* bytes of a compact token; longer ones are refused */
#define SPINE_JWT_MAX_KEYS   64        /* keys in a JWKS file */
#define SPINE_JWT_MAX_SCOPES 64        /* scopes in one token */
#define SPINE_JWT_SCOPE_SIZE 128       /* bytes of one scope, with its NUL */
#define SPINE_JWT_SUB_SIZE   256       /* bytes of the subject, with its NUL */
#define SPINE_JWT_JWKS_MAX   (1 << 20) /* bytes of a JWKS file */
#define SPINE_JWT_SKEW_S     60        /* the default clock skew, seconds */

/* Why a token was refused: the enum, its code (what an API answer or a log line carries). */
#define SPINE_JWT_REFUSAL_MAP(XX)                                                                  \
  XX(MALFORMED, "malformed")             /* not three base64url parts of JSON objects */           \
  XX(TOO_LARGE, "too_large")             /* over SPINE_JWT_MAX_TOKEN */                            \
  XX(UNSUPPORTED_ALG, "unsupported_alg") /* none, HS*, anything but RS256/ES256; crit */           \
  XX(UNKNOWN_KEY, "unknown_key")         /* no key of that kid, or of that alg */                  \
  XX(BAD_SIGNATURE, "bad_signature")     /* wrong signature, or of the wrong length */             \
  XX(EXPIRED, "expired")                 /* exp <= now - skew, or no exp */                        \
  XX(NOT_YET_VALID, "not_yet_valid")     /* nbf or iat > now + skew */                             \
  XX(WRONG_ISSUER, "wrong_issuer")                                                                 \
  XX(WRONG_AUDIENCE, "wrong_audience")                                                             \
  XX(NO_SUBJECT, "no_subject") /* sub missing, empty, too long, control characters */              \
  XX(BAD_CLAIM, "bad_claim")   /* a claim of the wrong type; scopes too many or too long */

typedef enum {
  SPINE_JWT_ACCEPTED = 0,
#define XX(name, code) SPINE_JWT_##name,
  SPINE_JWT_REFUSAL_MAP(XX)
#undef XX
} spine_jwt_refusal;

/* Static: "expired", ...; "accepted" for SPINE_JWT_ACCEPTED, "unknown" out of range. */
const char *spine_jwt_refusal_code(spine_jwt_refusal r);

/* The keys of one JWKS file. Opaque; immutable once loaded, so threads may share it. */
typedef struct spine_jwt_keys spine_jwt_keys;

/* Reads the JWKS file at `path` (blocking: at start-up or on a reload, never on the loop):
 * {"keys": [{"kty": "RSA", "n", "e", "kid"?, "alg"?: "RS256", "use"?: "sig"} |
 *           {"kty": "EC", "crv": "P-256", "x", "y", "kid"?, "alg"?: "ES256", "use"?}]}.
 * Keys with "use": "enc" are skipped (they sign nothing), and so are keys of another kty, curve
 * or alg (an identity provider publishes RS384 or EdDSA keys beside its RS256 one), each noted
 * (spine_jwt_keys_skipped); a file with no key left is refused, and so is an RSA key under 2048
 * bits, a private key ("d"), a point off the curve or two keys of one kid. Returns 0 and *keys
 * (free with spine_jwt_keys_free), SPINE_EIO (unreadable), SPINE_EINVAL (e->where the path and
 * line, e->field "keys[2].n", e->msg what is wrong) or SPINE_ENOMEM. */
int spine_jwt_keys_load(const char *path, spine_jwt_keys **keys, spine_err *e);
/* The same from the text of a JWKS (`where` names it in errors; may be NULL). */
int spine_jwt_keys_parse(const char *text, size_t len, const char *where, spine_jwt_keys **keys,
                         spine_err *e);
void spine_jwt_keys_free(spine_jwt_keys *keys);
/* How many keys were kept. */
int spine_jwt_keys_count(const spine_jwt_keys *keys);
/* Why the i-th left-out key was left out ("keys[2] (kid a1): left out: alg RS384"), or NULL
 * past the last. Encryption keys are not listed. */
const char *spine_jwt_keys_skipped(const spine_jwt_keys *keys, int i);

/* What a token must say. Borrowed strings; issuer and audience are required. */
typedef struct spine_jwt_opts {
  const char *issuer;      /* iss must equal it */
  const char *audience;    /* aud (a string or an array of strings) must equal or contain it */
  int64_t skew_s;          /* leeway for exp, nbf and iat, 0 to 3600 seconds */
  const char *scope_claim; /* the claim the scopes come from; NULL = "scope" */
} spine_jwt_opts;

#define SPINE_JWT_OPTS_INIT                                                                        \
  { NULL, NULL, SPINE_JWT_SKEW_S, "scope" }

/* What an accepted token says. On a refusal, only `refusal` is set. */
typedef struct spine_jwt_claims {
  spine_jwt_refusal refusal;
  char subject[SPINE_JWT_SUB_SIZE]; /* sub: the actor */
  int nscopes;                      /* from the scope claim: a space-separated string or an
                                       array of strings; none when the claim is absent */
  char scopes[SPINE_JWT_MAX_SCOPES][SPINE_JWT_SCOPE_SIZE];
  int64_t expires_s; /* exp, seconds since the epoch (rounded down) */
  char kid[128];     /* the key that signed it ("" when the token named none) */
} spine_jwt_claims;

/* Checks the compact token `token[len]` (no "Bearer ") at `now_s` (seconds since the epoch): its
 * form, its alg (RS256 or ES256, and the key's), the key its kid selects (or the one key of that
 * alg when it has no kid), the signature, exp > now - skew (required), nbf and iat <= now + skew
 * (when present), iss, aud, sub, and the scopes. Returns 0 with *claims filled; SPINE_EREJECTED
 * with claims->refusal and e (e->field the part or claim, "payload.exp"; e->msg what was wrong,
 * never the token); SPINE_EINVAL for bad opts; SPINE_ENOMEM. */
int spine_jwt_verify(const spine_jwt_keys *keys, const char *token, size_t len,
                     const spine_jwt_opts *opts, int64_t now_s, spine_jwt_claims *claims,
                     spine_err *e);

/* Logs a refusal as one warn line (component "auth", msg "bearer token refused") with its
 * code, field, reason and `peer` (the client's address; may be NULL): never the token. */
void spine_jwt_log_refusal(const spine_jwt_claims *claims, const spine_err *e, const char *peer);

/* Single sign-on as the environment configures it (docs/security.md): SPINE_JWKS_FILE,
 * SPINE_JWT_ISSUER, SPINE_JWT_AUDIENCE, SPINE_JWT_SCOPE_CLAIM (default "scope") and
 * SPINE_JWT_SKEW (a duration, default "60s"). */
typedef struct spine_jwt_config {
  int enabled; /* 0: SPINE_JWKS_FILE is unset or empty, and nothing else is read */
  char jwks_file[4096];
  char issuer[512];
  char audience[512];
  char scope_claim[128];
  int64_t skew_s;
} spine_jwt_config;

/* Fills *cfg from the environment. Returns 0 (cfg->enabled 0 when SSO is off), or SPINE_EINVAL
 * with e->field the variable: the issuer or audience missing while SPINE_JWKS_FILE is set, a
 * value too long, a bad skew. */
int spine_jwt_config_from_env(spine_jwt_config *cfg, spine_err *e);
/* Points *opts at cfg's strings (borrowed: valid while cfg is). */
void spine_jwt_config_opts(const spine_jwt_config *cfg, spine_jwt_opts *opts);

#endif
