-- The business row that the BenchRecord intent writes (benchmarks and engine tests).
CREATE TABLE spine.bench_effects (
  workflow_id text NOT NULL,
  seq int NOT NULL,
  n bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, seq)
);
