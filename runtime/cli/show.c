/* `spine show ID` and `spine list`: workflows as the database has them (the queries are
 * api_ops.c's, shared with GET /v1/workflows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_ops.h"
#include "buf.h"
#include "cli.h"
#include "jsondoc.h"
#include "pgconn.h"

static const char *const show_spec[] = {"json", NULL};
static const char show_usage[] =
    "usage: spine show ID [--json]\n"
    "  Status, process, variant, business state, result or error, and every step in order.\n";

int spine_cli_show(int argc, char **argv) {
  return spine_cli__show_one(argc, argv, show_spec, show_usage, spine_api_workflow_sql,
                             spine_cli__print_workflow_row);
}

static const char *const list_spec[] = {
    "status=", "process=", "attr=", "limit=", "cursor=", "json", NULL};
static const char list_usage[] =
    "usage: spine list [--status S] [--process P] [--attr K=V] [--limit N] [--cursor C] [--json]\n"
    "  Workflows, newest first; --json adds next_cursor when there are more.\n"
    "  --attr K=V: only those whose attribute K (ctx.set) is V; several, space-separated, must\n"
    "  all hold (\"contract_id=k-1 region=north\"), as GET /v1/workflows?attribute.K=V.\n";

static const char *field(const spine_jsondoc *o, const char *key) {
  const spine_jsondoc *v = spine_jsondoc_get(o, key);
  return v && v->type == SPINE_JSONDOC_STRING ? v->str : "";
}

/* --attr "K=V K2=V2" into the filter's attribute conditions, keys as "attribute.K" in `keys`. */
static int parse_attrs(const char *attrs, spine_api_filter *f, char keys[4][80], char vals[4][128],
                       spine_err *e) {
  for (const char *p = attrs; *p;) {
    while (*p == ' ')
      p++;
    if (!*p) break;
    size_t len = strcspn(p, " ");
    const char *eq = memchr(p, '=', len);
    if (!eq || eq == p || (size_t)(eq - p) >= sizeof keys[0] - 10 ||
        len - (size_t)(eq - p) - 1 >= sizeof vals[0])
      return spine_err_set(e, SPINE_EINVAL, NULL, "attr",
                           "cannot use \"%.*s\" (KEY=VALUE: a ctx.set attribute and its value)",
                           (int)(len > 64 ? 64 : len), p);
    int i = f->nattr;
    if (i == 4)
      return spine_err_set(e, SPINE_EINVAL, NULL, "attr", "at most 4 attribute conditions");
    snprintf(keys[i], sizeof keys[0], "attribute.%.*s", (int)(eq - p), p);
    snprintf(vals[i], sizeof vals[0], "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
    if (spine_api_filter_set(f, keys[i], vals[i], e)) return e->code;
    p += len;
  }
  return 0;
}

/* The page of spine_api_list as a table for people. */
static void print_page(const char *json) {
  spine_jsondoc *doc = NULL;
  int line;
  if (spine_jsondoc_parse(json, strlen(json), &doc, &line, NULL)) return;
  printf("%-40s %-12s %-24s %-20s %s\n", "ID", "STATUS", "PROCESS", "STATE", "CREATED");
  const spine_jsondoc *items = spine_jsondoc_get(doc, "workflows");
  for (const spine_jsondoc *w = items ? items->child : NULL; w; w = w->next) {
    char created[20];
    snprintf(created, sizeof created, "%.10s %.8s", field(w, "created_at"),
             strlen(field(w, "created_at")) > 11 ? field(w, "created_at") + 11 : "");
    printf("%-40s %-12s %-24s %-20s %s\n", field(w, "id"), field(w, "status"), field(w, "process"),
           field(w, "state"), created);
  }
  spine_jsondoc_free(doc);
}

int spine_cli_list(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, list_spec, list_usage, 0, 0)) return cmd.exit_code;
  const char *limit = spine_cli__get(&cmd, "limit");
  if (limit && atoi(limit) <= 0) {
    fprintf(stderr, "spine list: --limit must be a positive number\n");
    return SPINE_EXIT_USAGE;
  }
  spine_api_filter f = {0};
  f.eq[0] = spine_cli__get(&cmd, "status");
  f.eq[1] = spine_cli__get(&cmd, "process");
  f.limit = limit ? atoi(limit) : 100;
  f.cursor = spine_cli__get(&cmd, "cursor");
  char keys[4][80], vals[4][128];
  const char *attrs = spine_cli__get(&cmd, "attr");
  if (attrs && parse_attrs(attrs, &f, keys, vals, &cmd.e)) {
    spine_cli__fail(cmd.json, &cmd.e, NULL);
    return SPINE_EXIT_USAGE;
  }
  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  spine_buf page = SPINE_BUF_INIT;
  int status = SPINE_EXIT_OK;
  if (spine_api_list(cmd.c, &f, "workflows", &page, &cmd.e))
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  else if (cmd.json)
    printf("%s\n", spine_buf_str(&page));
  else
    print_page(spine_buf_str(&page));
  spine_buf_free(&page);
  PQfinish(cmd.c);
  return status;
}
