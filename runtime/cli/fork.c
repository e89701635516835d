/* `spine fork ID --from-step N [--playbook FILE] [--keep]`: a new workflow with the original's
 * steps 1 to N, running on from there (on FILE if given), once a replay proved those steps the
 * same on it; the original is superseded unless --keep (api_repair.c, spine.fork_workflow). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_repair.h"
#include "cli.h"
#include "jsondoc.h"

static const char *const spec[] = {"from-step=", "playbook=", "keep", "json", NULL};
static const char usage[] =
    "usage: spine fork ID --from-step N [--playbook FILE] [--keep] [--json]\n"
    "  A new workflow of the same process and input whose history is ID's completed steps 1 to\n"
    "  N; it runs on from there on FILE (default: ID's own version), which must replay those\n"
    "  steps alike. The signals ID took after step N, and those it had not taken, are the\n"
    "  fork's. ID, unless it ended or --keep is given, is cancelled without compensations (the\n"
    "  fork carries its effects on). `spine show` links both.\n";

int spine_cli_fork(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 1, 1)) return cmd.exit_code;
  const char *step = spine_cli__get(&cmd, "from-step"), *file = spine_cli__get(&cmd, "playbook");
  char *end = NULL;
  long n = step ? strtol(step, &end, 10) : -1;
  if (!step || *end || n < 0 || n > 1000000) {
    fprintf(stderr, "spine fork: --from-step needs a step number (0 or more)\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  spine_playbook_src src = {0};
  if (file && spine_playbook_read(file, NULL, &src, &cmd.e))
    return spine_cli__fail(cmd.json, &cmd.e, "not_found");
  if (spine_cli__connect(&cmd)) {
    spine_playbook_src_free(&src);
    return cmd.exit_code;
  }
  spine_buf b = SPINE_BUF_INIT;
  int status = SPINE_EXIT_OK;
  if (spine_api_fork(cmd.c, cmd.a.pos[0], (int)n, file ? &src : NULL,
                     spine_cli__get(&cmd, "keep") != NULL, "spine fork", &b, &cmd.e)) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else if (cmd.json) {
    printf("%s\n", spine_buf_str(&b));
  } else {
    spine_jsondoc *doc = NULL;
    int line;
    if (!spine_jsondoc_parse(spine_buf_str(&b), b.len, &doc, &line, NULL)) {
      const spine_jsondoc *o = spine_jsondoc_get(doc, "original");
      const spine_jsondoc *st = spine_jsondoc_get(o, "status");
      printf("%s: forked from %s at step %ld (the original is %s)\n",
             spine_jsondoc_get(doc, "id")->str, cmd.a.pos[0], n, st && st->str ? st->str : "?");
    }
    spine_jsondoc_free(doc);
  }
  spine_buf_free(&b);
  spine_playbook_src_free(&src);
  PQfinish(cmd.c);
  return status;
}
