/* The provider context `p` and one adapter function's run: a coroutine per attempt in the
 * adapters' sandboxed state, resumed from the loop when its HTTP or SMTP exchange ends, under
 * an instruction budget per resume, a memory limit and a timeout per attempt. Owns the
 * attempt (coroutine ref, timer, exchange, scratch buffers); never decides about channels,
 * never lets a secret it handed out leave in a result, an error or a log line, never sends
 * p.http to a host the provider's settings do not name. */
#include "pctx.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "duration.h"
#include "hmac.h"
#include "lerror.h"
#include "log.h"
#include "mail.h"
#include "sandbox.h"
#include "secrets.h"
#include "webhook_actions.h"

#define MAX_HEADERS    64
#define MAX_RECIPIENTS 32
#define SECRET_MAX     4096
#define SECRET_MIN     8 /* shorter values would scrub ordinary words out of logs and records */

/* Registry keys: the host, the metatable marking p.transient/p.rejected tables, and the
 * members every p shares. */
static const char host_key = 0, err_mt_key = 0, proto_key = 0;

enum { MODE_ATTEMPT, MODE_WEBHOOK };
enum { WAIT_NONE, WAIT_HTTP, WAIT_MAIL };

struct spine_pctx {
  spine_pctx_host *h;
  int mode;
  spine_limits lim;
  spine_secrets *secrets; /* the host's: every secret handed out so far */
  char provider[64], channel[64], operation[64], field[64], file[256];
  char *key, *traceparent, *workflow_id, *args; /* owned copies, may be NULL */
  const spine_provider_webhook *hook;           /* MODE_WEBHOOK: the request */
  int table_ref, config_ref;
  const spine_provconf_entry *settings; /* where p.http may go; may be NULL */
  char refusal[1024]; /* set once p.http was refused a host: the attempt's outcome, whatever the
                        adapter did after (caught it, raised p.transient) */
  int fn_line;        /* where the function is defined, for messages */
  lua_State *co;      /* referenced by co_ref while the attempt runs */
  int co_ref;
  uv_timer_t timer;           /* the attempt's timeout (MODE_ATTEMPT only) */
  spine_http_client_call *io; /* the HTTP or SMTP exchange in flight, or NULL */
  int waiting;                /* WAIT_*: what the yielded coroutine waits for */
  char what[320];             /* "POST https://..." of that exchange, for its error */
  spine_buf lines, body;      /* scratch for the request being built (and p.log) */
  int64_t timeout_ms;
  uint64_t deadline; /* uv_now when the attempt times out */
  spine_pctx_done done;
  void *data;
  spine_pctx_result res;
};

/* ---- the running attempt ---- */

static spine_pctx *running(lua_State *L, const char *what) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key);
  spine_pctx_host *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!h || !h->running) luaL_error(L, "%s: only usable during a provider call", what);
  return h->running;
}

static spine_pctx *running_effect(lua_State *L, const char *what) {
  spine_pctx *a = running(L, what);
  if (a->mode == MODE_WEBHOOK) luaL_error(L, "%s is not available in webhook", what);
  return a;
}

/* Pushes an error table marked as p.transient / p.rejected made it. */
static void push_error(lua_State *L, const char *kind, const char *code, const char *msg,
                       int details) {
  spine_lerror_push(L, kind, code, msg, NULL);
  if (details) {
    lua_pushvalue(L, details);
    lua_setfield(L, -2, "details");
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &err_mt_key);
  lua_setmetatable(L, -2);
}

static int is_marked(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &err_mt_key);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

/* ---- p.transient, p.rejected ---- */

static int p_error(lua_State *L, const char *kind) {
  const char *msg = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  push_error(L, kind, kind, msg, lua_isnil(L, 2) ? 0 : 2);
  return 1;
}

static int p_transient(lua_State *L) {
  return p_error(L, "transient");
}

static int p_rejected(lua_State *L) {
  return p_error(L, "rejected");
}

static int err_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  return 1;
}

/* ---- p.hmac_sha256, p.equal: for an adapter verifying its provider's webhook scheme ---- */

static int p_hmac_sha256(lua_State *L) {
  size_t klen, mlen;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *msg = luaL_checklstring(L, 2, &mlen);
  char hex[65];
  spine_hmac_sha256_hex(key, klen, msg, mlen, hex);
  lua_pushlstring(L, hex, 64);
  return 1;
}

static int p_equal(lua_State *L) {
  size_t alen, blen;
  const char *a = luaL_checklstring(L, 1, &alen);
  const char *b = luaL_checklstring(L, 2, &blen);
  lua_pushboolean(L, spine_hmac_equal(a, alen, b, blen));
  return 1;
}

/* ---- p.urlencode: a path segment or query value as it must travel ---- */

/* Percent-encodes every byte but RFC 3986's unreserved ones, so that a value an adapter puts
 * in a URL ("../admin", "a/b?c=d#e") stays one path segment or one value. */
static int p_urlencode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  static const char hex[] = "0123456789ABCDEF";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      luaL_addchar(&b, (char)c);
    } else {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* ---- p.secret ---- */

static int p_secret(lua_State *L) {
  spine_pctx *a = running(L, "p.secret");
  const char *name = luaL_checkstring(L, 1);
  char buf[SECRET_MAX];
  int n = a->h->secret(a->h->secret_data, a->provider, name, buf, sizeof buf);
  if (n < 0)
    return luaL_error(L, "p.secret: provider \"%s\" has no secret \"%s\"", a->provider, name);
  if (n == 0) return lua_pushliteral(L, ""), 1;
  if (n < SECRET_MIN) {
    memset(buf, 0, sizeof buf);
    return luaL_error(L,
                      "p.secret: secret \"%s\" of provider \"%s\" has %d bytes; at least %d are "
                      "needed to keep it out of logs and records",
                      name, a->provider, n, SECRET_MIN);
  }
  const char *kept = spine_secrets_remember(a->secrets, buf, (size_t)n);
  memset(buf, 0, sizeof buf);
  if (!kept && a->secrets->secrets >= SPINE_SECRETS_MAX)
    return luaL_error(L,
                      "p.secret: %d secrets were handed out already, as many as can be kept out "
                      "of logs and records: \"%s\" is not",
                      SPINE_SECRETS_MAX, name);
  if (!kept) return luaL_error(L, "p.secret: out of memory");
  lua_pushlstring(L, kept, (size_t)n);
  return 1;
}

/* ---- p.log ---- */

static void member(spine_buf *b, const char *key, const char *value) {
  if (!value || !*value) return;
  spine_buf_printf(b, ",\"%s\":", key);
  spine_log_json_string(b, value, strlen(value));
}

static int p_log(lua_State *L) {
  spine_pctx *a = running(L, "p.log");
  spine_log_level level;
  if (spine_log_parse_level(luaL_checkstring(L, 1), &level))
    return luaL_argerror(L, 1, "expected \"debug\", \"info\", \"warn\" or \"error\"");
  size_t mlen;
  const char *msg = luaL_checklstring(L, 2, &mlen);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  if (level < spine_log_get_level()) return 0;
  spine_buf *fields = &a->body, *line = &a->lines; /* scratch: no exchange is in flight */
  spine_buf_reset(fields);
  spine_buf_reset(line);
  spine_err e;
  if (!lua_isnoneornil(L, 3)) {
    if (spine_codec_encode(L, 3, "fields", fields, &e))
      return luaL_error(L, "p.log: %s: %s", e.field, e.msg);
    if (spine_secrets_scrub_json(L, a->secrets, fields))
      return luaL_error(L, "p.log: cannot scrub");
  }
  member(line, "provider", a->provider);
  member(line, "channel", a->channel);
  member(line, "operation", a->operation);
  member(line, "workflow_id", a->workflow_id);
  if (fields->len) {
    spine_buf_puts(line, ",\"fields\":");
    spine_buf_append(line, fields->data, fields->len);
  }
  spine_buf_reset(fields);
  if (spine_secrets_append(a->secrets, fields, msg, mlen))
    return luaL_error(L, "p.log: out of memory");
  spine_log_raw(level, "provider", spine_buf_str(fields), spine_buf_str(line), line->len);
  return 0;
}

/* ---- p.render ---- */

/* Pushes vars.a.b for the path name[len]; nil when a step is missing. */
static void push_path(lua_State *L, int vars, const char *name, size_t len) {
  lua_pushvalue(L, vars);
  const char *p = name, *end = name + len;
  while (p <= end && !lua_isnil(L, -1)) {
    const char *dot = memchr(p, '.', (size_t)(end - p));
    if (!dot) dot = end;
    if (!lua_istable(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
      break;
    }
    lua_pushlstring(L, p, (size_t)(dot - p));
    lua_gettable(L, -2);
    lua_remove(L, -2);
    p = dot + 1;
  }
}

static int p_render(lua_State *L) {
  const char *tpl = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key);
  spine_pctx_host *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (h && h->templates_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->templates_ref);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TSTRING) tpl = lua_tostring(L, -1); /* kept on the stack */
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *p = tpl;
  for (;;) {
    const char *open = strstr(p, "{{");
    const char *close = open ? strstr(open + 2, "}}") : NULL;
    if (!close) {
      luaL_addstring(&b, p);
      break;
    }
    luaL_addlstring(&b, p, (size_t)(open - p));
    const char *n = open + 2, *ne = close;
    while (n < ne && isspace((unsigned char)*n))
      n++;
    while (ne > n && isspace((unsigned char)ne[-1]))
      ne--;
    if (lua_isnil(L, 2))
      lua_pushnil(L);
    else
      push_path(L, 2, n, (size_t)(ne - n));
    int t = lua_type(L, -1);
    if (t == LUA_TBOOLEAN) {
      lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
      lua_remove(L, -2);
    } else if (t != LUA_TSTRING && t != LUA_TNUMBER) {
      lua_pushlstring(L, n, (size_t)(ne - n));
      return luaL_error(L, "p.render: %s variable \"%s\"", t == LUA_TNIL ? "missing" : "bad",
                        lua_tostring(L, -1));
    }
    luaL_addvalue(&b);
    p = close + 2;
  }
  luaL_pushresult(&b);
  return 1;
}

/* ---- p.http ---- */

/* An exchange without a timeout of its own outlives the attempt by a second, so that the
 * attempt's timer, not the transfer's, says "timed out" (one message for one cause). */
static int64_t exchange_timeout(const spine_pctx *a) {
  uint64_t now = uv_now(a->h->loop);
  return (int64_t)(a->deadline > now ? a->deadline - now : 0) + 1000;
}

/* Appends "Name: value\0" lines from the table at `idx`; returns the count. */
static int header_lines(lua_State *L, int idx, spine_buf *lines, size_t *offs, int *has_ct) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaL_error(L, "headers: names and values must be strings");
    if (n == MAX_HEADERS) luaL_error(L, "headers: more than %d", MAX_HEADERS);
    const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
    if (!strcasecmp(k, "content-type")) *has_ct = 1;
    offs[n++] = lines->len;
    if (spine_buf_printf(lines, "%s: %s", k, v) || spine_buf_putc(lines, '\0'))
      luaL_error(L, "out of memory");
    lua_pop(L, 1);
  }
  return n;
}

static int64_t timeout_arg(lua_State *L, int idx, int64_t dflt) {
  int64_t ms = dflt;
  spine_err e;
  if (lua_type(L, idx) == LUA_TNUMBER)
    ms = (int64_t)(lua_tonumber(L, idx) * 1000);
  else if (lua_type(L, idx) == LUA_TSTRING && spine_duration_parse(lua_tostring(L, idx), &ms, &e))
    luaL_error(L, "timeout: %s", e.msg);
  else if (!lua_isnil(L, idx) && lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "timeout: expected a duration such as \"20s\"");
  return ms > 0 ? ms : dflt;
}

static void push_headers(lua_State *L, const spine_http_client_response *res) {
  lua_newtable(L);
  const char *p = res->headers, *end = res->headers + res->headers_len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && colon > p) {
      luaL_Buffer b;
      char *name = luaL_buffinitsize(L, &b, (size_t)(colon - p));
      for (const char *c = p; c < colon; c++)
        name[c - p] = (char)tolower((unsigned char)*c);
      luaL_pushresultsize(&b, (size_t)(colon - p));
      const char *v = colon + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) { /* a repeated header: "a, b" */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol + 1;
  }
}

static int http_k(lua_State *L, int status, lua_KContext kc) {
  (void)status, (void)kc;
  const spine_http_client_response *res = lua_touserdata(L, -1);
  lua_pop(L, 1);
  spine_pctx *a = running(L, "p.http");
  if (res->error == SPINE_EINVAL || res->error == SPINE_ELIMIT)
    return luaL_error(L, "p.http %s: %s", a->what, res->message);
  if (res->error) {
    lua_pushfstring(L, "p.http %s: %s", a->what, res->message);
    push_error(L, "transient", res->error == SPINE_ETIMEOUT ? "timeout" : "unavailable",
               lua_tostring(L, -1), 0);
    return lua_error(L);
  }
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, res->status);
  lua_setfield(L, -2, "status");
  push_headers(L, res);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, res->body, res->body_len);
  lua_setfield(L, -2, "body");
  if (res->body_len && spine_codec_decode(L, res->body, res->body_len, NULL) == 0)
    lua_setfield(L, -2, "json");
  return 1;
}

static void on_io(void *data, const spine_http_client_response *res);

/* p.http to a host the provider may not call: nothing is sent, and the attempt fails as an
 * adapter fault (invalid_argument, host_not_allowed), never retried nor tried on another
 * channel, whatever the adapter does with the error: a misconfigured or hostile adapter must
 * not get another go. Logged for the operator (without the URL: it may hold a secret). */
static void where_of(spine_pctx *a, char *out, size_t size);

static int refuse_host(lua_State *L, spine_pctx *a, spine_http_client_verb verb, const char *url,
                       const spine_http_client_dest *d) {
  char host[300], where[300];
  snprintf(host, sizeof host, "%s:%d", d->host, d->port);
  where_of(a, where, sizeof where); /* the adapter's line, also when pcall called p.http */
  snprintf(a->refusal, sizeof a->refusal,
           "%.200s: p.http %s %.200s: %s may not call %s (only its base_url's host and port, "
           "and %s.allowed_hosts in providers.json)",
           where, spine_http_client_verb_name(verb), url, a->provider, host, a->provider);
  spine_log_warn("providers", "p.http refused: not a host of the provider", "provider", a->provider,
                 "host", host, "where", where, NULL);
  lua_pushstring(L, a->refusal);
  return lua_error(L);
}

static int p_http(lua_State *L) {
  spine_http_client_verb verb = (spine_http_client_verb)lua_tointeger(L, lua_upvalueindex(1));
  spine_pctx *a = running_effect(L, "p.http");
  const char *url = luaL_checkstring(L, 1);
  spine_http_client_dest dest;
  spine_err ue;
  if (spine_http_client_dest_of(url, &dest, &ue))
    return luaL_error(L, "p.http %s: %s", spine_http_client_verb_name(verb), ue.msg);
  if (!spine_provconf_reaches(a->settings, &dest)) return refuse_host(L, a, verb, url, &dest);
  int opts = lua_isnoneornil(L, 2) ? 0 : 2;
  if (opts) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  spine_buf_reset(&a->lines);
  spine_buf_reset(&a->body);
  size_t offs[MAX_HEADERS + 1];
  int nh = 0, has_ct = 0, has_body = 0;
  int64_t timeout = exchange_timeout(a);
  if (opts) {
    if (lua_getfield(L, 2, "headers") == LUA_TTABLE)
      nh = header_lines(L, 3, &a->lines, offs, &has_ct);
    else if (!lua_isnil(L, 3))
      return luaL_error(L, "p.http: headers must be a table");
    lua_settop(L, 2);
    if (lua_getfield(L, 2, "json") != LUA_TNIL) {
      spine_err e;
      if (spine_codec_encode_json(L, 3, "json", &a->body, &e))
        return luaL_error(L, "p.http: %s: %s", e.field, e.msg);
      has_body = 1;
      if (!has_ct) {
        offs[nh++] = a->lines.len;
        spine_buf_puts(&a->lines, "Content-Type: application/json");
        spine_buf_putc(&a->lines, '\0');
      }
    }
    lua_settop(L, 2);
    if (lua_getfield(L, 2, "body") != LUA_TNIL) {
      size_t len;
      const char *s = lua_tolstring(L, 3, &len);
      if (!s || lua_type(L, 3) != LUA_TSTRING)
        return luaL_error(L, "p.http: body must be a string");
      if (has_body) return luaL_error(L, "p.http: give json or body, not both");
      if (spine_buf_append(&a->body, s, len)) return luaL_error(L, "out of memory");
      has_body = 1;
    }
    lua_settop(L, 2);
    lua_getfield(L, 2, "timeout");
    timeout = timeout_arg(L, 3, timeout);
    lua_settop(L, 2);
  }
  const char *hv[MAX_HEADERS + 2];
  for (int i = 0; i < nh; i++)
    hv[i] = a->lines.data + offs[i];
  hv[nh] = NULL;
  spine_http_client_request req = {0};
  req.method = verb;
  req.url = url;
  req.headers = hv;
  req.body = has_body ? spine_buf_str(&a->body) : NULL;
  req.body_len = has_body ? a->body.len : 0;
  req.traceparent = a->traceparent;
  req.timeout_ms = timeout;
  snprintf(a->what, sizeof a->what, "%s %s", spine_http_client_verb_name(verb), url);
  spine_err e;
  if (spine_http_client_send(a->h->http, &req, on_io, a, &a->io, &e))
    return luaL_error(L, "p.http %s: %s", a->what, e.msg);
  a->waiting = WAIT_HTTP;
  return lua_yieldk(L, 0, 0, http_k);
}

/* ---- p.email ---- */

static int mail_k(lua_State *L, int status, lua_KContext kc) {
  (void)status, (void)kc;
  const spine_http_client_response *res = lua_touserdata(L, -1);
  lua_pop(L, 1);
  spine_pctx *a = running(L, "p.email.send");
  if (res->error) {
    lua_pushfstring(L, "p.email.send %s: %s", a->what, res->message);
    if (res->transient)
      push_error(L, "transient", res->error == SPINE_ETIMEOUT ? "timeout" : "unavailable",
                 lua_tostring(L, -1), 0);
    else
      push_error(L, "rejected", "smtp_refused", lua_tostring(L, -1), 0);
    return lua_error(L);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Appends the string field `key` of the table at 1 to lines (NUL-terminated); its offset. */
static size_t string_field(lua_State *L, spine_buf *lines, const char *key, const char *dflt) {
  lua_getfield(L, 1, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : dflt;
  if (!s) luaL_error(L, "p.email.send: %s must be a string", key);
  size_t at = lines->len;
  if (spine_buf_append(lines, s, strlen(s) + 1)) luaL_error(L, "out of memory");
  lua_pop(L, 1);
  return at;
}

static int p_email_send(lua_State *L) {
  spine_pctx *a = running_effect(L, "p.email");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  spine_pctx_host *h = a->h;
  spine_buf *lines = &a->lines;
  spine_buf_reset(lines);
  size_t to[MAX_RECIPIENTS];
  int nto = 0;
  lua_getfield(L, 1, "to");
  if (lua_type(L, 2) == LUA_TSTRING) {
    to[nto++] = string_field(L, lines, "to", NULL);
  } else if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    if (n > MAX_RECIPIENTS) return luaL_error(L, "p.email.send: more than %d recipients", 32);
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
        return luaL_error(L, "p.email.send: to[%d] must be a string", (int)i);
      to[nto++] = lines->len;
      if (spine_buf_append(lines, lua_tostring(L, -1), lua_rawlen(L, -1) + 1))
        return luaL_error(L, "out of memory");
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  if (nto == 0) return luaL_error(L, "p.email.send: to must be an address or a list of them");
  size_t subject = string_field(L, lines, "subject", NULL);
  size_t body = string_field(L, lines, "body", NULL);
  size_t from = string_field(L, lines, "from", h->smtp_from);
  size_t hdr = lines->len;
  if (spine_buf_printf(lines, "X-Idempotency-Key: %s", a->key ? a->key : "") ||
      spine_buf_putc(lines, '\0'))
    return luaL_error(L, "out of memory");
  const char *tov[MAX_RECIPIENTS + 1], *hv[2] = {lines->data + hdr, NULL};
  for (int i = 0; i < nto; i++)
    tov[i] = lines->data + to[i];
  tov[nto] = NULL;
  spine_mail m = {0};
  m.url = h->smtp_url;
  m.from = lines->data + from;
  m.to = tov;
  m.subject = lines->data + subject;
  m.body = lines->data + body;
  m.message_id = a->key;
  m.headers = a->key ? hv : NULL;
  m.timeout_ms = exchange_timeout(a);
  snprintf(a->what, sizeof a->what, "to %s", tov[0]);
  spine_err e;
  if (spine_mail_send(h->http, &m, on_io, a, &a->io, &e))
    return luaL_error(L, "p.email.send: %s", e.msg);
  a->waiting = WAIT_MAIL;
  return lua_yieldk(L, 0, 0, mail_k);
}

/* ---- setting up p ---- */

static void push_readonly_funcs(lua_State *L, const luaL_Reg *fns, int verbs) {
  lua_newtable(L);
  for (int i = 0; fns[i].name; i++) {
    if (verbs) lua_pushinteger(L, i);
    lua_pushcclosure(L, fns[i].func, verbs ? 1 : 0);
    lua_setfield(L, -2, fns[i].name);
  }
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_newtable(L);
  lua_insert(L, -2);
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

void spine_pctx_open(lua_State *L, spine_pctx_host *h) {
  /* What every p has besides its call's own fields (push_p); http and email are placeholders
   * here, replaced by their tables below. */
  static const luaL_Reg members[] = {
      {"http", NULL},
      {"email", NULL},
      {"transient", p_transient},
      {"rejected", p_rejected},
      {"secret", p_secret},
      {"log", p_log},
      {"render", p_render},
      {"hmac_sha256", p_hmac_sha256},
      {"equal", p_equal},
      {"urlencode", p_urlencode},
      {NULL, NULL},
  };
  /* In spine_http_client_verb order: the upvalue is the verb. */
  static const luaL_Reg verbs[] = {{"get", p_http},   {"post", p_http},   {"put", p_http},
                                   {"patch", p_http}, {"delete", p_http}, {NULL, NULL}};
  static const luaL_Reg email[] = {{"send", p_email_send}, {NULL, NULL}};
  lua_pushlightuserdata(L, h);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, err_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &err_mt_key);

  luaL_newlib(L, members);
  push_readonly_funcs(L, verbs, 1);
  lua_setfield(L, -2, "http");
  push_readonly_funcs(L, email, 0);
  lua_setfield(L, -2, "email");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &proto_key);
}

static void set_string(lua_State *L, const char *key, const char *v) {
  if (!v || !*v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, key);
}

static void push_p(lua_State *L, spine_pctx *a) {
  lua_createtable(L, 0, 16);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &proto_key);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  set_string(L, "provider", a->provider);
  set_string(L, "channel", a->channel);
  set_string(L, "operation", a->operation);
  set_string(L, "idempotency_key", a->key);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->config_ref);
  lua_setfield(L, -2, "config");
}

static void push_request(lua_State *L, const spine_provider_webhook *w) {
  lua_createtable(L, 0, 3);
  lua_pushlstring(L, w->body ? w->body : "", w->body ? w->body_len : 0);
  lua_setfield(L, -2, "body");
  if (w->body && spine_codec_decode(L, w->body, w->body_len, NULL) == 0)
    lua_setfield(L, -2, "json");
  spine_http_client_response fake;
  memset(&fake, 0, sizeof fake);
  fake.headers = w->headers ? w->headers : "";
  fake.headers_len = w->headers ? w->headers_len : 0;
  push_headers(L, &fake);
  lua_setfield(L, -2, "headers");
}

/* Protected, on the main thread: the coroutine with function, p and argument on its stack. */
static int prepare(lua_State *L) {
  spine_pctx *a = lua_touserdata(L, 1);
  lua_State *co = lua_newthread(L);
  a->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  a->co = co;
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->table_ref);
  lua_getfield(L, -1, a->field);
  lua_remove(L, -2);
  lua_Debug ar;
  lua_pushvalue(L, -1);
  if (lua_getinfo(L, ">S", &ar)) a->fn_line = ar.linedefined;
  push_p(L, a);
  if (a->mode == MODE_WEBHOOK)
    push_request(L, a->hook);
  else if (spine_codec_decode(L, a->args, strlen(a->args), NULL))
    lua_newtable(L);
  lua_xmove(L, co, 3);
  return 0;
}

/* ---- running ---- */

static void set_result(spine_pctx *a, spine_provider_kind kind, const char *code, const char *fmt,
                       ...) SPINE_PRINTF(4, 5);

static void set_result(spine_pctx *a, spine_provider_kind kind, const char *code, const char *fmt,
                       ...) {
  a->res.kind = kind;
  snprintf(a->res.code, sizeof a->res.code, "%s", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->res.message, sizeof a->res.message, fmt, ap);
  va_end(ap);
}

/* "file:line" of the innermost Lua function on the stack of `co`, or the function's own. */
static void where_of(spine_pctx *a, char *out, size_t size) {
  if (!a->co || !spine_lerror_where(a->co, out, size))
    snprintf(out, size, "%s:%d", a->file, a->fn_line);
}

/* The coroutine ended with an error (status `st`, the value on top): how the call failed. */
static void settle_error(spine_pctx *a, int st) {
  lua_State *co = a->co;
  char where[300];
  where_of(a, where, sizeof where);
  if (a->lim.tripped == SPINE_LIMIT_INSTRUCTIONS) {
    set_result(a, SPINE_PROVIDER_INVALID, "instruction_budget",
               "%s: instruction budget exceeded (an endless loop?)", where);
  } else if (a->lim.tripped == SPINE_LIMIT_MEMORY || st == LUA_ERRMEM) {
    set_result(a, SPINE_PROVIDER_INVALID, "memory_limit",
               "%s: memory limit exceeded (the adapter would hold more than %lld MB)", where,
               (long long)(a->lim.mem_limit >> 20));
  } else if (is_marked(co, -1)) {
    /* Read raw, and each checked: the adapter may have rawset the fields to anything. */
    static const char *const names[] = {"kind", "code", "message"};
    const char *f[3];
    for (int i = 0; i < 3; i++) {
      lua_pushstring(co, names[i]);
      f[i] = lua_rawget(co, -2 - i) == LUA_TSTRING ? lua_tostring(co, -1) : NULL;
    }
    int rejected = f[0] && !strcmp(f[0], "rejected");
    if (!f[0] || !f[1] || !f[2] || (!rejected && strcmp(f[0], "transient"))) {
      set_result(a, SPINE_PROVIDER_INVALID, "runtime_error",
                 "%s: raised a p.transient/p.rejected error whose kind, code or message was "
                 "changed",
                 where);
      lua_pop(co, 3);
      return;
    }
    /* A webhook's error is a message for the operator: it says where. */
    set_result(a, rejected ? SPINE_PROVIDER_REJECTED : SPINE_PROVIDER_TRANSIENT, f[1], "%s%s%s",
               a->mode == MODE_WEBHOOK ? where : "", a->mode == MODE_WEBHOOK ? ": " : "", f[2]);
    lua_pop(co, 3);
    spine_err e;
    lua_pushliteral(co, "details");
    if (lua_rawget(co, -2) != LUA_TNIL && spine_codec_encode(co, -1, "details", &a->res.json, &e)) {
      spine_buf_reset(&a->res.json);
      set_result(a, SPINE_PROVIDER_INVALID, "invalid_result",
                 "%s: error details JSON cannot hold (%s: %s)", where, e.field, e.msg);
    }
    lua_pop(co, 1);
  } else if (lua_type(co, -1) == LUA_TSTRING) {
    const char *s = lua_tostring(co, -1);
    if (!strncmp(s, a->file, strlen(a->file)))
      set_result(a, SPINE_PROVIDER_INVALID, "runtime_error", "%s", s);
    else
      set_result(a, SPINE_PROVIDER_INVALID, "runtime_error", "%s: %s", where, s);
  } else {
    set_result(a, SPINE_PROVIDER_INVALID, "runtime_error",
               "%s: raised a %s (raise p.transient(...) or p.rejected(...))", where,
               luaL_typename(co, -1));
  }
}

static void settle(spine_pctx *a, int st, int nres) {
  lua_State *co = a->co;
  if (st == LUA_YIELD) {
    set_result(a, SPINE_PROVIDER_INVALID, "runtime_error",
               "%s:%d: %s yielded outside p.http and p.email", a->file, a->fn_line,
               a->mode == MODE_WEBHOOK ? "webhook" : a->operation);
    return;
  }
  if (st != LUA_OK) return settle_error(a, st);
  spine_err e;
  if (nres == 0) {
    lua_pushnil(co);
    nres = 1;
  }
  if (a->mode == MODE_WEBHOOK) { /* validated by the caller */
    set_result(a, SPINE_PROVIDER_OK, "ok", "ok");
    return;
  }
  if (spine_codec_encode(co, -nres, "result", &a->res.json, &e)) {
    spine_buf_reset(&a->res.json);
    set_result(a, SPINE_PROVIDER_INVALID, "invalid_result",
               "%s:%d: %s.%s returned a value JSON cannot hold (%s: %s)", a->file, a->fn_line,
               a->channel, a->operation, e.field, e.msg);
    return;
  }
  set_result(a, SPINE_PROVIDER_OK, "ok", "ok");
}

static int resume(spine_pctx *a, int nargs, int *nres) {
  spine_pctx_host *h = a->h;
  spine_pctx *prev = h->running;
  h->running = a;
  spine_sandbox_begin(a->co, h->instructions, h->mem_limit);
  int st = lua_resume(a->co, h->L, nargs, nres);
  spine_sandbox_end(a->co);
  h->running = prev;
  return st;
}

static void release_co(spine_pctx *a) {
  if (a->co_ref != LUA_NOREF) luaL_unref(a->h->L, LUA_REGISTRYINDEX, a->co_ref);
  a->co_ref = LUA_NOREF;
  a->co = NULL;
}

static void free_attempt(spine_pctx *a) {
  free(a->key);
  free(a->traceparent);
  free(a->workflow_id);
  free(a->args);
  spine_buf_free(&a->lines);
  spine_buf_free(&a->body);
  spine_buf_free(&a->res.json);
  free(a);
}

static void on_timer_closed(uv_handle_t *t) {
  free_attempt(t->data);
}

static void close_attempt(spine_pctx *a) {
  if (a->io) spine_http_client_cancel(a->io);
  a->io = NULL;
  release_co(a);
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

static void finish(spine_pctx *a) {
  uv_timer_stop(&a->timer);
  release_co(a);
  if (a->refusal[0]) {
    spine_buf_reset(&a->res.json);
    set_result(a, SPINE_PROVIDER_INVALID, "host_not_allowed", "%s", a->refusal);
  }
  spine_pctx_done done = a->done;
  a->done = NULL;
  done(a->data, &a->res);
  close_attempt(a);
}

static void step(spine_pctx *a, int nargs) {
  int nres = 0;
  int st = resume(a, nargs, &nres);
  if (st == LUA_YIELD && a->waiting != WAIT_NONE) return;
  settle(a, st, nres);
  finish(a);
}

static void on_io(void *data, const spine_http_client_response *res) {
  spine_pctx *a = data;
  a->io = NULL;
  a->waiting = WAIT_NONE;
  lua_pushlightuserdata(a->co, (void *)res); /* read by the continuation, during this call */
  step(a, 1);
}

static void on_timeout(uv_timer_t *t) {
  spine_pctx *a = t->data;
  if (a->io) spine_http_client_cancel(a->io);
  a->io = NULL;
  a->waiting = WAIT_NONE;
  set_result(a, SPINE_PROVIDER_TRANSIENT, "timeout", "%s.%s timed out after %lld ms", a->channel,
             a->operation, (long long)a->timeout_ms);
  finish(a);
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static spine_pctx *new_attempt(spine_pctx_host *h, const spine_pctx_target *t, int mode) {
  spine_pctx *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->h = h;
  a->mode = mode;
  a->secrets = &h->secrets;
  snprintf(a->provider, sizeof a->provider, "%s", t->provider);
  snprintf(a->channel, sizeof a->channel, "%s", t->channel ? t->channel : "");
  snprintf(a->operation, sizeof a->operation, "%s", t->operation ? t->operation : "");
  snprintf(a->field, sizeof a->field, "%s", t->field);
  snprintf(a->file, sizeof a->file, "%s", t->file);
  a->key = dup_or_null(t->idempotency_key);
  a->traceparent = dup_or_null(t->traceparent);
  a->workflow_id = dup_or_null(t->workflow_id);
  a->args = strdup(t->args_json ? t->args_json : "{}");
  a->table_ref = t->table_ref;
  a->config_ref = t->config_ref;
  a->settings = t->settings;
  a->co_ref = LUA_NOREF;
  a->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : 30000;
  if ((t->idempotency_key && !a->key) || (t->traceparent && !a->traceparent) ||
      (t->workflow_id && !a->workflow_id) || !a->args) {
    free_attempt(a);
    return NULL;
  }
  return a;
}

/* Makes the coroutine; 0 or SPINE_ENOMEM. */
static int make_co(spine_pctx *a) {
  lua_State *L = a->h->L;
  lua_pushcfunction(L, prepare);
  lua_pushlightuserdata(L, a);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    release_co(a);
    return SPINE_ENOMEM;
  }
  spine_sandbox_attach(a->co, &a->lim);
  return 0;
}

int spine_pctx_start(spine_pctx_host *h, const spine_pctx_target *t, spine_pctx_done done,
                     void *data, spine_pctx **out) {
  *out = NULL;
  spine_pctx *a = new_attempt(h, t, MODE_ATTEMPT);
  if (!a) return SPINE_ENOMEM;
  a->done = done;
  a->data = data;
  if (make_co(a)) {
    free_attempt(a);
    return SPINE_ENOMEM;
  }
  uv_timer_init(h->loop, &a->timer);
  a->timer.data = a;
  a->deadline = uv_now(h->loop) + (uint64_t)a->timeout_ms;
  uv_timer_start(&a->timer, on_timeout, (uint64_t)a->timeout_ms, 0);
  *out = a;
  step(a, 2);
  return 0;
}

void spine_pctx_cancel(spine_pctx *a) {
  a->done = NULL;
  close_attempt(a);
}

/* Runs webhook (or webhook.verify / webhook.handle) to its end: a new attempt, or NULL with `e`
 * set. The caller reads the results on a->co and ends with end_webhook. */
static spine_pctx *run_webhook(spine_pctx_host *h, const spine_pctx_target *t,
                               const spine_provider_webhook *w, int *nres, spine_err *e) {
  spine_pctx *a = new_attempt(h, t, MODE_WEBHOOK);
  if (a) a->hook = w;
  if (a && make_co(a)) {
    free_attempt(a);
    a = NULL;
  }
  if (!a) {
    spine_err_set(e, SPINE_ENOMEM, t->file, NULL, "out of memory");
    return NULL;
  }
  *nres = 0;
  int st = resume(a, 2, nres);
  settle(a, st, *nres);
  return a;
}

static void end_webhook(spine_pctx *a) {
  release_co(a);
  free_attempt(a);
}

int spine_pctx_webhook_verify(spine_pctx_host *h, const spine_pctx_target *t,
                              const spine_provider_webhook *w, char *id, size_t size,
                              spine_err *e) {
  int nres;
  spine_pctx *a = run_webhook(h, t, w, &nres, e);
  if (!a) return SPINE_ENOMEM;
  int rc = 0;
  if (a->res.kind == SPINE_PROVIDER_OK) {
    size_t len = 0;
    const char *s = nres > 0 && lua_type(a->co, -nres) == LUA_TSTRING
                        ? lua_tolstring(a->co, -nres, &len)
                        : NULL;
    if (!s || len == 0 || len >= size) {
      set_result(a, SPINE_PROVIDER_INVALID, "invalid_result",
                 "%s:%d: webhook.verify returned %s (expected the delivery id: a string of 1 to "
                 "%zu bytes)",
                 a->file, a->fn_line, s ? "a string of the wrong length" : "no string", size - 1);
      rc = SPINE_EINVAL;
    } else {
      memcpy(id, s, len);
      id[len] = '\0';
    }
  } else {
    rc = SPINE_EINVAL;
  }
  if (rc) {
    spine_secrets_scrub_text(&h->secrets, a->res.message, sizeof a->res.message);
    spine_err_set(e, rc, t->file, NULL, "%s", a->res.message);
  }
  end_webhook(a);
  return rc;
}

int spine_pctx_webhook(spine_pctx_host *h, const spine_pctx_target *t,
                       const spine_provider_webhook *w, spine_buf *actions, spine_err *e) {
  int nres;
  spine_pctx *a = run_webhook(h, t, w, &nres, e);
  if (!a) return SPINE_ENOMEM;
  int rc = 0;
  spine_buf out = SPINE_BUF_INIT;
  if (a->res.kind != SPINE_PROVIDER_OK) {
    rc = SPINE_EINVAL;
  } else {
    lua_State *L = h->L;
    char where[300];
    snprintf(where, sizeof where, "%s:%d", a->file, a->fn_line);
    if (nres > 1) lua_pop(a->co, nres - 1); /* the first result counts */
    if (nres > 0)
      lua_xmove(a->co, L, 1);
    else
      lua_pushnil(L);
    spine_err ae;
    if (spine_webhook_actions_encode(L, where, &out, &ae)) {
      set_result(a, SPINE_PROVIDER_INVALID, "invalid_result", "%s", ae.msg);
      rc = SPINE_EINVAL;
    } else if (spine_secrets_scrub_json(L, &h->secrets, &out)) {
      set_result(a, SPINE_PROVIDER_INVALID, "invalid_result", "%s: webhook: cannot scrub", where);
      rc = SPINE_EINVAL;
    }
  }
  if (rc) {
    spine_secrets_scrub_text(&h->secrets, a->res.message, sizeof a->res.message);
    spine_err_set(e, rc, t->file, NULL, "%s", a->res.message);
  } else {
    rc = spine_buf_append(actions, out.data, out.len);
  }
  spine_buf_free(&out);
  end_webhook(a);
  return rc;
}
