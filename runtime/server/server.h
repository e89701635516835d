/* What `spine serve` assembles: the provider adapters, the engine (claiming free workflows),
 * the outbox relay, the HTTP server (/healthz, /metrics, webhooks, the clock's routes) and the
 * manifests' reloads, on one loop, until SIGINT or SIGTERM. The CLI parses; this runs. */
#ifndef SPINE_SERVER_H
#define SPINE_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "engine.h"
#include "err.h"
#include "providers.h"
#include "ratelimit.h"

/* An engine on its provider adapters and the dispatcher's router of its child workflows: the
 * one assembly of `spine serve` (spine_server_run), `spine run` and spine-bench. The adapters come
 * first, so that a bad one stops the start before anything is connected; the engine stops before
 * they are freed, having cancelled its calls to them. The assembler owns both. */
typedef struct spine_server__router spine_server__router;
typedef struct spine_server_engine {
  spine_providers *providers;   /* NULL once stopped */
  spine_engine *engine;         /* NULL once freed */
  spine_server__router *router; /* routes its children by the manifests in force */
} spine_server_engine;

/* Makes the adapters of `providers_dir` (NULL: "providers"; quiet when o->quiet), then the
 * engine of `o` on their port (o->providers is set here), on `loop`; the caller serves it.
 * Returns 0, or an error in `e` (not NULL) with nothing left: what was made is closed and the
 * loop has run. */
int spine_server_engine_new(uv_loop_t *loop, const spine_engine_opts *o, const char *providers_dir,
                            spine_server_engine *se, spine_err *e);
/* Stops the engine, then frees its adapters; the loop ends once both have closed. Once
 * stopped, nothing (so a callback and the caller may both stop it). */
void spine_server_engine_stop(spine_server_engine *se);
/* Frees the stopped engine, once the loop has run its closes. */
void spine_server_engine_free(spine_server_engine *se);

/* The HTTP server's settings from the environment (docs/http.md#limits):
 * SPINE_HTTP_REQUEST_TIMEOUT_MS, SPINE_HTTP_MAX_CONNECTIONS, SPINE_HTTP_MAX_REQUESTS, and the
 * webhooks' per-source limit: SPINE_WEBHOOK_RATE, SPINE_WEBHOOK_BURST,
 * SPINE_WEBHOOK_RATE_LOOPBACK. */
typedef struct spine_server_http_settings {
  uint64_t request_ms;
  int max_connections, max_requests;
  spine_ratelimit_opts webhook_rate;
  int webhook_exempt_loopback;
} spine_server_http_settings;
/* Reads them, defaults for those unset. 0, or SPINE_EINVAL naming the variable in `e`. */
int spine_server_http_settings_read(spine_server_http_settings *out, spine_err *e);

typedef struct spine_server_opts {
  spine_engine_opts engine; /* conninfo and the rest; claims and providers are set here */
  const char *providers;    /* directory of provider adapters (NULL: "providers") */
  const char *listen;       /* the HTTP address, "host:port" (NULL: 127.0.0.1:7780; port 0 picks
                               a free one and logs it) */
  spine_server_http_settings http;
} spine_server_opts;

/* Runs a worker on a loop of its own until SIGINT or SIGTERM, which release its workflows to
 * the other workers. Returns 0 after such a stop, or an error with `e` (not NULL) filled when
 * it could not start: a bad adapter, no database, the HTTP address taken. */
int spine_server_run(const spine_server_opts *o, spine_err *e);

#endif
