/* The clock of `spine serve` over HTTP: GET /v1/clock says the time and whether it is manual;
 * POST /v1/clock/advance moves a manual clock ({"by": "14d"}, {"to": "2026-12-01T09:00:00Z"},
 * or {} to wait until the engine is idle) and answers once the engine is idle at the new time.
 * Only for clients on loopback, and never on a real clock. It holds nothing between requests
 * but the one advance under way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "duration.h"
#include "engine.h"
#include "http_server.h"
#include "jsondoc.h"
#include "server_internal.h"
#include "webhook.h"

typedef struct advance {
  spine_http_server_exchange *x; /* NULL once the client went away */
} advance;

static void now_json(spine_buf *b, int64_t ms, int manual) {
  char iso[32];
  spine_duration_format_time(ms, iso);
  spine_buf_printf(b, "{\"clock\":\"%s\",\"now_ms\":%lld,\"now\":\"%s\"",
                   manual ? "manual" : "real", (long long)ms, iso);
}

static void get_clock(void *data, spine_http_server_exchange *x) {
  int manual;
  int64_t now = spine_engine_now(data, &manual);
  spine_buf b = SPINE_BUF_INIT;
  now_json(&b, now, manual);
  spine_buf_puts(&b, "}\n");
  spine_http_server_respond(x, 200, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

static void aborted(void *data) {
  ((advance *)data)->x = NULL;
}

static void advanced(void *data, int status, int64_t now_ms, int fired) {
  advance *a = data;
  if (a->x) {
    spine_http_server_on_abort(a->x, NULL, NULL);
    if (status) {
      spine_webhook_error(a->x, 503, "unavailable", "the engine is stopping");
    } else {
      spine_buf b = SPINE_BUF_INIT;
      now_json(&b, now_ms, 1);
      spine_buf_printf(&b, ",\"fired\":%d}\n", fired);
      spine_http_server_respond(a->x, 200, "application/json", spine_buf_str(&b), b.len);
      spine_buf_free(&b);
    }
  }
  free(a);
}

/* A duration ("14d", or seconds as a number) or a time (ISO 8601, or seconds since the
 * epoch) from member `v`, in ms. */
static int read_ms(const spine_jsondoc *v, int time, int64_t *ms, spine_err *e) {
  if (v->type == SPINE_JSONDOC_NUMBER) {
    if (!(v->num >= 0 && v->num < 1e13))
      return spine_err_set(e, SPINE_EINVAL, NULL, NULL, "out of range");
    *ms = (int64_t)(v->num * 1000);
    return 0;
  }
  if (v->type != SPINE_JSONDOC_STRING)
    return spine_err_set(e, SPINE_EINVAL, NULL, NULL, "a string or a number expected");
  return time ? spine_duration_parse_time(v->str, ms, e) : spine_duration_parse(v->str, ms, e);
}

static void post_advance(void *data, spine_http_server_exchange *x) {
  spine_engine *eng = data;
  if (!spine_http_server_peer_loopback(x)) {
    spine_webhook_error(x, 403, "forbidden", "the clock is moved from loopback only");
    return;
  }
  int manual;
  int64_t now = spine_engine_now(eng, &manual);
  if (!manual) {
    spine_webhook_error(x, 409, "conflict",
                        "the clock is real: start spine serve with --clock manual to move it");
    return;
  }
  size_t len;
  const char *body = spine_http_server_body(x, &len);
  spine_jsondoc *doc = NULL;
  int line;
  spine_err e;
  spine_err_clear(&e);
  if (len == 0) { /* no body: settle */
    body = "{}";
    len = 2;
  }
  if (spine_jsondoc_parse(body, len, &doc, &line, &e) || doc->type != SPINE_JSONDOC_OBJECT) {
    spine_jsondoc_free(doc);
    spine_webhook_error(x, 400, "invalid_argument",
                        "a JSON object expected: {\"by\": \"14d\"} or {\"to\": TIME} or {}");
    return;
  }
  const spine_jsondoc *by = spine_jsondoc_get(doc, "by"), *to = spine_jsondoc_get(doc, "to");
  int64_t target = now, ms = 0;
  char msg[320];
  int rc = 0;
  if (by && to) {
    rc = spine_err_set(&e, SPINE_EINVAL, NULL, NULL, "give by or to, not both");
    snprintf(msg, sizeof msg, "%s", e.msg);
  } else if (by || to) {
    rc = read_ms(by ? by : to, to != NULL, &ms, &e);
    if (rc) snprintf(msg, sizeof msg, "%s: %s", by ? "by" : "to", e.msg);
    target = by ? now + ms : ms;
  }
  spine_jsondoc_free(doc);
  if (!rc && target < now) {
    rc = SPINE_EINVAL;
    char iso[32];
    spine_duration_format_time(now, iso);
    snprintf(msg, sizeof msg, "to: the clock does not go back (it is %s)", iso);
  }
  if (rc) {
    spine_webhook_error(x, 400, "invalid_argument", msg);
    return;
  }
  advance *a = calloc(1, sizeof *a);
  if (!a) {
    spine_webhook_error(x, 503, "unavailable", "out of memory; try again");
    return;
  }
  a->x = x;
  spine_http_server_on_abort(x, aborted, a);
  rc = spine_engine_advance(eng, target, advanced, a);
  if (rc) {
    spine_http_server_on_abort(x, NULL, NULL);
    free(a);
    spine_webhook_error(x, 409, "conflict", "another advance of the clock is under way");
  }
}

int spine_server__clock_mount(spine_http_server *srv, spine_engine *eng) {
  int rc = spine_http_server_route(srv, "GET", "/v1/clock", get_clock, eng);
  if (!rc) rc = spine_http_server_route(srv, "POST", "/v1/clock/advance", post_advance, eng);
  return rc;
}
