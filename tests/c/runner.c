/* Runs one C test by name: `spine_ctest NAME` (ctest runs each in its own process). The same
 * file runs the domain's tests (spine_ctest_domain), built with TEST_LIST naming their list. */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "test.h"

#ifndef TEST_LIST
#define TEST_LIST "test_list.h"
#endif

#define XX(name) int test_##name(void);
#include TEST_LIST
#undef XX

static const struct {
  const char *name;
  int (*fn)(void);
} tests[] = {
#define XX(name) {#name, test_##name},
#include TEST_LIST
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

const char *test_value(const char *db, const char *sql) {
  static char out[1024];
  PGconn *c = PQconnectdb(db);
  if (PQstatus(c) != CONNECTION_OK) TEST_FAIL_("connect: %s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) TEST_FAIL_("%s: %s", sql, PQresultErrorMessage(r));
  snprintf(out, sizeof out, "%s",
           PQntuples(r) == 0      ? ""
           : PQgetisnull(r, 0, 0) ? "(null)"
                                  : PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return out;
}

int main(int argc, char **argv) {
  test_setup(); /* before any test migrates, as main.c hands over the domain */
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
