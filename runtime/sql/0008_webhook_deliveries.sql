-- Inbound webhook deliveries already accepted, so that a replayed or redelivered request
-- delivers nothing again (SPEC §6). A delivery is named by its provider and either the
-- signature of the default scheme (the HMAC of "<timestamp>.<body>", lower-case hex, prefixed
-- "sig:") or the id the adapter's own `verify` names (prefixed "id:"). The row is written in the
-- transaction of the signals and starts the delivery produces, with INSERT ... ON CONFLICT DO
-- NOTHING: of two workers racing on one delivery, the second waits for the first's commit, sees
-- the row, stores nothing and answers {"duplicate": true}.
CREATE TABLE spine.webhook_deliveries (
  provider text NOT NULL,
  delivery_id text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- when the row stops being useful (see spine.webhook_claim); pruned after that
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX webhook_deliveries_expires ON spine.webhook_deliveries (expires_at);

-- Claims a delivery in the caller's transaction: true when it is new (the row was inserted),
-- false when it was already accepted. `keep` is how long the row is kept: a default-scheme
-- signature can be replayed only while its timestamp is within 300 s of the server's clock,
-- at most 600 s after its first acceptance (its timestamp may have been 300 s ahead), so its
-- row is useless after that plus a margin; an adapter's own id has no window we know of and is
-- kept longer. Real time (clock_timestamp), never spine.now(): a manual clock moved days ahead
-- must not expire rows early. About one claim in 50 also deletes up to 500 expired rows,
-- skipping rows another transaction holds, so the table stays bounded without a sweeper.
CREATE FUNCTION spine.webhook_claim(p text, id text, keep interval) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  fresh boolean;
BEGIN
  INSERT INTO spine.webhook_deliveries (provider, delivery_id, expires_at)
  VALUES (p, id, clock_timestamp() + keep)
  ON CONFLICT (provider, delivery_id) DO NOTHING;
  fresh := FOUND;
  IF fresh AND random() < 0.02 THEN
    DELETE FROM spine.webhook_deliveries WHERE ctid IN (
      SELECT ctid FROM spine.webhook_deliveries WHERE expires_at < clock_timestamp()
      LIMIT 500 FOR UPDATE SKIP LOCKED);
  END IF;
  RETURN fresh;
END $$;

-- A webhook's signals, once: {"duplicate": true} when the delivery was already accepted, else
-- what spine.webhook_signals answers, in the caller's transaction.
CREATE FUNCTION spine.webhook_deliver(p text, id text, keep interval, actions jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF NOT spine.webhook_claim(p, id, keep) THEN
    RETURN '{"duplicate": true}'::jsonb;
  END IF;
  RETURN spine.webhook_signals(actions);
END $$;
