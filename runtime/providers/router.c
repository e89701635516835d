/* Routing one provider call: channel after channel (skipping those without the operation or
 * with an open breaker), one token of the provider's bucket per attempt, then the outcome with
 * every attempt listed and every secret any adapter was ever handed scrubbed. Owns the calls; runs
 * them only from loop callbacks, so a caller's callback never runs inside spine_router_call. */
#include "router.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

enum { CALL_READY, CALL_WAIT_TOKEN, CALL_RUNNING };

struct spine_provider_call {
  spine_router *r;
  spine_router_provider *p;
  char *operation, *args, *key, *traceparent, *workflow_id;
  int64_t timeout_ms;
  int state;   /* CALL_* */
  int next;    /* the channel to consider next */
  int current; /* the channel of the attempt under way (or waiting for its token) */
  int last;    /* the channel that answered last, or -1 */
  int probe;   /* the channel whose half-open probe this call holds, or -1 */
  spine_pctx *attempt;
  spine_buf attempts; /* the members of the "attempts" array so far */
  spine_provider_kind kind;
  char code[32], message[512];
  spine_buf details;
  spine_provider_cb cb;
  void *data;
  spine_provider_call *prev, *next_call; /* r->calls */
  spine_provider_call *queued;           /* the ready queue or a provider's wait queue */
};

static void advance(spine_provider_call *c);

/* ---- the breaker ---- */

static uint64_t breaker_now(const spine_router *r) {
  return r->clock ? (uint64_t)r->clock(r->clock_data) : uv_now(r->loop);
}

spine_router_breaker_state spine_router_breaker(const spine_router_channel *ch) {
  const spine_router_provider *p = ch->provider;
  if (ch->state == SPINE_ROUTER_BREAKER_OPEN &&
      breaker_now(p->router) - ch->opened_at >= (uint64_t)p->breaker_cooldown_ms)
    return SPINE_ROUTER_BREAKER_HALF_OPEN;
  return ch->state;
}

/* May `c` try channel `i` now? A half-open channel lets exactly one probe through. */
static int breaker_admit(spine_provider_call *c, int i) {
  spine_router_channel *ch = &c->p->channels[i];
  switch (spine_router_breaker(ch)) {
    case SPINE_ROUTER_BREAKER_CLOSED:
      return 1;
    case SPINE_ROUTER_BREAKER_OPEN:
      return 0;
    case SPINE_ROUTER_BREAKER_HALF_OPEN:
      if (ch->probing) return 0;
      ch->state = SPINE_ROUTER_BREAKER_HALF_OPEN;
      ch->probing = 1;
      c->probe = i;
      return 1;
    default:
      abort();
  }
}

static void release_probe(spine_provider_call *c) {
  if (c->probe < 0) return;
  c->p->channels[c->probe].probing = 0;
  c->probe = -1;
}

/* Counts an attempt's end on channel `i`: only transient failures count against it. A
 * probe's answer closes or re-opens the breaker; answers of calls admitted before the breaker
 * opened change nothing while it is open. */
static void breaker_report(spine_provider_call *c, int i, int transient) {
  spine_router_channel *ch = &c->p->channels[i];
  int probe = c->probe == i;
  release_probe(c);
  if (!transient) {
    ch->failures = 0;
    if (probe || ch->state == SPINE_ROUTER_BREAKER_CLOSED) ch->state = SPINE_ROUTER_BREAKER_CLOSED;
    return;
  }
  if (!probe && ch->state != SPINE_ROUTER_BREAKER_CLOSED) return;
  ch->failures++;
  if (probe || ch->failures >= c->p->breaker_failures) {
    if (ch->state == SPINE_ROUTER_BREAKER_CLOSED && !c->r->quiet)
      spine_log_warn("providers", "circuit breaker opened", "provider", c->p->name, "channel",
                     ch->name, NULL);
    ch->state = SPINE_ROUTER_BREAKER_OPEN;
    ch->opened_at = breaker_now(c->r);
  }
}

/* ---- the rate limit ---- */

static double burst(const spine_router_provider *p) {
  return p->rps > 1 ? p->rps : 1;
}

static void refill(spine_router_provider *p) {
  uint64_t now = uv_now(p->router->loop);
  p->tokens += (double)(now - p->refilled_at) * p->rps / 1000.0;
  if (p->tokens > burst(p)) p->tokens = burst(p);
  p->refilled_at = now;
}

static void on_token(uv_timer_t *t);

static void arm(spine_router_provider *p) {
  if (!p->wait_head || uv_is_active((uv_handle_t *)&p->timer)) return;
  double ms = ceil((1.0 - p->tokens) * 1000.0 / p->rps);
  uv_timer_start(&p->timer, on_token, ms < 1 ? 1 : (uint64_t)ms, 0);
}

/* 1: `c` may go now; 0: it waits in line for a token. */
static int take_token(spine_provider_call *c) {
  spine_router_provider *p = c->p;
  if (p->rps <= 0) return 1;
  refill(p);
  if (!p->wait_head && p->tokens >= 1 - 1e-9) {
    p->tokens -= 1;
    return 1;
  }
  c->queued = NULL;
  if (p->wait_tail)
    p->wait_tail->queued = c;
  else
    p->wait_head = c;
  p->wait_tail = c;
  c->state = CALL_WAIT_TOKEN;
  p->waited++;
  spine_metrics_inc(p->rate_limited, 1);
  arm(p);
  return 0;
}

static void unqueue(spine_provider_call **head, spine_provider_call **tail,
                    spine_provider_call *c) {
  spine_provider_call *prev = NULL;
  for (spine_provider_call *x = *head; x; prev = x, x = x->queued)
    if (x == c) {
      if (prev)
        prev->queued = c->queued;
      else
        *head = c->queued;
      if (*tail == c) *tail = prev;
      c->queued = NULL;
      return;
    }
}

static void run_attempt(spine_provider_call *c);

static void on_token(uv_timer_t *t) {
  spine_router_provider *p = container_of(t, spine_router_provider, timer);
  refill(p);
  while (p->wait_head && p->tokens >= 1 - 1e-9) {
    spine_provider_call *c = p->wait_head;
    p->wait_head = c->queued;
    if (!p->wait_head) p->wait_tail = NULL;
    c->queued = NULL;
    p->tokens -= 1;
    run_attempt(c); /* may end the call, or queue it here again */
  }
  arm(p);
}

/* ---- metrics ---- */

static const char *const outcome_names[] = {"ok", "transient", "rejected", "invalid",
                                            "circuit_open"};

static double read_breaker(void *data) {
  return (double)spine_router_breaker(data);
}

static double read_running(void *data) {
  return ((spine_router *)data)->running;
}

void spine_router_set_metrics(spine_router *r, spine_metrics *m) {
  if (!m || r->metrics) return;
  r->metrics = m;
  char name[512];
  for (int i = 0; i < r->nproviders; i++) {
    spine_router_provider *p = &r->providers[i];
    for (int j = 0; j < p->nchannels; j++)
      for (int k = 0; k < SPINE_ROUTER_OUTCOMES; k++) {
        snprintf(name, sizeof name,
                 "spine_provider_calls_total{provider=\"%s\",channel=\"%s\",outcome=\"%s\"}",
                 p->name, p->channels[j].name, outcome_names[k]);
        p->channels[j].calls[k] = spine_metrics_add(m, SPINE_METRIC_COUNTER, name,
                                                    "Provider channel attempts by outcome");
      }
  }
  for (int i = 0; i < r->nproviders; i++) {
    spine_router_provider *p = &r->providers[i];
    for (int j = 0; j < p->nchannels; j++) {
      snprintf(name, sizeof name, "spine_provider_breaker_state{provider=\"%s\",channel=\"%s\"}",
               p->name, p->channels[j].name);
      spine_metrics_add_fn(m, SPINE_METRIC_GAUGE, name,
                           "Circuit breaker per provider channel: 0 closed, 1 open, 2 half-open",
                           read_breaker, &p->channels[j]);
    }
  }
  for (int i = 0; i < r->nproviders; i++) {
    spine_router_provider *p = &r->providers[i];
    snprintf(name, sizeof name, "spine_provider_rate_limited_total{provider=\"%s\"}", p->name);
    p->rate_limited = spine_metrics_add(m, SPINE_METRIC_COUNTER, name,
                                        "Provider calls that waited for a rate-limit token");
    spine_metrics_inc(p->rate_limited, (double)p->waited);
  }
  spine_metrics_add_fn(m, SPINE_METRIC_GAUGE, "spine_provider_calls_in_flight",
                       "Provider calls started and not yet answered", read_running, r);
}

static const char *breaker_name(spine_router_breaker_state s) {
  return s == SPINE_ROUTER_BREAKER_OPEN        ? "open"
         : s == SPINE_ROUTER_BREAKER_HALF_OPEN ? "half_open"
                                               : "closed";
}

static void calls_json(spine_buf *out, const double *n) {
  spine_buf_putc(out, '{');
  for (int k = 0; k < SPINE_ROUTER_OUTCOMES; k++)
    spine_buf_printf(out, "%s\"%s\":%.0f", k ? "," : "", outcome_names[k], n[k]);
  spine_buf_putc(out, '}');
}

void spine_router_status_json(const spine_router *r, spine_buf *out) {
  spine_buf_putc(out, '[');
  for (int i = 0; i < r->nproviders; i++) {
    const spine_router_provider *p = &r->providers[i];
    double total[SPINE_ROUTER_OUTCOMES] = {0};
    int worst = SPINE_ROUTER_BREAKER_CLOSED; /* open > half_open > closed */
    spine_buf ch = SPINE_BUF_INIT;
    spine_buf_putc(&ch, '[');
    for (int j = 0; j < p->nchannels; j++) {
      const spine_router_channel *c = &p->channels[j];
      spine_router_breaker_state s = spine_router_breaker(c);
      if (s == SPINE_ROUTER_BREAKER_OPEN || (s == SPINE_ROUTER_BREAKER_HALF_OPEN && !worst))
        worst = (int)s;
      double n[SPINE_ROUTER_OUTCOMES];
      for (int k = 0; k < SPINE_ROUTER_OUTCOMES; k++)
        total[k] += n[k] = c->calls[k] ? spine_metrics_value(c->calls[k]) : 0;
      spine_buf_puts(&ch, j ? ",{\"channel\":" : "{\"channel\":");
      spine_log_json_string(&ch, c->name, strlen(c->name));
      spine_buf_printf(&ch, ",\"breaker\":\"%s\",\"calls\":", breaker_name(s));
      calls_json(&ch, n);
      spine_buf_putc(&ch, '}');
    }
    spine_buf_putc(&ch, ']');
    spine_buf_puts(out, i ? ",{\"provider\":" : "{\"provider\":");
    spine_log_json_string(out, p->name, strlen(p->name));
    spine_buf_printf(out, ",\"breaker\":\"%s\",\"rate_limit\":{\"rps\":", breaker_name(worst));
    if (p->rps > 0)
      spine_buf_printf(out, "%g", p->rps);
    else
      spine_buf_puts(out, "null");
    spine_buf_printf(out, ",\"waited\":%lld},\"calls\":", (long long)p->waited);
    calls_json(out, total);
    spine_buf_puts(out, ",\"channels\":");
    spine_buf_puts(out, spine_buf_str(&ch));
    spine_buf_putc(out, '}');
    spine_buf_free(&ch);
  }
  spine_buf_putc(out, ']');
}

/* ---- calls ---- */

static void on_kick(uv_timer_t *t) {
  spine_router *r = container_of(t, spine_router, kick);
  spine_provider_call *c;
  while ((c = r->ready_head)) { /* calls queued meanwhile run in this pass too */
    r->ready_head = c->queued;
    if (!r->ready_head) r->ready_tail = NULL;
    c->queued = NULL;
    c->state = CALL_RUNNING;
    advance(c);
  }
}

static void on_closed(uv_handle_t *h) {
  spine_router *r = h->data;
  if (--r->handles == 0 && r->closed) r->closed(r->closed_data);
}

void spine_router_init(spine_router *r, uv_loop_t *loop, spine_pctx_host *host,
                       spine_router_provider *providers, int n) {
  memset(r, 0, sizeof *r);
  r->loop = loop;
  r->host = host;
  r->providers = providers;
  r->nproviders = n;
  uv_timer_init(loop, &r->kick);
  r->kick.data = r;
  r->handles = 1;
  for (int i = 0; i < n; i++) {
    spine_router_provider *p = &providers[i];
    p->router = r;
    p->tokens = burst(p);
    p->refilled_at = uv_now(loop);
    uv_timer_init(loop, &p->timer);
    p->timer.data = r;
    r->handles++;
    for (int j = 0; j < p->nchannels; j++)
      p->channels[j].provider = p;
  }
}

static void unlink_call(spine_provider_call *c) {
  spine_router *r = c->r;
  if (c->prev)
    c->prev->next_call = c->next_call;
  else
    r->calls = c->next_call;
  if (c->next_call) c->next_call->prev = c->prev;
  c->prev = c->next_call = NULL;
  r->running--;
}

static void free_call(spine_provider_call *c) {
  free(c->operation);
  free(c->args);
  free(c->key);
  free(c->traceparent);
  free(c->workflow_id);
  spine_buf_free(&c->attempts);
  spine_buf_free(&c->details);
  free(c);
}

void spine_router_cancel(spine_provider_call *c) {
  spine_router *r = c->r;
  if (c->state == CALL_READY) unqueue(&r->ready_head, &r->ready_tail, c);
  if (c->state == CALL_WAIT_TOKEN) unqueue(&c->p->wait_head, &c->p->wait_tail, c);
  if (c->attempt) spine_pctx_cancel(c->attempt);
  c->attempt = NULL;
  release_probe(c);
  unlink_call(c);
  free_call(c);
}

void spine_router_close(spine_router *r, void (*closed)(void *data), void *data) {
  while (r->calls)
    spine_router_cancel(r->calls);
  r->closed = closed;
  r->closed_data = data;
  uv_close((uv_handle_t *)&r->kick, on_closed);
  for (int i = 0; i < r->nproviders; i++)
    uv_close((uv_handle_t *)&r->providers[i].timer, on_closed);
}

static char *dup_or_null(const char *s, int *fail) {
  char *d = s ? strdup(s) : NULL;
  if (s && !d) *fail = 1;
  return d;
}

int spine_router_call(spine_router *r, spine_router_provider *p, const spine_provider_request *q,
                      spine_provider_cb cb, void *data, spine_provider_call **out) {
  if (out) *out = NULL;
  spine_provider_call *c = calloc(1, sizeof *c);
  if (!c) return SPINE_ENOMEM;
  int fail = 0;
  c->r = r;
  c->p = p;
  c->operation = dup_or_null(q->operation, &fail);
  c->args = dup_or_null(q->args_json ? q->args_json : "{}", &fail);
  c->key = dup_or_null(q->idempotency_key, &fail);
  c->traceparent = dup_or_null(q->traceparent, &fail);
  c->workflow_id = dup_or_null(q->workflow_id, &fail);
  if (fail) {
    free_call(c);
    return SPINE_ENOMEM;
  }
  c->timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : p->timeout_ms > 0 ? p->timeout_ms : 30000;
  c->last = c->probe = c->current = -1;
  c->kind = SPINE_PROVIDER_TRANSIENT;
  c->cb = cb;
  c->data = data;
  c->state = CALL_READY;
  c->next_call = r->calls;
  if (r->calls) r->calls->prev = c;
  r->calls = c;
  r->running++;
  if (r->ready_tail)
    r->ready_tail->queued = c;
  else
    r->ready_head = c;
  r->ready_tail = c;
  uv_timer_start(&r->kick, on_kick, 0, 0);
  if (out) *out = c;
  return 0;
}

/* Does channel `ch` define `op`? */
static int offers(spine_router *r, const spine_router_channel *ch, const char *op) {
  lua_State *L = r->host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ch->ops_ref);
  lua_pushstring(L, op);
  int t = lua_rawget(L, -2);
  lua_pop(L, 2);
  return t == LUA_TFUNCTION;
}

static void note_attempt(spine_provider_call *c, int ch, const char *code, const char *msg) {
  spine_buf *b = &c->attempts;
  if (b->len) spine_buf_putc(b, ',');
  spine_buf_puts(b, "{\"channel\":");
  spine_log_json_string(b, c->p->channels[ch].name, strlen(c->p->channels[ch].name));
  spine_buf_puts(b, ",\"code\":");
  spine_log_json_string(b, code, strlen(code));
  spine_buf_puts(b, ",\"message\":");
  spine_log_json_string(b, msg, strlen(msg));
  spine_buf_putc(b, '}');
}

static const char *kind_name(spine_provider_kind k) {
  switch (k) {
    case SPINE_PROVIDER_TRANSIENT:
      return "transient";
    case SPINE_PROVIDER_REJECTED:
      return "rejected";
    case SPINE_PROVIDER_INVALID:
      return "invalid_argument";
    default:
      return "ok";
  }
}

static void put_member(spine_buf *b, const char *key, const char *value) {
  spine_buf_printf(b, ",\"%s\":", key);
  spine_log_json_string(b, value, strlen(value));
}

/* The error of a call that did not succeed, keys in canonical (sorted) order. */
static void error_json(spine_provider_call *c, spine_buf *b) {
  const char *channel = c->last >= 0 ? c->p->channels[c->last].name : "";
  spine_buf_puts(b, "{\"attempts\":[");
  spine_buf_append(b, c->attempts.data, c->attempts.len);
  spine_buf_putc(b, ']');
  put_member(b, "channel", channel);
  put_member(b, "code", c->code);
  if (c->details.len) {
    spine_buf_puts(b, ",\"details\":");
    spine_buf_append(b, c->details.data, c->details.len);
  }
  put_member(b, "kind", kind_name(c->kind));
  put_member(b, "message", c->message);
  put_member(b, "operation", c->operation);
  put_member(b, "provider", c->p->name);
  spine_buf_putc(b, '}');
}

/* Answers the caller and frees the call. `result` is the OK result, else NULL. */
static void end_call(spine_provider_call *c, const spine_buf *result) {
  spine_buf json = SPINE_BUF_INIT;
  if (c->kind == SPINE_PROVIDER_OK)
    spine_buf_append(&json, result->data, result->len);
  else
    error_json(c, &json);
  /* Every secret handed out so far, not only this call's: an adapter may return one it kept
   * from an earlier call. */
  if (spine_secrets_scrub_json(c->r->host->L, &c->r->host->secrets, &json) || !json.len) {
    spine_buf_reset(&json); /* never the unscrubbed text */
    c->kind = SPINE_PROVIDER_TRANSIENT;
    spine_buf_puts(&json, "{\"code\":\"memory\",\"kind\":\"transient\",\"message\":\"out of "
                          "memory while answering the call\"}");
  }
  spine_provider_outcome o;
  o.kind = c->kind;
  o.json = spine_buf_str(&json);
  o.json_len = json.len;
  o.channel = c->last >= 0 ? c->p->channels[c->last].name : "";
  unlink_call(c); /* the callback may start, cancel or count calls */
  c->cb(c->data, &o);
  spine_buf_free(&json);
  free_call(c);
}

static void on_attempt(void *data, spine_pctx_result *res) {
  spine_provider_call *c = data;
  int i = c->current;
  spine_router_channel *ch = &c->p->channels[i];
  c->attempt = NULL;
  int outcome = res->kind == SPINE_PROVIDER_OK          ? SPINE_ROUTER_OK
                : res->kind == SPINE_PROVIDER_TRANSIENT ? SPINE_ROUTER_TRANSIENT
                : res->kind == SPINE_PROVIDER_REJECTED  ? SPINE_ROUTER_REJECTED
                                                        : SPINE_ROUTER_INVALID;
  spine_metrics_inc(ch->calls[outcome], 1);
  breaker_report(c, i, res->kind == SPINE_PROVIDER_TRANSIENT);
  c->last = i;
  c->kind = res->kind;
  snprintf(c->code, sizeof c->code, "%s", res->code);
  snprintf(c->message, sizeof c->message, "%s", res->message);
  spine_buf_reset(&c->details);
  if (res->kind != SPINE_PROVIDER_OK) spine_buf_append(&c->details, res->json.data, res->json.len);
  note_attempt(c, i, res->code, res->message);
  if (res->kind == SPINE_PROVIDER_TRANSIENT)
    advance(c);
  else
    end_call(c, &res->json);
}

static void run_attempt(spine_provider_call *c) {
  spine_router_provider *p = c->p;
  spine_router_channel *ch = &p->channels[c->current];
  c->state = CALL_RUNNING;
  spine_pctx_target t = {
      .provider = p->name,
      .file = p->file,
      .channel = ch->name,
      .operation = c->operation,
      .table_ref = ch->ops_ref,
      .field = c->operation,
      .config_ref = p->config_ref,
      .settings = p->settings,
      .idempotency_key = c->key,
      .traceparent = c->traceparent,
      .workflow_id = c->workflow_id,
      .args_json = c->args,
      .timeout_ms = c->timeout_ms,
  };
  if (spine_pctx_start(c->r->host, &t, on_attempt, c, &c->attempt)) {
    spine_pctx_result res;
    memset(&res, 0, sizeof res);
    res.kind = SPINE_PROVIDER_TRANSIENT;
    snprintf(res.code, sizeof res.code, "memory");
    snprintf(res.message, sizeof res.message, "out of memory starting the attempt");
    on_attempt(c, &res);
  }
}

static void advance(spine_provider_call *c) {
  spine_router_provider *p = c->p;
  while (c->next < p->nchannels) {
    int i = c->next++;
    spine_router_channel *ch = &p->channels[i];
    if (!offers(c->r, ch, c->operation)) continue;
    if (!breaker_admit(c, i)) {
      spine_metrics_inc(ch->calls[SPINE_ROUTER_CIRCUIT_OPEN], 1);
      c->kind = SPINE_PROVIDER_TRANSIENT;
      snprintf(c->code, sizeof c->code, "circuit_open");
      snprintf(c->message, sizeof c->message, "%s: the circuit breaker of channel %s is open",
               p->name, ch->name);
      spine_buf_reset(&c->details);
      note_attempt(c, i, c->code, c->message);
      continue;
    }
    c->current = i;
    if (take_token(c)) run_attempt(c);
    return;
  }
  c->kind = SPINE_PROVIDER_TRANSIENT;
  end_call(c, NULL);
}
