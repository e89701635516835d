/* `spine start PROCESS`: stores a case (its playbook version and a pending workflow) and
 * notifies the workers; prints its id at once. The same --idempotency-key never starts two. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "codec.h"
#include "intake.h"
#include "log.h"
#include "playbook.h"
#include "sandbox.h"
#include "uuid.h"

static const char *const spec[] = {"input=", "subject=", "idempotency-key=", "json", NULL};
static const char usage[] =
    "usage: spine start PROCESS [--input JSON] [--subject KEY] [--idempotency-key K] [--json]\n"
    "  Stores a new case of PROCESS and prints its workflow id; a running `spine serve` on the\n"
    "  same database runs it. With a manifest in force for PROCESS, the dispatcher checks the\n"
    "  input against it and picks the variant by the subject key (--subject, else the input's\n"
    "  subject field); else PROCESS is a playbook name or file. The same --idempotency-key\n"
    "  never starts two workflows.\n";

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

/* A process name, not a file path: the dispatcher may have a manifest for it. */
static int is_name(const char *s) {
  size_t n = strlen(s);
  return !strchr(s, '/') && !(n > 4 && !strcmp(s + n - 4, ".lua"));
}

int spine_cli_start(int argc, char **argv) {
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 1, 1, &a);
  if (rc) return rc < 0 ? 0 : rc;
  int json = spine_cli__opt(&a, spec, "json") != NULL;
  const char *input = spine_cli__opt(&a, spec, "input");
  const char *key = spine_cli__opt(&a, spec, "idempotency-key");
  const char *subject_opt = spine_cli__opt(&a, spec, "subject");
  if (!input) input = "{}";
  spine_err e;
  spine_err_clear(&e);
  PGconn *c = spine_cli__connect(&e);
  if (!c) return spine_cli__fail(json, &e, NULL);
  /* The dispatcher: a manifest in force for PROCESS picks the variant and its playbook. */
  spine_manifest *m = NULL;
  spine_route route = {0};
  char *subject = NULL;
  const char *playbook = a.pos[0];
  if (is_name(a.pos[0]) && spine_cli__manifest_in_force(c, a.pos[0], &m, &e)) {
    PQfinish(c);
    return spine_cli__fail(json, &e, NULL);
  }
  if (m && spine_cli__route_case(m, input, subject_opt, &route, &subject, &e)) {
    spine_manifest_free(m);
    PQfinish(c);
    return spine_cli__fail(json, &e, NULL);
  }
  if (m)
    playbook = route.variant->playbook;
  else if (subject_opt)
    subject = strdup(subject_opt);
  spine_playbook_src src;
  if (spine_playbook_read(playbook, spine_cli__playbooks_dir(), &src, &e)) {
    spine_manifest_free(m);
    free(subject);
    PQfinish(c);
    return spine_cli__fail(json, &e, "not_found");
  }
  char *name = NULL;
  if (check(&src, input, &name, &e)) {
    spine_manifest_free(m);
    free(subject);
    spine_playbook_src_free(&src);
    PQfinish(c);
    return spine_cli__fail(json, &e, NULL);
  }
  char id[37], trace[33], bucket[16] = "";
  spine_uuid(id);
  spine_trace_id(trace);
  if (m) snprintf(bucket, sizeof bucket, "%d", route.bucket);
  const char *process = m ? m->process : name;
  const char *params[13] = {src.hash,
                            name,
                            src.path,
                            src.source,
                            id,
                            input,
                            trace,
                            key,
                            process,
                            m ? route.variant->name : NULL,
                            m ? m->experiment : NULL,
                            subject,
                            m ? bucket : NULL};
  /* One statement: the version, the row (or the one this key already started), the notify. */
  PGresult *r = spine_cli__query(
      c,
      "WITH v AS (INSERT INTO spine.playbook_versions (hash, name, path, source)"
      " VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING),"
      " w AS (INSERT INTO spine.workflows (id, process, playbook, version, status, input,"
      " trace_id, wake_at, idempotency_key, variant, experiment, subject, bucket)"
      " VALUES ($5, $9, $2, $1, 'pending', $6, $7, spine.now(), $8, $10, $11, $12, $13::int)"
      " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, variant, experiment)"
      " SELECT id, variant, experiment, pg_notify('spine', 'w') FROM w",
      13, params, &e);
  int status = SPINE_EXIT_OK;
  PGresult *r2 = NULL, *row = r;
  if (!r) {
    status = spine_cli__fail(json, &e, NULL);
  } else if (PQntuples(r) == 0) {
    /* The key was used: answer with the workflow it started. */
    const char *kp[1] = {key};
    r2 = spine_cli__query(
        c, "SELECT id, variant, experiment FROM spine.workflows WHERE idempotency_key = $1", 1, kp,
        &e);
    if (!r2 || PQntuples(r2) != 1) status = spine_cli__fail(json, &e, NULL);
    row = r2;
  }
  if (status == SPINE_EXIT_OK) {
    const char *out_id = PQgetvalue(row, 0, 0);
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
  free(subject);
  spine_manifest_free(m);
  spine_playbook_src_free(&src);
  return status;
}
