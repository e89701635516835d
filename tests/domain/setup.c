/* What the domain's runner (spine_ctest_domain) hands to the engine before any test: the
 * energy domain's intents and migrations, as the spine executable does (runtime/cli/main.c),
 * and BenchRecord's. */
#include "bench_record.h"
#include "catalog.h"
#include "intents.h"
#include "test.h"

/* The domain's catalog, then the test-only BenchRecord (tests/playbooks write with it), as the
 * specs' spine_testing does. */
static void catalog(void) {
  spine_catalog_register();
  spine_bench_record_register();
}

void test_setup(void) {
  spine_intents_set_catalog(catalog);
  spine_migrate_add_set(spine_catalog_migrations);
  spine_migrate_add_set(spine_bench_record_migrations);
}
