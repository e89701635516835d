/* Token buckets by source on the caller's clock: what a bucket lets through and when it refills,
 * the bounded table (the least recently seen source goes, a busy one stays), the keys of
 * addresses, and the settings' syntax. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "ratelimit.h"

#include "test.h"

static void key_of(unsigned n, unsigned char key[16]) {
  memset(key, 0, 16);
  memcpy(key, &n, sizeof n);
}

TEST_IMPL(ratelimit_bucket) {
  spine_ratelimit_opts o = {2, 1000, 3, 0}; /* 2/s, 3 at once */
  spine_ratelimit *rl = spine_ratelimit_new(&o);
  ASSERT(rl != NULL);
  unsigned char a[16], b[16];
  key_of(1, a);
  key_of(2, b);
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(spine_ratelimit_take(rl, a, 0), 0);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 0), 500); /* one token in 1/2 s */
  ASSERT_EQ(spine_ratelimit_take(rl, b, 0), 0);   /* another source has its own bucket */
  ASSERT_EQ(spine_ratelimit_take(rl, a, 499), 1);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 500), 0);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 500), 500);
  /* refilled to the burst, not beyond */
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(spine_ratelimit_take(rl, a, 3600000), 0);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 3600000), 500);
  spine_ratelimit_free(rl);

  spine_ratelimit_opts per_minute = {1, 60000, 0, 0}; /* 1/m, burst defaults to 1 */
  rl = spine_ratelimit_new(&per_minute);
  ASSERT(rl != NULL);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 1000), 0);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 1000), 60000);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 60999), 1);
  ASSERT_EQ(spine_ratelimit_take(rl, a, 61000), 0);
  spine_ratelimit_free(rl);

  spine_ratelimit_opts off = {0, 1000, 1, 0};
  rl = spine_ratelimit_new(&off);
  ASSERT(rl != NULL);
  for (int i = 0; i < 1000; i++)
    ASSERT_EQ(spine_ratelimit_take(rl, a, 0), 0);
  spine_ratelimit_free(rl);
  return 0;
}

TEST_IMPL(ratelimit_bounded_sources) {
  spine_ratelimit_opts o = {1, 60000, 1, 4}; /* 1/m each, 4 sources kept */
  spine_ratelimit *rl = spine_ratelimit_new(&o);
  ASSERT(rl != NULL);
  unsigned char k[16], busy[16];
  for (unsigned i = 0; i < 4; i++) {
    key_of(i, k);
    ASSERT_EQ(spine_ratelimit_take(rl, k, 0), 0);
  }
  ASSERT_EQ(spine_ratelimit_sources(rl), 4);
  key_of(0, k);
  ASSERT(spine_ratelimit_take(rl, k, 0) > 0); /* remembered: refused */
  key_of(4, k);
  ASSERT_EQ(spine_ratelimit_take(rl, k, 0), 0); /* a fifth source: source 1 goes, not 0 */
  ASSERT_EQ(spine_ratelimit_sources(rl), 4);
  key_of(0, k);
  ASSERT(spine_ratelimit_take(rl, k, 0) > 0);
  key_of(1, k);
  ASSERT_EQ(spine_ratelimit_take(rl, k, 0), 0); /* forgotten: a full bucket again */

  /* A client with a hundred thousand addresses grows nothing, and a source that keeps sending
   * stays in the table, refused, however many others pass through. */
  key_of(7, busy);
  ASSERT_EQ(spine_ratelimit_take(rl, busy, 0), 0);
  for (unsigned i = 100; i < 100100; i++) {
    key_of(i, k);
    ASSERT_EQ(spine_ratelimit_take(rl, k, 0), 0);
    if (i % 2 == 0) ASSERT(spine_ratelimit_take(rl, busy, 0) > 0);
    ASSERT_LE(spine_ratelimit_sources(rl), 4);
  }
  spine_ratelimit_free(rl);
  return 0;
}

/* The key of a numeric address, IPv6 when it has a ':'. */
static void key_ip(const char *ip, unsigned char key[16]) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  int six = strchr(ip, ':') != NULL;
  ss.ss_family = six ? AF_INET6 : AF_INET;
  ASSERT_EQ(inet_pton(ss.ss_family, ip, six ? (void *)&in6->sin6_addr : (void *)&in->sin_addr), 1);
  spine_ratelimit_key(&ss, key);
}

TEST_IMPL(ratelimit_keys_and_settings) {
  unsigned char a[16], b[16];
  key_ip("192.0.2.7", a);
  key_ip("::ffff:192.0.2.7", b);
  ASSERT_EQ(memcmp(a, b, 16), 0); /* IPv4 alone or mapped: one source */
  key_ip("192.0.2.8", b);
  ASSERT_NE(memcmp(a, b, 16), 0);
  key_ip("2001:db8:1:2::1", a);
  key_ip("2001:db8:1:2:ffff:ffff:ffff:ffff", b);
  ASSERT_EQ(memcmp(a, b, 16), 0); /* one /64: one source */
  key_ip("2001:db8:1:3::1", b);
  ASSERT_NE(memcmp(a, b, 16), 0);

  spine_ratelimit_opts o = {0};
  spine_err e;
  ASSERT_EQ(spine_ratelimit_parse("10/s", "X", &o, &e), 0);
  ASSERT_EQ(o.rate, 10);
  ASSERT_EQ(o.per_ms, 1000);
  ASSERT_EQ(spine_ratelimit_parse("5/m", "X", &o, &e), 0);
  ASSERT_EQ(o.rate, 5);
  ASSERT_EQ(o.per_ms, 60000);
  ASSERT_EQ(spine_ratelimit_parse("1/h", "X", &o, &e), 0);
  ASSERT_EQ(o.rate, 1);
  ASSERT_EQ(o.per_ms, 3600000);
  ASSERT_EQ(spine_ratelimit_parse("off", "X", &o, &e), 0);
  ASSERT_EQ(o.rate, 0);
  const char *bad[] = {"0/s", "10", "10/d", "-1/s", "", " 5/s", "5/s ", "1000001/s", "/s", NULL};
  for (int i = 0; bad[i]; i++) {
    spine_err_clear(&e);
    ASSERT_EQ(spine_ratelimit_parse(bad[i], "SPINE_WEBHOOK_RATE", &o, &e), SPINE_EINVAL);
    ASSERT_STR_EQ(e.field, "SPINE_WEBHOOK_RATE");
    ASSERT_STR_CONTAINS(e.msg, "expected N/s, N/m or N/h");
  }
  ASSERT_EQ(spine_ratelimit_parse(NULL, "X", &o, &e), SPINE_EINVAL);
  return 0;
}
