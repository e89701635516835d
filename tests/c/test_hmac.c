/* HMAC-SHA256 against the RFC 4231 test vectors (cases 1-7: short, block-size and longer keys,
 * truncation), the incremental SHA-256 split at every offset, and signature verification. */
#include "hmac.h"
#include "sha256.h"

#include "test.h"

static const char *mac_hex(const void *key, size_t klen, const char *msg, size_t mlen) {
  static char hex[65];
  spine_hmac_sha256_hex(key, klen, msg, mlen, hex);
  return hex;
}

TEST_IMPL(hmac_rfc4231) {
  unsigned char key[131];
  char data[50];

  memset(key, 0x0b, 20);
  ASSERT_STR_EQ(mac_hex(key, 20, "Hi There", 8),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

  const char *what = "what do ya want for nothing?";
  ASSERT_STR_EQ(mac_hex("Jefe", 4, what, strlen(what)),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

  memset(key, 0xaa, 20);
  memset(data, 0xdd, 50);
  ASSERT_STR_EQ(mac_hex(key, 20, data, 50),
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

  for (int i = 0; i < 25; i++)
    key[i] = (unsigned char)(i + 1);
  memset(data, 0xcd, 50);
  ASSERT_STR_EQ(mac_hex(key, 25, data, 50),
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

  /* case 5 is truncated to 128 bits */
  memset(key, 0x0c, 20);
  const char *trunc = mac_hex(key, 20, "Test With Truncation", 20);
  ASSERT_EQ(strncmp(trunc, "a3b6167473100ee06e0c796c2955552b", 32), 0);

  memset(key, 0xaa, 131);
  const char *big = "Test Using Larger Than Block-Size Key - Hash Key First";
  ASSERT_STR_EQ(mac_hex(key, 131, big, strlen(big)),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  const char *both = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the HMAC "
                     "algorithm.";
  ASSERT_STR_EQ(mac_hex(key, 131, both, strlen(both)),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  return 0;
}

TEST_IMPL(hmac_sha256_incremental) {
  /* Every split of a 200-byte message into two updates gives the one-shot digest. */
  char msg[200];
  for (int i = 0; i < 200; i++)
    msg[i] = (char)('a' + i % 26);
  char want[65];
  spine_sha256_hex(msg, sizeof msg, want);
  for (size_t cut = 0; cut <= sizeof msg; cut++) {
    spine_sha256 s;
    unsigned char d[32];
    spine_sha256_init(&s);
    spine_sha256_update(&s, msg, cut);
    spine_sha256_update(&s, msg + cut, sizeof msg - cut);
    spine_sha256_final(&s, d);
    char got[65];
    for (int i = 0; i < 32; i++)
      snprintf(got + 2 * i, 3, "%02x", d[i]);
    ASSERT_STR_EQ(got, want);
  }
  return 0;
}

TEST_IMPL(hmac_verify) {
  const char *key = "s3cret", *body = "{\"id\":\"sw-1\"}";
  char hex[65];
  spine_hmac_sha256_hex(key, 6, body, strlen(body), hex);
  ASSERT_EQ(spine_hmac_sha256_verify(key, 6, body, strlen(body), hex, 64), 1);
  char upper[65];
  for (int i = 0; i < 65; i++)
    upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 32) : hex[i];
  ASSERT_EQ(spine_hmac_sha256_verify(key, 6, body, strlen(body), upper, 64), 1);
  char bad[65];
  memcpy(bad, hex, 65);
  bad[63] = bad[63] == '0' ? '1' : '0';
  ASSERT_EQ(spine_hmac_sha256_verify(key, 6, body, strlen(body), bad, 64), 0);
  ASSERT_EQ(spine_hmac_sha256_verify(key, 6, body, strlen(body), hex, 63), 0);
  ASSERT_EQ(spine_hmac_sha256_verify("other", 5, body, strlen(body), hex, 64), 0);
  memcpy(bad, hex, 65);
  bad[0] = 'g';
  ASSERT_EQ(spine_hmac_sha256_verify(key, 6, body, strlen(body), bad, 64), 0);
  ASSERT_EQ(spine_hmac_sha256_verify(key, 6, body, strlen(body), NULL, 0), 0);
  return 0;
}

TEST_IMPL(hmac_equal) {
  ASSERT_EQ(spine_hmac_equal("abc", 3, "abc", 3), 1);
  ASSERT_EQ(spine_hmac_equal("", 0, "", 0), 1);
  ASSERT_EQ(spine_hmac_equal("abc", 3, "abd", 3), 0);
  ASSERT_EQ(spine_hmac_equal("xbc", 3, "abc", 3), 0);
  ASSERT_EQ(spine_hmac_equal("abc", 3, "abcd", 4), 0);
  ASSERT_EQ(spine_hmac_equal("abcabc", 6, "abc", 3), 0); /* b repeated is not b */
  ASSERT_EQ(spine_hmac_equal("abc", 3, "", 0), 0);
  ASSERT_EQ(spine_hmac_equal("", 0, "abc", 3), 0);
  return 0;
}

TEST_IMPL(hmac_empty_key_and_message) {
  /* libcrypto reads a NULL key as none given: empty keys and messages, NULL or not, must still
   * sign (values from Python's hmac module). */
  const char *quick = "The quick brown fox jumps over the lazy dog";
  ASSERT_STR_EQ(mac_hex(NULL, 0, NULL, 0),
                "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  ASSERT_STR_EQ(mac_hex("", 0, "", 0),
                "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  ASSERT_STR_EQ(mac_hex(NULL, 0, quick, strlen(quick)),
                "fb011e6154a19b9a4c767373c305275a5a69e8b68b0b4c9200c383dced19a416");
  ASSERT_STR_EQ(mac_hex("key", 3, NULL, 0),
                "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
  return 0;
}
