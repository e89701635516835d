/* The routes of the HTTP API (docs/api.md, openapi.json) and what each does, in a worker thread
 * on a blocking connection (serve_api.c runs them): each calls what the CLI's command calls
 * (runtime/api), and fills the request's answer or fails it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_experiments.h"
#include "api_intents.h"
#include "api_ops.h"
#include "api_outbox.h"
#include "api_repair.h"
#include "api_tasks.h"
#include "intake.h"
#include "log.h"
#include "pgconn.h"
#include "serve_api_internal.h"
#include "server_internal.h"
#include "uuid.h"

/* One row of `sql` with the route's first capture as $1: its JSON, or 404. */
static void show_row(request *r, PGconn *c, const char *sql, const char *what) {
  const char *p[1] = {r->caps[0]};
  PGresult *q = spine_pgconn_query(c, sql, 1, p, &r->e);
  if (!q) return spine_server__api_fail_err(r, NULL);
  if (PQntuples(q) == 0) {
    spine_err_set(&r->e, SPINE_ENOTFOUND, NULL, "id", "no %s %s", what, r->caps[0]);
    spine_server__api_fail(r, 404, "not_found");
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
  if (spine_server__api_body_string(r, "process", 1, &process) ||
      spine_server__api_body_string(r, "subject", 0, &subject))
    return;
  if (!is_name(process)) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "process",
                  "process must be a process name (letters, digits, _ and -)");
    return spine_server__api_fail(r, 400, NULL);
  }
  snprintf(r->target, sizeof r->target, "%.200s", process);
  const spine_jsondoc *in = spine_jsondoc_get(r->doc, "input");
  if (in && in->type != SPINE_JSONDOC_OBJECT) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "input", "input must be an object");
    return spine_server__api_fail(r, 400, NULL);
  }
  char *input = spine_server__api_body_json(r, c, "input", "{}");
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
      return spine_server__api_fail(r, 404, code);
    }
    return spine_server__api_fail_err(r, code);
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
      spine_server__api_fail(r, 400, NULL);
      return -1;
    }
  }
  return 0;
}

static void workflow_list(request *r, PGconn *c) {
  spine_api_filter f = {0};
  if (query_filter(r, &f, 1)) return;
  if (spine_api_list(c, &f, "items", &r->out, &r->e)) spine_server__api_fail_err(r, NULL);
}

static void workflow_counts(request *r, PGconn *c) {
  spine_api_filter f = {0};
  if (query_filter(r, &f, 0)) return;
  if (spine_api_counts(c, &f, "items", &r->out, &r->e)) spine_server__api_fail_err(r, NULL);
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
  if (!q) return spine_server__api_fail_err(r, NULL);
  spine_buf_printf(&r->out, "{\"items\":%s,\"next_cursor\":null}", PQgetvalue(q, 0, 0));
  PQclear(q);
}

static void act(request *r, PGconn *c, spine_api_action a) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  if (spine_api_act(c, a, r->caps[0], r->who.subject, &r->out, &r->e))
    spine_server__api_fail_err(r, NULL);
}

static void workflow_cancel(request *r, PGconn *c) {
  act(r, c, SPINE_API_CANCEL);
}

static void workflow_retry(request *r, PGconn *c) {
  act(r, c, SPINE_API_RETRY);
}

static void workflow_skip(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  char *result = spine_server__api_body_json(r, c, "result", "null");
  if (!result) return;
  if (spine_api_skip(c, r->caps[0], result, r->who.subject, &r->out, &r->e))
    spine_server__api_fail_err(r, NULL);
  free(result);
}

/* POST /v1/workflows/{id}/fork {"from_step": N, "keep": false}: on its own version. */
static void workflow_fork(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  char *step = spine_server__api_body_json(r, c, "from_step", "null");
  if (!step) return;
  char *keep = spine_server__api_body_json(r, c, "keep", "false");
  char *end = NULL;
  long n = strtol(step, &end, 10);
  if (!keep) {
    free(step);
    return;
  }
  if (end == step || *end || n < 0 || n > 1000000) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "from_step", "expected a step number (0 or more)");
    spine_server__api_fail(r, 400, NULL);
  } else if (strcmp(keep, "true") && strcmp(keep, "false")) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "keep", "expected true or false");
    spine_server__api_fail(r, 400, NULL);
  } else if (spine_api_fork(c, r->caps[0], (int)n, NULL, !strcmp(keep, "true"), r->who.subject,
                            &r->out, &r->e)) {
    spine_server__api_fail_err(r, NULL);
  } else {
    r->status = 201;
  }
  free(step);
  free(keep);
}

static void workflow_signal(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  const char *name;
  if (spine_server__api_body_string(r, "name", 1, &name)) return;
  char *data = spine_server__api_body_json(r, c, "data", "{}");
  if (!data) return;
  const char *code = NULL;
  if (spine_api_signal(c, r->caps[0], name, data, &r->out, &code, &r->e))
    spine_server__api_fail_err(r, code);
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
    return spine_server__api_fail(r, 400, NULL);
  }
  if (dry && dry->type != SPINE_JSONDOC_BOOL) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "dry_run", "dry_run must be true or false");
    return spine_server__api_fail(r, 400, NULL);
  }
  if (limit && (limit->type != SPINE_JSONDOC_NUMBER || limit->num < 1 || limit->num > 10000 ||
                limit->num != (double)(int)limit->num)) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "limit", "limit is a whole number from 1 to 10000");
    return spine_server__api_fail(r, 400, NULL);
  }
  f.limit = limit ? (int)limit->num : 1000;
  for (const spine_jsondoc *m = filter->child; m; m = m->next) {
    snprintf(field, sizeof field, "filter.%.56s", m->key);
    if (m->type != SPINE_JSONDOC_STRING) {
      spine_err_set(&r->e, SPINE_EINVAL, NULL, field, "%s must be a string", field);
      return spine_server__api_fail(r, 400, NULL);
    }
    if (spine_api_filter_set(&f, m->key, m->str, &r->e)) {
      memcpy(r->e.field, field, sizeof field);
      return spine_server__api_fail(r, 400, NULL);
    }
  }
  int dry_run = !dry || dry->boolean;
  PGresult *q = NULL;
  if (spine_api_bulk(c, a, &f, !dry_run, r->who.subject, &q, &r->e)) {
    if (!strcmp(r->e.field, "filter")) return spine_server__api_fail(r, 400, NULL);
    return spine_server__api_fail_err(r, NULL);
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
  spine_providers_status_json(spine_server__api_providers(), &r->out);
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
      spine_server__api_fail(r, 400, NULL);
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
      return spine_server__api_fail(r, 400, NULL);
    }
    f.limit = (int)n;
  }
  if (spine_api_tasks_list(c, &f, &r->out, &r->e)) spine_server__api_fail_err(r, NULL);
}

static void task_show(request *r, PGconn *c) {
  if (spine_api_tasks_get(c, r->caps[0], &r->out, &r->e)) spine_server__api_fail_err(r, NULL);
}

static void task_claim(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  if (spine_api_tasks_claim(c, r->caps[0], r->who.subject, &r->out, &r->e))
    spine_server__api_fail_err(r, NULL);
}

/* POST /v1/tasks/{id}/resolve {"outcome": "approved", "data": {...}} */
static void task_resolve(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "%s", r->caps[0]);
  const char *outcome;
  if (spine_server__api_body_string(r, "outcome", 1, &outcome)) return;
  const spine_jsondoc *d = spine_jsondoc_get(r->doc, "data");
  if (d && d->type != SPINE_JSONDOC_OBJECT) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, "data", "data must be an object");
    return spine_server__api_fail(r, 400, NULL);
  }
  char *data = spine_server__api_body_json(r, c, "data", "{}");
  if (!data) return;
  char trace_id[33];
  spine_uuid_trace_id(trace_id);
  if (spine_api_tasks_resolve(c, r->caps[0], outcome, data, r->who.subject, trace_id, &r->out,
                              &r->e))
    spine_server__api_fail_err(r, NULL);
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
    return spine_server__api_fail(r, 400, NULL);
  }
  char *args = spine_server__api_body_json(r, c, "args", "{}");
  if (!args) return;
  char trace_id[33];
  spine_uuid_trace_id(trace_id);
  spine_buf result = SPINE_BUF_INIT;
  if (spine_api_intents_apply(c, r->caps[0], args, r->who.subject, trace_id, &result, &r->e)) {
    spine_server__api_fail_err(r, NULL);
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
    return spine_server__api_fail_err(r, NULL);
  spine_buf_puts(&r->out, ",\"next_cursor\":null}");
}

static void manifest_list(request *r, PGconn *c) {
  const char *p[1] = {"items"};
  PGresult *q = spine_pgconn_query(c, spine_api_manifests_sql, 1, p, &r->e);
  if (!q) return spine_server__api_fail_err(r, NULL);
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
    return spine_server__api_fail(r, rc == SPINE_EINVAL ? 422 : spine_server__api_status_of(rc),
                                  NULL);
  }
  snprintf(r->target, sizeof r->target, "%d manifests", loaded);
  spine_buf_printf(&r->out, "{\"loaded\":true,\"manifests\":%d}", loaded);
}

static void outbox_subscribers(request *r, PGconn *c) {
  if (spine_api_outbox_subscribers(c, "items", &r->out, &r->e)) spine_server__api_fail_err(r, NULL);
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
      return spine_server__api_fail(r, 400, NULL);
    }
    n = (int)v;
  }
  if (spine_api_outbox_dead(c, query(r, "subscriber"), n, "items", &r->out, &r->e))
    spine_server__api_fail_err(r, NULL);
}

/* POST /v1/outbox/dead/{id}/redeliver {"subscriber": "crm"?} */
static void outbox_redeliver(request *r, PGconn *c) {
  snprintf(r->target, sizeof r->target, "event %.190s", r->caps[0]);
  const char *subscriber;
  if (spine_server__api_body_string(r, "subscriber", 0, &subscriber)) return;
  long n;
  if (spine_api_outbox_redeliver(c, r->caps[0], subscriber, &n, &r->e)) {
    if (!strcmp(r->e.field, "event_id")) snprintf(r->e.field, sizeof r->e.field, "id");
    return spine_server__api_fail_err(r, NULL);
  }
  spine_buf_printf(&r->out, "{\"requeued\":%ld}", n);
}

/* The routes, in the order they are tried: a fixed segment before a {name} in its place. The
 * OpenAPI document (openapi.json) lists exactly these (the spec api_openapi_spec checks both
 * ways). */
const spine_server__api_route_t spine_server__api_routes[] = {
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
    {"POST", "/v1/workflows/{id}/fork", "workflows:operate", workflow_fork},
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
const size_t spine_server__api_nroutes =
    sizeof spine_server__api_routes / sizeof spine_server__api_routes[0];
