/* The calendar (calendar.h): day numbers, months, Easter, German holidays, the EU summer-time
 * rule, ISO 8601. Pure arithmetic on integers: nothing here reads a clock, the environment or
 * the host's time zone files, so a workflow replayed on another machine computes the same. */
#include "calendar.h"

#include <stdio.h>
#include <string.h>

#define HOUR_MS 3600000LL

/* Floor division and remainder: C's truncate toward zero before 1970. */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b) {
  return a - floor_div(a, b) * b;
}

/* Days from and to civil dates: Howard Hinnant's algorithms, eras of 400 years from
 * 0000-03-01, so that the leap day ends a year. */
int64_t spine_calendar_days(int y, int m, int d) {
  int64_t yy = (int64_t)y - (m <= 2);
  int64_t era = floor_div(yy, 400);
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void spine_calendar_civil(int64_t day, int *y, int *m, int *d) {
  int64_t z = day + 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int month = (int)(mp < 10 ? mp + 3 : mp - 9);
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = month;
  *y = (int)(yoe + era * 400 + (month <= 2));
}

int spine_calendar_month_days(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return days[m - 1] + (m == 2 && leap);
}

int spine_calendar_weekday(int64_t day) {
  return (int)floor_mod(day + 3, 7) + 1; /* 1970-01-01 was a Thursday */
}

/* The anonymous Gregorian computus (Meeus, Jones, Butcher). */
int64_t spine_calendar_easter(int y) {
  int a = y % 19, b = y / 100, c = y % 100, d = b / 4, e = b % 4;
  int f = (b + 8) / 25, g = (b - f + 1) / 3;
  int h = (19 * a + b - d - g + 15) % 30;
  int i = c / 4, k = c % 4;
  int l = (32 + 2 * e + 2 * i - h - k) % 7;
  int m = (a + 11 * h + 22 * l) / 451;
  int n = h + l - 7 * m + 114;
  return spine_calendar_days(y, n / 31, n % 31 + 1);
}

static int in_range(int64_t day) {
  return day >= SPINE_CALENDAR_FIRST_DAY && day <= SPINE_CALENDAR_LAST_DAY;
}

int spine_calendar_add_months(int64_t day, int64_t n, int64_t *out) {
  int y, m, d;
  if (!in_range(day) || n > 120000 || n < -120000) return SPINE_EINVAL;
  spine_calendar_civil(day, &y, &m, &d);
  int64_t months = (int64_t)y * 12 + (m - 1) + n;
  int64_t ny = floor_div(months, 12);
  int nm = (int)floor_mod(months, 12) + 1;
  if (ny < 1 || ny > 9999) return SPINE_EINVAL;
  int last = spine_calendar_month_days((int)ny, nm);
  *out = spine_calendar_days((int)ny, nm, d < last ? d : last);
  return 0;
}

/* n decimal digits at s into *out; -1 if one is not a digit. */
static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

/* The date at the start of s (10 characters), or -1. */
static int read_date(const char *s, int64_t *day) {
  int y, m, d;
  if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &m) || s[7] != '-' ||
      digits(s + 8, 2, &d) || y < 1 || m < 1 || m > 12 || d < 1 ||
      d > spine_calendar_month_days(y, m))
    return -1; /* 2026-02-31 is no date (it is not March 3rd either) */
  *day = spine_calendar_days(y, m, d);
  return 0;
}

int spine_calendar_parse_date(const char *s, int64_t *day, spine_err *e) {
  if (strlen(s) != 10 || read_date(s, day))
    return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                         "not a date \"%.40s\" (expected a real date \"YYYY-MM-DD\")", s);
  return 0;
}

void spine_calendar_format_date(int64_t day, char out[11]) {
  int y, m, d;
  spine_calendar_civil(day, &y, &m, &d);
  /* The modulos change no value in range: they show gcc's truncation check the widths. */
  snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
}

/* ---- time zones ---- */

int spine_calendar_zone_find(const char *name, spine_calendar_zone *z, spine_err *e) {
  if (!strcmp(name, "UTC"))
    *z = SPINE_CALENDAR_UTC;
  else if (!strcmp(name, "Europe/Berlin"))
    *z = SPINE_CALENDAR_BERLIN;
  else
    return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                         "unknown time zone \"%.60s\" (supported: " SPINE_CALENDAR_ZONES ")", name);
  return 0;
}

/* The last Sunday of month m of year y. */
static int64_t last_sunday(int y, int m) {
  int64_t last = spine_calendar_days(y, m, spine_calendar_month_days(y, m));
  return last - spine_calendar_weekday(last) % 7;
}

/* The EU rule (Directive 2000/84/EC), applied to every year: summer time from the last
 * Sunday of March to the last Sunday of October, both at 01:00 UTC. */
int64_t spine_calendar_offset(spine_calendar_zone z, int64_t utc_ms) {
  if (z == SPINE_CALENDAR_UTC) return 0;
  int y, m, d;
  spine_calendar_civil(floor_div(utc_ms, SPINE_CALENDAR_DAY_MS), &y, &m, &d);
  int64_t start = last_sunday(y, 3) * SPINE_CALENDAR_DAY_MS + HOUR_MS;
  int64_t end = last_sunday(y, 10) * SPINE_CALENDAR_DAY_MS + HOUR_MS;
  return utc_ms >= start && utc_ms < end ? 2 * HOUR_MS : HOUR_MS;
}

int64_t spine_calendar_utc(spine_calendar_zone z, int64_t local_ms) {
  if (z == SPINE_CALENDAR_UTC) return local_ms;
  int64_t summer = local_ms - 2 * HOUR_MS, winter = local_ms - HOUR_MS;
  if (spine_calendar_offset(z, summer) == 2 * HOUR_MS) return summer; /* first of two */
  return winter; /* winter time, or a skipped hour read with the offset before the switch */
}

/* "Z", "+hh:mm", "-hh:mm", "+hhmm" or "+hh" at p (the whole rest) into ms; -1 if none of them. */
static int read_offset(const char *p, int64_t *off) {
  if (!strcmp(p, "Z")) return *off = 0, 0;
  if (*p != '+' && *p != '-') return -1;
  int h, m = 0;
  size_t n = strlen(p + 1);
  if (digits(p + 1, 2, &h)) return -1;
  if (n == 5 && p[3] == ':') {
    if (digits(p + 4, 2, &m)) return -1;
  } else if (n == 4) {
    if (digits(p + 3, 2, &m)) return -1;
  } else if (n != 2) {
    return -1;
  }
  if (h > 18 || m > 59) return -1;
  *off = (*p == '-' ? -1 : 1) * (h * HOUR_MS + m * 60000LL);
  return 0;
}

int spine_calendar_parse_time(const char *s, spine_calendar_zone z, int64_t *ms, spine_err *e) {
  int64_t day, off = 0;
  int h = 0, mi = 0, sec = 0, frac = 0, has_offset = 0;
  if (read_date(s, &day)) goto bad;
  const char *p = s + 10;
  if (*p == 'T' || *p == ' ') {
    if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) || h > 23 || mi > 59) goto bad;
    p += 6;
    if (*p == ':') {
      if (digits(p + 1, 2, &sec) || sec > 59) goto bad;
      p += 3;
      if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
          if (n < 3) frac = frac * 10 + (*p - '0');
        if (!n || n > 9) goto bad;
        for (; n < 3; n++)
          frac *= 10;
      }
    }
    if (*p) {
      if (read_offset(p, &off)) goto bad;
      has_offset = 1;
    }
  } else if (*p) {
    goto bad;
  }
  int64_t local = day * SPINE_CALENDAR_DAY_MS + h * HOUR_MS + mi * 60000LL + sec * 1000LL + frac;
  *ms = has_offset ? local - off : spine_calendar_utc(z, local);
  return 0;
bad:
  return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                       "not a time \"%.40s\" (expected ISO 8601: \"2026-03-29\","
                       " \"2026-03-29T09:30:00\", with \"Z\" or \"+02:00\" or neither)",
                       s);
}

int spine_calendar_format_time(int64_t ms, spine_calendar_zone z, char out[40]) {
  if (ms < SPINE_CALENDAR_FIRST_DAY * SPINE_CALENDAR_DAY_MS ||
      ms > (SPINE_CALENDAR_LAST_DAY + 1) * SPINE_CALENDAR_DAY_MS) {
    snprintf(out, 40, "(time out of range)");
    return SPINE_EINVAL;
  }
  int64_t off = spine_calendar_offset(z, ms), local = ms + off;
  int64_t day = floor_div(local, SPINE_CALENDAR_DAY_MS);
  if (!in_range(day)) {
    snprintf(out, 40, "(time out of range)");
    return SPINE_EINVAL;
  }
  int64_t in_day = local - day * SPINE_CALENDAR_DAY_MS;
  char date[11], frac[8] = "", zone[8] = "Z";
  spine_calendar_format_date(day, date);
  unsigned msec = (unsigned)(in_day % 1000);
  if (msec) snprintf(frac, sizeof frac, ".%03u", msec % 1000u);
  if (z != SPINE_CALENDAR_UTC) {
    unsigned a = (unsigned)((off < 0 ? -off : off) / 60000);
    snprintf(zone, sizeof zone, "%c%02u:%02u", off < 0 ? '-' : '+', a / 60 % 100u, a % 60);
  }
  unsigned secs = (unsigned)(in_day / 1000);
  snprintf(out, 40, "%sT%02u:%02u:%02u%s%s", date, secs / 3600 % 100u, secs / 60 % 60, secs % 60,
           frac, zone);
  return 0;
}

/* ---- holiday calendars ---- */

int spine_calendar_find(const char *name, spine_calendar_holidays *c, spine_err *e) {
  if (!strcmp(name, "DE"))
    *c = SPINE_CALENDAR_DE;
  else if (!strcmp(name, "weekdays"))
    *c = SPINE_CALENDAR_WEEKDAYS;
  else
    return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                         "unknown holiday calendar \"%.60s\" (supported: " SPINE_CALENDAR_NAMES ")",
                         name);
  return 0;
}

int spine_calendar_holidays_of(spine_calendar_holidays c, int y, int64_t days[16],
                               const char *names[16]) {
  if (c != SPINE_CALENDAR_DE) return 0;
  /* Germany's national holidays (the states add their own). */
  int64_t easter = spine_calendar_easter(y);
  const struct {
    int64_t day;
    const char *name;
  } de[] = {
      {spine_calendar_days(y, 1, 1), "New Year's Day"},
      {easter - 2, "Good Friday"},
      {easter + 1, "Easter Monday"},
      {spine_calendar_days(y, 5, 1), "Labour Day"},
      {easter + 39, "Ascension Day"},
      {easter + 50, "Whit Monday"},
      {spine_calendar_days(y, 10, 3), "German Unity Day"},
      {spine_calendar_days(y, 12, 25), "Christmas Day"},
      {spine_calendar_days(y, 12, 26), "Second Day of Christmas"},
  };
  int n = 0;
  for (size_t i = 0; i < sizeof de / sizeof de[0]; i++, n++) {
    int j = n; /* insertion in date order: Ascension may come before 1 May, or on it */
    for (; j > 0 && days[j - 1] > de[i].day; j--) {
      days[j] = days[j - 1];
      names[j] = names[j - 1];
    }
    days[j] = de[i].day;
    names[j] = de[i].name;
  }
  return n;
}

const char *spine_calendar_holiday(spine_calendar_holidays c, int64_t day) {
  int64_t days[16];
  const char *names[16];
  int y, m, d;
  spine_calendar_civil(day, &y, &m, &d);
  int n = spine_calendar_holidays_of(c, y, days, names);
  for (int i = 0; i < n; i++)
    if (days[i] == day) return names[i];
  return NULL;
}

int spine_calendar_business_day(spine_calendar_holidays c, int64_t day) {
  return spine_calendar_weekday(day) <= 5 && !spine_calendar_holiday(c, day);
}

int spine_calendar_add_business_days(spine_calendar_holidays c, int64_t day, int64_t n,
                                     int64_t *out) {
  if (!in_range(day) || n > 100000 || n < -100000) return SPINE_EINVAL;
  int step = n < 0 ? -1 : 1;
  int64_t left = n < 0 ? -n : n;
  if (n == 0) left = 1, day--; /* the day itself, if it is a business day */
  while (left > 0) {
    day += step;
    if (!in_range(day)) return SPINE_EINVAL;
    if (spine_calendar_business_day(c, day)) left--;
  }
  *out = day;
  return 0;
}
