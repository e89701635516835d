/* `spine migrate --process P [--where ...] --to FILE [--apply]`: moves waiting runs to another
 * playbook version when a replay of each one's history against FILE takes the same steps, and
 * refuses the others with their first divergence. A dry run unless --apply (api_repair.c,
 * spine.migrate_workflow). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_ops.h"
#include "api_repair.h"
#include "cli.h"
#include "jsondoc.h"
#include "log.h"

static const char *const spec[] = {"process=", "to=", "where=", "apply", "limit=", "json", NULL};
static const char usage[] =
    "usage: spine migrate --process P --to FILE [--where 'KEY=VALUE ...'] [--apply] [--limit N]\n"
    "                     [--json]\n"
    "  Replays the history of every waiting workflow of P (at most N, default 1000; --where\n"
    "  narrows: state, variant, version, attribute.KEY ...) against FILE. Those that take the\n"
    "  same steps would move to FILE's version (with --apply, they do: their worker replays\n"
    "  them on it and they wait on); the others are refused with their first divergence.\n"
    "  Exit 1 when any was refused.\n";

#define MAX_WHERE 8

/* Adds "KEY=VALUE ..." to the filter (copies in `keys` and `vals`). 0 or SPINE_EXIT_USAGE. */
static int parse_where(const char *where, spine_api_filter *f, char keys[][64], char vals[][128],
                       spine_err *e) {
  int n = 0;
  for (const char *p = where; *p;) {
    p += strspn(p, " ");
    if (!*p) break;
    size_t len = strcspn(p, " ");
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : 0;
    if (!eq || klen == 0 || klen >= 64 || len - klen - 1 >= 128 || n == MAX_WHERE) {
      fprintf(stderr, "spine migrate: --where: cannot use \"%.*s\" (KEY=VALUE)\n", (int)len, p);
      return SPINE_EXIT_USAGE;
    }
    snprintf(keys[n], 64, "%.*s", (int)klen, p);
    snprintf(vals[n], 128, "%.*s", (int)(len - klen - 1), eq + 1);
    if (!strcmp(keys[n], "status") || !strcmp(keys[n], "process")) {
      fprintf(stderr, "spine migrate: --where: %s is given (it moves waiting runs of --process)\n",
              keys[n]);
      return SPINE_EXIT_USAGE;
    }
    if (spine_api_filter_set(f, keys[n], vals[n], e)) {
      fprintf(stderr, "spine migrate: --where: %s: %s\n", e->field, e->msg);
      return SPINE_EXIT_USAGE;
    }
    n++;
    p += len;
  }
  return 0;
}

/* Replays one run and, with `apply`, moves it; appends its JSON to `items` and prints it. Returns
 * 1 when it was refused. */
static int one(spine_cli_cmd *cmd, const char *id, const char *version,
               const spine_playbook_src *src, int apply, spine_buf *items) {
  spine_api_replay rp;
  spine_buf ans = SPINE_BUF_INIT;
  const char *verdict = apply ? "moved" : "would move", *why = NULL;
  int refused = 0;
  if (!strcmp(version, src->hash)) {
    verdict = "already runs it";
  } else if (spine_api_replay_one(cmd->c, id, -1, src, &rp, &cmd->e)) {
    verdict = "refused", why = cmd->e.msg, refused = 1;
  } else if (rp.diverged) {
    verdict = "refused", why = rp.why, refused = 1;
  } else if (apply && spine_api_migrate(cmd->c, id, version, src, "spine migrate", &ans, &cmd->e)) {
    verdict = "refused", why = cmd->e.msg, refused = 1;
  }
  spine_buf_free(&ans);
  if (items->len > 1) spine_buf_putc(items, ',');
  spine_buf_puts(items, "{\"id\":");
  spine_log_json_string(items, id, strlen(id));
  spine_buf_puts(items, ",\"result\":");
  spine_log_json_string(items, verdict, strlen(verdict));
  if (why) {
    spine_buf_puts(items, ",\"divergence\":");
    spine_log_json_string(items, why, strlen(why));
  }
  spine_buf_putc(items, '}');
  if (!cmd->json) printf("%s: %s%s%s\n", id, verdict, why ? ": " : "", why ? why : "");
  return refused;
}

int spine_cli_migrate(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 0)) return cmd.exit_code;
  const char *process = spine_cli__get(&cmd, "process"), *file = spine_cli__get(&cmd, "to");
  const char *where = spine_cli__get(&cmd, "where"), *limit = spine_cli__get(&cmd, "limit");
  int apply = spine_cli__get(&cmd, "apply") != NULL;
  if (!process || !file) {
    fprintf(stderr, "spine migrate: give --process and --to\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  spine_api_filter f = {0};
  char keys[MAX_WHERE][64], vals[MAX_WHERE][128];
  f.eq[0] = "waiting";
  f.eq[1] = process;
  f.limit = limit ? atoi(limit) : 1000;
  if (f.limit < 1 || f.limit > 1000) {
    fprintf(stderr, "spine migrate: --limit must be 1 to 1000\n");
    return SPINE_EXIT_USAGE;
  }
  if (where && parse_where(where, &f, keys, vals, &cmd.e)) return SPINE_EXIT_USAGE;
  spine_playbook_src src = {0};
  if (spine_playbook_read(file, NULL, &src, &cmd.e))
    return spine_cli__fail(cmd.json, &cmd.e, "not_found");
  if (spine_cli__connect(&cmd)) {
    spine_playbook_src_free(&src);
    return cmd.exit_code;
  }
  spine_buf page = SPINE_BUF_INIT, items = SPINE_BUF_INIT;
  spine_jsondoc *doc = NULL;
  int line, status = SPINE_EXIT_OK, refused = 0, total = 0;
  if (spine_api_list(cmd.c, &f, "workflows", &page, &cmd.e) ||
      spine_jsondoc_parse(spine_buf_str(&page), page.len, &doc, &line, &cmd.e)) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else {
    spine_buf_putc(&items, '[');
    const spine_jsondoc *list = spine_jsondoc_get(doc, "workflows");
    /* Oldest first: the list is newest first. */
    const spine_jsondoc **rows = calloc((size_t)(list ? list->count : 0) + 1, sizeof *rows);
    if (!rows) abort();
    for (const spine_jsondoc *w = list ? list->child : NULL; w; w = w->next)
      rows[total++] = w;
    for (int i = total - 1; i >= 0; i--)
      refused += one(&cmd, spine_jsondoc_get(rows[i], "id")->str,
                     spine_jsondoc_get(rows[i], "version")->str, &src, apply, &items);
    free(rows);
    spine_buf_putc(&items, ']');
    if (cmd.json) {
      printf("{\"dry_run\":%s,\"process\":", apply ? "false" : "true");
      spine_buf b = SPINE_BUF_INIT;
      spine_log_json_string(&b, process, strlen(process));
      printf("%s,\"to\":\"%s\",\"workflows\":%s,\"refused\":%d}\n", spine_buf_str(&b), src.hash,
             spine_buf_str(&items), refused);
      spine_buf_free(&b);
    } else {
      printf("%d waiting workflow%s of %s: %d %s, %d refused%s\n", total, total == 1 ? "" : "s",
             process, total - refused, apply ? "moved (or on it already)" : "would move", refused,
             apply || total == refused ? "" : "; run again with --apply to move them");
    }
    if (refused) status = SPINE_EXIT_REJECTED;
  }
  spine_jsondoc_free(doc);
  spine_buf_free(&page);
  spine_buf_free(&items);
  spine_playbook_src_free(&src);
  PQfinish(cmd.c);
  return status;
}
