/* The experiments' report (api_experiments.h). */
#include "api_experiments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "log.h"
#include "pgconn.h"
#include "stats.h"

enum {
  C_PROCESS,
  C_EXPERIMENT,
  C_VARIANT,
  C_STARTED,
  C_COMPLETED,
  C_FAILED,
  C_COMPENSATED,
  C_CANCELLED,
  C_PAUSED,
  C_STUCK,
  C_ACTIVE,
  C_MEDIAN,
  C_P95,
  C_ORDER
};

/* One row per (process, experiment, variant); variants in the manifest's order when it is the
 * experiment in force, else by name. */
/* clang-format off */
static const char report_sql[] =
    "SELECT w.process, w.experiment, w.variant, count(*),"
    " count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),"
    " count(*) FILTER (WHERE status = 'compensated'), count(*) FILTER (WHERE status = 'cancelled'),"
    " count(*) FILTER (WHERE status = 'paused'), count(*) FILTER (WHERE status = 'stuck'),"
    " count(*) FILTER (WHERE status IN ('pending', 'running', 'waiting')),"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ended_at - w.created_at)"
    " * 1000) FILTER (WHERE status = 'completed'),"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ended_at - w.created_at)"
    " * 1000) FILTER (WHERE status = 'completed'),"
    " min(v.ord)"
    " FROM spine.workflows w LEFT JOIN (SELECT m.process, m.body::jsonb #>> '{experiment,id}' AS"
    " experiment, x.value ->> 'name' AS variant, x.ord FROM spine.manifests m,"
    " jsonb_array_elements(m.body::jsonb -> 'variants') WITH ORDINALITY x(value, ord)) v"
    " ON v.process = w.process AND v.experiment IS NOT DISTINCT FROM w.experiment"
    " AND v.variant = w.variant"
    " WHERE w.variant IS NOT NULL AND ($1::text IS NULL OR w.process = $1)"
    " AND ($2::timestamptz IS NULL OR w.created_at >= $2)"
    " GROUP BY w.process, w.experiment, w.variant"
    " ORDER BY w.process, w.experiment NULLS FIRST, min(v.ord) NULLS LAST, w.variant";

/* The finished cases of each (process, experiment, variant) by the outcome their playbook named
 * (ctx.outcome), else, for a completed case, the value of its result where the manifest in
 * force says ("outcome": "result.outcome"); outcomes by name. */
static const char outcomes_sql[] =
    "WITH rule AS (SELECT process, string_to_array(substr(body::jsonb ->> 'outcome', 8), '.')"
    "   AS path FROM spine.manifests)" /* each manifest read once, not once a case */
    " SELECT w.process, w.experiment, w.variant, o.name, count(*) FROM spine.workflows w"
    " LEFT JOIN rule m ON m.process = w.process"
    " CROSS JOIN LATERAL (SELECT coalesce(w.outcome, CASE WHEN w.status = 'completed'"
    "   AND jsonb_typeof(w.result) = 'object' THEN w.result #>> m.path END) AS name) o"
    " WHERE w.variant IS NOT NULL AND o.name IS NOT NULL"
    " AND w.status IN ('completed', 'failed', 'compensated')"
    " AND ($1::text IS NULL OR w.process = $1)"
    " AND ($2::timestamptz IS NULL OR w.created_at >= $2)"
    " GROUP BY w.process, w.experiment, w.variant, o.name"
    " ORDER BY w.process, w.experiment NULLS FIRST, o.name, w.variant";
/* clang-format on */

static long num(PGresult *r, int i, int c) {
  return atol(PQgetvalue(r, i, c));
}

static int same_group(PGresult *r, int i, int j) {
  return !strcmp(PQgetvalue(r, i, C_PROCESS), PQgetvalue(r, j, C_PROCESS)) &&
         PQgetisnull(r, i, C_EXPERIMENT) == PQgetisnull(r, j, C_EXPERIMENT) &&
         !strcmp(PQgetvalue(r, i, C_EXPERIMENT), PQgetvalue(r, j, C_EXPERIMENT));
}

static void json_text(spine_buf *b, PGresult *r, int i, int c) {
  if (PQgetisnull(r, i, c))
    spine_buf_puts(b, "null");
  else
    spine_log_json_string(b, PQgetvalue(r, i, c), (size_t)PQgetlength(r, i, c));
}

static void json_ms(spine_buf *b, PGresult *r, int i, int c) {
  if (PQgetisnull(r, i, c))
    spine_buf_puts(b, "null");
  else
    spine_buf_printf(b, "%.3f", atof(PQgetvalue(r, i, c)));
}

/* Whether row j of the outcomes (o) is of the process and experiment of row i of the report (r),
 * and of its variant when `variant`. */
static int same_cell(PGresult *r, int i, PGresult *o, int j, int variant) {
  return !strcmp(PQgetvalue(r, i, C_PROCESS), PQgetvalue(o, j, 0)) &&
         PQgetisnull(r, i, C_EXPERIMENT) == PQgetisnull(o, j, 1) &&
         !strcmp(PQgetvalue(r, i, C_EXPERIMENT), PQgetvalue(o, j, 1)) &&
         (!variant || !strcmp(PQgetvalue(r, i, C_VARIANT), PQgetvalue(o, j, 2)));
}

/* How many finished cases of report row i named `outcome`. */
static long outcome_count(PGresult *r, int i, PGresult *o, const char *outcome) {
  for (int j = 0; j < PQntuples(o); j++)
    if (same_cell(r, i, o, j, 1) && !strcmp(PQgetvalue(o, j, 3), outcome))
      return atol(PQgetvalue(o, j, 4));
  return 0;
}

/* Each outcome named in the variant's experiment: how many of its finished cases named it, their
 * share with its 95 % interval, and the difference to the control's share. */
static void report_outcomes(spine_buf *b, PGresult *r, int i, int ctl, PGresult *o) {
  long finished = num(r, i, C_COMPLETED) + num(r, i, C_FAILED) + num(r, i, C_COMPENSATED);
  long ctl_finished = num(r, ctl, C_COMPLETED) + num(r, ctl, C_FAILED) + num(r, ctl, C_COMPENSATED);
  spine_buf_puts(b, ",\"outcomes\":[");
  int first = 1;
  for (int j = 0; j < PQntuples(o); j++) {
    const char *name = PQgetvalue(o, j, 3);
    /* each name once: the rows are ordered by outcome within the experiment */
    if (!same_cell(r, i, o, j, 0) ||
        (j > 0 && same_cell(r, i, o, j - 1, 0) && !strcmp(PQgetvalue(o, j - 1, 3), name)))
      continue;
    long n = outcome_count(r, i, o, name), ctl_n = outcome_count(r, ctl, o, name);
    spine_buf_puts(b, first ? "{\"outcome\":" : ",{\"outcome\":");
    first = 0;
    spine_log_json_string(b, name, strlen(name));
    spine_buf_printf(b, ",\"count\":%ld", n);
    if (finished) {
      double lo, hi;
      spine_stats_wilson(n, finished, &lo, &hi);
      spine_buf_printf(b, ",\"share\":%.6f,\"ci95\":[%.6f,%.6f]", (double)n / (double)finished, lo,
                       hi);
    } else {
      spine_buf_puts(b, ",\"share\":null,\"ci95\":null");
    }
    if (i == ctl || !finished || !ctl_finished) {
      spine_buf_puts(b, ",\"vs_control\":null}");
    } else {
      spine_stats_diff d;
      spine_stats_compare(ctl_n, ctl_finished, n, finished, &d);
      spine_buf_printf(b,
                       ",\"vs_control\":{\"difference\":%.6f,\"z\":%.4f,\"p_value\":%.6f,"
                       "\"significant\":%s}}",
                       d.difference, d.z, d.p_value, d.significant ? "true" : "false");
    }
  }
  spine_buf_putc(b, ']');
}

/* The control row of group [from, to): the variant the manifest lists first, else the one
 * called "control", else the first. */
static int control_of(PGresult *r, int from, int to) {
  if (!PQgetisnull(r, from, C_ORDER)) return from;
  for (int i = from; i < to; i++)
    if (!strcmp(PQgetvalue(r, i, C_VARIANT), "control")) return i;
  return from;
}

static void report_variant(spine_buf *b, PGresult *r, int i, int ctl, PGresult *o) {
  long completed = num(r, i, C_COMPLETED);
  long finished = completed + num(r, i, C_FAILED) + num(r, i, C_COMPENSATED);
  long ctl_completed = num(r, ctl, C_COMPLETED);
  long ctl_finished = ctl_completed + num(r, ctl, C_FAILED) + num(r, ctl, C_COMPENSATED);
  double lo, hi;
  spine_stats_wilson(completed, finished, &lo, &hi);
  spine_stats_diff d;
  spine_stats_compare(ctl_completed, ctl_finished, completed, finished, &d);
  spine_buf_puts(b, "{\"variant\":");
  json_text(b, r, i, C_VARIANT);
  static const char *const names[] = {"started",   "completed", "failed", "compensated",
                                      "cancelled", "paused",    "stuck",  "active"};
  for (int c = C_STARTED; c <= C_ACTIVE; c++)
    spine_buf_printf(b, ",\"%s\":%ld", names[c - C_STARTED], num(r, i, c));
  spine_buf_printf(b, ",\"finished\":%ld,\"duration_ms\":{\"median\":", finished);
  json_ms(b, r, i, C_MEDIAN);
  spine_buf_puts(b, ",\"p95\":");
  json_ms(b, r, i, C_P95);
  spine_buf_puts(b, "}");
  if (finished)
    spine_buf_printf(b, ",\"success_rate\":%.6f,\"ci95\":[%.6f,%.6f]",
                     (double)completed / (double)finished, lo, hi);
  else
    spine_buf_puts(b, ",\"success_rate\":null,\"ci95\":null");
  if (i == ctl || !finished || !ctl_finished)
    spine_buf_puts(b, ",\"vs_control\":null");
  else
    spine_buf_printf(b,
                     ",\"vs_control\":{\"difference\":%.6f,\"z\":%.4f,\"p_value\":%.6f,"
                     "\"significant\":%s}",
                     d.difference, d.z, d.p_value, d.significant ? "true" : "false");
  report_outcomes(b, r, i, ctl, o);
  spine_buf_putc(b, '}');
}

int spine_api_experiments_report(PGconn *c, const char *process, const char *since,
                                 const char *items_key, spine_buf *b, spine_err *e) {
  int64_t ms;
  if (since && spine_duration_parse_time(since, &ms, NULL))
    return spine_err_set(e, SPINE_EINVAL, NULL, "since",
                         "\"%.64s\" is not a time (ISO 8601: 2026-03-01T09:00:00Z)", since);
  const char *params[2] = {process, since};
  PGresult *r = spine_pgconn_query(c, report_sql, 2, params, e);
  if (!r) return e->code;
  PGresult *o = spine_pgconn_query(c, outcomes_sql, 2, params, e);
  if (!o) {
    PQclear(r);
    return e->code;
  }
  spine_buf_putc(b, '{');
  spine_log_json_string(b, items_key, strlen(items_key));
  spine_buf_puts(b, ":[");
  int n = PQntuples(r);
  for (int from = 0, to; from < n; from = to) {
    for (to = from + 1; to < n && same_group(r, from, to);)
      to++;
    int ctl = control_of(r, from, to);
    spine_buf_puts(b, from ? ",{\"process\":" : "{\"process\":");
    json_text(b, r, from, C_PROCESS);
    spine_buf_puts(b, ",\"experiment\":");
    json_text(b, r, from, C_EXPERIMENT);
    spine_buf_puts(b, ",\"control\":");
    json_text(b, r, ctl, C_VARIANT);
    spine_buf_puts(b, ",\"variants\":[");
    for (int i = from; i < to; i++) {
      if (i > from) spine_buf_putc(b, ',');
      report_variant(b, r, i, ctl, o);
    }
    spine_buf_puts(b, "]}");
  }
  spine_buf_putc(b, ']');
  PQclear(r);
  PQclear(o);
  return 0;
}
