/* The provider registry: loads providers/<name>.lua (sandboxed, in a Lua state of its own),
 * providers.json, the templates and the secrets file, checks all of it before anything is
 * kept, and hands calls to the router and webhooks to pctx. Owns the adapters' Lua state, the
 * providers' definitions and (unless given one) the HTTP client. */
#include "providers.h"

#include <ctype.h>
#include <dirent.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jsondoc.h"
#include "pctx.h"
#include "provconf.h"
#include "router.h"
#include "sandbox.h"

#define MAX_FILE         (1024 * 1024)
#define DEFAULT_BUDGET   10000000
#define DEFAULT_MEMORY   (16 << 20)
#define SECRETS_MAX_FILE (256 * 1024)

struct spine_providers {
  uv_loop_t *loop;
  lua_State *L;
  spine_http_client *http;
  int own_http;
  char dir[256];
  spine_provconf conf;
  spine_jsondoc *secrets; /* the secrets file, or NULL */
  char secrets_path[256];
  spine_router_provider *providers;
  int n;
  spine_pctx_host host;
  spine_router router;
  int closing; /* handles still to close before the memory goes */
};

/* ---- names and files ---- */

int spine_providers_valid_name(const char *s, size_t n) {
  if (n == 0 || n > SPINE_PROVIDERS_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
          s[i] == '-'))
      return 0;
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* The sorted names of `dir`'s files ending in `suffix` (a missing folder has none). */
static int list_files(const char *dir, const char *suffix, char ***out, int *n, spine_err *e) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return 0;
  size_t sl = strlen(suffix);
  struct dirent *ent;
  int rc = 0;
  while (!rc && (ent = readdir(d))) {
    size_t len = strlen(ent->d_name);
    if (len <= sl || strcmp(ent->d_name + len - sl, suffix) || ent->d_name[0] == '.') continue;
    char **names = realloc(*out, (size_t)(*n + 1) * sizeof *names);
    if (!names || !(names[*n] = strdup(ent->d_name))) {
      if (names) *out = names;
      rc = spine_err_set(e, SPINE_ENOMEM, dir, NULL, "out of memory");
      break;
    }
    *out = names;
    (*n)++;
  }
  closedir(d);
  if (*out) qsort(*out, (size_t)*n, sizeof **out, by_name);
  return rc;
}

/* ---- secrets ---- */

static int check_secrets(spine_providers *ps, spine_err *e) {
  const spine_jsondoc *d = ps->secrets;
  if (d->type != SPINE_JSONDOC_OBJECT)
    return spine_err_set(e, SPINE_EINVAL, ps->secrets_path, NULL,
                         "expected {\"<provider>\": {\"<name>\": \"...\"}}");
  for (const spine_jsondoc *p = d->child; p; p = p->next) {
    int ok = p->type == SPINE_JSONDOC_OBJECT;
    for (const spine_jsondoc *s = ok ? p->child : NULL; s && ok; s = s->next)
      ok = s->type == SPINE_JSONDOC_STRING;
    if (!ok) {
      char where[300];
      snprintf(where, sizeof where, "%s:%d", ps->secrets_path, p->line);
      return spine_err_set(e, SPINE_EINVAL, where, p->key,
                           "expected an object of secret names to strings");
    }
  }
  return 0;
}

static int load_secrets(spine_providers *ps, const char *path, spine_err *e) {
  if (!path || !*path) return 0;
  snprintf(ps->secrets_path, sizeof ps->secrets_path, "%s", path);
  spine_buf text = SPINE_BUF_INIT;
  int line = 0, rc = spine_buf_read_file(&text, path, SECRETS_MAX_FILE, e);
  if (!rc && spine_jsondoc_parse(spine_buf_str(&text), text.len, &ps->secrets, &line, NULL)) {
    char where[300];
    snprintf(where, sizeof where, "%s:%d", path, line);
    rc = spine_err_set(e, SPINE_EINVAL, where, NULL, "not JSON"); /* no excerpt: secrets */
  }
  if (text.data) memset(text.data, 0, text.cap);
  spine_buf_free(&text);
  return rc ? rc : check_secrets(ps, e);
}

int spine_providers_secret(spine_providers *ps, const char *provider, const char *name, char *out,
                           size_t size) {
  char var[2 * SPINE_PROVIDERS_NAME_MAX + 160] = "SPINE_SECRET_";
  size_t n = strlen(var);
  for (const char *p = provider; *p && n < sizeof var - 2; p++)
    var[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  var[n++] = '_';
  for (const char *p = name; *p && n < sizeof var - 1; p++)
    var[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  var[n] = '\0';
  const char *v = getenv(var);
  if (!v && ps->secrets) {
    const spine_jsondoc *s = spine_jsondoc_get(spine_jsondoc_get(ps->secrets, provider), name);
    v = s ? s->str : NULL;
  }
  size_t len = v ? strlen(v) : 0;
  if (!v || len >= size || len > INT32_MAX) return -1;
  memcpy(out, v, len + 1);
  return (int)len;
}

static int host_secret(void *data, const char *provider, const char *name, char *out, size_t size) {
  return spine_providers_secret(data, provider, name, out, size);
}

/* ---- loading an adapter ---- */

typedef struct load_ctx {
  spine_providers *ps;
  spine_router_provider *p;
  const spine_provconf_entry *conf;
  const char *stem;
  spine_err *e;
  int rc;
} load_ctx;

static int refuse(load_ctx *x, const char *field, const char *fmt, ...) SPINE_PRINTF(3, 4);

static int refuse(load_ctx *x, const char *field, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  x->rc = spine_err_set(x->e, SPINE_EINVAL, x->p->file, field, "%s", msg);
  return 0;
}

static int rawfield(lua_State *L, int idx, const char *key) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  return lua_rawget(L, idx);
}

/* The channel table `name` of the module at 1: at least one operation, all functions. */
static int check_channel(lua_State *L, load_ctx *x, const char *name) {
  if (rawfield(L, 1, name) != LUA_TTABLE)
    return refuse(x, name, "channel \"%s\" is listed but the adapter has no table %s", name, name);
  int ops = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TFUNCTION) {
      char field[64];
      snprintf(field, sizeof field, "%s.%s", name,
               lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
      return refuse(x, field, "an operation must be a function named by a string (got a %s)",
                    luaL_typename(L, -1));
    }
    ops++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (!ops) return refuse(x, NULL, "channel \"%s\" lists no operation", name);
  return 1;
}

/* The channels calls go through: providers.json's list if any, else the adapter's. */
static int pick_channels(lua_State *L, load_ctx *x, int listed, lua_Integer n) {
  spine_router_provider *p = x->p;
  const spine_jsondoc *over = x->conf ? x->conf->channels : NULL;
  int count = over ? over->count : (int)n;
  p->channels = calloc((size_t)count, sizeof *p->channels);
  if (!p->channels) return luaL_error(L, "out of memory");
  const spine_jsondoc *o = over ? over->child : NULL;
  for (int j = 0; j < count; j++) {
    const char *name;
    if (over) {
      name = o->str;
      int found = 0;
      for (lua_Integer i = 1; i <= n && !found; i++) {
        lua_rawgeti(L, listed, i);
        found = !strcmp(lua_tostring(L, -1), name);
        lua_pop(L, 1);
      }
      if (!found) {
        char where[300], field[80];
        snprintf(where, sizeof where, "%s:%d", x->ps->conf.path, o->line);
        snprintf(field, sizeof field, "%s.channels", p->name);
        x->rc = spine_err_set(x->e, SPINE_EINVAL, where, field, "\"%s\" is not a channel of %s",
                              name, p->file);
        return 0;
      }
      o = o->next;
    } else {
      lua_rawgeti(L, listed, j + 1);
      name = lua_tostring(L, -1);
      lua_pop(L, 1); /* the module's list keeps the string alive */
    }
    p->channels[j].ops_ref = LUA_NOREF;
    if (!(p->channels[j].name = strdup(name))) return luaL_error(L, "out of memory");
    p->nchannels = j + 1;
    rawfield(L, 1, name);
    p->channels[j].ops_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 1;
}

/* Protected: (module, light load_ctx). Checks the module, then fills x->p. */
static int check_adapter(lua_State *L) {
  load_ctx *x = lua_touserdata(L, 2);
  lua_settop(L, 1);
  if (!lua_istable(L, 1))
    return refuse(x, NULL, "the file returns a %s (expected the adapter's table)",
                  luaL_typename(L, 1));
  if (rawfield(L, 1, "name") != LUA_TSTRING)
    return refuse(x, "name", "is missing (expected \"%s\")", x->stem);
  if (strcmp(lua_tostring(L, -1), x->stem))
    return refuse(x, "name", "\"%s\" differs from the file name (expected \"%s\")",
                  lua_tostring(L, -1), x->stem);
  lua_pop(L, 1);
  if (rawfield(L, 1, "channels") != LUA_TTABLE || lua_rawlen(L, -1) == 0)
    return refuse(x, "channels", "expected a list of channel names, in order of preference");
  int listed = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, listed);
  for (lua_Integer i = 1; i <= n; i++) {
    char field[32];
    snprintf(field, sizeof field, "channels[%d]", (int)i);
    if (lua_rawgeti(L, listed, i) != LUA_TSTRING ||
        !spine_providers_valid_name(lua_tostring(L, -1), lua_rawlen(L, -1)))
      return refuse(x, field, "expected a channel name (lower-case letters, digits, _ or -)");
    for (lua_Integer j = 1; j < i; j++) {
      lua_rawgeti(L, listed, j);
      int dup = lua_rawequal(L, -1, -2);
      lua_pop(L, 1);
      if (dup) return refuse(x, field, "\"%s\" is listed twice", lua_tostring(L, -1));
    }
    if (!check_channel(L, x, lua_tostring(L, -1))) return 0;
    lua_pop(L, 1);
  }
  int wt = rawfield(L, 1, "webhook");
  if (wt != LUA_TNIL && wt != LUA_TFUNCTION && wt != LUA_TTABLE)
    return refuse(x, "webhook",
                  "must be a function(p, request) or a table {verify = function(p, request), "
                  "handle = function(p, request)}");
  int hook = lua_gettop(L), has_verify = 0;
  if (wt == LUA_TTABLE) {
    if (rawfield(L, hook, "handle") != LUA_TFUNCTION)
      return refuse(x, "webhook.handle", "must be a function(p, request)");
    int vt = rawfield(L, hook, "verify");
    if (vt != LUA_TNIL && vt != LUA_TFUNCTION)
      return refuse(x, "webhook.verify",
                    "must be a function(p, request) returning the delivery id");
    has_verify = vt == LUA_TFUNCTION;
    lua_pushnil(L);
    while (lua_next(L, hook)) {
      lua_pop(L, 1);
      const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
      if (strcmp(k, "handle") && strcmp(k, "verify"))
        return refuse(x, "webhook", "unknown field \"%s\" (expected verify, handle)", k);
    }
    lua_settop(L, hook);
  }
  if (!pick_channels(L, x, listed, n)) return 0;
  x->p->has_webhook = wt != LUA_TNIL;
  x->p->has_verify = has_verify;
  if (wt == LUA_TTABLE) {
    lua_pushvalue(L, hook);
    x->p->webhook_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_settop(L, hook - 1);
  lua_pushvalue(L, 1);
  x->p->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  spine_provconf_push_config(L, x->conf);
  x->p->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void free_provider(spine_router_provider *p) {
  for (int j = 0; j < p->nchannels; j++)
    free(p->channels[j].name);
  free(p->channels);
  free(p->name);
  free(p->file);
}

static int load_adapter(spine_providers *ps, const char *fname, spine_router_provider *p,
                        int64_t budget, spine_err *e) {
  size_t stem_len = strlen(fname) - 4;
  char path[600], chunk[610];
  snprintf(path, sizeof path, "%s/%s", ps->dir, fname);
  p->module_ref = p->config_ref = p->webhook_ref = LUA_NOREF;
  p->file = strdup(path);
  p->name = strndup(fname, stem_len);
  if (!p->file || !p->name) return spine_err_set(e, SPINE_ENOMEM, path, NULL, "out of memory");
  if (!spine_providers_valid_name(fname, stem_len))
    return spine_err_set(e, SPINE_EINVAL, path, NULL,
                         "bad provider name \"%s\" (lower-case letters, digits, _ or -; at most "
                         "63)",
                         p->name);
  spine_buf src = SPINE_BUF_INIT;
  int rc = spine_buf_read_file(&src, path, MAX_FILE, e);
  snprintf(chunk, sizeof chunk, "@%s", path);
  if (!rc) rc = spine_sandbox_load(ps->L, spine_buf_str(&src), src.len, chunk, budget, e);
  spine_buf_free(&src);
  if (rc) return rc;
  load_ctx x = {ps, p, spine_provconf_find(&ps->conf, p->name), p->name, e, 0};
  const spine_provconf_entry *en = x.conf;
  p->settings = en;
  p->timeout_ms = en ? en->timeout_ms : 0;
  p->rps = en ? en->rate_limit : 0;
  p->breaker_failures = en ? en->breaker_failures : SPINE_PROVCONF_BREAKER_FAILURES;
  p->breaker_cooldown_ms = en ? en->breaker_cooldown_ms : SPINE_PROVCONF_BREAKER_COOLDOWN;
  lua_pushcfunction(ps->L, check_adapter);
  lua_insert(ps->L, -2);
  lua_pushlightuserdata(ps->L, &x);
  if (lua_pcall(ps->L, 2, 0, 0) != LUA_OK) {
    lua_pop(ps->L, 1);
    return spine_err_set(e, SPINE_ENOMEM, path, NULL, "out of memory");
  }
  return x.rc;
}

/* ---- templates ---- */

/* Protected: (light providers) -> registry ref of {name = text}, as an integer. */
static int load_templates(lua_State *L) {
  spine_providers *ps = lua_touserdata(L, 1);
  spine_err *e = lua_touserdata(L, 2);
  char dir[300], path[600];
  snprintf(dir, sizeof dir, "%s/templates", ps->dir);
  char **names;
  int n, rc = list_files(dir, ".txt", &names, &n, e);
  lua_newtable(L);
  for (int i = 0; i < n && !rc; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    spine_buf text = SPINE_BUF_INIT;
    rc = spine_buf_read_file(&text, path, MAX_FILE, e);
    if (!rc) {
      lua_pushlstring(L, names[i], strlen(names[i]) - 4);
      lua_pushlstring(L, spine_buf_str(&text), text.len);
      lua_rawset(L, -3);
    }
    spine_buf_free(&text);
  }
  free_names(names, n);
  lua_pushinteger(L, rc ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX));
  lua_pushinteger(L, rc);
  return 2;
}

static int open_pctx(lua_State *L) {
  spine_pctx_open(L, lua_touserdata(L, 1));
  return 0;
}

/* ---- the registry ---- */

static void free_now(spine_providers *ps) {
  for (int i = 0; i < ps->n; i++)
    free_provider(&ps->providers[i]);
  free(ps->providers);
  free(ps);
}

/* Everything but the memory that handles still closing point into. */
static void release(spine_providers *ps) {
  if (ps->L) lua_close(ps->L);
  ps->L = NULL;
  spine_provconf_free(&ps->conf);
  spine_jsondoc_free(ps->secrets);
  ps->secrets = NULL;
  spine_secrets_free(&ps->host.secrets); /* the calls are gone: nothing to scrub any more */
}

static int load_all(spine_providers *ps, const spine_providers_opts *o, spine_err *e) {
  const char *env = o->environment ? o->environment : getenv("SPINE_ENV");
  const char *secrets = o->secrets_file ? o->secrets_file : getenv("SPINE_SECRETS_FILE");
  int rc = spine_provconf_load(ps->dir, env, &ps->conf, e);
  if (!rc) rc = load_secrets(ps, secrets, e);
  if (rc) return rc;
  if (!(ps->L = spine_sandbox_new_state(0)))
    return spine_err_set(e, SPINE_ENOMEM, ps->dir, NULL, "out of memory");
  lua_pushcfunction(ps->L, open_pctx);
  lua_pushlightuserdata(ps->L, &ps->host);
  if (lua_pcall(ps->L, 1, 0, 0) != LUA_OK)
    return spine_err_set(e, SPINE_ENOMEM, ps->dir, NULL, "out of memory");
  lua_pushcfunction(ps->L, load_templates);
  lua_pushlightuserdata(ps->L, ps);
  lua_pushlightuserdata(ps->L, e);
  if (lua_pcall(ps->L, 2, 2, 0) != LUA_OK)
    return spine_err_set(e, SPINE_ENOMEM, ps->dir, NULL, "out of memory");
  ps->host.templates_ref = (int)lua_tointeger(ps->L, -2);
  rc = (int)lua_tointeger(ps->L, -1);
  lua_pop(ps->L, 2);
  if (rc) return rc;

  char **names;
  int n;
  if ((rc = list_files(ps->dir, ".lua", &names, &n, e))) return rc;
  ps->providers = calloc(n ? (size_t)n : 1, sizeof *ps->providers);
  if (!ps->providers) rc = spine_err_set(e, SPINE_ENOMEM, ps->dir, NULL, "out of memory");
  int64_t budget = o->instructions > 0 ? o->instructions : DEFAULT_BUDGET;
  for (int i = 0; i < n && !rc; i++) {
    ps->n = i + 1;
    rc = load_adapter(ps, names[i], &ps->providers[i], budget, e);
  }
  free_names(names, n);
  for (int i = 0; i < ps->conf.n && !rc; i++)
    if (!spine_providers_has(ps, ps->conf.entries[i].name)) {
      char where[300];
      snprintf(where, sizeof where, "%s:%d", ps->conf.path, ps->conf.entries[i].line);
      rc = spine_err_set(e, SPINE_EINVAL, where, ps->conf.entries[i].name,
                         "no adapter %s/%s.lua for these settings", ps->dir,
                         ps->conf.entries[i].name);
    }
  return rc;
}

int spine_providers_new(uv_loop_t *loop, const spine_providers_opts *o, spine_providers **out,
                        spine_err *e) {
  *out = NULL;
  spine_providers_opts dflt = {0};
  if (!o) o = &dflt;
  spine_providers *ps = calloc(1, sizeof *ps);
  if (!ps) return spine_err_set(e, SPINE_ENOMEM, "providers", NULL, "out of memory");
  ps->loop = loop;
  ps->host.templates_ref = LUA_NOREF;
  snprintf(ps->dir, sizeof ps->dir, "%s", o->dir && *o->dir ? o->dir : "providers");
  int rc = load_all(ps, o, e);
  if (!rc && !(ps->http = o->http)) {
    rc = spine_http_client_new(loop, &ps->http, e);
    ps->own_http = !rc;
  }
  if (rc) {
    release(ps);
    free_now(ps);
    return rc;
  }
  spine_pctx_host *h = &ps->host;
  h->loop = loop;
  h->L = ps->L;
  h->http = ps->http;
  h->smtp_url = ps->conf.smtp_url;
  h->smtp_from = ps->conf.smtp_from;
  h->secret = host_secret;
  h->secret_data = ps;
  h->instructions = o->instructions > 0 ? o->instructions : DEFAULT_BUDGET;
  h->mem_limit = o->mem_limit > 0 ? o->mem_limit : DEFAULT_MEMORY;
  spine_router_init(&ps->router, loop, h, ps->providers, ps->n);
  ps->router.quiet = o->quiet;
  spine_router_set_metrics(&ps->router, o->metrics);
  *out = ps;
  return 0;
}

static void on_part_closed(void *data) {
  spine_providers *ps = data;
  if (--ps->closing == 0) free_now(ps);
}

void spine_providers_free(spine_providers *ps) {
  if (!ps) return;
  ps->closing = 1 + ps->own_http;
  spine_router_close(&ps->router, on_part_closed, ps); /* cancels calls: needs the state */
  if (ps->own_http) spine_http_client_close(ps->http, on_part_closed, ps);
  release(ps);
}

void spine_providers_set_clock(spine_providers *ps, int64_t (*now_ms)(void *data), void *data) {
  ps->router.clock = now_ms;
  ps->router.clock_data = data;
}

void spine_providers_set_metrics(spine_providers *ps, spine_metrics *m) {
  spine_router_set_metrics(&ps->router, m);
}

void spine_providers_status_json(const spine_providers *ps, spine_buf *out) {
  if (ps)
    spine_router_status_json(&ps->router, out);
  else
    spine_buf_puts(out, "[]");
}

static spine_router_provider *find(const spine_providers *ps, const char *provider) {
  for (int i = 0; provider && i < ps->n; i++)
    if (!strcmp(ps->providers[i].name, provider)) return &ps->providers[i];
  return NULL;
}

int spine_providers_has(const spine_providers *ps, const char *provider) {
  return find(ps, provider) != NULL;
}

/* Protected: (light text) -> true when it is a JSON object. */
static int is_object(lua_State *L) {
  const char *s = lua_touserdata(L, 1);
  int ok = spine_codec_decode(L, s, strlen(s), NULL) == 0 && lua_istable(L, -1);
  while (ok && isspace((unsigned char)*s))
    s++;
  lua_pushboolean(L, ok && *s == '{');
  return 1;
}

int spine_providers_call(spine_providers *ps, const spine_provider_request *r, spine_provider_cb cb,
                         void *data, spine_provider_call **out, spine_err *e) {
  if (out) *out = NULL;
  spine_router_provider *p = find(ps, r->provider);
  if (!p)
    return spine_err_set(e, SPINE_ENOTFOUND, "providers", "provider", "no provider \"%s\"",
                         r->provider ? r->provider : "(null)");
  int offered = 0;
  for (int j = 0; r->operation && j < p->nchannels && !offered; j++) {
    lua_rawgeti(ps->L, LUA_REGISTRYINDEX, p->channels[j].ops_ref);
    offered = rawfield(ps->L, -1, r->operation) == LUA_TFUNCTION;
    lua_pop(ps->L, 2);
  }
  if (!offered)
    return spine_err_set(e, SPINE_ENOTFOUND, p->file, "operation",
                         "no channel of %s offers the operation \"%s\"", p->name,
                         r->operation ? r->operation : "(null)");
  if (r->args_json) {
    lua_pushcfunction(ps->L, is_object);
    lua_pushlightuserdata(ps->L, (void *)r->args_json);
    int ok = lua_pcall(ps->L, 1, 1, 0) == LUA_OK && lua_toboolean(ps->L, -1);
    lua_pop(ps->L, 1);
    if (!ok)
      return spine_err_set(e, SPINE_EINVAL, p->file, "args",
                           "the arguments of %s.%s must be a JSON object", p->name, r->operation);
  }
  if (spine_router_call(&ps->router, p, r, cb, data, out))
    return spine_err_set(e, SPINE_ENOMEM, p->file, NULL, "out of memory");
  return 0;
}

void spine_providers_cancel(spine_provider_call *c) {
  spine_router_cancel(c);
}

int spine_providers_running(const spine_providers *ps) {
  return ps->router.running;
}

/* ---- the engine's provider port ---- */

static int port_call(void *impl, const spine_provider_request *r, spine_provider_cb cb, void *data,
                     spine_provider_call **out, spine_err *e) {
  return spine_providers_call(impl, r, cb, data, out, e);
}

static void port_cancel(void *impl, spine_provider_call *c) {
  (void)impl;
  spine_providers_cancel(c);
}

static int port_has(void *impl, const char *provider) {
  return spine_providers_has(impl, provider);
}

static void port_set_clock(void *impl, int64_t (*now_ms)(void *data), void *data) {
  spine_providers_set_clock(impl, now_ms, data);
}

spine_provider_port spine_providers_port(spine_providers *ps) {
  spine_provider_port port = {ps, port_call, port_cancel, port_has, port_set_clock};
  return port;
}

static void webhook_target(const spine_router_provider *p, const char *field,
                           spine_pctx_target *t) {
  memset(t, 0, sizeof *t);
  t->provider = p->name;
  t->file = p->file;
  t->operation = "webhook";
  t->table_ref = p->webhook_ref != LUA_NOREF ? p->webhook_ref : p->module_ref;
  t->field = p->webhook_ref != LUA_NOREF ? field : "webhook";
  t->config_ref = p->config_ref;
  t->timeout_ms = 1;
}

int spine_providers_webhook(spine_providers *ps, const spine_provider_webhook *w,
                            spine_buf *actions, spine_err *e) {
  spine_router_provider *p = find(ps, w->provider);
  if (!p)
    return spine_err_set(e, SPINE_ENOTFOUND, "providers", "provider", "no provider \"%s\"",
                         w->provider ? w->provider : "(null)");
  if (!p->has_webhook)
    return spine_err_set(e, SPINE_ENOTFOUND, p->file, "webhook", "%s has no webhook function",
                         p->name);
  spine_pctx_target t;
  webhook_target(p, "handle", &t);
  return spine_pctx_webhook(&ps->host, &t, w, actions, e);
}

int spine_providers_webhook_verify(spine_providers *ps, const spine_provider_webhook *w, char *id,
                                   size_t size, spine_err *e) {
  spine_router_provider *p = find(ps, w->provider);
  if (!p)
    return spine_err_set(e, SPINE_ENOTFOUND, "providers", "provider", "no provider \"%s\"",
                         w->provider ? w->provider : "(null)");
  if (!p->has_verify) return 0;
  spine_pctx_target t;
  webhook_target(p, "verify", &t);
  int rc = spine_pctx_webhook_verify(&ps->host, &t, w, id, size, e);
  return rc ? rc : 1;
}
