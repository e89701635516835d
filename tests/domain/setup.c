/* What the domain's runner (spine_ctest_domain) hands to the engine before any test: the
 * energy domain's intents and migrations, as the spine executable does (runtime/cli/main.c). */
#include "catalog.h"
#include "intents.h"
#include "test.h"

void test_setup(void) {
  spine_intents_set_catalog(spine_catalog_register);
  spine_migrate_add_set(spine_catalog_migrations);
}
