-- The engine's clock, in the database: real time, unless a `spine serve --clock manual` (the
-- test kit's) keeps a manual one in spine.clock. Every business time that the engine and the
-- intents write or compare (wake-ups, workflow and step times, signals, incidents, the
-- system of record's history) reads spine.now(), so that every process on the database
-- (`spine start`, `spine intent`, `spine show`) sees the time the manual clock says. Leases and
-- heartbeats stay on real time: they say whether a process is alive.
CREATE TABLE spine.clock (
  id boolean PRIMARY KEY DEFAULT true CHECK (id), -- one row at most
  now_ms bigint NOT NULL,                         -- the manual time, ms since the epoch
  worker bigint,                                  -- the `spine serve` that moves it
  updated_at timestamptz NOT NULL DEFAULT now()   -- real time of the last move
);

-- Now: the manual time if there is one, else the transaction's start (as now()).
CREATE FUNCTION spine.now() RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce((SELECT to_timestamp(c.now_ms::float8 / 1000) FROM spine.clock c), now())
$$;

-- The same with real time's progress inside a transaction (clock_timestamp()), for rows that
-- are ordered by their time.
CREATE FUNCTION spine.clock_timestamp() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
  SELECT coalesce((SELECT to_timestamp(c.now_ms::float8 / 1000) FROM spine.clock c),
                  clock_timestamp())
$$;

ALTER TABLE spine.workflows ALTER COLUMN created_at SET DEFAULT spine.now(),
                            ALTER COLUMN updated_at SET DEFAULT spine.now();
ALTER TABLE spine.steps ALTER COLUMN started_at SET DEFAULT spine.now();
ALTER TABLE spine.signals ALTER COLUMN created_at SET DEFAULT spine.now();
ALTER TABLE spine.incidents ALTER COLUMN created_at SET DEFAULT spine.now();

-- As in 0003_signals.sql, with the wake-up on the engine's clock.
CREATE OR REPLACE FUNCTION spine.signal_workflow(wf text, name text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  sid bigint;
BEGIN
  PERFORM 1 FROM spine.workflows WHERE id = wf AND ended_at IS NULL;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  UPDATE spine.workflows SET wake_at = spine.now()
    WHERE id = wf AND owner IS NULL AND status = 'waiting';
  INSERT INTO spine.signals (workflow_id, name, payload)
    VALUES (wf, name, coalesce(payload, '{}')) RETURNING id INTO sid;
  PERFORM pg_notify('spine', 's:' || wf);
  RETURN sid;
END $$;

-- The system of record on the same clock: the times intents write (created, updated, resolved,
-- the history's `at` that `as_of` queries read). Its migrations (intents/sql) run before these
-- (sorted by path), so its tables exist. The functions of 1003_lifecycle_intents.sql call
-- spine.now() themselves (changed there before any release: a database migrated earlier keeps
-- now() in them, which differs only under a manual clock).
ALTER TABLE lifecycle.providers ALTER COLUMN created_at SET DEFAULT spine.now();
ALTER TABLE lifecycle.customers ALTER COLUMN created_at SET DEFAULT spine.now(),
                                ALTER COLUMN updated_at SET DEFAULT spine.now();
ALTER TABLE lifecycle.addresses ALTER COLUMN created_at SET DEFAULT spine.now();
ALTER TABLE lifecycle.meter_points ALTER COLUMN created_at SET DEFAULT spine.now();
ALTER TABLE lifecycle.contracts ALTER COLUMN created_at SET DEFAULT spine.now(),
                                ALTER COLUMN updated_at SET DEFAULT spine.now();
ALTER TABLE lifecycle.price_changes ALTER COLUMN created_at SET DEFAULT spine.now();
ALTER TABLE lifecycle.credits ALTER COLUMN created_at SET DEFAULT spine.now();
ALTER TABLE lifecycle.tasks ALTER COLUMN created_at SET DEFAULT spine.now();
-- clock_timestamp(), not now(): rows of one transaction keep their order in real time.
ALTER TABLE lifecycle.history ALTER COLUMN at SET DEFAULT spine.clock_timestamp();
ALTER TABLE lifecycle.outbox ALTER COLUMN created_at SET DEFAULT spine.now();
