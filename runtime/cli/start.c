/* `spine start PROCESS`: stores a case (its playbook version and a pending workflow) and
 * notifies the workers; prints its id at once. The same --idempotency-key never starts two. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "codec.h"
#include "log.h"
#include "playbook.h"
#include "sandbox.h"
#include "uuid.h"

static const char *const spec[] = {"input=", "subject=", "idempotency-key=", "json", NULL};
static const char usage[] =
    "usage: spine start PROCESS [--input JSON] [--subject KEY] [--idempotency-key K] [--json]\n"
    "  Stores a new case of PROCESS (until manifests exist: a playbook name or file) and\n"
    "  prints its workflow id. A running `spine serve` on the same database runs it.\n";

/* Compiles the playbook and checks the input against its declaration. */
static int check(const spine_playbook_src *src, const char *input, char **name, spine_err *e) {
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
    }
  }
  lua_close(L);
  return rc;
}

int spine_cli_start(int argc, char **argv) {
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 1, 1, &a);
  if (rc) return rc < 0 ? 0 : rc;
  int json = spine_cli__opt(&a, spec, "json") != NULL;
  const char *input = spine_cli__opt(&a, spec, "input");
  const char *key = spine_cli__opt(&a, spec, "idempotency-key");
  if (!input) input = "{}";
  spine_err e;
  spine_err_clear(&e);
  spine_playbook_src src;
  if (spine_playbook_read(a.pos[0], getenv("SPINE_PLAYBOOKS"), &src, &e))
    return spine_cli__fail(json, &e, "not_found");
  char *name = NULL;
  if (check(&src, input, &name, &e)) {
    spine_playbook_src_free(&src);
    return spine_cli__fail(json, &e, NULL);
  }
  PGconn *c = spine_cli__connect(&e);
  if (!c) {
    free(name);
    spine_playbook_src_free(&src);
    return spine_cli__fail(json, &e, NULL);
  }
  char id[37], trace[33];
  spine_uuid(id);
  spine_trace_id(trace);
  char len[24];
  snprintf(len, sizeof len, "%zu", src.len);
  (void)len;
  const char *params[8] = {src.hash, name, src.path, src.source, id, input, trace, key};
  /* One statement: the version, the row (or the one this key already started), the notify. */
  PGresult *r = spine_cli__query(
      c,
      "WITH v AS (INSERT INTO spine.playbook_versions (hash, name, path, source)"
      " VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING),"
      " w AS (INSERT INTO spine.workflows (id, process, playbook, version, status, input,"
      " trace_id, wake_at, idempotency_key) VALUES ($5, $2, $2, $1, 'pending', $6, $7, now(), $8)"
      " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)"
      " SELECT id, pg_notify('spine', 'w') FROM w",
      8, params, &e);
  int status = SPINE_EXIT_OK;
  const char *out_id = id;
  PGresult *r2 = NULL;
  if (!r) {
    status = spine_cli__fail(json, &e, NULL);
  } else if (PQntuples(r) == 0) {
    /* The key was used: answer with the workflow it started. */
    const char *kp[1] = {key};
    r2 =
        spine_cli__query(c, "SELECT id FROM spine.workflows WHERE idempotency_key = $1", 1, kp, &e);
    if (!r2 || PQntuples(r2) != 1)
      status = spine_cli__fail(json, &e, NULL);
    else
      out_id = PQgetvalue(r2, 0, 0);
  }
  if (status == SPINE_EXIT_OK) {
    if (json) { /* the workflow as `spine show --json` prints it */
      const char *wp[1] = {out_id};
      PGresult *w = spine_cli__query(c, spine_cli__workflow_sql, 1, wp, &e);
      if (w && PQntuples(w) == 1)
        printf("%s\n", PQgetvalue(w, 0, 0));
      else
        status = spine_cli__fail(json, &e, NULL);
      if (w) PQclear(w);
    } else {
      printf("%s\n", out_id);
    }
  }
  if (r) PQclear(r);
  if (r2) PQclear(r2);
  PQfinish(c);
  free(name);
  spine_playbook_src_free(&src);
  return status;
}
