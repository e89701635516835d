/* Child workflows routed by the manifests in force (child_router.h). A route is the same function
 * of the manifest and the input as `spine start`'s (spine_intake_route_case): the same subjects
 * land in the same variants whichever way a case starts. */
#include "child_router.h"

#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "pgconn.h"

struct spine_child_router {
  spine_manifest_set set;
  long long load;
};

spine_child_router *spine_child_router_new(void) {
  return calloc(1, sizeof(spine_child_router));
}

void spine_child_router_free(spine_child_router *r) {
  if (!r) return;
  spine_manifest_set_free(&r->set);
  free(r);
}

int spine_child_router_read(PGconn *c, spine_manifest_set *out, long long *load,
                            spine_manifest_set_report_fn fn, void *data, spine_err *e) {
  memset(out, 0, sizeof *out);
  *load = 0;
  /* One statement, one snapshot: the load and its manifests agree. */
  PGresult *r = spine_pgconn_query(c,
                                   "SELECT l.id, m.path, m.body"
                                   " FROM (SELECT max(id) AS id FROM spine.manifest_loads) l"
                                   " LEFT JOIN spine.manifests m ON true ORDER BY m.process",
                                   0, NULL, e);
  if (!r) return SPINE_EDB;
  int n = PQntuples(r), rc = 0;
  if (n && !PQgetisnull(r, 0, 0)) *load = atoll(PQgetvalue(r, 0, 0));
  out->items = n ? calloc((size_t)n, sizeof *out->items) : NULL;
  if (n && !out->items) rc = spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  for (int i = 0; !rc && i < n; i++) {
    if (PQgetisnull(r, i, 1)) continue; /* a load of no manifests */
    spine_err bad;
    spine_err_clear(&bad);
    int prc = spine_manifest_parse(PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                                   (size_t)PQgetlength(r, i, 2), &out->items[out->n], &bad);
    if (!prc)
      out->n++;
    else if (prc == SPINE_ENOMEM)
      rc = spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
    else if (fn)
      fn(data, 0, &bad);
  }
  PQclear(r);
  if (rc) spine_manifest_set_free(out);
  return rc;
}

void spine_child_router_put(spine_child_router *r, spine_manifest_set *set, long long load) {
  if (load < r->load) { /* a read that finished after a newer one */
    spine_manifest_set_free(set);
    return;
  }
  spine_manifest_set_free(&r->set);
  r->set = *set;
  r->load = load;
  memset(set, 0, sizeof *set);
}

long long spine_child_router_load(const spine_child_router *r) {
  return r->load;
}

static char *dup_or_null(const char *s, int *failed) {
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) *failed = 1;
  return d;
}

static void release(void *impl, spine_child_route *r) {
  (void)impl;
  free(r->playbook);
  free(r->variant);
  free(r->experiment);
  free(r->subject);
  free(r->params);
  free(r->max_duration);
  memset(r, 0, sizeof *r);
}

static int route(void *impl, const char *process, const char *input_json, const char *subject,
                 spine_child_route *out, spine_err *e) {
  spine_child_router *r = impl;
  memset(out, 0, sizeof *out);
  const spine_manifest *m = spine_manifest_set_find(&r->set, process);
  if (!m) return 0;
  spine_route rt;
  char *key = NULL;
  int rc = spine_intake_route_case(m, input_json, subject, &rt, &key, e);
  if (rc) return rc;
  int failed = 0;
  out->subject = key;
  out->playbook = dup_or_null(rt.variant->playbook, &failed);
  out->variant = dup_or_null(rt.variant->name, &failed);
  out->experiment = dup_or_null(m->experiment, &failed);
  out->params = dup_or_null(rt.variant->params, &failed);
  out->max_duration = dup_or_null(m->max_duration, &failed);
  out->max_duration_ms = m->max_duration ? m->max_duration_ms : 0;
  out->bucket = rt.bucket;
  if (failed) {
    release(impl, out);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  }
  return 1;
}

spine_router_port spine_child_router_port(spine_child_router *r) {
  return (spine_router_port){r, route, release};
}
