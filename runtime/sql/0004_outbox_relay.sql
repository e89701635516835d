-- The outbox relay (runtime/engine/outbox.c): who receives the events of lifecycle.outbox, and one
-- delivery per (subscriber, event) with its own progress, so a failing webhook never holds back the
-- signals of workflows. A trigger writes the deliveries in the transaction that appends the event:
-- no event exists without them, whatever process dies when.
--
-- Order: a subscriber gets the events of one ordering_key one at a time, oldest first. Only the
-- *head* of a (subscriber, ordering_key) — its oldest pending delivery — may be claimed, so the
-- next event waits until the one before it was delivered, also with many `spine serve` on one
-- database. A delivery whose attempts ran out is `dead`: it stops being the head (the key goes
-- on) and waits for an operator (`spine outbox --dead`, `spine outbox retry`).
--
-- Kinds of subscriber: `signal` (the built-in `signals`: every event is signalled to the running
-- workflows of its contract as "event.<type>"), `start` (the built-in `starts`: manifests'
-- on_events start their process), `http` (webhooks, added by `spine outbox subscribe`).
CREATE TABLE spine.outbox_subscribers (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  kind text NOT NULL CHECK (kind IN ('signal', 'start', 'http')),
  url text CHECK ((kind = 'http') = (url IS NOT NULL)),
  events text[],                       -- the event types it gets; NULL = every type
  secret_env text,                     -- http: the variable of `spine serve` holding the HMAC key
  max_attempts int NOT NULL DEFAULT 8 CHECK (max_attempts BETWEEN 1 AND 1000),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO spine.outbox_subscribers (name, kind) VALUES ('signals', 'signal'), ('starts', 'start');

CREATE TABLE spine.outbox_deliveries (
  subscriber text NOT NULL REFERENCES spine.outbox_subscribers ON DELETE CASCADE,
  event_id bigint NOT NULL,
  customer_id text NOT NULL,           -- with event_id, the key of the event's lifecycle.outbox row
  ordering_key text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts int NOT NULL DEFAULT 0,     -- counted when an attempt starts
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claimed_by bigint,                   -- the worker (spine.workers) delivering it now: http, start
  claimed_until timestamptz,           -- its claim lapses then, or at once when that worker died
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subscriber, event_id)
);
CREATE INDEX outbox_deliveries_heads ON spine.outbox_deliveries (subscriber, ordering_key, event_id)
  WHERE status = 'pending';
CREATE INDEX outbox_deliveries_event ON spine.outbox_deliveries (event_id);
CREATE INDEX outbox_deliveries_dead ON spine.outbox_deliveries (subscriber, event_id)
  WHERE status = 'dead';

-- Is worker w alive: its row, its lease, and its session's advisory lock (gone the moment its
-- process or connection dies, as spine serve's reaping checks).
CREATE FUNCTION spine.worker_alive(w bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM spine.workers k WHERE k.id = w AND k.lease_until >= now())
     AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 7780
                 AND l.objid::int8 = w AND l.objsubid = 2 AND l.granted)
$$;

-- The deliveries of a new event: one per enabled or paused subscriber whose filter takes it;
-- `starts` only when a manifest in force lists the type in on_events. An event nobody takes is
-- delivered at once.
CREATE FUNCTION spine.outbox_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO spine.outbox_deliveries (subscriber, event_id, customer_id, ordering_key)
  SELECT s.name, NEW.event_id, NEW.customer_id, NEW.ordering_key
  FROM spine.outbox_subscribers s
  WHERE (s.events IS NULL OR NEW.event_type = ANY (s.events))
    AND (s.kind <> 'start' OR EXISTS (SELECT 1 FROM spine.manifests m
                                      WHERE m.body::jsonb -> 'on_events' ? NEW.event_type));
  IF NOT FOUND THEN
    UPDATE lifecycle.outbox SET status = 'delivered', delivered_at = now()
    WHERE customer_id = NEW.customer_id AND event_id = NEW.event_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_fan_out AFTER INSERT ON lifecycle.outbox
  FOR EACH ROW EXECUTE FUNCTION spine.outbox_fan_out();

-- Keeps lifecycle.outbox.status the sum of the event's deliveries: pending while any is,
-- else dead when any is, else delivered.
CREATE FUNCTION spine.outbox_settle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  ev bigint;
  st text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    cust := OLD.customer_id;
    ev := OLD.event_id;
  ELSE
    cust := NEW.customer_id;
    ev := NEW.event_id;
  END IF;
  -- The event's row first: settlements of one event by concurrent transactions queue here, and
  -- the next statement (a fresh snapshot) sees what the one before committed.
  PERFORM 1 FROM lifecycle.outbox WHERE customer_id = cust AND event_id = ev FOR UPDATE;
  SELECT CASE WHEN bool_or(status = 'pending') THEN 'pending'
              WHEN bool_or(status = 'dead') THEN 'dead' ELSE 'delivered' END
    INTO st FROM spine.outbox_deliveries WHERE event_id = ev;
  UPDATE lifecycle.outbox
     SET status = st, delivered_at = CASE WHEN st = 'delivered' THEN now() END
   WHERE customer_id = cust AND event_id = ev AND status IS DISTINCT FROM st;
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_settle_update AFTER UPDATE OF status ON spine.outbox_deliveries
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION spine.outbox_settle();
CREATE TRIGGER outbox_settle_delete AFTER DELETE ON spine.outbox_deliveries
  FOR EACH ROW EXECUTE FUNCTION spine.outbox_settle();

-- The next attempt's time after a failed one: exponential from `base_ms`, capped at `max_ms`,
-- with jitter (half of it random), so retries of many deliveries do not come back together.
CREATE FUNCTION spine.outbox_backoff(attempts int, base_ms int8, max_ms int8)
RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
  SELECT clock_timestamp() + least(max_ms::float8, base_ms * power(2, least(greatest(attempts, 1)
         - 1, 40))) * (0.5 + random() / 2) * interval '1 ms'
$$;

-- Signal subscribers: for each head that is due, signals the running workflows of contract
-- `ordering_key` with "event.<type>" and the payload and marks the delivery delivered, in the
-- caller's transaction — so a signal is stored once per event although the relay delivers at
-- least once — then goes on with the same key's next events. At most `lim` deliveries; returns
-- {delivered, failed, dead}. A failure (which no sane event causes) is retried with backoff.
CREATE FUNCTION spine.outbox_signal(lim int, base_ms int8, max_ms int8) RETURNS int[]
LANGUAGE plpgsql AS $$
DECLARE
  h record;
  cur bigint;
  o lifecycle.outbox;
  nxt record;
  delivered int := 0;
  failed int := 0;
  dead int := 0;
  st text;
BEGIN
  FOR h IN
    SELECT d.subscriber, d.event_id, d.customer_id, d.ordering_key
      FROM spine.outbox_deliveries d
      JOIN (SELECT DISTINCT ON (x.subscriber, x.ordering_key) x.subscriber, x.event_id
              FROM spine.outbox_deliveries x
              JOIN spine.outbox_subscribers s ON s.name = x.subscriber
             WHERE x.status = 'pending' AND s.kind = 'signal' AND s.enabled
             ORDER BY x.subscriber, x.ordering_key, x.event_id) hd
        ON hd.subscriber = d.subscriber AND hd.event_id = d.event_id
     WHERE d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
     ORDER BY d.event_id LIMIT lim
       FOR UPDATE OF d SKIP LOCKED
  LOOP
    cur := h.event_id;
    LOOP
      SELECT * INTO o FROM lifecycle.outbox WHERE customer_id = h.customer_id AND event_id = cur;
      BEGIN
        PERFORM spine.signal_contract(o.ordering_key, 'event.' || o.event_type, o.payload);
        UPDATE spine.outbox_deliveries SET status = 'delivered', delivered_at = now(),
               attempts = attempts + 1
         WHERE subscriber = h.subscriber AND event_id = cur AND status = 'pending';
        delivered := delivered + 1;
      EXCEPTION WHEN OTHERS THEN
        UPDATE spine.outbox_deliveries d
           SET attempts = d.attempts + 1, last_error = SQLERRM,
               next_attempt_at = spine.outbox_backoff(d.attempts + 1, base_ms, max_ms),
               status = CASE WHEN d.attempts + 1 >= s.max_attempts THEN 'dead' ELSE 'pending' END
          FROM spine.outbox_subscribers s
         WHERE s.name = d.subscriber AND d.subscriber = h.subscriber AND d.event_id = cur
        RETURNING d.status INTO st;
        IF st = 'dead' THEN dead := dead + 1; ELSE failed := failed + 1; END IF;
        EXIT;
      END;
      EXIT WHEN delivered + failed >= lim;
      -- The key's next event is its head now (no other relay takes it: in any snapshot but
      -- this transaction's, the head is still the event just delivered, locked here). Never
      -- skip one: a next event not yet due ends this key's turn.
      SELECT x.event_id, x.next_attempt_at <= clock_timestamp() AS due INTO nxt
        FROM spine.outbox_deliveries x
       WHERE x.subscriber = h.subscriber AND x.ordering_key = h.ordering_key
         AND x.status = 'pending' AND x.event_id > cur
       ORDER BY x.event_id LIMIT 1;
      EXIT WHEN nxt.event_id IS NULL OR NOT nxt.due;
      cur := nxt.event_id;
    END LOOP;
    EXIT WHEN delivered + failed >= lim;
  END LOOP;
  RETURN ARRAY[delivered, failed, dead];
END $$;

-- Claims up to `lim` due heads of subscribers of kind `want` ('http' or 'start') for worker
-- `me` until `lease_ms` from now: heads nobody holds, or whose holder's claim lapsed or whose
-- holder died. Each claim counts an attempt. Returns what the delivery needs: the webhook body
-- {event_id, type, ordering_key, customer_id, payload, created_at} and, for starts, the case
-- input (the payload with "event": {id, type, ordering_key, created_at}).
CREATE FUNCTION spine.outbox_claim(me bigint, want text, lim int, lease_ms int8)
RETURNS TABLE (subscriber text, event_id bigint, attempt int, max_attempts int, url text,
               secret_env text, event_type text, trace_id text, body text, input text)
LANGUAGE sql AS $$
  WITH heads AS (
    SELECT DISTINCT ON (x.subscriber, x.ordering_key) x.subscriber, x.event_id
      FROM spine.outbox_deliveries x
      JOIN spine.outbox_subscribers s ON s.name = x.subscriber
     WHERE x.status = 'pending' AND s.kind = want AND s.enabled
     ORDER BY x.subscriber, x.ordering_key, x.event_id),
  c AS (
    SELECT d.subscriber, d.event_id
      FROM spine.outbox_deliveries d
      JOIN heads h ON h.subscriber = d.subscriber AND h.event_id = d.event_id
     WHERE d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
       AND CASE WHEN d.claimed_by IS NULL OR d.claimed_until < clock_timestamp() THEN true
                ELSE NOT spine.worker_alive(d.claimed_by) END
     ORDER BY d.next_attempt_at, d.event_id LIMIT lim
       FOR UPDATE OF d SKIP LOCKED),
  u AS (
    UPDATE spine.outbox_deliveries d
       SET claimed_by = me, claimed_until = clock_timestamp() + lease_ms * interval '1 ms',
           attempts = d.attempts + 1
      FROM c WHERE d.subscriber = c.subscriber AND d.event_id = c.event_id
    RETURNING d.subscriber, d.event_id, d.customer_id, d.attempts)
  SELECT u.subscriber, u.event_id, u.attempts, s.max_attempts, s.url, s.secret_env,
         o.event_type, o.trace_id,
         jsonb_build_object('event_id', o.event_id, 'type', o.event_type,
                            'ordering_key', o.ordering_key, 'customer_id', o.customer_id,
                            'payload', o.payload, 'created_at', o.created_at)::text,
         CASE WHEN want = 'start' THEN
           (o.payload || jsonb_build_object('event', jsonb_build_object('id', o.event_id,
              'type', o.event_type, 'ordering_key', o.ordering_key,
              'created_at', o.created_at)))::text END
    FROM u
    JOIN spine.outbox_subscribers s ON s.name = u.subscriber
    JOIN lifecycle.outbox o ON o.customer_id = u.customer_id AND o.event_id = u.event_id
   ORDER BY u.event_id
$$;

-- Ends worker `me`'s attempt at a claimed delivery: delivered, or failed with `err` (pending
-- again after `retry_ms`, or dead once its attempts ran out). Returns the new status, or no row
-- when the claim was not `me`'s any more (it lapsed and another worker took it over).
CREATE FUNCTION spine.outbox_finish(me bigint, sub text, ev bigint, ok boolean, err text,
                                    base_ms int8, max_ms int8)
RETURNS text LANGUAGE sql AS $$
  UPDATE spine.outbox_deliveries d
     SET status = CASE WHEN ok THEN 'delivered'
                       WHEN d.attempts >= s.max_attempts THEN 'dead' ELSE 'pending' END,
         delivered_at = CASE WHEN ok THEN now() END,
         last_error = CASE WHEN ok THEN d.last_error ELSE err END,
         next_attempt_at = CASE WHEN ok THEN d.next_attempt_at
                                ELSE spine.outbox_backoff(d.attempts, base_ms, max_ms) END,
         claimed_by = NULL, claimed_until = NULL
    FROM spine.outbox_subscribers s
   WHERE s.name = d.subscriber AND d.subscriber = sub AND d.event_id = ev
     AND d.status = 'pending' AND d.claimed_by = me
  RETURNING d.status
$$;

-- When the relay of worker `me` should look again: the earliest time a head becomes claimable
-- (its next attempt, or when another worker's claim lapses; heads `me` holds are not counted:
-- their end wakes it), NULL when nothing waits. With the pending count and the oldest pending
-- delivery's creation (the relay's lag), in ms since the epoch.
CREATE FUNCTION spine.outbox_next(me bigint)
RETURNS TABLE (next_ms int8, pending int8, oldest_ms int8) LANGUAGE sql STABLE AS $$
  WITH heads AS (
    SELECT DISTINCT ON (x.subscriber, x.ordering_key) x.next_attempt_at, x.claimed_by,
           x.claimed_until
      FROM spine.outbox_deliveries x
      JOIN spine.outbox_subscribers s ON s.name = x.subscriber
     WHERE x.status = 'pending' AND s.enabled
     ORDER BY x.subscriber, x.ordering_key, x.event_id)
  SELECT (extract(epoch FROM min(CASE
            WHEN h.claimed_by IS NULL OR h.claimed_until < clock_timestamp() THEN h.next_attempt_at
            WHEN h.claimed_by = me THEN NULL
            WHEN NOT spine.worker_alive(h.claimed_by) THEN h.next_attempt_at
            ELSE greatest(h.next_attempt_at, h.claimed_until) END)) * 1000)::int8,
         (SELECT count(*) FROM spine.outbox_deliveries WHERE status = 'pending'),
         (SELECT (extract(epoch FROM min(created_at)) * 1000)::int8
            FROM spine.outbox_deliveries WHERE status = 'pending')
    FROM heads h
$$;

-- Events written before the relay existed wait as pending: give them their deliveries.
INSERT INTO spine.outbox_deliveries (subscriber, event_id, customer_id, ordering_key)
SELECT s.name, o.event_id, o.customer_id, o.ordering_key
  FROM lifecycle.outbox o CROSS JOIN spine.outbox_subscribers s
 WHERE o.status = 'pending'
   AND (s.kind <> 'start' OR EXISTS (SELECT 1 FROM spine.manifests m
                                     WHERE m.body::jsonb -> 'on_events' ? o.event_type));
