/* Fuzzes durations and times (duration.c) as playbooks, manifests and the CLI write them. The
 * input, cut at its first NUL, goes to both parsers; each either refuses it or returns a value
 * that an independent reading agrees with: a duration is parts of digits, an optional fraction
 * and a unit, the units from the largest ("1h30m"; "nan", "inf", "-1s", "1e3s" and "30m1h" never
 * pass), within range; a time names a real date and clock time (gmtime of the result gives
 * them back: 2026-02-31 never passes) and survives spine_duration_format_time and parsing
 * again. */
#include <string.h>
#include <time.h>

#include "duration.h"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

static int digit(char c) {
  return c >= '0' && c <= '9';
}

/* One part or more, each digits [. digits] and a unit (ms|s|m|h|d|w), the units from the largest
 * and each once, or digits [. digits] alone: what a duration may be. *exact_ms is its value when
 * every part is a whole number short enough to be exact in a double, else -1. */
static int duration_grammar(const char *s, int64_t *exact_ms) {
  static const struct {
    const char *name;
    int64_t ms;
  } units[] = {{"w", 7 * 86400000LL}, {"d", 86400000}, {"h", 3600000},
               {"m", 60000},          {"s", 1000},     {"ms", 1}};
  const int nunits = (int)(sizeof units / sizeof units[0]);
  const char *p = s;
  int last = -1;
  *exact_ms = 0;
  do {
    const char *start = p;
    int64_t n = 0;
    for (; digit(*p); p++)
      if (p - start < 18) n = n * 10 + (*p - '0'); /* only the first 18: no overflow */
    if (p == start) return 0;
    int integral = *p != '.' && p - start <= 15;
    if (*p == '.') {
      const char *f = ++p;
      while (digit(*p))
        p++;
      if (p == f) return 0;
    }
    int u = -1;
    size_t len = 0;
    if (!*p && last < 0) {
      u = 4; /* a lone number: seconds */
    } else {
      for (int i = 0; i < nunits; i++) {
        size_t l = strlen(units[i].name);
        if (!strncmp(p, units[i].name, l) && l > len) u = i, len = l;
      }
    }
    if (u <= last) return 0; /* no unit, or not smaller than the one before */
    last = u;
    p += len;
    /* a sum that could leave the exact range of a double is not checked to the millisecond */
    if (*exact_ms >= 0 && integral && n <= 9000000000000000LL / units[u].ms)
      *exact_ms += n * units[u].ms;
    else
      *exact_ms = -1;
    if (*exact_ms > 9000000000000000LL) *exact_ms = -1;
  } while (*p);
  return 1;
}

static void check_duration(const char *s) {
  int64_t ms = -7, exact = 0;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_duration_parse(s, &ms, &e);
  int grammar = duration_grammar(s, &exact);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EINVAL && e.msg[0] && ms == -7);
    if (grammar) FUZZ_CHECK(!strcmp(e.msg, "duration too long"));
    return;
  }
  FUZZ_CHECK(grammar);
  FUZZ_CHECK(ms >= 0 && ms <= 9200000000000000LL);
  /* Whole numbers of units short enough to be exact in a double are exact in ms too. */
  if (exact >= 0) FUZZ_CHECK(ms == exact);
}

/* YYYY-MM-DD, then optionally T or ' ', HH:MM:SS, a fraction (a digit at least), Z or an
 * offset +HH:MM / -HH:MM (its minutes east of UTC in *off). */
static int time_fields(const char *s, int f[6], int *off) {
  static const char shape[] = "dddd-dd-dd";
  memset(f, 0, 6 * sizeof f[0]);
  *off = 0;
  for (int i = 0; i < 10; i++)
    if (shape[i] == 'd' ? !digit(s[i]) : s[i] != shape[i]) return 0;
  f[0] = atoi(s);
  f[1] = atoi(s + 5);
  f[2] = atoi(s + 8);
  const char *p = s + 10;
  if (*p != 'T' && *p != ' ') return *p == '\0';
  static const char clock[] = "dd:dd:dd";
  for (int i = 0; i < 8; i++)
    if (clock[i] == 'd' ? !digit(p[1 + i]) : p[1 + i] != clock[i]) return 0;
  f[3] = atoi(p + 1);
  f[4] = atoi(p + 4);
  f[5] = atoi(p + 7);
  p += 9;
  if (*p == '.') {
    if (!digit(p[1])) return 0;
    for (p++; digit(*p); p++)
      ;
  }
  if (*p == 'Z') return p[1] == '\0';
  if ((*p == '+' || *p == '-') && digit(p[1]) && digit(p[2]) && p[3] == ':' && digit(p[4]) &&
      digit(p[5]) && p[6] == '\0') {
    int oh = atoi(p + 1), om = atoi(p + 4);
    if (oh > 23 || om > 59) return 0;
    *off = (*p == '-' ? -1 : 1) * (oh * 60 + om);
    return 1;
  }
  return *p == '\0';
}

static void check_time(const char *s) {
  int64_t ms = -7;
  int f[6], off;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_duration_parse_time(s, &ms, &e);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EINVAL && e.msg[0] && ms == -7);
    return;
  }
  FUZZ_CHECK(time_fields(s, f, &off));
  FUZZ_CHECK(f[3] <= 23 && f[4] <= 59 && f[5] <= 60);
  /* The date and clock time are real: gmtime of the result, moved by the offset, gives them
   * back (a leap second, :60, is the next minute's :00, and only ends a UTC day). */
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  if (f[5] == 60) {
    time_t utc = (time_t)(secs - 1);
    struct tm u;
    FUZZ_CHECK(gmtime_r(&utc, &u) != NULL);
    FUZZ_CHECK(u.tm_hour == 23 && u.tm_min == 59 && u.tm_sec == 59);
  }
  time_t t = (time_t)(secs - (f[5] == 60) + (int64_t)off * 60);
  struct tm tm;
  FUZZ_CHECK(gmtime_r(&t, &tm) != NULL);
  FUZZ_CHECK(tm.tm_year + 1900 == f[0] && tm.tm_mon + 1 == f[1] && tm.tm_mday == f[2]);
  FUZZ_CHECK(tm.tm_hour == f[3] && tm.tm_min == f[4] && tm.tm_sec == (f[5] == 60 ? 59 : f[5]));
  /* What spine_duration_format_time writes reads back as the same instant, but past the last
   * instant a four-digit year can spell, and before the first (an offset moves a time written
   * in years 0000 or 9999 across them). */
  if (ms > 253402300799999LL || ms < -62167219200000LL) return;
  char out[32];
  int64_t again = -7;
  spine_duration_format_time(ms, out);
  if (spine_duration_parse_time(out, &again, &e) || again != ms)
    fprintf(stderr, "\"%s\" is %lld ms, formatted \"%s\", read back as %lld\n", s, (long long)ms,
            out, (long long)again);
  FUZZ_CHECK(again == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  FUZZ_CHECK(s != NULL);
  memcpy(s, data, size);
  s[size] = '\0';
  check_duration(s);
  check_time(s);
  free(s);
  return 0;
}
