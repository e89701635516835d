-- The table of BenchRecord (bench_record.c): one narrow row per call, nobody else's. Only
-- spine-bench and the test builds register it, as a migration of their own; IF NOT EXISTS
-- because databases migrated before it left intents/sql have it already (1001_bench.sql).
CREATE TABLE IF NOT EXISTS spine.bench_effects (
  workflow_id text NOT NULL,
  seq int NOT NULL,
  n bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, seq)
);
