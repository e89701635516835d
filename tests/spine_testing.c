/* The spine executable of the specs ($SPINE_BIN): the product's commands (main.c's, on
 * spine_cli), and what only tests have: BenchRecord and its table (tools/bench), which the
 * engine's specs and tests/playbooks write with. Built beside spine, so that it runs the tools
 * as spine does. */
#include "bench_record.h"
#include "catalog.h"
#include "cli.h"
#include "intents.h"
#include "migrate.h"

/* The product's catalog, in its order, then the test-only intent. */
static void catalog(void) {
  spine_catalog_register();
  spine_bench_record_register();
}

int main(int argc, char **argv) {
  spine_migrate_add_set(spine_catalog_migrations);
  spine_migrate_add_set(spine_bench_record_migrations);
  spine_intents_set_catalog(catalog);
  return spine_cli_main(argc, argv);
}
