-- Provider steps and incidents. A provider call is recorded `running` before it is made (so an
-- operator sees what is in flight, and a restart retries it with the same idempotency key) and
-- `paused` when its retries ran out: the workflow waits for an operator, who retries the step,
-- skips it with a result, or cancels the workflow. Each pause opens one incident.
ALTER TABLE spine.steps DROP CONSTRAINT steps_status_check;
ALTER TABLE spine.steps ADD CONSTRAINT steps_status_check
  CHECK (status IN ('completed', 'failed', 'waiting', 'retrying', 'cancelled', 'running',
                    'paused'));

CREATE TABLE spine.incidents (
  id bigserial PRIMARY KEY,
  workflow_id text NOT NULL,
  seq int NOT NULL,                    -- the paused step
  kind text NOT NULL,                  -- 'provider_exhausted'
  step text NOT NULL,                  -- "acme_energy.submit_activation"
  error jsonb NOT NULL,                -- the last attempt's error
  attempts int NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  resolution text CHECK (resolution IN ('retried', 'skipped', 'cancelled')),
  resolved_by text,
  skip_result jsonb
);
CREATE UNIQUE INDEX incidents_open ON spine.incidents (workflow_id, seq) WHERE resolved_at IS NULL;
CREATE INDEX incidents_listing ON spine.incidents (created_at) WHERE resolved_at IS NULL;
