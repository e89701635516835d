/* Verified webhooks of `spine serve` become signals and new cases: the provider's adapter reads
 * the request (its `webhook` function) and says which workflows or contracts to signal and which
 * processes to start. Signals alone are stored in one transaction through the engine's store;
 * with a start among them, the whole answer is applied in one transaction on a blocking
 * connection in a libuv worker thread (starting routes by the manifests in force, as `spine
 * start` does). The request is then answered 202 with the workflows signalled and started. An
 * adapter that fails answers 400 with its message; nothing is stored unless all of it is. A
 * start without its own idempotency key gets "webhook:<provider>:<sha256 of the body>:<n>", so
 * the provider's redelivery of the same request starts nothing new.
 * Each delivery is stored once: its id (webhook.h) is claimed in spine.webhook_deliveries in the
 * transaction of its signals and starts (INSERT ... ON CONFLICT DO NOTHING), and a delivery
 * already claimed, by this worker or another, stores nothing and is answered 200
 * {"duplicate": true}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "buf.h"
#include "engine.h"
#include "http_server.h"
#include "intake.h"
#include "jsondoc.h"
#include "log.h"
#include "pgconn.h"
#include "providers.h"
#include "server_internal.h"
#include "sha256.h"
#include "sql.h"
#include "store.h"
#include "webhook.h"

/* The connection of the start path: one, used by one worker thread at a time. */
static struct {
  char conninfo[1024];
  uv_mutex_t lock;
  PGconn *c;
  int ready;
} starts;

void spine_server__webhooks_init(const char *conninfo) {
  snprintf(starts.conninfo, sizeof starts.conninfo, "%s", conninfo);
  if (!starts.ready && uv_mutex_init(&starts.lock) == 0) starts.ready = 1;
}

void spine_server__webhooks_free(void) {
  if (!starts.ready) return;
  if (starts.c) PQfinish(starts.c);
  starts.c = NULL;
  uv_mutex_destroy(&starts.lock);
  starts.ready = 0;
}

typedef struct delivery {
  spine_op op;
  uv_work_t work;
  spine_http_server_exchange *x; /* NULL once the client went away */
  char provider[64];
  char id[SPINE_WEBHOOK_ID_MAX + 8];
  const char *keep; /* how long its row is kept: an interval */
  char body_sha[65];
  char *actions; /* the start path: the actions' JSON, then the answer's */
  int status;    /* the start path: the HTTP status to answer (200: a duplicate) */
  spine_err e;
} delivery;

/* A default-scheme delivery can be replayed while its timestamp is within 300 s of the clock:
 * at most 600 s after its first acceptance; the rest is margin. An adapter's id has no window
 * Spine knows of: providers redeliver for hours or days. */
#define KEEP_SIGNATURE "15 minutes"
#define KEEP_ID        "7 days"

static const char DUPLICATE[] = "{\"duplicate\": true}";

static int webhook_secret(void *data, const char *provider, char *out, size_t size) {
  spine_providers *ps = ((spine_server__webhooks *)data)->providers;
  if (!ps || !spine_providers_has(ps, provider)) return -1;
  return spine_providers_secret(ps, provider, "webhook_secret", out, size);
}

static int webhook_verify(void *data, const spine_webhook_request *r, char *id, size_t size) {
  spine_providers *ps = ((spine_server__webhooks *)data)->providers;
  if (!ps || !spine_providers_has(ps, r->provider)) return SPINE_ENOTFOUND;
  spine_provider_webhook w = {r->provider, r->body, r->body_len, r->headers, r->headers_len};
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_providers_webhook_verify(ps, &w, id, size, &e);
  if (rc < 0 && rc != SPINE_ENOTFOUND)
    spine_log_warn("webhook", "refused by the adapter's verify", "provider", r->provider, "error",
                   e.msg, NULL);
  return rc;
}

static int is_duplicate(const char *answer) {
  return !strncmp(answer, "{\"duplicate\"", 12);
}

static void aborted(void *data) {
  ((delivery *)data)->x = NULL;
}

static void stored(spine_op *op) {
  delivery *d = op->data;
  if (d->x) {
    spine_http_server_on_abort(d->x, NULL, NULL);
    PGresult *r = spine_op_result(op, 0);
    if (op->status || !r || PQntuples(r) != 1) {
      spine_log_error("webhook", "cannot store the webhook's signals", "provider", d->provider,
                      "error", spine_op_error(op)->msg, NULL);
      spine_webhook_error(d->x, 503, "unavailable", "the signals could not be stored; try again");
    } else {
      const char *res = PQgetvalue(r, 0, 0);
      int dup = is_duplicate(res);
      spine_log_info("webhook", dup ? "webhook already delivered" : "webhook delivered", "provider",
                     d->provider, "outcome", res, NULL);
      spine_http_server_respond(d->x, dup ? 200 : 202, "application/json", res, strlen(res));
    }
  }
  spine_op_free(op);
  free(d);
}

/* ---- the start path (a worker thread) ---- */

/* clang-format off */
static const char starts_sql[] =
    "SELECT a.value ->> 'start', coalesce(a.value -> 'input', '{}')::text,"
    " coalesce(a.value ->> 'idempotency_key', 'webhook:' || $2 || ':' || $3 || ':' || a.n)"
    " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY a(value, n)"
    " WHERE a.value ? 'start' ORDER BY a.n";
static const char signals_sql[] =
    "SELECT spine.webhook_signals(coalesce((SELECT jsonb_agg(a.value ORDER BY a.n)"
    " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY a(value, n)"
    " WHERE a.value ? 'signal'), '[]'))::text";
/* clang-format on */

static PGconn *start_connection(spine_err *e) {
  if (starts.c && PQstatus(starts.c) == CONNECTION_OK) return starts.c;
  if (starts.c) PQfinish(starts.c);
  return starts.c = spine_pgconn_open(starts.conninfo, e);
}

static int exec(PGconn *c, const char *sql, spine_err *e) {
  PGresult *r = spine_pgconn_query(c, sql, 0, NULL, e);
  if (!r) return SPINE_EDB;
  PQclear(r);
  return 0;
}

/* Signals and starts in one transaction with the delivery's claim; d->actions becomes the
 * answer's JSON. Sets *duplicate (and stores nothing) when the delivery was claimed before. */
static int apply(delivery *d, PGconn *c, spine_buf *answer, int *duplicate) {
  spine_err *e = &d->e;
  const char *p[3] = {d->actions, d->provider, d->body_sha};
  const char *claim[3] = {d->provider, d->id, d->keep};
  int rc = exec(c, "BEGIN", e);
  PGresult *fresh =
      rc ? NULL
         : spine_pgconn_query(c, "SELECT spine.webhook_claim($1, $2, $3::interval)", 3, claim, e);
  if (!rc && !fresh) rc = SPINE_EDB;
  *duplicate = !rc && strcmp(PQgetvalue(fresh, 0, 0), "t");
  if (fresh) PQclear(fresh);
  if (rc || *duplicate) {
    PQclear(PQexec(c, "ROLLBACK"));
    return rc;
  }
  PGresult *list = spine_pgconn_query(c, starts_sql, 3, p, e);
  if (!rc && !list) rc = SPINE_EDB;
  spine_buf_puts(answer, "\"started\":[");
  for (int i = 0; !rc && i < PQntuples(list); i++) {
    spine_intake_case req = {
        PQgetvalue(list, i, 0), PQgetvalue(list, i, 1), NULL, PQgetvalue(list, i, 2), NULL, NULL};
    char id[40];
    const char *code;
    rc = spine_intake_start_case(c, &req, id, &code, e);
    if (rc) {
      char msg[sizeof e->msg];
      snprintf(msg, sizeof msg, "%s", e->msg);
      spine_err_set(e, rc, e->where, e->field, "start %s: %s", req.process, msg);
      break;
    }
    if (i) spine_buf_putc(answer, ',');
    spine_log_json_string(answer, id, strlen(id));
  }
  if (list) PQclear(list);
  PGresult *sig = rc ? NULL : spine_pgconn_query(c, signals_sql, 1, p, e);
  if (!rc && !sig) rc = SPINE_EDB;
  if (!rc) rc = exec(c, "COMMIT", e);
  if (rc) {
    PQclear(PQexec(c, "ROLLBACK"));
  } else {
    /* {"signalled": [...], "unmatched": n} + "started" */
    const char *json = PQgetvalue(sig, 0, 0);
    size_t n = strlen(json);
    spine_buf whole = SPINE_BUF_INIT;
    spine_buf_append(&whole, json, n - 1);
    spine_buf_printf(&whole, ",%s]}", spine_buf_str(answer));
    spine_buf_reset(answer);
    spine_buf_puts(answer, spine_buf_str(&whole));
    spine_buf_free(&whole);
  }
  if (sig) PQclear(sig);
  return rc;
}

static void start_work(uv_work_t *w) {
  delivery *d = w->data;
  spine_buf answer = SPINE_BUF_INIT;
  uv_mutex_lock(&starts.lock);
  PGconn *c = start_connection(&d->e);
  int duplicate = 0;
  int rc = c ? apply(d, c, &answer, &duplicate) : SPINE_EDB;
  uv_mutex_unlock(&starts.lock);
  free(d->actions);
  d->actions = NULL;
  if (!rc && duplicate) {
    d->status = 200;
    d->actions = strdup(DUPLICATE);
  } else if (!rc) {
    d->status = 202;
    d->actions = strdup(spine_buf_str(&answer));
  } else {
    /* a start the manifests or the playbook refuse is the adapter's request being wrong */
    d->status = rc == SPINE_EDB ? 503 : 400;
  }
  spine_buf_free(&answer);
}

static void start_done(uv_work_t *w, int status) {
  delivery *d = w->data;
  (void)status;
  if (d->x) {
    spine_http_server_on_abort(d->x, NULL, NULL);
    if ((d->status == 202 || d->status == 200) && d->actions) {
      spine_log_info("webhook",
                     d->status == 200 ? "webhook already delivered" : "webhook delivered",
                     "provider", d->provider, "outcome", d->actions, NULL);
      spine_http_server_respond(d->x, d->status, "application/json", d->actions,
                                strlen(d->actions));
    } else if (d->status == 400) {
      spine_log_warn("webhook", "a start was refused", "provider", d->provider, "error", d->e.msg,
                     NULL);
      spine_webhook_error(d->x, 400, "invalid_argument", d->e.msg);
    } else {
      spine_log_error("webhook", "cannot store the webhook's actions", "provider", d->provider,
                      "error", d->e.msg, NULL);
      spine_webhook_error(d->x, 503, "unavailable", "the actions could not be stored; try again");
    }
  }
  free(d->actions);
  free(d);
}

/* Whether an action of the (validated) array starts a case. */
static int has_start(const spine_buf *actions) {
  spine_jsondoc *doc = NULL;
  int line, found = 0;
  if (spine_jsondoc_parse(spine_buf_str(actions), actions->len, &doc, &line, NULL)) return 0;
  for (const spine_jsondoc *a = doc->child; a && !found; a = a->next)
    found = spine_jsondoc_get(a, "start") != NULL;
  spine_jsondoc_free(doc);
  return found;
}

static void webhook_deliver(void *data, const spine_webhook_request *r,
                            spine_http_server_exchange *x) {
  spine_engine *eng = ((spine_server__webhooks *)data)->eng;
  spine_providers *ps = ((spine_server__webhooks *)data)->providers;
  const char *provider = r->provider, *body = r->body;
  size_t len = r->body_len;
  spine_buf actions = SPINE_BUF_INIT;
  spine_err e;
  spine_err_clear(&e);
  spine_provider_webhook w = {provider, body, len, r->headers, r->headers_len};
  int rc = ps ? spine_providers_webhook(ps, &w, &actions, &e)
              : spine_err_set(&e, SPINE_ENOTFOUND, NULL, NULL, "no provider adapters loaded");
  if (rc) {
    spine_buf_free(&actions);
    spine_log_warn("webhook", "refused by the adapter", "provider", provider, "error", e.msg, NULL);
    if (rc == SPINE_ENOTFOUND)
      spine_webhook_error(x, 404, "not_found", e.msg);
    else
      spine_webhook_error(x, 400, "invalid_argument", e.msg);
    return;
  }
  delivery *d = calloc(1, sizeof *d);
  if (!d) {
    spine_buf_free(&actions);
    spine_webhook_error(x, 503, "unavailable", "out of memory; try again");
    return;
  }
  snprintf(d->provider, sizeof d->provider, "%s", provider);
  snprintf(d->id, sizeof d->id, "%s", r->delivery_id);
  d->keep = !strncmp(r->delivery_id, "sig:", 4) ? KEEP_SIGNATURE : KEEP_ID;
  d->x = x;
  if (has_start(&actions)) {
    if (!starts.ready) {
      spine_buf_free(&actions);
      free(d);
      spine_webhook_error(x, 503, "unavailable", "this server cannot start cases from webhooks");
      return;
    }
    spine_sha256_hex(body, len, d->body_sha);
    d->actions = actions.data; /* taken from the buffer */
    d->work.data = d;
    spine_http_server_on_abort(x, aborted, d);
    if (uv_queue_work(spine_engine_loop(eng), &d->work, start_work, start_done)) {
      spine_http_server_on_abort(x, NULL, NULL);
      free(d->actions);
      free(d);
      spine_webhook_error(x, 503, "unavailable", "cannot queue the start; try again");
    }
    return;
  }
  spine_op_init(&d->op);
  spine_op_stmt(&d->op, SPINE_SQL_WEBHOOK_DELIVER, 1);
  spine_op_param(&d->op, d->provider);
  spine_op_param(&d->op, d->id);
  spine_op_param(&d->op, d->keep);
  spine_op_param(&d->op, spine_buf_str(&actions));
  spine_buf_free(&actions);
  d->op.cb = stored;
  d->op.data = d;
  spine_http_server_on_abort(x, aborted, d);
  spine_store_submit(spine_engine_store(eng), &d->op);
}

const spine_webhook_ops spine_server__webhook_ops = {webhook_secret, webhook_verify,
                                                     webhook_deliver};
