/* `spine serve`'s assembly (server.h): makes the provider adapters, then the engine on their
 * port, the outbox relay, the HTTP server and the manifests' reloads, on one loop; a signal
 * stops them in that order and the loop ends. Owns the adapters: frees them once the engine
 * stopped. Parses nothing: the CLI gives it its options. */
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <uv.h>

#include "log.h"
#include "server_internal.h"

typedef struct server {
  spine_providers *providers;
  spine_engine *engine;
  spine_server__http *http;
  spine_outbox *relay;
  uv_signal_t sigint, sigterm;
} server;

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  server *s = h->data;
  spine_log_info("serve", "stopping: releasing workflows to other workers", NULL);
  spine_outbox_stop(s->relay); /* first: its POSTs in flight must not queue outcomes any more */
  spine_engine_stop(s->engine);
  spine_providers_free(s->providers); /* after the engine's stop: it cancelled its calls */
  s->providers = NULL;
  spine_server__manifests_stop();
  spine_server__http_stop(s->http);
  if (!uv_is_closing((uv_handle_t *)&s->sigint)) uv_close((uv_handle_t *)&s->sigint, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->sigterm)) uv_close((uv_handle_t *)&s->sigterm, NULL);
}

/* Makes everything; on failure, what was made is stopped and freed again. */
static int start(uv_loop_t *loop, const spine_server_opts *o, server *s, spine_err *e) {
  const char *conninfo = o->engine.conninfo;
  spine_engine_opts eo = o->engine;
  eo.claims = 1;
  spine_outbox_init(); /* its statements, before the engine's store prepares them */
  spine_server__webhooks_init(conninfo);
  /* Adapters first: a bad one stops the start before anything is connected. */
  spine_providers_opts po = {0};
  po.dir = o->providers;
  po.quiet = eo.quiet;
  int rc = spine_providers_new(loop, &po, &s->providers, e);
  eo.providers = spine_providers_port(s->providers);
  if (rc || spine_engine_new(loop, &eo, &s->engine, e) ||
      spine_server__outbox_start(loop, s->engine, conninfo, &s->relay, e) ||
      spine_engine_serve(s->engine, e) ||
      spine_server__http_start(loop, s->engine, s->providers,
                               o->listen ? o->listen : "127.0.0.1:7780", &o->http, &s->http, e) ||
      spine_outbox_metrics(s->relay, spine_server__http_metrics(s->http))) {
    if (s->http) spine_server__http_stop(s->http);
    if (s->relay) spine_outbox_stop(s->relay);
    if (s->engine) spine_engine_stop(s->engine);
    spine_providers_free(s->providers);
    uv_run(loop, UV_RUN_DEFAULT);
    if (s->engine) spine_engine_free(s->engine);
    spine_server__outbox_free(s->relay);
    spine_server__webhooks_free();
    if (!e->code) spine_err_set(e, SPINE_ENOMEM, "serve", NULL, "cannot register the metrics");
    return e->code; /* e is never NULL here (server.h) */
  }
  return 0;
}

int spine_server_run(const spine_server_opts *o, spine_err *e) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  server s = {0};
  int rc = start(&loop, o, &s, e);
  if (rc) {
    uv_loop_close(&loop);
    return rc;
  }
  char worker[24];
  snprintf(worker, sizeof worker, "%lld", (long long)spine_engine_worker(s.engine));
  spine_log_info("serve", "serving", "worker", worker, NULL);
  uv_signal_init(&loop, &s.sigint);
  uv_signal_init(&loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  spine_server__manifests_start(&loop, o->engine.conninfo, spine_engine_worker(s.engine));
  uv_run(&loop, UV_RUN_DEFAULT);
  spine_server__manifests_free();
  spine_server__outbox_free(s.relay);
  spine_server__webhooks_free();
  spine_engine_free(s.engine);
  uv_loop_close(&loop);
  return 0;
}
