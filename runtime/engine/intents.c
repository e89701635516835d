/* The intent registry (intents.h): a fixed table filled at start, read-only afterwards. The
 * engine knows no intent by name: the catalog that fills it is the domain's (intents/). */
#include "intents.h"

#include <lauxlib.h>
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

int spine_intents_result_statement(const char *sql) {
  /* The checkpoint that follows reads the result back from this transaction-local setting:
   * a pipeline cannot pass one statement's output as the next one's parameter. */
  size_t n = strlen(sql) + 128;
  char *wrapped = malloc(n);
  if (!wrapped) abort();
  snprintf(wrapped, n,
           "WITH r AS (%s) SELECT set_config('spine.result', coalesce((SELECT * FROM r)::text,"
           " 'null'), true)",
           sql);
  return spine_store_statement(wrapped); /* lives as long as the process */
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
