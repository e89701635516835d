/* spine.money's arithmetic (lib_money.c): a percentage of cents rounded once, a half to the
 * even cent (banker's rounding), and amounts written as people read them. */
#include "lib_money.h"
#include "test.h"

static int64_t pct(int64_t cents, double p) {
  int64_t out = -7777;
  ASSERT_EQ(spine_lib_money_percent(cents, p, &out), 0);
  return out;
}

TEST_IMPL(money_percent_and_format) {
  /* halves go to the even cent */
  ASSERT_EQ(pct(250, 1), 2); /* 2.5 -> 2 */
  ASSERT_EQ(pct(350, 1), 4); /* 3.5 -> 4 */
  ASSERT_EQ(pct(-250, 1), -2);
  ASSERT_EQ(pct(-350, 1), -4);
  ASSERT_EQ(pct(1001, 12.5), 125);   /* 125.125 */
  ASSERT_EQ(pct(1005, 10), 100);     /* 100.5 -> 100 */
  ASSERT_EQ(pct(1015, 10), 102);     /* 101.5 -> 102 */
  ASSERT_EQ(pct(10000, 19), 1900);   /* exact */
  ASSERT_EQ(pct(3333, 7.25), 242);   /* 241.6425 */
  ASSERT_EQ(pct(1, 50), 0);          /* 0.5 -> 0 */
  ASSERT_EQ(pct(3, 50), 2);          /* 1.5 -> 2 */
  ASSERT_EQ(pct(10, 0.1), 0);        /* 0.01 */
  ASSERT_EQ(pct(123456, 0.0001), 0); /* four decimals are exact */
  int64_t out;
  ASSERT_EQ(spine_lib_money_percent(100, 0.00001, &out), -1); /* five are not */
  ASSERT_EQ(spine_lib_money_percent(INT64_MAX / 2, 100, &out), -1);
  char f[48];
  spine_lib_money_format(1234, "EUR", f);
  ASSERT_STR_EQ(f, "12,34 \xe2\x82\xac");
  spine_lib_money_format(123456789, "EUR", f);
  ASSERT_STR_EQ(f, "1.234.567,89 \xe2\x82\xac");
  spine_lib_money_format(-5, "USD", f);
  ASSERT_STR_EQ(f, "-0,05 USD");
  spine_lib_money_format(100000, "EUR", f);
  ASSERT_STR_EQ(f, "1.000,00 \xe2\x82\xac");
  spine_lib_money_format(INT64_MIN, "EUR", f);
  ASSERT_STR_EQ(f, "-92.233.720.368.547.758,08 \xe2\x82\xac");
  return 0;
}
