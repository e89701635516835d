/* Versioned, idempotent schema migrations, compiled into the binary: the engine's own
 * (runtime/sql) and the sets that whoever assembles the process hands over (the domain's,
 * intents/sql). Each is applied once, recorded by file name in spine.migrations, under an
 * advisory lock so concurrent processes apply them once. Blocking: call at start. */
#ifndef SPINE_MIGRATE_H
#define SPINE_MIGRATE_H

#include <libpq-fe.h>

#include "err.h"

typedef struct spine_migration {
  const char *name; /* file name, e.g. "0001_engine.sql" */
  const char *sql;
} spine_migration;

/* The engine's own (runtime/sql), in file-name order, ended by {NULL, NULL}. */
extern const spine_migration spine_migrations[];

/* Adds a set of migrations (in file-name order, ended by {NULL, NULL}; borrowed for the life
 * of the process): the domain's, handed over before anything migrates, as the intent catalog
 * is (spine_intents_set_catalog). The sets go first, in the order added, then the engine's:
 * the order since the two were one list sorted by path, intents/sql before runtime/sql, which
 * fresh databases need (the engine's 0004 and 0006 alter tables of the domain's schema
 * `lifecycle`). Adding a set again does nothing; at most 4 sets. */
void spine_migrate_add_set(const spine_migration *set);

/* How many migrations there are in all, the added sets' and the engine's. */
int spine_migrate_count(void);

/* Applies the missing migrations on `conn`; *applied (may be NULL) counts them. A name in two
 * sets is refused (SPINE_EINVAL) before anything is applied: one row would record both. */
int spine_migrate(PGconn *conn, int *applied, spine_err *e);

#endif
