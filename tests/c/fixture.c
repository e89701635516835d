/* What the runtime's runner hands to the engine before any test, as the spine executable hands
 * the domain's (test.h, test_setup): a test intent and the migrations the engine's own need.
 * Links no domain: the runtime's tests build and pass without it. */
#include "bench_record.h"
#include "intents.h"
#include "migrate.h"
#include "test.h"

/* The engine's 0004_outbox_relay.sql and 0006_clock.sql alter tables of the domain's schema
 * lifecycle (the outbox the relay delivers, the time columns' defaults), so a database without
 * the domain needs them first: here as small as those migrations allow, the outbox with the
 * domain's columns (0004's SQL functions read them). */
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
    {NULL, NULL},
};

/* The catalog: the test-only BenchRecord of tools/bench (tests/playbooks write with it). */
static void register_intents(void) {
  spine_bench_record_register();
}

void test_setup(void) {
  spine_intents_set_catalog(register_intents);
  spine_migrate_add_set(migrations);
  spine_migrate_add_set(spine_bench_record_migrations);
}
