/* `spine`, the product's executable: the energy domain's intents and migrations, then the
 * command (cli.c). A test build has a main of its own that registers more
 * (tests/spine_testing.c). */
#include "catalog.h"
#include "cli.h"
#include "intents.h"
#include "migrate.h"

int main(int argc, char **argv) {
  /* The energy domain: its intents and its migrations, before any command migrates. */
  spine_intents_set_catalog(spine_catalog_register);
  spine_migrate_add_set(spine_catalog_migrations);
  return spine_cli_main(argc, argv);
}
