/* The C test harness, as libuv's: one process per test (the runner forks nothing: ctest runs
 * `spine_ctest NAME`), ASSERT_* print file, line and both values, then abort. */
#ifndef SPINE_TEST_H
#define SPINE_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_IMPL(name)                                                                            \
  int test_##name(void);                                                                           \
  int test_##name(void)

#define TEST_FAIL_(fmt, ...)                                                                       \
  do {                                                                                             \
    fprintf(stderr, "%s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);                          \
    abort();                                                                                       \
  } while (0)

#define ASSERT(expr)                                                                               \
  do {                                                                                             \
    if (!(expr)) TEST_FAIL_("assertion failed: %s", #expr);                                        \
  } while (0)

#define ASSERT_INT_OP_(a, op, b)                                                                   \
  do {                                                                                             \
    int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                                  \
    if (!(a_ op b_)) TEST_FAIL_("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, b_);         \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_OP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP_(a, >=, b)

#define ASSERT_STR_EQ(a, b)                                                                        \
  do {                                                                                             \
    const char *a_ = (a), *b_ = (b);                                                               \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                         \
      TEST_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");    \
  } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                           \
  do {                                                                                             \
    const char *h_ = (hay), *n_ = (needle);                                                        \
    if (!h_ || !strstr(h_, n_)) TEST_FAIL_("%s contains \"%s\": \"%s\"", #hay, n_, h_ ? h_ : "");  \
  } while (0)

/* A fresh database for this test, in the test run's cluster: its conninfo (static buffer). */
const char *test_newdb(const char *name);
/* The first value of `sql`'s answer on database `db`, on a connection of its own ("(null)" for
 * NULL, "" for no row; static buffer); a failing query fails the test. */
const char *test_value(const char *db, const char *sql);

/* What the runner hands to the engine before any test, as main.c hands the domain's: its
 * intents and migrations. The runtime's runner: tests/c/fixture.c (no domain); the domain's:
 * tests/domain/setup.c. */
void test_setup(void);

#endif
