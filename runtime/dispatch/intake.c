/* The manifests in force, case routing and storing cases (intake.h). The database holds the
 * set in force so that every `spine` process on it routes alike; files take effect only when a
 * reload accepted all of them, so a bad edit never half-applies. */
#include "intake.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "child_router.h"
#include "codec.h"
#include "log.h"
#include "pgconn.h"
#include "playbook.h"
#include "sandbox.h"
#include "uuid.h"

/* Serialises reloads: the advisory lock (classid 7780, objid 6) of the dispatcher. */
#define RELOAD_LOCK "SELECT pg_advisory_xact_lock(7780, 6)"

const char *spine_intake_manifests_dir(void) {
  const char *d = getenv("SPINE_MANIFESTS");
  return d && *d ? d : "manifests";
}

const char *spine_intake_playbooks_dir(void) {
  const char *d = getenv("SPINE_PLAYBOOKS");
  return d && *d ? d : NULL;
}

static int exec(PGconn *c, const char *sql, int n, const char *const *params, PGresult **out,
                spine_err *e) {
  PGresult *r = spine_pgconn_query(c, sql, n, params, e);
  if (!r) return SPINE_EDB;
  if (out)
    *out = r;
  else
    PQclear(r);
  return 0;
}

static int publish(PGconn *c, const spine_manifest_set *set, const char *by, int only_if_never,
                   int *loaded, spine_err *e) {
  *loaded = -1;
  spine_pgconn_unit u;
  int rc = spine_pgconn_begin(c, &u, e);
  if (rc) return rc;
  rc = exec(c, RELOAD_LOCK, 0, NULL, NULL, e);
  PGresult *r = NULL;
  if (!rc && only_if_never &&
      !(rc = exec(c, "SELECT 1 FROM spine.manifest_loads LIMIT 1", 0, NULL, &r, e))) {
    int done = PQntuples(r) > 0;
    PQclear(r);
    if (done) return spine_pgconn_end(c, &u, 1, e);
  }
  spine_buf list = SPINE_BUF_INIT;
  spine_buf_putc(&list, '[');
  for (int i = 0; i < set->n; i++) {
    const spine_manifest *m = set->items[i];
    spine_buf_puts(&list, i ? ",{\"process\":" : "{\"process\":");
    spine_log_json_string(&list, m->process, strlen(m->process));
    spine_buf_puts(&list, ",\"path\":");
    spine_log_json_string(&list, m->path, strlen(m->path));
    spine_buf_printf(&list, ",\"hash\":\"%s\"}", m->hash);
  }
  spine_buf_putc(&list, ']');
  const char *lp[2] = {by, spine_buf_str(&list)};
  if (!rc)
    rc = exec(c,
              "INSERT INTO spine.manifest_loads (loaded_by, manifests) VALUES ($1, $2)"
              " RETURNING id",
              2, lp, &r, e);
  spine_buf_free(&list);
  char load_id[24] = "";
  if (!rc) {
    snprintf(load_id, sizeof load_id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    rc = exec(c, "DELETE FROM spine.manifests", 0, NULL, NULL, e);
  }
  for (int i = 0; !rc && i < set->n; i++) {
    const spine_manifest *m = set->items[i];
    const char *p[5] = {m->process, m->path, m->hash, m->text, load_id};
    rc = exec(c,
              "INSERT INTO spine.manifests (process, path, hash, body, load_id)"
              " VALUES ($1, $2, $3, $4, $5)",
              5, p, NULL, e);
  }
  /* Workers route child workflows by the set in force: they hear of this one at its commit. */
  const char *np[1] = {load_id};
  if (!rc) rc = exec(c, "SELECT pg_notify('" SPINE_CHILD_ROUTER_CHANNEL "', $1)", 1, np, NULL, e);
  if (rc) {
    spine_pgconn_end(c, &u, 0, e);
    return rc;
  }
  if ((rc = spine_pgconn_end(c, &u, 1, e))) return rc;
  *loaded = set->n;
  return 0;
}

int spine_intake_manifests_reload(PGconn *c, const char *by, int only_if_never,
                                  spine_manifest_set_report_fn fn, void *data, int *loaded,
                                  spine_err *e) {
  spine_manifest_set set;
  *loaded = -1;
  const char *dir = spine_intake_manifests_dir();
  int errors = spine_manifest_set_load(dir, spine_intake_playbooks_dir(), &set, fn, data);
  int rc;
  if (errors)
    rc = spine_err_set(e, SPINE_EINVAL, dir, NULL,
                       "%d error%s: reload refused, the manifests in force are unchanged", errors,
                       errors == 1 ? "" : "s");
  else
    rc = publish(c, &set, by, only_if_never, loaded, e);
  spine_manifest_set_free(&set);
  return rc;
}

/* Reports the first error of an automatic load into `data` (a spine_err). */
static void keep_first(void *data, int warning, const spine_err *e) {
  spine_err *first = data;
  if (!warning && !first->code) *first = *e;
}

int spine_intake_manifest_in_force(PGconn *c, const char *process, spine_manifest **out,
                                   spine_err *e) {
  *out = NULL;
  PGresult *r;
  int rc = exec(c, "SELECT 1 FROM spine.manifest_loads LIMIT 1", 0, NULL, &r, e);
  if (rc) return rc;
  int never = PQntuples(r) == 0;
  PQclear(r);
  if (never) {
    spine_err first;
    spine_err_clear(&first);
    int loaded;
    rc = spine_intake_manifests_reload(c, "first use", 1, keep_first, &first, &loaded, e);
    if (rc == SPINE_EINVAL && first.code) *e = first;
    if (rc) return rc;
  }
  const char *p[1] = {process};
  if ((rc = exec(c, "SELECT path, body FROM spine.manifests WHERE process = $1", 1, p, &r, e)))
    return rc;
  if (PQntuples(r) == 1)
    rc = spine_manifest_parse(PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
                              (size_t)PQgetlength(r, 0, 1), out, e);
  PQclear(r);
  return rc;
}

/* The subject key: the input field's value (a string, or an integer as text), pushed nothing. */
static int subject_of(lua_State *L, int input, const spine_manifest *m, char **out, spine_err *e) {
  char field[96];
  snprintf(field, sizeof field, "input.%s", m->subject);
  lua_getfield(L, input, m->subject);
  if (lua_type(L, -1) == LUA_TSTRING || lua_isinteger(L, -1)) {
    const char *s = lua_tostring(L, -1);
    *out = strdup(s);
  } else {
    spine_err_set(e, SPINE_EINVAL, m->path, field,
                  "the subject key is missing (give it in the input or with --subject)");
  }
  lua_pop(L, 1);
  return *out ? 0 : SPINE_EINVAL;
}

int spine_intake_route_case(const spine_manifest *m, const char *input_json,
                            const char *subject_opt, spine_route *route, char **subject,
                            spine_err *e) {
  *subject = NULL;
  lua_State *L = spine_sandbox_new_state(64 << 20);
  if (!L) return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  int rc = spine_codec_decode(L, input_json, strlen(input_json), e);
  if (rc)
    spine_err_set(e, SPINE_EINVAL, NULL, "input", "not JSON: %s", e->msg);
  else if (!lua_istable(L, -1))
    rc = spine_err_set(e, SPINE_EINVAL, NULL, "input", "must be a JSON object");
  if (!rc) {
    int input = lua_gettop(L);
    /* The manifest's schema as a playbook declares input, to check it the same way. */
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, m->ninput);
    for (int i = 0; i < m->ninput; i++) {
      lua_pushstring(L, m->input[i].type);
      lua_setfield(L, -2, m->input[i].name);
    }
    lua_setfield(L, -2, "input");
    rc = spine_playbook_check_input(L, -1, input, m->path, e);
    if (!rc && subject_opt) *subject = strdup(subject_opt);
    if (!rc && !subject_opt) rc = subject_of(L, input, m, subject, e);
  }
  lua_close(L);
  if (!rc && !*subject) rc = spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  if (!rc) spine_dispatch_route(m, *subject, route);
  return rc;
}

/* Compiles the playbook and checks the input against its declaration; *name is its name. */
static int check_playbook(const spine_playbook_src *src, const char *input, char **name,
                          spine_err *e) {
  lua_State *L = spine_sandbox_new_state(256 << 20);
  if (!L) return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  int rc = spine_playbook_compile(L, src->source, src->len, src->path, 50000000, e);
  if (!rc) {
    rc = spine_codec_decode(L, input, strlen(input), e);
    if (!rc && !lua_istable(L, -1))
      rc = spine_err_set(e, SPINE_EINVAL, NULL, "input", "must be a JSON object");
    else if (rc)
      spine_err_set(e, SPINE_EINVAL, NULL, "input", "%s", e->msg);
    if (!rc) rc = spine_playbook_check_input(L, -2, -1, src->path, e);
    if (!rc) {
      lua_getfield(L, -2, "name");
      const char *n = lua_tostring(L, -1);
      *name = strdup(n ? n : src->path);
      if (!*name) rc = spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
    }
  }
  lua_close(L);
  return rc;
}

int spine_intake_start_case(PGconn *c, const spine_intake_case *req, char id_out[40],
                            const char **code, spine_err *e) {
  *code = NULL;
  id_out[0] = '\0';
  const char *input = req->input ? req->input : "{}";
  spine_manifest *m = NULL;
  spine_route route = {0};
  char *subject = NULL, *name = NULL;
  const char *playbook = req->process;
  spine_playbook_src src;
  memset(&src, 0, sizeof src);
  int rc = 0;
  /* The dispatcher: a manifest in force for the process picks the variant and its playbook. */
  /* a process name, not a file path: the dispatcher may have a manifest for it */
  if (!spine_playbook_is_path(req->process))
    rc = spine_intake_manifest_in_force(c, req->process, &m, e);
  if (!rc && m) rc = spine_intake_route_case(m, input, req->subject, &route, &subject, e);
  if (!rc) {
    if (m)
      playbook = route.variant->playbook;
    else if (req->subject && !(subject = strdup(req->subject)))
      rc = spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  }
  if (!rc && (rc = spine_playbook_read(playbook, spine_intake_playbooks_dir(), &src, e)))
    *code = "not_found";
  if (!rc) rc = check_playbook(&src, input, &name, e);
  PGresult *r = NULL;
  char id[37] = "";
  if (!rc) {
    char trace[33], bucket[16] = "";
    spine_uuid_ordered(id);
    if (req->trace && strlen(req->trace) < sizeof trace)
      snprintf(trace, sizeof trace, "%s", req->trace);
    else
      spine_uuid_trace_id(trace);
    char max_ms[24] = "";
    if (m) snprintf(bucket, sizeof bucket, "%d", route.bucket);
    if (m && m->max_duration)
      snprintf(max_ms, sizeof max_ms, "%lld", (long long)m->max_duration_ms);
    const char *params[16] = {id,
                              m ? m->process : name,
                              name,
                              src.hash,
                              input,
                              trace,
                              req->key,
                              m ? route.variant->name : NULL,
                              m ? m->experiment : NULL,
                              subject,
                              m ? bucket : NULL,
                              src.path,
                              src.source,
                              m ? m->max_duration : NULL,
                              max_ms[0] ? max_ms : NULL,
                              m ? route.variant->params : NULL};
    /* One statement: the version, the row (or the one this key already started), the notify. */
    r = spine_pgconn_query(c,
                           "SELECT spine.start_workflow($1, $2, $3, $4, $5, $6,"
                           " idempotency_key => $7, variant => $8, experiment => $9,"
                           " subject => $10, bucket => $11, path => $12, source => $13,"
                           " max_duration => $14, max_duration_ms => $15, params => $16)",
                           16, params, e);
    if (!r) rc = SPINE_EDB;
  }
  if (!rc && PQgetisnull(r, 0, 0))
    rc = spine_err_set(e, SPINE_EDB, "database", NULL, "the idempotency key's workflow is gone");
  if (!rc) snprintf(id_out, 40, "%s", PQgetvalue(r, 0, 0));
  if (!rc && req->existing) *req->existing = strcmp(id_out, id) != 0;
  if (r) PQclear(r);
  free(name);
  free(subject);
  spine_manifest_free(m);
  spine_playbook_src_free(&src);
  return rc;
}
