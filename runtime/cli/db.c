/* `spine db`: start, stop and inspect the embedded PostgreSQL cluster, print its URL.
 * Owns argument parsing and output only; the cluster itself is pgembed.c's.
 * Never manages a cluster when SPINE_DATABASE_URL names the database to use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "cli.h"
#include "log.h"
#include "migrate.h"
#include "pgconn.h"
#include "pgembed.h"

static int db_start(int argc, char **argv);
static int db_stop(int argc, char **argv);
static int db_status(int argc, char **argv);
static int db_url(int argc, char **argv);
static int db_migrate(int argc, char **argv);

/* The subcommands, each given argv from its own name on: add a row to add one. */
static const spine_cli_command subcommands[] = {
    {"start", db_start, "create the cluster if missing, start it, create database `spine`"},
    {"stop", db_stop, "stop the cluster (fast shutdown)"},
    {"status", db_status, "running, stopped or absent, with the cluster's paths"},
    {"url", db_url, "print the libpq connection string Spine works with (role spine), one line"},
    {"migrate", db_migrate, "apply the schema migrations that are missing (also automatic)"},
};

static void usage(FILE *f) {
  fputs("usage: spine db COMMAND [--json]\n\ncommands:\n", f);
  spine_cli__list_commands(f, subcommands, sizeof subcommands / sizeof subcommands[0], 8);
  fputs("\noptions:\n"
        "  --json   print one JSON object on stdout\n"
        "  --admin  (url) the cluster's superuser `postgres` instead, database postgres: for\n"
        "           creating databases and maintenance; Spine itself never works as it\n"
        "  --help   print this help\n"
        "\n"
        "The cluster lives under $SPINE_HOME (default ./.spine) and listens only on a Unix\n"
        "socket in a mode 0700 directory; only the system user who runs Spine may connect\n"
        "(peer authentication). Spine works as role spine, which owns database spine and is\n"
        "no superuser. start is idempotent. With SPINE_DATABASE_URL set, Spine uses that database\n"
        "instead: `url` prints it and start, stop and status refuse.\n",
        f);
}

static const char external_msg[] =
    "SPINE_DATABASE_URL is set: Spine uses that database and manages no cluster";

/* Prints `s` as a JSON string (paths, messages), escaped as all of Spine's JSON. */
static void put_json_string(FILE *f, const char *s) {
  spine_buf b = SPINE_BUF_INIT;
  if (!spine_log_json_string(&b, s, strlen(s))) fwrite(b.data, 1, b.len, f);
  spine_buf_free(&b);
}

static const char *external_url(void) {
  const char *url = getenv("SPINE_DATABASE_URL");
  return url && *url ? url : NULL;
}

/* Prints the failure (a JSON error object on stdout, or a line on stderr); returns exit 1. */
static int fail(int json, const char *code, const spine_err *e) {
  char msg[512];
  spine_err_format(e, msg, sizeof msg);
  if (json) {
    fputs("{\"error\":{\"kind\":", stdout);
    put_json_string(stdout, spine_err_kind(e->code));
    fputs(",\"code\":", stdout);
    put_json_string(stdout, code);
    fputs(",\"message\":", stdout);
    put_json_string(stdout, msg);
    fputs("}}\n", stdout);
  } else {
    fprintf(stderr, "spine db: %s\n", msg);
  }
  return SPINE_EXIT_REJECTED;
}

static int refuse_external(int json, const char *code) {
  spine_err e;
  spine_err_set(&e, SPINE_EREJECTED, NULL, NULL, "%s", external_msg);
  return fail(json, code, &e);
}

static const char *state_name(const spine_pgembed *pg, int running) {
  if (running) return "running";
  char p[1300];
  struct stat st;
  snprintf(p, sizeof p, "%s/PG_VERSION", pg->datadir);
  return stat(p, &st) == 0 ? "stopped" : "absent";
}

/* The cluster's state and paths, as one JSON object or aligned lines for people. */
static int print_state(spine_pgembed *pg, int json, const char *code) {
  int running = spine_pgembed_running(pg);
  if (running < 0) {
    spine_err e;
    spine_err_set(&e, running, pg->datadir, NULL, "pg_ctl status failed");
    return fail(json, code, &e);
  }
  const char *state = state_name(pg, running);
  if (json) {
    const char *keys[] = {"status", "home", "datadir", "socket_dir", "log", "url"};
    const char *vals[] = {state, pg->home, pg->datadir, pg->sockdir, pg->logfile, pg->conninfo};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      fputs(i ? "," : "{", stdout);
      put_json_string(stdout, keys[i]);
      fputc(':', stdout);
      put_json_string(stdout, vals[i]);
    }
    fputs("}\n", stdout);
  } else {
    printf("status:     %s\nhome:       %s\ndatadir:    %s\nsocket_dir: %s\nlog:        %s\n"
           "url:        %s\n",
           state, pg->home, pg->datadir, pg->sockdir, pg->logfile, pg->conninfo);
  }
  return SPINE_EXIT_OK;
}

/* Options every subcommand takes: --json and --help. Returns 0, -1 after printing the help
 * (exit 0), or SPINE_EXIT_USAGE after naming the bad argument on stderr. */
/* --json, --help, and --admin where `admin` is given (only `url` takes it). */
static int parse_flags_admin(int argc, char **argv, int *json, int *admin) {
  *json = 0;
  if (admin) *admin = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      *json = 1;
    } else if (admin && !strcmp(argv[i], "--admin")) {
      *admin = 1;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return -1;
    } else {
      fprintf(stderr, "spine db %s: unknown %s \"%s\"\n\n", argv[0],
              argv[i][0] == '-' ? "option" : "argument", argv[i]);
      usage(stderr);
      return SPINE_EXIT_USAGE;
    }
  }
  return 0;
}

static int parse_flags(int argc, char **argv, int *json) {
  return parse_flags_admin(argc, argv, json, NULL);
}

/* start, stop, status: `act` (NULL: none) on the embedded cluster, then its state; `code` names
 * the failure. */
static int cluster(int argc, char **argv, const char *code,
                   int (*act)(spine_pgembed *pg, spine_err *e)) {
  int json, rc = parse_flags(argc, argv, &json);
  if (rc) return rc < 0 ? SPINE_EXIT_OK : rc;
  if (external_url()) return refuse_external(json, code);
  spine_pgembed pg;
  spine_err e;
  spine_err_clear(&e);
  if (spine_pgembed_init(&pg, &e) || (act && act(&pg, &e))) return fail(json, code, &e);
  return print_state(&pg, json, code);
}

static int db_start(int argc, char **argv) {
  return cluster(argc, argv, "db_start_failed", spine_pgembed_start);
}

static int db_stop(int argc, char **argv) {
  return cluster(argc, argv, "db_stop_failed", spine_pgembed_stop);
}

static int db_status(int argc, char **argv) {
  return cluster(argc, argv, "db_status_failed", NULL);
}

static int db_url(int argc, char **argv) {
  int json, admin, rc = parse_flags_admin(argc, argv, &json, &admin);
  if (rc) return rc < 0 ? SPINE_EXIT_OK : rc;
  const char *url = external_url();
  if (url && admin) return refuse_external(json, "db_url_failed");
  spine_pgembed pg;
  if (!url) {
    spine_err e;
    spine_err_clear(&e);
    if (spine_pgembed_init(&pg, &e)) return fail(json, "db_url_failed", &e);
    url = admin ? pg.admin_conninfo : pg.conninfo;
  }
  if (json) {
    fputs("{\"url\":", stdout);
    put_json_string(stdout, url);
    fputs("}\n", stdout);
  } else {
    printf("%s\n", url);
  }
  return SPINE_EXIT_OK;
}

static int db_migrate(int argc, char **argv) {
  int json, rc = parse_flags(argc, argv, &json);
  if (rc) return rc < 0 ? SPINE_EXIT_OK : rc;
  spine_err e;
  spine_err_clear(&e);
  char conninfo[1024];
  if (spine_pgconn_conninfo(conninfo, sizeof conninfo, &e))
    return fail(json, "db_migrate_failed", &e);
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    spine_err_set(&e, SPINE_EDB, "database", NULL, "cannot connect: %s", PQerrorMessage(c));
    PQfinish(c);
    return fail(json, "db_migrate_failed", &e);
  }
  int applied = 0;
  rc = spine_migrate(c, &applied, &e);
  PQfinish(c);
  if (rc) return fail(json, "db_migrate_failed", &e);
  int total = spine_migrate_count();
  if (json)
    printf("{\"applied\":%d,\"migrations\":%d}\n", applied, total);
  else
    printf("%d migration(s) applied, %d in all\n", applied, total);
  return SPINE_EXIT_OK;
}

int spine_cli_db(int argc, char **argv) {
  if (argc < 2) {
    fputs("spine db: missing command\n\n", stderr);
    usage(stderr);
    return SPINE_EXIT_USAGE;
  }
  int status;
  const spine_cli_command *c = spine_cli__lookup(
      argv, subcommands, sizeof subcommands / sizeof subcommands[0], "spine db", usage, &status);
  return c ? c->fn(argc - 1, argv + 1) : status;
}
