/* The dispatcher's router of an assembled engine (server.h): the manifests in force are read
 * before the engine serves, and again in a libuv worker thread (a short blocking connection,
 * off the loop) whenever a reload is notified or the database connection comes back, since a
 * notification may have been missed while it was gone. The set read is put in force on the
 * loop, whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "child_router.h"
#include "log.h"
#include "pgconn.h"
#include "server_internal.h"

struct spine_server__router {
  spine_child_router *router;
  uv_loop_t *loop;
  uv_work_t work;
  char conninfo[1024];
  int busy, again, closing;
  /* The outcome of a read, written by the thread, taken by the loop after it. */
  int rc;
  long long load;
  spine_manifest_set set;
  spine_err err;
};

/* A stored manifest that no longer parses: logged (from the thread too: the log is
 * thread-safe), and left out of the routes. */
static void left_out(void *data, int warning, const spine_err *e) {
  (void)data, (void)warning;
  char msg[600];
  spine_log_error("dispatcher", "a manifest in force no longer parses: its children run by name",
                  "error", spine_err_format(e, msg, sizeof msg), NULL);
}

static int read_set(spine_server__router *r) {
  spine_err_clear(&r->err);
  PGconn *c = spine_pgconn_open(r->conninfo, &r->err);
  r->rc = c ? spine_child_router_read(c, &r->set, &r->load, left_out, NULL, &r->err) : SPINE_EDB;
  if (c) PQfinish(c);
  return r->rc;
}

static void read_work(uv_work_t *w) {
  read_set(w->data);
}

static void refresh(spine_server__router *r);

static void read_done(uv_work_t *w, int status) {
  spine_server__router *r = w->data;
  r->busy = 0;
  char msg[600], load[24];
  if (status == 0 && r->rc == 0) {
    spine_child_router_put(r->router, &r->set, r->load);
    snprintf(load, sizeof load, "%lld", spine_child_router_load(r->router));
    spine_log_info("dispatcher", "children routed by the manifests in force", "load", load, NULL);
  } else {
    spine_manifest_set_free(&r->set);
    spine_log_error("dispatcher",
                    "cannot read the manifests in force: children keep the set read before",
                    "error", spine_err_format(&r->err, msg, sizeof msg), NULL);
  }
  if (r->again && !r->closing) {
    r->again = 0;
    refresh(r);
  }
}

static void refresh(spine_server__router *r) {
  if (r->closing) return;
  if (r->busy) {
    r->again = 1; /* heard of a reload during a read: read once more after it */
    return;
  }
  r->busy = 1;
  r->work.data = r;
  if (uv_queue_work(r->loop, &r->work, read_work, read_done)) r->busy = 0;
}

static void on_reload(void *data, const char *channel, const char *payload) {
  (void)channel, (void)payload;
  refresh(data);
}

static void on_back(void *data) {
  refresh(data);
}

int spine_server__router_new(uv_loop_t *loop, const char *conninfo, spine_server__router **out,
                             spine_router_port *port, spine_err *e) {
  spine_server__router *r = calloc(1, sizeof *r);
  if (r) r->router = spine_child_router_new();
  if (!r || !r->router) {
    free(r);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  }
  r->loop = loop;
  snprintf(r->conninfo, sizeof r->conninfo, "%s", conninfo ? conninfo : "");
  *port = spine_child_router_port(r->router);
  *out = r;
  return 0;
}

int spine_server__router_serve(spine_server__router *r, spine_engine *eng, spine_err *e) {
  /* Before the first claim: no child of a claimed workflow is started unrouted. */
  if (read_set(r)) {
    *e = r->err;
    return r->rc;
  }
  spine_child_router_put(r->router, &r->set, r->load);
  spine_engine_on_connection(eng, NULL, on_back, r);
  return spine_engine_listen(eng, SPINE_CHILD_ROUTER_CHANNEL, on_reload, r);
}

void spine_server__router_stop(spine_server__router *r) {
  if (r) r->closing = 1;
}

void spine_server__router_free(spine_server__router *r) {
  if (!r) return;
  spine_manifest_set_free(&r->set);
  spine_child_router_free(r->router);
  free(r);
}
