/* providers.json: parsed with jsondoc (so every error has its line), checked field by field,
 * then one entry per provider with its environment's block laid over it. Owns the document,
 * the entries and their host lists; p.config tables are built from the document on demand.
 * URLs and hosts are read by http_client's reading of them, the one the transfer uses. */
#include "provconf.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "duration.h"

#define MAX_FILE (1024 * 1024)

static int bad(spine_err *e, const spine_provconf *c, int line, const char *field, const char *fmt,
               ...) SPINE_PRINTF(5, 6);

static int bad(spine_err *e, const spine_provconf *c, int line, const char *field, const char *fmt,
               ...) {
  char where[300], msg[256];
  snprintf(where, sizeof where, "%s:%d", c->path, line);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return spine_err_set(e, SPINE_EINVAL, where, field, "%s", msg);
}

/* The member `key` of the override block, else of the base block. */
static const spine_jsondoc *setting(const spine_provconf_entry *en, const char *key) {
  const spine_jsondoc *v = en->over ? spine_jsondoc_get(en->over, key) : NULL;
  return v ? v : en->base ? spine_jsondoc_get(en->base, key) : NULL;
}

static int duration_of(const spine_jsondoc *v, int64_t *ms) {
  if (v->type == SPINE_JSONDOC_NUMBER) {
    if (!(v->num >= 0 && v->num < 9.2e12)) return -1;
    *ms = (int64_t)(v->num * 1000);
    return 0;
  }
  if (v->type != SPINE_JSONDOC_STRING) return -1;
  return spine_duration_parse(v->str, ms, NULL) ? -1 : 0;
}

/* Checks the fields Spine reads in one provider block (others are the adapter's). */
static int check_block(const spine_provconf *c, const spine_jsondoc *b, const char *prefix,
                       spine_err *e) {
  char field[64];
  if (b->type != SPINE_JSONDOC_OBJECT)
    return bad(e, c, b->line, prefix, "expected an object of settings, got %s",
               spine_jsondoc_type_name(b->type));
  const spine_jsondoc *v;
  int64_t ms;
  if ((v = spine_jsondoc_get(b, "base_url"))) {
    snprintf(field, sizeof field, "%s.base_url", prefix);
    if (v->type != SPINE_JSONDOC_STRING) return bad(e, c, v->line, field, "must be a string");
    spine_http_client_dest d;
    spine_err ue;
    if (spine_http_client_dest_of(v->str, &d, &ue)) return bad(e, c, v->line, field, "%s", ue.msg);
  }
  if ((v = spine_jsondoc_get(b, "allowed_hosts"))) {
    snprintf(field, sizeof field, "%s.allowed_hosts", prefix);
    if (v->type != SPINE_JSONDOC_ARRAY)
      return bad(e, c, v->line, field,
                 "must be a list of hosts p.http may call besides base_url's (\"host\" or "
                 "\"host:port\")");
    int i = 0;
    for (const spine_jsondoc *x = v->child; x; x = x->next, i++) {
      snprintf(field, sizeof field, "%s.allowed_hosts[%d]", prefix, i);
      spine_http_client_host h;
      spine_err he;
      if (x->type != SPINE_JSONDOC_STRING)
        return bad(e, c, x->line, field, "must be a string (\"host\" or \"host:port\")");
      if (spine_http_client_host_parse(x->str, &h, &he))
        return bad(e, c, x->line, field, "%s", he.msg);
    }
  }
  if ((v = spine_jsondoc_get(b, "rate_limit")) &&
      (v->type != SPINE_JSONDOC_NUMBER || !(v->num > 0) || !isfinite(v->num))) {
    snprintf(field, sizeof field, "%s.rate_limit", prefix);
    return bad(e, c, v->line, field, "must be a positive number (requests per second)");
  }
  if ((v = spine_jsondoc_get(b, "timeout")) && (duration_of(v, &ms) || ms <= 0)) {
    snprintf(field, sizeof field, "%s.timeout", prefix);
    return bad(e, c, v->line, field, "must be a duration such as \"20s\"");
  }
  if ((v = spine_jsondoc_get(b, "channels"))) {
    snprintf(field, sizeof field, "%s.channels", prefix);
    if (v->type != SPINE_JSONDOC_ARRAY || v->count == 0)
      return bad(e, c, v->line, field, "must be a non-empty list of channel names");
    for (const spine_jsondoc *x = v->child; x; x = x->next)
      if (x->type != SPINE_JSONDOC_STRING)
        return bad(e, c, x->line, field, "must be a non-empty list of channel names");
  }
  if ((v = spine_jsondoc_get(b, "breaker"))) {
    snprintf(field, sizeof field, "%s.breaker", prefix);
    if (v->type != SPINE_JSONDOC_OBJECT)
      return bad(e, c, v->line, field, "must be {\"failures\": N, \"cooldown\": \"30s\"}");
    for (const spine_jsondoc *x = v->child; x; x = x->next) {
      snprintf(field, sizeof field, "%s.breaker.%s", prefix, x->key);
      if (!strcmp(x->key, "failures")) {
        if (x->type != SPINE_JSONDOC_NUMBER || x->num < 1 || x->num > 1e6 ||
            x->num != floor(x->num))
          return bad(e, c, x->line, field, "must be a whole number of at least 1");
      } else if (!strcmp(x->key, "cooldown")) {
        if (duration_of(x, &ms) || ms <= 0)
          return bad(e, c, x->line, field, "must be a duration such as \"30s\"");
      } else {
        return bad(e, c, x->line, field, "unknown field (expected failures or cooldown)");
      }
    }
  }
  return 0;
}

static int check_smtp(const spine_provconf *c, const spine_jsondoc *s, const char *field,
                      spine_err *e) {
  if (s->type != SPINE_JSONDOC_OBJECT)
    return bad(e, c, s->line, field, "must be {\"url\": \"smtp://host:port\", \"from\": \"...\"}");
  for (const spine_jsondoc *x = s->child; x; x = x->next) {
    if (strcmp(x->key, "url") && strcmp(x->key, "from"))
      return bad(e, c, x->line, field, "unknown field \"%s\" (expected url or from)", x->key);
    if (x->type != SPINE_JSONDOC_STRING || !x->str[0])
      return bad(e, c, x->line, field, "%s must be a non-empty string", x->key);
  }
  return 0;
}

static int add_entry(spine_provconf *c, const char *name, const spine_jsondoc *base,
                     const spine_jsondoc *over) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->entries[i].name, name)) {
      c->entries[i].over = over;
      return 0;
    }
  spine_provconf_entry *en = realloc(c->entries, (size_t)(c->n + 1) * sizeof *en);
  if (!en) return SPINE_ENOMEM;
  c->entries = en;
  en = &c->entries[c->n++];
  memset(en, 0, sizeof *en);
  en->name = name;
  en->base = base;
  en->over = over;
  en->line = (base ? base : over)->line;
  return 0;
}

/* The hosts of an entry, from its (already checked) base_url and allowed_hosts. */
static int settle_hosts(spine_provconf_entry *en) {
  const spine_jsondoc *base = setting(en, "base_url"), *more = setting(en, "allowed_hosts");
  int n = (base ? 1 : 0) + (more ? more->count : 0);
  if (n == 0) return 0;
  if (!(en->hosts = calloc((size_t)n, sizeof *en->hosts))) return SPINE_ENOMEM;
  if (base) {
    spine_http_client_dest d;
    if (spine_http_client_dest_of(base->str, &d, NULL)) return SPINE_EINVAL;
    spine_http_client_host *h = &en->hosts[en->nhosts++];
    snprintf(h->host, sizeof h->host, "%s", d.host);
    h->port = d.port; /* base_url's port only: its other ports are other services */
  }
  for (const spine_jsondoc *x = more ? more->child : NULL; x; x = x->next)
    if (spine_http_client_host_parse(x->str, &en->hosts[en->nhosts++], NULL)) return SPINE_EINVAL;
  return 0;
}

/* The effective numbers of an entry, from its (already checked) blocks. */
static void settle(spine_provconf_entry *en) {
  const spine_jsondoc *v;
  en->rate_limit = (v = setting(en, "rate_limit")) ? v->num : 0;
  if ((v = setting(en, "timeout"))) duration_of(v, &en->timeout_ms);
  en->breaker_failures = SPINE_PROVCONF_BREAKER_FAILURES;
  en->breaker_cooldown_ms = SPINE_PROVCONF_BREAKER_COOLDOWN;
  if ((v = setting(en, "breaker"))) {
    const spine_jsondoc *x;
    if ((x = spine_jsondoc_get(v, "failures"))) en->breaker_failures = (int)x->num;
    if ((x = spine_jsondoc_get(v, "cooldown"))) duration_of(x, &en->breaker_cooldown_ms);
  }
  en->channels = setting(en, "channels");
}

static void smtp_from_block(spine_provconf *c, const spine_jsondoc *s) {
  const spine_jsondoc *v;
  if ((v = spine_jsondoc_get(s, "url"))) c->smtp_url = v->str;
  if ((v = spine_jsondoc_get(s, "from"))) c->smtp_from = v->str;
}

static int check_environments(spine_provconf *c, const spine_jsondoc *envs, const char *environment,
                              spine_err *e) {
  char field[64];
  if (envs->type != SPINE_JSONDOC_OBJECT)
    return bad(e, c, envs->line, "environments", "must be an object of environments");
  for (const spine_jsondoc *env = envs->child; env; env = env->next) {
    snprintf(field, sizeof field, "environments.%s", env->key);
    if (env->type != SPINE_JSONDOC_OBJECT)
      return bad(e, c, env->line, field, "must be an object of provider overrides");
    int chosen = environment && !strcmp(environment, env->key);
    for (const spine_jsondoc *b = env->child; b; b = b->next) {
      snprintf(field, sizeof field, "environments.%s.%s", env->key, b->key);
      int rc = !strcmp(b->key, "smtp") ? check_smtp(c, b, field, e) : check_block(c, b, field, e);
      if (rc) return rc;
      if (!chosen) continue;
      if (!strcmp(b->key, "smtp"))
        smtp_from_block(c, b);
      else if (add_entry(c, b->key, NULL, b))
        return spine_err_set(e, SPINE_ENOMEM, c->path, NULL, "out of memory");
    }
  }
  return 0;
}

int spine_provconf_load(const char *dir, const char *environment, spine_provconf *c, spine_err *e) {
  memset(c, 0, sizeof *c);
  c->smtp_url = "smtp://127.0.0.1:25";
  c->smtp_from = "spine@localhost";
  snprintf(c->path, sizeof c->path, "%s/providers.json", dir);
  FILE *probe = fopen(c->path, "rb");
  if (!probe) return 0; /* no settings: every adapter runs with the defaults */
  fclose(probe);
  spine_buf text = SPINE_BUF_INIT;
  int rc = spine_buf_read_file(&text, c->path, MAX_FILE, e);
  int line = 0;
  if (!rc) rc = spine_jsondoc_parse(spine_buf_str(&text), text.len, &c->doc, &line, e);
  spine_buf_free(&text);
  if (rc == SPINE_EINVAL) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", e ? e->msg : "");
    return bad(e, c, line, NULL, "not JSON: %s", msg);
  }
  if (rc) return rc;
  if (c->doc->type != SPINE_JSONDOC_OBJECT)
    return bad(e, c, c->doc->line, NULL, "expected an object of providers");
  const spine_jsondoc *envs = NULL;
  for (const spine_jsondoc *b = c->doc->child; b; b = b->next) {
    if (!strcmp(b->key, "environments")) {
      envs = b;
      continue;
    }
    rc = !strcmp(b->key, "smtp") ? check_smtp(c, b, "smtp", e) : check_block(c, b, b->key, e);
    if (rc) return rc;
    if (!strcmp(b->key, "smtp"))
      smtp_from_block(c, b);
    else if (add_entry(c, b->key, b, NULL))
      return spine_err_set(e, SPINE_ENOMEM, c->path, NULL, "out of memory");
  }
  if (envs &&
      (rc = check_environments(c, envs, environment && *environment ? environment : NULL, e)))
    return rc;
  for (int i = 0; i < c->n; i++) {
    settle(&c->entries[i]);
    if (settle_hosts(&c->entries[i]))
      return spine_err_set(e, SPINE_ENOMEM, c->path, NULL, "out of memory");
  }
  return 0;
}

void spine_provconf_free(spine_provconf *c) {
  spine_jsondoc_free(c->doc);
  for (int i = 0; i < c->n; i++)
    free(c->entries[i].hosts);
  free(c->entries);
  memset(c, 0, sizeof *c);
}

int spine_provconf_reaches(const spine_provconf_entry *en, const spine_http_client_dest *d) {
  for (int i = 0; en && i < en->nhosts; i++)
    if (spine_http_client_host_match(&en->hosts[i], d)) return 1;
  return 0;
}

const spine_provconf_entry *spine_provconf_find(const spine_provconf *c, const char *provider) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->entries[i].name, provider)) return &c->entries[i];
  return NULL;
}

/* ---- p.config ---- */

static int read_only(lua_State *L) {
  return luaL_error(L, "p.config is read-only");
}

static int readonly_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

static int readonly_pairs(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_pushcfunction(L, readonly_next);
  lua_getfield(L, -2, "__index");
  lua_pushnil(L);
  return 3;
}

static int readonly_len(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

void spine_provconf_push_readonly(lua_State *L, int idx) {
  static const luaL_Reg mt[] = {
      {"__newindex", read_only},
      {"__pairs", readonly_pairs},
      {"__len", readonly_len},
      {NULL, NULL},
  };
  idx = lua_absindex(L, idx);
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 5);
  luaL_setfuncs(L, mt, 0);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

/* Pushes the value of `v`; arrays and objects as read-only views. */
static void push_value(lua_State *L, const spine_jsondoc *v) {
  luaL_checkstack(L, 4, "p.config");
  switch (v->type) {
    case SPINE_JSONDOC_NULL:
      lua_pushnil(L);
      break;
    case SPINE_JSONDOC_BOOL:
      lua_pushboolean(L, v->boolean);
      break;
    case SPINE_JSONDOC_NUMBER:
      if (v->num == floor(v->num) && fabs(v->num) < 9e15)
        lua_pushinteger(L, (lua_Integer)v->num);
      else
        lua_pushnumber(L, v->num);
      break;
    case SPINE_JSONDOC_STRING:
      lua_pushstring(L, v->str);
      break;
    case SPINE_JSONDOC_ARRAY:
    case SPINE_JSONDOC_OBJECT: {
      lua_createtable(L, v->type == SPINE_JSONDOC_ARRAY ? v->count : 0,
                      v->type == SPINE_JSONDOC_OBJECT ? v->count : 0);
      lua_Integer i = 1;
      for (const spine_jsondoc *x = v->child; x; x = x->next) {
        push_value(L, x);
        if (v->type == SPINE_JSONDOC_ARRAY)
          lua_rawseti(L, -2, i++);
        else
          lua_setfield(L, -2, x->key);
      }
      spine_provconf_push_readonly(L, -1);
      lua_remove(L, -2);
      break;
    }
    default:
      abort();
  }
}

void spine_provconf_push_config(lua_State *L, const spine_provconf_entry *en) {
  lua_newtable(L);
  const spine_jsondoc *blocks[2] = {en ? en->base : NULL, en ? en->over : NULL};
  for (int b = 0; b < 2; b++)
    for (const spine_jsondoc *x = blocks[b] ? blocks[b]->child : NULL; x; x = x->next) {
      push_value(L, x);
      lua_setfield(L, -2, x->key);
    }
  spine_provconf_push_readonly(L, -1);
  lua_remove(L, -2);
}
