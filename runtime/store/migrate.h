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

/* Adds `list` (ended by {NULL, NULL}; borrowed for the process's life) to what spine_migrate
 * applies, after the compiled-in list: the tables of a tool or a test build (tools/bench), never
 * the product's. Before the first spine_migrate; at most 4 lists. */
void spine_migrate_register(const spine_migration *list);
/* How many migrations spine_migrate knows: the compiled-in ones and those registered. */
int spine_migrate_count(void);

/* Applies the missing migrations on `conn`; *applied (may be NULL) counts them. */
int spine_migrate(PGconn *conn, int *applied, spine_err *e);

#endif
