/* `spine watch`: a live, compact view of cases as they move. Per process and variant, a bar of
 * the cases that ended, the counts by status, and the business states (ctx.state) of the ones
 * still under way. On a terminal it redraws in place; otherwise it prints a frame whenever the
 * figures change. A display for people and demos: it reads spine.workflows every interval on
 * its own connection and never touches the engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "duration.h"
#include "log.h"
#include "pgconn.h"

static const char *const spec[] = {"process=", "since=",   "every=", "until-done", "once",
                                   "timeout=", "no-color", "json",   NULL};
static const char usage[] =
    "usage: spine watch [--process P] [--since T] [--every D] [--until-done [--timeout D]]\n"
    "                   [--once] [--json]\n"
    "  Cases as they move, per process and variant: a bar of the ended ones, counts by status\n"
    "  (pending, running, waiting, paused, completed, failed, compensated, cancelled, stuck)\n"
    "  and the business states of those under way. On a terminal the view redraws in place\n"
    "  every D (default 500ms); otherwise a frame is printed whenever the figures change.\n"
    "  --until-done   return once no case is pending, running or waiting (exit 0); with\n"
    "                 --timeout D, exit 1 if that has not happened within D\n"
    "  --once         print one frame and return\n"
    "  --since T      only cases created since T (a date, a date-time, or a duration back)\n"
    "  --json         one JSON object per frame: {groups: [{process, variant, total, ended,\n"
    "                 statuses: {...}, states: {...}}], active, total}\n";

/* clang-format off */
static const char frame_sql[] =
    "SELECT process, coalesce(variant, ''), status, coalesce(state, ''), count(*)"
    " FROM spine.workflows"
    " WHERE ($1::text IS NULL OR process = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)"
    " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";
/* clang-format on */

static const char *const statuses[] = {"pending", "running",     "waiting",   "paused", "completed",
                                       "failed",  "compensated", "cancelled", "stuck"};
#define NSTATUS  (int)(sizeof statuses / sizeof statuses[0])
#define ACTIVE   3 /* statuses[0..2] are under way */
#define ENDED_AT 4 /* statuses[4..] ended */
#define BAR      24

static int status_index(const char *s) {
  for (int i = 0; i < NSTATUS; i++)
    if (!strcmp(s, statuses[i])) return i;
  return -1;
}

/* Renders one frame of the query's rows into `out` (text or JSON); *active = cases under way. */
static void render(PGresult *r, int json, int color, spine_buf *out, long *active) {
  int n = PQntuples(r);
  long total = 0;
  *active = 0;
  if (json) spine_buf_puts(out, "{\"groups\":[");
  int groups = 0;
  /* columns as wide as the longest name of the frame: a name is never cut */
  int pw = 1, vw = 1;
  for (int i = 0; i < n; i++) {
    int p = PQgetlength(r, i, 0), v = PQgetlength(r, i, 1);
    if (p > pw) pw = p;
    if (v > vw) vw = v;
  }
  for (int i = 0; i < n;) {
    const char *process = PQgetvalue(r, i, 0), *variant = PQgetvalue(r, i, 1);
    long counts[NSTATUS] = {0}, sum = 0, ended = 0;
    int first = i;
    for (; i < n && !strcmp(PQgetvalue(r, i, 0), process) && !strcmp(PQgetvalue(r, i, 1), variant);
         i++) {
      int s = status_index(PQgetvalue(r, i, 2));
      long c = atol(PQgetvalue(r, i, 4));
      if (s >= 0) counts[s] += c;
      sum += c;
      if (s >= ENDED_AT) ended += c;
      if (s >= 0 && s < ACTIVE) *active += c;
    }
    total += sum;
    if (json) {
      spine_buf_puts(out, groups++ ? ",{\"process\":" : "{\"process\":");
      spine_log_json_string(out, process, strlen(process));
      spine_buf_puts(out, ",\"variant\":");
      if (*variant)
        spine_log_json_string(out, variant, strlen(variant));
      else
        spine_buf_puts(out, "null");
      spine_buf_printf(out, ",\"total\":%ld,\"ended\":%ld,\"statuses\":{", sum, ended);
      int k = 0;
      for (int s = 0; s < NSTATUS; s++)
        if (counts[s])
          spine_buf_printf(out, "%s\"%s\":%ld", k++ ? "," : "", statuses[s], counts[s]);
      spine_buf_puts(out, "},\"states\":{");
      k = 0;
      for (int j = first; j < i; j++) {
        const char *state = PQgetvalue(r, j, 3);
        if (status_index(PQgetvalue(r, j, 2)) >= ENDED_AT || !*state) continue;
        if (k++) spine_buf_putc(out, ',');
        spine_log_json_string(out, state, strlen(state));
        spine_buf_printf(out, ":%s", PQgetvalue(r, j, 4));
      }
      spine_buf_puts(out, "}}");
      continue;
    }
    int filled = sum ? (int)(ended * BAR / sum) : 0;
    spine_buf_printf(out, "%-*s %-*s ", pw, process, vw, *variant ? variant : "-");
    if (color) spine_buf_puts(out, "\033[32m");
    for (int b = 0; b < filled; b++)
      spine_buf_puts(out, "\xe2\x96\x88"); /* full block */
    if (color) spine_buf_puts(out, "\033[2m");
    for (int b = filled; b < BAR; b++)
      spine_buf_puts(out, "\xe2\x96\x91"); /* light shade */
    if (color) spine_buf_puts(out, "\033[0m");
    spine_buf_printf(out, " %ld/%ld ended ", ended, sum);
    int k = 0;
    for (int s = 0; s < NSTATUS; s++)
      if (counts[s]) spine_buf_printf(out, "%s%s %ld", k++ ? ", " : "(", statuses[s], counts[s]);
    spine_buf_puts(out, k ? ")\n" : "\n");
    /* the business states of the cases under way, one line */
    k = 0;
    for (int j = first; j < i; j++) {
      const char *state = PQgetvalue(r, j, 3);
      if (status_index(PQgetvalue(r, j, 2)) >= ENDED_AT || !*state) continue;
      spine_buf_printf(out, "%s%s %s", k++ ? ", " : "    now: ", state, PQgetvalue(r, j, 4));
    }
    if (k) spine_buf_puts(out, "\n");
  }
  if (json)
    spine_buf_printf(out, "],\"active\":%ld,\"total\":%ld}\n", *active, total);
  else if (!n)
    spine_buf_puts(out, "no cases yet\n");
  else
    spine_buf_printf(out, "%ld under way, %ld in all\n", *active, total);
}

/* The number of lines in `s`, to move the cursor back over the last frame. */
static int lines_of(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

int spine_cli_watch(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 0)) return cmd.exit_code;
  int json = cmd.json;
  int until_done = spine_cli__get(&cmd, "until-done") != NULL;
  int once = spine_cli__get(&cmd, "once") != NULL;
  int64_t every = 500, timeout = -1;
  const char *v;
  if ((v = spine_cli__get(&cmd, "every")) &&
      (spine_duration_parse(v, &every, NULL) || every < 10 || every > 3600000)) {
    fprintf(stderr, "spine watch: --every: \"%s\" is not a duration from 10ms to 1h\n", v);
    return SPINE_EXIT_USAGE;
  }
  if ((v = spine_cli__get(&cmd, "timeout")) && spine_duration_parse(v, &timeout, NULL)) {
    fprintf(stderr, "spine watch: --timeout: \"%s\" is not a duration\n", v);
    return SPINE_EXIT_USAGE;
  }
  char since[32];
  const char *params[2];
  if (spine_cli__since_opt(&cmd, since, &params[1]) || spine_cli__connect(&cmd))
    return cmd.exit_code;
  params[0] = spine_cli__get(&cmd, "process");
  int tty = !json && !once && isatty(STDOUT_FILENO);
  int color = tty && !spine_cli__get(&cmd, "no-color") && !getenv("NO_COLOR");
  int rc = 0;
  spine_buf frame = SPINE_BUF_INIT, last = SPINE_BUF_INIT;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int shown = 0;
  for (;;) {
    PGresult *r = spine_pgconn_query(cmd.c, frame_sql, 2, params, &cmd.e);
    if (!r) {
      rc = spine_cli__fail(json, &cmd.e, NULL);
      break;
    }
    long active;
    spine_buf_reset(&frame);
    render(r, json, color, &frame, &active);
    PQclear(r);
    if (!shown || strcmp(spine_buf_str(&frame), spine_buf_str(&last))) {
      if (tty && shown) printf("\033[%dA\033[J", lines_of(spine_buf_str(&last)));
      fputs(spine_buf_str(&frame), stdout);
      fflush(stdout);
      spine_buf_reset(&last);
      spine_buf_puts(&last, spine_buf_str(&frame));
      shown = 1;
    }
    if (once || (until_done && active == 0)) break;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t elapsed = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    if (until_done && timeout >= 0 && elapsed >= timeout) {
      fprintf(stderr, "spine watch: cases still under way after %s\n",
              spine_cli__get(&cmd, "timeout"));
      rc = SPINE_EXIT_REJECTED;
      break;
    }
    struct timespec pause = {(time_t)(every / 1000), (long)(every % 1000) * 1000000};
    nanosleep(&pause, NULL);
  }
  spine_buf_free(&frame);
  spine_buf_free(&last);
  PQfinish(cmd.c);
  return rc;
}
