/* Verified webhooks of `spine serve` become signals: the provider's adapter reads the request
 * (its `webhook` function) and says which workflows or contracts to signal; the signals are
 * stored in one transaction through the engine's store, then the request is answered 202 with
 * the workflows signalled. An adapter that fails answers 400 with its message; nothing is
 * stored unless all of it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "http_server.h"
#include "log.h"
#include "providers.h"
#include "scheduler.h"
#include "sql.h"
#include "store.h"
#include "webhook.h"

typedef struct delivery {
  spine_op op;
  spine_http_exchange *x; /* NULL once the client went away */
  char provider[64];
} delivery;

int spine_cli__webhook_secret(void *data, const char *provider, char *out, size_t size) {
  spine_providers *ps = spine_engine_providers(data);
  if (!ps || !spine_providers_has(ps, provider)) return -1;
  return spine_providers_secret(ps, provider, "webhook_secret", out, size);
}

static void aborted(void *data) {
  ((delivery *)data)->x = NULL;
}

static void stored(spine_op *op) {
  delivery *d = op->data;
  if (d->x) {
    spine_http_on_abort(d->x, NULL, NULL);
    PGresult *r = spine_op_result(op, 0);
    if (op->status || !r || PQntuples(r) != 1) {
      spine_log_error("webhook", "cannot store the webhook's signals", "provider", d->provider,
                      "error", spine_op_error(op)->msg, NULL);
      spine_webhook_error(d->x, 503, "unavailable", "the signals could not be stored; try again");
    } else {
      const char *res = PQgetvalue(r, 0, 0);
      spine_log_info("webhook", "webhook delivered", "provider", d->provider, "outcome", res, NULL);
      spine_http_respond(d->x, 202, "application/json", res, strlen(res));
    }
  }
  spine_op_free(op);
  free(d);
}

void spine_cli__webhook_deliver(void *data, const char *provider, const char *body, size_t len,
                                spine_http_exchange *x) {
  spine_engine *eng = data;
  spine_providers *ps = spine_engine_providers(eng);
  spine_buf actions = SPINE_BUF_INIT;
  spine_err e;
  spine_err_clear(&e);
  spine_provider_webhook w = {provider, body, len, NULL, 0};
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
  if (strstr(spine_buf_str(&actions), "\"start\":")) {
    spine_buf_free(&actions);
    spine_webhook_error(x, 501, "not_implemented",
                        "the adapter asked to start a case; webhooks can only signal for now");
    return;
  }
  delivery *d = calloc(1, sizeof *d);
  if (!d) {
    spine_buf_free(&actions);
    spine_webhook_error(x, 503, "unavailable", "out of memory; try again");
    return;
  }
  snprintf(d->provider, sizeof d->provider, "%s", provider);
  d->x = x;
  spine_op_init(&d->op);
  spine_op_stmt(&d->op, SPINE_SQL_WEBHOOK_SIGNALS, 1);
  spine_op_param(&d->op, spine_buf_str(&actions));
  spine_buf_free(&actions);
  d->op.cb = stored;
  d->op.data = d;
  spine_http_on_abort(x, aborted, d);
  spine_store_submit(spine_engine_store(eng), &d->op);
}
