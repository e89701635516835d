/* Applies compiled-in migrations, then those a tool or test build registered, once each, in
 * order, each in its own transaction, recorded in spine.migrations. Blocking libpq: runs before
 * the loop serves, never from a callback. */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An arbitrary constant: the advisory lock that serialises migrating processes. */
#define MIGRATE_LOCK_KEY "7780001"

/* The lists of spine_migrate_register, applied after the compiled-in one, in this order. */
#define MAX_REGISTERED 4
static const spine_migration *registered[MAX_REGISTERED];
static int nregistered;

void spine_migrate_register(const spine_migration *list) {
  if (nregistered == MAX_REGISTERED) abort(); /* a programming error: raise MAX_REGISTERED */
  registered[nregistered++] = list;
}

int spine_migrate_count(void) {
  int n = 0;
  for (int l = -1; l < nregistered; l++)
    for (const spine_migration *m = l < 0 ? spine_migrations : registered[l]; m->name; m++)
      n++;
  return n;
}

static int exec_ok(PGconn *conn, const char *sql, const char *what, spine_err *e) {
  PGresult *r = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    spine_err_set(e, SPINE_EDB, what, NULL, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return SPINE_EDB;
  }
  PQclear(r);
  return 0;
}

static int applied_already(PGconn *conn, const char *name, spine_err *e) {
  const char *params[1] = {name};
  PGresult *r = PQexecParams(conn, "SELECT 1 FROM spine.migrations WHERE name = $1", 1, NULL,
                             params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    spine_err_set(e, SPINE_EDB, name, NULL, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return SPINE_EDB;
  }
  int found = PQntuples(r) > 0;
  PQclear(r);
  return found;
}

static int apply_one(PGconn *conn, const spine_migration *m, spine_err *e) {
  int rc = exec_ok(conn, "BEGIN", m->name, e);
  if (rc) return rc;
  PGresult *r = PQexec(conn, m->sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    spine_err_set(e, SPINE_EDB, m->name, NULL, "migration failed: %s", PQresultErrorMessage(r));
    PQclear(r);
    exec_ok(conn, "ROLLBACK", m->name, NULL);
    return SPINE_EDB;
  }
  PQclear(r);
  const char *params[1] = {m->name};
  r = PQexecParams(conn, "INSERT INTO spine.migrations (name) VALUES ($1)", 1, NULL, params, NULL,
                   NULL, 0);
  st = PQresultStatus(r);
  PQclear(r);
  if (st != PGRES_COMMAND_OK) {
    exec_ok(conn, "ROLLBACK", m->name, NULL);
    return spine_err_set(e, SPINE_EDB, m->name, NULL, "cannot record migration");
  }
  return exec_ok(conn, "COMMIT", m->name, e);
}

int spine_migrate(PGconn *conn, int *applied, spine_err *e) {
  if (applied) *applied = 0;
  int rc = exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "migrate", e);
  if (rc) return rc;
  rc = exec_ok(conn,
               "SET client_min_messages = warning;"
               "CREATE SCHEMA IF NOT EXISTS spine;"
               "CREATE TABLE IF NOT EXISTS spine.migrations (name text PRIMARY KEY,"
               " applied_at timestamptz NOT NULL DEFAULT now())",
               "migrate", e);
  for (int l = -1; rc == 0 && l < nregistered; l++)
    for (const spine_migration *m = l < 0 ? spine_migrations : registered[l]; rc == 0 && m->name;
         m++) {
      int found = applied_already(conn, m->name, e);
      if (found < 0) {
        rc = found;
      } else if (!found) {
        rc = apply_one(conn, m, e);
        if (rc == 0 && applied) (*applied)++;
      }
    }
  exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", "migrate", NULL);
  return rc;
}
