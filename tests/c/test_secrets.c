/* The secrets' forms and their scrubbing (secrets.c): a value is found as is, in upper and lower
 * case, in base64 (standard and URL-safe, padded or not, and inside a longer base64 text at
 * every alignment) and in hex; short forms are not kept; the set is bounded. */
#include "secrets.h"

#include "test.h"

#define SECRET "Sk_live-7f3a/9+Q~z"

static const char abc_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char abc_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* An independent base64 (bit by bit) for the test's own texts. */
static void b64(const char *in, size_t n, const char *abc, int pad, char *out) {
  size_t bits = 8 * n, o = 0;
  for (size_t b = 0; b < bits; b += 6) {
    int v = 0;
    for (size_t k = 0; k < 6; k++) {
      size_t at = b + k;
      int bit = at < bits ? ((unsigned char)in[at / 8] >> (7 - at % 8)) & 1 : 0;
      v = v << 1 | bit;
    }
    out[o++] = abc[v];
  }
  while (pad && o % 4)
    out[o++] = '=';
  out[o] = '\0';
}

static const char *scrubbed(const spine_secrets *s, const char *text) {
  static char out[1024];
  spine_buf b = SPINE_BUF_INIT;
  ASSERT_EQ(spine_secrets_append(s, &b, text, strlen(text)), 0);
  snprintf(out, sizeof out, "%s", spine_buf_str(&b));
  spine_buf_free(&b);
  return out;
}

TEST_IMPL(secrets_forms) {
  spine_secrets s = {0};
  const char *kept = spine_secrets_remember(&s, SECRET, strlen(SECRET));
  ASSERT_STR_EQ(kept, SECRET);
  ASSERT(spine_secrets_remember(&s, SECRET, strlen(SECRET)) == kept); /* once */
  ASSERT_EQ(s.secrets, 1);

  char text[512], enc[256];
  ASSERT_STR_EQ(scrubbed(&s, "key=" SECRET ";"), "key=[secret];");
  ASSERT_STR_EQ(scrubbed(&s, "SK_LIVE-7F3A/9+Q~Z and sk_live-7f3a/9+q~z"), "[secret] and [secret]");
  ASSERT_STR_EQ(scrubbed(&s, "536b5f6c6976652d376633612f392b517e7a"), "[secret]");
  ASSERT_STR_EQ(scrubbed(&s, "536B5F6C6976652D376633612F392B517E7A!"), "[secret]!");
  /* base64 and base64url, padded or not: the whole form goes */
  for (int url = 0; url < 2; url++)
    for (int pad = 0; pad < 2; pad++) {
      b64(SECRET, strlen(SECRET), url ? abc_url : abc_std, pad, enc);
      snprintf(text, sizeof text, "<%s>", enc);
      ASSERT_STR_EQ(scrubbed(&s, text), "<[secret]>");
    }
  /* inside a longer base64 text, at every alignment ("Basic " .. b64("user:" .. key)): what
   * is left around the mark says nothing about the secret */
  for (int url = 0; url < 2; url++)
    for (size_t before = 0; before < 6; before++)
      for (size_t after = 0; after < 4; after++) {
        char plain[64];
        snprintf(plain, sizeof plain, "%.*s" SECRET "%.*s", (int)before, "user:x", (int)after,
                 "@xyz");
        b64(plain, strlen(plain), url ? abc_url : abc_std, 1, enc);
        const char *got = scrubbed(&s, enc);
        ASSERT_STR_CONTAINS(got, "[secret]");
        ASSERT_LE(strlen(got), strlen("[secret]") + 2 + 4 * (before + after + 2) / 3 + 4);
      }
  /* an ordinary text is left alone */
  ASSERT_STR_EQ(scrubbed(&s, "nothing to see here, sk_live"), "nothing to see here, sk_live");
  spine_secrets_free(&s);
  ASSERT_EQ(s.n, 0);
  ASSERT_STR_EQ(scrubbed(&s, "key=" SECRET), "key=" SECRET);
  return 0;
}

TEST_IMPL(secrets_short_and_bounded) {
  spine_secrets s = {0};
  /* A short value is kept (and found) itself; none of its forms is: they would be words. */
  ASSERT_STR_EQ(spine_secrets_remember(&s, "abc", 3), "abc");
  ASSERT_STR_EQ(scrubbed(&s, "xabcx ABC YWJj"), "x[secret]x ABC YWJj");
  ASSERT_STR_EQ(spine_secrets_remember(&s, "", 0), "");
  /* Longest first: a secret inside another never cuts it. */
  ASSERT(spine_secrets_remember(&s, "abcdefghijkl-long", 17) != NULL);
  ASSERT_STR_EQ(scrubbed(&s, "abcdefghijkl-long"), "[secret]");
  int held = s.secrets;
  char v[32];
  for (int i = held; i < SPINE_SECRETS_MAX; i++) {
    snprintf(v, sizeof v, "value-%04d-xyz", i);
    ASSERT(spine_secrets_remember(&s, v, strlen(v)) != NULL);
  }
  ASSERT_EQ(s.secrets, SPINE_SECRETS_MAX);
  ASSERT(spine_secrets_remember(&s, "one-too-many-value", 18) == NULL);
  snprintf(v, sizeof v, "value-%04d-xyz", SPINE_SECRETS_MAX - 1);
  ASSERT(spine_secrets_remember(&s, v, strlen(v)) != NULL); /* held already: still handed out */
  ASSERT_STR_EQ(scrubbed(&s, "a VALUE-0100-XYZ b"), "a [secret] b");
  spine_secrets_free(&s);
  return 0;
}
