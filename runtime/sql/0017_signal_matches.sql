-- Only a signal a waiting step would take wakes its workflow. Until now any signal woke a
-- waiting workflow, and any unread signal made every release of it (an eviction, a dead owner's
-- reaping) due at once: a workflow waiting for its own task's answer while another task's
-- answer sat unread — or one that every business event of its contract reaches through the
-- outbox's `signals` subscriber — was claimed and replayed again and again for nothing. A
-- waiting step now remembers the signal it waits for (its name, and ctx.wait's match), and a
-- signal, a release or the reaper makes the workflow due only for a signal one of its waiting
-- steps would take. A signal still always locks the waiting workflow's row (0009), so it cannot
-- slip between a reaper's snapshot and its update.
ALTER TABLE spine.steps ADD COLUMN signal text, ADD COLUMN match jsonb;

-- Steps already waiting when this migration runs: a ctx.wait waits for its name, a child wait
-- for its child's end.
UPDATE spine.steps SET signal = CASE kind WHEN 'wait' THEN name ELSE 'spine.child:' || seq END
WHERE status = 'waiting' AND kind IN ('wait', 'child');

-- Whether a signal `name` with `payload` would be taken by a waiting step of workflow `wf`.
-- ($1..$3: in an SQL function a column of the same name, spine.steps.name, would win.)
CREATE FUNCTION spine.signal_awaited(wf text, name text, payload jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM spine.steps t
                 WHERE t.workflow_id = $1 AND t.status = 'waiting' AND t.signal = $2
                   AND (t.match IS NULL OR $3 @> t.match))
$$;

-- Whether an unread signal of workflow `wf` would be taken by one of its waiting steps.
CREATE FUNCTION spine.signal_pending(wf text) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM spine.steps t JOIN spine.signals g
                   ON g.workflow_id = t.workflow_id AND g.name = t.signal
                 WHERE t.workflow_id = $1 AND t.status = 'waiting' AND g.consumed_seq IS NULL
                   AND (t.match IS NULL OR g.payload @> t.match))
$$;

CREATE OR REPLACE FUNCTION spine.signal_workflow(wf text, name text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  sid bigint;
BEGIN
  PERFORM 1 FROM spine.workflows WHERE id = wf AND ended_at IS NULL;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  -- the row is locked whether or not the signal wakes it (see above)
  UPDATE spine.workflows w SET wake_at = CASE
      WHEN spine.signal_awaited(wf, name, coalesce(payload, '{}')) THEN spine.now()
      ELSE w.wake_at END
  WHERE w.id = wf AND w.status = 'waiting';
  INSERT INTO spine.signals (workflow_id, name, payload)
    VALUES (wf, name, coalesce(payload, '{}')) RETURNING id INTO sid;
  PERFORM pg_notify('spine', 's:' || wf);
  RETURN sid;
END $$;
