/* spine.time (lib_time.h): the calendar functions a playbook or adapter calls, each checking
 * its arguments and raising an error table that names function and argument. Bounded work
 * per call (add_business_days at most 100000 days), so no call escapes the instruction
 * budget for long; never reads a clock. */
#include "lib_time.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "calendar.h"
#include "duration.h"
#include "lerror.h"

/* Raises "<fn>: <name>: <what>" as an invalid_argument error of the calling line. */
static int bad(lua_State *L, const char *fn, const char *name, const char *what) {
  return spine_lerror_raise(L, "invalid_argument", "bad_argument", "%s: %s: %s", fn, name, what);
}

int64_t spine_lib_time_check(lua_State *L, int arg, const char *fn, const char *name) {
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Number t = lua_tonumber(L, arg);
    /* years 1 to 9999 */
    if (!(t >= -62135596800.0 && t <= 253402300799.999))
      bad(L, fn, name, "not a time (seconds since the epoch, years 1 to 9999)");
    return (int64_t)floor(t * 1000 + 0.5);
  }
  if (lua_type(L, arg) == LUA_TSTRING) {
    int64_t ms = 0;
    spine_err e;
    if (spine_calendar_parse_time(lua_tostring(L, arg), SPINE_CALENDAR_UTC, &ms, &e))
      bad(L, fn, name, e.msg);
    return ms;
  }
  bad(L, fn, name, "not a time (seconds since the epoch, as ctx.now() gives, or ISO 8601 text)");
  return 0;
}

static spine_calendar_zone zone_arg(lua_State *L, int arg, const char *fn) {
  spine_calendar_zone z = SPINE_CALENDAR_UTC;
  if (lua_isnoneornil(L, arg)) return z;
  spine_err e;
  if (lua_type(L, arg) != LUA_TSTRING)
    bad(L, fn, "zone", "not a time zone (" SPINE_CALENDAR_ZONES ")");
  else if (spine_calendar_zone_find(lua_tostring(L, arg), &z, &e))
    bad(L, fn, "zone", e.msg);
  return z;
}

void spine_lib_time_check_zone(lua_State *L, int arg, const char *fn) {
  zone_arg(L, arg, fn);
}

static int64_t date_arg(lua_State *L, int arg, const char *fn, const char *name) {
  int64_t day = 0;
  spine_err e;
  if (lua_type(L, arg) != LUA_TSTRING)
    bad(L, fn, name, "not a date (expected \"YYYY-MM-DD\")");
  else if (spine_calendar_parse_date(lua_tostring(L, arg), &day, &e))
    bad(L, fn, name, e.msg);
  return day;
}

static int64_t integer_arg(lua_State *L, int arg, const char *fn, const char *name) {
  int ok;
  lua_Integer n = lua_tointegerx(L, arg, &ok);
  if (!ok || lua_type(L, arg) != LUA_TNUMBER) bad(L, fn, name, "not a whole number");
  return n;
}

static spine_calendar_holidays calendar_arg(lua_State *L, int arg, const char *fn) {
  spine_calendar_holidays c = SPINE_CALENDAR_WEEKDAYS;
  spine_err e;
  if (lua_type(L, arg) != LUA_TSTRING)
    bad(L, fn, "calendar",
        "not a holiday calendar (" SPINE_CALENDAR_NAMES "; a playbook's own is ctx.calendar)");
  else if (spine_calendar_find(lua_tostring(L, arg), &c, &e))
    bad(L, fn, "calendar", e.msg);
  return c;
}

static void push_day(lua_State *L, int64_t day) {
  char out[11];
  spine_calendar_format_date(day, out);
  lua_pushstring(L, out);
}

static int push_day_checked(lua_State *L, int rc, int64_t day, const char *fn) {
  if (rc || day < SPINE_CALENDAR_FIRST_DAY || day > SPINE_CALENDAR_LAST_DAY)
    return bad(L, fn, "n", "the date would be out of the years 1 to 9999");
  push_day(L, day);
  return 1;
}

void spine_lib_time_push_date(lua_State *L, int64_t ms, int zone, const char *fn) {
  spine_calendar_zone z = zone_arg(L, zone, fn);
  int64_t local = ms + spine_calendar_offset(z, ms);
  int64_t day = local / SPINE_CALENDAR_DAY_MS - (local % SPINE_CALENDAR_DAY_MS < 0);
  if (day < SPINE_CALENDAR_FIRST_DAY || day > SPINE_CALENDAR_LAST_DAY)
    bad(L, fn, "t", "out of the years 1 to 9999");
  push_day(L, day);
}

/* time.date(t, zone?): the date of time t in zone (default UTC). */
static int time_date(lua_State *L) {
  int64_t ms = spine_lib_time_check(L, 1, "time.date", "t");
  spine_lib_time_push_date(L, ms, 2, "time.date");
  return 1;
}

/* time.parse(text, zone?): the time ISO 8601 text names; without an offset, local to zone. */
static int time_parse(lua_State *L) {
  spine_calendar_zone z = zone_arg(L, 2, "time.parse");
  int64_t ms = 0;
  spine_err e;
  if (lua_type(L, 1) != LUA_TSTRING) return bad(L, "time.parse", "text", "not a string");
  if (spine_calendar_parse_time(lua_tostring(L, 1), z, &ms, &e))
    return bad(L, "time.parse", "text", e.msg);
  lua_pushnumber(L, (lua_Number)ms / 1000.0);
  return 1;
}

/* time.format(t, zone?): ISO 8601 in zone, "…Z" in UTC, "…+02:00" in Berlin's summer. */
static int time_format(lua_State *L) {
  int64_t ms = spine_lib_time_check(L, 1, "time.format", "t");
  spine_calendar_zone z = zone_arg(L, 2, "time.format");
  char out[40];
  if (spine_calendar_format_time(ms, z, out)) return bad(L, "time.format", "t", out);
  lua_pushstring(L, out);
  return 1;
}

/* time.midnight(date, zone?): the time the date begins in zone. */
static int time_midnight(lua_State *L) {
  int64_t day = date_arg(L, 1, "time.midnight", "date");
  spine_calendar_zone z = zone_arg(L, 2, "time.midnight");
  int64_t ms = spine_calendar_utc(z, day * SPINE_CALENDAR_DAY_MS);
  lua_pushnumber(L, (lua_Number)ms / 1000.0);
  return 1;
}

static int time_add_days(lua_State *L) {
  int64_t day = date_arg(L, 1, "time.add_days", "date");
  int64_t n = integer_arg(L, 2, "time.add_days", "n");
  int over = n > 4000000 || n < -4000000;
  return push_day_checked(L, over, over ? 0 : day + n, "time.add_days");
}

/* time.add_months(date, n): the same day n months on, or that month's last if it is shorter. */
static int time_add_months(lua_State *L) {
  int64_t day = date_arg(L, 1, "time.add_months", "date");
  int64_t n = integer_arg(L, 2, "time.add_months", "n"), out = 0;
  int rc = spine_calendar_add_months(day, n, &out);
  return push_day_checked(L, rc, out, "time.add_months");
}

static int time_end_of_month(lua_State *L) {
  int64_t day = date_arg(L, 1, "time.end_of_month", "date");
  int y, m, d;
  spine_calendar_civil(day, &y, &m, &d);
  push_day(L, spine_calendar_days(y, m, spine_calendar_month_days(y, m)));
  return 1;
}

/* time.days_between(from, to): to - from in days (negative if to comes first). */
static int time_days_between(lua_State *L) {
  int64_t from = date_arg(L, 1, "time.days_between", "from");
  int64_t to = date_arg(L, 2, "time.days_between", "to");
  lua_pushinteger(L, (lua_Integer)(to - from));
  return 1;
}

/* time.weekday(date): 1 = Monday ... 7 = Sunday. */
static int time_weekday(lua_State *L) {
  lua_pushinteger(L, spine_calendar_weekday(date_arg(L, 1, "time.weekday", "date")));
  return 1;
}

/* time.holiday(date, calendar): the holiday's name, or nil. */
static int time_holiday(lua_State *L) {
  int64_t day = date_arg(L, 1, "time.holiday", "date");
  const char *name = spine_calendar_holiday(calendar_arg(L, 2, "time.holiday"), day);
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushnil(L);
  return 1;
}

static int time_is_business_day(lua_State *L) {
  int64_t day = date_arg(L, 1, "time.is_business_day", "date");
  lua_pushboolean(L, spine_calendar_business_day(calendar_arg(L, 2, "time.is_business_day"), day));
  return 1;
}

/* time.add_business_days(date, n, calendar): n business days on (0: date, or the next one). */
static int time_add_business_days(lua_State *L) {
  int64_t day = date_arg(L, 1, "time.add_business_days", "date");
  int64_t n = integer_arg(L, 2, "time.add_business_days", "n"), out = 0;
  spine_calendar_holidays c = calendar_arg(L, 3, "time.add_business_days");
  if (n > 100000 || n < -100000) return bad(L, "time.add_business_days", "n", "over 100000");
  int rc = spine_calendar_add_business_days(c, day, n, &out);
  return push_day_checked(L, rc, out, "time.add_business_days");
}

/* time.holidays(year, calendar): {{date = "2026-01-01", name = "New Year's Day"}, ...}. */
static int time_holidays(lua_State *L) {
  int64_t y = integer_arg(L, 1, "time.holidays", "year");
  spine_calendar_holidays c = calendar_arg(L, 2, "time.holidays");
  if (y < 1 || y > 9999) return bad(L, "time.holidays", "year", "not in 1 to 9999");
  int64_t days[16];
  const char *names[16];
  int n = spine_calendar_holidays_of(c, (int)y, days, names);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    push_day(L, days[i]);
    lua_setfield(L, -2, "date");
    lua_pushstring(L, names[i]);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* time.duration(d): "1h30m", "14d", ... or seconds, in seconds. */
static int time_duration(lua_State *L) {
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Number s = lua_tonumber(L, 1);
    if (!(s >= 0 && s < 9e12)) return bad(L, "time.duration", "d", "out of range");
    lua_pushnumber(L, s);
    return 1;
  }
  if (lua_type(L, 1) != LUA_TSTRING)
    return bad(L, "time.duration", "d", "not a duration (\"30s\", \"1h30m\", \"14d\" or seconds)");
  int64_t ms;
  spine_err e;
  if (spine_duration_parse(lua_tostring(L, 1), &ms, &e)) return bad(L, "time.duration", "d", e.msg);
  if (ms % 1000)
    lua_pushnumber(L, (lua_Number)ms / 1000.0);
  else
    lua_pushinteger(L, ms / 1000);
  return 1;
}

int spine_lib_time_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"date", time_date},
      {"parse", time_parse},
      {"format", time_format},
      {"midnight", time_midnight},
      {"add_days", time_add_days},
      {"add_months", time_add_months},
      {"end_of_month", time_end_of_month},
      {"days_between", time_days_between},
      {"weekday", time_weekday},
      {"holiday", time_holiday},
      {"is_business_day", time_is_business_day},
      {"add_business_days", time_add_business_days},
      {"holidays", time_holidays},
      {"duration", time_duration},
      {NULL, NULL},
  };
  luaL_newlib(L, fns);
  return 1;
}
