/* JWT verification (jwt.c) against keys made at test time: RSA 2048 and EC P-256 from libcrypto,
 * written as a JWKS file, and tokens this file signs itself (EVP_DigestSign; ES256 turned from
 * DER into r || s). Every forgery, bad claim and malformed token is refused with its code. */
#include "hmac.h"
#include "jwt.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "base64.h"
#include "test.h"

#define NOW 1800000000 /* 2027-01-15 */

/* base64url without padding, as JWS writes it (base64.h). */
static size_t b64url(const unsigned char *in, size_t n, char *out) {
  return spine_base64_encode(in, n, 1, 0, out);
}

static void b64url_str(const char *s, char *out) {
  b64url((const unsigned char *)s, strlen(s), out);
}

static void bn_b64(const EVP_PKEY *k, const char *param, char *out) {
  BIGNUM *bn = NULL;
  ASSERT(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
  unsigned char bin[1024];
  int n = BN_bn2bin(bn, bin);
  BN_free(bn);
  b64url(bin, (size_t)n, out);
}

/* The public JWK of `k` (RSA or EC P-256), with `extra` members (",\"alg\":\"RS256\"" or ""). */
static void jwk(EVP_PKEY *k, const char *kid, const char *extra, char *out, size_t size) {
  if (EVP_PKEY_is_a(k, "RSA")) {
    char n[1400], e[32];
    bn_b64(k, OSSL_PKEY_PARAM_RSA_N, n);
    bn_b64(k, OSSL_PKEY_PARAM_RSA_E, e);
    snprintf(out, size, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", kid, n, e,
             extra);
  } else {
    unsigned char pt[133]; /* 04 || x || y, up to P-521 */
    size_t len = 0;
    ASSERT(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len) == 1);
    size_t half = (len - 1) / 2;
    char x[100], y[100];
    b64url(pt + 1, half, x);
    b64url(pt + 1 + half, half, y);
    snprintf(out, size,
             "{\"kty\":\"EC\",\"crv\":\"%s\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
             half == 32 ? "P-256" : "P-384", kid, x, y, extra);
  }
}

/* The signature of msg by `k` as JWS puts it: PKCS#1 v1.5 for RSA, r || s for EC. */
static size_t sign(EVP_PKEY *k, const char *msg, unsigned char *sig) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[1024];
  size_t len = sizeof der;
  ASSERT(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL) == 1);
  ASSERT(EVP_DigestSign(md, der, &len, (const unsigned char *)msg, strlen(msg)) == 1);
  EVP_MD_CTX_free(md);
  if (EVP_PKEY_is_a(k, "RSA")) {
    memcpy(sig, der, len);
    return len;
  }
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
  ASSERT(es != NULL);
  ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
  ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
  ECDSA_SIG_free(es);
  return 64;
}

/* header.payload signed by `k` into out (static); `k` NULL leaves the signature "" . */
static char *token(const char *header, const char *payload, EVP_PKEY *k) {
  static char out[16384];
  char h[2048], p[4096];
  b64url_str(header, h);
  b64url_str(payload, p);
  snprintf(out, sizeof out, "%s.%s", h, p);
  if (k) {
    unsigned char sig[1024];
    size_t n = sign(k, out, sig);
    size_t at = strlen(out);
    out[at++] = '.';
    b64url(sig, n, out + at);
  } else {
    strcat(out, ".");
  }
  return out;
}

/* A payload of the usual claims with `extra` members, and exp/nbf around NOW. */
static const char *claims(const char *extra) {
  static char out[4096];
  snprintf(out, sizeof out,
           "{\"iss\":\"https://idp.example\",\"aud\":\"spine\",\"sub\":\"ops:jane\","
           "\"exp\":%d,\"iat\":%d,\"scope\":\"tasks:resolve workflows:read\"%s}",
           NOW + 300, NOW - 10, extra);
  return out;
}

static EVP_PKEY *rsa, *ec, *other_rsa;
static spine_jwt_keys *keys;
static char dir[] = "/tmp/spine-jwt-XXXXXX";
static char path[64];

static void write_file(const char *p, const char *text) {
  FILE *f = fopen(p, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  ASSERT(fclose(f) == 0);
}

static void setup(void) {
  rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  other_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  ASSERT(rsa && ec && other_rsa);
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/jwks.json", dir);
  static char text[8192];
  char a[2048], b[512];
  jwk(rsa, "r1", ",\"alg\":\"RS256\",\"use\":\"sig\"", a, sizeof a);
  jwk(ec, "e1", "", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\": [\n%s,\n%s,\n{\"kty\":\"RSA\",\"use\":\"enc\"}]}", a, b);
  write_file(path, text);
  spine_err e;
  ASSERT_EQ(spine_jwt_keys_load(path, &keys, &e), 0);
  ASSERT_EQ(spine_jwt_keys_count(keys), 2); /* the "enc" key is skipped */
}

static void teardown(void) {
  spine_jwt_keys_free(keys);
  EVP_PKEY_free(rsa);
  EVP_PKEY_free(other_rsa);
  EVP_PKEY_free(ec);
  unlink(path);
  rmdir(dir);
}

static spine_jwt_claims got;
static spine_err err;

/* Verifies `t` under the test's opts (skew 60 s); returns the refusal code. */
static const char *check_opts(const char *t, size_t len, const spine_jwt_opts *o) {
  int rc = spine_jwt_verify(keys, t, len, o, NOW, &got, &err);
  if (rc == 0) {
    ASSERT_EQ(got.refusal, SPINE_JWT_ACCEPTED);
  } else {
    ASSERT_EQ(rc, SPINE_EREJECTED);
    ASSERT_EQ(err.code, SPINE_EREJECTED);
    ASSERT(err.msg[0] != '\0');
    ASSERT_NE(got.refusal, SPINE_JWT_ACCEPTED);
    ASSERT_STR_EQ(got.subject, "");
    ASSERT_STR_EQ(got.kid, "");
    ASSERT_EQ(got.nscopes, 0);
  }
  return spine_jwt_refusal_code(got.refusal);
}

static const char *check(const char *t) {
  spine_jwt_opts o = SPINE_JWT_OPTS_INIT;
  o.issuer = "https://idp.example";
  o.audience = "spine";
  return check_opts(t, strlen(t), &o);
}

TEST_IMPL(jwt_accepts_rs256_and_es256) {
  setup();
  ASSERT_STR_EQ(check(token("{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}", claims(""), rsa)),
                "accepted");
  ASSERT_STR_EQ(got.subject, "ops:jane");
  ASSERT_EQ(got.nscopes, 2);
  ASSERT_STR_EQ(got.scopes[0], "tasks:resolve");
  ASSERT_STR_EQ(got.scopes[1], "workflows:read");
  ASSERT_EQ(got.expires_s, NOW + 300);
  ASSERT_STR_EQ(got.kid, "r1");

  ASSERT_STR_EQ(check(token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims(""), ec)), "accepted");
  ASSERT_STR_EQ(got.subject, "ops:jane");
  ASSERT_EQ(got.nscopes, 2);

  /* No kid: the one key of its alg. */
  ASSERT_STR_EQ(check(token("{\"alg\":\"ES256\"}", claims(""), ec)), "accepted");
  ASSERT_STR_EQ(got.kid, "");

  /* Scopes from a configured claim, as an array; none when it is absent. */
  spine_jwt_opts o = SPINE_JWT_OPTS_INIT;
  o.issuer = "https://idp.example";
  o.audience = "spine";
  o.scope_claim = "roles";
  const char *t = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}",
                        claims(",\"roles\":[\"admin\",\"cases:start\"]"), rsa);
  ASSERT_STR_EQ(check_opts(t, strlen(t), &o), "accepted");
  ASSERT_EQ(got.nscopes, 2);
  ASSERT_STR_EQ(got.scopes[0], "admin");
  ASSERT_STR_EQ(got.scopes[1], "cases:start");
  o.scope_claim = "absent";
  ASSERT_STR_EQ(check_opts(t, strlen(t), &o), "accepted");
  ASSERT_EQ(got.nscopes, 0);

  /* aud as an array containing it; extra spaces between scopes. */
  ASSERT_STR_EQ(check(token("{\"alg\":\"RS256\",\"kid\":\"r1\"}",
                            "{\"iss\":\"https://idp.example\",\"aud\":[\"crm\",\"spine\"],"
                            "\"sub\":\"u1\",\"exp\":1800000100,\"scope\":\"  a   b \"}",
                            rsa)),
                "accepted");
  ASSERT_EQ(got.nscopes, 2);
  ASSERT_STR_EQ(got.scopes[1], "b");
  teardown();
  return 0;
}

TEST_IMPL(jwt_refuses_forgeries) {
  setup();
  const char *rs = "{\"alg\":\"RS256\",\"kid\":\"r1\"}", *es = "{\"alg\":\"ES256\",\"kid\":\"e1\"}";
  char t[16384];

  /* One flipped bit of the signature, of each alg. */
  for (int i = 0; i < 2; i++) {
    snprintf(t, sizeof t, "%s", token(i ? es : rs, claims(""), i ? ec : rsa));
    char *s = strrchr(t, '.') + 5;
    *s = *s == 'A' ? 'B' : 'A';
    ASSERT_STR_EQ(check(t), "bad_signature");
    ASSERT_STR_EQ(err.field, "signature");
  }
  /* A changed payload under the original signature. */
  snprintf(t, sizeof t, "%s", token(rs, claims(""), rsa));
  char *sig = strrchr(t, '.');
  char forged[16384], p[4096];
  b64url_str(claims(",\"admin\":true"), p);
  char h[256];
  b64url_str(rs, h);
  snprintf(forged, sizeof forged, "%s.%s%s", h, p, sig);
  ASSERT_STR_EQ(check(forged), "bad_signature");

  /* Signed by another key under a trusted kid. */
  ASSERT_STR_EQ(check(token(rs, claims(""), other_rsa)), "bad_signature");
  ASSERT_STR_CONTAINS(err.msg, "r1");

  /* alg none, with or without a signature; a missing alg. */
  ASSERT_STR_EQ(check(token("{\"alg\":\"none\"}", claims(""), NULL)), "malformed");
  snprintf(t, sizeof t, "%sAAAA", token("{\"alg\":\"none\",\"kid\":\"r1\"}", claims(""), NULL));
  ASSERT_STR_EQ(check(t), "unsupported_alg");
  ASSERT_STR_EQ(err.field, "header.alg");
  snprintf(t, sizeof t, "%sAAAA", token("{\"kid\":\"r1\"}", claims(""), NULL));
  ASSERT_STR_EQ(check(t), "unsupported_alg");

  /* Alg confusion: HS256 with the RSA public key (its JWKS text) as the HMAC secret. */
  char pub[2048];
  jwk(rsa, "r1", ",\"alg\":\"RS256\",\"use\":\"sig\"", pub, sizeof pub);
  snprintf(t, sizeof t, "%s", token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", claims(""), NULL));
  unsigned char mac[32];
  spine_hmac_sha256(pub, strlen(pub), t, strlen(t) - 1, mac);
  b64url(mac, 32, t + strlen(t));
  ASSERT_STR_EQ(check(t), "unsupported_alg");
  ASSERT_STR_CONTAINS(err.msg, "HS256");
  /* An ES256 token naming the RSA key's kid; an alg Spine does not take. */
  ASSERT_STR_EQ(check(token("{\"alg\":\"ES256\",\"kid\":\"r1\"}", claims(""), ec)), "unknown_key");
  ASSERT_STR_EQ(check(token("{\"alg\":\"PS256\",\"kid\":\"r1\"}", claims(""), rsa)),
                "unsupported_alg");
  ASSERT_STR_EQ(
      check(token("{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"b64\"]}", claims(""), rsa)),
      "unsupported_alg");

  /* An unknown kid; a kid of the wrong type. */
  ASSERT_STR_EQ(check(token("{\"alg\":\"RS256\",\"kid\":\"r2\"}", claims(""), rsa)), "unknown_key");
  ASSERT_STR_EQ(err.field, "header.kid");
  ASSERT_STR_EQ(check(token("{\"alg\":\"RS256\",\"kid\":7}", claims(""), rsa)), "unknown_key");

  /* ES256 signatures of the wrong length: one byte short, one long, and DER instead of r || s. */
  snprintf(t, sizeof t, "%s", token(es, claims(""), ec));
  char *s = strrchr(t, '.') + 1;
  unsigned char raw[70];
  memset(raw, 0x11, sizeof raw);
  b64url(raw, 63, s);
  ASSERT_STR_EQ(check(t), "bad_signature");
  ASSERT_STR_CONTAINS(err.msg, "63 bytes");
  b64url(raw, 65, s);
  ASSERT_STR_EQ(check(t), "bad_signature");
  {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t dl = sizeof der;
    *(s - 1) = '\0';
    ASSERT(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, ec, NULL) == 1);
    ASSERT(EVP_DigestSign(md, der, &dl, (unsigned char *)t, strlen(t)) == 1);
    EVP_MD_CTX_free(md);
    *(s - 1) = '.';
    b64url(der, dl, s);
    ASSERT_STR_EQ(check(t), "bad_signature");
  }
  /* r || s of zeros, and of all ones (past the group order). */
  memset(raw, 0, 64);
  b64url(raw, 64, s);
  ASSERT_STR_EQ(check(t), "bad_signature");
  memset(raw, 0xff, 64);
  b64url(raw, 64, s);
  ASSERT_STR_EQ(check(t), "bad_signature");
  /* An RS256 signature cut short. */
  snprintf(t, sizeof t, "%s", token(rs, claims(""), rsa));
  unsigned char junk[256];
  memset(junk, 0x11, sizeof junk);
  b64url(junk, 255, strrchr(t, '.') + 1);
  ASSERT_STR_EQ(check(t), "bad_signature");
  ASSERT_STR_CONTAINS(err.msg, "255 bytes");
  teardown();
  return 0;
}

TEST_IMPL(jwt_checks_claims) {
  setup();
  const char *rs = "{\"alg\":\"RS256\",\"kid\":\"r1\"}";
  char p[1024];
#define PAYLOAD(...) (snprintf(p, sizeof p, __VA_ARGS__), p)
#define BASE         "\"iss\":\"https://idp.example\",\"aud\":\"spine\",\"sub\":\"u\""

  /* exp: beyond the skew, within it, missing, not a number. */
  ASSERT_STR_EQ(check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d}", NOW - 61), rsa)), "expired");
  ASSERT_STR_EQ(err.field, "payload.exp");
  ASSERT_STR_CONTAINS(err.msg, "skew 60 s");
  ASSERT_STR_EQ(check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d}", NOW - 60), rsa)), "expired");
  ASSERT_STR_EQ(check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d}", NOW - 59), rsa)), "accepted");
  ASSERT_STR_EQ(check(token(rs, "{" BASE "}", rsa)), "expired");
  ASSERT_STR_EQ(check(token(rs, "{" BASE ",\"exp\":\"soon\"}", rsa)), "bad_claim");
  ASSERT_STR_EQ(check(token(rs, "{" BASE ",\"exp\":1e300}", rsa)), "bad_claim");
  spine_jwt_opts strict = {"https://idp.example", "spine", 0, NULL};
  const char *t = token(rs, PAYLOAD("{" BASE ",\"exp\":%d}", NOW - 1), rsa);
  ASSERT_STR_EQ(check_opts(t, strlen(t), &strict), "expired");

  /* nbf and iat in the future: beyond the skew and within it. */
  ASSERT_STR_EQ(
      check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"nbf\":%d}", NOW + 900, NOW + 61), rsa)),
      "not_yet_valid");
  ASSERT_STR_EQ(err.field, "payload.nbf");
  ASSERT_STR_EQ(
      check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"nbf\":%d}", NOW + 900, NOW + 60), rsa)),
      "accepted");
  ASSERT_STR_EQ(
      check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"iat\":%d}", NOW + 900, NOW + 3600), rsa)),
      "not_yet_valid");
  ASSERT_STR_EQ(err.field, "payload.iat");

  /* iss: wrong, missing. */
  ASSERT_STR_EQ(check(token(rs,
                            PAYLOAD("{\"iss\":\"https://evil.example\",\"aud\":\"spine\","
                                    "\"sub\":\"u\",\"exp\":%d}",
                                    NOW + 60),
                            rsa)),
                "wrong_issuer");
  ASSERT_STR_EQ(
      check(token(rs, PAYLOAD("{\"aud\":\"spine\",\"sub\":\"u\",\"exp\":%d}", NOW + 60), rsa)),
      "wrong_issuer");

  /* aud: wrong, an array without it, missing, a number. */
  const char *auds[] = {"\"crm\"", "[\"crm\",\"billing\"]", NULL, "7", "[\"spine\",7]"};
  const char *want[] = {"wrong_audience", "wrong_audience", "wrong_audience", "bad_claim",
                        "bad_claim"};
  for (int i = 0; i < 5; i++) {
    if (auds[i])
      PAYLOAD("{\"iss\":\"https://idp.example\",\"aud\":%s,\"sub\":\"u\",\"exp\":%d}", auds[i],
              NOW + 60);
    else
      PAYLOAD("{\"iss\":\"https://idp.example\",\"sub\":\"u\",\"exp\":%d}", NOW + 60);
    ASSERT_STR_EQ(check(token(rs, p, rsa)), want[i]);
    ASSERT_STR_EQ(err.field, "payload.aud");
  }

  /* sub: missing, empty, not a string, with a newline. */
  const char *subs[] = {"", ",\"sub\":\"\"", ",\"sub\":42", ",\"sub\":\"a\\nb\""};
  for (int i = 0; i < 4; i++) {
    PAYLOAD("{\"iss\":\"https://idp.example\",\"aud\":\"spine\",\"exp\":%d%s}", NOW + 60, subs[i]);
    ASSERT_STR_EQ(check(token(rs, p, rsa)), "no_subject");
  }

  /* Scopes: of the wrong type, too many, too long. */
  ASSERT_STR_EQ(check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"scope\":{}}", NOW + 60), rsa)),
                "bad_claim");
  ASSERT_STR_EQ(check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"scope\":[1]}", NOW + 60), rsa)),
                "bad_claim");
  char many[400] = "";
  for (int i = 0; i <= SPINE_JWT_MAX_SCOPES; i++)
    strcat(many, "s ");
  ASSERT_STR_EQ(
      check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"scope\":\"%s\"}", NOW + 60, many), rsa)),
      "bad_claim");
  char longs[200];
  memset(longs, 'x', 128);
  longs[128] = '\0';
  ASSERT_STR_EQ(
      check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"scope\":\"%s\"}", NOW + 60, longs), rsa)),
      "bad_claim");
  longs[127] = '\0';
  ASSERT_STR_EQ(
      check(token(rs, PAYLOAD("{" BASE ",\"exp\":%d,\"scope\":\"%s\"}", NOW + 60, longs), rsa)),
      "accepted");

  /* A refusal's log line: its code, field and reason, never the token. */
  t = token(rs, PAYLOAD("{" BASE ",\"exp\":%d}", NOW - 3600), rsa);
  ASSERT_STR_EQ(check(t), "expired");
  char logpath[80];
  snprintf(logpath, sizeof logpath, "%s/log", dir);
  fflush(stderr);
  int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT(saved >= 0 && fd >= 0 && dup2(fd, 2) == 2);
  spine_jwt_log_refusal(&got, &err, "192.0.2.7");
  fflush(stderr);
  ASSERT(dup2(saved, 2) == 2);
  close(fd);
  close(saved);
  char line[1024] = "";
  FILE *f = fopen(logpath, "r");
  ASSERT(f && fgets(line, sizeof line, f));
  fclose(f);
  unlink(logpath);
  ASSERT_STR_CONTAINS(line, "\"level\":\"warn\"");
  ASSERT_STR_CONTAINS(line, "\"component\":\"auth\"");
  ASSERT_STR_CONTAINS(line, "\"code\":\"expired\"");
  ASSERT_STR_CONTAINS(line, "\"field\":\"payload.exp\"");
  ASSERT_STR_CONTAINS(line, "\"peer\":\"192.0.2.7\"");
  ASSERT(strstr(line, strrchr(t, '.') + 1) == NULL);

  /* Opts without an issuer are the caller's mistake. */
  spine_jwt_opts none = SPINE_JWT_OPTS_INIT;
  none.audience = "spine";
  ASSERT_EQ(spine_jwt_verify(keys, p, strlen(p), &none, NOW, &got, &err), SPINE_EINVAL);
  teardown();
  return 0;
#undef PAYLOAD
#undef BASE
}

TEST_IMPL(jwt_refuses_malformed) {
  setup();
  const char *rs = "{\"alg\":\"RS256\",\"kid\":\"r1\"}";
  char t[16384];
  snprintf(t, sizeof t, "%s", token(rs, claims(""), rsa));
  const char *good = t;
  ASSERT_STR_EQ(check(good), "accepted");
  size_t len = strlen(good);
  char *dot1 = strchr(t, '.');
  char bad[20000];

  /* Not base64url: '+', '/', '=' padding, a space, a bit past the last byte. */
  const char *subst[] = {"+", "/", "=", " "};
  for (int i = 0; i < 4; i++) {
    snprintf(bad, sizeof bad, "%s", good);
    bad[3] = subst[i][0];
    ASSERT_STR_EQ(check(bad), "malformed");
    ASSERT_STR_EQ(err.field, "header");
  }
  /* "e30" is "{}"; "e31" has a bit set past its two bytes. */
  snprintf(bad, sizeof bad, "e31.%s", dot1 + 1);
  ASSERT_STR_EQ(check(bad), "malformed");
  snprintf(bad, sizeof bad, "e30A.%s", dot1 + 1); /* 4n+1 characters */
  ASSERT_STR_EQ(check(bad), "malformed");
  snprintf(bad, sizeof bad, "%s==", good);
  ASSERT_STR_EQ(check(bad), "malformed");
  ASSERT_STR_EQ(err.field, "signature");

  /* Parts: two, four, empty ones, nothing at all, NUL bytes. */
  snprintf(bad, sizeof bad, "%.*s", (int)(strrchr(good, '.') - good), good);
  ASSERT_STR_EQ(check(bad), "malformed");
  snprintf(bad, sizeof bad, "%s.AAAA", good);
  ASSERT_STR_EQ(check(bad), "malformed");
  ASSERT_STR_EQ(check(".."), "malformed");
  ASSERT_STR_EQ(check(""), "malformed");
  ASSERT_STR_EQ(
      check_opts(good, len + 1, &(spine_jwt_opts){"https://idp.example", "spine", 60, NULL}),
      "malformed");

  /* Header and payload that are no JSON object; a payload of bad JSON, signed in earnest. */
  ASSERT_STR_EQ(check(token("[\"RS256\"]", claims(""), rsa)), "malformed");
  ASSERT_STR_EQ(check(token("{\"alg\":\"RS256\",\"alg\":\"RS256\"}", claims(""), rsa)),
                "malformed"); /* duplicate keys */
  ASSERT_STR_EQ(check(token("not json", claims(""), rsa)), "malformed");
  ASSERT_STR_EQ(check(token(rs, "{\"sub\":", rsa)), "malformed");
  ASSERT_STR_EQ(err.field, "payload");
  ASSERT_STR_EQ(check(token(rs, "\"a string\"", rsa)), "malformed");
  ASSERT_STR_EQ(check(token(rs, "{\"sub\":\"a\",\"sub\":\"b\"}", rsa)), "malformed");

  /* Oversize: one byte over the cap, whatever it holds. */
  char *big = malloc(SPINE_JWT_MAX_TOKEN + 2);
  memset(big, 'A', SPINE_JWT_MAX_TOKEN + 1);
  memcpy(big, good, len);
  big[SPINE_JWT_MAX_TOKEN + 1] = '\0';
  ASSERT_STR_EQ(check(big), "too_large");
  free(big);
  teardown();
  return 0;
}

/* Loads `text` as a JWKS; returns the error (e.field and e.msg), or "" when it loads. */
static const char *keys_error(const char *text, spine_err *e) {
  static char out[512];
  spine_jwt_keys *ks = NULL;
  int rc = spine_jwt_keys_parse(text, strlen(text), "jwks.json", &ks, e);
  if (rc == 0) {
    ASSERT(ks != NULL);
    spine_jwt_keys_free(ks);
    return "";
  }
  ASSERT(ks == NULL);
  ASSERT_EQ(rc, SPINE_EINVAL);
  snprintf(out, sizeof out, "%s: %s", e->field, e->msg);
  return out;
}

/* Loads `text` as a JWKS that must load; returns why its i-th left-out key was left out, or
 * NULL. */
static const char *keys_skipped(const char *text, int i) {
  static char out[256];
  spine_jwt_keys *ks = NULL;
  spine_err e;
  ASSERT_EQ(spine_jwt_keys_parse(text, strlen(text), "jwks.json", &ks, &e), 0);
  const char *why = spine_jwt_keys_skipped(ks, i);
  if (why) snprintf(out, sizeof out, "%s", why);
  spine_jwt_keys_free(ks);
  return why ? out : NULL;
}

TEST_IMPL(jwt_keys_errors) {
  EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  EVP_PKEY *k256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  EVP_PKEY *r = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  ASSERT(small && p384 && k256 && r);
  char a[2048], b[2048], text[8192];
  spine_err e;

  jwk(k256, "e1", "", a, sizeof a);
  snprintf(text, sizeof text, "{\"keys\":[%s]}", a);
  ASSERT_STR_EQ(keys_error(text, &e), "");

  /* Keys of another kty, curve or alg are left out, each noted; the file still loads. */
  jwk(r, "r1", "", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\":[%s,\n{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", b);
  ASSERT_STR_EQ(keys_skipped(text, 0), "keys[1]: left out: kty oct");
  ASSERT(keys_skipped(text, 1) == NULL);
  jwk(p384, "e2", "", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\":[%s,%s]}", a, b);
  ASSERT_STR_EQ(keys_skipped(text, 0), "keys[1] (kid e2): left out: curve P-384");
  /* A file left with no key is refused, saying what was left out. */
  jwk(r, "r1", ",\"alg\":\"RS512\"", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\":[%s]}", b);
  ASSERT_STR_CONTAINS(keys_error(text, &e),
                      "keys: no key for RS256 or ES256 (RSA, or EC P-256); left out: keys[0] (kid "
                      "r1): left out: alg RS512");
  jwk(r, "r1", ",\"alg\":\"ES256\"", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\":[%s]}", b);
  ASSERT_STR_CONTAINS(keys_error(text, &e), "left out: alg ES256");
  /* The rest is refused, naming the key and the field. */
  snprintf(text, sizeof text, "{\"keys\":[%s,\n{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", a);
  ASSERT_STR_CONTAINS(keys_error(text, &e), "keys[1].n: missing");
  ASSERT_STR_EQ(e.where, "jwks.json:2");
  jwk(small, "r0", "", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\":[%s]}", b);
  ASSERT_STR_CONTAINS(keys_error(text, &e), "keys[0].n: an RSA key of 1024 bits (at least 2048)");
  jwk(r, "r1", ",\"d\":\"AAAA\"", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\":[%s]}", b);
  ASSERT_STR_CONTAINS(keys_error(text, &e), "keys[0].d: a private key");
  snprintf(text, sizeof text, "{\"keys\":[%s,%s]}", a, a);
  ASSERT_STR_CONTAINS(keys_error(text, &e), "keys[1].kid: \"e1\" twice");
  jwk(r, "r1", ",\"use\":\"wrap\"", b, sizeof b);
  snprintf(text, sizeof text, "{\"keys\":[%s]}", b);
  ASSERT_STR_CONTAINS(keys_error(text, &e), "keys[0].use");

  /* A point off the curve: y + 1. */
  {
    char *y = strstr(a, "\"y\":\"") + 5;
    y[0] = y[0] == 'A' ? 'B' : 'A';
    snprintf(text, sizeof text, "{\"keys\":[%s]}", a);
    ASSERT_STR_CONTAINS(keys_error(text, &e), "keys[0].x: ");
  }
  /* Bad base64url, a short coordinate, a missing member. */
  ASSERT_STR_CONTAINS(
      keys_error("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"ab+c\",\"e\":\"AQAB\"}]}", &e),
      "keys[0].n: not base64url");
  ASSERT_STR_CONTAINS(
      keys_error("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
                 &e),
      "keys[0].x: 3 bytes (expected 32)");
  ASSERT_STR_CONTAINS(keys_error("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", &e),
                      "keys[0].n: missing");
  ASSERT_STR_CONTAINS(keys_error("{\"keys\":[{\"kty\":7}]}", &e), "keys[0].kty: a number");
  ASSERT_STR_CONTAINS(keys_error("{\"keys\":[\"x\"]}", &e), "keys[0]: a string");

  /* The set itself. */
  ASSERT_STR_CONTAINS(keys_error("{\"keys\":[]}", &e), "keys: no key for RS256 or ES256");
  ASSERT_STR_CONTAINS(keys_error("{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\"}]}", &e),
                      "keys: no key for RS256 or ES256");
  ASSERT_STR_CONTAINS(keys_error("{}", &e), "keys: missing or not an array");
  ASSERT_STR_CONTAINS(keys_error("[]", &e), "a JWKS is an object");
  ASSERT_STR_CONTAINS(keys_error("{\"keys\":[}", &e), "");
  ASSERT_STR_EQ(e.where, "jwks.json:1");

  spine_jwt_keys *ks = (spine_jwt_keys *)1;
  ASSERT_EQ(spine_jwt_keys_load("/nonexistent/jwks.json", &ks, &e), SPINE_EIO);
  ASSERT(ks == NULL);

  EVP_PKEY_free(small);
  EVP_PKEY_free(p384);
  EVP_PKEY_free(k256);
  EVP_PKEY_free(r);
  return 0;
}

TEST_IMPL(jwt_config_from_env) {
  spine_jwt_config cfg;
  spine_jwt_opts o;
  spine_err e;
  const char *vars[] = {"SPINE_JWKS_FILE", "SPINE_JWT_ISSUER", "SPINE_JWT_AUDIENCE",
                        "SPINE_JWT_SCOPE_CLAIM", "SPINE_JWT_SKEW"};
  for (int i = 0; i < 5; i++)
    unsetenv(vars[i]);
  ASSERT_EQ(spine_jwt_config_from_env(&cfg, &e), 0);
  ASSERT_EQ(cfg.enabled, 0);

  setenv("SPINE_JWT_ISSUER", "https://idp.example", 1);
  ASSERT_EQ(spine_jwt_config_from_env(&cfg, &e), SPINE_EINVAL);
  ASSERT_STR_EQ(e.field, "SPINE_JWT_ISSUER");

  setenv("SPINE_JWKS_FILE", "/etc/spine/jwks.json", 1);
  ASSERT_EQ(spine_jwt_config_from_env(&cfg, &e), SPINE_EINVAL);
  ASSERT_STR_EQ(e.field, "SPINE_JWT_AUDIENCE");

  setenv("SPINE_JWT_AUDIENCE", "spine", 1);
  ASSERT_EQ(spine_jwt_config_from_env(&cfg, &e), 0);
  ASSERT_EQ(cfg.enabled, 1);
  ASSERT_EQ(cfg.skew_s, 60);
  spine_jwt_config_opts(&cfg, &o);
  ASSERT_STR_EQ(o.issuer, "https://idp.example");
  ASSERT_STR_EQ(o.audience, "spine");
  ASSERT_STR_EQ(o.scope_claim, "scope");
  ASSERT_STR_EQ(cfg.jwks_file, "/etc/spine/jwks.json");

  setenv("SPINE_JWT_SCOPE_CLAIM", "roles", 1);
  setenv("SPINE_JWT_SKEW", "2m", 1);
  ASSERT_EQ(spine_jwt_config_from_env(&cfg, &e), 0);
  ASSERT_EQ(cfg.skew_s, 120);
  ASSERT_STR_EQ(cfg.scope_claim, "roles");
  setenv("SPINE_JWT_SKEW", "2h", 1);
  ASSERT_EQ(spine_jwt_config_from_env(&cfg, &e), SPINE_EINVAL);
  ASSERT_STR_EQ(e.field, "SPINE_JWT_SKEW");
  for (int i = 0; i < 5; i++)
    unsetenv(vars[i]);
  return 0;
}
