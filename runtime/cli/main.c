/* `spine`: the command dispatcher. Each command lives in its own file (cli.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cli.h"
#include "intents.h"
#include "log.h"

static const spine_cli_command commands[] = {
    {"serve", spine_cli_serve, "run workers: claim, run and resume workflows"},
    {"run", spine_cli_run, "run one playbook to its end in this process (--clock virtual)"},
    {"start", spine_cli_start, "store a new case; a running `spine serve` runs it"},
    {"signal", spine_cli_signal, "deliver a signal to a workflow"},
    {"show", spine_cli_show, "a workflow: status, state, result or error, and its steps"},
    {"list", spine_cli_list, "find workflows (--status, --process)"},
    {"cancel", spine_cli_cancel, "cancel a workflow (its compensations run)"},
    {"retry", spine_cli_retry, "re-run a stuck, failed or paused workflow"},
    {"skip", spine_cli_skip, "resolve a paused workflow's incident with a given step result"},
    {"incidents", spine_cli_incidents, "paused workflows waiting for an operator"},
    {"replay", spine_cli_replay, "replay a recorded history against a playbook"},
    {"explain", spine_cli_explain, "why a workflow is where it is, in plain words"},
    {"db", spine_cli_db, "the embedded database: start, stop, status, url, migrate"},
    {"manifests", spine_cli_manifests, "routing manifests: check, reload, show"},
    {"watch", spine_cli_watch, "cases as they move, live: per process and variant (--until-done)"},
    {"experiments", spine_cli_experiments, "per-variant outcomes of experiments (--process)"},
    {"bench", spine_cli_bench, "the built-in benchmark (--quick, --json)"},
    {"intent", spine_cli_intent, "apply one business intent as an operator (--args, --actor)"},
    {"intents", spine_cli_intents, "the business intent catalog (--json, --markdown, --luals)"},
    {"outbox", spine_cli_outbox, "event deliveries: subscribers, dead letters, webhooks"},
    {"simulate", spine_cli_simulate, "a provider simulator (HTTP API, webhooks) for tests"},
    {"new", spine_cli_new, "scaffold a playbook or a provider adapter, with its spec"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: spine COMMAND [options]   (spine COMMAND --help for more)\n\ncommands:\n");
  spine_cli__list_commands(f, commands, sizeof commands / sizeof commands[0], 11);
  fprintf(f, "\nEvery command takes --json for machine output. The database is\n"
             "$SPINE_DATABASE_URL, or else a private PostgreSQL under $SPINE_HOME (./.spine).\n");
}

int main(int argc, char **argv) {
  spine_intents_set_catalog(spine_catalog_register); /* the energy domain's intents */
  const char *level = getenv("SPINE_LOG_LEVEL");
  spine_log_level lv;
  if (level && spine_log_parse_level(level, &lv) == 0) spine_log_set_level(lv);
  if (argc < 2) {
    usage(stderr);
    return SPINE_EXIT_USAGE;
  }
  int status;
  const spine_cli_command *c = spine_cli__lookup(
      argv, commands, sizeof commands / sizeof commands[0], "spine", usage, &status);
  return c ? c->fn(argc - 1, argv + 1) : status;
}
