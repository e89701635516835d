-- A cancel wakes its workflow whoever owns it, as a signal does (0009). It set wake_at only on
-- an unowned workflow and left an owned one to its owner's NOTIFY; when that owner was dead,
-- the reaper freed the workflow keeping its wake_at (a waiting one with no signal pending:
-- none, or its timer's), so a cancelled workflow waiting for a signal stayed waiting. A
-- wake_at on an owned row is ignored until the row is freed, and the workflow's next wait or
-- its end sets it again.
CREATE OR REPLACE FUNCTION spine.cancel_workflows(ids text[], actor text DEFAULT current_user)
RETURNS TABLE (id text, status text) LANGUAGE plpgsql AS $$
BEGIN
  FOR id, status IN
    UPDATE spine.workflows w SET cancel_requested = true, updated_at = spine.now(),
      wake_at = spine.now(),
      status = CASE WHEN w.status = 'paused' THEN 'running' ELSE w.status END
    WHERE w.id = ANY (ids) AND spine.can_cancel(w)
    RETURNING w.id, w.status
  LOOP
    UPDATE spine.incidents n SET resolved_at = spine.now(), resolution = 'cancelled',
      resolved_by = actor
    WHERE n.workflow_id = cancel_workflows.id AND n.resolved_at IS NULL;
    -- the worker that holds it hears this; a free one is due now and claimed
    PERFORM pg_notify('spine', 'c:' || cancel_workflows.id);
    RETURN NEXT;
  END LOOP;
END $$;
