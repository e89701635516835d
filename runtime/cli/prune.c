/* `spine prune --ended-before 90d`: removes the steps and signals of workflows that ended
 * before then, and the outbox deliveries delivered before then, in small batches (api_repair.c,
 * spine.prune_batch); the business history under lifecycle is never touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_repair.h"
#include "cli.h"

static const char *const spec[] = {"ended-before=", "batch=", "json", NULL};
static const char usage[] =
    "usage: spine prune --ended-before AGE|TIME [--batch N] [--json]\n"
    "  Removes the steps and signals of workflows that ended before AGE ago (90d) or TIME\n"
    "  (ISO 8601), and outbox deliveries delivered before then, N rows a transaction (500).\n"
    "  The workflows stay (status, result, error; `spine show` says they were pruned), and so\n"
    "  does the business history. Reports what went and the bytes it took.\n";

int spine_cli_prune(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 0)) return cmd.exit_code;
  const char *age = spine_cli__get(&cmd, "ended-before"), *batch = spine_cli__get(&cmd, "batch");
  char before[40];
  if (!age || spine_cli__since(age, before)) { /* checked here; the cutoff is the database's */
    fprintf(stderr, "spine prune: --ended-before needs an age (90d) or a time (2026-01-01)\n\n%s",
            usage);
    return SPINE_EXIT_USAGE;
  }
  int n = batch ? atoi(batch) : 500;
  if (n < 1 || n > 100000) {
    fprintf(stderr, "spine prune: --batch must be 1 to 100000\n");
    return SPINE_EXIT_USAGE;
  }
  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  spine_api_pruned p = {0};
  int status = SPINE_EXIT_OK;
  if (spine_api_prune_cutoff(cmd.c, age, before, &cmd.e) ||
      spine_api_prune(cmd.c, before, n, &p, &cmd.e)) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else if (cmd.json) {
    spine_buf b = SPINE_BUF_INIT;
    spine_api_pruned_json(&p, before, &b);
    printf("%s\n", spine_buf_str(&b));
    spine_buf_free(&b);
  } else {
    printf("pruned %lld workflow%s ended before %s: %lld steps, %lld signals; %lld outbox"
           " deliveries; %lld bytes reclaimed\n",
           (long long)p.workflows, p.workflows == 1 ? "" : "s", before, (long long)p.steps,
           (long long)p.signals, (long long)p.deliveries, (long long)p.bytes);
  }
  PQfinish(cmd.c);
  return status;
}
