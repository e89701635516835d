/* `spine`, the product's executable: the energy domain's intents, then the command
 * (cli.c). A test build has a main of its own that registers more (tests/spine_testing.c). */
#include "catalog.h"
#include "cli.h"
#include "intents.h"

int main(int argc, char **argv) {
  spine_intents_set_catalog(spine_catalog_register);
  return spine_cli_main(argc, argv);
}
