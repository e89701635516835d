/* The assembly of an engine on its provider adapters (server.h), and `spine serve`'s on top of
 * it: the engine, the outbox relay, the HTTP server and the manifests' reloads, on one loop; a
 * signal stops them in that order and the loop ends. Owns the adapters: frees them once the
 * engine stopped. Parses nothing: the CLI gives it its options. */
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "intake.h"
#include "log.h"
#include "server_internal.h"

int spine_server_engine_new(uv_loop_t *loop, const spine_engine_opts *o, const char *providers_dir,
                            spine_server_engine *se, spine_err *e) {
  memset(se, 0, sizeof *se);
  spine_providers_opts po = {0};
  po.dir = providers_dir;
  po.quiet = o->quiet;
  spine_engine_opts eo = *o;
  if (!eo.playbooks) eo.playbooks = spine_intake_playbooks_dir(); /* where `spine start` looks */
  int rc = spine_providers_new(loop, &po, &se->providers, e);
  eo.providers = spine_providers_port(se->providers);
  if (!rc) rc = spine_server__router_new(loop, o->conninfo, &se->router, &eo.router, e);
  if (!rc) rc = spine_engine_new(loop, &eo, &se->engine, e);
  if (!rc && (rc = spine_server__router_serve(se->router, se->engine, e))) {
    spine_server_engine_stop(se);
    uv_run(loop, UV_RUN_DEFAULT);
    spine_server_engine_free(se);
    return rc;
  }
  if (rc) {
    spine_providers_free(se->providers);
    se->providers = NULL;
    spine_server__router_free(se->router);
    se->router = NULL;
    uv_run(loop, UV_RUN_DEFAULT);
  }
  return rc;
}

void spine_server_engine_stop(spine_server_engine *se) {
  if (!se->providers) return;
  spine_server__router_stop(se->router);
  spine_engine_stop(se->engine);
  spine_providers_free(se->providers); /* after the engine's stop: it cancelled its calls */
  se->providers = NULL;
}

void spine_server_engine_free(spine_server_engine *se) {
  if (se->engine) spine_engine_free(se->engine);
  se->engine = NULL;
  spine_server__router_free(se->router); /* after the engine: it borrowed the port */
  se->router = NULL;
}

typedef struct server {
  spine_server_engine se;
  spine_server__http *http;
  spine_outbox *relay;
  uv_signal_t sigint, sigterm;
} server;

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  server *s = h->data;
  spine_log_info("serve", "stopping: releasing workflows to other workers", NULL);
  spine_outbox_stop(s->relay); /* first: its POSTs in flight must not queue outcomes any more */
  spine_server__api_forget_providers(); /* before the engine's stop frees the adapters */
  spine_server_engine_stop(&s->se);
  spine_server__manifests_stop();
  spine_server__sso_stop();
  spine_server__census_stop();
  spine_server__prune_stop();
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
  spine_server__api_init(conninfo);
  if (spine_server__sso_start(e) || spine_server_engine_new(loop, &eo, o->providers, &s->se, e) ||
      spine_server__outbox_start(loop, s->se.engine, conninfo, &s->relay, e) ||
      spine_engine_serve(s->se.engine, e) ||
      spine_server__http_start(loop, s->se.engine, s->se.providers,
                               o->listen ? o->listen : "127.0.0.1:7780", &o->http, &s->http, e) ||
      spine_outbox_metrics(s->relay, spine_server__http_metrics(s->http)) ||
      spine_server__census_start(loop, conninfo, spine_server__http_metrics(s->http)) ||
      spine_server__prune_start(loop, conninfo, spine_server__http_metrics(s->http), e)) {
    spine_server__census_stop();
    spine_server__prune_stop();
    if (s->http) spine_server__http_stop(s->http);
    if (s->relay) spine_outbox_stop(s->relay);
    spine_server_engine_stop(&s->se);
    uv_run(loop, UV_RUN_DEFAULT);
    spine_server_engine_free(&s->se);
    spine_server__outbox_free(s->relay);
    spine_server__webhooks_free();
    spine_server__census_free();
    spine_server__prune_free();
    spine_server__api_free();
    spine_server__sso_free();
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
  snprintf(worker, sizeof worker, "%lld", (long long)spine_engine_worker(s.se.engine));
  spine_log_info("serve", "serving", "worker", worker, NULL);
  uv_signal_init(&loop, &s.sigint);
  uv_signal_init(&loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  spine_server__manifests_start(&loop, o->engine.conninfo, spine_engine_worker(s.se.engine));
  spine_server__sso_watch(&loop);
  uv_run(&loop, UV_RUN_DEFAULT);
  spine_server__manifests_free();
  spine_server__census_free();
  spine_server__prune_free();
  spine_server__outbox_free(s.relay);
  spine_server__webhooks_free();
  spine_server__api_free();
  spine_server__sso_free();
  spine_server_engine_free(&s.se);
  uv_loop_close(&loop);
  return 0;
}
