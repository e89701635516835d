/* Fuzzes JWT verification and JWKS loading (jwt.c): any bytes are refused with a code and a
 * message, or accepted with a subject and bounded scopes. The first byte picks what the rest is:
 * 'K' a JWKS text; 'P' a payload the harness signs with its own ES256 key (kid "e1"), so the
 * claims checks behind the signature are reached; anything else, the whole input is a token. */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <string.h>

#include "base64.h"
#include "jwt.h"

#include "fuzz.h"

#define NOW 1800000000

static EVP_PKEY *ec;
static spine_jwt_keys *keys;

/* base64url without padding, as JWS writes it (base64.h). */
static size_t b64url(const unsigned char *in, size_t n, char *out) {
  return spine_base64_encode(in, n, 1, 0, out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  /* A key made once: a token the mutator makes never verifies under it, and need not. */
  ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  FUZZ_CHECK(ec != NULL);
  unsigned char pt[65];
  size_t len = 0;
  FUZZ_CHECK(EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len));
  FUZZ_CHECK(len == 65);
  char x[64], y[64], jwks[512];
  b64url(pt + 1, 32, x);
  b64url(pt + 33, 32, y);
  snprintf(
      jwks, sizeof jwks,
      "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\",\"x\":\"%s\",\"y\":\"%s\"}]}", x,
      y);
  spine_err e;
  FUZZ_CHECK(spine_jwt_keys_parse(jwks, strlen(jwks), "fuzz", &keys, &e) == 0);
  return 0;
}

static void check_verify(const char *token, size_t len) {
  spine_jwt_opts o = SPINE_JWT_OPTS_INIT;
  o.issuer = "https://idp.example";
  o.audience = "spine";
  spine_jwt_claims c;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_jwt_verify(keys, token, len, &o, NOW, &c, &e);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EREJECTED && e.code == rc && e.msg[0]);
    FUZZ_CHECK(c.refusal != SPINE_JWT_ACCEPTED && c.subject[0] == '\0' && c.nscopes == 0 &&
               c.kid[0] == '\0');
    FUZZ_CHECK(strcmp(spine_jwt_refusal_code(c.refusal), "unknown") != 0);
    return;
  }
  FUZZ_CHECK(c.refusal == SPINE_JWT_ACCEPTED && c.subject[0]);
  FUZZ_CHECK(strlen(c.subject) < sizeof c.subject);
  for (const char *s = c.subject; *s; s++)
    FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
  FUZZ_CHECK(c.nscopes >= 0 && c.nscopes <= SPINE_JWT_MAX_SCOPES);
  for (int i = 0; i < c.nscopes; i++)
    FUZZ_CHECK(c.scopes[i][0] && strlen(c.scopes[i]) < SPINE_JWT_SCOPE_SIZE);
  FUZZ_CHECK(c.expires_s > NOW - 61);
}

/* header.b64(payload).signature under the harness's key. */
static void check_signed(const uint8_t *payload, size_t n) {
  if (n > 4096) return;
  static char tok[SPINE_JWT_MAX_TOKEN + 512];
  size_t at = b64url((const unsigned char *)"{\"alg\":\"ES256\",\"kid\":\"e1\"}", 26, tok);
  tok[at++] = '.';
  at += b64url(payload, n, tok + at);
  unsigned char der[80], sig[64];
  size_t dl = sizeof der;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  FUZZ_CHECK(md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, ec, NULL) == 1);
  FUZZ_CHECK(EVP_DigestSign(md, der, &dl, (unsigned char *)tok, at) == 1);
  EVP_MD_CTX_free(md);
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
  FUZZ_CHECK(es != NULL);
  FUZZ_CHECK(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32);
  FUZZ_CHECK(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32);
  ECDSA_SIG_free(es);
  tok[at++] = '.';
  at += b64url(sig, 64, tok + at);
  check_verify(tok, at);
}

static void check_keys(const char *text, size_t n) {
  spine_jwt_keys *ks = (spine_jwt_keys *)1;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_jwt_keys_parse(text, n, "fuzz", &ks, &e);
  if (rc) {
    FUZZ_CHECK((rc == SPINE_EINVAL || rc == SPINE_ENOMEM) && e.code == rc && e.msg[0]);
    FUZZ_CHECK(ks == NULL);
    return;
  }
  FUZZ_CHECK(ks != NULL);
  FUZZ_CHECK(spine_jwt_keys_count(ks) >= 1 && spine_jwt_keys_count(ks) <= SPINE_JWT_MAX_KEYS);
  spine_jwt_keys_free(ks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0 && data[0] == 'K')
    check_keys((const char *)data + 1, size - 1);
  else if (size > 0 && data[0] == 'P')
    check_signed(data + 1, size - 1);
  else
    check_verify((const char *)data, size);
  return 0;
}
