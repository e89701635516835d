/* Blocking libpq for the commands and the worker threads of `spine serve` (pgconn.h): which
 * database, connecting, and a query whose refusals become spine_err codes. Never on a loop. */
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "pgembed.h"

int spine_pgconn_conninfo(char *out, size_t size, spine_err *e) {
  const char *url = getenv("SPINE_DATABASE_URL");
  if (url && *url) {
    snprintf(out, size, "%s", url);
    return 0;
  }
  spine_pgembed pg;
  int rc = spine_pgembed_init(&pg, e);
  if (!rc) rc = spine_pgembed_start(&pg, e);
  if (!rc) snprintf(out, size, "%s", pg.conninfo);
  return rc;
}

PGconn *spine_pgconn_open(const char *conninfo, spine_err *e) {
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    spine_err_set(e, SPINE_EDB, "database", NULL, "cannot connect: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  return c;
}

PGconn *spine_pgconn_connect(spine_err *e) {
  char conninfo[1024];
  if (spine_pgconn_conninfo(conninfo, sizeof conninfo, e)) return NULL;
  PGconn *c = spine_pgconn_open(conninfo, e);
  if (!c) return NULL;
  if (spine_migrate(c, NULL, e)) {
    PQfinish(c);
    return NULL;
  }
  return c;
}

PGresult *spine_pgconn_query(PGconn *c, const char *sql, int n, const char *const *params,
                             spine_err *e) {
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *col = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    /* A refusal an operator action raised (runtime/sql/0010_operator_actions.sql) */
    if (m && state && !strcmp(state, "SPNF0"))
      spine_err_set(e, SPINE_ENOTFOUND, NULL, col, "%s", m);
    else if (m && state && !strcmp(state, "SPIT0"))
      spine_err_set(e, SPINE_ETRANSITION, NULL, col, "%s", m);
    else if (m && state && !strcmp(state, "SPCF0"))
      spine_err_set(e, SPINE_ECONFLICT, NULL, col, "%s", m);
    else if (m && state && !strcmp(state, "SPIA0"))
      spine_err_set(e, SPINE_EINVAL, NULL, col, "%s", m);
    else
      spine_err_set(e, SPINE_EDB, "database", NULL, "%s", m ? m : PQerrorMessage(c));
    PQclear(r);
    return NULL;
  }
  return r;
}

int spine_pgconn_text(PGconn *c, const char *sql, int n, const char *const *params, spine_buf *out,
                      spine_err *e) {
  PGresult *r = spine_pgconn_query(c, sql, n, params, e);
  if (!r) return e && e->code ? e->code : SPINE_EDB;
  spine_buf_puts(out, PQgetvalue(r, 0, 0));
  PQclear(r);
  return 0;
}

int spine_pgconn_begin(PGconn *c, spine_pgconn_unit *u, spine_err *e) {
  PGTransactionStatusType st = PQtransactionStatus(c);
  u->nested = st == PQTRANS_INTRANS;
  if (st == PQTRANS_INERROR)
    return spine_err_set(e, SPINE_EDB, "database", NULL,
                         "the transaction failed already: its statements are ignored");
  PGresult *r = spine_pgconn_query(c, u->nested ? "SAVEPOINT spine_unit" : "BEGIN", 0, NULL, e);
  if (!r) return SPINE_EDB;
  PQclear(r);
  return 0;
}

int spine_pgconn_end(PGconn *c, spine_pgconn_unit *u, int ok, spine_err *e) {
  if (ok) {
    PGresult *r =
        spine_pgconn_query(c, u->nested ? "RELEASE SAVEPOINT spine_unit" : "COMMIT", 0, NULL, e);
    if (r) {
      PQclear(r);
      return 0;
    }
  }
  /* A failed COMMIT has ended the transaction already; a rollback then only warns. */
  PQclear(PQexec(c, u->nested ? "ROLLBACK TO SAVEPOINT spine_unit; RELEASE SAVEPOINT spine_unit"
                              : "ROLLBACK"));
  return ok ? SPINE_EDB : 0;
}
