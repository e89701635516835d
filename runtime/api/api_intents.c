/* The intent catalog as JSON, and one intent applied by an operator (api_intents.h). */
#include "api_intents.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "intents.h"
#include "log.h"
#include "op.h"
#include "pgconn.h"
#include "store.h"

static void json_str(spine_buf *b, const char *s) {
  spine_log_json_string(b, s, strlen(s));
}

/* "[{name, type, required}...]" of a schema (NULL: none). */
static void json_fields(spine_buf *b, const char *schema) {
  spine_buf_putc(b, '[');
  spine_intent_field f;
  for (int k = 0; schema && spine_intents_field(schema, k, &f); k++) {
    spine_buf_puts(b, k ? ",{\"name\":" : "{\"name\":");
    json_str(b, f.name);
    spine_buf_puts(b, ",\"type\":");
    json_str(b, f.type);
    spine_buf_printf(b, ",\"required\":%s}", f.required ? "true" : "false");
  }
  spine_buf_putc(b, ']');
}

void spine_api_intents_catalog(const char *items_key, spine_buf *b) {
  spine_buf_putc(b, '{');
  json_str(b, items_key);
  spine_buf_puts(b, ":[");
  for (int i = 0; spine_intents_at(i); i++) {
    const spine_intent *in = spine_intents_at(i);
    spine_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
    json_str(b, in->name);
    spine_buf_puts(b, ",\"description\":");
    json_str(b, in->description);
    spine_buf_puts(b, ",\"schema\":");
    json_str(b, in->args ? in->args : "");
    spine_buf_puts(b, ",\"args\":");
    json_fields(b, in->args);
    if (in->result) {
      spine_buf_puts(b, ",\"result\":");
      json_fields(b, in->result);
    }
    spine_buf_putc(b, '}');
  }
  spine_buf_puts(b, "]}");
}

/* What an operator may not do that a playbook may: answer a task outside its kind's form (a
 * playbook closes a task it opened with an outcome of its own, "expired"). The check locks the
 * task, in the transaction ResolveTask then commits in. */
static int operator_check(PGconn *c, const char *name, const char *args, const char *actor,
                          spine_err *e) {
  if (strcmp(name, "ResolveTask")) return 0;
  const char *p[2] = {args, actor};
  PGresult *r = spine_pgconn_query(c,
                                   "SELECT lifecycle.task_check_answer($1::jsonb ->> 'task_id',"
                                   " $1::jsonb ->> 'outcome', coalesce($1::jsonb -> 'data',"
                                   " '{}'), $2)",
                                   2, p, e);
  if (!r) {
    if (!strcmp(e->field, "id")) snprintf(e->field, sizeof e->field, "task_id"); /* its name here */
    return e->code;
  }
  PQclear(r);
  return 0;
}

int spine_api_intents_apply(PGconn *c, const char *name, const char *args, const char *actor,
                            const char *trace_id, spine_buf *out, spine_err *e) {
  const spine_intent *in = spine_intents_find(name);
  if (!in)
    return spine_err_set(e, SPINE_ENOTFOUND, NULL, "name",
                         "no intent named \"%.64s\" (see spine intents)", name);
  if (!args) args = "{}";
  lua_State *L = luaL_newstate();
  if (!L) return spine_err_set(e, SPINE_EDB, NULL, NULL, "out of memory");
  int rc = spine_codec_decode(L, args, strlen(args), e);
  if (rc || !lua_istable(L, 1)) {
    lua_close(L);
    return spine_err_set(e, SPINE_EINVAL, NULL, "args", "args must be a JSON object");
  }
  spine_op op;
  spine_op_init(&op);
  spine_intent_call call = {L, 1, &op, NULL, 0, actor, trace_id};
  rc = in->apply(&call, e); /* checks the arguments; adds nothing on failure */
  lua_close(L);
  PGresult *r = NULL;
  spine_pgconn_unit u;
  if (!rc && !(rc = spine_pgconn_begin(c, &u, e))) {
    if (!(rc = operator_check(c, name, args, actor, e))) rc = spine_store_exec(c, &op, &r, e);
    int end = spine_pgconn_end(c, &u, !rc, e);
    if (!rc) rc = end;
  }
  spine_op_free(&op);
  if (rc) {
    PQclear(r);
    if (e && !e->code) e->code = rc;
    return rc == SPINE_EREJECTED ? (e->code = SPINE_EINVAL) : rc;
  }
  /* The last statement is the intent's result statement: it returns the result it records. */
  if (PQntuples(r) == 1 && PQnfields(r) >= 1 && !PQgetisnull(r, 0, 0))
    spine_buf_puts(out, PQgetvalue(r, 0, 0));
  else
    spine_buf_puts(out, "null");
  PQclear(r);
  return 0;
}
