/* `spine serve`'s retention: with SPINE_PRUNE_ENDED_BEFORE (an age, "90d") it runs `spine
 * prune` every SPINE_PRUNE_EVERY (1h; the first an interval after start) in a libuv worker
 * thread on a blocking connection of its own, batch by batch (SPINE_PRUNE_BATCH, 500), so the
 * loop never waits for it and no transaction holds its locks for long. What went is logged and
 * counted in /metrics (spine_prune_bytes_total). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api_repair.h"
#include "duration.h"
#include "log.h"
#include "pgconn.h"
#include "server_internal.h"

typedef struct pruner {
  uv_timer_t timer;
  uv_work_t work;
  char conninfo[1024];
  char age[32];
  int batch;
  int busy, started, stopping;
  PGconn *c; /* only the worker thread touches it, then spine_server__prune_free */
  /* Written by the thread, read by the loop after it. */
  int ok;
  spine_api_pruned got;
  char before[40];
  char error[256];
  spine_metric *bytes, *rows, *errors;
} pruner;

static pruner P;

static void prune_work(uv_work_t *w) {
  pruner *p = w->data;
  spine_err e = {0};
  p->ok = 0;
  memset(&p->got, 0, sizeof p->got);
  if (p->c && PQstatus(p->c) != CONNECTION_OK) {
    PQfinish(p->c);
    p->c = NULL;
  }
  if (!p->c) p->c = spine_pgconn_open(p->conninfo, &e);
  if (p->c && !spine_api_prune_cutoff(p->c, p->age, p->before, &e) &&
      !spine_api_prune(p->c, p->before, p->batch, &p->got, &e))
    p->ok = 1;
  else
    snprintf(p->error, sizeof p->error, "%s", e.msg);
}

static void prune_done(uv_work_t *w, int status) {
  pruner *p = w->data;
  p->busy = 0;
  if (p->stopping) return;
  if (status || !p->ok) {
    spine_metrics_inc(p->errors, 1);
    spine_log_warn("serve", "prune failed; it runs again at the next interval", "error",
                   status ? uv_strerror(status) : p->error, NULL);
    return;
  }
  spine_metrics_inc(p->bytes, (double)p->got.bytes);
  spine_metrics_inc(p->rows, (double)(p->got.steps + p->got.signals + p->got.deliveries));
  char wfs[24], steps[24], signals[24], deliveries[24], bytes[24];
  snprintf(wfs, sizeof wfs, "%lld", (long long)p->got.workflows);
  snprintf(steps, sizeof steps, "%lld", (long long)p->got.steps);
  snprintf(signals, sizeof signals, "%lld", (long long)p->got.signals);
  snprintf(deliveries, sizeof deliveries, "%lld", (long long)p->got.deliveries);
  snprintf(bytes, sizeof bytes, "%lld", (long long)p->got.bytes);
  spine_log_info("serve", "pruned", "ended_before", p->before, "workflows", wfs, "steps", steps,
                 "signals", signals, "deliveries", deliveries, "bytes", bytes, NULL);
}

static void on_timer(uv_timer_t *t) {
  pruner *p = t->data;
  if (p->busy) return; /* the last one still runs: skip a turn */
  p->busy = 1;
  p->work.data = p;
  uv_queue_work(t->loop, &p->work, prune_work, prune_done);
}

/* SPINE_PRUNE_*: 0 when unset or valid, else SPINE_EINVAL naming the variable. */
static int read_env(int64_t *every_ms, spine_err *e) {
  const char *age = getenv("SPINE_PRUNE_ENDED_BEFORE"), *every = getenv("SPINE_PRUNE_EVERY");
  const char *batch = getenv("SPINE_PRUNE_BATCH");
  int64_t ms;
  if (spine_duration_parse(age, &ms, NULL) || ms < 0 || strlen(age) >= sizeof P.age)
    return spine_err_set(e, SPINE_EINVAL, "SPINE_PRUNE_ENDED_BEFORE", NULL,
                         "\"%.64s\" is not an age (expected a duration such as 90d)", age);
  snprintf(P.age, sizeof P.age, "%s", age);
  *every_ms = 3600 * 1000;
  if (every && *every && (spine_duration_parse(every, every_ms, NULL) || *every_ms < 1000))
    return spine_err_set(e, SPINE_EINVAL, "SPINE_PRUNE_EVERY", NULL,
                         "\"%.64s\" is not an interval of 1s or more (expected 1h, 30m ...)",
                         every);
  P.batch = batch && *batch ? atoi(batch) : 500;
  if (P.batch < 1 || P.batch > 100000)
    return spine_err_set(e, SPINE_EINVAL, "SPINE_PRUNE_BATCH", NULL, "\"%.64s\" is not 1 to 100000",
                         batch);
  return 0;
}

int spine_server__prune_start(uv_loop_t *loop, const char *conninfo, spine_metrics *m,
                              spine_err *e) {
  memset(&P, 0, sizeof P);
  const char *age = getenv("SPINE_PRUNE_ENDED_BEFORE");
  if (!age || !*age) return 0;
  int64_t every_ms;
  if (read_env(&every_ms, e)) return e->code;
  snprintf(P.conninfo, sizeof P.conninfo, "%s", conninfo);
  P.bytes = spine_metrics_add(m, SPINE_METRIC_COUNTER, "spine_prune_bytes_total",
                              "Bytes of steps, signals and deliveries the scheduled prune removed");
  P.rows = spine_metrics_add(m, SPINE_METRIC_COUNTER, "spine_prune_rows_total",
                             "Steps, signals and deliveries the scheduled prune removed");
  P.errors = spine_metrics_add(m, SPINE_METRIC_COUNTER, "spine_prune_errors_total",
                               "Scheduled prunes that failed");
  if (!P.bytes || !P.rows || !P.errors)
    return spine_err_set(e, SPINE_ENOMEM, "serve", NULL, "cannot register the metrics");
  uv_timer_init(loop, &P.timer);
  P.timer.data = &P;
  P.started = 1;
  uv_timer_start(&P.timer, on_timer, (uint64_t)every_ms, (uint64_t)every_ms);
  char every[24];
  snprintf(every, sizeof every, "%lld", (long long)every_ms);
  spine_log_info("serve", "pruning on a schedule", "ended_before", P.age, "every_ms", every, NULL);
  return 0;
}

void spine_server__prune_stop(void) {
  P.stopping = 1;
  if (!P.started || uv_is_closing((uv_handle_t *)&P.timer)) return;
  uv_timer_stop(&P.timer);
  uv_close((uv_handle_t *)&P.timer, NULL);
}

void spine_server__prune_free(void) {
  if (P.c) PQfinish(P.c);
  P.c = NULL;
  P.started = 0;
}
