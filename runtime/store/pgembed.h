/* The embedded default database: a private PostgreSQL cluster under $SPINE_HOME that Spine
 * creates (initdb), starts (pg_ctl) and stops by itself, listening only on a Unix socket in a
 * mode 0700 directory, with peer authentication mapped to the operating system user who runs
 * Spine and nobody else. Spine works as role `spine`, which owns database `spine` and is no
 * superuser; the cluster's superuser `postgres` is for creating that role and database.
 * As root the server runs as the unprivileged `postgres` system user.
 * Runs child processes synchronously: call it before the loop serves, never from a callback. */
#ifndef SPINE_PGEMBED_H
#define SPINE_PGEMBED_H

#include <stddef.h>

#include "err.h"

typedef struct spine_pgembed {
  char home[1024];          /* absolute $SPINE_HOME (default ./.spine) */
  char datadir[1200];       /* the cluster's data directory */
  char sockdir[256];        /* the Unix socket directory (short: socket paths are limited) */
  char logfile[1200];       /* the server log */
  char conninfo[512];       /* libpq connection string for database `spine` as role `spine` */
  char admin_conninfo[512]; /* the same for database `postgres` as the superuser `postgres` */
} spine_pgembed;

/* Fills `pg` from $SPINE_HOME (or ./.spine) without touching the disk. */
int spine_pgembed_init(spine_pgembed *pg, spine_err *e);
/* Creates the cluster if missing, (re)writes its authentication rules, starts it if not
 * running, creates role and database `spine` if missing (and gives an older cluster's objects,
 * made as `postgres`, to `spine`). Idempotent; safe when several processes call it at once. */
int spine_pgembed_start(spine_pgembed *pg, spine_err *e);
/* Stops the cluster (fast shutdown) if running. */
int spine_pgembed_stop(spine_pgembed *pg, spine_err *e);
/* 1 if running, 0 if not (or not created); negative on error. */
int spine_pgembed_running(spine_pgembed *pg);

#endif
