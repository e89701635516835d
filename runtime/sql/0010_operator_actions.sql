-- Starting a workflow and the operator actions on one, as SQL functions: the engine's own
-- statements (runtime/store/sql.h) aside, workflows are inserted, cancelled, retried and skipped
-- only here. The intake (`spine start`, webhooks, the outbox's on_event starts), the engine's child
-- workflows, `spine bench`, and `spine cancel`, `spine retry`, `spine skip` call these, and so may
-- an operator in psql or an HTTP API, as the role Spine works as. Each runs in its caller's
-- transaction and writes what those commands' own SQL wrote before this migration; a refusal
-- raises, changing nothing, with SQLSTATE SPNF0 (no such workflow) or SPIT0 (its status does not
-- allow the action), COLUMN 'id' and the message `spine` prints. The worker that runs a workflow
-- does the rest (compensations, replay), woken by NOTIFY spine.

-- May the operator cancel `w`: it has not ended (a paused one runs its compensations).
CREATE FUNCTION spine.can_cancel(w spine.workflows) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT w.status IN ('pending', 'running', 'waiting', 'paused')
$$;

-- May the operator retry `w`: stuck, paused, or failed without having run compensations (a
-- compensated history cannot run forward again).
CREATE FUNCTION spine.can_retry(w spine.workflows) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT w.status IN ('stuck', 'paused') OR (w.status = 'failed' AND NOT EXISTS
    (SELECT 1 FROM spine.steps s WHERE s.workflow_id = w.id AND s.kind = 'compensate'))
$$;

-- Raises why an action found nothing to do on workflow `wf`: SPNF0 "no workflow <wf>" when
-- there is none, else SPIT0 "cannot <action> <wf>: it is <status>[, not <expected>]".
CREATE FUNCTION spine.refuse_action(wf text, action text, expected text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  st text;
BEGIN
  SELECT w.status INTO st FROM spine.workflows w WHERE w.id = wf;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'SPNF0', COLUMN = 'id', MESSAGE = format('no workflow %s', wf);
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'SPIT0', COLUMN = 'id',
    MESSAGE = format('cannot %s %s: it is %s', action, wf, st) ||
              coalesce(', not ' || expected, '');
END $$;

-- Stores a workflow and wakes the workers: the playbook version first when `source` is given
-- (`version` is its hash, `playbook` its name), then the row, `pending` and due now, or
-- `running` when `owner` (a worker) runs it itself. A taken id or idempotency key stores
-- nothing. Returns the workflow's id: the new one, or the one the key already started (NULL if
-- that one is gone).
CREATE FUNCTION spine.start_workflow(
  id text, process text, playbook text, version text, input jsonb, trace_id text,
  owner bigint DEFAULT NULL, parent_id text DEFAULT NULL, parent_seq int DEFAULT NULL,
  idempotency_key text DEFAULT NULL, variant text DEFAULT NULL, experiment text DEFAULT NULL,
  subject text DEFAULT NULL, bucket int DEFAULT NULL, path text DEFAULT NULL,
  source text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF source IS NOT NULL THEN
    INSERT INTO spine.playbook_versions (hash, name, path, source)
    VALUES (version, playbook, path, source) ON CONFLICT (hash) DO NOTHING;
  END IF;
  INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id, owner,
                               wake_at, parent_id, parent_seq, idempotency_key, variant,
                               experiment, subject, bucket)
  VALUES (id, process, playbook, version, CASE WHEN owner IS NULL THEN 'pending' ELSE 'running' END,
          input, trace_id, owner, CASE WHEN owner IS NULL THEN spine.now() END, parent_id,
          parent_seq, idempotency_key, variant, experiment, subject, bucket)
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    IF owner IS NULL THEN
      PERFORM pg_notify('spine', 'w');
    END IF;
    RETURN id;
  END IF;
  IF start_workflow.idempotency_key IS NOT NULL THEN
    RETURN (SELECT w.id FROM spine.workflows w
            WHERE w.idempotency_key = start_workflow.idempotency_key);
  END IF;
  RETURN id;
END $$;

-- Asks the workflows `ids` that may be cancelled to stop: at their next step (at once if they
-- wait; a paused one runs again) they run their compensations and end cancelled. Their open
-- incidents are resolved as cancelled by `actor`. Returns each one changed with its status;
-- the others are left alone.
CREATE FUNCTION spine.cancel_workflows(ids text[], actor text DEFAULT current_user)
RETURNS TABLE (id text, status text) LANGUAGE plpgsql AS $$
BEGIN
  FOR id, status IN
    UPDATE spine.workflows w SET cancel_requested = true, updated_at = spine.now(),
      wake_at = CASE WHEN w.owner IS NULL THEN spine.now() ELSE w.wake_at END,
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

-- One workflow, as spine.cancel_workflows; refuses (SPNF0, SPIT0) when it cannot. Returns
-- {"id", "status"}.
CREATE FUNCTION spine.cancel_workflow(id text, actor text DEFAULT current_user)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT c.id, c.status INTO r FROM spine.cancel_workflows(ARRAY[cancel_workflow.id], actor) c;
  IF NOT FOUND THEN
    PERFORM spine.refuse_action(cancel_workflow.id, 'cancel workflow');
  END IF;
  RETURN jsonb_build_object('id', r.id, 'status', r.status);
END $$;

-- Runs the workflows `ids` that may be retried again, on a worker, with a fresh attempt: a
-- stuck one from its history; a failed one from the step that failed (that step, those after
-- it and the failure are forgotten, everything before kept); a paused one from its paused
-- provider step, which waits out no backoff and gets a fresh set of attempts. Their open
-- incidents are resolved as retried by `actor`. Returns each one changed with its status.
CREATE FUNCTION spine.retry_workflows(ids text[], actor text DEFAULT current_user)
RETURNS TABLE (id text, status text) LANGUAGE plpgsql AS $$
DECLARE
  was text;
BEGIN
  FOR id, was IN
    SELECT w.id, w.status FROM spine.workflows w
    WHERE w.id = ANY (ids) AND spine.can_retry(w) FOR UPDATE
  LOOP
    IF was = 'failed' THEN
      DELETE FROM spine.steps s WHERE s.workflow_id = retry_workflows.id
        AND s.seq >= (SELECT min(f.seq) FROM spine.steps f
                      WHERE f.workflow_id = retry_workflows.id AND f.status = 'failed');
    ELSIF was = 'paused' THEN
      UPDATE spine.steps s SET status = 'retrying', attempt = 0, wake_at = spine.now(),
        ended_at = NULL
      WHERE s.workflow_id = retry_workflows.id AND s.status = 'paused';
    END IF;
    UPDATE spine.incidents n SET resolved_at = spine.now(), resolution = 'retried',
      resolved_by = actor
    WHERE n.workflow_id = retry_workflows.id AND n.resolved_at IS NULL;
    UPDATE spine.workflows w SET status = 'running', error = NULL, result = NULL,
      waiting_for = NULL, owner = NULL, wake_at = spine.now(), ended_at = NULL,
      attempt = w.attempt + 1, lost_runs = 0, updated_at = spine.now()
    WHERE w.id = retry_workflows.id
    RETURNING w.status INTO status;
    PERFORM pg_notify('spine', 'w');
    RETURN NEXT;
  END LOOP;
END $$;

-- One workflow, as spine.retry_workflows; refuses (SPNF0, SPIT0) when it cannot. Returns
-- {"id", "status"}.
CREATE FUNCTION spine.retry_workflow(id text, actor text DEFAULT current_user)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT c.id, c.status INTO r FROM spine.retry_workflows(ARRAY[retry_workflow.id], actor) c;
  IF NOT FOUND THEN
    PERFORM spine.refuse_action(retry_workflow.id, 'retry workflow');
  END IF;
  RETURN jsonb_build_object('id', r.id, 'status', r.status);
END $$;

-- Resolves the incident of paused workflow `id` by skipping its provider step: the step is
-- recorded completed with `result` as the provider's answer, the incident resolved as skipped
-- by `actor` (keeping the result), and the workflow goes on from there on a worker. Refuses
-- (SPNF0, SPIT0) unless the workflow is paused on a step. Returns
-- {"id", "status": "running", "skipped": {"seq", "step"}}.
CREATE FUNCTION spine.skip_step(id text, result jsonb DEFAULT 'null',
                                actor text DEFAULT current_user)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  step_seq int;
  step_name text;
BEGIN
  PERFORM 1 FROM spine.workflows w WHERE w.id = skip_step.id AND w.status = 'paused' FOR UPDATE;
  IF FOUND THEN
    WITH s AS (
      UPDATE spine.steps t SET status = 'completed', result = skip_step.result, error = NULL,
        ended_at = spine.now()
      WHERE t.workflow_id = skip_step.id AND t.status = 'paused' RETURNING t.seq, t.name)
    SELECT s.seq, s.name INTO step_seq, step_name FROM s ORDER BY s.seq LIMIT 1;
  END IF;
  IF step_seq IS NULL THEN
    PERFORM spine.refuse_action(skip_step.id, 'skip a step of workflow', 'paused');
  END IF;
  UPDATE spine.incidents n SET resolved_at = spine.now(), resolution = 'skipped',
    resolved_by = actor, skip_result = skip_step.result
  WHERE n.workflow_id = skip_step.id AND n.resolved_at IS NULL;
  UPDATE spine.workflows w SET status = 'running', owner = NULL, wake_at = spine.now(),
    waiting_for = NULL, updated_at = spine.now()
  WHERE w.id = skip_step.id;
  PERFORM pg_notify('spine', 'w');
  RETURN jsonb_build_object('id', skip_step.id, 'status', 'running',
                            'skipped', jsonb_build_object('seq', step_seq, 'step', step_name));
END $$;
