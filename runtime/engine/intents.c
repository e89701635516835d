/* The intent registry (intents.h): a fixed table filled at start, read-only afterwards. The
 * engine knows no intent by name: the catalog that fills it is the domain's (intents/). */
#include "intents.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INTENTS 128

static const spine_intent *registry[MAX_INTENTS];
static int nintents;
static int initialised;
static void (*catalog)(void); /* registers the domain's intents: the executable sets it */

void spine_intents_register(const spine_intent *intent) {
  if (nintents == MAX_INTENTS) abort(); /* raise MAX_INTENTS */
  registry[nintents++] = intent;
  if (intent->prepare) intent->prepare();
}

void spine_intents_set_catalog(void (*register_all)(void)) {
  catalog = register_all;
}

void spine_intents_init(void) {
  if (initialised) return;
  initialised = 1;
  if (catalog) catalog();
}

const spine_intent *spine_intents_find(const char *name) {
  for (int i = 0; i < nintents; i++)
    if (!strcmp(registry[i]->name, name)) return registry[i];
  return NULL;
}

const spine_intent *spine_intents_at(int i) {
  return i >= 0 && i < nintents ? registry[i] : NULL;
}

int spine_intents_statement(const char *sql) {
  return spine_store_statement(sql);
}

/* A result statement's form that also records the step (spine_intents_recorded). */
typedef struct recorded {
  int stmt, recorded, nparams;
} recorded;

static recorded recorded_forms[MAX_INTENTS * 4];
static int nrecorded;

/* The highest $n in `sql`: the parameters the intent's statement takes ($1 … $n, all used). */
static int max_param(const char *sql) {
  int max = 0;
  for (const char *p = sql; (p = strchr(p, '$'));) {
    int n = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
      n = n * 10 + (*p - '0');
    if (n > max) max = n;
  }
  return max;
}

static char *format_owned(const char *fmt, ...) SPINE_PRINTF(1, 2);

static char *format_owned(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *out = n < 0 ? NULL : malloc((size_t)n + 1);
  if (!out) abort();
  va_start(ap, fmt);
  vsnprintf(out, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return out; /* lives as long as the process */
}

/* The merged form of an intent step (store.h, spine_store_statement_merged): the intent's set
 * form over the arrays of many ops' parameters, the steps' rows, and a row per op back — its
 * result as the step's row holds it (j: r's results as jsonb, made once), by ord (no join of
 * the rows written back to v), once spine.merged_rows has seen a step's row for every call. */
static char *merged_text(const char *set_ctes, int n) {
  spine_buf b = SPINE_BUF_INIT;
  int rc = spine_buf_puts(&b, "WITH v AS (SELECT * FROM unnest(");
  for (int k = 1; k <= n; k++)
    rc |= spine_buf_printf(&b, "$%d::text[], ", k);
  rc |= spine_buf_printf(&b,
                         "$%d::text[], $%d::int[], $%d::text[], $%d::text[], $%d::int[],"
                         " $%d::int8[]) WITH ORDINALITY AS v(",
                         n + 1, n + 2, n + 3, n + 4, n + 5, n + 6);
  for (int k = 1; k <= n; k++)
    rc |= spine_buf_printf(&b, "p%d, ", k);
  rc |= spine_buf_printf(
      &b,
      "w, s, n, b, bs, t, ord)), %s, j AS (SELECT r.ord, coalesce(r.result::text, 'null')::jsonb"
      " AS result FROM r), i AS (INSERT INTO spine.steps (workflow_id, seq, kind, name, status,"
      " result, attempt, started_at, ended_at, branch, branch_seq) SELECT v.w, v.s, 'intent', v.n,"
      " 'completed', j.result, 1, to_timestamp(v.t::float8 / 1000), to_timestamp(v.t::float8 /"
      " 1000), v.b, v.bs FROM v JOIN j ON j.ord = v.ord RETURNING 1) SELECT j.result, j.ord FROM j"
      " WHERE spine.merged_rows(cardinality($%d::text[]), (SELECT count(*) FROM i))",
      set_ctes, n + 1);
  if (rc) abort();
  return b.data; /* lives as long as the process */
}

static int result_statement(const char *sql, const char *set_ctes) {
  /* The checkpoint that follows reads the result back from this transaction-local setting:
   * a pipeline cannot pass one statement's output as the next one's parameter. Operators'
   * intents (spine_store_exec) take this form. */
  int id = spine_store_statement(
      format_owned("WITH r AS (%s) SELECT set_config('spine.result', coalesce((SELECT * FROM r)"
                   "::text, 'null'), true)",
                   sql));
  /* A playbook's intent step is one statement: the intent's SQL and the step's row together
   * (the step's parameters after the intent's), its result read back from the row. */
  int n = max_param(sql);
  if (nrecorded < (int)(sizeof recorded_forms / sizeof recorded_forms[0])) {
    char *text = format_owned(
        "WITH r AS (%s), s AS (INSERT INTO spine.steps (workflow_id, seq, kind, name, status,"
        " result, attempt, started_at, ended_at, branch, branch_seq) SELECT $%d::text, $%d::int,"
        " 'intent', $%d::text, 'completed', coalesce((SELECT * FROM r)::text, 'null')::jsonb, 1,"
        " to_timestamp($%d::int8::float8 / 1000), to_timestamp($%d::int8::float8 / 1000),"
        " $%d::text, $%d::int RETURNING result) SELECT result FROM s",
        sql, n + 1, n + 2, n + 3, n + 6, n + 6, n + 4, n + 5);
    int rec = spine_store_statement(text);
    /* Many workflows' steps of this intent in one batch: one statement (store.h). */
    if (set_ctes) spine_store_statement_merged(rec, merged_text(set_ctes, n));
    recorded_forms[nrecorded++] = (recorded){id, rec, n};
  }
  return id;
}

int spine_intents_result_statement(const char *sql) {
  return result_statement(sql, NULL);
}

int spine_intents_result_set_statement(const char *sql, const char *set_ctes) {
  return result_statement(sql, set_ctes);
}

int spine_intents_recorded(int stmt, int nparams) {
  for (int i = 0; i < nrecorded; i++)
    if (recorded_forms[i].stmt == stmt)
      return recorded_forms[i].nparams == nparams ? recorded_forms[i].recorded : -1;
  return -1;
}

const char *spine_intent_arg_string(spine_intent_call *c, const char *field, int required,
                                    spine_err *e) {
  lua_State *L = c->L;
  int t = lua_getfield(L, c->args, field);
  const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the string stays alive: the args table holds it */
  if (t == LUA_TNIL && !required) return NULL;
  if (!s)
    spine_err_set(e, SPINE_EINVAL, NULL, field,
                  t == LUA_TNIL ? "missing (expected a string)" : "expected a string, got %s",
                  lua_typename(L, t));
  return s;
}

int spine_intent_arg_int(spine_intent_call *c, const char *field, int required, long long *out,
                         spine_err *e) {
  lua_State *L = c->L;
  int t = lua_getfield(L, c->args, field);
  int ok = 0;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  lua_pop(L, 1);
  if (t == LUA_TNIL && !required) return 1;
  if (!ok)
    return spine_err_set(e, SPINE_EINVAL, NULL, field,
                         t == LUA_TNIL ? "missing (expected an integer)"
                                       : "expected an integer, got %s",
                         lua_typename(L, t));
  *out = (long long)v;
  return 0;
}

int spine_intents_field(const char *schema, int i, spine_intent_field *out) {
  const char *p = schema;
  for (; i > 0 && p; i--) {
    p = strchr(p, ',');
    if (p) p++;
  }
  if (!p) return 0;
  while (*p == ' ')
    p++;
  const char *colon = strchr(p, ':');
  if (!*p || !colon) return 0;
  const char *end = strchr(colon, ',');
  if (!end) end = colon + strlen(colon);
  snprintf(out->name, sizeof out->name, "%.*s", (int)(colon - p), p);
  const char *t = colon + 1;
  while (*t == ' ')
    t++;
  size_t tlen = (size_t)(end - t);
  out->required = !(tlen && t[tlen - 1] == '?');
  if (!out->required) tlen--;
  snprintf(out->type, sizeof out->type, "%.*s", (int)tlen, t);
  return 1;
}
