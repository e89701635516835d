/* Who may use the embedded cluster and as what: its authentication files and roles. For
 * pgembed.c only; blocking libpq and file writes, before any loop runs. */
#ifndef SPINE_PGEMBED_AUTH_H
#define SPINE_PGEMBED_AUTH_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

#define SPINE_PGEMBED_PORT "5432" /* fixed: the socket is private to our directory */

/* Who the server's files belong to: when `drop` (we are root), the `postgres` system user. */
typedef struct spine_pgembed_owner {
  int drop;
  uid_t uid;
  gid_t gid;
} spine_pgembed_owner;

/* The name of the operating system user we run as, the one peer authentication admits. */
int spine_pgembed__os_user(char *out, size_t size, spine_err *e);
/* Makes pg_hba.conf and pg_ident.conf of `datadir` admit `os_user` only (peer, over the
 * socket). 1 if they changed (a running server must reload), 0 if not, negative on error. */
int spine_pgembed__write_auth(const char *datadir, const char *os_user,
                              const spine_pgembed_owner *o, spine_err *e);
/* Connected as the superuser over `sockdir`: role spine (login, no other attribute), database
 * spine owned by it, and an older cluster's objects there given to it. */
int spine_pgembed__provision(const char *sockdir, spine_err *e);

#endif
