/* The outbox relay (outbox.h). Three lanes, one per kind of subscriber, each with at most one
 * store op in flight: `signal` delivers in SQL (spine.outbox_signal: the signal and its
 * delivery commit together); `http` and `start` claim heads with a lease, act outside the
 * database (a POST on the HTTP client, a case start in a worker thread) and then commit the
 * outcome (spine.outbox_finish). After the lanes ran, one query says when to look again; a
 * notification or a finished delivery runs the lanes at once. Nothing here polls. */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "hmac.h"
#include "http_client.h"
#include "log.h"
#include "store.h"

#define SIGNAL_BATCH   50 /* each signal is a subtransaction: PostgreSQL caches 64 per backend */
#define START_BATCH    16
#define START_LEASE_MS 120000 /* a case start takes a blocking connection and a compile */
#define LEASE_MARGIN   10000  /* a POST's claim outlives its timeout by this */
#define MIN_REARM_MS   50     /* due now but not taken (locked elsewhere): look again soon */
#define FULL_REARM_MS  1000   /* due now, but no room: the end of a POST or start looks again */
#define ERROR_REARM_MS 1000   /* after a failed relay query */

enum { LANE_SIGNAL, LANE_HTTP, LANE_START, NLANES };
static const char *const kind_names[NLANES] = {"signal", "http", "start"};

static int sql_signal, sql_claim, sql_finish, sql_refuse, sql_next;

typedef enum { D_POSTING, D_STARTING, D_FINISHING } delivery_state;

/* One claimed delivery of a webhook or a case start, from its claim to its committed outcome.
 * Invariant: in r->all until dropped; `gen` older than r->gen means the connection was lost
 * since the claim, and its outcome is never written (the claim lapses; it runs again). */
typedef struct delivery {
  spine_outbox *r;
  spine_op op; /* the outcome (spine.outbox_finish) */
  int lane;
  unsigned gen;
  delivery_state state;
  char subscriber[64];
  int64_t event_id;
  int attempt, max_attempts;
  char *url, *secret_env, *event_type, *trace_id, *body, *input; /* owned; NULL when absent */
  spine_http_client_call *call;
  int ok;
  int refused; /* not attempted, and never will be as configured: dead at once */
  char error[512];
  struct delivery *prev, *next;
} delivery;

typedef struct lane {
  spine_outbox *r;
  int kind;
  spine_op op;
  int busy;  /* its op is in the store */
  int again; /* asked to run while busy: runs once more after */
  int room;  /* rows its op may return */
} lane;

struct spine_outbox {
  uv_loop_t *loop;
  spine_engine *eng;
  spine_store *store;
  spine_outbox_opts o;
  char *allow_http; /* o.allow_http's copy */
  spine_http_client *http;
  uv_timer_t timer; /* the earliest due delivery */
  lane lanes[NLANES];
  spine_op next_op;
  int next_busy, next_again;
  uv_work_t work; /* the case starts of one claim, in a worker thread */
  delivery **job;
  int njob, cap_job, job_busy;
  delivery *all;
  int in_flight; /* this generation's POSTs */
  unsigned gen;  /* +1 per lost connection */
  int lost, stopping;
  /* figures for /metrics */
  uint64_t delivered[NLANES], retried[NLANES], dead[NLANES];
  double pending, lag_from_ms; /* of the last look: pending deliveries, the oldest's creation */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_col(PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col)) return NULL;
  char *s = strdup(PQgetvalue(res, row, col));
  if (!s) abort(); /* as the store's control data */
  return s;
}

void spine_outbox_init(void) {
  static int done;
  if (done) return;
  done = 1;
  sql_signal = spine_store_statement("SELECT spine.outbox_signal($1::int, $2::int8, $3::int8)");
  sql_claim = spine_store_statement(
      "SELECT subscriber, event_id, attempt, max_attempts, url, secret_env, event_type,"
      " trace_id, body, input FROM spine.outbox_claim($1::int8, $2::text, $3::int, $4::int8)");
  sql_finish = spine_store_statement(
      "SELECT spine.outbox_finish($1::int8, $2, $3::int8, $4::bool, $5, $6::int8, $7::int8)");
  /* As outbox_finish for a failure, but dead whatever attempts are left. */
  sql_refuse =
      spine_store_statement("UPDATE spine.outbox_deliveries SET status = 'dead', last_error = $4,"
                            " claimed_by = NULL, claimed_until = NULL"
                            " WHERE subscriber = $2 AND event_id = $3::int8 AND status = 'pending'"
                            " AND claimed_by = $1::int8 RETURNING status");
  sql_next = spine_store_statement("SELECT next_ms, pending, oldest_ms"
                                   " FROM spine.outbox_next($1::int8)");
}

/* ---- which URLs a subscriber may have ---- */

/* Whether the list `allow` (comma-separated hosts) names `d`'s host; -1 with `e` set when an
 * entry is no host. */
static int lists_host(const char *allow, const spine_http_client_dest *d, spine_err *e) {
  int found = 0;
  for (const char *p = allow; p && *p;) {
    size_t len = strcspn(p, ",");
    char entry[300];
    const char *s = p;
    while (len && *s == ' ')
      s++, len--;
    while (len && s[len - 1] == ' ')
      len--;
    p += strcspn(p, ",");
    if (*p == ',') p++;
    if (!len) continue;
    snprintf(entry, sizeof entry, "%.*s", (int)(len < sizeof entry ? len : sizeof entry - 1), s);
    spine_http_client_host h;
    spine_err he;
    if (spine_http_client_host_parse(entry, &h, &he)) {
      spine_err_set(e, SPINE_EINVAL, SPINE_OUTBOX_ALLOW_HTTP, NULL, "%s", he.msg);
      return -1;
    }
    found |= d && spine_http_client_host_match(&h, d);
  }
  return found;
}

int spine_outbox_check_url(const char *url, const char *allow_http, spine_err *e) {
  spine_http_client_dest d;
  spine_err ue;
  int rc = spine_http_client_dest_of(url, &d, &ue);
  if (rc) return spine_err_set(e, rc, NULL, "url", "%s", ue.msg);
  if (d.https) return 0;
  int listed = lists_host(allow_http, &d, e);
  if (listed < 0) return SPINE_EINVAL;
  if (listed) return 0;
  return spine_err_set(e, SPINE_EINVAL, NULL, "url",
                       "%.160s is plaintext http://, refused unless " SPINE_OUTBOX_ALLOW_HTTP
                       " lists %s",
                       url, d.host);
}

/* ---- deliveries ---- */

static void drop(delivery *d) {
  spine_outbox *r = d->r;
  if (d->prev)
    d->prev->next = d->next;
  else
    r->all = d->next;
  if (d->next) d->next->prev = d->prev;
  spine_op_free(&d->op);
  free(d->url);
  free(d->secret_env);
  free(d->event_type);
  free(d->trace_id);
  free(d->body);
  free(d->input);
  free(d);
}

static void lane_run(spine_outbox *r, int k);

static void finished(spine_op *op) {
  delivery *d = op->data;
  spine_outbox *r = d->r;
  int k = d->lane;
  char ev[24];
  snprintf(ev, sizeof ev, "%" PRId64, d->event_id);
  PGresult *res = spine_op_result(op, 0);
  if (op->status) {
    /* The claim lapses and the delivery runs again: at least once, never lost. */
    spine_log_error("outbox", "cannot record a delivery's outcome", "subscriber", d->subscriber,
                    "event", ev, "error", spine_op_error(op)->msg, NULL);
  } else if (!res || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
    spine_log_warn("outbox", "delivery taken over by another worker (its claim had lapsed)",
                   "subscriber", d->subscriber, "event", ev, NULL);
  } else {
    const char *st = PQgetvalue(res, 0, 0);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", d->attempt);
    if (!strcmp(st, "delivered")) {
      r->delivered[k]++;
    } else if (!strcmp(st, "dead")) {
      r->dead[k]++;
      spine_log_warn("outbox",
                     d->refused ? "dead letter: delivery refused (spine outbox --dead)"
                                : "dead letter: attempts ran out (spine outbox --dead)",
                     "subscriber", d->subscriber, "event", ev, "attempts", attempt, "error",
                     d->error, NULL);
    } else {
      r->retried[k]++;
      if (!r->o.quiet)
        spine_log_info("outbox", "delivery failed, will retry", "subscriber", d->subscriber,
                       "event", ev, "attempt", attempt, "error", d->error, NULL);
    }
  }
  drop(d);
  lane_run(r, k); /* the key's next event may be its head now */
}

/* Commits the attempt's outcome; the lane runs again after it. */
static void finish(delivery *d) {
  spine_outbox *r = d->r;
  d->state = D_FINISHING;
  spine_op *op = &d->op;
  spine_op_reset(op);
  if (d->refused) {
    spine_op_stmt(op, sql_refuse, 1);
    spine_op_param_int(op, spine_engine_worker(r->eng));
    spine_op_param(op, d->subscriber);
    spine_op_param_int(op, d->event_id);
    spine_op_param(op, d->error);
  } else {
    spine_op_stmt(op, sql_finish, 1);
    spine_op_param_int(op, spine_engine_worker(r->eng));
    spine_op_param(op, d->subscriber);
    spine_op_param_int(op, d->event_id);
    spine_op_param_bool(op, d->ok);
    spine_op_param(op, d->ok ? NULL : d->error);
    spine_op_param_int(op, r->o.backoff_ms);
    spine_op_param_int(op, r->o.backoff_max_ms);
  }
  op->cb = finished;
  op->data = d;
  spine_store_submit(r->store, op);
}

static void failed(delivery *d, const char *msg) {
  d->ok = 0;
  snprintf(d->error, sizeof d->error, "%s", msg);
  finish(d);
}

/* Not sent, and no later attempt would be: dead now, the error naming subscriber and cause. */
static void refused(delivery *d, const char *why) {
  d->ok = 0;
  d->refused = 1;
  snprintf(d->error, sizeof d->error, "subscriber %.63s not sent: %.400s", d->subscriber, why);
  finish(d);
}

static void on_answer(void *data, const spine_http_client_response *res) {
  delivery *d = data;
  spine_outbox *r = d->r;
  d->call = NULL;
  if (d->gen != r->gen || r->stopping) { /* its outcome is not ours to write any more */
    drop(d);
    return;
  }
  r->in_flight--;
  d->ok = !res->error && res->status >= 200 && res->status < 300;
  if (res->error)
    snprintf(d->error, sizeof d->error, "%s", res->message);
  else if (!d->ok)
    snprintf(d->error, sizeof d->error, "HTTP %d from %s", res->status, d->subscriber);
  finish(d);
}

/* POSTs the event: JSON body, X-Spine-Event-Id, and when the subscriber has a secret
 * X-Spine-Timestamp (now, unix seconds) and X-Spine-Signature (HMAC-SHA256 of "<timestamp>.<body>"
 * keyed with the secret in the subscriber's variable), as SPEC section 6 signs webhooks: the
 * receiver refuses an old timestamp, so a captured request cannot be replayed later. Each attempt
 * signs anew; X-Spine-Event-Id stays, for the receiver's deduplication. */
static void post(delivery *d) {
  spine_outbox *r = d->r;
  char id[64], type[160], attempt[48], sig[96] = "", stamp[48] = "", traceparent[64];
  snprintf(id, sizeof id, "X-Spine-Event-Id: %" PRId64, d->event_id);
  snprintf(type, sizeof type, "X-Spine-Event-Type: %s", d->event_type ? d->event_type : "");
  snprintf(attempt, sizeof attempt, "X-Spine-Attempt: %d", d->attempt);
  /* A row written past `spine outbox subscribe` is checked here all the same. */
  spine_err ue;
  if (spine_outbox_check_url(d->url ? d->url : "", r->allow_http, &ue)) return refused(d, ue.msg);
  if (d->secret_env) {
    /* Only variables meant for it: a subscriber row naming another (an inbound webhook's
     * SPINE_SECRET_*, anything of the process) would make the relay a signing oracle for it. */
    if (strncmp(d->secret_env, SPINE_OUTBOX_SECRET_PREFIX, strlen(SPINE_OUTBOX_SECRET_PREFIX))) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "%.64s is not an outbox secret (its name must start with " SPINE_OUTBOX_SECRET_PREFIX
               "): not signed",
               d->secret_env);
      return refused(d, msg);
    }
    const char *key = getenv(d->secret_env);
    if (!key || !*key) {
      char msg[160];
      snprintf(msg, sizeof msg, "%.64s (the subscriber's secret) is not set in spine serve",
               d->secret_env);
      return failed(d, msg);
    }
    long long now = (long long)time(NULL);
    char hex[65];
    spine_buf signed_text = SPINE_BUF_INIT;
    if (spine_buf_printf(&signed_text, "%lld.", now) || spine_buf_puts(&signed_text, d->body)) {
      spine_buf_free(&signed_text);
      return failed(d, "out of memory");
    }
    spine_hmac_sha256_hex(key, strlen(key), signed_text.data, signed_text.len, hex);
    spine_buf_free(&signed_text);
    snprintf(stamp, sizeof stamp, "X-Spine-Timestamp: %lld", now);
    snprintf(sig, sizeof sig, "X-Spine-Signature: sha256=%s", hex);
  }
  const char *headers[] = {"Content-Type: application/json",
                           id,
                           type,
                           attempt,
                           sig[0] ? stamp : NULL,
                           sig[0] ? sig : NULL,
                           NULL};
  spine_http_client_request req = {0};
  req.method = SPINE_HTTP_CLIENT_POST;
  req.url = d->url;
  req.headers = headers;
  req.body = d->body;
  req.body_len = strlen(d->body);
  req.timeout_ms = r->o.timeout_ms;
  req.max_response = 64 * 1024;
  if (d->trace_id && strlen(d->trace_id) == 32) {
    snprintf(traceparent, sizeof traceparent, "00-%s-%016" PRIx64 "-01", d->trace_id,
             (uint64_t)d->event_id);
    req.traceparent = traceparent;
  }
  spine_err e;
  spine_err_clear(&e);
  if (spine_http_client_send(r->http, &req, on_answer, d, &d->call, &e)) return failed(d, e.msg);
  d->state = D_POSTING;
  r->in_flight++;
}

/* ---- case starts (manifests' on_events), in a worker thread ---- */

static void job_work(uv_work_t *w) {
  spine_outbox *r = w->data;
  for (int i = 0; i < r->njob; i++) {
    delivery *d = r->job[i];
    spine_err e;
    spine_err_clear(&e);
    int rc = r->o.start(r->o.start_data, d->event_id, d->event_type, d->input ? d->input : "{}",
                        d->trace_id, &e);
    d->ok = rc == 0;
    if (rc) {
      char msg[sizeof d->error];
      snprintf(d->error, sizeof d->error, "%s", spine_err_format(&e, msg, sizeof msg));
    }
  }
}

static void job_done(uv_work_t *w, int status) {
  spine_outbox *r = w->data;
  r->job_busy = 0;
  for (int i = 0; i < r->njob; i++) {
    delivery *d = r->job[i];
    if (d->gen != r->gen || r->stopping || status) {
      drop(d);
    } else {
      finish(d);
    }
  }
  r->njob = 0;
  lane_run(r, LANE_START);
}

/* ---- lanes ---- */

static delivery *claimed(spine_outbox *r, int k, PGresult *res, int row) {
  delivery *d = calloc(1, sizeof *d);
  if (!d) abort();
  d->r = r;
  d->lane = k;
  d->gen = r->gen;
  spine_op_init(&d->op);
  snprintf(d->subscriber, sizeof d->subscriber, "%s", PQgetvalue(res, row, 0));
  d->event_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
  d->attempt = atoi(PQgetvalue(res, row, 2));
  d->max_attempts = atoi(PQgetvalue(res, row, 3));
  d->url = dup_col(res, row, 4);
  d->secret_env = dup_col(res, row, 5);
  d->event_type = dup_col(res, row, 6);
  d->trace_id = dup_col(res, row, 7);
  d->body = dup_col(res, row, 8);
  d->input = dup_col(res, row, 9);
  d->next = r->all;
  if (r->all) r->all->prev = d;
  r->all = d;
  return d;
}

static void next_run(spine_outbox *r);
static void on_timer(uv_timer_t *t);

/* When every lane is idle: ask when to look again. */
static void settle(spine_outbox *r) {
  for (int k = 0; k < NLANES; k++)
    if (r->lanes[k].busy) return;
  next_run(r);
}

static void lane_done(spine_op *op) {
  lane *l = op->data;
  spine_outbox *r = l->r;
  int k = l->kind, full = 0;
  l->busy = 0;
  PGresult *res = spine_op_result(op, 0);
  if (op->status || !res) {
    spine_log_error("outbox", "relay query failed", "kind", kind_names[k], "error",
                    spine_op_error(op)->msg, NULL);
    l->again = 0;
    if (!r->stopping && !r->lost) uv_timer_start(&r->timer, on_timer, ERROR_REARM_MS, 0);
    return;
  }
  if (k == LANE_SIGNAL) {
    int delivered = 0, failures = 0, dead = 0;
    if (PQntuples(res) == 1 &&
        sscanf(PQgetvalue(res, 0, 0), "{%d,%d,%d}", &delivered, &failures, &dead) == 3) {
      r->delivered[k] += (uint64_t)delivered;
      r->retried[k] += (uint64_t)failures;
      r->dead[k] += (uint64_t)dead;
      full = delivered + failures + dead >= l->room;
      if (failures + dead)
        spine_log_warn("outbox", "signal deliveries failed (spine outbox --dead)", "kind", "signal",
                       NULL);
    }
  } else {
    int n = PQntuples(res);
    full = n >= l->room;
    for (int i = 0; i < n; i++) {
      delivery *d = claimed(r, k, res, i);
      if (k == LANE_HTTP) {
        post(d);
      } else {
        d->state = D_STARTING;
        if (r->njob == r->cap_job) {
          r->cap_job = r->cap_job ? 2 * r->cap_job : START_BATCH;
          r->job = realloc(r->job, (size_t)r->cap_job * sizeof *r->job);
          if (!r->job) abort();
        }
        r->job[r->njob++] = d;
      }
    }
    if (k == LANE_START && r->njob) {
      r->job_busy = 1;
      r->work.data = r;
      if (uv_queue_work(r->loop, &r->work, job_work, job_done)) abort();
      full = 0; /* the job's end runs the lane again */
    }
  }
  if ((l->again || full) && !r->stopping && !r->lost) {
    l->again = 0;
    lane_run(r, k);
  }
  settle(r);
}

static void lane_run(spine_outbox *r, int k) {
  lane *l = &r->lanes[k];
  if (r->stopping || r->lost) return;
  if (l->busy) {
    l->again = 1;
    return;
  }
  int room = 0;
  switch (k) {
    case LANE_SIGNAL:
      room = SIGNAL_BATCH;
      break;
    case LANE_HTTP:
      room = r->o.max_in_flight - r->in_flight; /* full: a finished POST runs the lane */
      break;
    case LANE_START:
      room = r->o.start && !r->job_busy ? START_BATCH : 0; /* the job's end runs it */
      break;
    default:
      abort();
  }
  if (room <= 0) return;
  l->busy = 1;
  l->room = room;
  spine_op *op = &l->op;
  spine_op_reset(op);
  if (k == LANE_SIGNAL) {
    spine_op_stmt(op, sql_signal, 1);
    spine_op_param_int(op, room);
    spine_op_param_int(op, r->o.backoff_ms);
    spine_op_param_int(op, r->o.backoff_max_ms);
  } else {
    spine_op_stmt(op, sql_claim, 1);
    spine_op_param_int(op, spine_engine_worker(r->eng));
    spine_op_param(op, kind_names[k]);
    spine_op_param_int(op, room);
    spine_op_param_int(op, k == LANE_HTTP ? r->o.timeout_ms + LEASE_MARGIN : START_LEASE_MS);
  }
  op->cb = lane_done;
  op->data = l;
  spine_store_submit(r->store, op);
}

static void run_all(spine_outbox *r) {
  for (int k = 0; k < NLANES; k++)
    lane_run(r, k);
}

/* ---- waking up ---- */

static void on_timer(uv_timer_t *t) {
  run_all(t->data);
}

static void next_done(spine_op *op) {
  spine_outbox *r = op->data;
  r->next_busy = 0;
  if (r->stopping || r->lost) return;
  if (r->next_again) {
    r->next_again = 0;
    next_run(r);
    return;
  }
  PGresult *res = spine_op_result(op, 0);
  if (op->status || !res || PQntuples(res) != 1) {
    spine_log_error("outbox", "relay query failed", "kind", "next", "error",
                    spine_op_error(op)->msg, NULL);
    uv_timer_start(&r->timer, on_timer, ERROR_REARM_MS, 0);
    return;
  }
  r->pending = atof(PQgetvalue(res, 0, 1));
  r->lag_from_ms = PQgetisnull(res, 0, 2) ? 0 : atof(PQgetvalue(res, 0, 2));
  if (PQgetisnull(res, 0, 0)) {
    uv_timer_stop(&r->timer); /* nothing waits: a notification wakes the relay */
    return;
  }
  int64_t delay = strtoll(PQgetvalue(res, 0, 0), NULL, 10) - now_ms();
  int full = r->in_flight >= r->o.max_in_flight || r->job_busy;
  uv_timer_start(&r->timer, on_timer,
                 delay > 0 ? (uint64_t)delay + 1
                 : full    ? FULL_REARM_MS
                           : MIN_REARM_MS,
                 0);
}

static void next_run(spine_outbox *r) {
  if (r->stopping || r->lost) return;
  if (r->next_busy) {
    r->next_again = 1;
    return;
  }
  r->next_busy = 1;
  spine_op *op = &r->next_op;
  spine_op_reset(op);
  spine_op_stmt(op, sql_next, 1);
  spine_op_param_int(op, spine_engine_worker(r->eng));
  op->cb = next_done;
  op->data = r;
  spine_store_submit(r->store, op);
}

static void on_notify(void *data, const char *channel, const char *payload) {
  (void)channel, (void)payload;
  run_all(data);
}

/* The store forgot every op: lanes are idle, deliveries waiting for their outcome's commit
 * are dropped, POSTs and starts in flight are dropped when they end. */
static void on_lost(void *data) {
  spine_outbox *r = data;
  r->lost = 1;
  r->gen++;
  r->in_flight = 0;
  for (int k = 0; k < NLANES; k++)
    r->lanes[k].busy = r->lanes[k].again = 0;
  r->next_busy = r->next_again = 0;
  uv_timer_stop(&r->timer);
  for (delivery *d = r->all, *next; d; d = next) {
    next = d->next;
    if (d->state == D_FINISHING) drop(d);
  }
}

static void on_back(void *data) {
  spine_outbox *r = data;
  r->lost = 0;
  run_all(r);
}

/* ---- life cycle ---- */

int spine_outbox_new(uv_loop_t *loop, spine_engine *eng, const spine_outbox_opts *opts,
                     spine_outbox **out, spine_err *e) {
  *out = NULL;
  spine_outbox_init();
  if (opts->allow_http && lists_host(opts->allow_http, NULL, e) < 0) return SPINE_EINVAL;
  spine_outbox *r = calloc(1, sizeof *r);
  if (!r) return spine_err_set(e, SPINE_ENOMEM, "outbox", NULL, "out of memory");
  r->loop = loop;
  r->eng = eng;
  r->store = spine_engine_store(eng);
  r->o = *opts;
  r->o.allow_http = NULL;
  if (opts->allow_http && !(r->allow_http = strdup(opts->allow_http))) {
    free(r);
    return spine_err_set(e, SPINE_ENOMEM, "outbox", NULL, "out of memory");
  }
  if (r->o.backoff_ms <= 0) r->o.backoff_ms = 1000;
  if (r->o.backoff_max_ms <= 0) r->o.backoff_max_ms = 3600 * 1000;
  if (r->o.backoff_max_ms < r->o.backoff_ms) r->o.backoff_max_ms = r->o.backoff_ms;
  if (r->o.timeout_ms <= 0) r->o.timeout_ms = 10000;
  if (r->o.max_in_flight <= 0) r->o.max_in_flight = 32;
  int rc = spine_http_client_new(loop, &r->http, e);
  if (!rc) rc = spine_engine_listen(eng, "spine_outbox", on_notify, r);
  if (rc) {
    if (r->http) spine_http_client_close(r->http, NULL, NULL);
    free(r->allow_http);
    free(r);
    if (!e || !e->code) spine_err_set(e, rc, "outbox", NULL, "cannot start the outbox relay");
    return rc;
  }
  spine_engine_on_connection(eng, on_lost, on_back, r);
  for (int k = 0; k < NLANES; k++) {
    r->lanes[k].r = r;
    r->lanes[k].kind = k;
    spine_op_init(&r->lanes[k].op);
  }
  spine_op_init(&r->next_op);
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_timer, 0, 0); /* the first look, once the loop runs */
  *out = r;
  return 0;
}

static double read_count(void *data) {
  return (double)*(uint64_t *)data;
}

static double read_pending(void *data) {
  return ((spine_outbox *)data)->pending;
}

static double read_lag(void *data) {
  spine_outbox *r = data;
  if (r->pending <= 0 || r->lag_from_ms <= 0) return 0;
  double lag = ((double)now_ms() - r->lag_from_ms) / 1000;
  return lag > 0 ? lag : 0;
}

static double read_in_flight(void *data) {
  return ((spine_outbox *)data)->in_flight;
}

int spine_outbox_metrics(spine_outbox *r, spine_metrics *m) {
  int rc = 0;
  for (int k = 0; k < NLANES && !rc; k++) {
    char name[96];
    snprintf(name, sizeof name, "spine_outbox_delivered_total{kind=\"%s\"}", kind_names[k]);
    rc = spine_metrics_add_fn(m, SPINE_METRIC_COUNTER, name,
                              "Outbox deliveries made by this worker, per kind of subscriber",
                              read_count, &r->delivered[k]);
    snprintf(name, sizeof name, "spine_outbox_retries_total{kind=\"%s\"}", kind_names[k]);
    if (!rc)
      rc = spine_metrics_add_fn(m, SPINE_METRIC_COUNTER, name,
                                "Failed outbox delivery attempts to be tried again", read_count,
                                &r->retried[k]);
    snprintf(name, sizeof name, "spine_outbox_dead_total{kind=\"%s\"}", kind_names[k]);
    if (!rc)
      rc = spine_metrics_add_fn(m, SPINE_METRIC_COUNTER, name,
                                "Outbox deliveries whose attempts ran out (dead letters)",
                                read_count, &r->dead[k]);
  }
  if (!rc)
    rc = spine_metrics_add_fn(m, SPINE_METRIC_GAUGE, "spine_outbox_pending",
                              "Outbox deliveries not yet made, as the relay last saw them",
                              read_pending, r);
  if (!rc)
    rc = spine_metrics_add_fn(m, SPINE_METRIC_GAUGE, "spine_outbox_lag_seconds",
                              "Age of the oldest outbox delivery not yet made", read_lag, r);
  if (!rc)
    rc = spine_metrics_add_fn(m, SPINE_METRIC_GAUGE, "spine_outbox_in_flight",
                              "Webhook POSTs this worker has in flight", read_in_flight, r);
  return rc;
}

void spine_outbox_stop(spine_outbox *r) {
  if (r->stopping) return;
  r->stopping = 1;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, NULL);
  spine_http_client_close(r->http, NULL, NULL); /* each POST's callback drops it */
  r->http = NULL;
}

void spine_outbox_free(spine_outbox *r) {
  if (!r) return;
  while (r->all) /* their outcomes were queued in the closed store: the claims lapse */
    drop(r->all);
  for (int k = 0; k < NLANES; k++)
    spine_op_free(&r->lanes[k].op);
  spine_op_free(&r->next_op);
  free(r->job);
  free(r->allow_http);
  free(r);
}
