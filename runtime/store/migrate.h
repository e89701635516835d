/* Versioned, idempotent schema migrations: the engine's (runtime/sql) and the system of
 * record's (intents/sql), compiled into the binary, applied in file-name order, each once,
 * under an advisory lock so concurrent processes apply them once. Blocking: call at start. */
#ifndef SPINE_MIGRATE_H
#define SPINE_MIGRATE_H

#include <libpq-fe.h>

#include "err.h"

typedef struct spine_migration {
  const char *name; /* file name, e.g. "0001_engine.sql" */
  const char *sql;
} spine_migration;

/* The compiled-in list, ended by {NULL, NULL}. */
extern const spine_migration spine_migrations[];

/* Applies the missing migrations on `conn`; *applied (may be NULL) counts them. */
int spine_migrate(PGconn *conn, int *applied, spine_err *e);

#endif
