/* Blocking libpq, for the commands (they have no loop to block) and for `spine serve`'s worker
 * threads, never its loop: which database, a connection to it, and one query whose refusals
 * come back as spine_err codes. The engine's own connections are store.h's. */
#ifndef SPINE_PGCONN_H
#define SPINE_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/* The database: $SPINE_DATABASE_URL, or the embedded cluster (started on demand). */
int spine_pgconn_conninfo(char *out, size_t size, spine_err *e);
/* Connects to `conninfo` (blocking), without migrating: for serve's worker threads. NULL with
 * `e` filled on failure. */
PGconn *spine_pgconn_open(const char *conninfo, spine_err *e);
/* Connects and migrates (blocking). NULL with `e` filled on failure. */
PGconn *spine_pgconn_connect(spine_err *e);
/* Runs a one-row, one-column query returning JSON text; the caller frees with PQclear.
 * NULL (and `e` filled) on error; a result with 0 rows when nothing matched. A refusal raised
 * with SQLSTATE SPNF0, SPIT0, SPCF0 or SPIA0 (the operator actions, the tasks' checks) is
 * SPINE_ENOTFOUND, SPINE_ETRANSITION, SPINE_ECONFLICT or SPINE_EINVAL with its message and, as
 * field, its COLUMN; any other error is SPINE_EDB from "database". */
PGresult *spine_pgconn_query(PGconn *c, const char *sql, int n, const char *const *params,
                             spine_err *e);
/* The same for a query that always returns one row: appends its first column's text to `out`.
 * 0, or the error's code (SPINE_EDB without `e`). */
int spine_pgconn_text(PGconn *c, const char *sql, int n, const char *const *params, spine_buf *out,
                      spine_err *e);

/* One unit of work that commits whole or not at all: a transaction, or, when `c` is in one
 * already (an API request's, which also holds its audit row), a savepoint of it, so that an
 * action is atomic alone and part of its caller's transaction when called inside one. */
typedef struct spine_pgconn_unit {
  int nested; /* a savepoint, not a transaction */
} spine_pgconn_unit;

/* Opens the unit. 0, or SPINE_EDB (the connection is in a failed transaction, or lost). */
int spine_pgconn_begin(PGconn *c, spine_pgconn_unit *u, spine_err *e);
/* Ends it: commits (releases the savepoint) when `ok`, else rolls it back. Returns 0, or the
 * commit's error (SPINE_EDB; the unit is then rolled back); with !ok, always 0. */
int spine_pgconn_end(PGconn *c, spine_pgconn_unit *u, int ok, spine_err *e);

#endif
