-- A signal wakes its waiting workflow whoever owns it. Until now only an unowned workflow's
-- wake_at was set, and an owned one was left to its owner, which hears the NOTIFY. That lost
-- wake-ups when the owner died: the reaper freeing its workflows decides "a signal is pending,
-- wake it" from its own snapshot, which misses a signal committed meanwhile, while the signal
-- saw an owner and set nothing; the workflow stayed waiting, unowned, with its signal unread
-- (the reconnect spec stranded 625 of 1000 that way). Now the signal's UPDATE always takes the
-- workflow's row: the reaper's or a release's UPDATE either waits for it and keeps the wake_at
-- it set, or goes first and the signal's UPDATE, re-checked on the freed row, sets it. A wake_at
-- set on an owned row costs nothing: claims take only unowned rows, and the workflow's next
-- wait (WF_WAIT) or its end sets wake_at again.
CREATE OR REPLACE FUNCTION spine.signal_workflow(wf text, name text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  sid bigint;
BEGIN
  PERFORM 1 FROM spine.workflows WHERE id = wf AND ended_at IS NULL;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  UPDATE spine.workflows SET wake_at = spine.now() WHERE id = wf AND status = 'waiting';
  INSERT INTO spine.signals (workflow_id, name, payload)
    VALUES (wf, name, coalesce(payload, '{}')) RETURNING id INTO sid;
  PERFORM pg_notify('spine', 's:' || wf);
  RETURN sid;
END $$;
