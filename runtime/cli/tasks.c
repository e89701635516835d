/* `spine tasks`: the operators' inbox from a shell — the open human tasks, one task with its
 * form, claiming one and answering one. The same functions as the HTTP API's task routes
 * (runtime/api/api_tasks.c): an answer is checked against the task kind's form and applied by
 * ResolveTask in one transaction, and the workflow that opened the task continues. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_tasks.h"
#include "buf.h"
#include "cli.h"
#include "intents.h"
#include "jsondoc.h"
#include "uuid.h"

static const char *const spec[] = {
    "kind=",  "subject=", "assignee=", "due-before=", "limit=", "cursor=",
    "actor=", "outcome=", "data=",     "json",        NULL};
static const char usage[] =
    "usage: spine tasks [list] [--kind K] [--subject S] [--assignee WHO|\"\"] [--due-before T]\n"
    "                          [--limit N] [--cursor C] [--json]\n"
    "       spine tasks show ID [--json]\n"
    "       spine tasks claim ID --actor WHO [--json]\n"
    "       spine tasks resolve ID --outcome O [--data JSON] --actor WHO [--json]\n"
    "  list     the open tasks, oldest first (--assignee \"\": the unclaimed ones); a page of\n"
    "           --limit (default 100), the next one with --cursor as printed.\n"
    "  show     a task and its kind's form: the outcomes it takes and the fields of its data.\n"
    "  claim    takes task ID as operator WHO: another operator's answer is then refused.\n"
    "  resolve  answers task ID with outcome O and data JSON (an object), checked against its\n"
    "           form, as operator WHO (recorded as resolved_by); the workflow that opened the\n"
    "           task continues. Exit 1 when refused (naming the field).\n";

static void print_task_line(const spine_jsondoc *t) {
  const char *who = spine_jsondoc_str(t, "assignee", ""), *due = spine_jsondoc_str(t, "due", "");
  printf("%-24s %-26s %-16s %s%s%s%s\n", spine_jsondoc_str(t, "task_id", ""),
         spine_jsondoc_str(t, "kind", ""), spine_jsondoc_str(t, "subject", ""),
         *who ? "claimed by " : "unclaimed", who, *due ? ", due " : "", due);
}

static void print_list(const spine_jsondoc *doc) {
  const spine_jsondoc *items = spine_jsondoc_get(doc, "items");
  for (const spine_jsondoc *t = items ? items->child : NULL; t; t = t->next)
    print_task_line(t);
  if (!items || !items->count) printf("no open tasks\n");
  const char *next = spine_jsondoc_str(doc, "next_cursor", "");
  if (*next) printf("more: spine tasks list --cursor %s\n", next);
}

static void print_task(const spine_jsondoc *t) {
  print_task_line(t);
  const char *wf = spine_jsondoc_str(t, "workflow_id", ""),
             *outcome = spine_jsondoc_str(t, "outcome", "");
  printf("  status %s%s%s%s%s\n", spine_jsondoc_str(t, "status", ""), *outcome ? ", outcome " : "",
         outcome, *wf ? ", opened by workflow " : ", opened by an operator", wf);
  const spine_jsondoc *form = spine_jsondoc_get(t, "form");
  if (!form || form->type != SPINE_JSONDOC_OBJECT) {
    printf("  form: any outcome, any data object\n");
    return;
  }
  printf("  outcomes:");
  const spine_jsondoc *o = spine_jsondoc_get(form, "outcomes");
  for (const spine_jsondoc *x = o ? o->child : NULL; x; x = x->next)
    printf(" %s", x->type == SPINE_JSONDOC_STRING ? x->str : "?");
  printf("\n");
  const spine_jsondoc *fields = spine_jsondoc_get(form, "fields");
  for (const spine_jsondoc *f = fields ? fields->child : NULL; f; f = f->next) {
    const spine_jsondoc *req = spine_jsondoc_get(f, "required");
    printf("  data.%s: %s%s\n", f->key,
           *spine_jsondoc_str(f, "type", "") ? spine_jsondoc_str(f, "type", "") : "string",
           req && req->type == SPINE_JSONDOC_BOOL && req->boolean ? ", required" : "");
  }
}

/* Prints answer `b` as it is with --json, else `text` of it. */
static int print_answer(spine_cli_cmd *cmd, const spine_buf *b,
                        void (*text)(const spine_jsondoc *)) {
  if (cmd->json) {
    printf("%s\n", spine_buf_str(b));
    return SPINE_EXIT_OK;
  }
  spine_jsondoc *doc = NULL;
  int line;
  if (spine_jsondoc_parse(spine_buf_str(b), b->len, &doc, &line, &cmd->e))
    return spine_cli__fail(0, &cmd->e, NULL);
  text(doc);
  spine_jsondoc_free(doc);
  return SPINE_EXIT_OK;
}

static void print_resolved(const spine_jsondoc *r) {
  printf("%s: %s (%s)\n", spine_jsondoc_str(r, "task_id", ""), spine_jsondoc_str(r, "status", ""),
         spine_jsondoc_str(r, "outcome", ""));
}

static int need_actor(spine_cli_cmd *cmd, const char **actor) {
  *actor = spine_cli__get(cmd, "actor");
  if (*actor && **actor) return 0;
  fprintf(stderr, "spine tasks: --actor is required (who acts, as ops:jane)\n\n%s", usage);
  return SPINE_EXIT_USAGE;
}

/* The --data object, checked here so that its error names --data, not ResolveTask's args. */
static int data_opt(spine_cli_cmd *cmd, const char **data) {
  *data = spine_cli__get(cmd, "data");
  if (!*data) return 0;
  spine_jsondoc *doc = NULL;
  int line;
  spine_err e;
  int bad = spine_jsondoc_parse(*data, strlen(*data), &doc, &line, &e) ||
            doc->type != SPINE_JSONDOC_OBJECT;
  spine_jsondoc_free(doc);
  if (!bad) return 0;
  spine_err_set(&cmd->e, SPINE_EINVAL, NULL, "--data", "not a JSON object");
  return spine_cli__fail(cmd->json, &cmd->e, NULL);
}

int spine_cli_tasks(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 2)) return cmd.exit_code;
  const char *verb = cmd.a.npos ? cmd.a.pos[0] : "list";
  const char *id = cmd.a.npos == 2 ? cmd.a.pos[1] : NULL;
  int one = strcmp(verb, "list") != 0;
  if ((one && !id) || (!one && cmd.a.npos > 1) ||
      (one && strcmp(verb, "show") && strcmp(verb, "claim") && strcmp(verb, "resolve"))) {
    fprintf(stderr, "spine tasks: unknown or incomplete command\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  const char *actor = NULL, *outcome = spine_cli__get(&cmd, "outcome"), *data = NULL;
  if (!strcmp(verb, "claim") || !strcmp(verb, "resolve")) {
    int rc = need_actor(&cmd, &actor);
    if (rc) return rc;
  }
  if (!strcmp(verb, "resolve")) {
    if (!outcome || !*outcome) {
      fprintf(stderr, "spine tasks: resolve needs --outcome\n\n%s", usage);
      return SPINE_EXIT_USAGE;
    }
    if (data_opt(&cmd, &data)) return SPINE_EXIT_REJECTED;
  }
  const char *limit = spine_cli__get(&cmd, "limit");
  if (limit && (strspn(limit, "0123456789") != strlen(limit) || !*limit)) {
    fprintf(stderr, "spine tasks: --limit: not a number: %s\n\n%s", limit, usage);
    return SPINE_EXIT_USAGE;
  }
  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  spine_buf b = SPINE_BUF_INIT;
  int rc, status;
  void (*text)(const spine_jsondoc *) = print_task;
  if (!one) {
    spine_api_tasks_filter f = {
        spine_cli__get(&cmd, "kind"),     spine_cli__get(&cmd, "subject"),
        spine_cli__get(&cmd, "assignee"), spine_cli__get(&cmd, "due-before"),
        spine_cli__get(&cmd, "cursor"),   limit ? atoi(limit) : 0};
    rc = spine_api_tasks_list(cmd.c, &f, &b, &cmd.e);
    text = print_list;
  } else if (!strcmp(verb, "show")) {
    rc = spine_api_tasks_get(cmd.c, id, &b, &cmd.e);
  } else if (!strcmp(verb, "claim")) {
    rc = spine_api_tasks_claim(cmd.c, id, actor, &b, &cmd.e);
  } else {
    char trace_id[33];
    spine_uuid_trace_id(trace_id);
    spine_intents_init();
    rc = spine_api_tasks_resolve(cmd.c, id, outcome, data, actor, trace_id, &b, &cmd.e);
    text = print_resolved;
  }
  if (rc) {
    if (!strcmp(cmd.e.field, "due_before"))
      snprintf(cmd.e.field, sizeof cmd.e.field, "--due-before");
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else {
    status = print_answer(&cmd, &b, text);
  }
  spine_buf_free(&b);
  PQfinish(cmd.c);
  return status;
}
