/* Group commit over a pool of pipelined libpq connections (see store.h).
 * Each connection carries at most one batch: its ops' statements, then one Sync, so the whole
 * batch is one implicit transaction. Ops with a lock key queue on the connection their key
 * hashes to; the others on a shared queue any idle connection takes its share of. A failing
 * statement aborts its batch: the failing op gets its error (or, if transient, runs again alone),
 * the innocent ones are queued again at the front of their queues. */
#include "store.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "merge.h"

#define MAX_EXTRA_STATEMENTS 256
#define MAX_BATCH            1024
/* Statements a batch sends at most (an op with more goes alone); each connection's libpq holds
 * as many command-queue entries from its start (prewarm). */
#define MAX_BATCH_STATEMENTS 2048
#define MAX_TRIES            20
#define DEFAULT_TIMEOUT_MS   15000
#define WATCHDOG_MS          1000
#define MAX_POOL             64

static const char *extra_texts[MAX_EXTRA_STATEMENTS];
static int extra_merged[MAX_EXTRA_STATEMENTS]; /* its merged form's id + 1, 0 if none */
static int nextra;

/* A FIFO of ops linked through op->next. */
typedef struct opq {
  spine_op *head, *tail;
  int n;
} opq;

static void q_push(opq *q, spine_op *op) {
  op->next = NULL;
  if (q->tail)
    q->tail->next = op;
  else
    q->head = op;
  q->tail = op;
  q->n++;
}

static void q_push_front(opq *q, spine_op *op) {
  op->next = q->head;
  q->head = op;
  if (!q->tail) q->tail = op;
  q->n++;
}

static spine_op *q_pop(opq *q) {
  spine_op *op = q->head;
  if (!op) return NULL;
  q->head = op->next;
  if (!q->head) q->tail = NULL;
  q->n--;
  op->next = NULL;
  return op;
}

/* A statement sent in the batch in flight: statement `stmt` of `op`, or (op NULL) the merged
 * statement `stmt` of the batch's group `group`. */
typedef struct sent {
  spine_op *op;
  int stmt;
  int group;
} sent;

typedef struct conn {
  uv_poll_t poll; /* first: the handle's close callback recovers the conn */
  PGconn *pg;
  spine_store *store;
  spine_op *batch, *batch_tail; /* the ops in flight, in submit order */
  int nstatements;              /* ... and their statements (before merging) */
  int busy;                     /* a batch is in flight */
  int events;                   /* what the poll waits for */
  sent *sent;                   /* the statements of the batch in flight, in send order */
  int nsent, cap_sent;
  int cur;           /* the one whose results are being read */
  spine_op *failed;  /* the op whose statement failed first */
  int failed_merged; /* or: a merged statement failed first */
  spine_merge_plan plan;
  spine_buf arrays; /* a merged statement's parameters */
  PGresult **lent;  /* merged statements' answers whose rows the batch's ops borrow */
  int nlent, cap_lent;
  int listen;       /* the LISTEN connection: notifications only */
  opq keyed;        /* ops whose lock key hashes to this connection */
  uint64_t sent_at; /* loop time the batch in flight was sent */
} conn;

struct spine_store {
  uv_loop_t *loop;
  uv_prepare_t prepare; /* flushes queued ops once per loop iteration */
  int prepare_active;
  conn *conns;
  int nconns;
  conn *session;
  spine_notify_cb notify_cb;
  void *notify_data;
  opq shared; /* ops without a key: any connection */
  int queued; /* in every queue */
  int open_handles;
  int closing;
  int busy_conns;
  void (*idle_cb)(void *data);
  void *idle_data;
  void (*lost_cb)(void *data);
  void *lost_data;
  uv_timer_t lost_timer; /* calls lost_cb from the loop, outside the store's own calls */
  uv_timer_t watchdog;   /* batches unanswered past `timeout_ms`: the connection is gone */
  int64_t timeout_ms;
  int lost;  /* connections lost, not yet reopened */
  int merge; /* merged statements (merge.h); SPINE_MERGE=off turns them off */
  char *conninfo;
  spine_store_stats stats;
};

int spine_store_statement(const char *text) {
  if (nextra == MAX_EXTRA_STATEMENTS) abort(); /* a programming error: raise the limit */
  extra_texts[nextra] = text;
  return SPINE_SQL_COUNT_ + nextra++;
}

void spine_store_statement_merged(int id, const char *text) {
  if (id < SPINE_SQL_COUNT_ || id >= SPINE_SQL_COUNT_ + nextra) abort(); /* a programming error */
  extra_merged[id - SPINE_SQL_COUNT_] = spine_store_statement(text) + 1;
}

/* The merged form of statement `id` (merge.h), or -1; *rows: it answers a row per op. Of the
 * engine's, only a load's does (sql.c); the merged forms registered for extra statements do. */
static int merged_form(int id, int *rows) {
  if (id < SPINE_SQL_COUNT_) return spine_sql_merged(id, rows);
  *rows = 1;
  return extra_merged[id - SPINE_SQL_COUNT_] - 1;
}

static const char *statement_text(int id) {
  return id < SPINE_SQL_COUNT_ ? spine_sql_text((spine_sql_id)id)
                               : extra_texts[id - SPINE_SQL_COUNT_];
}

static void statement_name(int id, char out[32]) {
  if (id < SPINE_SQL_COUNT_)
    snprintf(out, 32, "%s", spine_sql_name((spine_sql_id)id));
  else
    snprintf(out, 32, "spine_x%d", id - SPINE_SQL_COUNT_);
}

/* ---- classification ---- */

int spine_store_classify(const PGresult *r, spine_err *e) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *detail = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
  if (!msg) msg = "connection lost";
  if (!state) return spine_err_set(e, SPINE_ETRANSIENT, NULL, NULL, "%s", msg);
  if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strncmp(state, "08", 2) ||
      !strncmp(state, "57P", 3) || !strcmp(state, "53300"))
    return spine_err_set(e, SPINE_ETRANSIENT, NULL, NULL, "%s (%s)", msg, state);
  if (!strcmp(state, "57014")) return spine_err_set(e, SPINE_ETIMEOUT, NULL, NULL, "%s", msg);
  if (!strcmp(state, "SPLC0")) return spine_err_set(e, SPINE_ELOST, NULL, NULL, "%s", msg);
  if (!strcmp(state, "23505")) return spine_err_set(e, SPINE_ECONFLICT, NULL, detail, "%s", msg);
  /* Business rejections raised by intent SQL carry their kind in the SQLSTATE and the
   * argument at fault in COLUMN. */
  const char *col = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
  if (!strcmp(state, "SPNF0")) return spine_err_set(e, SPINE_ENOTFOUND, NULL, col, "%s", msg);
  if (!strcmp(state, "SPIT0")) return spine_err_set(e, SPINE_ETRANSITION, NULL, col, "%s", msg);
  if (!strcmp(state, "SPCF0")) return spine_err_set(e, SPINE_ECONFLICT, NULL, col, "%s", msg);
  if (!strcmp(state, "SPIA0")) return spine_err_set(e, SPINE_EINVAL, NULL, col, "%s", msg);
  if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))
    return spine_err_set(e, SPINE_EREJECTED, NULL, detail, "%s", msg);
  return spine_err_set(e, SPINE_EDB, NULL, NULL, "%s (%s)", msg, state);
}

int spine_store_exec(PGconn *c, spine_op *op, PGresult **last, spine_err *e) {
  *last = NULL;
  /* Inside a caller's transaction (an API request's), the op is a savepoint of it. */
  int nested = PQtransactionStatus(c) == PQTRANS_INTRANS;
  PGresult *r = PQexec(c, nested ? "SAVEPOINT spine_op" : "BEGIN");
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  for (int i = 0; ok && i < op->nstmts; i++) {
    const spine_stmt *st = &op->stmts[i];
    const char *params[64];
    if (st->nparams > 64) abort(); /* a programming error: no statement takes so many */
    for (int k = 0; k < st->nparams; k++) {
      int off = op->param_off[st->first + k];
      params[k] = off < 0 ? NULL : op->params.data + off;
    }
    PQclear(r);
    r = PQexecParams(c, statement_text(st->sql), st->nparams, NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
  }
  if (!ok) {
    int rc = spine_store_classify(r, e);
    PQclear(r);
    PQclear(PQexec(c, nested ? "ROLLBACK TO SAVEPOINT spine_op; RELEASE SAVEPOINT spine_op"
                             : "ROLLBACK"));
    return rc;
  }
  PGresult *commit = PQexec(c, nested ? "RELEASE SAVEPOINT spine_op" : "COMMIT");
  if (PQresultStatus(commit) != PGRES_COMMAND_OK) {
    int rc = spine_store_classify(commit, e);
    PQclear(commit);
    PQclear(r);
    return rc;
  }
  PQclear(commit);
  *last = r;
  return 0;
}

/* ---- connections ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void conn_close(conn *c);

static void on_lost_timer(uv_timer_t *t) {
  spine_store *s = t->data;
  if (s->lost && !s->closing && s->lost_cb) s->lost_cb(s->lost_data);
}

/* Frees the merged answers the batch's ops borrowed rows of (theirs are forgotten first). */
static void free_lent(conn *c) {
  for (int i = 0; i < c->nlent; i++)
    PQclear(c->lent[i]);
  c->nlent = 0;
}

/* Forgets the batch in flight on c: its ops are their owners' again, with no callback. */
static void drop_batch(conn *c) {
  for (spine_op *op = c->batch; op; op = op->next) {
    op->merged = 0;
    op->lent = NULL;
  }
  free_lent(c);
  c->batch = c->batch_tail = c->failed = NULL;
  c->nsent = c->cur = c->failed_merged = 0;
  c->busy = 0;
}

static void fatal(spine_store *s, const char *what, PGconn *pg) {
  if (s->lost || s->closing) return;
  spine_log_error("store", "database connection lost", "what", what, "detail",
                  pg ? PQerrorMessage(pg) : "", NULL);
  if (!s->lost_cb) exit(3); /* no one to recover: a supervisor restarts the process */
  s->lost = 1;
  for (int i = 0; i < s->nconns; i++) {
    drop_batch(&s->conns[i]);
    memset(&s->conns[i].keyed, 0, sizeof s->conns[i].keyed);
    conn_close(&s->conns[i]);
  }
  if (s->session) conn_close(s->session);
  memset(&s->shared, 0, sizeof s->shared);
  s->queued = 0;
  s->busy_conns = 0;
  if (s->prepare_active) {
    uv_prepare_stop(&s->prepare);
    s->prepare_active = 0;
  }
  uv_timer_start(&s->lost_timer, on_lost_timer, 0, 0);
}

void spine_store_lose(spine_store *s, const char *why) {
  fatal(s, why, NULL);
}

void spine_store_on_lost(spine_store *s, void (*cb)(void *data), void *data) {
  s->lost_cb = cb;
  s->lost_data = data;
}

static void set_events(conn *c, int events) {
  if (c->events == events) return;
  c->events = events;
  uv_poll_start(&c->poll, events, on_poll);
}

static int prepare_all(PGconn *pg, spine_err *e) {
  int total = SPINE_SQL_COUNT_ + nextra;
  for (int id = 0; id < total; id++) {
    char name[32];
    statement_name(id, name);
    PGresult *r = PQprepare(pg, name, statement_text(id), 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      spine_err_set(e, SPINE_EDB, name, NULL, "cannot prepare: %s", PQresultErrorMessage(r));
      PQclear(r);
      return SPINE_EDB;
    }
    PQclear(r);
  }
  return 0;
}

/* libpq keeps each command-queue entry a pipeline ever needed (a free list per connection,
 * freed only with the connection). Made in the middle of a burst, thousands of these small
 * blocks would sit among the workflows of that burst, and keep each one's pages resident once
 * those left memory. So each connection makes all it will need at its start: one pipeline of
 * MAX_BATCH_STATEMENTS empty statements, answered before anything else is allocated. */
static int prewarm(PGconn *pg, spine_err *e) {
  if (PQsetnonblocking(pg, 1) || !PQenterPipelineMode(pg)) goto fail;
  for (int i = 0; i < MAX_BATCH_STATEMENTS; i++)
    if (!PQsendQueryParams(pg, "", 0, NULL, NULL, NULL, NULL, 0)) goto fail;
  if (!PQpipelineSync(pg)) goto fail;
  for (;;) {
    int f = PQflush(pg);
    if (f < 0) goto fail;
    struct pollfd p = {PQsocket(pg), (short)(POLLIN | (f ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 5000) <= 0 || !PQconsumeInput(pg)) goto fail;
    while (!PQisBusy(pg)) {
      PGresult *r = PQgetResult(pg);
      int sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
      PQclear(r);
      if (sync) return PQexitPipelineMode(pg) && !PQsetnonblocking(pg, 0) ? 0 : SPINE_EDB;
    }
  }
fail:
  return spine_err_set(e, SPINE_EDB, "database", NULL, "cannot prepare the pipeline: %s",
                       PQerrorMessage(pg));
}

static int conn_open(spine_store *s, conn *c, const char *conninfo, int listen, spine_err *e) {
  c->store = s;
  c->listen = listen;
  /* The caller's conninfo, with a bound on each connect unless it sets one. */
  const char *keys[] = {"connect_timeout", "dbname", NULL};
  const char *values[] = {"5", conninfo, NULL};
  c->pg = PQconnectdbParams(keys, values, 1);
  if (PQstatus(c->pg) != CONNECTION_OK)
    return spine_err_set(e, SPINE_EDB, "database", NULL, "cannot connect: %s",
                         PQerrorMessage(c->pg));
  PGresult *r = PQexec(c->pg, "SET client_min_messages = warning");
  PQclear(r);
  if (!listen) {
    int rc = prepare_all(c->pg, e);
    if (!rc) rc = prewarm(c->pg, e);
    if (rc) return rc;
    if (PQsetnonblocking(c->pg, 1) || !PQenterPipelineMode(c->pg))
      return spine_err_set(e, SPINE_EDB, "database", NULL, "cannot enter pipeline mode: %s",
                           PQerrorMessage(c->pg));
  }
  int rc = uv_poll_init(s->loop, &c->poll, PQsocket(c->pg));
  if (rc) return spine_err_set(e, rc, "database", NULL, "uv_poll_init: %s", uv_strerror(rc));
  c->poll.data = c;
  s->open_handles++;
  if (listen) set_events(c, UV_READABLE);
  return 0;
}

/* The queue an op waits in: its key's connection's, or the shared one. */
static opq *queue_of(spine_store *s, const spine_op *op) {
  return op->keyed && s->nconns ? &s->conns[op->key % (uint32_t)s->nconns].keyed : &s->shared;
}

static void kick(spine_store *s);

/* The batch's Sync arrived: its transaction committed, or rolled back after `c->failed`. */
static void finish_batch(conn *c) {
  spine_store *s = c->store;
  spine_op *ops = c->batch;
  spine_op *failed = c->failed;
  int failed_merged = c->failed_merged;
  c->batch = c->batch_tail = c->failed = NULL;
  c->nsent = c->cur = c->failed_merged = 0;
  c->busy = 0;
  s->busy_conns--;
  set_events(c, UV_READABLE);
  s->stats.batches++;

  if (failed || failed_merged) {
    int code = failed ? failed->status : 0;
    /* Everyone but a definite failure runs again, in the order they came: pushed to the front
     * of their queues from the last to the first. A transiently failed op runs alone next, so
     * that it cannot abort the batch of others again. When a merged statement failed, whose it
     * was is not known: every op runs again, those that went merged now one by one, so that the
     * culprit fails alone. */
    spine_op *order[MAX_BATCH], *done = NULL;
    int n = 0;
    for (spine_op *op = ops, *next; op; op = next) {
      next = op->next;
      op->next = NULL;
      if (failed_merged && op->merged) op->nomerge = 1;
      op->merged = 0;
      int retry = op != failed || (code == SPINE_ETRANSIENT && ++op->tries < MAX_TRIES);
      if (!retry) {
        done = op;
        continue;
      }
      for (int i = 0; i < op->nstmts && i < op->cap_results; i++) {
        PQclear(op->results[i]);
        op->results[i] = NULL;
      }
      op->lent = NULL;
      /* The failed op too, when retried: a later success must not report the old error. */
      op->status = 0;
      op->failed_stmt = -1;
      op->sqlstate[0] = '\0';
      if (op == failed) op->solo = 1;
      order[n++] = op;
    }
    for (int i = n - 1; i >= 0; i--)
      q_push_front(queue_of(s, order[i]), order[i]);
    s->queued += n;
    s->stats.retries += (uint64_t)n;
    if (n) kick(s);
    free_lent(c); /* no callback reads them: every op runs again, or failed */
    if (done) {
      done->lent = NULL;
      done->cb(done);
    }
  } else {
    /* The lent rows outlive the callbacks, which may begin the next batch on c: theirs here. */
    PGresult **lent = c->lent;
    int nlent = c->nlent;
    c->lent = NULL;
    c->nlent = c->cap_lent = 0;
    for (spine_op *op = ops, *next; op; op = next) {
      next = op->next;
      op->next = NULL;
      op->merged = 0;
      s->stats.ops++;
      op->cb(op); /* may submit new work */
    }
    for (int i = 0; i < nlent; i++)
      PQclear(lent[i]);
    free(lent);
  }
  if (s->queued) kick(s); /* this connection's own queue may have waited for it */
  if (s->idle_cb && spine_store_idle(s)) s->idle_cb(s->idle_data);
}

int spine_store_idle(const spine_store *s) {
  return !s->queued && s->busy_conns == 0;
}

void spine_store_on_idle(spine_store *s, void (*cb)(void *data), void *data) {
  s->idle_cb = cb;
  s->idle_data = data;
}

/* Statement `stmt`'s result for `op`'s callback (the op owns it). */
static void keep_result(spine_op *op, int stmt, PGresult *r) {
  int old = op->cap_results;
  op->results =
      spine_buf_grow_array(op->results, &op->cap_results, op->nstmts, sizeof *op->results);
  memset(op->results + old, 0, (size_t)(op->cap_results - old) * sizeof *op->results);
  PQclear(op->results[stmt]);
  op->results[stmt] = r;
}

/* A merged statement's rows to the ops of group `g`: each row's last column is its op's place in
 * the group (1-based); the op borrows that row (spine_op_row), as its own statement would have
 * answered it (the place as one more column), and c keeps the result until the callbacks have
 * run. An op given a second such row in one batch gets a copy of it instead. */
static void hand_out_rows(conn *c, const spine_merge_group *g, int stmt, PGresult *r) {
  int nf = PQnfields(r);
  for (int row = 0; row < PQntuples(r); row++) {
    long place = atol(PQgetvalue(r, row, nf - 1));
    if (place < 1 || place > g->n) continue; /* not one of ours: the merged form is wrong */
    spine_op *op = c->plan.members[g->first + place - 1];
    if (!op->lent) {
      op->lent = r;
      op->lent_stmt = stmt;
      op->lent_row = row;
      continue;
    }
    PGresult *one = PQcopyResult(r, PG_COPYRES_ATTRS);
    if (!one) abort(); /* as spine_buf_grow_array(): out of memory */
    for (int f = 0; f < nf; f++) {
      int null = PQgetisnull(r, row, f);
      if (!PQsetvalue(one, 0, f, null ? NULL : PQgetvalue(r, row, f),
                      null ? -1 : PQgetlength(r, row, f)))
        abort();
    }
    keep_result(op, stmt, one);
  }
  c->lent = spine_buf_grow_array(c->lent, &c->cap_lent, c->nlent + 1, sizeof *c->lent);
  c->lent[c->nlent++] = r;
}

static void read_results(conn *c) {
  while (c->busy) {
    if (PQisBusy(c->pg)) return;
    PGresult *r = PQgetResult(c->pg);
    if (!r) { /* the end of one statement's results */
      c->cur++;
      continue;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      finish_batch(c);
      return;
    }
    if (c->cur >= c->nsent) { /* more results than statements: a protocol bug */
      PQclear(r);
      fatal(c->store, "unexpected result", c->pg);
      return;
    }
    spine_op *op = c->sent[c->cur].op;
    int stmt = c->sent[c->cur].stmt;
    if (st == PGRES_FATAL_ERROR && !c->failed && !c->failed_merged) {
      if (!op) { /* a merged statement: its ops run again one by one (finish_batch) */
        c->failed_merged = 1;
        /* A lost claim or a transient failure is what may happen; anything else is worth an
         * operator's look (its ops still commit, one by one). */
        spine_err me;
        int code = spine_store_classify(r, &me);
        spine_log(
            code == SPINE_ELOST || code == SPINE_ETRANSIENT ? SPINE_LOG_DEBUG : SPINE_LOG_WARN,
            "store", "a merged statement failed: its ops go one by one", "error", me.msg, NULL);
        PQclear(r);
        continue;
      }
      c->failed = op;
      op->failed_stmt = stmt;
      const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      snprintf(op->sqlstate, sizeof op->sqlstate, "%s", state ? state : "");
      if (!op->err) op->err = malloc(sizeof *op->err);
      if (!op->err) abort(); /* as spine_buf_grow_array(): control data */
      op->status = spine_store_classify(r, op->err);
      PQclear(r);
    } else if (op && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) &&
               op->stmts[stmt].want_rows) {
      keep_result(op, stmt, r);
    } else if (!op && st == PGRES_TUPLES_OK && c->plan.groups[c->sent[c->cur].group].rows[stmt]) {
      hand_out_rows(c, &c->plan.groups[c->sent[c->cur].group], stmt, r); /* c keeps r */
    } else {
      PQclear(r); /* no rows wanted, or PGRES_PIPELINE_ABORTED after the failure */
    }
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  conn *c = h->data;
  if (c->store->closing || c->store->lost) return;
  if (status < 0 && status != UV_EBADF) {
    fatal(c->store, uv_strerror(status), c->pg);
    return;
  }
  if (events & UV_WRITABLE) {
    int f = PQflush(c->pg);
    if (f < 0) {
      fatal(c->store, "flush", c->pg);
      return;
    }
    if (f == 0) set_events(c, UV_READABLE);
  }
  if (events & UV_READABLE) {
    if (!PQconsumeInput(c->pg)) {
      fatal(c->store, "read", c->pg);
      return;
    }
    if (c->listen) {
      PGnotify *n;
      while ((n = PQnotifies(c->pg))) {
        if (c->store->notify_cb) c->store->notify_cb(c->store->notify_data, n->relname, n->extra);
        PQfreemem(n);
      }
      return;
    }
    read_results(c);
  }
}

/* Moves up to `max` ops from `q` to c's batch; a solo op goes only into an empty batch, alone. */
static int take(spine_store *s, conn *c, opq *q, int max, int *nbatch) {
  int n = 0;
  while (q->head && n < max && *nbatch < MAX_BATCH) {
    spine_op *op = q->head;
    if (op->solo && *nbatch > 0) break;
    if (*nbatch > 0 && c->nstatements + op->nstmts > MAX_BATCH_STATEMENTS) break;
    c->nstatements += op->nstmts;
    q_pop(q);
    s->queued--;
    if (c->batch_tail)
      c->batch_tail->next = op;
    else
      c->batch = op;
    c->batch_tail = op;
    n++;
    (*nbatch)++;
    if (op->solo) break;
  }
  return n;
}

static void note_sent(conn *c, spine_op *op, int stmt, int group) {
  c->sent = spine_buf_grow_array(c->sent, &c->cap_sent, c->nsent + 1, sizeof *c->sent);
  c->sent[c->nsent++] = (sent){op, stmt, group};
}

/* Sends op's statements from `from` on. */
static int send_op(spine_store *s, conn *c, spine_op *op, int from) {
  if (op->nparams) {
    op->param_ptr =
        spine_buf_grow_array(op->param_ptr, &op->cap_ptr, op->nparams, sizeof *op->param_ptr);
    for (int i = 0; i < op->nparams; i++)
      op->param_ptr[i] = op->param_off[i] < 0 ? NULL : op->params.data + op->param_off[i];
  }
  for (int i = from; i < op->nstmts; i++) {
    const spine_stmt *st = &op->stmts[i];
    char name[32];
    statement_name(st->sql, name);
    if (!PQsendQueryPrepared(c->pg, name, st->nparams, op->param_ptr + st->first, NULL, NULL, 0)) {
      fatal(s, "send", c->pg);
      return -1;
    }
    note_sent(c, op, i, -1);
  }
  return 0;
}

/* Sends group `gi`'s leading statements merged: one statement per position for all its ops. */
static int send_group(spine_store *s, conn *c, int gi) {
  const spine_merge_group *g = &c->plan.groups[gi];
  spine_op **members = c->plan.members + g->first;
  for (int i = 0; i < g->n; i++)
    members[i]->merged = 1;
  for (int pos = 0; pos < g->len; pos++) {
    const char *ptrs[64];
    int offs[64];
    if (g->nparams[pos] > 64) abort(); /* a programming error: no statement takes so many */
    int np = spine_merge_params(&c->arrays, members, g->n, pos, ptrs, offs);
    char name[32];
    statement_name(g->merged[pos], name);
    if (!PQsendQueryPrepared(c->pg, name, np, ptrs, NULL, NULL, 0)) {
      fatal(s, "send", c->pg);
      return -1;
    }
    note_sent(c, NULL, pos, gi);
  }
  s->stats.merged += (uint64_t)g->n;
  return 0;
}

/* Sends c's batch: first the merged groups, then each op's statements that did not go merged,
 * in the order the ops came. Every op's statements keep their order; ops of different
 * workflows are independent, and their order within the one transaction is any. */
static int send_statements(spine_store *s, conn *c, int nbatch) {
  spine_op *ops[MAX_BATCH];
  int n = 0;
  for (spine_op *op = c->batch; op && n < nbatch; op = op->next)
    ops[n++] = op;
  int ngroups = n > 1 && s->merge ? spine_merge_plan_make(&c->plan, ops, n, merged_form) : 0;
  for (int g = 0; g < ngroups; g++)
    if (send_group(s, c, g)) return -1;
  for (int i = 0; i < n; i++)
    if (send_op(s, c, ops[i], ngroups ? c->plan.merged[i] : 0)) return -1;
  return 0;
}

/* Sends c's own keyed ops, then `shared` of the shared queue, as one batch. 0 if none. */
static int send_batch(spine_store *s, conn *c, int shared) {
  int nbatch = 0;
  c->nstatements = 0;
  if (c->keyed.head && c->keyed.head->solo) { /* a solo op at a head goes now, alone */
    take(s, c, &c->keyed, 1, &nbatch);
  } else if (s->shared.head && s->shared.head->solo) {
    take(s, c, &s->shared, 1, &nbatch);
  } else {
    take(s, c, &c->keyed, MAX_BATCH, &nbatch);
    take(s, c, &s->shared, shared, &nbatch);
  }
  if (!nbatch) return 0;
  c->busy = 1;
  s->busy_conns++;
  c->nsent = c->cur = 0;
  c->sent_at = uv_now(s->loop);
  if (send_statements(s, c, nbatch)) return 1;
  if (!PQpipelineSync(c->pg)) {
    fatal(s, "sync", c->pg);
    return 1;
  }
  int f = PQflush(c->pg);
  if (f < 0) {
    fatal(s, "flush", c->pg);
    return 1;
  }
  set_events(c, f ? UV_READABLE | UV_WRITABLE : UV_READABLE);
  return 1;
}

/* Each idle connection takes its keyed ops and an equal share of the shared queue. Work left
 * for busy connections waits for their batch to end (finish_batch kicks again). */
static void on_prepare(uv_prepare_t *h) {
  spine_store *s = h->data;
  int idle = 0;
  for (int i = 0; i < s->nconns; i++)
    idle += !s->conns[i].busy;
  for (int i = 0; i < s->nconns && s->queued && idle && !s->lost; i++) {
    conn *c = &s->conns[i];
    if (c->busy) continue;
    int share = (s->shared.n + idle - 1) / idle;
    send_batch(s, c, share);
    idle--;
  }
  if (s->prepare_active) {
    uv_prepare_stop(&s->prepare);
    s->prepare_active = 0;
  }
}

static void kick(spine_store *s) {
  if (s->prepare_active || s->closing || s->lost || !s->queued) return;
  uv_prepare_start(&s->prepare, on_prepare);
  s->prepare_active = 1;
}

void spine_store_submit(spine_store *s, spine_op *op) {
  op->next = NULL;
  if (s->lost) return; /* its owner is about to be dropped (see spine_store_on_lost) */
  op->status = 0;
  op->failed_stmt = -1;
  op->lent = NULL; /* a row lent to its last callback is not this run's */
  q_push(queue_of(s, op), op);
  s->queued++;
  kick(s);
}

/* A batch in flight for longer than the timeout: the database or the network in between stopped
 * answering without closing the socket. Treated as a lost connection: the engine drops what it
 * holds and reconnects; the database's leases say who runs what next. */
static void on_watchdog(uv_timer_t *t) {
  spine_store *s = t->data;
  if (s->lost || s->closing) return;
  uint64_t now = uv_now(s->loop);
  for (int i = 0; i < s->nconns; i++) {
    conn *c = &s->conns[i];
    if (c->busy && now - c->sent_at > (uint64_t)s->timeout_ms) {
      char why[96];
      snprintf(why, sizeof why, "no answer from the database within %lld ms",
               (long long)s->timeout_ms);
      fatal(s, why, NULL);
      return;
    }
  }
}

void spine_store_set_timeout(spine_store *s, int64_t ms) {
  s->timeout_ms = ms > 0 ? ms : DEFAULT_TIMEOUT_MS;
}

int spine_store_backends(const spine_store *s, int *pids, int max) {
  int n = 0;
  for (int i = 0; i < s->nconns && n < max; i++)
    if (s->conns[i].pg) pids[n++] = PQbackendPID(s->conns[i].pg);
  if (s->session && s->session->pg && n < max) pids[n++] = PQbackendPID(s->session->pg);
  return n;
}

int spine_store_open(uv_loop_t *loop, const char *conninfo, int pool, spine_store **out,
                     spine_err *e) {
  spine_store *s = calloc(1, sizeof *s);
  if (!s) return SPINE_ENOMEM;
  s->loop = loop;
  const char *merge = getenv("SPINE_MERGE");
  s->merge = !merge || strcmp(merge, "off");
  if (pool < 1) pool = 1;
  if (pool > MAX_POOL) pool = MAX_POOL;
  s->conns = calloc((size_t)pool, sizeof *s->conns);
  if (!s->conns) {
    free(s);
    return SPINE_ENOMEM;
  }
  s->conninfo = strdup(conninfo);
  if (!s->conninfo) {
    free(s->conns);
    free(s);
    return SPINE_ENOMEM;
  }
  uv_prepare_init(loop, &s->prepare);
  s->prepare.data = s;
  uv_timer_init(loop, &s->lost_timer);
  s->lost_timer.data = s;
  uv_timer_init(loop, &s->watchdog);
  s->watchdog.data = s;
  s->timeout_ms = DEFAULT_TIMEOUT_MS;
  uv_timer_start(&s->watchdog, on_watchdog, WATCHDOG_MS, WATCHDOG_MS);
  uv_unref((uv_handle_t *)&s->watchdog); /* a loop with nothing else to do may end */
  s->open_handles = 3;
  int rc = 0;
  for (int i = 0; i < pool && rc == 0; i++) {
    rc = conn_open(s, &s->conns[i], conninfo, 0, e);
    if (s->conns[i].pg) s->nconns = i + 1;
  }
  *out = s;
  if (rc) {
    spine_store_close(s);
    *out = NULL; /* freed once the loop has closed its handles */
  }
  return rc;
}

int spine_store_session_open(spine_store *s, const char *conninfo, spine_err *e) {
  s->session = calloc(1, sizeof *s->session);
  if (!s->session) return SPINE_ENOMEM;
  return conn_open(s, s->session, conninfo, 1, e);
}

PGconn *spine_store_session(spine_store *s) {
  return s->session && !s->lost ? s->session->pg : NULL;
}

void spine_store_session_listen(spine_store *s, spine_notify_cb cb, void *data) {
  s->notify_cb = cb;
  s->notify_data = data;
  /* Setup queries may have buffered notifications already. */
  PGnotify *n;
  while ((n = PQnotifies(s->session->pg))) {
    cb(data, n->relname, n->extra);
    PQfreemem(n);
  }
}

static void conn_free_scratch(conn *c) {
  free(c->sent);
  c->sent = NULL;
  c->cap_sent = c->nsent = 0;
  spine_merge_plan_free(&c->plan);
  spine_buf_free(&c->arrays);
  free_lent(c);
  free(c->lent);
  c->lent = NULL;
  c->cap_lent = 0;
}

static void on_closed(uv_handle_t *h) {
  spine_store *s;
  if (h->type == UV_PREPARE || h->type == UV_TIMER) { /* prepare, lost_timer, watchdog */
    s = h->data;
  } else {
    conn *c = h->data;
    s = c->store;
    PQfinish(c->pg);
    c->pg = NULL;
    conn_free_scratch(c);
  }
  if (--s->open_handles == 0) {
    free(s->conninfo);
    free(s->conns);
    free(s->session);
    free(s);
  }
}

static void conn_close(conn *c) {
  if (!c->pg || uv_is_closing((uv_handle_t *)&c->poll)) return;
  if (uv_is_active((uv_handle_t *)&c->poll) || c->poll.data) {
    uv_close((uv_handle_t *)&c->poll, on_closed);
  } else {
    PQfinish(c->pg);
    c->pg = NULL;
    conn_free_scratch(c);
  }
}

void spine_store_close(spine_store *s) {
  if (s->closing) return;
  s->closing = 1;
  for (int i = 0; i < s->nconns; i++)
    conn_close(&s->conns[i]);
  if (s->session) conn_close(s->session);
  uv_close((uv_handle_t *)&s->prepare, on_closed);
  uv_close((uv_handle_t *)&s->lost_timer, on_closed);
  uv_close((uv_handle_t *)&s->watchdog, on_closed);
}

int spine_store_reconnect(spine_store *s, spine_err *e) {
  if (!s->lost) return 0;
  for (int i = 0; i < s->nconns; i++)
    if (s->conns[i].pg)
      return spine_err_set(e, SPINE_ETRANSIENT, "database", NULL, "old connections still closing");
  if (s->session && s->session->pg)
    return spine_err_set(e, SPINE_ETRANSIENT, "database", NULL, "old session still closing");
  int rc = 0;
  for (int i = 0; i < s->nconns && !rc; i++) {
    memset(&s->conns[i], 0, sizeof s->conns[i]);
    rc = conn_open(s, &s->conns[i], s->conninfo, 0, e);
  }
  if (!rc && s->session) {
    memset(s->session, 0, sizeof *s->session);
    rc = conn_open(s, s->session, s->conninfo, 1, e);
  }
  if (rc) { /* close what opened; the next attempt waits until those handles are closed */
    for (int i = 0; i < s->nconns; i++)
      conn_close(&s->conns[i]);
    if (s->session) conn_close(s->session);
    return rc;
  }
  s->lost = 0;
  s->stats.reconnects++;
  kick(s);
  return 0;
}

const spine_store_stats *spine_store_stats_get(const spine_store *s) {
  return &s->stats;
}
