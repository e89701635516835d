/* `spine serve`'s census: what the database holds that an operator must act on, counted every
 * SPINE_CENSUS_MS (15 s) in a libuv worker thread on a blocking connection of its own, and set
 * in /metrics gauges on the loop once counted. A scrape reads the last counts: it never waits
 * for a query, and the loop never runs one. Each count reads a partial or leading-column index
 * (workflows not ended, open incidents, dead letters), so it stays as small as what it counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "pgconn.h"
#include "server_internal.h"

/* The workflows counted by status: those not ended (the ended ones are counters, per worker). */
static const char *const statuses[] = {"pending", "running", "waiting", "paused", "stuck"};
#define NSTATUS (sizeof statuses / sizeof statuses[0])

/* One row: the statuses' counts in that order, open incidents, dead letters, workers alive. A
 * query slower than the census's period, or than TIMEOUT_MS if that is longer, is cut off
 * (statement_timeout, set at connect). */
static const char census_sql[] =
    "SELECT (SELECT count(*) FROM spine.workflows WHERE status = 'pending'),"
    " (SELECT count(*) FROM spine.workflows WHERE status = 'running'),"
    " (SELECT count(*) FROM spine.workflows WHERE status = 'waiting'),"
    " (SELECT count(*) FROM spine.workflows WHERE status = 'paused'),"
    " (SELECT count(*) FROM spine.workflows WHERE status = 'stuck'),"
    " (SELECT count(*) FROM spine.incidents WHERE resolved_at IS NULL),"
    " (SELECT count(*) FROM spine.outbox_deliveries WHERE status = 'dead'),"
    " (SELECT count(*) FROM spine.workers WHERE lease_until >= now())";
#define NCOUNTS    (NSTATUS + 3)
#define TIMEOUT_MS 10000

typedef struct census {
  uv_timer_t timer;
  uv_work_t work;
  uint64_t period_ms;
  char conninfo[1024];
  int busy, started;
  int stopping; /* the registry may be gone: a census that ends now sets nothing */
  PGconn *c;    /* only the worker thread touches it, then census_free after the loop */
  /* Written by the thread, read by the loop after it. */
  int ok;
  double counts[NCOUNTS];
  char error[256];
  int failing; /* the last census failed: logged once until one succeeds */
  spine_metric *gauges[NCOUNTS];
  spine_metric *errors;
} census;

static census C;

static void census_work(uv_work_t *w) {
  census *c = w->data;
  c->ok = 0;
  c->error[0] = '\0';
  spine_err e = {0};
  if (c->c && PQstatus(c->c) != CONNECTION_OK) {
    PQfinish(c->c);
    c->c = NULL;
  }
  if (!c->c) {
    c->c = spine_pgconn_open(c->conninfo, &e);
    if (!c->c) {
      snprintf(c->error, sizeof c->error, "%s", e.msg);
      return;
    }
    char set[64];
    snprintf(set, sizeof set, "SET statement_timeout = %llu",
             (unsigned long long)(c->period_ms > TIMEOUT_MS ? c->period_ms : TIMEOUT_MS));
    PQclear(PQexec(c->c, set));
  }
  PGresult *r = PQexec(c->c, census_sql);
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == NCOUNTS) {
    for (int i = 0; i < (int)NCOUNTS; i++)
      c->counts[i] = atof(PQgetvalue(r, 0, i));
    c->ok = 1;
  } else {
    snprintf(c->error, sizeof c->error, "%s", PQerrorMessage(c->c));
  }
  PQclear(r);
}

static void census_done(uv_work_t *w, int status) {
  census *c = w->data;
  c->busy = 0;
  if (c->stopping) return;
  if (status == 0 && c->ok) {
    for (size_t i = 0; i < NCOUNTS; i++)
      spine_metrics_set(c->gauges[i], c->counts[i]);
    if (c->failing) spine_log_info("serve", "census counts again", NULL);
    c->failing = 0;
    return;
  }
  spine_metrics_inc(c->errors, 1);
  if (!c->failing)
    spine_log_warn("serve", "census failed: its gauges keep their last counts", "error",
                   status ? uv_strerror(status) : c->error, NULL);
  c->failing = 1;
}

static void on_timer(uv_timer_t *t) {
  census *c = t->data;
  if (c->busy) return; /* the last one is still counting: skip a turn */
  c->busy = 1;
  c->work.data = c;
  uv_queue_work(t->loop, &c->work, census_work, census_done);
}

int spine_server__census_start(uv_loop_t *loop, const char *conninfo, spine_metrics *m) {
  memset(&C, 0, sizeof C);
  snprintf(C.conninfo, sizeof C.conninfo, "%s", conninfo);
  const char *v = getenv("SPINE_CENSUS_MS");
  long long ms = v && *v ? atoll(v) : 15000;
  C.period_ms = ms >= 100 ? (uint64_t)ms : 15000;
  char name[96];
  for (size_t i = 0; i < NSTATUS; i++) {
    snprintf(name, sizeof name, "spine_workflows{status=\"%s\"}", statuses[i]);
    C.gauges[i] = spine_metrics_add(m, SPINE_METRIC_GAUGE, name,
                                    "Workflows in the database by status, not ended (census)");
  }
  C.gauges[NSTATUS] = spine_metrics_add(m, SPINE_METRIC_GAUGE, "spine_incidents_open",
                                        "Incidents not resolved yet (census)");
  C.gauges[NSTATUS + 1] =
      spine_metrics_add(m, SPINE_METRIC_GAUGE, "spine_outbox_dead_letters",
                        "Outbox deliveries that are dead and wait for an operator (census)");
  C.gauges[NSTATUS + 2] = spine_metrics_add(m, SPINE_METRIC_GAUGE, "spine_workers_alive",
                                            "Workers of this database whose lease runs (census)");
  C.errors = spine_metrics_add(m, SPINE_METRIC_COUNTER, "spine_census_errors_total",
                               "Censuses that failed (their gauges keep the last counts)");
  for (size_t i = 0; i < NCOUNTS; i++)
    if (!C.gauges[i]) return SPINE_ENOMEM;
  if (!C.errors) return SPINE_ENOMEM;
  uv_timer_init(loop, &C.timer);
  C.timer.data = &C;
  C.started = 1;
  uv_timer_start(&C.timer, on_timer, 0, C.period_ms); /* the first at once */
  return 0;
}

void spine_server__census_stop(void) {
  C.stopping = 1;
  if (!C.started || uv_is_closing((uv_handle_t *)&C.timer)) return;
  uv_timer_stop(&C.timer);
  uv_close((uv_handle_t *)&C.timer, NULL);
}

void spine_server__census_free(void) {
  if (C.c) PQfinish(C.c);
  C.c = NULL;
  C.started = 0;
}
