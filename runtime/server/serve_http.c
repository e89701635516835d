/* The HTTP side of `spine serve`: /healthz, /metrics (the engine's and the store's counters
 * through the metrics registry, the adapters' breakers and rate limits included, and the loop's
 * lag) and the webhook route, on the engine's loop: verified webhooks go to their adapter
 * (serve_webhooks.c); the clock's routes (serve_clock.c); the rest of /v1, the API
 * (serve_api.c); the console at / (serve_console.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http_server.h"
#include "log.h"
#include "loop_lag.h"
#include "metrics.h"
#include "providers.h"
#include "server_internal.h"
#include "store.h"
#include "webhook.h"

/* The loop ticks this often; /healthz is degraded while the largest lag of the last
 * SPINE_LOOP_LAG_WINDOW seconds is over DEGRADED_LAG_S: the loop did not turn for that long. */
#define LAG_TICK_MS    100
#define DEGRADED_LAG_S 1.0

struct spine_server__http {
  spine_engine *eng;
  spine_server__webhooks hooks_data; /* what the webhook route's ops read */
  spine_metrics *metrics;
  spine_http_server *srv;
  spine_webhooks *hooks;
  spine_loop_lag lag;
  int lag_started;
  int closing; /* handles (server, lag timer) whose close callback has not run yet */
};

static double live(void *data) {
  return spine_engine_live(((spine_server__http *)data)->eng);
}

static double passive(void *data) {
  return spine_engine_passive(((spine_server__http *)data)->eng);
}

static double steps(void *data) {
  return (double)spine_engine_steps(((spine_server__http *)data)->eng);
}

static const spine_store_stats *stats(void *data) {
  return spine_store_stats_get(spine_engine_store(((spine_server__http *)data)->eng));
}

static double batches(void *data) {
  return (double)stats(data)->batches;
}

static double ops(void *data) {
  return (double)stats(data)->ops;
}

static double retries(void *data) {
  return (double)stats(data)->retries;
}

static double lag_last(void *data) {
  return spine_loop_lag_last(&((spine_server__http *)data)->lag);
}

static double lag_max(void *data) {
  return spine_loop_lag_max(&((spine_server__http *)data)->lag, uv_hrtime());
}

static double count(void *data) {
  return (double)*(const uint64_t *)data;
}

/* What the engine counts: ends by status, incidents opened, dead workers forgotten. */
static int register_counts(spine_server__http *h) {
  static const spine_wf_status ends[] = {SPINE_WF_COMPLETED, SPINE_WF_FAILED, SPINE_WF_COMPENSATED,
                                         SPINE_WF_CANCELLED, SPINE_WF_STUCK};
  const spine_engine_counts *c = spine_engine_counts_get(h->eng);
  char name[96];
  int rc = 0;
  for (size_t i = 0; i < sizeof ends / sizeof ends[0] && !rc; i++) {
    snprintf(name, sizeof name, "spine_workflows_ended_total{status=\"%s\"}",
             spine_wf_status_name(ends[i]));
    rc = spine_metrics_add_fn(h->metrics, SPINE_METRIC_COUNTER, name,
                              "Workflows whose end this worker committed, by status", count,
                              (void *)&c->ended[ends[i]]);
  }
  if (!rc)
    rc =
        spine_metrics_add_fn(h->metrics, SPINE_METRIC_COUNTER, "spine_incidents_opened_total",
                             "Workflows this worker paused on a provider, each opening an incident",
                             count, (void *)&c->ended[SPINE_WF_PAUSED]);
  if (!rc)
    rc = spine_metrics_add_fn(h->metrics, SPINE_METRIC_COUNTER, "spine_workers_lost_total",
                              "Dead or hung workers this worker found and forgot", count,
                              (void *)&c->workers_lost);
  if (!rc)
    rc = spine_metrics_add_fn(h->metrics, SPINE_METRIC_COUNTER, "spine_workflows_taken_over_total",
                              "Workflows of dead or hung workers this worker freed for claiming",
                              count, (void *)&c->taken_over);
  if (!rc)
    rc = spine_metrics_add_fn(h->metrics, SPINE_METRIC_COUNTER, "spine_workflows_passivated_total",
                              "Waiting workflows that left their coroutine for a compact record",
                              count, (void *)&c->passivated);
  if (!rc)
    rc = spine_metrics_add_fn(h->metrics, SPINE_METRIC_COUNTER, "spine_workflows_activated_total",
                              "Passive workflows that woke and were replayed", count,
                              (void *)&c->activated);
  return rc;
}

static void healthz(void *data, spine_http_server_exchange *x) {
  spine_server__http *h = data;
  double max = lag_max(h);
  int degraded = max > DEGRADED_LAG_S;
  char body[256];
  int n = snprintf(body, sizeof body,
                   "{\"status\":\"%s\",\"worker\":%lld,\"live\":%d,\"loop_lag_seconds\":%.3f,"
                   "\"loop_lag_max_seconds\":%.3f}\n",
                   degraded ? "degraded" : "ok", (long long)spine_engine_worker(h->eng),
                   spine_engine_live(h->eng), lag_last(h), max);
  spine_http_server_respond(x, degraded ? 503 : 200, "application/json", body, (size_t)n);
}

static void metrics(void *data, spine_http_server_exchange *x) {
  spine_server__http *h = data;
  spine_buf b = SPINE_BUF_INIT;
  if (spine_metrics_render(h->metrics, &b))
    spine_http_server_respond(x, 500, "text/plain", "out of memory\n", 14);
  else
    spine_http_server_respond(x, 200, "text/plain; version=0.0.4", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

static int register_metrics(spine_server__http *h) {
  static const struct {
    spine_metric_type type;
    const char *name, *help;
    double (*read)(void *);
  } m[] = {
      {SPINE_METRIC_GAUGE, "spine_workflows_live",
       "Workflows this worker holds, passive ones included", live},
      {SPINE_METRIC_GAUGE, "spine_workflows_passive",
       "Waiting workflows this worker holds as a compact record, without a coroutine", passive},
      {SPINE_METRIC_COUNTER, "spine_steps_total", "Steps committed by this worker", steps},
      {SPINE_METRIC_COUNTER, "spine_store_batches_total", "Group-commit batches committed",
       batches},
      {SPINE_METRIC_COUNTER, "spine_store_ops_total", "Store operations committed", ops},
      {SPINE_METRIC_COUNTER, "spine_store_retries_total",
       "Store operations sent again after a batch failed", retries},
      {SPINE_METRIC_GAUGE, "spine_loop_lag_seconds",
       "How late the event loop ran its last 100 ms tick", lag_last},
      {SPINE_METRIC_GAUGE, "spine_loop_lag_max_seconds",
       "The largest event loop lag of the last 10 s", lag_max},
  };
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    int rc = spine_metrics_add_fn(h->metrics, m[i].type, m[i].name, m[i].help, m[i].read, h);
    if (rc) return rc;
  }
  return register_counts(h);
}

/* $name as a whole number in [min, max] into *out, left as it is when unset or empty. */
static int env_number(const char *name, long long min, long long max, long long *out,
                      spine_err *e) {
  const char *v = getenv(name);
  if (!v || !*v) return 0;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || *end || n < min || n > max)
    return spine_err_set(e, SPINE_EINVAL, NULL, name,
                         "\"%s\" is not a whole number from %lld to %lld", v, min, max);
  *out = n;
  return 0;
}

int spine_server_http_settings_read(spine_server_http_settings *out, spine_err *e) {
  memset(out, 0, sizeof *out);
  long long request_ms = 10000, conns = 1024, requests = 256, burst = 0;
  int rc = env_number("SPINE_HTTP_REQUEST_TIMEOUT_MS", 1, 86400000, &request_ms, e);
  if (!rc) rc = env_number("SPINE_HTTP_MAX_CONNECTIONS", 1, 1000000, &conns, e);
  if (!rc) rc = env_number("SPINE_HTTP_MAX_REQUESTS", 1, 1000000, &requests, e);
  const char *rate = getenv("SPINE_WEBHOOK_RATE");
  if (!rc)
    rc = spine_ratelimit_parse(rate && *rate ? rate : "100/s", "SPINE_WEBHOOK_RATE",
                               &out->webhook_rate, e);
  if (!rc) rc = env_number("SPINE_WEBHOOK_BURST", 1, 1000000, &burst, e);
  const char *loopback = getenv("SPINE_WEBHOOK_RATE_LOOPBACK");
  if (!rc && loopback && *loopback && strcmp(loopback, "limit") && strcmp(loopback, "exempt"))
    rc = spine_err_set(e, SPINE_EINVAL, NULL, "SPINE_WEBHOOK_RATE_LOOPBACK",
                       "\"%s\" is neither limit nor exempt", loopback);
  if (rc) return rc;
  out->request_ms = (uint64_t)request_ms;
  out->max_connections = (int)conns;
  out->max_requests = (int)requests;
  out->webhook_rate.burst = (uint32_t)burst; /* 0: the rate's N */
  out->webhook_exempt_loopback = loopback && !strcmp(loopback, "exempt");
  return 0;
}

int spine_server__http_start(uv_loop_t *loop, spine_engine *eng, spine_providers *providers,
                             const char *addr, const spine_server_http_settings *settings,
                             spine_server__http **out, spine_err *e) {
  *out = NULL;
  spine_http_server_opts o = {0};
  char host[64];
  int rc = spine_http_server_parse_addr(addr, host, sizeof host, &o.port, e);
  if (rc) return rc;
  o.host = host;
  o.request_ms = settings->request_ms;
  o.max_connections = settings->max_connections;
  o.max_requests = settings->max_requests;
  spine_server__http *h = calloc(1, sizeof *h);
  if (!h || !(h->metrics = spine_metrics_new())) {
    free(h);
    return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  }
  h->eng = eng;
  h->hooks_data.eng = eng;
  h->hooks_data.providers = providers;
  o.metrics = h->metrics;
  rc = register_metrics(h);
  if (!rc && !(rc = spine_loop_lag_start(loop, &h->lag, LAG_TICK_MS))) h->lag_started = 1;
  if (!rc) rc = spine_http_server_start(loop, &o, &h->srv, e);
  if (!rc) rc = spine_http_server_route(h->srv, "GET", "/healthz", healthz, h);
  if (!rc) rc = spine_http_server_route(h->srv, "GET", "/metrics", metrics, h);
  if (!rc) rc = spine_server__clock_mount(h->srv, eng);
  if (!rc)
    rc = spine_webhook_mount(h->srv, h->metrics, &spine_server__webhook_ops, &h->hooks_data,
                             &h->hooks, e);
  if (!rc) rc = spine_server__api_mount(h->srv, loop, providers);
  if (!rc) rc = spine_server__console_mount(h->srv);
  if (!rc)
    rc = spine_webhook_rate_limit(h->hooks, &settings->webhook_rate,
                                  settings->webhook_exempt_loopback);
  if (rc) {
    if (!e || !e->code) spine_err_set(e, rc, "http", NULL, "cannot start the HTTP server");
    spine_server__http_stop(h); /* frees h once its handles are closed */
    return rc;
  }
  if (providers) spine_providers_set_metrics(providers, h->metrics);
  char bound[96];
  snprintf(bound, sizeof bound, "%s:%d", host, spine_http_server_port(h->srv));
  spine_log_info("serve", "http listening", "addr", bound, NULL);
  *out = h;
  return 0;
}

spine_metrics *spine_server__http_metrics(spine_server__http *h) {
  return h->metrics;
}

static void on_closed(void *data) {
  spine_server__http *h = data;
  if (--h->closing > 0) return;
  spine_webhook_free(h->hooks);
  spine_metrics_free(h->metrics);
  free(h);
}

void spine_server__http_stop(spine_server__http *h) {
  if (!h) return;
  h->closing = 1; /* held until both closes are under way: a callback may run at once */
  if (h->srv) {
    h->closing++;
    spine_http_server_close(h->srv, on_closed, h);
  }
  if (h->lag_started) {
    h->closing++;
    spine_loop_lag_stop(&h->lag, on_closed, h);
  }
  on_closed(h);
}
