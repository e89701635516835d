/* What the runtime's runner hands to the engine before any test, as the spine executable hands
 * the domain's (test.h, test_setup): a test intent and the migrations the engine's own need.
 * Links no domain: the runtime's tests build and pass without it. */
#include "intents.h"
#include "migrate.h"
#include "test.h"

/* The engine's 0004_outbox_relay.sql and 0006_clock.sql alter tables of the domain's schema
 * lifecycle (the outbox the relay delivers, the time columns' defaults), so a database without
 * the domain needs them first: here as small as those migrations allow, the outbox with the
 * domain's columns (0004's SQL functions read them). Then the test intent's table. */
static const spine_migration migrations[] = {
    {"test_lifecycle.sql",
     "CREATE SCHEMA lifecycle;"
     "CREATE TABLE lifecycle.outbox (customer_id text NOT NULL, event_id bigserial NOT NULL,"
     " ordering_key text NOT NULL, event_type text NOT NULL, payload jsonb NOT NULL,"
     " intent text NOT NULL, workflow_id text, trace_id text,"
     " created_at timestamptz NOT NULL DEFAULT now(),"
     " status text NOT NULL DEFAULT 'pending', attempts int NOT NULL DEFAULT 0,"
     " next_attempt_at timestamptz NOT NULL DEFAULT now(), last_error text,"
     " delivered_at timestamptz, PRIMARY KEY (customer_id, event_id));"
     "CREATE TABLE lifecycle.providers (created_at timestamptz);"
     "CREATE TABLE lifecycle.customers (created_at timestamptz, updated_at timestamptz);"
     "CREATE TABLE lifecycle.addresses (created_at timestamptz);"
     "CREATE TABLE lifecycle.meter_points (created_at timestamptz);"
     "CREATE TABLE lifecycle.contracts (created_at timestamptz, updated_at timestamptz);"
     "CREATE TABLE lifecycle.price_changes (created_at timestamptz);"
     "CREATE TABLE lifecycle.credits (created_at timestamptz);"
     "CREATE TABLE lifecycle.tasks (created_at timestamptz);"
     "CREATE TABLE lifecycle.history (at timestamptz);"},
    {"test_records.sql", "CREATE TABLE spine.test_records (workflow_id text NOT NULL,"
                         " seq int NOT NULL, n bigint NOT NULL, PRIMARY KEY (workflow_id, seq))"},
    {NULL, NULL},
};

/* BenchRecord as the tests' playbooks call it (tests/playbooks/durable_tour.lua and saga.lua,
 * which the specs run with the domain's intents/bench_record.c): one row per step. */
static int insert_row;

static void prepare(void) {
  insert_row = spine_intents_result_statement(
      "INSERT INTO spine.test_records (workflow_id, seq, n) VALUES ($1, $2, $3)"
      " RETURNING jsonb_build_object('n', n)");
}

static int apply(spine_intent_call *c, spine_err *e) {
  long long n = 0;
  int rc = spine_intent_arg_int(c, "n", 0, &n, e);
  if (rc < 0) return rc;
  spine_op_stmt(c->op, insert_row, 0);
  spine_op_param(c->op, c->workflow_id ? c->workflow_id : c->actor);
  spine_op_param_int(c->op, c->seq);
  spine_op_param_int(c->op, n);
  return 0;
}

static const spine_intent record = {
    .name = "BenchRecord",
    .description = "Records one row in spine.test_records (the C tests' stand-in).",
    .args = "n: integer?",
    .result = "n: integer",
    .prepare = prepare,
    .apply = apply,
};

static void register_intents(void) {
  spine_intents_register(&record);
}

void test_setup(void) {
  spine_intents_set_catalog(register_intents);
  spine_migrate_add_set(migrations);
}
