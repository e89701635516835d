/* Duration and time parsing for ctx.sleep, timeouts and retry policies. Pure functions. */
#include "duration.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "calendar.h"

/* The units of a duration, largest first: a compound duration names them in this order. */
static const struct {
  const char *name;
  double ms;
} units[] = {{"w", 7 * 86400e3}, {"d", 86400e3}, {"h", 3600e3},
             {"m", 60e3},        {"s", 1000},    {"ms", 1}};
#define NUNITS (int)(sizeof units / sizeof units[0])

/* The unit at p (the longest name that fits: "ms" before "m"), its length in *len; -1 if none. */
static int unit_at(const char *p, size_t *len) {
  int found = -1;
  for (int i = 0; i < NUNITS; i++) {
    size_t n = strlen(units[i].name);
    if (!strncmp(p, units[i].name, n) && (found < 0 || n > *len)) found = i, *len = n;
  }
  return found;
}

/* A duration is one or more parts, each decimal digits, an optional fraction and a unit, the
 * units from the largest ("1h30m", "2d12h", "1m30.5s"), or one number alone (seconds): what
 * strtod takes beyond that ("nan", "inf", hex, exponents, leading blanks or signs) is no
 * duration a designer writes, and NaN cast to an integer is undefined behaviour. */
int spine_duration_parse(const char *s, int64_t *ms, spine_err *e) {
  const char *p = s;
  double total = 0;
  int last = -1; /* the unit of the part before */
  do {
    double v = 0;
    int ndigits = 0;
    for (; *p >= '0' && *p <= '9'; p++, ndigits++)
      v = v * 10 + (*p - '0');
    if (*p == '.') {
      double scale = 0.1;
      int nfrac = 0;
      for (p++; *p >= '0' && *p <= '9'; p++, nfrac++, scale /= 10)
        v += (*p - '0') * scale;
      if (!nfrac) ndigits = 0; /* "5." is not a number */
    }
    if (!ndigits)
      return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                           "bad duration \"%s\" (expected e.g. \"30s\", \"5m\", \"2h\", \"14d\","
                           " \"1h30m\")",
                           s);
    size_t len = 0;
    int u = *p ? unit_at(p, &len) : (last < 0 ? 4 : -1); /* a lone number is seconds */
    if (u < 0)
      return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                           "bad duration unit in \"%s\" (expected ms, s, m, h, d or w)", s);
    if (u <= last)
      return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                           "bad duration \"%s\" (units from the largest, each once: \"1h30m\")", s);
    last = u;
    p += len;
    total += v * units[u].ms;
  } while (*p);
  if (!(total <= 9.2e15)) return spine_err_set(e, SPINE_EINVAL, NULL, NULL, "duration too long");
  /* To the nearest millisecond: 1.001 is not exact in binary, and truncating its product with
   * the unit gave 1000 ms for "1.001s". */
  *ms = llround(total);
  return 0;
}

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int spine_duration_parse_time(const char *s, int64_t *ms, spine_err *e) {
  int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0; /* off: minutes east of UTC */
  size_t n = strlen(s);
  if (n < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
      digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > spine_calendar_month_days(y, mo))
    goto bad; /* 2026-02-31 is no date (it is not March 3rd either) */
  const char *p = s + 10;
  if (*p == 'T' || *p == ' ') {
    if (strlen(p) < 9 || digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) ||
        p[6] != ':' || digits(p + 7, 2, &sec) || h > 23 || mi > 59 || sec > 60)
      goto bad;
    p += 9;
    if (*p == '.') {
      if (!isdigit((unsigned char)p[1])) goto bad; /* "10:00:00.Z": a fraction of nothing */
      int scale = 100;
      for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
        frac += (*p - '0') * scale;
    }
    if (*p == 'Z') {
      p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
      int oh, om;
      if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 23 || om > 59) goto bad;
      off = (*p == '-' ? -1 : 1) * (oh * 60 + om);
      p += 6;
    }
    /* A leap second is the last second of a UTC day (23:59:60Z, 01:59:60+02:00), none other. */
    if (sec == 60 && ((h * 60 + mi - off) % 1440 + 1440) % 1440 != 1439) goto bad;
  }
  if (*p) goto bad;
  *ms = ((spine_calendar_days(y, mo, d) * 24 + h) * 60 + mi - off) * 60000 + sec * 1000 + frac;
  return 0;
bad:
  return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                       "bad time \"%s\" (expected \"YYYY-MM-DD\" or \"YYYY-MM-DDTHH:MM:SS\" with"
                       " \"Z\" or an offset \"+01:00\")",
                       s);
}

void spine_duration_format_time(int64_t ms, char out[32]) {
  /* Floored, not truncated: 1969-12-31T23:59:59.500Z is -500 ms, second -1 and 500 ms of it.
   * The year is written with four digits at least ("0999", which strftime's %Y writes "999"),
   * so that every time spine_duration_parse_time reads is formatted back as it reads it. */
  int64_t secs = ms / 1000, frac = ms % 1000;
  if (frac < 0) secs--, frac += 1000;
  time_t t = (time_t)secs;
  struct tm tm;
  if (!gmtime_r(&t, &tm)) {
    snprintf(out, 32, "(time out of range)");
    return;
  }
  /* The modulos change no value: they show gcc's truncation check that each field has its two
   * or three digits, so that the longest time (a nine-digit year) fits in 32 bytes. */
  snprintf(out, 32, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", tm.tm_year + 1900,
           (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
           (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
           (unsigned)frac % 1000u);
}

void spine_duration_format(double ms, char out[32]) {
  /* The largest unit the span reaches, with one decimal below ten of it: "16 d", "2.5 h",
   * "250 ms"; what people read in a report, not what a parser reads back. */
  static const struct {
    const char *unit;
    double ms;
  } scale[] = {{"d", 86400000.0}, {"h", 3600000.0}, {"min", 60000.0}, {"s", 1000.0}};
  double a = ms < 0 ? -ms : ms;
  for (size_t i = 0; i < sizeof scale / sizeof scale[0]; i++) {
    if (a < scale[i].ms) continue;
    double v = ms / scale[i].ms;
    if (a / scale[i].ms < 9.95 && llround(a / scale[i].ms * 10) % 10 != 0)
      snprintf(out, 32, "%.1f %s", v, scale[i].unit);
    else
      snprintf(out, 32, "%.0f %s", v, scale[i].unit);
    return;
  }
  snprintf(out, 32, "%.0f ms", ms);
}
