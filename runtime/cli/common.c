/* What the commands share: option parsing, the database connection, error and workflow output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "buf.h"
#include "cli.h"
#include "codec.h"
#include "duration.h"
#include "log.h"
#include "pgconn.h"

void spine_cli__log_level(void) {
  const char *level = getenv("SPINE_LOG_LEVEL");
  spine_log_level lv;
  if (level && spine_log_parse_level(level, &lv) == 0) spine_log_set_level(lv);
}

int spine_cli__beside(const char *file, char *out, size_t size) {
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len < 0) return -1;
  exe[len] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  if ((size_t)snprintf(out, size, "%s/%s", slash ? exe : ".", file) >= size) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}

int spine_cli__parse(int argc, char **argv, const char *const *spec, const char *usage, int min_pos,
                     int max_pos, spine_cli_args *out) {
  memset(out, 0, sizeof *out);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage, stdout);
      return -1;
    }
    if (a[0] == '-' && a[1] == '-') {
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
      int found = -1, takes = 0;
      for (int k = 0; spec[k]; k++) {
        size_t sl = strlen(spec[k]);
        int t = spec[k][sl - 1] == '=';
        if (sl - (size_t)t == nlen && !strncmp(spec[k], name, nlen)) {
          found = k;
          takes = t;
          break;
        }
      }
      if (found < 0) {
        fprintf(stderr, "spine %s: unknown option --%.*s\n\n%s", argv[0], (int)nlen, name, usage);
        return SPINE_EXIT_USAGE;
      }
      if (takes) {
        if (eq)
          out->values[found] = eq + 1;
        else if (i + 1 < argc)
          out->values[found] = argv[++i];
        else {
          fprintf(stderr, "spine %s: option --%s needs a value\n\n%s", argv[0], spec[found], usage);
          return SPINE_EXIT_USAGE;
        }
      } else {
        out->values[found] = "1";
      }
      continue;
    }
    if (out->npos == max_pos || out->npos == 8) {
      fprintf(stderr, "spine %s: unexpected argument \"%s\"\n\n%s", argv[0], a, usage);
      return SPINE_EXIT_USAGE;
    }
    out->pos[out->npos++] = a;
  }
  if (out->npos < min_pos) {
    fprintf(stderr, "spine %s: missing argument\n\n%s", argv[0], usage);
    return SPINE_EXIT_USAGE;
  }
  return 0;
}

const char *spine_cli__opt(const spine_cli_args *a, const char *const *spec, const char *name) {
  size_t n = strlen(name);
  for (int k = 0; spec[k]; k++)
    if (!strncmp(spec[k], name, n) && (spec[k][n] == '\0' || spec[k][n] == '='))
      return a->values[k];
  return NULL;
}

int spine_cli__fail(int json, const spine_err *e, const char *code) {
  if (json) {
    spine_buf b = SPINE_BUF_INIT;
    spine_buf_puts(&b, "{\"error\":{\"kind\":");
    const char *kind = spine_err_kind(e->code);
    spine_log_json_string(&b, kind, strlen(kind));
    spine_buf_puts(&b, ",\"code\":");
    spine_log_json_string(&b, code ? code : kind, strlen(code ? code : kind));
    spine_buf_puts(&b, ",\"message\":");
    spine_log_json_string(&b, e->msg, strlen(e->msg));
    if (e->where[0]) {
      spine_buf_puts(&b, ",\"where\":");
      spine_log_json_string(&b, e->where, strlen(e->where));
    }
    if (e->field[0]) {
      spine_buf_puts(&b, ",\"field\":");
      spine_log_json_string(&b, e->field, strlen(e->field));
    }
    spine_buf_puts(&b, "}}\n");
    fputs(spine_buf_str(&b), stdout);
    spine_buf_free(&b);
  } else {
    char msg[600];
    fprintf(stderr, "spine: %s\n", spine_err_format(e, msg, sizeof msg));
  }
  return SPINE_EXIT_REJECTED;
}

int spine_cli__begin(spine_cli_cmd *cmd, int argc, char **argv, const char *const *spec,
                     const char *usage, int min_pos, int max_pos) {
  memset(cmd, 0, sizeof *cmd);
  cmd->spec = spec;
  cmd->name = argv[0];
  spine_err_clear(&cmd->e);
  int rc = spine_cli__parse(argc, argv, spec, usage, min_pos, max_pos, &cmd->a);
  if (rc) {
    cmd->exit_code = rc < 0 ? SPINE_EXIT_OK : rc;
    return 1;
  }
  cmd->json = spine_cli__get(cmd, "json") != NULL;
  return 0;
}

int spine_cli__connect(spine_cli_cmd *cmd) {
  cmd->c = spine_pgconn_connect(&cmd->e);
  if (cmd->c) return 0;
  cmd->exit_code = spine_cli__fail(cmd->json, &cmd->e, NULL);
  return 1;
}

int spine_cli__open(spine_cli_cmd *cmd, int argc, char **argv, const char *const *spec,
                    const char *usage, int min_pos, int max_pos) {
  return spine_cli__begin(cmd, argc, argv, spec, usage, min_pos, max_pos) ||
         spine_cli__connect(cmd);
}

const char *spine_cli__get(const spine_cli_cmd *cmd, const char *name) {
  return spine_cli__opt(&cmd->a, cmd->spec, name);
}

int spine_cli__since_opt(spine_cli_cmd *cmd, char out[32], const char **iso) {
  const char *since = spine_cli__get(cmd, "since");
  *iso = since ? out : NULL;
  if (!since || !spine_cli__since(since, out)) return 0;
  fprintf(stderr, "spine %s: --since takes a date, a date-time or a duration\n", cmd->name);
  cmd->exit_code = SPINE_EXIT_USAGE;
  return 1;
}

int spine_cli__not_found(spine_cli_cmd *cmd, const char *id) {
  spine_err_set(&cmd->e, SPINE_ENOTFOUND, NULL, "id", "no workflow %s", id);
  return spine_cli__fail(cmd->json, &cmd->e, "not_found");
}

void spine_cli__list_commands(FILE *f, const spine_cli_command *cmds, size_t n, int width) {
  for (size_t i = 0; i < n; i++)
    fprintf(f, "  %-*s %s\n", width, cmds[i].name, cmds[i].summary);
}

const spine_cli_command *spine_cli__lookup(char **argv, const spine_cli_command *cmds, size_t n,
                                           const char *who, void (*usage)(FILE *f),
                                           int *exit_code) {
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    *exit_code = SPINE_EXIT_OK;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!strcmp(argv[1], cmds[i].name)) return &cmds[i];
  fprintf(stderr, "%s: unknown command \"%s\"\n\n", who, argv[1]);
  usage(stderr);
  *exit_code = SPINE_EXIT_USAGE;
  return NULL;
}

static const char *field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* still referenced by the table */
  return s;
}

/* A JSON rendering of field k of table t, or "" if absent. */
static const char *json_of(lua_State *L, int t, const char *k, spine_buf *b) {
  spine_buf_reset(b);
  if (lua_getfield(L, t, k) != LUA_TNIL) spine_codec_encode(L, -1, k, b, NULL);
  lua_pop(L, 1);
  return spine_buf_str(b);
}

static int by_text(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The attributes (ctx.set) of table t, a line each, by key: "attr      contract_id = "k-1"". */
static void print_attributes(lua_State *L, int t, spine_buf *b) {
  if (lua_getfield(L, t, "attributes") == LUA_TTABLE) {
    int a = lua_gettop(L);
    size_t n = 0, cap = 0;
    const char **keys = NULL; /* borrowed from the table, which keeps them */
    for (lua_pushnil(L); lua_next(L, a); lua_pop(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING) continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        const char **more = realloc(keys, cap * sizeof *keys);
        if (!more) abort();
        keys = more;
      }
      keys[n++] = lua_tostring(L, -2);
    }
    if (n) qsort(keys, n, sizeof *keys, by_text); /* pairs() has no order */
    for (size_t i = 0; i < n; i++)
      printf("attr      %s = %s\n", keys[i], json_of(L, a, keys[i], b));
    free(keys);
  }
  lua_pop(L, 1);
}

/* What spine fork, migrate and prune and a max_duration did to the workflow at `w`. */
static void print_repairs(lua_State *L, int w) {
  const char *from = field(L, w, "forked_from");
  if (from) {
    lua_getfield(L, w, "forked_at_step");
    printf("forked    from %s at step %lld\n", from, (long long)lua_tointeger(L, -1));
    lua_pop(L, 1);
  }
  lua_getfield(L, w, "forks");
  for (lua_Integer i = 1; lua_istable(L, -1) && lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
    lua_getfield(L, -1, "from_step");
    printf("fork      %s (from step %lld)\n", field(L, lua_gettop(L) - 1, "id"),
           (long long)lua_tointeger(L, -1));
    lua_pop(L, 2);
  }
  lua_settop(L, w);
  if (field(L, w, "migrated_from"))
    printf("migrated  from version %.12s at %s\n", field(L, w, "migrated_from"),
           field(L, w, "migrated_at"));
  if (field(L, w, "max_duration"))
    printf("deadline  %s (max_duration %s)\n", field(L, w, "deadline_at"),
           field(L, w, "max_duration"));
  if (field(L, w, "pruned_at"))
    printf("pruned    %s (steps and signals removed)\n", field(L, w, "pruned_at"));
}

void spine_cli__print_workflow(const char *json) {
  lua_State *L = luaL_newstate();
  if (!L || spine_codec_decode(L, json, strlen(json), NULL) || !lua_istable(L, -1)) {
    printf("%s\n", json);
    if (L) lua_close(L);
    return;
  }
  int w = lua_gettop(L);
  spine_buf b = SPINE_BUF_INIT;
  printf("workflow  %s\n", field(L, w, "id"));
  printf("status    %s\n", field(L, w, "status"));
  printf("process   %s (playbook %s, version %.12s)\n", field(L, w, "process"),
         field(L, w, "playbook"), field(L, w, "version"));
  const char *variant = field(L, w, "variant");
  if (variant) {
    const char *experiment = field(L, w, "experiment");
    printf("variant   %s (experiment %s, subject %s)\n", variant, experiment ? experiment : "none",
           field(L, w, "subject") ? field(L, w, "subject") : "?");
  }
  const char *state = field(L, w, "state");
  if (state) printf("state     %s\n", state);
  const char *outcome = field(L, w, "outcome");
  if (outcome) printf("outcome   %s\n", outcome);
  print_attributes(L, w, &b);
  if (*json_of(L, w, "waiting_for", &b)) printf("waiting   %s\n", spine_buf_str(&b));
  if (*json_of(L, w, "result", &b)) printf("result    %s\n", spine_buf_str(&b));
  if (*json_of(L, w, "error", &b)) printf("error     %s\n", spine_buf_str(&b));
  printf("created   %s\n", field(L, w, "created_at"));
  print_repairs(L, w);
  printf("steps\n");
  lua_getfield(L, w, "steps");
  int steps = lua_gettop(L);
  for (lua_Integer i = 1; lua_rawgeti(L, steps, i) == LUA_TTABLE; i++) {
    int s = lua_gettop(L);
    lua_getfield(L, s, "seq");
    lua_getfield(L, s, "attempt");
    long long seq = (long long)lua_tointeger(L, -2), attempt = (long long)lua_tointeger(L, -1);
    lua_pop(L, 2);
    const char *got = json_of(L, s, "error", &b);
    if (!*got) got = json_of(L, s, "result", &b);
    const char *kind = field(L, s, "kind"), *status = field(L, s, "status");
    /* a wait ended by its timeout records no payload (a signal's is at least {}) */
    if (!*got && kind && status && !strcmp(kind, "wait") && !strcmp(status, "completed"))
      got = "(timed out: no signal)";
    printf("  %3lld  %-10s %-24s %-9s %.60s\n", seq, kind, field(L, s, "name"), status, got);
    if (attempt > 1) printf("       after %lld attempts\n", attempt);
    const char *branch = field(L, s, "branch"); /* a step of a ctx.parallel's branch */
    if (branch) printf("       in branch %s\n", branch);
    lua_pop(L, 1);
  }
  spine_buf_free(&b);
  lua_close(L);
}

int spine_cli__show_one(int argc, char **argv, const char *const *spec, const char *usage,
                        const char *sql, void (*text)(PGresult *r)) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, spec, usage, 1, 1)) return cmd.exit_code;
  const char *params[1] = {cmd.a.pos[0]};
  PGresult *r = spine_pgconn_query(cmd.c, sql, 1, params, &cmd.e);
  int status = SPINE_EXIT_OK;
  if (!r) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else if (PQntuples(r) == 0) {
    status = spine_cli__not_found(&cmd, cmd.a.pos[0]);
  } else if (cmd.json) {
    printf("%s\n", PQgetvalue(r, 0, 0));
  } else {
    text(r);
  }
  if (r) PQclear(r);
  PQfinish(cmd.c);
  return status;
}

void spine_cli__print_workflow_row(PGresult *r) {
  spine_cli__print_workflow(PQgetvalue(r, 0, 0));
}

int spine_cli__since(const char *v, char out[32]) {
  int64_t ms;
  if (!spine_duration_parse(v, &ms, NULL))
    spine_duration_format_time((int64_t)time(NULL) * 1000 - ms, out);
  else if (!spine_duration_parse_time(v, &ms, NULL))
    spine_duration_format_time(ms, out);
  else
    return -1;
  return 0;
}
