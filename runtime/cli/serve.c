/* `spine serve`: a worker. Claims free workflows, runs them, wakes on NOTIFY and timers, takes
 * over dead workers' work. SIGINT/SIGTERM release its workflows to the others and exit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "duration.h"
#include "log.h"
#include "outbox.h"
#include "pgconn.h"
#include "providers.h"
#include "scheduler.h"

static const char *const spec[] = {
    "listen=", "pool=", "json", "http=", "clock=", "instructions=", NULL};
static const char usage[] =
    "usage: spine serve [--pool N] [--listen HOST:PORT] [--clock real|manual[=TIME]]\n"
    "                   [--instructions N]\n"
    "  Runs workflows stored in the database until SIGINT or SIGTERM. Several `spine serve`\n"
    "  processes may share one database. --pool sets the pipelined connections (default 4).\n"
    "  Loads the manifests at start and on SIGHUP (see `spine manifests reload`).\n"
    "  --listen (or --http; env SPINE_LISTEN or SPINE_HTTP_ADDR) sets the HTTP address of\n"
    "  /healthz, /metrics and /v1/webhooks/<provider> (default 127.0.0.1:7780; port 0 picks\n"
    "  a free port and logs it). /healthz answers 503 \"degraded\" while the event loop has\n"
    "  not turned for over a second in the last 10 s (spine_loop_lag_max_seconds).\n"
    "  --instructions N (env SPINE_INSTRUCTIONS) is the instruction budget of one resume of a\n"
    "  playbook (default 50000000): a resume holds the loop until it yields or runs out.\n"
    "  SPINE_HTTP_REQUEST_TIMEOUT_MS (default 10000), SPINE_HTTP_MAX_CONNECTIONS (1024) and\n"
    "  SPINE_HTTP_MAX_REQUESTS (256) bound the HTTP server; SPINE_WEBHOOK_RATE (100/s),\n"
    "  SPINE_WEBHOOK_BURST (the rate's N) and SPINE_WEBHOOK_RATE_LOOPBACK (limit or exempt)\n"
    "  limit the webhooks of one source address (docs/http.md#limits).\n"
    "  Relays the outbox's events to their subscribers (see `spine outbox`); env\n"
    "  SPINE_OUTBOX_BACKOFF_MS (first retry, default 1000), SPINE_OUTBOX_BACKOFF_MAX_MS\n"
    "  (default 3600000), SPINE_OUTBOX_TIMEOUT_MS (per POST, default 10000),\n"
    "  SPINE_OUTBOX_MAX_IN_FLIGHT (POSTs at once, default 32).\n"
    "  --clock manual[=TIME] (env SPINE_CLOCK) stops engine time, for tests: it starts at TIME\n"
    "  (ISO 8601; default the database's manual clock, else now) and moves only when a client\n"
    "  on loopback POSTs /v1/clock/advance {\"by\": \"14d\"}; every workflow and process on the\n"
    "  database follows it. --clock real (the default) removes a manual clock left behind.\n";

static spine_providers *providers;
static spine_engine *engine;
static spine_cli__http *http;
static spine_outbox *relay;

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  spine_log_info("serve", "stopping: releasing workflows to other workers", NULL);
  spine_outbox_stop(relay); /* first: its POSTs in flight must not queue outcomes any more */
  spine_engine_stop(engine);
  spine_providers_free(providers); /* after the engine's stop: it cancelled its calls */
  providers = NULL;
  spine_cli__serve_manifests_stop();
  spine_cli__http_stop(http);
  uv_close((uv_handle_t *)h, NULL);
  uv_signal_t *other = h->data;
  if (!uv_is_closing((uv_handle_t *)other)) uv_close((uv_handle_t *)other, NULL);
}

int spine_cli_serve(int argc, char **argv) {
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 0, 0, &a);
  if (rc) return rc < 0 ? 0 : rc;
  spine_err e;
  spine_err_clear(&e);
  spine_cli__http_settings http_settings;
  if (spine_cli__http_settings_read(&http_settings, &e)) {
    fprintf(stderr, "spine serve: %s: %s\n", e.field, e.msg);
    return SPINE_EXIT_USAGE;
  }
  char conninfo[1024];
  if (spine_pgconn_conninfo(conninfo, sizeof conninfo, &e)) return spine_cli__fail(0, &e, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_engine_opts o = {0};
  o.conninfo = conninfo;
  o.claims = 1;
  const char *pool = spine_cli__opt(&a, spec, "pool");
  if (pool) o.pool = atoi(pool);
  const char *lease = getenv("SPINE_LEASE_MS");
  if (lease) o.lease_ms = atoll(lease);
  const char *db_timeout = getenv("SPINE_DB_TIMEOUT_MS");
  if (db_timeout) o.db_timeout_ms = atoll(db_timeout);
  const char *clock = spine_cli__opt(&a, spec, "clock");
  if (!clock) clock = getenv("SPINE_CLOCK");
  if (clock && strcmp(clock, "real")) {
    if (strncmp(clock, "manual", 6) || (clock[6] && clock[6] != '=') ||
        (clock[6] == '=' && spine_time_parse(clock + 7, &o.clock_start, &e))) {
      fprintf(stderr, "spine serve: --clock must be real, manual or manual=TIME (ISO 8601)%s%s\n",
              e.msg[0] ? ": " : "", e.msg);
      return SPINE_EXIT_USAGE;
    }
    o.manual_clock = 1;
  }
  const char *budget = spine_cli__opt(&a, spec, "instructions");
  if (!budget) budget = getenv("SPINE_INSTRUCTIONS");
  if (budget) {
    char *end;
    long long n = strtoll(budget, &end, 10);
    if (end == budget || *end || n < 1000) {
      fprintf(stderr,
              "spine serve: --instructions must be a whole number, at least 1000 (got"
              " \"%s\")\n",
              budget);
      return SPINE_EXIT_USAGE;
    }
    o.instructions = n;
  }
  const char *evict = getenv("SPINE_EVICT_AFTER_MS");
  o.evict_after_ms = evict ? atoll(evict) : 60000;
  const char *addr = spine_cli__opt(&a, spec, "listen");
  if (!addr) addr = spine_cli__opt(&a, spec, "http");
  if (!addr) addr = getenv("SPINE_LISTEN");
  if (!addr) addr = getenv("SPINE_HTTP_ADDR");
  spine_outbox_init(); /* its statements, before the engine's store prepares them */
  spine_cli__webhooks_init(conninfo);
  /* Adapters first: a bad one stops the start before anything is connected. */
  spine_providers_opts po = {0};
  po.dir = getenv("SPINE_PROVIDERS");
  rc = spine_providers_new(&loop, &po, &providers, &e);
  o.providers = spine_providers_port(providers);
  if (rc || spine_engine_new(&loop, &o, &engine, &e) ||
      spine_cli__serve_outbox_start(&loop, engine, conninfo, &relay, &e) ||
      spine_engine_serve(engine, &e) ||
      spine_cli__http_start(&loop, engine, providers, addr ? addr : "127.0.0.1:7780",
                            &http_settings, &http, &e) ||
      spine_outbox_metrics(relay, spine_cli__http_metrics(http))) {
    if (http) spine_cli__http_stop(http);
    if (relay) spine_outbox_stop(relay);
    if (engine) spine_engine_stop(engine);
    spine_providers_free(providers);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (engine) spine_engine_free(engine);
    spine_cli__serve_outbox_free(relay);
    spine_cli__webhooks_free();
    uv_loop_close(&loop);
    if (!e.code) spine_err_set(&e, SPINE_ENOMEM, "serve", NULL, "cannot register the metrics");
    return spine_cli__fail(0, &e, NULL);
  }
  char worker[24];
  snprintf(worker, sizeof worker, "%lld", (long long)spine_engine_worker(engine));
  spine_log_info("serve", "serving", "worker", worker, NULL);
  uv_signal_t sigint, sigterm;
  uv_signal_init(&loop, &sigint);
  uv_signal_init(&loop, &sigterm);
  sigint.data = &sigterm;
  sigterm.data = &sigint;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  spine_cli__serve_manifests_start(&loop, conninfo, spine_engine_worker(engine));
  uv_run(&loop, UV_RUN_DEFAULT);
  spine_cli__serve_manifests_free();
  spine_cli__serve_outbox_free(relay);
  spine_cli__webhooks_free();
  spine_engine_free(engine);
  uv_loop_close(&loop);
  return 0;
}
