/* The HTTP API of `spine serve` under /v1 (docs/api.md, openapi.json): routing by method and
 * path pattern, bearer tokens and scopes, JSON bodies within limits, errors as the CLI's
 * ({"error": {kind, code, message, field?}}), and one audit row for every request that acts.
 * The work of a request (the token, the action, the audit row) runs in a libuv worker thread on a
 * blocking connection of this file's pool, as webhooks that start cases do: the actions are the
 * CLI's (api_ops.h, api_tokens.h, intake.h), blocking libpq, and some (the intake, a bulk
 * action) take several statements; the engine's store is the group-commit pipeline of steps and
 * must not queue an operator's list or explain among them. The loop only matches the route,
 * parses the body and answers: it never waits for the database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "api_experiments.h"
#include "api_intents.h"
#include "api_ops.h"
#include "api_outbox.h"
#include "api_route.h"
#include "api_tasks.h"
#include "api_tokens.h"
#include "buf.h"
#include "http_server.h"
#include "intake.h"
#include "jsondoc.h"
#include "log.h"
#include "pgconn.h"
#include "providers.h"
#include "server_internal.h"
#include "uuid.h"

#define MAX_BODY   (256 * 1024) /* bytes of a request body the API reads (over: 413) */
#define POOL_SIZE  8            /* idle connections kept (a thread opens one when none is free) */
#define QUERY_MAX  16           /* query parameters read */
#define VALUE_MAX  256          /* bytes of one decoded query value */
#define BEARER_MAX 4096         /* bytes of a bearer (a JWT may be long) */

/* Connections for the worker threads: a free list under a lock. */
static struct {
  char conninfo[1024];
  uv_mutex_t lock;
  PGconn *free[POOL_SIZE];
  int nfree, ready;
  spine_server_bearer_fn bearer;
  void *bearer_data;
  spine_providers *providers; /* the loop's: read only on the loop (providers_answer) */
} pool;

void spine_server__api_init(const char *conninfo) {
  snprintf(pool.conninfo, sizeof pool.conninfo, "%s", conninfo);
  if (!pool.ready && uv_mutex_init(&pool.lock) == 0) pool.ready = 1;
}

void spine_server__api_set_bearer(spine_server_bearer_fn fn, void *data) {
  pool.bearer = fn;
  pool.bearer_data = data;
}

void spine_server__api_free(void) {
  if (!pool.ready) return;
  for (int i = 0; i < pool.nfree; i++)
    PQfinish(pool.free[i]);
  pool.nfree = 0;
  uv_mutex_destroy(&pool.lock);
  pool.ready = 0;
}

static PGconn *acquire(spine_err *e) {
  PGconn *c = NULL;
  uv_mutex_lock(&pool.lock);
  if (pool.nfree) c = pool.free[--pool.nfree];
  uv_mutex_unlock(&pool.lock);
  if (c && PQstatus(c) == CONNECTION_OK) return c;
  if (c) PQfinish(c);
  return spine_pgconn_open(pool.conninfo, e);
}

static void release(PGconn *c) {
  if (!c) return;
  if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
    uv_mutex_lock(&pool.lock);
    if (pool.nfree < POOL_SIZE) {
      pool.free[pool.nfree++] = c;
      c = NULL;
    }
    uv_mutex_unlock(&pool.lock);
  }
  if (c) PQfinish(c);
}

typedef struct request request;
typedef void (*route_fn)(request *r, PGconn *c);

typedef struct route {
  const char *method, *pattern;
  const char *scope; /* NULL: open (no token); "": any caller with a valid bearer */
  route_fn fn;       /* runs in a worker thread */
} route;

/* One request on its way: read on the loop, worked in a thread, answered on the loop. */
struct request {
  uv_work_t work;
  spine_http_server_exchange *x; /* NULL once the server closed it */
  const route *rt;
  char caps[SPINE_API_ROUTE_CAPS][SPINE_API_ROUTE_CAP_MAX + 1];
  char qkey[QUERY_MAX][64], qval[QUERY_MAX][VALUE_MAX];
  int nq;
  char *body; /* the raw body, NUL-terminated ("{}" when empty); doc its parse */
  spine_jsondoc *doc;
  char bearer[BEARER_MAX + 1];
  size_t bearer_len;
  char key[256]; /* Idempotency-Key */
  char source[64];
  char target[SPINE_API_ROUTE_CAP_MAX + 1];
  /* the answer */
  int status;
  spine_buf out; /* the body of a success */
  spine_err e;   /* else: what went wrong */
  const char *code;
  const char *outcome;        /* the audit row's word */
  void (*answer)(request *r); /* set by fn: on success, writes the body on the loop (in done) */
  spine_api_principal who;
};

/* ---- answers ---- */

static int status_of(int code) {
  switch (code) {
    case SPINE_EINVAL:
    case SPINE_ESYNTAX:
      return 400;
    case SPINE_ENOTFOUND:
      return 404;
    case SPINE_ETRANSITION:
    case SPINE_ECONFLICT:
      return 409;
    case SPINE_ELIMIT:
      return 413;
    case SPINE_EREJECTED:
      return 422;
    default:
      return 500;
  }
}

/* The request fails: status and the error of `r->e` (code: its kind unless given). */
static void fail(request *r, int status, const char *code) {
  r->status = status;
  r->code = code;
  if (!r->e.code) r->e.code = SPINE_EINVAL;
}

static void fail_err(request *r, const char *code) {
  fail(r, r->e.code == SPINE_EDB && !strcmp(r->e.where, "database") ? 500 : status_of(r->e.code),
       code);
}

static void error_body(spine_buf *b, const char *kind, const char *code, const spine_err *e) {
  spine_buf_puts(b, "{\"error\":{\"kind\":");
  spine_log_json_string(b, kind, strlen(kind));
  spine_buf_puts(b, ",\"code\":");
  spine_log_json_string(b, code, strlen(code));
  spine_buf_puts(b, ",\"message\":");
  spine_log_json_string(b, e->msg, strlen(e->msg));
  if (e->field[0]) {
    spine_buf_puts(b, ",\"field\":");
    spine_log_json_string(b, e->field, strlen(e->field));
  }
  spine_buf_puts(b, "}}\n");
}

static const char *kind_of(int status, int code) {
  switch (status) {
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 413:
      return "limit";
    case 503:
      return "unavailable";
    default:
      return spine_err_kind(code);
  }
}

/* Answers an error now (on the loop). */
static void refuse(spine_http_server_exchange *x, int status, const char *field, const char *msg) {
  spine_err e;
  spine_err_set(&e, SPINE_EINVAL, NULL, field, "%s", msg);
  spine_buf b = SPINE_BUF_INIT;
  const char *kind = kind_of(status, e.code);
  error_body(&b, kind, kind, &e);
  spine_http_server_respond(x, status, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

/* ---- the body ---- */

/* The member `key` of the body as a string into *out: 0, or fails the request naming it. */
static int body_string(request *r, const char *key, int required, const char **out) {
  const spine_jsondoc *v = spine_jsondoc_get(r->doc, key);
  *out = NULL;
  if (!v && !required) return 0;
  if (!v || v->type != SPINE_JSONDOC_STRING || !*v->str) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, key, "%s must be a non-empty string", key);
    fail(r, 400, NULL);
    return -1;
  }
  *out = v->str;
  return 0;
}

/* The member `key` of the body as JSON text (SQL does the serialising: jsondoc keeps no text),
 * or `dflt` when absent. Caller frees. NULL when the query failed (the request is failed). */
static char *body_json(request *r, PGconn *c, const char *key, const char *dflt) {
  const char *p[3] = {r->body, key, dflt};
  PGresult *q =
      spine_pgconn_query(c, "SELECT coalesce($1::jsonb -> $2, $3::jsonb)::text", 3, p, &r->e);
  if (!q) {
    fail_err(r, NULL);
    return NULL;
  }
  char *s = strdup(PQgetvalue(q, 0, 0));
  PQclear(q);
  if (!s) spine_err_set(&r->e, SPINE_ENOMEM, NULL, NULL, "out of memory"), fail(r, 503, NULL);
  return s;
}

/* ---- the routes (in a worker thread) ---- */

/* One row of `sql` with the route's first capture as $1: its JSON, or 404. */
static void show_row(request *r, PGconn *c, const char *sql, const char *what) {
  const char *p[1] = {r->caps[0]};
  PGresult *q = spine_pgconn_query(c, sql, 1, p, &r->e);
  if (!q) return fail_err(r, NULL);
  if (PQntuples(q) == 0) {
    spine_err_set(&r->e, SPINE_ENOTFOUND, NULL, "id", "no %s %s", what, r->caps[0]);
    fail(r, 404, "not_found");
  } else {
    spine_buf_puts(&r->out, PQgetvalue(q, 0, 0));
  }
  PQclear(q);
}

static void workflow_show(request *r, PGconn *c) {
  show_row(r, c, spine_api_workflow_sql, "workflow");
}

static void case_show(request *r, PGconn *c) {
  show_row(r, c, spine_api_workflow_sql, "case");
}

static void workflow_explain(request *r, PGconn *c) {
  show_row(r, c, spine_api_explain_sql, "workflow");
}

/* A process name from the API: never a path (the CLI's `spine start` may name a file). */
static int is_name(const char *s) {
  for (const char *p = s; *p; p++)
    if (!(*p == '_' || *p == '-' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9')))
      return 0;
  return *s && strlen(s) <= 128;
}

static void case_start(request *r, PGconn *c) {
  const char *process, *subject;
  if (body_string(r, "process", 1, &process) || body_string(r, "subject", 0, &subject)) return;
  if (!is_name(process)) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "process",
                  "process must be a process name (letters, digits, _ and -)");
    return fail(r, 400, NULL);
  }
  snprintf(r->target, sizeof r->target, "%.200s", process);
  const spine_jsondoc *in = spine_jsondoc_get(r->doc, "input");
  if (in && in->type != SPINE_JSONDOC_OBJECT) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "input", "input must be an object");
    return fail(r, 400, NULL);
  }
  char *input = body_json(r, c, "input", "{}");
  if (!input) return;
  int existing = 0;
  /* A key is the caller's: another subject's same key starts its own case. */
  char key[sizeof r->key + sizeof r->who.subject + 8];
  snprintf(key, sizeof key, "api:%s:%s", r->who.subject, r->key);
  spine_intake_case req = {process, input, subject, r->key[0] ? key : NULL, NULL, &existing};
  char id[40];
  const char *code = NULL;
  if (spine_intake_start_case(c, &req, id, &code, &r->e)) {
    free(input);
    /* a process with neither a manifest nor a playbook is the client's mistake */
    if (code && !strcmp(code, "not_found")) {
      snprintf(r->e.field, sizeof r->e.field, "process");
      return fail(r, 404, code);
    }
    return fail_err(r, code);
  }
  free(input);
  snprintf(r->caps[0], sizeof r->caps[0], "%s", id);
  snprintf(r->target, sizeof r->target, "%s", id);
  show_row(r, c, spine_api_workflow_sql, "case");
  if (!r->status) r->status = existing ? 200 : 201;
}

/* The filter of GET /v1/workflows and /v1/workflows/counts from the query (`page`: limit and
 * cursor too): 0, or fails the request naming the parameter. */
static int query_filter(request *r, spine_api_filter *f, int page) {
  for (int i = 0; i < r->nq; i++) {
    const char *k = r->qkey[i], *v = r->qval[i];
    int rc = 0;
    if (page && !strcmp(k, "limit")) {
      char *end;
      long n = strtol(v, &end, 10);
      if (*end || end == v || n < 1 || n > 1000)
        rc = spine_err_set(&r->e, SPINE_EINVAL, NULL, "limit", "limit is a number from 1 to 1000");
      f->limit = (int)n;
    } else if (page && !strcmp(k, "cursor")) {
      f->cursor = v;
    } else {
      rc = spine_api_filter_set(f, k, v, &r->e);
    }
    if (rc) {
      fail(r, 400, NULL);
      return -1;
    }
  }
  return 0;
}

static void workflow_list(request *r, PGconn *c) {
  spine_api_filter f = {0};
  if (query_filter(r, &f, 1)) return;
  if (spine_api_list(c, &f, "items", &r->out, &r->e)) fail_err(r, NULL);
}

static void workflow_counts(request *r, PGconn *c) {
  spine_api_filter f = {0};
  if (query_filter(r, &f, 0)) return;
  if (spine_api_counts(c, &f, "items", &r->out, &r->e)) fail_err(r, NULL);
}

/* GET /v1/whoami: who the bearer is, for the console to offer only what it may do. */
static void whoami(request *r, PGconn *c) {
  (void)c;
  spine_buf_puts(&r->out, "{\"subject\":");
  spine_log_json_string(&r->out, r->who.subject, strlen(r->who.subject));
  spine_buf_puts(&r->out, ",\"scopes\":[");
  const char *p = r->who.scopes;
  for (int n = 0; *p;) {
    size_t len = strcspn(p, ",");
    while (len && *p == ' ')
      p++, len--;
    size_t l = len;
    while (l && p[l - 1] == ' ')
      l--;
    if (l) {
      if (n++) spine_buf_putc(&r->out, ',');
      spine_log_json_string(&r->out, p, l);
    }
    p += len;
    if (*p == ',') p++;
  }
  spine_buf_puts(&r->out, "],\"token_id\":");
  if (r->who.token_id[0])
    spine_log_json_string(&r->out, r->who.token_id, strlen(r->who.token_id));
  else
    spine_buf_puts(&r->out, "null");
  spine_buf_putc(&r->out, '}');
}

static void incidents_list(request *r, PGconn *c) {
  const char *all = "false";
  for (int i = 0; i < r->nq; i++)
    if (!strcmp(r->qkey[i], "all")) all = strcmp(r->qval[i], "false") ? "true" : "false";
  const char *p[1] = {all};
  PGresult *q = spine_pgconn_query(c, spine_api_incidents_sql, 1, p, &r->e);
  if (!q) return fail_err(r, NULL);
  spine_buf_printf(&r->out, "{\"items\":%s,\"next_cursor\":null}", PQgetvalue(q, 0, 0));
  PQclear(q);
}

static void act(request *r, PGconn *c, spine_api_action a) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  if (spine_api_act(c, a, r->caps[0], r->who.subject, &r->out, &r->e)) fail_err(r, NULL);
}

static void workflow_cancel(request *r, PGconn *c) {
  act(r, c, SPINE_API_CANCEL);
}

static void workflow_retry(request *r, PGconn *c) {
  act(r, c, SPINE_API_RETRY);
}

static void workflow_skip(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  char *result = body_json(r, c, "result", "null");
  if (!result) return;
  if (spine_api_skip(c, r->caps[0], result, r->who.subject, &r->out, &r->e)) fail_err(r, NULL);
  free(result);
}

static void workflow_signal(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  const char *name;
  if (body_string(r, "name", 1, &name)) return;
  char *data = body_json(r, c, "data", "{}");
  if (!data) return;
  const char *code = NULL;
  if (spine_api_signal(c, r->caps[0], name, data, &r->out, &code, &r->e)) fail_err(r, code);
  free(data);
  if (!r->status) r->status = 202;
}

/* POST /v1/workflows/cancel|retry {"filter": {...}, "dry_run": true, "limit": N} */
static void bulk(request *r, PGconn *c, spine_api_action a) {
  spine_api_filter f = {0};
  const spine_jsondoc *filter = spine_jsondoc_get(r->doc, "filter");
  const spine_jsondoc *dry = spine_jsondoc_get(r->doc, "dry_run");
  const spine_jsondoc *limit = spine_jsondoc_get(r->doc, "limit");
  char field[64];
  if (!filter || filter->type != SPINE_JSONDOC_OBJECT) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "filter",
                  "filter must be an object of conditions ({\"status\": \"stuck\"})");
    return fail(r, 400, NULL);
  }
  if (dry && dry->type != SPINE_JSONDOC_BOOL) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "dry_run", "dry_run must be true or false");
    return fail(r, 400, NULL);
  }
  if (limit && (limit->type != SPINE_JSONDOC_NUMBER || limit->num < 1 || limit->num > 10000 ||
                limit->num != (double)(int)limit->num)) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "limit", "limit is a whole number from 1 to 10000");
    return fail(r, 400, NULL);
  }
  f.limit = limit ? (int)limit->num : 1000;
  for (const spine_jsondoc *m = filter->child; m; m = m->next) {
    snprintf(field, sizeof field, "filter.%.56s", m->key);
    if (m->type != SPINE_JSONDOC_STRING) {
      spine_err_set(&r->e, SPINE_EINVAL, NULL, field, "%s must be a string", field);
      return fail(r, 400, NULL);
    }
    if (spine_api_filter_set(&f, m->key, m->str, &r->e)) {
      memcpy(r->e.field, field, sizeof field);
      return fail(r, 400, NULL);
    }
  }
  int dry_run = !dry || dry->boolean;
  PGresult *q = NULL;
  if (spine_api_bulk(c, a, &f, !dry_run, r->who.subject, &q, &r->e)) {
    if (!strcmp(r->e.field, "filter")) return fail(r, 400, NULL);
    return fail_err(r, NULL);
  }
  spine_api_bulk_json(q, dry_run, &r->out);
  snprintf(r->target, sizeof r->target, "%d workflow%s", PQntuples(q),
           PQntuples(q) == 1 ? "" : "s");
  if (dry_run) r->outcome = "dry_run";
  PQclear(q);
}

static void bulk_cancel(request *r, PGconn *c) {
  bulk(r, c, SPINE_API_CANCEL);
}

static void bulk_retry(request *r, PGconn *c) {
  bulk(r, c, SPINE_API_RETRY);
}

/* GET /v1/providers: the breakers, rate limits and calls as this worker's router knows them.
 * The router's state is the loop's, changed by calls as they end, without a lock; so the
 * thread only checks the bearer and its scope (which needs the database), and the answer is
 * written on the loop, in done(), from the state as it is then (no snapshot to publish and
 * keep fresh, no lock on the router's hot path). */
static void providers_answer(request *r) {
  spine_buf_puts(&r->out, "{\"items\":");
  spine_providers_status_json(pool.providers, &r->out);
  spine_buf_puts(&r->out, ",\"next_cursor\":null}");
}

static void providers_list(request *r, PGconn *c) {
  (void)c;
  r->answer = providers_answer;
}

/* ---- tasks, intents, experiments, manifests, outbox ---- */

/* The query parameter `key`, or NULL. */
static const char *query(request *r, const char *key) {
  for (int i = 0; i < r->nq; i++)
    if (!strcmp(r->qkey[i], key)) return r->qval[i];
  return NULL;
}

/* Fails the request unless every query parameter is one of `known` (NULL-terminated). */
static int query_only(request *r, const char *const *known) {
  for (int i = 0; i < r->nq; i++) {
    int ok = 0;
    for (int k = 0; known[k] && !ok; k++)
      ok = !strcmp(r->qkey[i], known[k]);
    if (!ok) {
      spine_err_set(&r->e, SPINE_EINVAL, NULL, r->qkey[i], "unknown query parameter \"%.64s\"",
                    r->qkey[i]);
      fail(r, 400, NULL);
      return -1;
    }
  }
  return 0;
}

static void task_list(request *r, PGconn *c) {
  static const char *const known[] = {"kind",  "subject", "assignee", "due_before",
                                      "limit", "cursor",  NULL};
  if (query_only(r, known)) return;
  spine_api_tasks_filter f = {query(r, "kind"),       query(r, "subject"), query(r, "assignee"),
                              query(r, "due_before"), query(r, "cursor"),  0};
  const char *limit = query(r, "limit");
  if (limit) {
    char *end;
    long n = strtol(limit, &end, 10);
    if (*end || end == limit || n < 1 || n > 1000) {
      spine_err_set(&r->e, SPINE_EINVAL, NULL, "limit", "limit is a number from 1 to 1000");
      return fail(r, 400, NULL);
    }
    f.limit = (int)n;
  }
  if (spine_api_tasks_list(c, &f, &r->out, &r->e)) fail_err(r, NULL);
}

static void task_show(request *r, PGconn *c) {
  if (spine_api_tasks_get(c, r->caps[0], &r->out, &r->e)) fail_err(r, NULL);
}

static void task_claim(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  if (spine_api_tasks_claim(c, r->caps[0], r->who.subject, &r->out, &r->e)) fail_err(r, NULL);
}

/* POST /v1/tasks/{id}/resolve {"outcome": "approved", "data": {...}} */
static void task_resolve(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  const char *outcome;
  if (body_string(r, "outcome", 1, &outcome)) return;
  const spine_jsondoc *d = spine_jsondoc_get(r->doc, "data");
  if (d && d->type != SPINE_JSONDOC_OBJECT) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "data", "data must be an object");
    return fail(r, 400, NULL);
  }
  char *data = body_json(r, c, "data", "{}");
  if (!data) return;
  char trace_id[33];
  spine_uuid_trace_id(trace_id);
  if (spine_api_tasks_resolve(c, r->caps[0], outcome, data, r->who.subject, trace_id, &r->out,
                              &r->e))
    fail_err(r, NULL);
  free(data);
}

static void intent_list(request *r, PGconn *c) {
  (void)c;
  spine_api_intents_catalog("items", &r->out);
  r->out.len--; /* the closing brace */
  spine_buf_puts(&r->out, ",\"next_cursor\":null}");
}

/* POST /v1/intents/{name} {"args": {...}}: the caller is the actor. */
static void intent_apply(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  const spine_jsondoc *a = spine_jsondoc_get(r->doc, "args");
  if (a && a->type != SPINE_JSONDOC_OBJECT) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "args", "args must be an object");
    return fail(r, 400, NULL);
  }
  char *args = body_json(r, c, "args", "{}");
  if (!args) return;
  char trace_id[33];
  spine_uuid_trace_id(trace_id);
  spine_buf result = SPINE_BUF_INIT;
  if (spine_api_intents_apply(c, r->caps[0], args, r->who.subject, trace_id, &result, &r->e)) {
    fail_err(r, NULL);
  } else {
    spine_buf_puts(&r->out, "{\"intent\":");
    spine_log_json_string(&r->out, r->caps[0], strlen(r->caps[0]));
    spine_buf_puts(&r->out, ",\"actor\":");
    spine_log_json_string(&r->out, r->who.subject, strlen(r->who.subject));
    spine_buf_printf(&r->out, ",\"trace_id\":\"%s\",\"result\":%s}", trace_id,
                     spine_buf_str(&result));
  }
  spine_buf_free(&result);
  free(args);
}

static void experiment_list(request *r, PGconn *c) {
  static const char *const known[] = {"process", "since", NULL};
  if (query_only(r, known)) return;
  if (spine_api_experiments_report(c, query(r, "process"), query(r, "since"), "items", &r->out,
                                   &r->e))
    return fail_err(r, NULL);
  spine_buf_puts(&r->out, ",\"next_cursor\":null}");
}

static void manifest_list(request *r, PGconn *c) {
  const char *p[1] = {"items"};
  PGresult *q = spine_pgconn_query(c, spine_api_manifests_sql, 1, p, &r->e);
  if (!q) return fail_err(r, NULL);
  spine_buf_puts(&r->out, PQgetvalue(q, 0, 0));
  PQclear(q);
}

/* The reload's problems: the first error is the answer's. */
static void reload_problem(void *data, int warning, const spine_err *e) {
  request *r = data;
  if (!warning && !r->e.code) r->e = *e;
}

static void manifest_reload(request *r, PGconn *c) {
  char by[160];
  snprintf(by, sizeof by, "api:%s", r->who.subject);
  int loaded = -1;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_intake_manifests_reload(c, by, 0, reload_problem, r, &loaded, &e);
  if (rc) {
    if (!r->e.code) r->e = e;
    r->e.code = rc;
    return fail(r, rc == SPINE_EINVAL ? 422 : status_of(rc), NULL);
  }
  snprintf(r->target, sizeof r->target, "%d manifests", loaded);
  spine_buf_printf(&r->out, "{\"loaded\":true,\"manifests\":%d}", loaded);
}

static void outbox_subscribers(request *r, PGconn *c) {
  if (spine_api_outbox_subscribers(c, "items", &r->out, &r->e)) fail_err(r, NULL);
}

static void outbox_dead(request *r, PGconn *c) {
  static const char *const known[] = {"subscriber", "limit", NULL};
  if (query_only(r, known)) return;
  const char *limit = query(r, "limit");
  int n = 100;
  if (limit) {
    char *end;
    long v = strtol(limit, &end, 10);
    if (*end || end == limit || v < 1 || v > 1000) {
      spine_err_set(&r->e, SPINE_EINVAL, NULL, "limit", "limit is a number from 1 to 1000");
      return fail(r, 400, NULL);
    }
    n = (int)v;
  }
  if (spine_api_outbox_dead(c, query(r, "subscriber"), n, "items", &r->out, &r->e))
    fail_err(r, NULL);
}

/* POST /v1/outbox/dead/{id}/redeliver {"subscriber": "crm"?} */
static void outbox_redeliver(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "event %.190s", r->caps[0]);
  const char *subscriber;
  if (body_string(r, "subscriber", 0, &subscriber)) return;
  long n;
  if (spine_api_outbox_redeliver(c, r->caps[0], subscriber, &n, &r->e)) {
    if (!strcmp(r->e.field, "event_id")) snprintf(r->e.field, sizeof r->e.field, "id");
    return fail_err(r, NULL);
  }
  spine_buf_printf(&r->out, "{\"requeued\":%ld}", n);
}

/* The routes, in the order they are tried: a fixed segment before a {name} in its place. The
 * OpenAPI document (openapi.json) lists exactly these (the spec api_openapi_spec checks both
 * ways). */
static const route routes[] = {
    {"GET", "/v1/openapi.json", NULL, NULL},
    {"POST", "/v1/cases", "cases:start", case_start},
    {"GET", "/v1/cases/{id}", "workflows:read", case_show},
    {"GET", "/v1/whoami", "", whoami},
    {"GET", "/v1/workflows", "workflows:read", workflow_list},
    {"GET", "/v1/workflows/counts", "workflows:read", workflow_counts},
    {"POST", "/v1/workflows/cancel", "workflows:operate", bulk_cancel},
    {"POST", "/v1/workflows/retry", "workflows:operate", bulk_retry},
    {"GET", "/v1/workflows/{id}", "workflows:read", workflow_show},
    {"GET", "/v1/workflows/{id}/explain", "workflows:read", workflow_explain},
    {"POST", "/v1/workflows/{id}/signal", "workflows:operate", workflow_signal},
    {"POST", "/v1/workflows/{id}/cancel", "workflows:operate", workflow_cancel},
    {"POST", "/v1/workflows/{id}/retry", "workflows:operate", workflow_retry},
    {"POST", "/v1/workflows/{id}/skip", "workflows:operate", workflow_skip},
    {"GET", "/v1/incidents", "workflows:read", incidents_list},
    {"GET", "/v1/providers", "workflows:read", providers_list},
    {"GET", "/v1/tasks", "workflows:read", task_list},
    {"GET", "/v1/tasks/{id}", "workflows:read", task_show},
    {"POST", "/v1/tasks/{id}/claim", "tasks:resolve", task_claim},
    {"POST", "/v1/tasks/{id}/resolve", "tasks:resolve", task_resolve},
    {"GET", "/v1/intents", "workflows:read", intent_list},
    {"POST", "/v1/intents/{name}", "intents:apply", intent_apply},
    {"GET", "/v1/experiments", "workflows:read", experiment_list},
    {"GET", "/v1/manifests", "workflows:read", manifest_list},
    {"POST", "/v1/manifests/reload", "admin", manifest_reload},
    {"GET", "/v1/outbox/subscribers", "workflows:read", outbox_subscribers},
    {"GET", "/v1/outbox/dead", "workflows:read", outbox_dead},
    {"POST", "/v1/outbox/dead/{id}/redeliver", "workflows:operate", outbox_redeliver},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* ---- the worker thread ---- */

static void audit(request *r, PGconn *c, const char *method) {
  char status[8];
  snprintf(status, sizeof status, "%d", r->status);
  const char *outcome = r->outcome        ? r->outcome
                        : r->status < 400 ? "ok"
                                          : kind_of(r->status, r->e.code);
  const char *p[8] = {r->who.subject[0] ? r->who.subject : NULL,
                      r->who.token_id[0] ? r->who.token_id : NULL,
                      method,
                      r->rt->pattern,
                      r->target[0] ? r->target : NULL,
                      r->source[0] ? r->source : NULL,
                      status,
                      outcome};
  spine_err e;
  spine_err_clear(&e);
  PGresult *q = spine_pgconn_query(c,
                                   "INSERT INTO spine.api_audit (subject, token_id, method, route,"
                                   " target, source, status, outcome)"
                                   " VALUES ($1, $2, $3, $4, $5, $6, $7::int, $8)",
                                   8, p, &e);
  if (q)
    PQclear(q);
  else
    spine_log_error("api", "cannot write the audit row", "route", r->rt->pattern, "error", e.msg,
                    NULL);
}

/* Who the bearer is: an API token, or (another kind of bearer) the single sign-on hook. */
static int authenticate(request *r, PGconn *c) {
  size_t plen = strlen(SPINE_API_TOKEN_PREFIX);
  if (r->bearer_len > plen && !memcmp(r->bearer, SPINE_API_TOKEN_PREFIX, plen))
    return spine_api_tokens_check(c, r->bearer, r->bearer_len, &r->who, &r->e);
  if (r->bearer_len == 0)
    return spine_err_set(&r->e, SPINE_ENOTFOUND, NULL, NULL,
                         "a bearer token is required (Authorization: Bearer spn_...)");
  /* Single sign-on (serve_sso.c), when configured: a JWT of the identity provider. */
  if (pool.bearer)
    return pool.bearer(pool.bearer_data, r->bearer, r->bearer_len, r->source[0] ? r->source : NULL,
                       &r->who, &r->e);
  return spine_err_set(&r->e, SPINE_ENOTFOUND, NULL, NULL, "unknown token");
}

static void work(uv_work_t *w) {
  request *r = w->data;
  PGconn *c = acquire(&r->e);
  if (!c) {
    spine_log_error("api", "no database connection", "error", r->e.msg, NULL);
    spine_err_set(&r->e, SPINE_EDB, NULL, NULL, "the database is unavailable; try again");
    fail(r, 503, "unavailable");
    return;
  }
  int rc = authenticate(r, c);
  if (rc == SPINE_ENOTFOUND) {
    fail(r, 401, "unauthorized");
  } else if (rc) {
    fail_err(r, NULL);
  } else if (r->rt->scope[0] && !spine_api_tokens_allows(&r->who, r->rt->scope)) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, NULL, "%s may not do this: it needs scope %s",
                  r->who.subject, r->rt->scope);
    fail(r, 403, "forbidden");
  } else {
    r->rt->fn(r, c);
    if (!r->status) r->status = 200;
  }
  if (strcmp(r->rt->method, "GET")) audit(r, c, r->rt->method);
  release(c);
}

static void request_free(request *r) {
  spine_jsondoc_free(r->doc);
  free(r->body);
  spine_buf_free(&r->out);
  free(r);
}

static void aborted(void *data) {
  ((request *)data)->x = NULL;
}

static void done(uv_work_t *w, int status) {
  request *r = w->data;
  (void)status;
  if (r->x) {
    spine_http_server_on_abort(r->x, NULL, NULL);
    if (r->status < 400) {
      if (r->answer) r->answer(r);
      spine_buf_putc(&r->out, '\n');
      spine_http_server_respond(r->x, r->status, "application/json", spine_buf_str(&r->out),
                                r->out.len);
    } else {
      if (r->status == 401)
        spine_http_server_add_header(r->x, "WWW-Authenticate",
                                     r->bearer_len ? "Bearer error=\"invalid_token\"" : "Bearer");
      if (r->status == 500)
        spine_log_error("api", "request failed", "route", r->rt->pattern, "error", r->e.msg, NULL);
      const char *kind = kind_of(r->status, r->e.code);
      spine_buf b = SPINE_BUF_INIT;
      error_body(&b, kind, r->code ? r->code : kind, &r->e);
      spine_http_server_respond(r->x, r->status, "application/json", spine_buf_str(&b), b.len);
      spine_buf_free(&b);
    }
  }
  request_free(r);
}

/* ---- the loop: match, read, queue ---- */

static void source_of(spine_http_server_exchange *x, char *out, size_t size) {
  struct sockaddr_storage ss;
  out[0] = '\0';
  if (spine_http_server_peer(x, &ss)) return;
  if (ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)size);
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)size);
}

static void openapi(spine_http_server_exchange *x) {
  for (const spine_server__doc *d = spine_server__docs; d->name; d++)
    if (!strcmp(d->name, "openapi.json")) {
      spine_http_server_respond(x, 200, "application/json", d->text, strlen(d->text));
      return;
    }
  refuse(x, 404, NULL, "no OpenAPI document in this build");
}

/* Reads the request into r (query, headers, body); 0, or answers the error itself. */
static int read_request(request *r, spine_http_server_exchange *x) {
  size_t len;
  const char *q = spine_http_server_query(x, &len);
  if (q) {
    const char *p = q, *end = q + len;
    int rc;
    char key[64], value[VALUE_MAX];
    while ((rc = spine_api_route_query_next(&p, end, key, sizeof key, value, sizeof value)) == 1) {
      if (r->nq == QUERY_MAX) {
        refuse(x, 400, "query", "too many query parameters");
        return -1;
      }
      memcpy(r->qkey[r->nq], key, sizeof key);
      memcpy(r->qval[r->nq++], value, sizeof value);
    }
    if (rc < 0) {
      refuse(x, 400, "query", "a query parameter is too long or badly escaped");
      return -1;
    }
  }
  const char *auth = spine_http_server_header(x, "authorization", &len);
  if (auth && len > 7 && !strncasecmp(auth, "Bearer ", 7)) {
    auth += 7, len -= 7;
    while (len && *auth == ' ')
      auth++, len--;
    if (len > BEARER_MAX || memchr(auth, '\0', len)) {
      refuse(x, 401, NULL, "the bearer token is not one this server gave");
      return -1;
    }
    memcpy(r->bearer, auth, len);
    r->bearer_len = len;
  }
  const char *key = spine_http_server_header(x, "idempotency-key", &len);
  if (key) {
    if (len == 0 || len >= sizeof r->key || memchr(key, '\0', len)) {
      refuse(x, 400, "Idempotency-Key", "an Idempotency-Key is 1 to 255 characters");
      return -1;
    }
    memcpy(r->key, key, len);
    r->key[len] = '\0';
  }
  source_of(x, r->source, sizeof r->source);
  const char *body = spine_http_server_body(x, &len);
  if (len > MAX_BODY) {
    refuse(x, 413, "body", "the body is over 256 KiB");
    return -1;
  }
  if (!body || len == 0) body = "{}", len = 2;
  if (!(r->body = malloc(len + 1))) {
    refuse(x, 503, NULL, "out of memory; try again");
    return -1;
  }
  memcpy(r->body, body, len);
  r->body[len] = '\0';
  int line;
  spine_err e;
  spine_err_clear(&e);
  if (strcmp(r->rt->method, "GET") && (spine_jsondoc_parse(r->body, len, &r->doc, &line, &e) ||
                                       r->doc->type != SPINE_JSONDOC_OBJECT)) {
    char msg[300];
    snprintf(msg, sizeof msg, "the body must be a JSON object%s%s", e.msg[0] ? ": " : "", e.msg);
    refuse(x, 400, "body", msg);
    return -1;
  }
  return 0;
}

static void handle(void *data, spine_http_server_exchange *x) {
  uv_loop_t *loop = data;
  size_t mlen, plen;
  const char *method = spine_http_server_method(x, &mlen);
  const char *path = spine_http_server_path(x, &plen);
  char caps[SPINE_API_ROUTE_CAPS][SPINE_API_ROUTE_CAP_MAX + 1];
  const route *rt = NULL;
  int path_known = 0;
  char allow[32] = "";
  for (size_t i = 0; i < NROUTES && !rt; i++) {
    if (spine_api_route_match(routes[i].pattern, path, plen, caps) < 0) continue;
    path_known = 1;
    if (strlen(routes[i].method) == mlen && !memcmp(routes[i].method, method, mlen))
      rt = &routes[i];
    else if (!strstr(allow, routes[i].method))
      snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
               routes[i].method);
  }
  if (!rt && path_known) {
    spine_http_server_add_header(x, "Allow", allow);
    return refuse(x, 405, NULL, "this path takes another method");
  }
  if (!rt) return refuse(x, 404, NULL, "no such route (see /v1/openapi.json)");
  if (!rt->fn) return openapi(x);
  request *r = calloc(1, sizeof *r);
  if (!r) return refuse(x, 503, NULL, "out of memory; try again");
  r->rt = rt;
  memcpy(r->caps, caps, sizeof caps);
  /* calloc left r->out empty, as SPINE_BUF_INIT */
  if (read_request(r, x)) return request_free(r);
  if (!pool.ready) {
    request_free(r);
    return refuse(x, 503, NULL, "this server has no database for the API");
  }
  r->x = x;
  r->work.data = r;
  spine_http_server_on_abort(x, aborted, r);
  if (uv_queue_work(loop, &r->work, work, done)) {
    spine_http_server_on_abort(x, NULL, NULL);
    request_free(r);
    refuse(x, 503, NULL, "cannot queue the request; try again");
  }
}

int spine_server__api_mount(spine_http_server *srv, uv_loop_t *loop, spine_providers *providers) {
  pool.providers = providers;
  /* After the webhooks' and the clock's routes: the first route that matches wins. */
  int rc = spine_http_server_route(srv, "GET", "/v1/", handle, loop);
  if (!rc) rc = spine_http_server_route(srv, "POST", "/v1/", handle, loop);
  return rc;
}

void spine_server__api_forget_providers(void) {
  pool.providers = NULL;
}

const char *spine_server__api_route(size_t i, const char **method) {
  if (i >= NROUTES) return NULL;
  *method = routes[i].method;
  return routes[i].pattern;
}
