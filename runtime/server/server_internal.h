/* What the files of runtime/server share (server.c assembles them): the HTTP server, the clock's
 * routes, the webhooks, the outbox relay and the manifests' reloads of `spine serve`. */
#ifndef SPINE_SERVER_INTERNAL_H
#define SPINE_SERVER_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "api_tokens.h"
#include "engine.h"
#include "err.h"
#include "http_server.h"
#include "metrics.h"
#include "outbox.h"
#include "providers.h"
#include "server.h"
#include "webhook.h"

/* The HTTP server of `spine serve` (serve_http.c) at `addr` ("host:port", port 0 picks one
 * and logs it): /healthz, /metrics, webhooks. Stop frees it once the loop has closed it.
 * `providers` (may be NULL: no adapters) answers the webhooks and shows in /metrics. */
typedef struct spine_server__http spine_server__http;
int spine_server__http_start(uv_loop_t *loop, spine_engine *eng, spine_providers *providers,
                             const char *addr, const spine_server_http_settings *settings,
                             spine_server__http **out, spine_err *e);
void spine_server__http_stop(spine_server__http *h);
/* The registry behind /metrics, for other parts of serve to register in. Borrowed. */
spine_metrics *spine_server__http_metrics(spine_server__http *h);

/* The dispatcher's router of an assembled engine (server_router.c): new makes it empty and
 * gives the port for the engine's options; serve reads the manifests in force (blocking, after
 * the engine migrated, before it serves) and listens for reloads; free after the loop ended. */
int spine_server__router_new(uv_loop_t *loop, const char *conninfo, spine_server__router **out,
                             spine_router_port *port, spine_err *e);
int spine_server__router_serve(spine_server__router *r, spine_engine *eng, spine_err *e);
void spine_server__router_stop(spine_server__router *r);
void spine_server__router_free(spine_server__router *r);

/* The outbox relay of `spine serve` (serve_outbox.c), set from SPINE_OUTBOX_* variables, with
 * manifests' on_events starting cases: create before spine_engine_serve, free (with its
 * connection) after the loop ended. */
int spine_server__outbox_start(uv_loop_t *loop, spine_engine *eng, const char *conninfo,
                               spine_outbox **out, spine_err *e);
void spine_server__outbox_free(spine_outbox *relay);

/* The start path of webhooks (a new case asked for by an adapter) connects with `conninfo`;
 * without init, such a webhook is answered 503. Free after the loop ended. */
void spine_server__webhooks_init(const char *conninfo);
void spine_server__webhooks_free(void);
/* Webhooks (serve_webhooks.c), `data` a spine_server__webhooks: the provider's webhook secret
 * (-1 when the provider has no adapter or no secret), the adapter's own verification, and the
 * delivery of a verified request as signals and starts, once per delivery id. */
typedef struct spine_server__webhooks {
  spine_engine *eng;          /* its store stores, its loop runs the start path */
  spine_providers *providers; /* the adapters; NULL: none */
} spine_server__webhooks;
extern const spine_webhook_ops spine_server__webhook_ops;

/* Loads the manifests now (in a worker thread) and on every SIGHUP (serve_manifests.c); stop
 * closes the signal handle (a reload under way finishes); free after the loop ended. */
int spine_server__manifests_start(uv_loop_t *loop, const char *conninfo, int64_t worker);
void spine_server__manifests_stop(void);
void spine_server__manifests_free(void);

/* The census of `spine serve` (serve_census.c): gauges in `m` of what the database holds (workflows
 * not ended by status, open incidents, dead letters, workers alive), counted at once and then
 * every SPINE_CENSUS_MS in a worker thread on a connection to `conninfo`. Stop closes its
 * timer (a census under way finishes); free, after the loop ended, closes the connection. */
int spine_server__census_start(uv_loop_t *loop, const char *conninfo, spine_metrics *m);
void spine_server__census_stop(void);
void spine_server__census_free(void);

/* The scheduled prune of `spine serve` (serve_prune.c): with SPINE_PRUNE_ENDED_BEFORE set, runs
 * spine prune every SPINE_PRUNE_EVERY in a worker thread. 0 (also when unset), or SPINE_EINVAL
 * naming the bad variable. Stop and free as the census's. */
int spine_server__prune_start(uv_loop_t *loop, const char *conninfo, spine_metrics *m,
                              spine_err *e);
void spine_server__prune_stop(void);
void spine_server__prune_free(void);

/* The clock routes of `spine serve` (serve_clock.c) on its HTTP server: GET /v1/clock and
 * POST /v1/clock/advance (manual clock only, from loopback only). */
int spine_server__clock_mount(spine_http_server *srv, spine_engine *eng);

/* The HTTP API under /v1 (serve_api.c): init with the database before the loop runs (without
 * it, API requests are answered 503), mount on the HTTP server after the other /v1 routes (with
 * the adapters GET /v1/providers shows, or NULL), free after the loop ended. */
void spine_server__api_init(const char *conninfo);
int spine_server__api_mount(spine_http_server *srv, uv_loop_t *loop, spine_providers *providers);
void spine_server__api_free(void);
/* Before the adapters go (the engine's stop): GET /v1/providers answers [] from then on (a
 * request whose token check is still in a thread must not read a freed router). */
void spine_server__api_forget_providers(void);
/* Single sign-on's hook: a bearer that is not an API token ("spn_...") is handed to `fn`, in a
 * worker thread (so `fn` must be thread-safe and may block), which fills the principal (its
 * token_id "", the subject, the scopes) and returns 0, or SPINE_ENOTFOUND (401) with why in
 * `e`. Without a hook such a bearer is refused 401. Set before the server starts. */
typedef int (*spine_server_bearer_fn)(void *data, const char *bearer, size_t len, const char *peer,
                                      spine_api_principal *p, spine_err *e);
void spine_server__api_set_bearer(spine_server_bearer_fn fn, void *data);
/* Single sign-on (serve_sso.c): with SPINE_JWKS_FILE set, reads the JWKS file (blocking: at
 * start) and hands the API its JWT check; without it, nothing. 0, or the configuration's or
 * the file's error. */
int spine_server__sso_start(spine_err *e);
/* Reads the JWKS file again on every SIGHUP (in a worker thread; a bad file keeps the keys in
 * force); _stop closes the signal handle, _free drops the keys after the loop has ended. */
void spine_server__sso_watch(uv_loop_t *loop);
void spine_server__sso_stop(void);
void spine_server__sso_free(void);
/* The API's routes, in order: the pattern of route i (its method in *method), or NULL past the
 * last. For the check that the OpenAPI document lists every one. */
const char *spine_server__api_route(size_t i, const char **method);

/* Documents compiled in (scripts/embed.cmake): openapi.json. Ends with {NULL, NULL}. */
typedef struct spine_server__doc {
  const char *name;
  const char *text;
} spine_server__doc;
extern const spine_server__doc spine_server__docs[];

/* The console (serve_console.c): its page at GET / and its assets under GET /console/,
 * compiled in from runtime/server/console (spine_server__console, ends with {NULL, NULL}).
 * Mount after the other routes. */
extern const spine_server__doc spine_server__console[];
int spine_server__console_mount(spine_http_server *srv);

#endif
