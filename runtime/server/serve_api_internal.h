/* What the HTTP API's two files share (serve_api.c: the pool, the answers, the worker threads and
 * the loop's matching; serve_api_routes.c: the routes and what each does). Not an interface:
 * only they include it. */
#ifndef SPINE_SERVE_API_INTERNAL_H
#define SPINE_SERVE_API_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <uv.h>

#include "api_route.h"
#include "api_tokens.h"
#include "buf.h"
#include "err.h"
#include "http_server.h"
#include "jsondoc.h"
#include "providers.h"

#define QUERY_MAX  16   /* query parameters read */
#define VALUE_MAX  256  /* bytes of one decoded query value */
#define BEARER_MAX 4096 /* bytes of a bearer (a JWT may be long) */

typedef struct request request;
typedef void (*route_fn)(request *r, PGconn *c);

typedef struct spine_server__api_route_t {
  const char *method, *pattern;
  const char *scope; /* NULL: open (no token); "": any caller with a valid bearer */
  route_fn fn;       /* runs in a worker thread; NULL: the OpenAPI document, on the loop */
} spine_server__api_route_t;

/* One request on its way: read on the loop, worked in a thread, answered on the loop. */
struct request {
  uv_work_t work;
  spine_http_server_exchange *x; /* NULL once the server closed it */
  const spine_server__api_route_t *rt;
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

/* The routes, in the order they are matched (serve_api_routes.c). */
extern const spine_server__api_route_t spine_server__api_routes[];
extern const size_t spine_server__api_nroutes;

/* The HTTP status of an error code (SPINE_EINVAL: 400 ...). */
int spine_server__api_status_of(int code);
/* The request fails: status and the error of `r->e` (code: its kind unless given). */
void spine_server__api_fail(request *r, int status, const char *code);
/* The request fails with the status r->e's code says (a lost database: 500). */
void spine_server__api_fail_err(request *r, const char *code);
/* The member `key` of the body as a string into *out: 0, or fails the request naming it. */
int spine_server__api_body_string(request *r, const char *key, int required, const char **out);
/* The member `key` of the body as JSON text, or `dflt` when absent. Caller frees. NULL when the
 * query failed (the request is failed). */
char *spine_server__api_body_json(request *r, PGconn *c, const char *key, const char *dflt);
/* The adapters of this server (read them only on the loop), NULL once it stops. */
spine_providers *spine_server__api_providers(void);

#endif
