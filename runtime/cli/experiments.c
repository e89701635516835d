/* `spine experiments`: per process, experiment and variant, what became of the cases the
 * dispatcher routed: counts by status, median and p95 time to completion, the success rate
 * with its 95 % interval, and whether it differs significantly from the control's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "duration.h"
#include "log.h"
#include "pgconn.h"
#include "stats.h"

static const char *const spec[] = {"process=", "since=", "json", NULL};
static const char usage[] =
    "usage: spine experiments [--process P] [--since T] [--json]\n"
    "  For each variant of each experiment: started, completed, failed, compensated, cancelled,\n"
    "  paused, stuck and active cases; median and p95 time to completion; the success rate\n"
    "  (completed out of completed + failed + compensated) with its 95 %% Wilson interval, and\n"
    "  its difference to the control (the manifest's first variant) with a two-proportion\n"
    "  z-test. T is a date, a date-time, or a duration back from now (\"7d\").\n";

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

/* The control row of group [from, to): the variant the manifest lists first, else the one
 * called "control", else the first. */
static int control_of(PGresult *r, int from, int to) {
  if (!PQgetisnull(r, from, C_ORDER)) return from;
  for (int i = from; i < to; i++)
    if (!strcmp(PQgetvalue(r, i, C_VARIANT), "control")) return i;
  return from;
}

static void report_variant(spine_buf *b, PGresult *r, int i, int ctl, int json) {
  long completed = num(r, i, C_COMPLETED);
  long finished = completed + num(r, i, C_FAILED) + num(r, i, C_COMPENSATED);
  long ctl_completed = num(r, ctl, C_COMPLETED);
  long ctl_finished = ctl_completed + num(r, ctl, C_FAILED) + num(r, ctl, C_COMPENSATED);
  double lo, hi;
  spine_stats_wilson(completed, finished, &lo, &hi);
  spine_stats_diff d;
  spine_stats_compare(ctl_completed, ctl_finished, completed, finished, &d);
  if (!json) {
    char rate[64] = "-", dur[64] = "-", vs[80] = "";
    if (finished)
      snprintf(rate, sizeof rate, "%5.1f%% [%.1f, %.1f]",
               100.0 * (double)completed / (double)finished, 100 * lo, 100 * hi);
    if (!PQgetisnull(r, i, C_MEDIAN))
      snprintf(dur, sizeof dur, "%.0f/%.0f ms", atof(PQgetvalue(r, i, C_MEDIAN)),
               atof(PQgetvalue(r, i, C_P95)));
    if (i == ctl)
      snprintf(vs, sizeof vs, "control");
    else if (finished && ctl_finished)
      snprintf(vs, sizeof vs, "%+.1f pts, p=%.3f%s", 100 * d.difference, d.p_value,
               d.significant ? " significant" : "");
    printf("  %-16s %7ld %7ld %6ld %6ld %6ld %6ld  %-24s %-18s %s\n", PQgetvalue(r, i, C_VARIANT),
           num(r, i, C_STARTED), completed, num(r, i, C_FAILED), num(r, i, C_COMPENSATED),
           num(r, i, C_PAUSED), num(r, i, C_ACTIVE), rate, dur, vs);
    return;
  }
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
    spine_buf_puts(b, ",\"vs_control\":null}");
  else
    spine_buf_printf(b,
                     ",\"vs_control\":{\"difference\":%.6f,\"z\":%.4f,\"p_value\":%.6f,"
                     "\"significant\":%s}}",
                     d.difference, d.z, d.p_value, d.significant ? "true" : "false");
}

static void report(PGresult *r, int json) {
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, "{\"experiments\":[");
  int n = PQntuples(r);
  for (int from = 0, to; from < n; from = to) {
    for (to = from + 1; to < n && same_group(r, from, to);)
      to++;
    int ctl = control_of(r, from, to);
    if (json) {
      spine_buf_puts(&b, from ? ",{\"process\":" : "{\"process\":");
      json_text(&b, r, from, C_PROCESS);
      spine_buf_puts(&b, ",\"experiment\":");
      json_text(&b, r, from, C_EXPERIMENT);
      spine_buf_puts(&b, ",\"control\":");
      json_text(&b, r, ctl, C_VARIANT);
      spine_buf_puts(&b, ",\"variants\":[");
    } else {
      printf("%s%s  experiment %s\n", from ? "\n" : "", PQgetvalue(r, from, C_PROCESS),
             PQgetisnull(r, from, C_EXPERIMENT) ? "(none)" : PQgetvalue(r, from, C_EXPERIMENT));
      printf("  %-16s %7s %7s %6s %6s %6s %6s  %-24s %-18s %s\n", "VARIANT", "STARTED", "DONE",
             "FAILED", "COMP", "PAUSED", "ACTIVE", "SUCCESS [95% CI]", "MEDIAN/P95", "VS CONTROL");
    }
    for (int i = from; i < to; i++) {
      if (json && i > from) spine_buf_putc(&b, ',');
      report_variant(&b, r, i, ctl, json);
    }
    if (json) spine_buf_puts(&b, "]}");
  }
  if (json)
    printf("%s]}\n", spine_buf_str(&b));
  else if (!n)
    printf("no routed cases\n");
  spine_buf_free(&b);
}

int spine_cli_experiments(int argc, char **argv) {
  spine_cli_cmd cmd;
  char since[32];
  const char *params[2];
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 0) ||
      spine_cli__since_opt(&cmd, since, &params[1]) || spine_cli__connect(&cmd))
    return cmd.exit_code;
  params[0] = spine_cli__get(&cmd, "process");
  PGresult *r = spine_pgconn_query(cmd.c, report_sql, 2, params, &cmd.e);
  PQfinish(cmd.c);
  if (!r) return spine_cli__fail(cmd.json, &cmd.e, NULL);
  report(r, cmd.json);
  PQclear(r);
  return SPINE_EXIT_OK;
}
