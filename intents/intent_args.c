/* Argument schemas of the intent catalog (intent_args.h): parsing, checking, and the call of the
 * intent's SQL function. Reads the Lua arguments table; never raises, never calls Lua code. */
#include "intent_args.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "duration.h"

static int is_date(const char *s) {
  static const char shape[] = "dddd-dd-dd";
  for (int i = 0; shape[i]; i++) {
    if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i]) return 0;
  }
  return 1;
}

static int bad(spine_err *e, const char *field, const char *msg, const char *got) {
  return spine_err_set(e, SPINE_EINVAL, NULL, field, "%s%s%s", got ? "got " : "", got ? got : "",
                       msg);
}

/* Checks a string value of `type` (not address/object/integer kinds). */
static int check_text(const char *field, const char *type, const char *s, size_t len,
                      spine_err *e) {
  if (len == 0) return bad(e, field, "must not be empty", NULL);
  if (!strcmp(type, "id")) {
    if (len > 100) return bad(e, field, "longer than 100 bytes", NULL);
    for (size_t i = 0; i < len; i++)
      if (isspace((unsigned char)s[i]) || iscntrl((unsigned char)s[i]))
        return bad(e, field, "must not contain spaces or control characters", NULL);
    return 0;
  }
  if (len > 2000) return bad(e, field, "longer than 2000 bytes", NULL);
  if (!strcmp(type, "string")) return 0;
  if (!strcmp(type, "date"))
    return len == 10 && is_date(s) ? 0 : bad(e, field, "not a date (expected YYYY-MM-DD)", NULL);
  if (!strcmp(type, "time"))
    return len >= 10 && is_date(s) ? 0 : bad(e, field, "not an ISO 8601 time", NULL);
  if (!strcmp(type, "deadline")) { /* the SQL side adds a duration to now (spine.now()) */
    int64_t ms;
    if (len >= 10 && is_date(s)) return 0;
    if (isalpha((unsigned char)s[len - 1]) && !spine_duration_parse(s, &ms, NULL)) return 0;
    return bad(e, field,
               "not a time (ISO 8601, as 2026-12-01T09:00:00Z) or a duration from now (as"
               " \"14d\", \"36h\")",
               NULL);
  }
  if (!strcmp(type, "email")) {
    const char *at = strchr(s, '@');
    int ok = at && at != s && strchr(at + 1, '.') && !strchr(at + 1, '@') && len <= 254 &&
             s[len - 1] != '.';
    for (size_t i = 0; ok && i < len; i++)
      if (isspace((unsigned char)s[i])) ok = 0;
    return ok ? 0 : bad(e, field, "not an email address (expected name@domain)", NULL);
  }
  if (!strcmp(type, "currency")) {
    int ok = len == 3;
    for (size_t i = 0; ok && i < 3; i++)
      if (!isupper((unsigned char)s[i])) ok = 0;
    return ok ? 0 : bad(e, field, "not a currency (expected three capitals, as EUR)", NULL);
  }
  if (strchr(type, '|')) { /* an enumeration */
    for (const char *p = type; *p;) {
      const char *bar = strchr(p, '|');
      size_t n = bar ? (size_t)(bar - p) : strlen(p);
      if (n == len && !strncmp(p, s, n)) return 0;
      p += n + (bar ? 1 : 0);
    }
    return spine_err_set(e, SPINE_EINVAL, NULL, field, "\"%.40s\" is not one of %s", s, type);
  }
  return spine_err_set(e, SPINE_EINVAL, NULL, field, "unknown type %s in the schema", type);
}

static int check_address(lua_State *L, int t, const char *field, spine_err *e) {
  static const char schema[] = "street: string, postcode: string, city: string, country: id?";
  char path[64];
  snprintf(path, sizeof path, "%s", field);
  int rc = spine_intent_args_check(L, t, schema, e);
  if (rc && e) {
    char inner[64];
    snprintf(inner, sizeof inner, "%s", e->field);
    snprintf(e->field, sizeof e->field, "%.30s.%.30s", path, inner);
  }
  return rc;
}

/* Checks the value on top of the stack against `type`. */
static int check_value(lua_State *L, const char *field, const char *type, spine_err *e) {
  int t = lua_type(L, -1);
  if (!strcmp(type, "integer") || !strcmp(type, "cents")) {
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || t != LUA_TNUMBER)
      return spine_err_set(e, SPINE_EINVAL, NULL, field, "expected an integer, got %s",
                           t == LUA_TNUMBER ? "a fraction" : lua_typename(L, t));
    if (!strcmp(type, "cents") && v <= 0)
      return spine_err_set(e, SPINE_EINVAL, NULL, field,
                           "must be a positive number of cents, got %lld", (long long)v);
    return 0;
  }
  if (!strcmp(type, "object") || !strcmp(type, "address")) {
    if (t != LUA_TTABLE)
      return spine_err_set(e, SPINE_EINVAL, NULL, field, "expected an object, got %s",
                           lua_typename(L, t));
    return strcmp(type, "address") ? 0 : check_address(L, lua_gettop(L), field, e);
  }
  if (t != LUA_TSTRING)
    return spine_err_set(e, SPINE_EINVAL, NULL, field, "expected a string (%s), got %s", type,
                         lua_typename(L, t));
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  return check_text(field, type, s, len, e);
}

/* Is `key` (len bytes) a field of `schema`? */
static int in_schema(const char *schema, const char *key, size_t len) {
  spine_intent_field f;
  for (int i = 0; spine_intents_field(schema, i, &f); i++)
    if (strlen(f.name) == len && !memcmp(f.name, key, len)) return 1;
  return 0;
}

int spine_intent_args_check(lua_State *L, int args, const char *schema, spine_err *e) {
  args = lua_absindex(L, args);
  if (!lua_checkstack(L, 4)) return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "Lua stack full");
  lua_pushnil(L);
  while (lua_next(L, args)) {
    lua_pop(L, 1);
    size_t len = 0;
    const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (!key || !in_schema(schema, key, len)) {
      char name[48];
      snprintf(name, sizeof name, "%.*s", key ? (int)(len < 40 ? len : 40) : 1, key ? key : "?");
      lua_pop(L, 1);
      return spine_err_set(e, SPINE_EINVAL, NULL, name, "unknown argument (expected: %s)", schema);
    }
  }
  spine_intent_field f;
  for (int i = 0; spine_intents_field(schema, i, &f); i++) {
    int t = lua_getfield(L, args, f.name);
    int rc = 0;
    if (t == LUA_TNIL) {
      if (f.required)
        rc = spine_err_set(e, SPINE_EINVAL, NULL, f.name, "missing (expected %s)", f.type);
    } else {
      rc = check_value(L, f.name, f.type, e);
    }
    lua_pop(L, 1);
    if (rc) return rc;
  }
  return 0;
}

int spine_intent_args_statement(const char *fn) {
  char sql[200], set[300];
  snprintf(sql, sizeof sql,
           "SELECT lifecycle.%s($1::jsonb, lifecycle.meta($2, $3, $4, $5::int, $6))", fn);
  /* The calls of a batch's workflows, one after the other in one statement (intents.h). */
  snprintf(set, sizeof set,
           "r AS (SELECT v.ord, lifecycle.%s(v.p1::jsonb, lifecycle.meta(v.p2, v.p3, v.p4,"
           " v.p5::int, v.p6)) AS result FROM v ORDER BY v.ord)",
           fn);
  return spine_intents_result_set_statement(sql, set);
}

/* The rows an intent locks belong to the first of these it names: the customer (credits,
 * contracts created), else the contract, the task's subject, the task. The store sends every
 * op of one key through one connection, so intents on one key never deadlock each other. */
static void lock_key(spine_intent_call *c) {
  static const char *const fields[] = {"customer_id", "contract_id", "subject", "task_id",
                                       "meter_point_id"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    lua_pushstring(c->L, fields[i]);
    lua_rawget(c->L, c->args);
    size_t len;
    const char *v = lua_type(c->L, -1) == LUA_TSTRING ? lua_tolstring(c->L, -1, &len) : NULL;
    if (v) spine_op_key(c->op, v, len);
    lua_pop(c->L, 1);
    if (v) return;
  }
}

int spine_intent_args_apply(spine_intent_call *c, const char *intent, const char *schema, int stmt,
                            spine_err *e) {
  int rc = spine_intent_args_check(c->L, c->args, schema, e);
  if (rc) return rc;
  spine_buf json = SPINE_BUF_INIT;
  rc = spine_codec_encode(c->L, c->args, "args", &json, e);
  if (rc) {
    spine_buf_free(&json);
    return rc;
  }
  lock_key(c);
  spine_op_stmt(c->op, stmt, 0);
  spine_op_param(c->op, spine_buf_str(&json));
  spine_op_param(c->op, intent);
  spine_op_param(c->op, c->actor);
  spine_op_param(c->op, c->workflow_id);
  if (c->workflow_id)
    spine_op_param_int(c->op, c->seq);
  else
    spine_op_param(c->op, NULL);
  spine_op_param(c->op, c->trace_id);
  spine_buf_free(&json);
  return 0;
}
