/* `spine serve`'s manifests: loaded at start and again on SIGHUP, in a libuv worker thread
 * (file reads, playbook compiles and a short blocking connection stay off the loop). A refused
 * reload is logged with its reasons and leaves the set in force as it was. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "buf.h"
#include "intake.h"
#include "log.h"
#include "pgconn.h"
#include "server_internal.h"

typedef struct reloader {
  uv_signal_t sighup;
  uv_work_t work;
  char conninfo[1024];
  char by[64];
  int busy, again, closing;
  /* The outcome, written by the thread, read by the loop after it. */
  int rc, loaded;
  spine_err err;
  spine_buf problems; /* one "file:line: field: message" a line */
} reloader;

static reloader R;

static void collect(void *data, int warning, const spine_err *e) {
  reloader *r = data;
  char msg[600];
  spine_buf_printf(&r->problems, "%s%s\n", warning ? "warning: " : "",
                   spine_err_format(e, msg, sizeof msg));
}

static void reload_work(uv_work_t *w) {
  reloader *r = w->data;
  spine_err_clear(&r->err);
  spine_buf_reset(&r->problems);
  PGconn *c = spine_pgconn_open(r->conninfo, &r->err);
  r->rc =
      c ? spine_intake_manifests_reload(c, r->by, 0, collect, r, &r->loaded, &r->err) : SPINE_EDB;
  if (c) PQfinish(c);
}

static void start_reload(void);

static void reload_done(uv_work_t *w, int status) {
  reloader *r = w->data;
  r->busy = 0;
  char msg[600], n[16];
  if (status == 0 && r->rc == 0) {
    snprintf(n, sizeof n, "%d", r->loaded);
    spine_log_info("dispatcher", "manifests loaded", "manifests", n, "dir",
                   spine_intake_manifests_dir(), NULL);
  } else {
    spine_log_error("dispatcher", "manifests refused: the manifests in force are unchanged",
                    "reason", spine_err_format(&r->err, msg, sizeof msg), "problems",
                    spine_buf_str(&r->problems), NULL);
  }
  if (r->again && !r->closing) {
    r->again = 0;
    start_reload();
  }
}

static void start_reload(void) {
  if (R.busy) {
    R.again = 1; /* a SIGHUP during a reload: reload once more after it */
    return;
  }
  R.busy = 1;
  R.work.data = &R;
  uv_queue_work(R.sighup.loop, &R.work, reload_work, reload_done);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)h, (void)signum;
  spine_log_info("dispatcher", "SIGHUP: reloading manifests", NULL);
  start_reload();
}

int spine_server__manifests_start(uv_loop_t *loop, const char *conninfo, int64_t worker) {
  memset(&R, 0, sizeof R);
  snprintf(R.conninfo, sizeof R.conninfo, "%s", conninfo);
  snprintf(R.by, sizeof R.by, "spine serve (worker %lld)", (long long)worker);
  uv_signal_init(loop, &R.sighup);
  uv_signal_start(&R.sighup, on_sighup, SIGHUP);
  start_reload();
  return 0;
}

void spine_server__manifests_stop(void) {
  R.closing = 1;
  if (!uv_is_closing((uv_handle_t *)&R.sighup)) uv_close((uv_handle_t *)&R.sighup, NULL);
}

void spine_server__manifests_free(void) {
  spine_buf_free(&R.problems);
}
