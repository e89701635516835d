/* Who may use the embedded cluster, and as what (pgembed_auth.h): the authentication files
 * and the roles. Only the operating system user who runs Spine connects (peer, through the
 * map `spine`), as `spine` (owner of database spine, no superuser) or as the superuser
 * `postgres` (for this file's provisioning and an operator's maintenance).
 * Owns pg_hba.conf and pg_ident.conf (rewritten at every start) and role `spine`. */
#define _DEFAULT_SOURCE /* fchown */
#include "pgembed_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#define AUTH_FILE_MAX 2048

static const char hba_text[] =
    "# Written by Spine (runtime/store/pgembed_auth.c) at every start: edits here are overwritten.\n"
    "# Only the operating system user who runs Spine may connect (pg_ident.conf, map spine),\n"
    "# and only over the Unix socket: listen_addresses is empty, and the socket and its\n"
    "# directory are mode 0700.\n"
    "local all all peer map=spine\n";

int spine_pgembed__os_user(char *out, size_t size, spine_err *e) {
  struct passwd *pw = getpwuid(geteuid());
  if (!pw)
    return spine_err_set(e, SPINE_ENOTFOUND, "pgembed", NULL,
                         "uid %ld has no name in the user database: peer authentication needs "
                         "one (add it, or set SPINE_DATABASE_URL)",
                         (long)geteuid());
  /* The name goes into pg_ident.conf unquoted: letters, digits, and . _ - only. */
  size_t n = strlen(pw->pw_name);
  if (n == 0 || n >= size ||
      strspn(pw->pw_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789._-") != n)
    return spine_err_set(e, SPINE_EINVAL, "pgembed", NULL,
                         "user name \"%s\" is not one pg_ident.conf can name (set "
                         "SPINE_DATABASE_URL)",
                         pw->pw_name);
  memcpy(out, pw->pw_name, n + 1);
  return 0;
}

/* Makes `path` hold exactly `text` (mode 0600, owned by the server's user when `drop`):
 * 1 if it changed, 0 if it already did, negative on error. Written aside, then renamed. */
static int write_if_changed(const char *path, const char *text, const spine_pgembed_owner *o,
                            spine_err *e) {
  size_t len = strlen(text);
  char old[AUTH_FILE_MAX];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, old, sizeof old);
    struct stat st;
    int same = n == (ssize_t)len && !memcmp(old, text, len) && fstat(fd, &st) == 0 &&
               (st.st_mode & 0777) == 0600;
    close(fd);
    if (same) return 0;
  }
  char tmp[1400];
  if (snprintf(tmp, sizeof tmp, "%s.spine-tmp", path) >= (int)sizeof tmp)
    return spine_err_set(e, SPINE_EINVAL, path, NULL, "path too long");
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return spine_err_set(e, SPINE_EIO, tmp, NULL, "cannot write: %s", strerror(errno));
  int bad = write(fd, text, len) != (ssize_t)len;
  bad |= fchmod(fd, 0600) != 0;
  bad |= o->drop && fchown(fd, o->uid, o->gid) != 0;
  bad |= fsync(fd) != 0;
  int err = errno;
  bad |= close(fd) != 0;
  if (bad || rename(tmp, path) != 0) {
    if (!bad) err = errno;
    unlink(tmp);
    return spine_err_set(e, SPINE_EIO, path, NULL, "cannot write: %s", strerror(err));
  }
  return 1;
}

int spine_pgembed__write_auth(const char *datadir, const char *os_user,
                              const spine_pgembed_owner *o, spine_err *e) {
  char hba[1300], ident[1300], ident_text[AUTH_FILE_MAX];
  if (snprintf(hba, sizeof hba, "%s/pg_hba.conf", datadir) >= (int)sizeof hba ||
      snprintf(ident, sizeof ident, "%s/pg_ident.conf", datadir) >= (int)sizeof ident)
    return spine_err_set(e, SPINE_EINVAL, datadir, NULL, "path too long");
  snprintf(ident_text, sizeof ident_text,
           "# Written by Spine (runtime/store/pgembed_auth.c) at every start: edits here are "
           "overwritten.\n"
           "# The operating system user %s may connect as role spine (the engine's) or as\n"
           "# postgres (the cluster's superuser); nobody else may connect at all.\n"
           "spine %s spine\n"
           "spine %s postgres\n",
           os_user, os_user, os_user);
  int a = write_if_changed(ident, ident_text, o, e);
  if (a < 0) return a;
  int b = write_if_changed(hba, hba_text, o, e);
  if (b < 0) return b;
  return a || b;
}

/* ---- roles and the database ---- */

static int exec_ok(PGconn *c, const char *sql, const char *what, spine_err *e) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = 0;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    rc = spine_err_set(e, SPINE_EDB, what, NULL, "%s", PQerrorMessage(c));
  PQclear(r);
  return rc;
}

static PGconn *connect_as_admin(const char *sockdir, const char *dbname, spine_err *e) {
  char ci[600];
  snprintf(ci, sizeof ci,
           "host=%s port=" SPINE_PGEMBED_PORT " user=postgres dbname=%s connect_timeout=10",
           sockdir, dbname);
  PGconn *c = PQconnectdb(ci);
  if (PQstatus(c) != CONNECTION_OK) {
    spine_err_set(e, SPINE_EDB, sockdir, NULL, "cannot connect to the cluster as postgres: %s",
                  PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* Role spine: may log in, nothing more. Altered every time, so a role an operator widened by
 * hand is narrowed again. */
static const char role_sql[] =
    "SET client_min_messages = warning;"
    "DO $$ BEGIN"
    "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'spine') THEN"
    "    CREATE ROLE spine LOGIN;"
    "  END IF;"
    " END $$;"
    "ALTER ROLE spine LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";

/* A cluster made before Spine worked as `spine` holds its schemas, tables and functions as
 * `postgres`: they become spine's (sequences of a column follow their table, indexes and
 * triggers too). Everything in database spine outside the system schemas is Spine's. */
static const char adopt_sql[] =
    "SET client_min_messages = warning;"
    "DO $$ DECLARE r record; BEGIN"
    "  FOR r IN SELECT nspname FROM pg_namespace"
    "           WHERE nspowner = 'postgres'::regrole AND nspname NOT LIKE 'pg\\_%'"
    "             AND nspname <> 'information_schema' LOOP"
    "    EXECUTE format('ALTER SCHEMA %I OWNER TO spine', r.nspname);"
    "  END LOOP;"
    "  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c"
    "           JOIN pg_namespace n ON n.oid = c.relnamespace"
    "           WHERE c.relowner = 'postgres'::regrole AND n.nspname NOT LIKE 'pg\\_%'"
    "             AND n.nspname <> 'information_schema' AND c.relkind IN ('r','p','v','m','f','S')"
    "             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
    "                             AND d.objid = c.oid AND d.deptype IN ('a','i')) LOOP"
    "    EXECUTE format('ALTER TABLE %s OWNER TO spine', r.name);"
    "  END LOOP;"
    "  FOR r IN SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p"
    "           JOIN pg_namespace n ON n.oid = p.pronamespace"
    "           WHERE p.proowner = 'postgres'::regrole AND n.nspname NOT LIKE 'pg\\_%'"
    "             AND n.nspname <> 'information_schema' LOOP"
    "    EXECUTE format('ALTER %s %s OWNER TO spine',"
    "                   CASE r.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, r.name);"
    "  END LOOP;"
    "  FOR r IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t"
    "           JOIN pg_namespace n ON n.oid = t.typnamespace"
    "           WHERE t.typowner = 'postgres'::regrole AND n.nspname NOT LIKE 'pg\\_%'"
    "             AND n.nspname <> 'information_schema' AND t.typtype IN ('e','d','r','m')"
    "  LOOP"
    "    EXECUTE format('ALTER %s %s OWNER TO spine',"
    "                   CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.name);"
    "  END LOOP;"
    " END $$";

int spine_pgembed__provision(const char *sockdir, spine_err *e) {
  PGconn *c = connect_as_admin(sockdir, "postgres", e);
  if (!c) return SPINE_EDB;
  int rc = exec_ok(c, role_sql, "role spine", e);
  PGresult *r = NULL;
  if (!rc) {
    r = PQexec(c, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'spine'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
      rc = spine_err_set(e, SPINE_EDB, "pg_database", NULL, "%s", PQerrorMessage(c));
  }
  int missing = !rc && PQntuples(r) == 0;
  int legacy = !rc && !missing && strcmp(PQgetvalue(r, 0, 0), "spine") != 0;
  PQclear(r);
  if (missing) {
    r = PQexec(c, "CREATE DATABASE spine OWNER spine");
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* 42P04 duplicate_database: made meanwhile by someone not holding our lock. */
    if (PQresultStatus(r) != PGRES_COMMAND_OK && !(state && !strcmp(state, "42P04")))
      rc = spine_err_set(e, SPINE_EDB, "CREATE DATABASE spine", NULL, "%s", PQerrorMessage(c));
    PQclear(r);
  }
  if (legacy) rc = exec_ok(c, "ALTER DATABASE spine OWNER TO spine", "database spine", e);
  PQfinish(c);
  if (rc || !legacy) return rc;
  c = connect_as_admin(sockdir, "spine", e);
  if (!c) return SPINE_EDB;
  rc = exec_ok(c, adopt_sql, "giving database spine's objects to role spine", e);
  PQfinish(c);
  return rc;
}
