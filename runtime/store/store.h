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
#include "op.h"
#include "sql.h"

typedef struct spine_store spine_store;
typedef void (*spine_notify_cb)(void *data, const char *channel, const char *payload);

/* Process-wide registry of extra prepared statements (intents): call before any store opens.
 * Returns the id to use in spine_op_stmt(). */
int spine_store_statement(const char *text);

/* A merged form of extra statement `id` (merge.h): the same parameters as arrays, one row per op
 * of the group answered with the op's place in the group (1-based: WITH ORDINALITY) as its last
 * column; each op gets its row as its statement's result, lent for its callback: read it with
 * spine_op_row() (spine_op_result() is NULL for it). Call before any store opens. */
void spine_store_statement_merged(int id, const char *text);

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
  uint64_t merged; /* ops whose leading statements went merged (merge.h) */
} spine_store_stats;
const spine_store_stats *spine_store_stats_get(const spine_store *s);

/* Maps a failed result to a code: SPINE_ETRANSIENT (serialization, deadlock, lost
 * connection), SPINE_ETIMEOUT (57014), SPINE_ECONFLICT (23505), SPINE_ELOST (SPLC0: the
 * workflow's claim is no longer this worker's), SPINE_EREJECTED (other 22/23 and raised
 * business errors, with their SP* code), else SPINE_EDB. Fills `e`. */
int spine_store_classify(const PGresult *r, spine_err *e);

/* Runs `op`'s statements in one transaction on a blocking connection (a command, or a worker
 * thread of `spine serve`: never the loop), by their text, so an operator's intent takes the
 * same statements as a playbook's; inside a transaction of the caller's, as a savepoint of it. 0
 * with *last the last statement's result (caller PQclears), or the code of spine_store_classify
 * with `e` filled (rolled back, *last NULL). */
int spine_store_exec(PGconn *c, spine_op *op, PGresult **last, spine_err *e);

#endif
