/* Durations and times as playbooks write them: "30s" "5m" "2h" "14d" "250ms", compounds such
 * as "1h30m" (units from the largest), or seconds as a number; times as seconds since the
 * epoch or ISO 8601 ("2026-12-01", "2026-12-01T10:00:00Z"). */
#ifndef SPINE_DURATION_H
#define SPINE_DURATION_H

#include <stdint.h>

#include "err.h"

/* Parses a duration string into milliseconds, to the nearest one ("1.001s" is 1001, "0.4ms" 0,
 * "1h30m" 5400000). Returns 0 or SPINE_EINVAL (e->msg says why). */
int spine_duration_parse(const char *s, int64_t *ms, spine_err *e);
/* Parses an ISO 8601 date (midnight UTC) or date-time into milliseconds since the epoch:
 * "2026-03-01", "2026-03-01T09:00:00Z", "2026-03-01T10:00:00.250+01:00" (an offset east of
 * UTC is subtracted; none is UTC). A leap second only as the last second of a UTC day. */
int spine_duration_parse_time(const char *s, int64_t *ms, spine_err *e);
/* Formats ms since the epoch as "2026-12-01T10:00:00.000Z" into out[32]. */
void spine_duration_format_time(int64_t ms, char out[32]);
/* Formats a span of `ms` for people into out[32]: "16 d", "2.5 h", "12 min", "4.2 s", "250 ms". */
void spine_duration_format(double ms, char out[32]);

#endif
