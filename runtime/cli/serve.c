/* `spine serve`: a worker. Claims free workflows, runs them, wakes on NOTIFY and timers, takes
 * over dead workers' work. SIGINT/SIGTERM release its workflows to the others and exit. Reads
 * the options and the environment; runtime/server assembles and runs the worker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "duration.h"
#include "pgconn.h"
#include "server.h"

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

/* $name, milliseconds, into *out (left as it is when unset): a whole number, at least `min`,
 * or a usage error naming the variable ("1s" is not 1 ms). */
static int env_ms(const char *name, long long min, int64_t *out) {
  const char *v = getenv(name);
  if (!v) return 0;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (end == v || *end || errno || n < min) {
    fprintf(stderr,
            "spine serve: %s must be a whole number of milliseconds, at least %lld (got"
            " \"%s\")\n",
            name, min, v);
    return -1;
  }
  *out = n;
  return 0;
}

int spine_cli_serve(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 0)) return cmd.exit_code;
  spine_err *e = &cmd.e;
  spine_server_opts so = {0};
  if (spine_server_http_settings_read(&so.http, e)) {
    fprintf(stderr, "spine serve: %s: %s\n", e->field, e->msg);
    return SPINE_EXIT_USAGE;
  }
  char conninfo[1024];
  if (spine_pgconn_conninfo(conninfo, sizeof conninfo, e)) return spine_cli__fail(0, e, NULL);
  spine_engine_opts o = {0};
  o.conninfo = conninfo;
  const char *pool = spine_cli__get(&cmd, "pool");
  if (pool) o.pool = atoi(pool);
  o.evict_after_ms = 60000;
  o.passivate_after_ms = SPINE_ENGINE_PASSIVATE_AFTER_MS;
  if (env_ms("SPINE_LEASE_MS", 1, &o.lease_ms) ||
      env_ms("SPINE_DB_TIMEOUT_MS", 1, &o.db_timeout_ms) ||
      env_ms("SPINE_EVICT_AFTER_MS", 0, &o.evict_after_ms) ||
      env_ms("SPINE_PASSIVATE_AFTER_MS", 0, &o.passivate_after_ms))
    return SPINE_EXIT_USAGE;
  const char *clock = spine_cli__get(&cmd, "clock");
  if (!clock) clock = getenv("SPINE_CLOCK");
  if (clock && strcmp(clock, "real")) {
    if (strncmp(clock, "manual", 6) || (clock[6] && clock[6] != '=') ||
        (clock[6] == '=' && spine_duration_parse_time(clock + 7, &o.clock_start, e))) {
      fprintf(stderr, "spine serve: --clock must be real, manual or manual=TIME (ISO 8601)%s%s\n",
              e->msg[0] ? ": " : "", e->msg);
      return SPINE_EXIT_USAGE;
    }
    o.manual_clock = 1;
  }
  const char *budget = spine_cli__get(&cmd, "instructions");
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
  const char *addr = spine_cli__get(&cmd, "listen");
  if (!addr) addr = spine_cli__get(&cmd, "http");
  if (!addr) addr = getenv("SPINE_LISTEN");
  if (!addr) addr = getenv("SPINE_HTTP_ADDR");
  so.engine = o;
  so.providers = getenv("SPINE_PROVIDERS");
  so.listen = addr;
  if (spine_server_run(&so, e)) return spine_cli__fail(0, e, NULL);
  return 0;
}
