/* The playbooks' calendar (calendar.c) and its Lua face, spine.time and spine.money in a
 * sandbox (lib_time.c, lib_money.c): leap years, month ends, Easter, German holidays, business
 * days, Berlin's summer-time switches, ISO 8601 with offsets, errors naming their argument. */
#include <lauxlib.h>
#include <lualib.h>

#include "calendar.h"
#include "sandbox.h"
#include "test.h"

static int64_t day_of(const char *s) {
  int64_t d = -1;
  spine_err e;
  if (spine_calendar_parse_date(s, &d, &e)) TEST_FAIL_("%s: %s", s, e.msg);
  return d;
}

static const char *date_of(int64_t day) {
  static char out[11];
  spine_calendar_format_date(day, out);
  return out;
}

static int64_t time_of(const char *s, spine_calendar_zone z) {
  int64_t ms = -1;
  spine_err e;
  if (spine_calendar_parse_time(s, z, &ms, &e)) TEST_FAIL_("%s: %s", s, e.msg);
  return ms;
}

static const char *iso(int64_t ms, spine_calendar_zone z) {
  static char out[40];
  ASSERT_EQ(spine_calendar_format_time(ms, z, out), 0);
  return out;
}

static const char *plus_months(const char *date, int64_t n) {
  int64_t out = 0;
  ASSERT_EQ(spine_calendar_add_months(day_of(date), n, &out), 0);
  return date_of(out);
}

TEST_IMPL(calendar_dates) {
  ASSERT_EQ(day_of("1970-01-01"), 0);
  ASSERT_EQ(day_of("0001-01-01"), SPINE_CALENDAR_FIRST_DAY);
  ASSERT_EQ(day_of("9999-12-31"), SPINE_CALENDAR_LAST_DAY);
  ASSERT_EQ(day_of("1969-12-31"), -1);
  /* every day of four centuries goes there and back */
  for (int64_t d = day_of("1900-01-01"); d <= day_of("2300-12-31"); d++) {
    char out[11];
    int64_t back = -1;
    spine_calendar_format_date(d, out);
    ASSERT_EQ(spine_calendar_parse_date(out, &back, NULL), 0);
    ASSERT_EQ(back, d);
  }
  /* leap years: by 4, not by 100, but by 400 */
  ASSERT_EQ(spine_calendar_month_days(2024, 2), 29);
  ASSERT_EQ(spine_calendar_month_days(2026, 2), 28);
  ASSERT_EQ(spine_calendar_month_days(1900, 2), 28);
  ASSERT_EQ(spine_calendar_month_days(2000, 2), 29);
  static const char *const bad[] = {
      "2026-02-29", "2100-02-29", "2026-04-31",           "2026-13-01",
      "0000-01-01", "2026-1-1",   "2026-01-01T00:00:00Z", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t d = 7;
    spine_err e;
    ASSERT_EQ(spine_calendar_parse_date(bad[i], &d, &e), SPINE_EINVAL);
    ASSERT_STR_CONTAINS(e.msg, "not a date");
    ASSERT_EQ(d, 7);
  }
  ASSERT_EQ(spine_calendar_weekday(day_of("1970-01-01")), 4); /* a Thursday */
  ASSERT_EQ(spine_calendar_weekday(day_of("2026-12-07")), 1);
  ASSERT_EQ(spine_calendar_weekday(day_of("1969-12-28")), 7);
  return 0;
}

TEST_IMPL(calendar_months) {
  /* a month on: the same day, or the last of a shorter month */
  ASSERT_STR_EQ(plus_months("2026-01-15", 1), "2026-02-15");
  ASSERT_STR_EQ(plus_months("2026-01-31", 1), "2026-02-28");
  ASSERT_STR_EQ(plus_months("2024-01-31", 1), "2024-02-29");
  ASSERT_STR_EQ(plus_months("2026-03-31", 1), "2026-04-30");
  ASSERT_STR_EQ(plus_months("2026-03-31", -1), "2026-02-28");
  ASSERT_STR_EQ(plus_months("2026-11-30", 3), "2027-02-28");
  ASSERT_STR_EQ(plus_months("2026-01-31", -13), "2024-12-31");
  ASSERT_STR_EQ(plus_months("2024-02-29", 12), "2025-02-28");
  ASSERT_STR_EQ(plus_months("2024-02-29", 48), "2028-02-29");
  int64_t out = 0;
  ASSERT_EQ(spine_calendar_add_months(day_of("9999-12-01"), 1, &out), SPINE_EINVAL);
  ASSERT_EQ(spine_calendar_add_months(day_of("0001-01-31"), -1, &out), SPINE_EINVAL);
  return 0;
}

TEST_IMPL(calendar_easter_and_holidays) {
  /* Easter Sundays, from published tables: early, late and in between */
  static const char *const easter[] = {"1818-03-22", "1943-04-25", "2000-04-23", "2008-03-23",
                                       "2019-04-21", "2024-03-31", "2025-04-20", "2026-04-05",
                                       "2027-03-28", "2038-04-25", "2285-03-22"};
  for (size_t i = 0; i < sizeof easter / sizeof easter[0]; i++) {
    int y = atoi(easter[i]);
    ASSERT_STR_EQ(date_of(spine_calendar_easter(y)), easter[i]);
  }
  int64_t days[16];
  const char *names[16];
  int n = spine_calendar_holidays_of(SPINE_CALENDAR_DE, 2026, days, names);
  static const char *const de2026[] = {"2026-01-01", "2026-04-03", "2026-04-06",
                                       "2026-05-01", "2026-05-14", "2026-05-25",
                                       "2026-10-03", "2026-12-25", "2026-12-26"};
  ASSERT_EQ(n, 9);
  for (int i = 0; i < n; i++)
    ASSERT_STR_EQ(date_of(days[i]), de2026[i]);
  ASSERT_STR_EQ(names[1], "Good Friday");
  /* 2008: Ascension fell on 1 May; both are listed, in date order */
  n = spine_calendar_holidays_of(SPINE_CALENDAR_DE, 2008, days, names);
  ASSERT_EQ(n, 9);
  ASSERT_EQ(days[3], days[4]);
  ASSERT_STR_EQ(date_of(days[3]), "2008-05-01");
  ASSERT_EQ(spine_calendar_holidays_of(SPINE_CALENDAR_WEEKDAYS, 2026, days, names), 0);
  ASSERT_STR_EQ(spine_calendar_holiday(SPINE_CALENDAR_DE, day_of("2027-05-17")), "Whit Monday");
  ASSERT(spine_calendar_holiday(SPINE_CALENDAR_DE, day_of("2026-12-24")) == NULL);

  /* business days: weekends and holidays skipped, both ways */
  static const struct {
    const char *from;
    int64_t n;
    spine_calendar_holidays c;
    const char *to;
  } bd[] = {
      {"2026-12-23", 2, SPINE_CALENDAR_DE, "2026-12-28"},       /* Christmas, a weekend */
      {"2026-12-23", 2, SPINE_CALENDAR_WEEKDAYS, "2026-12-25"}, /* no holidays */
      {"2026-04-02", 1, SPINE_CALENDAR_DE, "2026-04-07"},       /* Good Friday to Easter Monday */
      {"2026-04-07", -1, SPINE_CALENDAR_DE, "2026-04-02"},
      {"2026-12-26", 0, SPINE_CALENDAR_DE, "2026-12-28"}, /* 0: the next business day */
      {"2026-12-28", 0, SPINE_CALENDAR_DE, "2026-12-28"}, /* 0: the day itself */
      {"2026-01-02", 10, SPINE_CALENDAR_DE, "2026-01-16"},
  };
  for (size_t i = 0; i < sizeof bd / sizeof bd[0]; i++) {
    int64_t out = 0;
    ASSERT_EQ(spine_calendar_add_business_days(bd[i].c, day_of(bd[i].from), bd[i].n, &out), 0);
    ASSERT_STR_EQ(date_of(out), bd[i].to);
  }
  int64_t out;
  ASSERT_EQ(spine_calendar_add_business_days(SPINE_CALENDAR_DE, 0, 100001, &out), SPINE_EINVAL);
  spine_calendar_holidays c;
  spine_err e;
  ASSERT_EQ(spine_calendar_find("DE", &c, &e), 0);
  ASSERT_EQ(c, SPINE_CALENDAR_DE);
  ASSERT_EQ(spine_calendar_find("FR", &c, &e), SPINE_EINVAL);
  ASSERT_STR_CONTAINS(e.msg, "\"DE\" or \"weekdays\"");
  return 0;
}

TEST_IMPL(calendar_berlin) {
  const spine_calendar_zone B = SPINE_CALENDAR_BERLIN;
  /* the switches of 2026: 29 March and 25 October, at 01:00 UTC */
  ASSERT_EQ(spine_calendar_offset(B, time_of("2026-03-29T00:59:59Z", B)), 3600000);
  ASSERT_EQ(spine_calendar_offset(B, time_of("2026-03-29T01:00:00Z", B)), 7200000);
  ASSERT_EQ(spine_calendar_offset(B, time_of("2026-10-25T00:59:59Z", B)), 7200000);
  ASSERT_EQ(spine_calendar_offset(B, time_of("2026-10-25T01:00:00Z", B)), 3600000);
  /* 2027: 28 March and 31 October */
  ASSERT_STR_EQ(iso(time_of("2027-03-28T01:00:00Z", B), B), "2027-03-28T03:00:00+02:00");
  ASSERT_STR_EQ(iso(time_of("2027-10-31T01:00:00Z", B), B), "2027-10-31T02:00:00+01:00");
  /* local midnight, the start of a supply day, either side of the switches */
  ASSERT_STR_EQ(iso(time_of("2026-03-29", B), SPINE_CALENDAR_UTC), "2026-03-28T23:00:00Z");
  ASSERT_STR_EQ(iso(time_of("2026-03-30", B), SPINE_CALENDAR_UTC), "2026-03-29T22:00:00Z");
  ASSERT_STR_EQ(iso(time_of("2026-10-25", B), SPINE_CALENDAR_UTC), "2026-10-24T22:00:00Z");
  ASSERT_STR_EQ(iso(time_of("2026-10-26", B), SPINE_CALENDAR_UTC), "2026-10-25T23:00:00Z");
  /* the day of the spring switch has 23 hours, the autumn one 25 */
  ASSERT_EQ(time_of("2026-03-30", B) - time_of("2026-03-29", B), 23 * 3600000LL);
  ASSERT_EQ(time_of("2026-10-26", B) - time_of("2026-10-25", B), 25 * 3600000LL);
  /* 02:30 on the spring day does not exist: read as 03:30 summer time; on the autumn day it
   * comes twice: the first, summer time */
  ASSERT_STR_EQ(iso(time_of("2026-03-29T02:30:00", B), B), "2026-03-29T03:30:00+02:00");
  ASSERT_STR_EQ(iso(time_of("2026-10-25T02:30:00", B), B), "2026-10-25T02:30:00+02:00");
  ASSERT_STR_EQ(iso(time_of("2026-10-25T02:30:00+01:00", B), B), "2026-10-25T02:30:00+01:00");
  /* leap day and year end across the offset */
  ASSERT_STR_EQ(iso(time_of("2024-02-29T23:30:00Z", B), B), "2024-03-01T00:30:00+01:00");
  ASSERT_STR_EQ(iso(time_of("2026-12-31T23:00:00Z", B), B), "2027-01-01T00:00:00+01:00");
  spine_calendar_zone z;
  spine_err e;
  ASSERT_EQ(spine_calendar_zone_find("Europe/Berlin", &z, &e), 0);
  ASSERT_EQ(z, B);
  ASSERT_EQ(spine_calendar_zone_find("Europe/Paris", &z, &e), SPINE_EINVAL);
  ASSERT_STR_CONTAINS(e.msg, "\"UTC\" or \"Europe/Berlin\"");
  return 0;
}

TEST_IMPL(calendar_iso) {
  const spine_calendar_zone U = SPINE_CALENDAR_UTC;
  ASSERT_EQ(time_of("1970-01-01", U), 0);
  ASSERT_EQ(time_of("2024-02-29T12:00:00Z", U), 1709208000000LL);
  ASSERT_EQ(time_of("2024-02-29T14:00:00+02:00", U), 1709208000000LL);
  ASSERT_EQ(time_of("2024-02-29T14:00+0200", U), 1709208000000LL);
  ASSERT_EQ(time_of("2024-02-29T07:00:00-05", U), 1709208000000LL);
  ASSERT_EQ(time_of("2024-02-29T12:00", U), 1709208000000LL);
  ASSERT_EQ(time_of("2026-12-31T23:59:59.25Z", U), 1798761599250LL);
  ASSERT_EQ(time_of("1969-12-31T23:59:59.5Z", U), -500);
  ASSERT_STR_EQ(iso(-500, U), "1969-12-31T23:59:59.500Z");
  ASSERT_STR_EQ(iso(1798761599250LL, U), "2026-12-31T23:59:59.250Z");
  ASSERT_STR_EQ(iso(time_of("9999-12-31T23:59:59Z", U), U), "9999-12-31T23:59:59Z");
  static const char *const bad[] = {"2026-02-31",
                                    "2026-01-01T24:00",
                                    "2026-01-01T10",
                                    "2026-01-01T10:00:61Z",
                                    "2026-01-01T10:00:00.",
                                    "2026-01-01T10:00:00+2",
                                    "2026-01-01T10:00:00+19:00",
                                    "2026-01-01T10:00:00 UTC",
                                    "2026-01-01x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms = 7;
    spine_err e;
    if (spine_calendar_parse_time(bad[i], U, &ms, &e) != SPINE_EINVAL)
      TEST_FAIL_("accepted bad time \"%s\"", bad[i]);
    ASSERT_EQ(ms, 7);
  }
  char out[40];
  ASSERT_EQ(spine_calendar_format_time(time_of("9999-12-31T23:59:59Z", U) + 86400000LL * 2, U, out),
            SPINE_EINVAL);
  return 0;
}

/* Runs `chunk` (which returns a string) in a sandbox environment; its result or error. */
static const char *run_lua(lua_State *L, const char *chunk) {
  static char out[512];
  lua_settop(L, 0);
  if (luaL_loadstring(L, chunk) != LUA_OK) TEST_FAIL_("%s", lua_tostring(L, -1));
  spine_sandbox_push_env(L);
  lua_setupvalue(L, 1, 1);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    if (lua_istable(L, -1)) lua_getfield(L, -1, "message");
    snprintf(out, sizeof out, "error: %s", lua_tostring(L, -1));
  } else {
    snprintf(out, sizeof out, "%s", lua_tostring(L, -1));
  }
  return out;
}

TEST_IMPL(calendar_in_the_sandbox) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  ASSERT_STR_EQ(run_lua(L, "return spine.time.add_months('2024-01-31', 1)"), "2024-02-29");
  ASSERT_STR_EQ(run_lua(L, "return spine.time.date(spine.time.parse('2026-03-28T23:30:00Z'),"
                           " 'Europe/Berlin')"),
                "2026-03-29");
  ASSERT_STR_EQ(run_lua(L, "return spine.time.format(spine.time.midnight('2026-07-01',"
                           " 'Europe/Berlin'))"),
                "2026-06-30T22:00:00Z");
  ASSERT_STR_EQ(run_lua(L, "return tostring(spine.time.duration('1h30m'))"), "5400");
  ASSERT_STR_EQ(run_lua(L, "return tostring(spine.time.days_between('2024-02-28', '2024-03-01'))"),
                "2");
  ASSERT_STR_EQ(run_lua(L, "return spine.money.format(spine.money.sum({1000, 234}))"),
                "12,34 \xe2\x82\xac");
  ASSERT_STR_EQ(run_lua(L, "return tostring(spine.money.percent(250, 1))"), "2");
  /* errors name function and argument */
  ASSERT_STR_CONTAINS(run_lua(L, "return spine.time.add_days('2026-02-30', 1)"),
                      "time.add_days: date: not a date \"2026-02-30\"");
  ASSERT_STR_CONTAINS(run_lua(L, "return spine.time.add_days('2026-02-03', 1.5)"),
                      "time.add_days: n: not a whole number");
  ASSERT_STR_CONTAINS(run_lua(L, "return spine.time.date({})"), "time.date: t: not a time");
  ASSERT_STR_CONTAINS(run_lua(L, "return spine.time.date(0, 'Europe/Paris')"),
                      "time.date: zone: unknown time zone \"Europe/Paris\"");
  ASSERT_STR_CONTAINS(run_lua(L, "return spine.time.add_business_days('2026-01-01', 1)"),
                      "time.add_business_days: calendar: not a holiday calendar");
  ASSERT_STR_CONTAINS(run_lua(L, "return spine.money.sum({1, 2.5})"),
                      "money.sum: amounts[2]: not a whole number of cents");
  ASSERT_STR_CONTAINS(run_lua(L, "return spine.money.format(1, 'euro')"),
                      "money.format: currency: not an ISO 4217 code");
  /* read-only, also for rawset: every environment shares them */
  ASSERT_STR_CONTAINS(run_lua(L, "spine.time.date = nil return 'x'"),
                      "read-only table 'spine.time'");
  ASSERT_STR_CONTAINS(run_lua(L, "rawset(spine.money, 'format', type) return 'x'"),
                      "bad argument #1 to 'rawset' (table expected, got spine.money)");
  ASSERT_STR_EQ(run_lua(L, "return tostring(getmetatable(spine.time))"), "false");
  lua_close(L);
  return 0;
}
