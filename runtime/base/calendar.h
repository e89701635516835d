/* The calendar: proleptic Gregorian dates, months, weekdays, Easter, holiday calendars and
 * time zones with fixed rules, for the playbooks' library (spine.time) and for durations. Pure
 * functions: no host clock, no tzdata, so a result never depends on the machine that replays.
 * A date is a day number, days since 1970-01-01; years run from 1 to 9999. */
#ifndef SPINE_CALENDAR_H
#define SPINE_CALENDAR_H

#include <stdint.h>

#include "err.h"

#define SPINE_CALENDAR_FIRST_DAY (-719162) /* 0001-01-01 */
#define SPINE_CALENDAR_LAST_DAY  2932896   /* 9999-12-31 */
#define SPINE_CALENDAR_DAY_MS    86400000LL

/* The time zones a playbook may name: UTC, and Germany's with the EU summer-time rule. */
typedef enum {
  SPINE_CALENDAR_UTC,
  SPINE_CALENDAR_BERLIN,
} spine_calendar_zone;
#define SPINE_CALENDAR_ZONES "\"UTC\" or \"Europe/Berlin\""

/* Holiday calendars: business days are Monday to Friday but for the calendar's holidays. */
typedef enum {
  SPINE_CALENDAR_WEEKDAYS, /* no holidays */
  SPINE_CALENDAR_DE,       /* German national holidays */
} spine_calendar_holidays;
#define SPINE_CALENDAR_NAMES "\"DE\" or \"weekdays\""

/* Day number of year y, month m (1-12), day d (1-31); any y, m, d in range. */
int64_t spine_calendar_days(int y, int m, int d);
/* The year, month and day of day number `day`. */
void spine_calendar_civil(int64_t day, int *y, int *m, int *d);
/* Days in month m of year y (28 to 31). */
int spine_calendar_month_days(int y, int m);
/* 1 = Monday ... 7 = Sunday (ISO 8601). */
int spine_calendar_weekday(int64_t day);
/* Easter Sunday of year y (the Gregorian computus). */
int64_t spine_calendar_easter(int y);
/* `day` plus n months, on the same day of the month or, where that month is shorter, its last
 * (2026-01-31 + 1 month = 2026-02-28). Returns 0, or SPINE_EINVAL out of years 1 to 9999. */
int spine_calendar_add_months(int64_t day, int64_t n, int64_t *out);

/* "YYYY-MM-DD", a real date, into a day number; SPINE_EINVAL otherwise (e->msg says why). */
int spine_calendar_parse_date(const char *s, int64_t *day, spine_err *e);
/* Day number as "YYYY-MM-DD" into out[11] (a day in years 1 to 9999). */
void spine_calendar_format_date(int64_t day, char out[11]);

/* The zone named `name` (SPINE_CALENDAR_ZONES); SPINE_EINVAL, naming those, otherwise. */
int spine_calendar_zone_find(const char *name, spine_calendar_zone *z, spine_err *e);
/* The zone's offset from UTC at instant `utc_ms` (ms since the epoch), in ms. */
int64_t spine_calendar_offset(spine_calendar_zone z, int64_t utc_ms);
/* The instant of local time `local_ms` (ms since the epoch as if the zone were UTC). A local
 * time that is skipped in spring is read with the offset before the switch (02:30 on the
 * last Sunday of March in Berlin is 03:30 summer time); one that occurs twice in autumn is
 * the first of them (summer time). */
int64_t spine_calendar_utc(spine_calendar_zone z, int64_t local_ms);

/* An ISO 8601 date or date-time into ms since the epoch: "2026-03-29" (midnight in `z`),
 * "2026-03-29T02:30", "…:00", "…:00.250", each optionally with "Z" or an offset "+02:00"; a
 * time without one is local to `z`. SPINE_EINVAL otherwise (e->msg says why). */
int spine_calendar_parse_time(const char *s, spine_calendar_zone z, int64_t *ms, spine_err *e);
/* ms since the epoch as ISO 8601 in zone `z` into out[40]: "2026-03-29T03:00:00+02:00",
 * "…Z" in UTC, with ".250" where the millisecond is not 0. SPINE_EINVAL out of years 1 to
 * 9999 (out then says so). */
int spine_calendar_format_time(int64_t ms, spine_calendar_zone z, char out[40]);

/* The holiday calendar named `name` (SPINE_CALENDAR_NAMES); SPINE_EINVAL, naming those,
 * otherwise. */
int spine_calendar_find(const char *name, spine_calendar_holidays *c, spine_err *e);
/* The name of the holiday `day` is in calendar `c` ("Good Friday"), or NULL. */
const char *spine_calendar_holiday(spine_calendar_holidays c, int64_t day);
/* The holidays of year y in `c`, in date order, into days[] and names[] (room for 16);
 * returns how many. */
int spine_calendar_holidays_of(spine_calendar_holidays c, int y, int64_t days[16],
                               const char *names[16]);
/* Whether `day` is a business day: Monday to Friday and not a holiday of `c`. */
int spine_calendar_business_day(spine_calendar_holidays c, int64_t day);
/* The business day n business days after `day` (n < 0: before; n = 0: `day` itself if it is
 * one, else the next). Returns 0, or SPINE_EINVAL out of years 1 to 9999 or for |n| over
 * 100000. */
int spine_calendar_add_business_days(spine_calendar_holidays c, int64_t day, int64_t n,
                                     int64_t *out);

#endif
