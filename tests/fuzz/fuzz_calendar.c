/* Fuzzes the calendar's readers (calendar.c) as spine.time gets them from playbooks and the
 * cases' input: dates and ISO 8601 times, in UTC and in Europe/Berlin. Each either refuses the
 * input or returns a value that reads back the same: a date formats back to the very text, a
 * time formatted in either zone (with its offset) parses back to the same instant, and its
 * local time lies within 18 hours of it. Then date arithmetic on the date: a month on and back
 * stays in the month, business days land on business days. */
#include <string.h>

#include "calendar.h"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

static void check_date(const char *s) {
  int64_t day = -7;
  spine_err e;
  if (spine_calendar_parse_date(s, &day, &e)) {
    FUZZ_CHECK(e.msg[0] && day == -7);
    return;
  }
  FUZZ_CHECK(day >= SPINE_CALENDAR_FIRST_DAY && day <= SPINE_CALENDAR_LAST_DAY);
  char out[11];
  spine_calendar_format_date(day, out);
  FUZZ_CHECK(!strcmp(out, s));
  int y, m, d;
  spine_calendar_civil(day, &y, &m, &d);
  int64_t later, back;
  if (!spine_calendar_add_months(day, 1, &later) && !spine_calendar_add_months(later, -1, &back)) {
    FUZZ_CHECK(back <= day && day - back <= 3); /* 03-31 + 1 - 1 = 03-28..30 */
    int by, bm, bd;
    spine_calendar_civil(back, &by, &bm, &bd);
    FUZZ_CHECK(by == y && bm == m);
  }
  int64_t next;
  if (!spine_calendar_add_business_days(SPINE_CALENDAR_DE, day, 1, &next)) {
    FUZZ_CHECK(next > day && next - day <= 5);
    FUZZ_CHECK(spine_calendar_business_day(SPINE_CALENDAR_DE, next));
  }
}

static void check_time(const char *s, spine_calendar_zone z) {
  int64_t ms = -7;
  spine_err e;
  if (spine_calendar_parse_time(s, z, &ms, &e)) {
    FUZZ_CHECK(e.msg[0] && ms == -7);
    return;
  }
  /* the date it starts with is a real one */
  char date[11];
  memcpy(date, s, 10);
  date[10] = '\0';
  int64_t day;
  FUZZ_CHECK(!spine_calendar_parse_date(date, &day, NULL));
  FUZZ_CHECK(ms > (day - 2) * SPINE_CALENDAR_DAY_MS && ms < (day + 3) * SPINE_CALENDAR_DAY_MS);
  for (int zi = 0; zi < 2; zi++) {
    spine_calendar_zone fz = zi ? SPINE_CALENDAR_BERLIN : SPINE_CALENDAR_UTC;
    char out[40];
    if (spine_calendar_format_time(ms, fz, out)) continue; /* beyond 9999-12-31 in that zone */
    int64_t again = -7;
    if (spine_calendar_parse_time(out, SPINE_CALENDAR_UTC, &again, &e) || again != ms)
      fprintf(stderr, "\"%s\" is %lld ms, formatted \"%s\", read back as %lld\n", s, (long long)ms,
              out, (long long)again);
    FUZZ_CHECK(again == ms);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  FUZZ_CHECK(s != NULL);
  memcpy(s, data, size);
  s[size] = '\0';
  check_date(s);
  check_time(s, SPINE_CALENDAR_UTC);
  check_time(s, SPINE_CALENDAR_BERLIN);
  free(s);
  return 0;
}
