/* Runs one C test by name: `spine_ctest NAME` (ctest runs each in its own process). */
#include <stdio.h>
#include <string.h>

#include "bench_record.h"
#include "catalog.h"
#include "intents.h"
#include "migrate.h"
#include "test.h"

#define XX(name) int test_##name(void);
#include "test_list.h"
#undef XX

static const struct {
  const char *name;
  int (*fn)(void);
} tests[] = {
#define XX(name) {#name, test_##name},
#include "test_list.h"
#undef XX
};

const char *test_newdb(const char *name) {
  static char conninfo[1024];
  const char *src = getenv("SPINE_SRC");
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s/tests/lib/testpg newdb 'c_%s'", src ? src : ".", name);
  FILE *p = popen(cmd, "r");
  ASSERT(p != NULL);
  ASSERT(fgets(conninfo, sizeof conninfo, p) != NULL);
  ASSERT_EQ(pclose(p), 0);
  conninfo[strcspn(conninfo, "\n")] = '\0';
  return conninfo;
}

/* The product's catalog, then the test-only BenchRecord (tests/playbooks write with it). */
static void catalog(void) {
  spine_catalog_register();
  spine_bench_record_register();
}

int main(int argc, char **argv) {
  spine_migrate_register(spine_bench_record_migrations); /* its table, spine.bench_effects */
  spine_intents_set_catalog(catalog); /* as the specs' spine does (tests/spine_testing.c) */
  if (argc != 2) {
    fprintf(stderr, "usage: spine_ctest TEST\n");
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
      fprintf(stderr, "  %s\n", tests[i].name);
    return 2;
  }
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (strcmp(tests[i].name, argv[1]) == 0) return tests[i].fn();
  fprintf(stderr, "spine_ctest: no test %s\n", argv[1]);
  return 2;
}
