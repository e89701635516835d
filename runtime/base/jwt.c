/* JWKS keys and JWT verification over libcrypto (EVP_PKEY_fromdata, EVP_DigestVerify) and the
 * strict JSON reader (jsondoc.c). Owns the EVP_PKEYs of a key set. Reads nothing of a payload
 * before its signature is verified, logs only when asked to, and never puts token bytes in a
 * message. */
#include "jwt.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "duration.h"
#include "jsondoc.h"
#include "log.h"

typedef enum { ALG_RS256 = 1, ALG_ES256 } alg_id;

typedef struct key {
  char kid[128]; /* "" when the JWKS gave none */
  alg_id alg;
  EVP_PKEY *pkey;
} key;

struct spine_jwt_keys {
  int n;
  key k[SPINE_JWT_MAX_KEYS];
  int nskipped; /* keys of a kind this verifier does not take, each said why */
  char skipped[SPINE_JWT_MAX_KEYS][160];
};

const char *spine_jwt_refusal_code(spine_jwt_refusal r) {
  switch (r) {
    case SPINE_JWT_ACCEPTED:
      return "accepted";
#define XX(name, code)                                                                             \
  case SPINE_JWT_##name:                                                                           \
    return code;
      SPINE_JWT_REFUSAL_MAP(XX)
#undef XX
  }
  return "unknown";
}

static const char *alg_name(alg_id a) {
  return a == ALG_RS256 ? "RS256" : "ES256";
}

/* ---- keys ---- */

typedef struct loader {
  const char *where; /* the file, for messages */
  char field[64];
  spine_err *e;
} loader;

static int key_fail(loader *ld, const spine_jsondoc *at, const char *fmt, ...) SPINE_PRINTF(3, 4);
static int key_fail(loader *ld, const spine_jsondoc *at, const char *fmt, ...) {
  char msg[256], where[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(where, sizeof where, "%s:%d", ld->where ? ld->where : "jwks", at ? at->line : 1);
  ERR_clear_error();
  return spine_err_set(ld->e, SPINE_EINVAL, where, ld->field[0] ? ld->field : NULL, "%s", msg);
}

/* The string member `name` of key object `k`, or NULL (absent); a member of another type
 * fails. */
static int key_string(loader *ld, const spine_jsondoc *k, int i, const char *name,
                      const char **out) {
  const spine_jsondoc *v = spine_jsondoc_get(k, name);
  *out = NULL;
  if (!v) return 0;
  snprintf(ld->field, sizeof ld->field, "keys[%d].%s", i, name);
  if (v->type != SPINE_JSONDOC_STRING)
    return key_fail(ld, v, "%s (expected a string)", spine_jsondoc_type_name(v->type));
  *out = v->str;
  return 0;
}

/* The base64url member `name` of `k` decoded into out[cap]: required, 1 to cap bytes. */
static int key_bytes(loader *ld, const spine_jsondoc *k, int i, const char *name,
                     unsigned char *out, size_t cap, size_t *len) {
  const char *s;
  int rc = key_string(ld, k, i, name, &s);
  if (rc) return rc;
  snprintf(ld->field, sizeof ld->field, "keys[%d].%s", i, name);
  if (!s) return key_fail(ld, k, "missing (expected base64url)");
  size_t n = strlen(s);
  if (n == 0 || n > cap / 3 * 4 + 3)
    return key_fail(ld, k, "%zu characters (at most %zu bytes)", n, cap);
  unsigned char tmp[1400];
  long got = spine_base64_url_decode(s, n, tmp);
  if (got <= 0) return key_fail(ld, k, "not base64url (no padding, alphabet A-Z a-z 0-9 - _)");
  if ((size_t)got > cap) return key_fail(ld, k, "%ld bytes (at most %zu)", got, cap);
  memcpy(out, tmp, (size_t)got);
  *len = (size_t)got;
  return 0;
}

/* Builds the public key from `bld`'s parameters for `type` ("RSA", "EC") and checks it. */
static int key_from_params(loader *ld, const spine_jsondoc *k, OSSL_PARAM_BLD *bld,
                           const char *type, EVP_PKEY **out) {
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
  EVP_PKEY *pkey = NULL;
  int ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
           EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return key_fail(ld, k, "libcrypto refused the %s key", type);
  }
  /* An EC point off the curve, an even RSA modulus or exponent: refused now, not at use. */
  EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  ok = check && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return key_fail(ld, k, "not a valid %s public key", type);
  }
  *out = pkey;
  return 0;
}

static int load_rsa(loader *ld, const spine_jsondoc *k, int i, EVP_PKEY **out) {
  unsigned char n[1024], e[16]; /* up to 8192 bits */
  size_t nl = 0, el = 0;        /* set by key_bytes when it succeeds; -O3 cannot tell */
  int rc = key_bytes(ld, k, i, "n", n, sizeof n, &nl);
  if (!rc) rc = key_bytes(ld, k, i, "e", e, sizeof e, &el);
  if (rc) return rc;
  BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
    rc = spine_err_set(ld->e, SPINE_ENOMEM, ld->where, NULL, "building an RSA key");
  } else {
    snprintf(ld->field, sizeof ld->field, "keys[%d].n", i);
    rc = key_from_params(ld, k, bld, "RSA", out);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  if (rc) return rc;
  int bits = EVP_PKEY_get_bits(*out);
  if (bits < 2048) {
    EVP_PKEY_free(*out);
    *out = NULL;
    return key_fail(ld, k, "an RSA key of %d bits (at least 2048)", bits);
  }
  return 0;
}

static int load_ec(loader *ld, const spine_jsondoc *k, int i, EVP_PKEY **out) {
  const char *crv;
  int rc = key_string(ld, k, i, "crv", &crv);
  if (rc) return rc;
  snprintf(ld->field, sizeof ld->field, "keys[%d].crv", i);
  if (!crv) return key_fail(ld, k, "missing (expected \"P-256\")");
  if (strcmp(crv, "P-256") != 0)
    return key_fail(ld, k, "curve \"%.32s\" is not supported (expected \"P-256\")", crv);
  unsigned char pt[65], x[32], y[32];
  size_t xl, yl;
  rc = key_bytes(ld, k, i, "x", x, sizeof x, &xl);
  if (!rc && xl != 32) rc = key_fail(ld, k, "%zu bytes (expected 32)", xl);
  if (!rc) rc = key_bytes(ld, k, i, "y", y, sizeof y, &yl);
  if (!rc && yl != 32) rc = key_fail(ld, k, "%zu bytes (expected 32)", yl);
  if (rc) return rc;
  pt[0] = 0x04; /* uncompressed: 04 || x || y (SEC 1 §2.3.3) */
  memcpy(pt + 1, x, 32);
  memcpy(pt + 33, y, 32);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt)) {
    rc = spine_err_set(ld->e, SPINE_ENOMEM, ld->where, NULL, "building an EC key");
  } else {
    snprintf(ld->field, sizeof ld->field, "keys[%d].x", i);
    rc = key_from_params(ld, k, bld, "EC", out);
  }
  OSSL_PARAM_BLD_free(bld);
  return rc;
}

/* Notes key `i` as left out: an identity provider's JWKS often holds keys of other kinds
 * beside the signing key (RS384, EdDSA, a P-384 key), which sign no token this verifier
 * accepts; the file is still good. Returns 0. */
static int skip_key(spine_jwt_keys *ks, int i, const char *kid, const char *fmt, const char *what) {
  if (ks->nskipped < SPINE_JWT_MAX_KEYS)
    snprintf(ks->skipped[ks->nskipped++], sizeof ks->skipped[0], "keys[%d]%s%.40s%s: %s %.32s", i,
             kid ? " (kid " : "", kid ? kid : "", kid ? ")" : "", fmt, what);
  return 0;
}

/* Reads key `i`: 0 and *kept 1 with ks->k[ks->n] filled, 0 and *kept 0 for a key left out (an
 * encryption key, or one of a kty, curve or alg not taken), or an error. */
static int load_key(loader *ld, const spine_jsondoc *k, int i, spine_jwt_keys *ks, int *kept) {
  *kept = 0;
  snprintf(ld->field, sizeof ld->field, "keys[%d]", i);
  if (k->type != SPINE_JSONDOC_OBJECT)
    return key_fail(ld, k, "%s (expected an object)", spine_jsondoc_type_name(k->type));
  const char *kty, *use, *alg, *kid;
  int rc = key_string(ld, k, i, "use", &use);
  if (rc) return rc;
  if (use && strcmp(use, "enc") == 0) return 0; /* encrypts, signs nothing */
  if (use && strcmp(use, "sig") != 0)
    return key_fail(ld, k, "\"%.32s\" (expected \"sig\" or \"enc\")", use);
  if ((rc = key_string(ld, k, i, "kty", &kty)) || (rc = key_string(ld, k, i, "alg", &alg)) ||
      (rc = key_string(ld, k, i, "kid", &kid)))
    return rc;
  if (spine_jsondoc_get(k, "d")) {
    snprintf(ld->field, sizeof ld->field, "keys[%d].d", i);
    return key_fail(ld, k, "a private key: publish only the public part (no \"d\")");
  }
  snprintf(ld->field, sizeof ld->field, "keys[%d].kty", i);
  alg_id want;
  if (!kty) return key_fail(ld, k, "missing (expected \"RSA\" or \"EC\")");
  if (strcmp(kty, "RSA") == 0)
    want = ALG_RS256;
  else if (strcmp(kty, "EC") == 0)
    want = ALG_ES256;
  else
    return skip_key(ks, i, kid, "left out: kty", kty);
  if (alg && strcmp(alg, alg_name(want)) != 0) return skip_key(ks, i, kid, "left out: alg", alg);
  if (want == ALG_ES256) {
    const spine_jsondoc *crv = spine_jsondoc_get(k, "crv");
    if (crv && crv->type == SPINE_JSONDOC_STRING && strcmp(crv->str, "P-256") != 0)
      return skip_key(ks, i, kid, "left out: curve", crv->str);
  }
  key *slot = &ks->k[ks->n];
  if (kid) {
    snprintf(ld->field, sizeof ld->field, "keys[%d].kid", i);
    if (!kid[0] || strlen(kid) >= sizeof slot->kid)
      return key_fail(ld, k, "%zu bytes (expected 1 to %zu)", strlen(kid), sizeof slot->kid - 1);
    for (int j = 0; j < ks->n; j++)
      if (strcmp(ks->k[j].kid, kid) == 0) return key_fail(ld, k, "\"%s\" twice", kid);
  }
  if (ks->n == SPINE_JWT_MAX_KEYS) {
    snprintf(ld->field, sizeof ld->field, "keys");
    return key_fail(ld, k, "more than %d signing keys", SPINE_JWT_MAX_KEYS);
  }
  rc = want == ALG_RS256 ? load_rsa(ld, k, i, &slot->pkey) : load_ec(ld, k, i, &slot->pkey);
  if (rc) return rc;
  snprintf(slot->kid, sizeof slot->kid, "%s", kid ? kid : "");
  slot->alg = want;
  ks->n++;
  *kept = 1;
  return 0;
}

int spine_jwt_keys_parse(const char *text, size_t len, const char *where, spine_jwt_keys **keys,
                         spine_err *e) {
  *keys = NULL;
  loader ld = {where, "", e};
  spine_jsondoc *doc = NULL;
  int line = 1;
  spine_err je;
  int rc = spine_jsondoc_parse(text, len, &doc, &line, &je);
  if (rc) {
    char w[128];
    snprintf(w, sizeof w, "%s:%d", where ? where : "jwks", line);
    return spine_err_set(e, rc, w, NULL, "%s", je.msg);
  }
  const spine_jsondoc *arr = spine_jsondoc_get(doc, "keys");
  snprintf(ld.field, sizeof ld.field, "keys");
  if (doc->type != SPINE_JSONDOC_OBJECT)
    rc = key_fail(&ld, doc, "a JWKS is an object {\"keys\": [...]}");
  else if (!arr || arr->type != SPINE_JSONDOC_ARRAY)
    rc = key_fail(&ld, arr ? arr : doc, "missing or not an array");
  spine_jwt_keys *ks = rc ? NULL : calloc(1, sizeof *ks);
  if (!rc && !ks) rc = spine_err_set(e, SPINE_ENOMEM, where, NULL, "allocating a key set");
  int i = 0;
  for (const spine_jsondoc *k = rc ? NULL : arr->child; k && !rc; k = k->next, i++) {
    int kept;
    rc = load_key(&ld, k, i, ks, &kept);
  }
  if (!rc && ks->n == 0) {
    snprintf(ld.field, sizeof ld.field, "keys");
    rc = key_fail(&ld, arr, "no key for RS256 or ES256 (RSA, or EC P-256)%s%s",
                  ks->nskipped ? "; left out: " : "", ks->nskipped ? ks->skipped[0] : "");
  }
  spine_jsondoc_free(doc);
  if (rc) {
    spine_jwt_keys_free(ks);
    return rc;
  }
  *keys = ks;
  return 0;
}

int spine_jwt_keys_load(const char *path, spine_jwt_keys **keys, spine_err *e) {
  *keys = NULL;
  spine_buf b = SPINE_BUF_INIT;
  int rc = spine_buf_read_file(&b, path, SPINE_JWT_JWKS_MAX, e);
  if (!rc) rc = spine_jwt_keys_parse(b.data ? b.data : "", b.len, path, keys, e);
  spine_buf_free(&b);
  return rc;
}

void spine_jwt_keys_free(spine_jwt_keys *keys) {
  if (!keys) return;
  for (int i = 0; i < keys->n; i++)
    EVP_PKEY_free(keys->k[i].pkey);
  free(keys);
}

int spine_jwt_keys_count(const spine_jwt_keys *keys) {
  return keys ? keys->n : 0;
}

const char *spine_jwt_keys_skipped(const spine_jwt_keys *keys, int i) {
  return keys && i >= 0 && i < keys->nskipped ? keys->skipped[i] : NULL;
}

/* ---- tokens ---- */

static int refuse(spine_jwt_claims *c, spine_err *e, spine_jwt_refusal r, const char *field,
                  const char *fmt, ...) SPINE_PRINTF(5, 6);
static int refuse(spine_jwt_claims *c, spine_err *e, spine_jwt_refusal r, const char *field,
                  const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ERR_clear_error();       /* libcrypto's reasons stay out of other callers' queues */
  memset(c, 0, sizeof *c); /* nothing of a refused token stays */
  c->refusal = r;
  return spine_err_set(e, SPINE_EREJECTED, NULL, field, "%s", msg);
}

/* 1 when s has a control character (C0 or DEL): kept out of actors and logs. */
static int has_control(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
  return 0;
}

/* The key the header selects: by kid, or the one key of `alg` when there is no kid. */
static int select_key(const spine_jwt_keys *ks, alg_id alg, const char *kid, const key **out,
                      spine_jwt_claims *c, spine_err *e) {
  const key *found = NULL;
  if (kid) {
    for (int i = 0; i < ks->n && !found; i++)
      if (ks->k[i].kid[0] && strcmp(ks->k[i].kid, kid) == 0) found = &ks->k[i];
    if (!found) return refuse(c, e, SPINE_JWT_UNKNOWN_KEY, "header.kid", "no key of this kid");
    if (found->alg != alg)
      return refuse(c, e, SPINE_JWT_UNKNOWN_KEY, "header.alg",
                    "alg %s, but the key of this kid is for %s", alg_name(alg),
                    alg_name(found->alg));
  } else {
    int n = 0;
    for (int i = 0; i < ks->n; i++)
      if (ks->k[i].alg == alg) found = &ks->k[i], n++;
    if (n != 1)
      return refuse(c, e, SPINE_JWT_UNKNOWN_KEY, "header.kid",
                    "no kid, and %d keys for %s (a token without kid needs exactly one)", n,
                    alg_name(alg));
  }
  *out = found;
  return 0;
}

/* Reads the header: alg, kid, crit. */
static int read_header(const unsigned char *h, size_t hl, alg_id *alg, char kid[128], int *has_kid,
                       spine_jwt_claims *c, spine_err *e) {
  spine_jsondoc *doc = NULL;
  int line;
  spine_err je;
  if (spine_jsondoc_parse((const char *)h, hl, &doc, &line, &je))
    return refuse(c, e, SPINE_JWT_MALFORMED, "header", "not JSON (%s)", je.msg);
  int rc = 0;
  const spine_jsondoc *a = spine_jsondoc_get(doc, "alg"), *k = spine_jsondoc_get(doc, "kid");
  if (doc->type != SPINE_JSONDOC_OBJECT)
    rc = refuse(c, e, SPINE_JWT_MALFORMED, "header", "not a JSON object");
  else if (!a || a->type != SPINE_JSONDOC_STRING)
    rc = refuse(c, e, SPINE_JWT_UNSUPPORTED_ALG, "header.alg", "missing (expected RS256 or ES256)");
  else if (strcmp(a->str, "RS256") == 0)
    *alg = ALG_RS256;
  else if (strcmp(a->str, "ES256") == 0)
    *alg = ALG_ES256;
  else
    rc = refuse(c, e, SPINE_JWT_UNSUPPORTED_ALG, "header.alg",
                "\"%.16s\" is refused (expected RS256 or ES256)",
                has_control(a->str) ? "?" : a->str);
  if (!rc && spine_jsondoc_get(doc, "crit"))
    rc = refuse(c, e, SPINE_JWT_UNSUPPORTED_ALG, "header.crit",
                "critical extensions are not supported");
  if (!rc && k) {
    if (k->type != SPINE_JSONDOC_STRING || !k->str[0] || strlen(k->str) >= 128)
      rc = refuse(c, e, SPINE_JWT_UNKNOWN_KEY, "header.kid", "not a string of 1 to 127 bytes");
    else
      snprintf(kid, 128, "%s", k->str);
  }
  *has_kid = !rc && k;
  spine_jsondoc_free(doc);
  return rc;
}

/* 1 when the signature sig[sl] of msg[ml] verifies under `k`. */
static int signature_ok(const key *k, const unsigned char *msg, size_t ml, const unsigned char *sig,
                        size_t sl) {
  unsigned char der[80];
  if (k->alg == ALG_ES256) {
    /* JWS gives r || s, 32 bytes each (RFC 7518 §3.4); libcrypto wants DER. */
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
      ECDSA_SIG_free(es);
      BN_free(r);
      BN_free(s);
      return 0;
    }
    unsigned char *p = der;
    int dl = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    if (dl <= 0 || dl > (int)sizeof der) return 0;
    sig = der;
    sl = (size_t)dl;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  int ok = md && EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, k->pkey, NULL) == 1 &&
           (k->alg != ALG_RS256 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) &&
           EVP_DigestVerify(md, sig, sl, msg, ml) == 1;
  EVP_MD_CTX_free(md);
  ERR_clear_error();
  return ok;
}

/* The NumericDate claim `name`: 0 and *out (*present 0 when absent), or a refusal. */
static int read_time(const spine_jsondoc *p, const char *name, const char *field, double *out,
                     int *present, spine_jwt_claims *c, spine_err *e) {
  const spine_jsondoc *v = spine_jsondoc_get(p, name);
  *present = v != NULL;
  if (!v) return 0;
  /* Up to year 318857: far enough, and an int64_t holds it. */
  if (v->type != SPINE_JSONDOC_NUMBER || !(v->num >= 0 && v->num < 1e13))
    return refuse(c, e, SPINE_JWT_BAD_CLAIM, field, "not a time (seconds since the epoch)");
  *out = v->num;
  return 0;
}

static void fmt_time(double s, char out[32]) {
  spine_duration_format_time((int64_t)floor(s) * 1000, out);
}

static int check_times(const spine_jsondoc *p, const spine_jwt_opts *o, int64_t now,
                       spine_jwt_claims *c, spine_err *e) {
  double exp = 0, nbf = 0, iat = 0, skew = (double)o->skew_s, t = (double)now;
  int has, rc;
  char a[32], b[32];
  fmt_time(t, b);
  if ((rc = read_time(p, "exp", "payload.exp", &exp, &has, c, e))) return rc;
  if (!has) return refuse(c, e, SPINE_JWT_EXPIRED, "payload.exp", "missing (tokens must expire)");
  if (!(exp > t - skew)) {
    fmt_time(exp, a);
    return refuse(c, e, SPINE_JWT_EXPIRED, "payload.exp",
                  "expired at %s; now %s, skew %" PRId64 " s", a, b, o->skew_s);
  }
  c->expires_s = (int64_t)floor(exp);
  if ((rc = read_time(p, "nbf", "payload.nbf", &nbf, &has, c, e))) return rc;
  if (has && nbf > t + skew) {
    fmt_time(nbf, a);
    return refuse(c, e, SPINE_JWT_NOT_YET_VALID, "payload.nbf",
                  "not valid before %s; now %s, skew %" PRId64 " s", a, b, o->skew_s);
  }
  if ((rc = read_time(p, "iat", "payload.iat", &iat, &has, c, e))) return rc;
  if (has && iat > t + skew) {
    fmt_time(iat, a);
    return refuse(c, e, SPINE_JWT_NOT_YET_VALID, "payload.iat",
                  "issued in the future, at %s; now %s, skew %" PRId64 " s", a, b, o->skew_s);
  }
  return 0;
}

static int check_parties(const spine_jsondoc *p, const spine_jwt_opts *o, spine_jwt_claims *c,
                         spine_err *e) {
  const spine_jsondoc *iss = spine_jsondoc_get(p, "iss"), *aud = spine_jsondoc_get(p, "aud");
  if (!iss || iss->type != SPINE_JSONDOC_STRING)
    return refuse(c, e, SPINE_JWT_WRONG_ISSUER, "payload.iss", "missing or not a string");
  if (strcmp(iss->str, o->issuer) != 0)
    return refuse(c, e, SPINE_JWT_WRONG_ISSUER, "payload.iss", "not the configured issuer");
  int found = 0;
  if (aud && aud->type == SPINE_JSONDOC_STRING) {
    found = strcmp(aud->str, o->audience) == 0;
  } else if (aud && aud->type == SPINE_JSONDOC_ARRAY) {
    for (const spine_jsondoc *a = aud->child; a; a = a->next) {
      if (a->type != SPINE_JSONDOC_STRING)
        return refuse(c, e, SPINE_JWT_BAD_CLAIM, "payload.aud", "an array with a %s",
                      spine_jsondoc_type_name(a->type));
      found |= strcmp(a->str, o->audience) == 0;
    }
  } else if (aud) {
    return refuse(c, e, SPINE_JWT_BAD_CLAIM, "payload.aud", "%s (expected a string or an array)",
                  spine_jsondoc_type_name(aud->type));
  }
  if (!found)
    return refuse(c, e, SPINE_JWT_WRONG_AUDIENCE, "payload.aud",
                  aud ? "does not name the configured audience" : "missing");
  const spine_jsondoc *sub = spine_jsondoc_get(p, "sub");
  if (!sub || sub->type != SPINE_JSONDOC_STRING || !sub->str[0])
    return refuse(c, e, SPINE_JWT_NO_SUBJECT, "payload.sub", "missing, empty or not a string");
  if (strlen(sub->str) >= sizeof c->subject || has_control(sub->str))
    return refuse(c, e, SPINE_JWT_NO_SUBJECT, "payload.sub",
                  "longer than %zu bytes, or with control characters", sizeof c->subject - 1);
  memcpy(c->subject, sub->str, strlen(sub->str) + 1);
  return 0;
}

static int add_scope(const char *s, size_t n, const char *field, spine_jwt_claims *c,
                     spine_err *e) {
  if (c->nscopes == SPINE_JWT_MAX_SCOPES)
    return refuse(c, e, SPINE_JWT_BAD_CLAIM, field, "more than %d scopes", SPINE_JWT_MAX_SCOPES);
  if (n == 0 || n >= SPINE_JWT_SCOPE_SIZE)
    return refuse(c, e, SPINE_JWT_BAD_CLAIM, field, "a scope of %zu bytes (1 to %d)", n,
                  SPINE_JWT_SCOPE_SIZE - 1);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return refuse(c, e, SPINE_JWT_BAD_CLAIM, field, "a scope with a control character");
  memcpy(c->scopes[c->nscopes], s, n);
  c->scopes[c->nscopes++][n] = '\0';
  return 0;
}

static int read_scopes(const spine_jsondoc *p, const char *name, spine_jwt_claims *c,
                       spine_err *e) {
  char field[64];
  snprintf(field, sizeof field, "payload.%s", name);
  const spine_jsondoc *v = spine_jsondoc_get(p, name);
  int rc = 0;
  if (!v) return 0;
  if (v->type == SPINE_JSONDOC_STRING) {
    for (const char *s = v->str; *s && !rc;) {
      if (*s == ' ') {
        s++;
        continue;
      }
      size_t n = strcspn(s, " ");
      rc = add_scope(s, n, field, c, e);
      s += n;
    }
    return rc;
  }
  if (v->type != SPINE_JSONDOC_ARRAY)
    return refuse(c, e, SPINE_JWT_BAD_CLAIM, field, "%s (expected a string or an array of strings)",
                  spine_jsondoc_type_name(v->type));
  for (const spine_jsondoc *s = v->child; s && !rc; s = s->next) {
    if (s->type != SPINE_JSONDOC_STRING)
      return refuse(c, e, SPINE_JWT_BAD_CLAIM, field, "an array with a %s",
                    spine_jsondoc_type_name(s->type));
    rc = add_scope(s->str, strlen(s->str), field, c, e);
  }
  return rc;
}

int spine_jwt_verify(const spine_jwt_keys *keys, const char *token, size_t len,
                     const spine_jwt_opts *opts, int64_t now_s, spine_jwt_claims *claims,
                     spine_err *e) {
  spine_jwt_claims *c = claims;
  memset(c, 0, sizeof *c);
  if (!keys || !opts || !opts->issuer || !opts->audience || opts->skew_s < 0 ||
      opts->skew_s > 3600 || (!token && len))
    return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                         "jwt: keys, issuer, audience and a skew of 0 to 3600 s are required");
  if (len > SPINE_JWT_MAX_TOKEN)
    return refuse(c, e, SPINE_JWT_TOO_LARGE, "token", "%zu bytes (at most %d)", len,
                  SPINE_JWT_MAX_TOKEN);
  /* header.payload.signature: exactly two dots, no part empty. */
  const char *d1 = len ? memchr(token, '.', len) : NULL;
  const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(token + len - d1 - 1)) : NULL;
  if (!d1 || !d2 || memchr(d2 + 1, '.', (size_t)(token + len - d2 - 1)) || d1 == token ||
      d2 == d1 + 1 || d2 + 1 == token + len)
    return refuse(c, e, SPINE_JWT_MALFORMED, "token",
                  "not three non-empty parts header.payload.signature");
  /* Decoded parts, one after the other: together at most 3/4 of the token. */
  unsigned char buf[SPINE_JWT_MAX_TOKEN];
  unsigned char *h = buf;
  long hl = spine_base64_url_decode(token, (size_t)(d1 - token), h);
  if (hl < 0) return refuse(c, e, SPINE_JWT_MALFORMED, "header", "not base64url");
  unsigned char *pl = h + hl;
  long pll = spine_base64_url_decode(d1 + 1, (size_t)(d2 - d1 - 1), pl);
  if (pll < 0) return refuse(c, e, SPINE_JWT_MALFORMED, "payload", "not base64url");
  unsigned char *sig = pl + pll;
  long sl = spine_base64_url_decode(d2 + 1, (size_t)(token + len - d2 - 1), sig);
  if (sl < 0) return refuse(c, e, SPINE_JWT_MALFORMED, "signature", "not base64url");

  alg_id alg = ALG_RS256;
  int has_kid = 0, rc;
  if ((rc = read_header(h, (size_t)hl, &alg, c->kid, &has_kid, c, e))) return rc;
  const key *k = NULL;
  if ((rc = select_key(keys, alg, has_kid ? c->kid : NULL, &k, c, e))) return rc;
  if (alg == ALG_ES256 && sl != 64)
    return refuse(c, e, SPINE_JWT_BAD_SIGNATURE, "signature",
                  "%ld bytes (ES256 is r || s, 64 bytes)", sl);
  if (alg == ALG_RS256 && sl != EVP_PKEY_get_size(k->pkey))
    return refuse(c, e, SPINE_JWT_BAD_SIGNATURE, "signature", "%ld bytes (the key's is %d)", sl,
                  EVP_PKEY_get_size(k->pkey));
  if (!signature_ok(k, (const unsigned char *)token, (size_t)(d2 - token), sig, (size_t)sl))
    return refuse(c, e, SPINE_JWT_BAD_SIGNATURE, "signature", "does not verify under key \"%s\"",
                  k->kid);

  /* Signed by a key we trust: now the claims. */
  spine_jsondoc *p = NULL;
  int line;
  spine_err je;
  if (spine_jsondoc_parse((const char *)pl, (size_t)pll, &p, &line, &je))
    return refuse(c, e, SPINE_JWT_MALFORMED, "payload", "not JSON (%s)", je.msg);
  if (p->type != SPINE_JSONDOC_OBJECT)
    rc = refuse(c, e, SPINE_JWT_MALFORMED, "payload", "not a JSON object");
  if (!rc) rc = check_times(p, opts, now_s, c, e);
  if (!rc) rc = check_parties(p, opts, c, e);
  if (!rc) rc = read_scopes(p, opts->scope_claim ? opts->scope_claim : "scope", c, e);
  spine_jsondoc_free(p);
  return rc;
}

void spine_jwt_log_refusal(const spine_jwt_claims *claims, const spine_err *e, const char *peer) {
  spine_log_warn("auth", "bearer token refused", "code", spine_jwt_refusal_code(claims->refusal),
                 "field", e && e->field[0] ? e->field : NULL, "reason", e ? e->msg : NULL, "peer",
                 peer, NULL);
}

/* ---- configuration ---- */

static int env_copy(const char *name, char *out, size_t size, spine_err *e) {
  const char *v = getenv(name);
  out[0] = '\0';
  if (!v) return 0;
  if (strlen(v) >= size)
    return spine_err_set(e, SPINE_EINVAL, NULL, name, "longer than %zu bytes", size - 1);
  memcpy(out, v, strlen(v) + 1);
  return 0;
}

int spine_jwt_config_from_env(spine_jwt_config *cfg, spine_err *e) {
  memset(cfg, 0, sizeof *cfg);
  cfg->skew_s = SPINE_JWT_SKEW_S;
  int rc;
  if ((rc = env_copy("SPINE_JWKS_FILE", cfg->jwks_file, sizeof cfg->jwks_file, e)) ||
      (rc = env_copy("SPINE_JWT_ISSUER", cfg->issuer, sizeof cfg->issuer, e)) ||
      (rc = env_copy("SPINE_JWT_AUDIENCE", cfg->audience, sizeof cfg->audience, e)) ||
      (rc = env_copy("SPINE_JWT_SCOPE_CLAIM", cfg->scope_claim, sizeof cfg->scope_claim, e)))
    return rc;
  if (!cfg->jwks_file[0]) {
    /* Half a configuration is a mistake to say, not SSO silently off. */
    const char *set = cfg->issuer[0]             ? "SPINE_JWT_ISSUER"
                      : cfg->audience[0]         ? "SPINE_JWT_AUDIENCE"
                      : cfg->scope_claim[0]      ? "SPINE_JWT_SCOPE_CLAIM"
                      : getenv("SPINE_JWT_SKEW") ? "SPINE_JWT_SKEW"
                                                 : NULL;
    if (set) return spine_err_set(e, SPINE_EINVAL, NULL, set, "set, but SPINE_JWKS_FILE is not");
    return 0;
  }
  if (!cfg->issuer[0])
    return spine_err_set(e, SPINE_EINVAL, NULL, "SPINE_JWT_ISSUER",
                         "required with SPINE_JWKS_FILE (the iss tokens must carry)");
  if (!cfg->audience[0])
    return spine_err_set(e, SPINE_EINVAL, NULL, "SPINE_JWT_AUDIENCE",
                         "required with SPINE_JWKS_FILE (the aud tokens must carry)");
  if (!cfg->scope_claim[0]) snprintf(cfg->scope_claim, sizeof cfg->scope_claim, "scope");
  const char *skew = getenv("SPINE_JWT_SKEW");
  if (skew) {
    int64_t ms;
    spine_err de;
    if (spine_duration_parse(skew, &ms, &de) || ms < 0 || ms > 3600 * 1000)
      return spine_err_set(e, SPINE_EINVAL, NULL, "SPINE_JWT_SKEW",
                           "\"%.32s\" (expected a duration from 0s to 1h, e.g. \"60s\")", skew);
    cfg->skew_s = ms / 1000;
  }
  cfg->enabled = 1;
  return 0;
}

void spine_jwt_config_opts(const spine_jwt_config *cfg, spine_jwt_opts *opts) {
  opts->issuer = cfg->issuer;
  opts->audience = cfg->audience;
  opts->skew_s = cfg->skew_s;
  opts->scope_claim = cfg->scope_claim;
}
