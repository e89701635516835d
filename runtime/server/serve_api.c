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

#include "api_route.h"
#include "api_tokens.h"
#include "buf.h"
#include "http_server.h"
#include "jsondoc.h"
#include "log.h"
#include "pgconn.h"
#include "providers.h"
#include "serve_api_internal.h"
#include "server_internal.h"

#define MAX_BODY  (256 * 1024) /* bytes of a request body the API reads (over: 413) */
#define POOL_SIZE 8            /* idle connections kept (a thread opens one when none is free) */

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

/* ---- answers ---- */

int spine_server__api_status_of(int code) {
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
void spine_server__api_fail(request *r, int status, const char *code) {
  r->status = status;
  r->code = code;
  if (!r->e.code) r->e.code = SPINE_EINVAL;
}

void spine_server__api_fail_err(request *r, const char *code) {
  spine_server__api_fail(r,
                         r->e.code == SPINE_EDB && !strcmp(r->e.where, "database")
                             ? 500
                             : spine_server__api_status_of(r->e.code),
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
int spine_server__api_body_string(request *r, const char *key, int required, const char **out) {
  const spine_jsondoc *v = spine_jsondoc_get(r->doc, key);
  *out = NULL;
  if (!v && !required) return 0;
  if (!v || v->type != SPINE_JSONDOC_STRING || !*v->str) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, key, "%s must be a non-empty string", key);
    spine_server__api_fail(r, 400, NULL);
    return -1;
  }
  *out = v->str;
  return 0;
}

/* The member `key` of the body as JSON text (SQL does the serialising: jsondoc keeps no text),
 * or `dflt` when absent. Caller frees. NULL when the query failed (the request is failed). */
char *spine_server__api_body_json(request *r, PGconn *c, const char *key, const char *dflt) {
  const char *p[3] = {r->body, key, dflt};
  PGresult *q =
      spine_pgconn_query(c, "SELECT coalesce($1::jsonb -> $2, $3::jsonb)::text", 3, p, &r->e);
  if (!q) {
    spine_server__api_fail_err(r, NULL);
    return NULL;
  }
  char *s = strdup(PQgetvalue(q, 0, 0));
  PQclear(q);
  if (!s)
    spine_err_set(&r->e, SPINE_ENOMEM, NULL, NULL, "out of memory"),
        spine_server__api_fail(r, 503, NULL);
  return s;
}

/* ---- the worker thread ---- */

/* Writes the request's audit row: 0, or SPINE_EDB (logged). */
static int audit(request *r, PGconn *c, const char *method) {
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
  if (q) {
    PQclear(q);
    return 0;
  }
  spine_log_error("api", "cannot write the audit row", "route", r->rt->pattern, "error", e.msg,
                  NULL);
  return SPINE_EDB;
}

/* A request that acts: the action and its audit row commit together or not at all, so the
 * audit never lacks an action that happened. A refused or failed action is rolled back whole
 * (nothing half-applied) and then audited on its own with its outcome. */
static void act(request *r, PGconn *c) {
  spine_pgconn_unit u;
  if (spine_pgconn_begin(c, &u, &r->e)) {
    spine_server__api_fail(r, 503, "unavailable");
    audit(r, c, r->rt->method);
    return;
  }
  r->rt->fn(r, c);
  if (!r->status) r->status = 200;
  int acted = r->status < 400;
  int recorded = acted && !audit(r, c, r->rt->method);
  if (recorded && !spine_pgconn_end(c, &u, 1, &r->e)) return;
  if (!recorded) spine_pgconn_end(c, &u, 0, NULL); /* a failed commit has rolled back already */
  if (acted) { /* done, but the audit row or the commit failed: nothing happened */
    r->out.len = 0;
    r->answer = NULL;
    spine_err_set(&r->e, SPINE_EDB, NULL, NULL,
                  "the action could not be recorded, so it was not done; try again");
    spine_server__api_fail(r, 503, "unavailable");
  }
  audit(r, c, r->rt->method);
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
    spine_server__api_fail(r, 503, "unavailable");
    return;
  }
  int rc = authenticate(r, c);
  if (rc == SPINE_ENOTFOUND) {
    spine_server__api_fail(r, 401, "unauthorized");
  } else if (rc) {
    spine_server__api_fail_err(r, NULL);
  } else if (r->rt->scope[0] && !spine_api_tokens_allows(&r->who, r->rt->scope)) {
    spine_err_set(&r->e, SPINE_EINVAL, NULL, NULL, "%s may not do this: it needs scope %s",
                  r->who.subject, r->rt->scope);
    spine_server__api_fail(r, 403, "forbidden");
  } else if (strcmp(r->rt->method, "GET")) {
    act(r, c);
    release(c);
    return;
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
  const spine_server__api_route_t *rt = NULL;
  int path_known = 0;
  char allow[32] = "";
  for (size_t i = 0; i < spine_server__api_nroutes && !rt; i++) {
    if (spine_api_route_match(spine_server__api_routes[i].pattern, path, plen, caps) < 0) continue;
    path_known = 1;
    if (strlen(spine_server__api_routes[i].method) == mlen &&
        !memcmp(spine_server__api_routes[i].method, method, mlen))
      rt = &spine_server__api_routes[i];
    else if (!strstr(allow, spine_server__api_routes[i].method))
      snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
               spine_server__api_routes[i].method);
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

spine_providers *spine_server__api_providers(void) {
  return pool.providers;
}

void spine_server__api_forget_providers(void) {
  pool.providers = NULL;
}

const char *spine_server__api_route(size_t i, const char **method) {
  if (i >= spine_server__api_nroutes) return NULL;
  *method = spine_server__api_routes[i].method;
  return spine_server__api_routes[i].pattern;
}
