/* `spine explain ID`: why a workflow is where it is, in plain words — the signal or timer it
 * waits for and since when, the retry it is in, the worker and lease that hold it, or the
 * error that stopped it (a non-determinism names the recorded and the new step). The facts
 * come from one query (api_ops.c, shared with GET /v1/workflows/{id}/explain); the sentence is
 * built there too, so text and JSON agree. */
#include <stdio.h>
#include <string.h>

#include "api_ops.h"
#include "cli.h"

static const char *const spec[] = {"json", NULL};
static const char usage[] =
    "usage: spine explain ID [--json]\n"
    "  Says in plain words why the workflow is where it is: what it waits for and since when,\n"
    "  the retry it is in, the worker and lease that hold it, or what stopped it.\n";

/* The sentence alone: the facts are in --json and spine show. */
static void print_sentence(PGresult *r) {
  printf("%s\n", PQgetvalue(r, 0, 1));
}

int spine_cli_explain(int argc, char **argv) {
  return spine_cli__show_one(argc, argv, spec, usage, spine_api_explain_sql, print_sentence);
}
