/* spine-simulate, run as `spine simulate`: a provider simulator for tests and demos, a tool
 * beside the spine executable, not part of it. It plays an energy provider's REST API
 * (switches of supply, terminations of contracts, their cancellation) on 127.0.0.1 with
 * configurable latency, errors, outages and refusals, honours Idempotency-Key (a key seen
 * before returns the first answer, never a second effect), records effects for
 * GET /_sim/effects, and later calls back a webhook URL with a signed body. It also receives
 * Spine's outbox webhooks (POST /v1/events), recording each attempt in order, with the same
 * outages. Its state lives in memory only; it stops on SIGINT or SIGTERM. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "buf.h"
#include "cli.h"
#include "hmac.h"
#include "http_client.h"
#include "http_server.h"
#include "jsondoc.h"
#include "log.h"
#include "simulate_smtp.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define MAX_KEY                       200
#define MAX_EFFECTS                   100000
#define MAX_ATTEMPTS                  4

static const char *const spec[] = {
    "port=",       "latency=",   "error-rate=",       "outage-after=",
    "outage-for=", "callback=",  "callback-secret=",  "callback-after=",
    "seed=",       "smtp-port=", "smtp-reject-rate=", "events-secret=",
    NULL};
static const char usage[] =
    "usage: spine simulate [--port N] [--latency MS] [--error-rate R]\n"
    "                      [--outage-after N --outage-for N]\n"
    "                      [--callback URL --callback-secret S [--callback-after MS]] [--seed N]\n"
    "                      [--smtp-port N [--smtp-reject-rate R]]\n"
    "                      [--events-secret S]\n"
    "  Plays an energy provider's API on 127.0.0.1 until SIGINT or SIGTERM:\n"
    "    POST /v1/switches        starts a switch (201 {id, status}); an Idempotency-Key seen\n"
    "                             before returns the first answer and makes no new effect\n"
    "    GET  /v1/switches/ID     the switch\n"
    "    POST /v1/switches/ID/cancel  cancels it (200 {id, status: \"cancelled\"}; again: the same)\n"
    "    POST /v1/terminations, GET /v1/terminations/ID, POST /v1/terminations/ID/cancel\n"
    "                             the same for the termination of a contract\n"
    "    GET  /_sim/effects       what happened: {requests, down, latency_ms, effects[, emails,\n"
    "                             emails_unique_keys, emails_rejected]} (for tests)\n"
    "    POST /_sim/outage        {\"down\": true|false}: every API request gets 503 while down\n"
    "    POST /_sim/latency       {\"ms\": N}: the --latency from now on\n"
    "    POST /_sim/refuse        {\"kind\": \"switch\"|\"termination\", \"status\": 400-499 or 0}:\n"
    "                             new requests of that kind get that refusal (0: accepted again)\n"
    "  and an outbox subscriber (`spine outbox subscribe NAME --url URL/v1/events`):\n"
    "    POST /v1/events          records the delivery and answers 204 (outages and errors\n"
    "                             below apply to it too)\n"
    "    GET  /_sim/events        every delivery attempt in arrival order: {events: [{seq,\n"
    "                             status, event_id, attempt, timestamp, signature,\n"
    "                             signature_ok, body}]}\n"
    "    POST /_sim/script        {\"responses\": [{\"status\": N, \"body\"?: \"JSON text\",\n"
    "                             \"repeat\"?: N, \"match\"?: \"text\", \"location\"?: URL}],\n"
    "                             \"clear\"?: bool}: the next API requests (with \"match\":\n"
    "                             whose path or body has the text) get these answers, in\n"
    "                             order, without effect (with \"location\": that header)\n"
    "    POST /_sim/smtp          {\"down\": true|false}: the SMTP sink defers (451) mail\n"
    "  --port N           port (default 7790; 0 picks one). The first line on stdout is\n"
    "                     {\"url\": ..., \"port\": N} once listening.\n"
    "  --latency MS       delay every API answer (the effect happens at once)\n"
    "  --error-rate R     answer 500, without effect, to this fraction of API requests (0-1)\n"
    "  --outage-after N --outage-for M   API requests N+1 .. N+M get 503, without effect\n"
    "  --callback URL     after each new switch or termination, POST {event, id, status,\n"
    "                     idempotency_key} there (event \"switch.confirmed\",\n"
    "                     \"termination.confirmed\" or \"activation.confirmed\"; none once\n"
    "                     cancelled), signed\n"
    "                     X-Spine-Timestamp: <unix seconds> and X-Spine-Signature:\n"
    "                     sha256=HMAC(--callback-secret, \"<timestamp>.<body>\"),\n"
    "                     --callback-after MS later (default 100); retried when transient\n"
    "  --seed N           seed of the error draw (default 1): runs are reproducible\n"
    "  --smtp-port N      also an SMTP sink on 127.0.0.1:N (0 picks one; the first line then\n"
    "                     has \"smtp_port\") that records every message it accepts\n"
    "  --smtp-reject-rate R  refuse (554) this fraction of the messages (0-1)\n"
    "  --events-secret S  check X-Spine-Signature of /v1/events against\n"
    "                     HMAC(S, \"<X-Spine-Timestamp>.<body>\"), the timestamp within 300 s\n";

/* What a provider is asked to do: the kinds of effect, each under /v1/<path>. */
typedef enum { KIND_SWITCH, KIND_TERMINATION, KIND_ACTIVATION, NKINDS } effect_kind;
static const struct {
  const char *name, *path, *id_prefix;
} kinds[NKINDS] = {{"switch", "switches", "sw"},
                   {"termination", "terminations", "tm"},
                   {"activation", "activations", "ac"}};

typedef struct effect {
  char id[32];
  effect_kind kind;
  char key[MAX_KEY + 1]; /* "" without Idempotency-Key */
  char *request;         /* the request body */
  size_t request_len;
  char *answer; /* the first answer's body, replayed for the same key */
  int status;
  int confirmed;
  int cancelled; /* POST .../ID/cancel came */
  /* the callback */
  int cb_attempts, cb_status;
  char cb_error[256];
} effect;

/* One POST /v1/events, answered or not. */
typedef struct delivery {
  int status; /* what the simulator answered */
  char event_id[32], attempt[16];
  char timestamp[24]; /* X-Spine-Timestamp as sent, "" if none */
  char signature[80]; /* X-Spine-Signature as sent, "" if none */
  int signature_ok;   /* with --events-secret: it matched "<timestamp>.<body>", and the
                         timestamp was within 300 s of this clock */
  char *body;
  size_t body_len;
} delivery;

/* A scripted answer (POST /_sim/script): the next API request gets it, before anything else
 * happens to it (no effect, no outage, no injected error). */
typedef struct scripted {
  int status;
  char *body;
  char *match;    /* only for a request whose path or body contains it; NULL: any */
  char *location; /* a Location header (a redirect someone should not follow), or NULL */
  struct scripted *next;
} scripted;

typedef struct sim sim;

/* An answer waiting for --latency. */
typedef struct delayed {
  uv_timer_t timer;
  sim *s;
  spine_http_server_exchange *x; /* NULL once aborted */
  int status;
  char *body;
  size_t len;
  int replayed;
  struct delayed *prev, *next;
} delayed;

/* A callback waiting for its time (or its retry). */
typedef struct callback {
  uv_timer_t timer;
  sim *s;
  int idx;
  char *body;
  size_t len;
  long long signed_at; /* the X-Spine-Timestamp sent, 0 before the first attempt */
  spine_http_client_call *call;
  struct callback *prev, *next;
} callback;

struct sim {
  uv_loop_t loop;
  spine_http_server *srv;
  spine_http_client *cli;
  spine_sim_smtp *smtp;
  long smtp_port; /* -1: no SMTP sink */
  double smtp_reject_rate;
  int down;                       /* POST /_sim/outage */
  int refuse[NKINDS];             /* POST /_sim/refuse: the status new requests of a kind get */
  scripted *script, *script_tail; /* POST /_sim/script, in order */
  long script_left, script_served;
  uv_signal_t sigint, sigterm;
  int64_t latency, callback_after;
  double error_rate;
  long outage_after, outage_for;
  const char *callback_url, *secret;
  uint64_t rng;
  long requests; /* API requests seen */
  effect *effects;
  int n, cap;
  delayed *delays;
  callback *callbacks;
  int stopping;
  const char *events_secret;
  delivery *deliveries;
  int ndeliveries, cap_deliveries;
};

/* xorshift64*: the error draw, reproducible from --seed. */
static double draw(sim *s) {
  s->rng ^= s->rng >> 12;
  s->rng ^= s->rng << 25;
  s->rng ^= s->rng >> 27;
  return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void on_delay_closed(uv_handle_t *h) {
  delayed *d = container_of((uv_timer_t *)h, delayed, timer);
  free(d->body);
  free(d);
}

static void drop_delay(delayed *d) {
  sim *s = d->s;
  if (d->prev)
    d->prev->next = d->next;
  else
    s->delays = d->next;
  if (d->next) d->next->prev = d->prev;
  uv_close((uv_handle_t *)&d->timer, on_delay_closed);
}

static void send_answer(spine_http_server_exchange *x, int status, const char *body, size_t len,
                        int replayed) {
  if (replayed) spine_http_server_add_header(x, "Idempotent-Replayed", "true");
  spine_http_server_respond(x, status, "application/json", body, len);
}

static void on_delay(uv_timer_t *t) {
  delayed *d = container_of(t, delayed, timer);
  if (d->x) send_answer(d->x, d->status, d->body, d->len, d->replayed);
  drop_delay(d);
}

static void on_delay_abort(void *data) {
  ((delayed *)data)->x = NULL;
}

/* Answers now, or after --latency. */
static void answer(sim *s, spine_http_server_exchange *x, int status, const char *body,
                   int replayed) {
  size_t len = strlen(body);
  delayed *d = s->latency > 0 ? calloc(1, sizeof *d) : NULL;
  if (d) d->body = malloc(len + 1);
  if (!d || !d->body) {
    if (d) free(d);
    send_answer(x, status, body, len, replayed);
    return;
  }
  memcpy(d->body, body, len + 1);
  d->len = len;
  d->s = s;
  d->x = x;
  d->status = status;
  d->replayed = replayed;
  d->next = s->delays;
  if (s->delays) s->delays->prev = d;
  s->delays = d;
  spine_http_server_on_abort(x, on_delay_abort, d);
  uv_timer_init(&s->loop, &d->timer);
  uv_timer_start(&d->timer, on_delay, (uint64_t)s->latency, 0);
}

static void json_str(spine_buf *b, const char *str, size_t len) {
  spine_log_json_string(b, str, len);
}

/* ---- callbacks ---- */

static void on_callback_closed(uv_handle_t *h) {
  callback *c = container_of((uv_timer_t *)h, callback, timer);
  free(c->body);
  free(c);
}

static void drop_callback(callback *c) {
  sim *s = c->s;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->callbacks = c->next;
  if (c->next) c->next->prev = c->prev;
  if (c->call) spine_http_client_cancel(c->call);
  uv_close((uv_handle_t *)&c->timer, on_callback_closed);
}

static void on_callback_timer(uv_timer_t *t);

static void on_callback_answer(void *data, const spine_http_client_response *r) {
  callback *c = data;
  sim *s = c->s;
  c->call = NULL;
  effect *ef = &s->effects[c->idx];
  ef->cb_status = r->status;
  snprintf(ef->cb_error, sizeof ef->cb_error, "%s", r->error ? r->message : "");
  if (!r->error && r->status >= 200 && r->status < 300) ef->confirmed = 1;
  char st[16];
  snprintf(st, sizeof st, "%d", r->status);
  spine_log_info("simulate", "callback answered", "id", ef->id, "status", st, NULL);
  if (r->transient && ef->cb_attempts < MAX_ATTEMPTS && !s->stopping) {
    uv_timer_start(&c->timer, on_callback_timer, (uint64_t)(s->callback_after << ef->cb_attempts),
                   0);
    return;
  }
  drop_callback(c);
}

static void on_callback_timer(uv_timer_t *t) {
  callback *c = container_of(t, callback, timer);
  sim *s = c->s;
  effect *ef = &s->effects[c->idx];
  if (ef->cancelled) { /* a provider confirms nothing it was told to drop */
    drop_callback(c);
    return;
  }
  /* SPEC §6: the HMAC of "<timestamp>.<body>", the timestamp in its own header. A retry sends
   * the same signature, so that Spine, if it did accept an attempt whose answer was lost, takes
   * the retry for the duplicate it is; it signs anew only once the first timestamp nears the
   * end of the 300 s window Spine accepts. */
  char hex[65], sig[96], stamp[48];
  long long now = (long long)time(NULL);
  if (!c->signed_at || now - c->signed_at > 240) c->signed_at = now;
  now = c->signed_at;
  snprintf(stamp, sizeof stamp, "%lld.", now);
  spine_buf msg = SPINE_BUF_INIT;
  spine_buf_puts(&msg, stamp);
  spine_buf_append(&msg, c->body, c->len);
  spine_hmac_sha256_hex(s->secret, strlen(s->secret), spine_buf_str(&msg), msg.len, hex);
  spine_buf_free(&msg);
  snprintf(sig, sizeof sig, "X-Spine-Signature: sha256=%s", hex);
  snprintf(stamp, sizeof stamp, "X-Spine-Timestamp: %lld", now);
  const char *headers[] = {"Content-Type: application/json", stamp, sig, NULL};
  spine_http_client_request req = {0};
  req.method = SPINE_HTTP_CLIENT_POST;
  req.url = s->callback_url;
  req.headers = headers;
  req.body = c->body;
  req.body_len = c->len;
  req.timeout_ms = 10000;
  ef->cb_attempts++;
  spine_err e;
  if (spine_http_client_send(s->cli, &req, on_callback_answer, c, &c->call, &e)) {
    snprintf(ef->cb_error, sizeof ef->cb_error, "%s", e.msg);
    drop_callback(c);
  }
}

static void schedule_callback(sim *s, int idx) {
  effect *ef = &s->effects[idx];
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_printf(&b, "{\"event\":\"%s.confirmed\",\"id\":", kinds[ef->kind].name);
  json_str(&b, ef->id, strlen(ef->id));
  spine_buf_puts(&b, ",\"status\":\"confirmed\",\"idempotency_key\":");
  if (ef->key[0])
    json_str(&b, ef->key, strlen(ef->key));
  else
    spine_buf_puts(&b, "null");
  spine_buf_puts(&b, "}");
  callback *c = calloc(1, sizeof *c);
  if (!c || !b.data) {
    free(c);
    spine_buf_free(&b);
    return;
  }
  c->s = s;
  c->idx = idx;
  c->body = b.data; /* taken from the buffer */
  c->len = b.len;
  c->next = s->callbacks;
  if (s->callbacks) s->callbacks->prev = c;
  s->callbacks = c;
  uv_timer_init(&s->loop, &c->timer);
  uv_timer_start(&c->timer, on_callback_timer, (uint64_t)s->callback_after, 0);
}

/* ---- the API ---- */

/* Does the request's path or body contain `text`? */
static int request_has(spine_http_server_exchange *x, const char *text) {
  size_t plen, blen, n = strlen(text);
  const char *path = spine_http_server_path(x, &plen), *body = spine_http_server_body(x, &blen);
  for (size_t i = 0; path && i + n <= plen; i++)
    if (!memcmp(path + i, text, n)) return 1;
  for (size_t i = 0; body && i + n <= blen; i++)
    if (!memcmp(body + i, text, n)) return 1;
  return 0;
}

/* Scripted answers, outages and injected errors come before any effect. Returns the status it
 * answered, or 0. */
static int injected(sim *s, spine_http_server_exchange *x) {
  long n = ++s->requests;
  scripted *a = s->script, *prev = NULL;
  while (a && a->match && !request_has(x, a->match)) {
    prev = a;
    a = a->next;
  }
  if (a) {
    if (prev)
      prev->next = a->next;
    else
      s->script = a->next;
    if (s->script_tail == a) s->script_tail = prev;
    s->script_left--;
    s->script_served++;
    int status = a->status;
    if (a->location) spine_http_server_add_header(x, "Location", a->location);
    answer(s, x, a->status, a->body, 0);
    free(a->body);
    free(a->match);
    free(a->location);
    free(a);
    return status;
  }
  if (s->down) {
    answer(s, x, 503, "{\"error\":\"outage\"}", 0);
    return 503;
  }
  if (s->outage_for > 0 && n > s->outage_after && n <= s->outage_after + s->outage_for) {
    answer(s, x, 503, "{\"error\":\"outage\"}", 0);
    return 503;
  }
  if (s->error_rate > 0 && draw(s) < s->error_rate) {
    answer(s, x, 500, "{\"error\":\"injected\"}", 0);
    return 500;
  }
  return 0;
}

static void effect_json(spine_buf *b, const effect *ef) {
  spine_buf_puts(b, "{\"id\":");
  json_str(b, ef->id, strlen(ef->id));
  spine_buf_printf(b, ",\"status\":\"%s\"}",
                   ef->cancelled   ? "cancelled"
                   : ef->confirmed ? "confirmed"
                                   : "pending");
}

/* POST /v1/switches or /v1/terminations: a new effect of kind `k`. */
static void post_effect(sim *s, spine_http_server_exchange *x, effect_kind k) {
  if (injected(s, x)) return;
  size_t klen, blen;
  const char *key = spine_http_server_header(x, "Idempotency-Key", &klen);
  if (key && (klen == 0 || klen > MAX_KEY))
    return answer(s, x, 400, "{\"error\":\"Idempotency-Key must have 1 to 200 bytes\"}", 0);
  for (int i = 0; key && i < s->n; i++)
    if (strlen(s->effects[i].key) == klen && !memcmp(s->effects[i].key, key, klen))
      return answer(s, x, s->effects[i].status, s->effects[i].answer, 1);
  if (s->refuse[k]) return answer(s, x, s->refuse[k], "{\"error\":\"refused\"}", 0);
  if (s->n == MAX_EFFECTS) return answer(s, x, 507, "{\"error\":\"simulator full\"}", 0);
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    effect *e = realloc(s->effects, (size_t)cap * sizeof *e);
    if (!e) return answer(s, x, 500, "{\"error\":\"out of memory\"}", 0);
    s->effects = e;
    s->cap = cap;
  }
  const char *body = spine_http_server_body(x, &blen);
  effect *ef = &s->effects[s->n];
  memset(ef, 0, sizeof *ef);
  ef->kind = k;
  snprintf(ef->id, sizeof ef->id, "%s-%d", kinds[k].id_prefix, s->n + 1);
  if (key) memcpy(ef->key, key, klen);
  ef->request = malloc(blen + 1);
  spine_buf b = SPINE_BUF_INIT;
  ef->status = 201;
  effect_json(&b, ef);
  ef->answer = b.data;
  if (!ef->request || !ef->answer) {
    free(ef->request);
    spine_buf_free(&b);
    return answer(s, x, 500, "{\"error\":\"out of memory\"}", 0);
  }
  memcpy(ef->request, body, blen);
  ef->request[blen] = '\0';
  ef->request_len = blen;
  s->n++;
  spine_log_info("simulate", "effect created", "kind", kinds[k].name, "id", ef->id, NULL);
  if (s->callback_url) schedule_callback(s, s->n - 1);
  answer(s, x, 201, ef->answer, 0);
}

static void post_switch(void *data, spine_http_server_exchange *x) {
  post_effect(data, x, KIND_SWITCH);
}

static void post_termination(void *data, spine_http_server_exchange *x) {
  post_effect(data, x, KIND_TERMINATION);
}

static void post_activation(void *data, spine_http_server_exchange *x) {
  post_effect(data, x, KIND_ACTIVATION);
}

/* The effect of kind `k` whose id is `id` (len bytes), or NULL. */
static effect *find_effect(sim *s, effect_kind k, const char *id, size_t len) {
  for (int i = 0; i < s->n; i++)
    if (s->effects[i].kind == k && strlen(s->effects[i].id) == len &&
        !memcmp(s->effects[i].id, id, len))
      return &s->effects[i];
  return NULL;
}

static void answer_effect(sim *s, spine_http_server_exchange *x, const effect *ef) {
  spine_buf b = SPINE_BUF_INIT;
  effect_json(&b, ef);
  answer(s, x, 200, spine_buf_str(&b), 0);
  spine_buf_free(&b);
}

/* GET /v1/<path>/ID */
static void get_effect(sim *s, spine_http_server_exchange *x, effect_kind k) {
  if (injected(s, x)) return;
  size_t len;
  const char *id = spine_http_server_path_rest(x, &len);
  effect *ef = find_effect(s, k, id, len);
  if (!ef) return answer(s, x, 404, "{\"error\":\"not found\"}", 0);
  answer_effect(s, x, ef);
}

static void get_switch(void *data, spine_http_server_exchange *x) {
  get_effect(data, x, KIND_SWITCH);
}

static void get_termination(void *data, spine_http_server_exchange *x) {
  get_effect(data, x, KIND_TERMINATION);
}

static void get_activation(void *data, spine_http_server_exchange *x) {
  get_effect(data, x, KIND_ACTIVATION);
}

/* POST /v1/<path>/ID/cancel: the effect is dropped (no callback any more); cancelling it again
 * answers the same. */
static void post_cancel(sim *s, spine_http_server_exchange *x, effect_kind k) {
  if (injected(s, x)) return;
  static const char suffix[] = "/cancel";
  size_t len, n = sizeof suffix - 1;
  const char *rest = spine_http_server_path_rest(x, &len);
  if (len <= n || memcmp(rest + len - n, suffix, n))
    return answer(s, x, 404, "{\"error\":\"not found\"}", 0);
  effect *ef = find_effect(s, k, rest, len - n);
  if (!ef) return answer(s, x, 404, "{\"error\":\"not found\"}", 0);
  if (!ef->cancelled)
    spine_log_info("simulate", "effect cancelled", "kind", kinds[k].name, "id", ef->id, NULL);
  ef->cancelled = 1;
  answer_effect(s, x, ef);
}

static void post_switch_cancel(void *data, spine_http_server_exchange *x) {
  post_cancel(data, x, KIND_SWITCH);
}

static void post_termination_cancel(void *data, spine_http_server_exchange *x) {
  post_cancel(data, x, KIND_TERMINATION);
}

static void post_activation_cancel(void *data, spine_http_server_exchange *x) {
  post_cancel(data, x, KIND_ACTIVATION);
}

static void get_effects(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_printf(&b,
                   "{\"requests\":%ld,\"down\":%s,\"latency_ms\":%lld,\"scripted_left\":%ld,"
                   "\"scripted_served\":%ld,",
                   s->requests, s->down ? "true" : "false", (long long)s->latency, s->script_left,
                   s->script_served);
  if (s->smtp) {
    spine_sim_smtp_effects(s->smtp, &b);
    spine_buf_putc(&b, ',');
  }
  spine_buf_puts(&b, "\"effects\":[");
  for (int i = 0; i < s->n; i++) {
    effect *ef = &s->effects[i];
    spine_buf_printf(&b, "%s{\"seq\":%d,\"kind\":\"%s\",\"id\":", i ? "," : "", i + 1,
                     kinds[ef->kind].name);
    json_str(&b, ef->id, strlen(ef->id));
    spine_buf_puts(&b, ",\"idempotency_key\":");
    if (ef->key[0])
      json_str(&b, ef->key, strlen(ef->key));
    else
      spine_buf_puts(&b, "null");
    spine_buf_puts(&b, ",\"request\":");
    json_str(&b, ef->request, ef->request_len);
    spine_buf_printf(&b, ",\"confirmed\":%s,\"cancelled\":%s", ef->confirmed ? "true" : "false",
                     ef->cancelled ? "true" : "false");
    if (s->callback_url) {
      spine_buf_printf(&b,
                       ",\"callback\":{\"attempts\":%d,\"status\":%d,\"error\":", ef->cb_attempts,
                       ef->cb_status);
      json_str(&b, ef->cb_error, strlen(ef->cb_error));
      spine_buf_puts(&b, "}");
    }
    spine_buf_puts(&b, "}");
  }
  spine_buf_puts(&b, "]}\n");
  spine_http_server_respond(x, 200, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

static void json_reply(spine_http_server_exchange *x, int status, const char *body) {
  spine_http_server_respond(x, status, "application/json", body, strlen(body));
}

/* The JSON body of a control request, or NULL after answering 400. */
static spine_jsondoc *control_body(spine_http_server_exchange *x) {
  size_t len;
  const char *body = spine_http_server_body(x, &len);
  spine_jsondoc *doc = NULL;
  int line;
  spine_err e;
  if (spine_jsondoc_parse(body ? body : "", body ? len : 0, &doc, &line, &e) ||
      doc->type != SPINE_JSONDOC_OBJECT) {
    spine_jsondoc_free(doc);
    json_reply(x, 400, "{\"error\":\"a JSON object expected\"}\n");
    return NULL;
  }
  return doc;
}

static void post_outage(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  spine_jsondoc *doc = control_body(x);
  if (!doc) return;
  const spine_jsondoc *down = spine_jsondoc_get(doc, "down");
  if (!down || down->type != SPINE_JSONDOC_BOOL) {
    spine_jsondoc_free(doc);
    json_reply(x, 400, "{\"error\":\"down: true or false\"}\n");
    return;
  }
  s->down = down->boolean;
  spine_jsondoc_free(doc);
  spine_log_info("simulate", s->down ? "outage begins" : "outage ends", NULL);
  json_reply(x, 200, s->down ? "{\"down\":true}\n" : "{\"down\":false}\n");
}

static void post_latency(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  spine_jsondoc *doc = control_body(x);
  if (!doc) return;
  const spine_jsondoc *ms = spine_jsondoc_get(doc, "ms");
  if (!ms || ms->type != SPINE_JSONDOC_NUMBER || !(ms->num >= 0 && ms->num <= 600000)) {
    spine_jsondoc_free(doc);
    json_reply(x, 400, "{\"error\":\"ms: a number from 0 to 600000\"}\n");
    return;
  }
  s->latency = (int64_t)ms->num;
  spine_jsondoc_free(doc);
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_printf(&b, "{\"latency_ms\":%lld}\n", (long long)s->latency);
  spine_http_server_respond(x, 200, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

static void post_refuse(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  spine_jsondoc *doc = control_body(x);
  if (!doc) return;
  const spine_jsondoc *kd = spine_jsondoc_get(doc, "kind");
  const spine_jsondoc *st = spine_jsondoc_get(doc, "status");
  int k = -1;
  for (int i = 0; kd && kd->type == SPINE_JSONDOC_STRING && i < NKINDS; i++)
    if (!strcmp(kd->str, kinds[i].name)) k = i;
  int ok = k >= 0 && st && st->type == SPINE_JSONDOC_NUMBER &&
           (st->num == 0 || (st->num >= 400 && st->num <= 499));
  if (!ok) {
    spine_jsondoc_free(doc);
    json_reply(x, 400, "{\"error\":\"kind: switch or termination; status: 400 to 499, or 0\"}\n");
    return;
  }
  s->refuse[k] = (int)st->num;
  spine_jsondoc_free(doc);
  spine_log_info("simulate", s->refuse[k] ? "refusing" : "accepting", "kind", kinds[k].name, NULL);
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_printf(&b, "{\"kind\":\"%s\",\"status\":%d}\n", kinds[k].name, s->refuse[k]);
  spine_http_server_respond(x, 200, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

/* ---- the outbox subscriber ---- */

static void copy_header(spine_http_server_exchange *x, const char *name, char *out, size_t size) {
  size_t len;
  const char *v = spine_http_server_header(x, name, &len);
  if (!v || len >= size) len = 0;
  if (v) memcpy(out, v, len);
  out[len] = '\0';
}

static void post_event(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  if (s->ndeliveries == MAX_EFFECTS) return answer(s, x, 507, "{\"error\":\"simulator full\"}", 0);
  if (s->ndeliveries == s->cap_deliveries) {
    int cap = s->cap_deliveries ? 2 * s->cap_deliveries : 64;
    delivery *d = realloc(s->deliveries, (size_t)cap * sizeof *d);
    if (!d) return answer(s, x, 500, "{\"error\":\"out of memory\"}", 0);
    s->deliveries = d;
    s->cap_deliveries = cap;
  }
  size_t blen;
  const char *body = spine_http_server_body(x, &blen);
  delivery *d = &s->deliveries[s->ndeliveries];
  memset(d, 0, sizeof *d);
  d->body = malloc(blen + 1);
  if (!d->body) return answer(s, x, 500, "{\"error\":\"out of memory\"}", 0);
  memcpy(d->body, body, blen);
  d->body[blen] = '\0';
  d->body_len = blen;
  copy_header(x, "X-Spine-Event-Id", d->event_id, sizeof d->event_id);
  copy_header(x, "X-Spine-Attempt", d->attempt, sizeof d->attempt);
  copy_header(x, "X-Spine-Timestamp", d->timestamp, sizeof d->timestamp);
  copy_header(x, "X-Spine-Signature", d->signature, sizeof d->signature);
  /* As a subscriber verifies (docs/operations.md): the HMAC of "<timestamp>.<body>", and a
   * timestamp near its own clock, so that an old request replayed is refused. */
  char *end;
  long long ts = strtoll(d->timestamp, &end, 10);
  long long skew = (long long)time(NULL) - ts;
  if (s->events_secret && !strncmp(d->signature, "sha256=", 7) && d->timestamp[0] && !*end &&
      skew <= 300 && skew >= -300) {
    spine_buf msg = SPINE_BUF_INIT;
    spine_buf_puts(&msg, d->timestamp);
    spine_buf_putc(&msg, '.');
    spine_buf_append(&msg, body, blen);
    d->signature_ok =
        spine_hmac_sha256_verify(s->events_secret, strlen(s->events_secret), spine_buf_str(&msg),
                                 msg.len, d->signature + 7, strlen(d->signature + 7));
    spine_buf_free(&msg);
  }
  s->ndeliveries++;
  d->status = injected(s, x); /* refused: the sender must come again */
  if (d->status) return;
  d->status = 204;
  answer(s, x, 204, "", 0);
}

static void get_events(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, "{\"events\":[");
  for (int i = 0; i < s->ndeliveries; i++) {
    delivery *d = &s->deliveries[i];
    spine_buf_printf(&b, "%s{\"seq\":%d,\"status\":%d,\"event_id\":", i ? "," : "", i + 1,
                     d->status);
    json_str(&b, d->event_id, strlen(d->event_id));
    spine_buf_puts(&b, ",\"attempt\":");
    json_str(&b, d->attempt, strlen(d->attempt));
    spine_buf_puts(&b, ",\"timestamp\":");
    json_str(&b, d->timestamp, strlen(d->timestamp));
    spine_buf_puts(&b, ",\"signature\":");
    json_str(&b, d->signature, strlen(d->signature));
    spine_buf_printf(&b, ",\"signature_ok\":%s,\"body\":", d->signature_ok ? "true" : "false");
    json_str(&b, d->body, d->body_len);
    spine_buf_puts(&b, "}");
  }
  spine_buf_puts(&b, "]}\n");
  spine_http_server_respond(x, 200, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

static void script_clear(sim *s) {
  while (s->script) {
    scripted *a = s->script;
    s->script = a->next;
    free(a->body);
    free(a->match);
    free(a->location);
    free(a);
  }
  s->script_tail = NULL;
  s->script_left = 0;
}

/* {"responses": [{"status": N, "body": "text", "repeat": N, "match": "text", "location": "URL"},
 * ...], "clear": bool}: queues answers for the next API requests (after those queued before,
 * unless "clear"); one with "match" waits for a request whose path or body contains it; one
 * with "location" carries that Location header. */
static void post_script(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  spine_jsondoc *doc = control_body(x);
  if (!doc) return;
  const spine_jsondoc *clear = spine_jsondoc_get(doc, "clear");
  const spine_jsondoc *list = spine_jsondoc_get(doc, "responses");
  const char *bad = NULL;
  if (clear && clear->type != SPINE_JSONDOC_BOOL) bad = "clear: true or false";
  if (list && list->type != SPINE_JSONDOC_ARRAY) bad = "responses: an array";
  for (const spine_jsondoc *r = list ? list->child : NULL; r && !bad; r = r->next) {
    const spine_jsondoc *st = spine_jsondoc_get(r, "status"), *body = spine_jsondoc_get(r, "body");
    const spine_jsondoc *rep = spine_jsondoc_get(r, "repeat");
    const spine_jsondoc *match = spine_jsondoc_get(r, "match");
    const spine_jsondoc *loc = spine_jsondoc_get(r, "location");
    if (match && (match->type != SPINE_JSONDOC_STRING || !match->str[0]))
      bad = "responses[].match: a non-empty string";
    else if (loc &&
             (loc->type != SPINE_JSONDOC_STRING || !loc->str[0] || strpbrk(loc->str, "\r\n")))
      bad = "responses[].location: a URL (one line)";
    else if (r->type != SPINE_JSONDOC_OBJECT || !st || st->type != SPINE_JSONDOC_NUMBER ||
             !(st->num >= 100 && st->num <= 599))
      bad = "responses[]: {\"status\": 100-599, \"body\"?: string, \"repeat\"?: 1-1000}";
    else if (body && body->type != SPINE_JSONDOC_STRING)
      bad = "responses[].body: a string (the answer's JSON text)";
    else if (rep && (rep->type != SPINE_JSONDOC_NUMBER || !(rep->num >= 1 && rep->num <= 1000)))
      bad = "responses[].repeat: 1 to 1000";
  }
  if (bad) {
    spine_buf b = SPINE_BUF_INIT;
    spine_buf_puts(&b, "{\"error\":");
    json_str(&b, bad, strlen(bad));
    spine_buf_puts(&b, "}\n");
    spine_http_server_respond(x, 400, "application/json", spine_buf_str(&b), b.len);
    spine_buf_free(&b);
    spine_jsondoc_free(doc);
    return;
  }
  if (clear && clear->boolean) script_clear(s);
  for (const spine_jsondoc *r = list ? list->child : NULL; r; r = r->next) {
    const spine_jsondoc *body = spine_jsondoc_get(r, "body");
    const spine_jsondoc *rep = spine_jsondoc_get(r, "repeat");
    const spine_jsondoc *match = spine_jsondoc_get(r, "match");
    const spine_jsondoc *loc = spine_jsondoc_get(r, "location");
    int times = rep ? (int)rep->num : 1;
    for (int i = 0; i < times; i++) {
      scripted *a = calloc(1, sizeof *a);
      if (!a || !(a->body = strdup(body ? body->str : "{}"))) abort(); /* a test tool */
      if (match && !(a->match = strdup(match->str))) abort();
      if (loc && !(a->location = strdup(loc->str))) abort();
      a->status = (int)spine_jsondoc_get(r, "status")->num;
      if (s->script_tail)
        s->script_tail->next = a;
      else
        s->script = a;
      s->script_tail = a;
      s->script_left++;
    }
  }
  spine_jsondoc_free(doc);
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_printf(&b, "{\"scripted_left\":%ld,\"scripted_served\":%ld}\n", s->script_left,
                   s->script_served);
  spine_http_server_respond(x, 200, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

/* {"down": bool}: the SMTP sink defers every message (451) while down. */
static void post_smtp(void *data, spine_http_server_exchange *x) {
  sim *s = data;
  spine_jsondoc *doc = control_body(x);
  if (!doc) return;
  const spine_jsondoc *down = spine_jsondoc_get(doc, "down");
  if (!s->smtp || !down || down->type != SPINE_JSONDOC_BOOL) {
    spine_jsondoc_free(doc);
    json_reply(x, 400,
               s->smtp ? "{\"error\":\"down: true or false\"}\n"
                       : "{\"error\":\"no SMTP sink: start with --smtp-port\"}\n");
    return;
  }
  spine_sim_smtp_set_down(s->smtp, down->boolean);
  spine_log_info("simulate", down->boolean ? "smtp outage begins" : "smtp outage ends", NULL);
  json_reply(x, 200, down->boolean ? "{\"smtp_down\":true}\n" : "{\"smtp_down\":false}\n");
  spine_jsondoc_free(doc);
}

static void healthz(void *data, spine_http_server_exchange *x) {
  (void)data;
  json_reply(x, 200, "{\"status\":\"ok\"}\n");
}

/* ---- life cycle ---- */

static void on_stop(uv_signal_t *h, int signum) {
  (void)signum;
  sim *s = h->data;
  if (s->stopping) return;
  s->stopping = 1;
  spine_log_info("simulate", "stopping", NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  while (s->delays)
    drop_delay(s->delays);
  while (s->callbacks)
    drop_callback(s->callbacks);
  spine_http_server_close(s->srv, NULL, NULL);
  spine_http_client_close(s->cli, NULL, NULL);
  spine_sim_smtp_close(s->smtp);
  s->smtp = NULL;
}

static int bad(const char *opt, const char *v, const char *expected) {
  fprintf(stderr, "spine simulate: --%s: \"%s\" is not %s\n\n%s", opt, v, expected, usage);
  return SPINE_EXIT_USAGE;
}

/* A whole number in [lo, hi] from option `name`, or the default. */
static int int_opt(const spine_cli_args *a, const char *name, long lo, long hi, long *out) {
  const char *v = spine_cli__opt(a, spec, name);
  if (!v) return 0;
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (!*v || *end || errno || n < lo || n > hi) {
    char expected[96];
    snprintf(expected, sizeof expected, "a whole number from %ld to %ld", lo, hi);
    return bad(name, v, expected);
  }
  *out = n;
  return 0;
}

static int parse(int argc, char **argv, sim *s, long *port) {
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 0, 0, &a);
  if (rc) return rc;
  long latency = 0, after = 0, ofor = 0, cb_after = 100, seed = 1;
  s->smtp_port = -1;
  if ((rc = int_opt(&a, "port", 0, 65535, port)) ||
      (rc = int_opt(&a, "latency", 0, 600000, &latency)) ||
      (rc = int_opt(&a, "outage-after", 0, 1000000000, &after)) ||
      (rc = int_opt(&a, "outage-for", 0, 1000000000, &ofor)) ||
      (rc = int_opt(&a, "callback-after", 0, 3600000, &cb_after)) ||
      (rc = int_opt(&a, "seed", 1, 2147483647, &seed)) ||
      (rc = int_opt(&a, "smtp-port", 0, 65535, &s->smtp_port)))
    return rc;
  const char *rr = spine_cli__opt(&a, spec, "smtp-reject-rate");
  if (rr) {
    char *end;
    s->smtp_reject_rate = strtod(rr, &end);
    if (!*rr || *end || !(s->smtp_reject_rate >= 0 && s->smtp_reject_rate <= 1))
      return bad("smtp-reject-rate", rr, "a fraction from 0 to 1");
    if (s->smtp_port < 0) {
      fprintf(stderr, "spine simulate: --smtp-reject-rate needs --smtp-port\n\n%s", usage);
      return SPINE_EXIT_USAGE;
    }
  }
  const char *er = spine_cli__opt(&a, spec, "error-rate");
  if (er) {
    char *end;
    s->error_rate = strtod(er, &end);
    if (!*er || *end || !(s->error_rate >= 0 && s->error_rate <= 1))
      return bad("error-rate", er, "a fraction from 0 to 1");
  }
  s->latency = latency;
  s->outage_after = after;
  s->outage_for = ofor;
  s->callback_after = cb_after;
  s->rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL;
  s->callback_url = spine_cli__opt(&a, spec, "callback");
  s->events_secret = spine_cli__opt(&a, spec, "events-secret");
  s->secret = spine_cli__opt(&a, spec, "callback-secret");
  if (s->callback_url && strncmp(s->callback_url, "http://", 7) &&
      strncmp(s->callback_url, "https://", 8))
    return bad("callback", s->callback_url, "an http:// or https:// URL");
  if (!!s->callback_url != !!s->secret) {
    fprintf(stderr, "spine simulate: --callback and --callback-secret go together\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  return 0;
}

int main(int argc, char **argv) {
  static char name[] = "simulate"; /* messages say `spine simulate`, however it was started */
  argv[0] = name;
  spine_cli__log_level();
  sim *s = calloc(1, sizeof *s);
  if (!s) return SPINE_EXIT_REJECTED;
  long port = 7790;
  int rc = parse(argc, argv, s, &port);
  if (rc) {
    free(s);
    return rc < 0 ? 0 : rc;
  }
  spine_err e;
  spine_err_clear(&e);
  uv_loop_init(&s->loop);
  spine_http_server_opts o = {0};
  o.port = (int)port;
  /* A test double takes whatever load a test puts on it (held by --latency too): no caps but
   * the process's open files. */
  o.max_connections = o.max_requests = INT_MAX;
  rc = spine_http_server_start(&s->loop, &o, &s->srv, &e);
  if (!rc) rc = spine_http_client_new(&s->loop, &s->cli, &e);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/v1/switches", post_switch, s);
  if (!rc) rc = spine_http_server_route(s->srv, "GET", "/v1/switches/", get_switch, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/v1/switches/", post_switch_cancel, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/v1/terminations", post_termination, s);
  if (!rc) rc = spine_http_server_route(s->srv, "GET", "/v1/terminations/", get_termination, s);
  if (!rc)
    rc = spine_http_server_route(s->srv, "POST", "/v1/terminations/", post_termination_cancel, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/v1/activations", post_activation, s);
  if (!rc) rc = spine_http_server_route(s->srv, "GET", "/v1/activations/", get_activation, s);
  if (!rc)
    rc = spine_http_server_route(s->srv, "POST", "/v1/activations/", post_activation_cancel, s);
  if (!rc) rc = spine_http_server_route(s->srv, "GET", "/_sim/effects", get_effects, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/_sim/outage", post_outage, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/_sim/latency", post_latency, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/_sim/refuse", post_refuse, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/v1/events", post_event, s);
  if (!rc) rc = spine_http_server_route(s->srv, "GET", "/_sim/events", get_events, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/_sim/script", post_script, s);
  if (!rc) rc = spine_http_server_route(s->srv, "POST", "/_sim/smtp", post_smtp, s);
  if (!rc) rc = spine_http_server_route(s->srv, "GET", "/healthz", healthz, s);
  if (!rc && s->smtp_port >= 0)
    rc = spine_sim_smtp_start(&s->loop, (int)s->smtp_port, s->smtp_reject_rate, s->rng, &s->smtp,
                              &e);
  if (rc) {
    spine_sim_smtp_close(s->smtp);
    if (s->srv) spine_http_server_close(s->srv, NULL, NULL);
    if (s->cli) spine_http_client_close(s->cli, NULL, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    free(s);
    return spine_cli__fail(0, &e, NULL);
  }
  int bound = spine_http_server_port(s->srv);
  if (s->smtp)
    printf("{\"url\":\"http://127.0.0.1:%d\",\"port\":%d,\"smtp_port\":%d}\n", bound, bound,
           spine_sim_smtp_port(s->smtp));
  else
    printf("{\"url\":\"http://127.0.0.1:%d\",\"port\":%d}\n", bound, bound);
  fflush(stdout);
  char p[16];
  snprintf(p, sizeof p, "%d", bound);
  spine_log_info("simulate", "listening", "port", p, NULL);
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_stop, SIGINT);
  uv_signal_start(&s->sigterm, on_stop, SIGTERM);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&s->loop);
  for (int i = 0; i < s->n; i++) {
    free(s->effects[i].request);
    free(s->effects[i].answer);
  }
  free(s->effects);
  for (int i = 0; i < s->ndeliveries; i++)
    free(s->deliveries[i].body);
  free(s->deliveries);
  script_clear(s);
  free(s);
  return rc ? SPINE_EXIT_REJECTED : 0;
}
