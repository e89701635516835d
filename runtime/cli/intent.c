/* `spine intent NAME --args JSON --actor WHO`: applies one business intent outside any playbook,
 * through the same handler and store as ctx.intent (one transaction; the actor is recorded in
 * the history). `spine intents`: the catalog, for people, scripts (--json), the docs
 * (--markdown writes docs/intents.md) and editors (--luals writes types/intents.lua). */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "buf.h"
#include "cli.h"
#include "codec.h"
#include "intent_args.h"
#include "intents.h"
#include "log.h"
#include "migrate.h"
#include "pgconn.h"
#include "store.h"
#include "uuid.h"

static const char *const spec[] = {"args=", "actor=", "json", NULL};
static const char usage[] =
    "usage: spine intent NAME --args JSON --actor WHO [--json]\n"
    "  Applies business intent NAME (see `spine intents`) with the arguments object JSON, as\n"
    "  operator WHO (recorded in the history). Prints the intent's result; exit 1 when the\n"
    "  intent is rejected (invalid_argument, not_found, invalid_transition, conflict).\n";

typedef struct call_state {
  spine_store *store;
  int done;
  spine_err err;
  char code[32];
  spine_buf result;
} call_state;

static void call_done(spine_op *op) {
  call_state *cs = op->data;
  cs->done = 1;
  if (op->status) {
    cs->err = *spine_op_error(op);
    cs->err.code = op->status;
  } else {
    PGresult *r = spine_op_result(op, op->nstmts - 1);
    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
      spine_buf_puts(&cs->result, PQgetvalue(r, 0, 0));
    else
      spine_buf_puts(&cs->result, "null");
  }
  spine_store_close(cs->store);
}

/* Connects once to migrate (blocking, before any loop), as every command does. */
static int migrate(const char *conninfo, spine_err *e) {
  PGconn *c = PQconnectdb(conninfo);
  int rc;
  if (PQstatus(c) != CONNECTION_OK) {
    rc = spine_err_set(e, SPINE_EDB, "database", NULL, "cannot connect: %s", PQerrorMessage(c));
  } else {
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    rc = spine_migrate(c, NULL, e);
  }
  PQfinish(c);
  return rc;
}

/* Runs the intent's statements and reads the result back, in one transaction. */
static int run_intent(const spine_intent *in, lua_State *L, const char *actor, const char *trace_id,
                      call_state *cs) {
  static int read_result = -1;
  if (read_result < 0)
    read_result = spine_store_statement("SELECT current_setting('spine.result')");
  char conninfo[1024];
  if (spine_pgconn_conninfo(conninfo, sizeof conninfo, &cs->err) || migrate(conninfo, &cs->err))
    return -1;
  spine_op op;
  spine_op_init(&op);
  spine_intent_call call = {L, 1, &op, NULL, 0, actor, trace_id};
  int rc = in->apply(&call, &cs->err);
  if (rc) {
    cs->err.code = rc;
    spine_op_free(&op);
    return -1;
  }
  spine_op_stmt(&op, read_result, 1);
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc = spine_store_open(&loop, conninfo, 1, &cs->store, &cs->err);
  if (rc == 0) {
    op.cb = call_done;
    op.data = cs;
    spine_store_submit(cs->store, &op);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  spine_op_free(&op);
  return rc || !cs->done || cs->err.code ? -1 : 0;
}

int spine_cli_intent(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 1, 1)) return cmd.exit_code;
  const char *name = cmd.a.pos[0];
  int json = cmd.json;
  const char *actor = spine_cli__get(&cmd, "actor");
  const char *args = spine_cli__get(&cmd, "args");
  if (!actor || !*actor) {
    fprintf(stderr, "spine intent: --actor is required (who applies it, as ops:jane)\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  spine_intents_init();
  call_state cs = {0};
  const spine_intent *in = spine_intents_find(name);
  if (!in) {
    spine_err_set(&cs.err, SPINE_EINVAL, NULL, "NAME", "no intent named \"%s\" (see spine intents)",
                  name);
    return spine_cli__fail(json, &cs.err, "unknown_intent");
  }
  lua_State *L = luaL_newstate();
  if (!L) return SPINE_EXIT_REJECTED;
  if (!args) args = "{}";
  if (spine_codec_decode(L, args, strlen(args), &cs.err) || !lua_istable(L, 1)) {
    lua_close(L);
    snprintf(cs.err.field, sizeof cs.err.field, "--args");
    if (!cs.err.msg[0]) snprintf(cs.err.msg, sizeof cs.err.msg, "expected a JSON object");
    cs.err.code = SPINE_EINVAL;
    return spine_cli__fail(json, &cs.err, NULL);
  }
  char trace_id[33];
  spine_uuid_trace_id(trace_id);
  char who[128];
  snprintf(who, sizeof who, "%s", actor);
  int rc = run_intent(in, L, who, trace_id, &cs);
  lua_close(L);
  if (rc) {
    spine_buf_free(&cs.result);
    if (cs.err.msg[0] && strncmp(cs.err.msg, in->name, strlen(in->name))) {
      char msg[400];
      snprintf(msg, sizeof msg, "%s: %s%s%s", in->name, cs.err.field, cs.err.field[0] ? ": " : "",
               cs.err.msg);
      snprintf(cs.err.msg, sizeof cs.err.msg, "%.255s", msg);
    }
    return spine_cli__fail(json, &cs.err, NULL);
  }
  if (json) {
    spine_buf out = SPINE_BUF_INIT;
    spine_buf_puts(&out, "{\"intent\":");
    spine_log_json_string(&out, in->name, strlen(in->name));
    spine_buf_puts(&out, ",\"actor\":");
    spine_log_json_string(&out, who, strlen(who));
    spine_buf_printf(&out, ",\"trace_id\":\"%s\",\"result\":%s}\n", trace_id,
                     spine_buf_str(&cs.result));
    fputs(spine_buf_str(&out), stdout);
    spine_buf_free(&out);
  } else {
    printf("%s\n", spine_buf_str(&cs.result));
  }
  spine_buf_free(&cs.result);
  return SPINE_EXIT_OK;
}

/* ---- spine intents ---- */

static const char *const list_spec[] = {"json", "markdown", "luals", NULL};
static const char list_usage[] =
    "usage: spine intents [--json | --markdown | --luals]\n"
    "  Lists the business intents: name, description, arguments (`?` = optional).\n"
    "  --markdown prints the catalog page (docs/intents.md is this output).\n"
    "  --luals prints LuaLS annotations: a class per intent's arguments and result, and\n"
    "  ctx.intent's overloads (types/intents.lua is this output).\n";

static const char markdown_head[] =
    "# Intent catalog\n\n"
    "<!-- Generated by `spine intents --markdown > docs/intents.md` from the catalog,\n"
    "     intents/intent_list.h: do not edit. tests/spec/intents/catalog_spec.lua fails when stale. -->\n\n"
    "Business intents change the system of record (PostgreSQL schema `lifecycle`) exactly once:\n"
    "an intent's writes, its history rows, its outbox events and the workflow's step checkpoint\n"
    "commit in one transaction. Call them from a playbook with `ctx.intent(NAME, args)`, or as\n"
    "an operator with `spine intent NAME --args JSON --actor WHO`.\n\n"
    "A rejected intent changes nothing and raises an error with `kind = \"rejected\"` and\n"
    "`code` one of `invalid_argument` (the `field` is named), `not_found`, `invalid_transition`\n"
    "or `conflict` (with `spine intent --json`: `error.kind`). Ids are text; money is integer\n"
    "cents with a currency (default EUR); dates are `YYYY-MM-DD`, times ISO 8601.\n\n"
    "Contract states: `draft -> pending_activation -> active -> termination_requested ->\n"
    "terminated`; `draft | pending_activation -> cancelled`; `active -> switch_pending ->\n"
    "terminated` (switched: a new active contract replaces it) or back to `active`\n"
    "(CancelSwitch). Every contract change adds 1 to its `version`; pass `expected_version` to\n"
    "get `conflict` instead of overwriting a change you have not seen.\n\n"
    "Argument types: `id` (text up to 100 bytes, no spaces), `string`, `integer`, `cents`\n"
    "(integer > 0), `date`, `time`, `email`, `currency` (EUR), `address` ({street, postcode,\n"
    "city, country?}), `object`, or one of the listed values (`a|b`).\n";

static void json_str(spine_buf *b, const char *s) {
  spine_log_json_string(b, s, strlen(s));
}

/* "[{name, type, required}...]" of a schema (NULL: none). */
static void json_fields(spine_buf *b, const char *schema) {
  spine_buf_putc(b, '[');
  spine_intent_field f;
  for (int k = 0; schema && spine_intent_args_field(schema, k, &f); k++) {
    spine_buf_puts(b, k ? ",{\"name\":" : "{\"name\":");
    json_str(b, f.name);
    spine_buf_puts(b, ",\"type\":");
    json_str(b, f.type);
    spine_buf_printf(b, ",\"required\":%s}", f.required ? "true" : "false");
  }
  spine_buf_putc(b, ']');
}

static void print_json(void) {
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, "{\"intents\":[");
  for (int i = 0; spine_intents_at(i); i++) {
    const spine_intent *in = spine_intents_at(i);
    spine_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
    json_str(&b, in->name);
    spine_buf_puts(&b, ",\"description\":");
    json_str(&b, in->description);
    spine_buf_puts(&b, ",\"schema\":");
    json_str(&b, in->args ? in->args : "");
    spine_buf_puts(&b, ",\"args\":");
    json_fields(&b, in->args);
    if (in->result) {
      spine_buf_puts(&b, ",\"result\":");
      json_fields(&b, in->result);
    }
    spine_buf_putc(&b, '}');
  }
  spine_buf_puts(&b, "]}\n");
  fputs(spine_buf_str(&b), stdout);
  spine_buf_free(&b);
}

static void print_markdown(void) {
  fputs(markdown_head, stdout);
  printf("\n| intent | does |\n|---|---|\n");
  for (int i = 0; spine_intents_at(i); i++) {
    const spine_intent *in = spine_intents_at(i);
    const char *dot = strstr(in->description, ". ");
    int n = dot ? (int)(dot - in->description) : (int)strlen(in->description);
    printf("| [%s](#%s) | %.*s |\n", in->name, in->name, n, in->description);
  }
  for (int i = 0; spine_intents_at(i); i++) {
    const spine_intent *in = spine_intents_at(i);
    printf("\n<a id=\"%s\"></a>\n## %s\n\n%s\n\n", in->name, in->name, in->description);
    printf("| argument | type | required |\n|---|---|---|\n");
    spine_intent_field f;
    for (int k = 0; in->args && spine_intent_args_field(in->args, k, &f); k++)
      printf("| `%s` | `%s` | %s |\n", f.name, f.type, f.required ? "yes" : "no");
  }
}

static const char luals_head[] =
    "---@meta\n"
    "-- Generated by `spine intents --luals > types/intents.lua` from the registrations in\n"
    "-- intents/*.c: do not edit. tests/spec/docs/types_spec.lua fails when stale.\n"
    "-- LuaLS annotations for business intents: a class per intent's arguments (<Intent>Args)\n"
    "-- and result (<Intent>Result), and ctx.intent with one overload per intent, so that an\n"
    "-- editor completes and checks `ctx.intent(\"CreateContract\", { ... })`. Not loaded at\n"
    "-- run time; types/spine.lua has the rest of ctx.\n\n"
    "---@class SpineAddress\n"
    "---@field street string\n"
    "---@field postcode string\n"
    "---@field city string\n"
    "---@field country? string\n";

/* The LuaLS type of a schema type (intent_args.h), and what the field holds, for people. */
static void luals_type(const char *type, spine_buf *lua, const char **note) {
  static const struct {
    const char *type, *lua, *note;
  } map[] = {
      {"id", "string", NULL},
      {"string", "string", NULL},
      {"integer", "integer", NULL},
      {"cents", "integer", "cents, > 0"},
      {"date", "string", "YYYY-MM-DD"},
      {"time", "string", "ISO 8601"},
      {"email", "string", "an email address"},
      {"currency", "string", "ISO 4217, as \"EUR\""},
      {"address", "SpineAddress", NULL},
      {"object", "table", NULL},
      {"list", "table[]", NULL},
  };
  *note = NULL;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(type, map[i].type)) {
      spine_buf_puts(lua, map[i].lua);
      *note = map[i].note;
      return;
    }
  /* an enumeration a|b|c, or (in results) one value: its literals */
  for (const char *p = type; *p;) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    spine_buf_printf(lua, "%s\"%.*s\"", p == type ? "" : "|", (int)n, p);
    p += n + (bar ? 1 : 0);
  }
}

static void luals_class(spine_buf *b, const char *intent, const char *suffix, const char *schema) {
  spine_buf_printf(b, "---@class %s%s\n", intent, suffix);
  spine_intent_field f;
  for (int k = 0; spine_intent_args_field(schema, k, &f); k++) {
    const char *note;
    spine_buf_printf(b, "---@field %s%s ", f.name, f.required ? "" : "?");
    luals_type(f.type, b, &note);
    if (note) spine_buf_printf(b, " %s", note);
    spine_buf_putc(b, '\n');
  }
}

/* `text` as "--- " comment lines of at most 100 columns. */
static void luals_comment(spine_buf *b, const char *text) {
  const char *p = text;
  while (*p) {
    size_t n = strlen(p);
    if (n > 96) {
      n = 96;
      while (n > 0 && p[n] != ' ')
        n--;
      if (n == 0) n = strcspn(p, " ");
    }
    spine_buf_printf(b, "--- %.*s\n", (int)n, p);
    p += n;
    while (*p == ' ')
      p++;
  }
}

static void print_luals(void) {
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, luals_head);
  spine_buf_puts(&b, "\n---@alias SpineIntentName\n");
  for (int i = 0; spine_intents_at(i); i++)
    spine_buf_printf(&b, "---| \"%s\"\n", spine_intents_at(i)->name);
  for (int i = 0; spine_intents_at(i); i++) {
    const spine_intent *in = spine_intents_at(i);
    char about[600];
    snprintf(about, sizeof about, "%s: %s", in->name, in->description);
    spine_buf_putc(&b, '\n');
    luals_comment(&b, about);
    luals_class(&b, in->name, "Args", in->args ? in->args : "");
    if (in->result) {
      spine_buf_printf(&b, "\n--- What %s returns.\n", in->name);
      luals_class(&b, in->name, "Result", in->result);
    }
  }
  spine_buf_puts(&b,
                 "\n---@class SpineCtx\nlocal ctx = {}\n\n"
                 "--- Applies a business intent exactly once (its writes and the step commit\n"
                 "--- together); returns its result. A rejection raises a SpineError with kind\n"
                 "--- \"rejected\" and code invalid_argument (field named), not_found,\n"
                 "--- invalid_transition or conflict. The catalog: docs/intents.md.\n");
  for (int i = 0; spine_intents_at(i); i++) {
    const spine_intent *in = spine_intents_at(i);
    spine_buf_printf(&b, "---@overload fun(name: \"%s\", args: %sArgs): %s%s\n", in->name, in->name,
                     in->result ? in->name : "table", in->result ? "Result" : "");
  }
  spine_buf_puts(&b, "---@param name SpineIntentName|string an intent of `spine intents`\n"
                     "---@param args table\n"
                     "---@return table result\n"
                     "function ctx.intent(name, args) end\n");
  fputs(spine_buf_str(&b), stdout);
  spine_buf_free(&b);
}

int spine_cli_intents(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, list_spec, list_usage, 0, 0)) return cmd.exit_code;
  spine_intents_init();
  if (cmd.json) {
    print_json();
  } else if (spine_cli__get(&cmd, "markdown")) {
    print_markdown();
  } else if (spine_cli__get(&cmd, "luals")) {
    print_luals();
  } else {
    for (int i = 0; spine_intents_at(i); i++) {
      const spine_intent *in = spine_intents_at(i);
      printf("%-22s %s\n%22s   args: %s\n", in->name, in->description, "",
             in->args ? in->args : "");
    }
  }
  return SPINE_EXIT_OK;
}
