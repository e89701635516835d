/* The migrator: the sets handed over (here tests/c/fixture.c's) run before the engine's own,
 * whatever their names, each once; a name that stands twice is refused before anything runs. */
#include <libpq-fe.h>

#include "migrate.h"
#include "test.h"

static int migrate(const char *db, int *applied, spine_err *e) {
  PGconn *c = PQconnectdb(db);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  int rc = spine_migrate(c, applied, e);
  PQfinish(c);
  return rc;
}

TEST_IMPL(migrate_applies_added_sets_first) {
  const char *db = test_newdb("migrate_applies_added_sets_first");
  /* Named to sort after every migration of the engine's, it still runs before them. */
  static const spine_migration late[] = {
      {"9999_late.sql", "DO $$ BEGIN IF to_regclass('spine.workflows') IS NOT NULL THEN"
                        " RAISE EXCEPTION 'the engine''s migrations ran first'; END IF; END $$"},
      {NULL, NULL},
  };
  spine_migrate_add_set(late);
  spine_migrate_add_set(late); /* again: nothing */
  int n = 0;
  for (const spine_migration *m = spine_migrations; m->name; m++)
    n++;
  ASSERT_EQ(spine_migrate_count(), n + 3); /* the fixture's two, late's one, the engine's */
  int applied = -1;
  spine_err e;
  if (migrate(db, &applied, &e)) TEST_FAIL_("migrate: %s: %s", e.where, e.msg);
  ASSERT_EQ(applied, spine_migrate_count());
  ASSERT_EQ(atoi(test_value(db, "SELECT count(*) FROM spine.migrations")), applied);
  ASSERT_STR_EQ(
      test_value(db, "SELECT count(*) FROM spine.migrations WHERE name = '9999_late.sql'"), "1");
  if (migrate(db, &applied, &e)) TEST_FAIL_("migrate again: %s: %s", e.where, e.msg);
  ASSERT_EQ(applied, 0);
  return 0;
}

TEST_IMPL(migrate_refuses_a_name_twice) {
  const char *db = test_newdb("migrate_refuses_a_name_twice");
  static const spine_migration again[] = {{"0004_outbox_relay.sql", "SELECT 1"}, {NULL, NULL}};
  spine_migrate_add_set(again);
  int applied = -1;
  spine_err e;
  ASSERT_EQ(migrate(db, &applied, &e), SPINE_EINVAL);
  ASSERT_STR_EQ(e.where, "0004_outbox_relay.sql");
  ASSERT_STR_CONTAINS(e.msg, "named twice");
  ASSERT_EQ(applied, 0);
  ASSERT_STR_EQ(test_value(db, "SELECT to_regclass('spine.migrations') IS NULL"), "t");
  return 0;
}
