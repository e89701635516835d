/* The store: a small pool of non-blocking libpq connections in pipeline mode on the libuv
 * loop, and group commit. Callers queue operations (a few statements that must commit
 * together); each loop iteration sends the queued operations of many workflows as one
 * pipeline per connection, ended by one Sync, so they share one transaction and one fsync.
 * An operation's callback runs only after its transaction committed (or failed).
 * An operation may carry a lock key (spine_op_key: the rows it locks, e.g. a customer): every
 * operation of one key goes through one connection, so no two transactions in flight ever wait
 * for each other's rows of that key: a hot key serialises, it never deadlocks.
 * Owns the connections; never blocks the loop once spine_store_open() returned. */
#ifndef SPINE_STORE_H
#define SPINE_STORE_H

#include <libpq-fe.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "err.h"
#include "sql.h"

typedef struct spine_store spine_store;
typedef struct spine_op spine_op;
typedef void (*spine_op_cb)(spine_op *op);
typedef void (*spine_notify_cb)(void *data, const char *channel, const char *payload);

typedef struct spine_stmt {
  int sql; /* a statement id: spine_sql_id or one from spine_store_statement() */
  int nparams;
  int first;     /* index of its first parameter in the op's parameter arrays */
  int want_rows; /* 1: keep the PGresult for the callback */
} spine_stmt;

/* A unit of work that commits atomically with the others of its batch. Embed it in its owner
 * (a workflow embeds one and reuses it for every step: no allocation per step once grown).
 * Invariant: an op is in at most one queue or batch at a time; `results` are valid only in
 * the callback and are cleared by the next spine_op_reset(). */
struct spine_op {
  spine_op_cb cb;
  void *data;
  spine_stmt *stmts;
  int nstmts, cap_stmts;
  spine_buf params; /* parameter bytes, each NUL-terminated */
  int *param_off;   /* offset of each parameter in `params`, -1 for NULL */
  int nparams, cap_params;
  const char **param_ptr; /* scratch: pointers built at send time */
  int cap_ptr;
  PGresult **results; /* per statement (NULL unless want_rows), owned by the op */
  int cap_results;
  int status;       /* 0 committed; else SPINE_E* (results then unset) */
  int failed_stmt;  /* the statement that failed, or -1 */
  char sqlstate[6]; /* of the failure, "" if none */
  spine_err *err;   /* the failure, allocated only when one happens: see spine_op_error() */
  int tries;        /* transient failures so far */
  uint32_t key;     /* hash of the lock key (see spine_op_key) */
  unsigned keyed : 1;
  unsigned solo : 1; /* failed transiently: runs again in a batch of its own */
  spine_op *next;    /* queue link */
};

/* Process-wide registry of extra prepared statements (intents): call before any store opens.
 * Returns the id to use in spine_op_stmt(). */
int spine_store_statement(const char *text);

/* Opens `pool` connections to `conninfo` (blocking: call before serving) and prepares every
 * statement on each. Returns 0 and *out, or a negative code. Free with spine_store_close(). */
int spine_store_open(uv_loop_t *loop, const char *conninfo, int pool, spine_store **out,
                     spine_err *e);
/* A batch unanswered for `ms` (default 15 s) means the connection is gone, whatever TCP says
 * (a blackholed network keeps sockets open): the store declares its connections lost. */
void spine_store_set_timeout(spine_store *s, int64_t ms);
/* The server process ids of the pool's and the session's connections, up to `max`; returns how
 * many. A worker records them so that whoever reaps it can end its sessions. */
int spine_store_backends(const spine_store *s, int *pids, int max);
/* Starts closing: the connections' handles close on the loop; frees the store after that.
 * Queued operations are dropped without callbacks. */
void spine_store_close(spine_store *s);

/* Opens the session connection, outside the pool (blocking): it holds what belongs to a
 * session, like the worker's advisory lock, and receives LISTEN notifications. */
int spine_store_session_open(spine_store *s, const char *conninfo, spine_err *e);
/* The session connection, for blocking setup calls before serving (NULL if none). Borrowed. */
PGconn *spine_store_session(spine_store *s);
/* From now on notifications on the session connection call `cb` (on the loop); the session
 * must not be used for blocking calls any more. */
void spine_store_session_listen(spine_store *s, spine_notify_cb cb, void *data);

void spine_op_init(spine_op *op);
/* Clears statements, parameters and results; keeps memory. */
void spine_op_reset(spine_op *op);
void spine_op_free(spine_op *op);
/* Frees what the op has grown and leaves it as after spine_op_init(): for an owner that parks
 * for long (a waiting workflow), so that it holds no buffers and no results meanwhile. */
void spine_op_release(spine_op *op);
/* The op's failure (empty, code 0, if none). */
const spine_err *spine_op_error(const spine_op *op);
/* The rows the op locks, named by one key (a customer id): ops of one key share a connection,
 * so their transactions never wait for each other. Cleared by spine_op_reset(). */
void spine_op_key(spine_op *op, const char *key, size_t len);
/* Appends a statement; its parameters follow with spine_op_param*(). */
void spine_op_stmt(spine_op *op, int sql, int want_rows);
void spine_op_param(spine_op *op, const char *text); /* NULL = SQL NULL */
void spine_op_param_len(spine_op *op, const char *text, size_t len);
void spine_op_param_int(spine_op *op, int64_t v);
void spine_op_param_bool(spine_op *op, int v);
/* The result of statement i (NULL unless it was added with want_rows). */
PGresult *spine_op_result(spine_op *op, int i);

/* Queues `op` for the next batch; `op->cb` runs after its batch ends. */
void spine_store_submit(spine_store *s, spine_op *op);

/* 1 when nothing is queued or in flight. */
int spine_store_idle(const spine_store *s);
/* `cb` runs whenever a batch ends and the store is idle (virtual clocks advance then). */
void spine_store_on_idle(spine_store *s, void (*cb)(void *data), void *data);

/* When a connection is lost: the store forgets every op, queued or in flight, without calling
 * it back (their outcome is what the database says), closes every connection, and then, from a
 * callback of its own on the loop, calls `cb`. Until spine_store_reconnect() succeeds, submitted
 * ops are dropped. Without a handler, a lost connection ends the process with status 3. */
void spine_store_on_lost(spine_store *s, void (*cb)(void *data), void *data);
/* Declares the connections lost (as a failed socket would), e.g. when setup after a reconnect
 * fails. */
void spine_store_lose(spine_store *s, const char *why);
/* After a loss: opens the pool and the session again (blocking, each connect bounded by
 * connect_timeout) and prepares the statements. 0, or an error: try again later. */
int spine_store_reconnect(spine_store *s, spine_err *e);

/* Counters for bench and metrics. */
typedef struct spine_store_stats {
  uint64_t batches;
  uint64_t ops;
  uint64_t retries;
  uint64_t reconnects;
} spine_store_stats;
const spine_store_stats *spine_store_stats_get(const spine_store *s);

/* Maps a failed result to a code: SPINE_ETRANSIENT (serialization, deadlock, lost
 * connection), SPINE_ETIMEOUT (57014), SPINE_ECONFLICT (23505), SPINE_ELOST (SPLC0: the
 * workflow's claim is no longer this worker's), SPINE_EREJECTED (other 22/23 and raised
 * business errors, with their SP* code), else SPINE_EDB. Fills `e`. */
int spine_store_classify(const PGresult *r, spine_err *e);

#endif
