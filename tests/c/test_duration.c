#include "duration.h"
#include "test.h"

static int dur(const char *s, int64_t *ms) {
  spine_err e;
  spine_err_clear(&e);
  return spine_duration_parse(s, ms, &e);
}

static int tim(const char *s, int64_t *ms) {
  spine_err e;
  spine_err_clear(&e);
  return spine_duration_parse_time(s, ms, &e);
}

TEST_IMPL(duration_parse) {
  int64_t ms = -1;
  ASSERT_EQ(dur("30s", &ms), 0);
  ASSERT_EQ(ms, 30000);
  ASSERT_EQ(dur("1.5h", &ms), 0);
  ASSERT_EQ(ms, 5400000);
  ASSERT_EQ(dur("250ms", &ms), 0);
  ASSERT_EQ(ms, 250);
  ASSERT_EQ(dur("14d", &ms), 0);
  ASSERT_EQ(ms, 14 * 86400000LL);
  ASSERT_EQ(dur("2", &ms), 0);
  ASSERT_EQ(ms, 2000);
  /* fractions to the nearest millisecond: not one short for a fraction binary cannot hold */
  static const struct {
    const char *s;
    int64_t ms;
  } frac[] = {{"1.001s", 1001}, {"0.1s", 100}, {"2.675s", 2675}, {"0.007s", 7},  {"1.1m", 66000},
              {"0.4ms", 0},     {"0.6ms", 1},  {"4.35s", 4350},  {"0.29s", 290}, {"1.015s", 1015}};
  for (size_t i = 0; i < sizeof frac / sizeof frac[0]; i++) {
    ms = -1;
    ASSERT_EQ(dur(frac[i].s, &ms), 0);
    if (ms != frac[i].ms)
      TEST_FAIL_("%s: %lld ms, not %lld", frac[i].s, (long long)ms, (long long)frac[i].ms);
  }
  /* compounds, the units from the largest */
  static const struct {
    const char *s;
    int64_t ms;
  } compound[] = {{"1h30m", 5400000},  {"2d12h", 216000000},     {"1m30.5s", 90500},
                  {"1s500ms", 1500},   {"1w1d", 8 * 86400000LL}, {"0h0m1s", 1000},
                  {"1h0.5m", 3630000}, {"14d", 14 * 86400000LL}};
  for (size_t i = 0; i < sizeof compound / sizeof compound[0]; i++) {
    ms = -1;
    ASSERT_EQ(dur(compound[i].s, &ms), 0);
    if (ms != compound[i].ms)
      TEST_FAIL_("%s: %lld ms, not %lld", compound[i].s, (long long)ms, (long long)compound[i].ms);
  }
  /* strtod would take these: not a number a designer writes, and NaN's cast is undefined */
  static const char *const bad[] = {"nan",
                                    "nans",
                                    "inf",
                                    "infinity",
                                    "-1s",
                                    " 5s",
                                    "0x10s",
                                    "1e3s",
                                    "+5s",
                                    "5 s",
                                    "",
                                    "s",
                                    ".s",
                                    "5.s",
                                    "5x",
                                    "1e999",
                                    "99999999999999999999d",
                                    "30m1h",
                                    "1h1h",
                                    "1h30",
                                    "1h 30m",
                                    "h30m",
                                    "1ms1s",
                                    "1hm"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ms = -7;
    if (dur(bad[i], &ms) != SPINE_EINVAL) {
      fprintf(stderr, "accepted bad duration \"%s\"\n", bad[i]);
      return 1;
    }
    ASSERT_EQ(ms, -7);
  }
  return 0;
}

TEST_IMPL(time_parse) {
  int64_t ms;
  ASSERT_EQ(tim("1970-01-01", &ms), 0);
  ASSERT_EQ(ms, 0);
  ASSERT_EQ(tim("2024-02-29T12:00:00Z", &ms), 0);
  ASSERT_EQ(ms, 1709208000000LL);
  ASSERT_EQ(tim("2026-12-31T23:59:59.250Z", &ms), 0);
  ASSERT_EQ(ms, 1798761599250LL);
  static const char *const bad[] = {"2026-02-31",
                                    "2026-02-29",
                                    "2100-02-29",
                                    "2026-04-31",
                                    "2026-13-01",
                                    "2026-00-10",
                                    "2026-01-00",
                                    "2026-1-01",
                                    "2026-01-01T24:00:00Z",
                                    "2026-01-01T10:00Z",
                                    "2026-01-01T10:00:00+2:00",
                                    "2026-01-01T10:00:00+24:00",
                                    "2026-01-01T10:00:00+02:60",
                                    "2026-01-01T10:00:00+0200",
                                    "2026-01-01T10:00:00.Z",
                                    "2026-01-01T10:00:60Z",
                                    "2026-01-01T23:58:60Z",
                                    "2026-01-01T23:59:60+01:00",
                                    "2026-01-01x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (tim(bad[i], &ms) != SPINE_EINVAL) {
      fprintf(stderr, "accepted bad time \"%s\"\n", bad[i]);
      return 1;
    }
  ASSERT_EQ(tim("2000-02-29", &ms), 0); /* divisible by 400: a leap year */
  /* Offsets east of UTC are subtracted: local midnight in Berlin in winter is 23:00Z. */
  ASSERT_EQ(tim("2026-03-01T00:00:00+01:00", &ms), 0);
  ASSERT_EQ(ms, 1772319600000LL); /* 2026-02-28T23:00:00Z */
  ASSERT_EQ(tim("2026-02-28T18:30:00.5-04:30", &ms), 0);
  ASSERT_EQ(ms, 1772319600500LL);
  /* The leap second of a UTC day's end, in UTC or local time: the next day's first second. */
  ASSERT_EQ(tim("2016-12-31T23:59:60Z", &ms), 0);
  ASSERT_EQ(ms, 1483228800000LL);
  ASSERT_EQ(tim("2017-01-01T00:59:60+01:00", &ms), 0);
  ASSERT_EQ(ms, 1483228800000LL);
  return 0;
}
