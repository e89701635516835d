/* The command-line interface: one file per command, each exporting spine_cli_<command>().
 * Each takes argv after the command word's position (argv[0] is the command word), prints its
 * answer on stdout (one JSON object with --json), logs on stderr, and returns the exit status:
 * 0 done, 1 rejected request, 2 usage error. Commands other than run/serve/bench talk to the
 * database with blocking libpq: they have no loop to block. */
#ifndef SPINE_CLI_H
#define SPINE_CLI_H

#include <libpq-fe.h>
#include <stdint.h>

#include "err.h"
#include "ratelimit.h"

#define SPINE_EXIT_OK       0
#define SPINE_EXIT_REJECTED 1
#define SPINE_EXIT_USAGE    2

int spine_cli_db(int argc, char **argv);
int spine_cli_run(int argc, char **argv);
int spine_cli_serve(int argc, char **argv);
int spine_cli_start(int argc, char **argv);
int spine_cli_signal(int argc, char **argv);
int spine_cli_show(int argc, char **argv);
int spine_cli_list(int argc, char **argv);
int spine_cli_cancel(int argc, char **argv);
int spine_cli_retry(int argc, char **argv);
int spine_cli_skip(int argc, char **argv);
int spine_cli_incidents(int argc, char **argv);
int spine_cli_replay(int argc, char **argv);
int spine_cli_explain(int argc, char **argv);
int spine_cli_bench(int argc, char **argv);
int spine_cli_manifests(int argc, char **argv);
int spine_cli_experiments(int argc, char **argv);
int spine_cli_intent(int argc, char **argv);
int spine_cli_intents(int argc, char **argv);
int spine_cli_simulate(int argc, char **argv);
int spine_cli_watch(int argc, char **argv);
int spine_cli_new(int argc, char **argv);
int spine_cli_outbox(int argc, char **argv);

/* ---- shared by the command files ---- */

/* Options: `spec` lists the long options a command takes, "json" or "input=" (takes a value).
 * Fills values[i] for spec[i] ("1" for flags, NULL if absent) and the positional arguments.
 * Returns 0, or prints the usage error (naming the option) and returns SPINE_EXIT_USAGE;
 * with --help prints `usage` and returns -1 (the caller exits 0). */
typedef struct spine_cli_args {
  const char *values[16];
  const char *pos[8];
  int npos;
} spine_cli_args;
int spine_cli__parse(int argc, char **argv, const char *const *spec, const char *usage, int min_pos,
                     int max_pos, spine_cli_args *out);
/* The value of option `name` (as in spec, without '='), or NULL. */
const char *spine_cli__opt(const spine_cli_args *a, const char *const *spec, const char *name);

/* --since T: a date, a date-time, or a duration back from now, as ISO 8601 UTC in `out`.
 * Returns 0, or -1 when `v` is none of them. */
int spine_cli__since(const char *v, char out[32]);

/* Reports a failed request: with json, {"error": {kind, code, message, where?, field?}} on
 * stdout; else "spine: message" on stderr. Returns SPINE_EXIT_REJECTED. */
int spine_cli__fail(int json, const spine_err *e, const char *code);
/* The HTTP server of `spine serve` (serve_http.c) at `addr` ("host:port", port 0 picks one
 * and logs it): /healthz, /metrics, webhooks. Stop frees it once the loop has closed it. */
typedef struct spine_cli__http spine_cli__http;
struct spine_engine;
struct spine_providers;
struct uv_loop_s;
/* The server's settings from the environment (docs/http.md#limits): SPINE_HTTP_REQUEST_TIMEOUT_MS,
 * SPINE_HTTP_MAX_CONNECTIONS, SPINE_HTTP_MAX_REQUESTS, and the webhooks' per-source limit:
 * SPINE_WEBHOOK_RATE, SPINE_WEBHOOK_BURST, SPINE_WEBHOOK_RATE_LOOPBACK. */
typedef struct spine_cli__http_settings {
  uint64_t request_ms;
  int max_connections, max_requests;
  spine_ratelimit_opts webhook_rate;
  int webhook_exempt_loopback;
} spine_cli__http_settings;
/* Reads them, defaults for those unset. 0, or SPINE_EINVAL naming the variable in `e`. */
int spine_cli__http_settings_read(spine_cli__http_settings *out, spine_err *e);
/* `providers` (may be NULL: no adapters) answers the webhooks and shows in /metrics. */
int spine_cli__http_start(struct uv_loop_s *loop, struct spine_engine *eng,
                          struct spine_providers *providers, const char *addr,
                          const spine_cli__http_settings *settings, spine_cli__http **out,
                          spine_err *e);
void spine_cli__http_stop(spine_cli__http *h);
/* The registry behind /metrics, for other parts of serve to register in. Borrowed. */
struct spine_metrics;
struct spine_metrics *spine_cli__http_metrics(spine_cli__http *h);
/* The outbox relay of `spine serve` (serve_outbox.c), set from SPINE_OUTBOX_* variables, with
 * manifests' on_events starting cases: create before spine_engine_serve, free (with its
 * connection) after the loop ended. */
struct spine_outbox;
int spine_cli__serve_outbox_start(struct uv_loop_s *loop, struct spine_engine *eng,
                                  const char *conninfo, struct spine_outbox **out, spine_err *e);
void spine_cli__serve_outbox_free(struct spine_outbox *relay);
/* The start path of webhooks (a new case asked for by an adapter) connects with `conninfo`;
 * without init, such a webhook is answered 503. Free after the loop ended. */
void spine_cli__webhooks_init(const char *conninfo);
void spine_cli__webhooks_free(void);
/* Webhooks (serve_webhooks.c), `data` a spine_cli__webhooks: the provider's webhook secret (-1
 * when the provider has no adapter or no secret), the adapter's own verification, and the
 * delivery of a verified request as signals and starts, once per delivery id. */
typedef struct spine_cli__webhooks {
  struct spine_engine *eng;          /* its store stores, its loop runs the start path */
  struct spine_providers *providers; /* the adapters; NULL: none */
} spine_cli__webhooks;
struct spine_webhook_ops;
extern const struct spine_webhook_ops spine_cli__webhook_ops;

/* `spine serve`: loads the manifests now (in a worker thread) and on every SIGHUP; stop
 * closes the signal handle (a reload under way finishes); free after the loop ended. */
int spine_cli__serve_manifests_start(struct uv_loop_s *loop, const char *conninfo, int64_t worker);
void spine_cli__serve_manifests_stop(void);
void spine_cli__serve_manifests_free(void);

/* The clock routes of `spine serve` (serve_clock.c) on its HTTP server: GET /v1/clock and
 * POST /v1/clock/advance (manual clock only, from loopback only). */
struct spine_http_server;
int spine_cli__clock_mount(struct spine_http_server *srv, struct spine_engine *eng);

/* The files of templates/, compiled in (scripts/embed.cmake), for `spine new`;
 * the array ends with {NULL, NULL}. */
typedef struct spine_cli__template {
  const char *name; /* "playbook.lua" */
  const char *text;
} spine_cli__template;
extern const spine_cli__template spine_cli__templates[];

/* Prints a workflow (the JSON of spine_cli__workflow_sql) for people: status, steps. */
void spine_cli__print_workflow(const char *json);
/* SQL that returns one workflow as a JSON object (with steps), by id $1. */
extern const char spine_cli__workflow_sql[];
/* Runs `sql` with `id` as $1 (one row, JSON in column 0) and prints it: the JSON with --json,
 * else `text(row)`. not_found (exit 1) when there is no row. */
int spine_cli__print_one(PGconn *c, const char *sql, const char *id, int json,
                         void (*text)(PGresult *r), spine_err *e);
/* A `text` for spine_cli__print_one: the workflow for people. */
void spine_cli__print_workflow_row(PGresult *r);

#endif
