-- The engine's own tables: workflows, their step logs, signals, playbook versions, workers.
-- Keyed so that a distributed PostgreSQL (Citus) can shard by workflow id.
CREATE SCHEMA IF NOT EXISTS spine;

CREATE TABLE spine.playbook_versions (
  hash text PRIMARY KEY,               -- sha256 of the source
  name text NOT NULL,
  path text NOT NULL,
  source text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE spine.workers (
  id bigserial PRIMARY KEY,
  host text NOT NULL,
  pid int NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz NOT NULL
);

CREATE TABLE spine.workflows (
  id text PRIMARY KEY,
  process text NOT NULL,
  playbook text NOT NULL,
  version text NOT NULL REFERENCES spine.playbook_versions (hash),
  variant text,
  experiment text,
  status text NOT NULL CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed',
                                         'compensated', 'cancelled', 'stuck', 'paused')),
  state text,
  attributes jsonb NOT NULL DEFAULT '{}',
  input jsonb NOT NULL DEFAULT '{}',
  result jsonb,
  error jsonb,
  parent_id text,
  parent_seq int,
  idempotency_key text UNIQUE,
  trace_id text NOT NULL,
  attempt int NOT NULL DEFAULT 1,
  cancel_requested boolean NOT NULL DEFAULT false,
  owner bigint,                        -- the worker running it; NULL = free to claim
  wake_at timestamptz,                 -- when a free workflow becomes claimable
  waiting_for jsonb,                   -- {kind, name?, until?}
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz
);
CREATE INDEX workflows_claimable ON spine.workflows (wake_at) WHERE owner IS NULL;
CREATE INDEX workflows_owner ON spine.workflows (owner) WHERE owner IS NOT NULL;
CREATE INDEX workflows_listing ON spine.workflows (status, process, created_at);

CREATE TABLE spine.steps (
  workflow_id text NOT NULL,
  seq int NOT NULL,
  kind text NOT NULL,
  name text NOT NULL,
  status text NOT NULL CHECK (status IN ('completed', 'failed', 'waiting', 'retrying',
                                         'cancelled')),
  result jsonb,
  error jsonb,
  attempt int NOT NULL DEFAULT 1,
  wake_at timestamptz,                 -- a waiting step's deadline (sleep end, wait timeout)
  started_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  PRIMARY KEY (workflow_id, seq)
);

CREATE TABLE spine.signals (
  id bigserial PRIMARY KEY,
  workflow_id text NOT NULL,
  name text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  consumed_seq int                     -- the wait step that took it
);
CREATE INDEX signals_pending ON spine.signals (workflow_id, name, id) WHERE consumed_seq IS NULL;
