/* The energy domain on the engine, under the sanitizers: its migrations go before the engine's
 * (whose 0004 and 0006 alter its tables), and its intents commit and reject through ctx.intent
 * (beside the test-only BenchRecord). */
#include <libpq-fe.h>

#include "bench_record.h"
#include "catalog.h"
#include "engine_harness.h"
#include "test.h"

TEST_IMPL(catalog_migrates_before_the_engine) {
  const char *db = test_newdb("catalog_migrates_before_the_engine");
  int domain = 0, engine = 0;
  for (const spine_migration *m = spine_catalog_migrations; m->name; m++)
    domain++;
  for (const spine_migration *m = spine_bench_record_migrations; m->name; m++)
    domain++; /* the test-only BenchRecord's table, added after the domain's */
  for (const spine_migration *m = spine_migrations; m->name; m++)
    engine++;
  ASSERT_EQ(spine_migrate_count(), domain + engine);
  PGconn *c = PQconnectdb(db);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  int applied = -1;
  spine_err e;
  if (spine_migrate(c, &applied, &e)) TEST_FAIL_("migrate: %s: %s", e.where, e.msg);
  ASSERT_EQ(applied, domain + engine);
  ASSERT_EQ(spine_migrate(c, &applied, &e), 0);
  ASSERT_EQ(applied, 0);
  PQfinish(c);
  /* the engine's 0004 relays the domain's outbox, 0006 puts its times on the engine's clock */
  ASSERT_STR_EQ(test_value(db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'outbox_fan_out'"
                               " AND tgrelid = 'lifecycle.outbox'::regclass"),
                "1");
  ASSERT_STR_CONTAINS(test_value(db, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef"
                                     " WHERE adrelid = 'lifecycle.customers'::regclass"
                                     " AND adnum = (SELECT attnum FROM pg_attribute WHERE"
                                     " attrelid = adrelid AND attname = 'created_at')"),
                      "spine.now()");
  return 0;
}

TEST_IMPL(catalog_intents_run_in_the_engine) {
  const char *db = test_newdb("catalog_intents_run_in_the_engine");
  static const char *const playbooks[] = {"tests/playbooks/durable_tour.lua",
                                          "tests/playbooks/intent_calls.lua"};
  test_ended out = {0};
  test_engine_run(db, playbooks, 2, "{\"customer\":\"c\",\"customer_id\":\"cu-1\"}", &out);
  ASSERT_EQ(out.count, 2);
  /* BenchRecord (tools/bench), which the test playbooks write with */
  ASSERT_EQ(out.status[0], SPINE_WF_COMPLETED);
  ASSERT_STR_EQ(out.result[0], "{\"recorded\":7,\"slept_days\":14,\"tries\":3}");
  ASSERT_STR_EQ(test_value(db, "SELECT string_agg(n::text, ',' ORDER BY seq)"
                               " FROM spine.bench_effects"),
                "7");
  /* the table's intents: results, a state machine's refusal, an argument's */
  ASSERT_EQ(out.status[1], SPINE_WF_COMPLETED);
  const char *r = out.result[1];
  ASSERT_STR_CONTAINS(r, "\"contract\":{\"contract_id\":");
  ASSERT_STR_CONTAINS(r, "\"customer_id\":\"cu-1\"");
  ASSERT_STR_CONTAINS(r, "\"ok1\":false");
  ASSERT_STR_CONTAINS(r, "\"code\":\"invalid_transition\"");
  ASSERT_STR_CONTAINS(r, "\"ok2\":false");
  ASSERT_STR_CONTAINS(r, "\"field\":\"amount_cents\"");
  ASSERT_STR_EQ(test_value(db, "SELECT count(*) FROM lifecycle.contracts"
                               " WHERE customer_id = 'cu-1' AND state = 'draft'"),
                "1");
  return 0;
}
