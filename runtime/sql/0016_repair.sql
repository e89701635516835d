-- Repairing runs in flight (issue 15 §4), as operator actions in SQL like those of 0010: forking
-- a workflow from one of its steps, moving a waiting workflow to another playbook version, the
-- maximum run time of a process, and pruning what ended workflows leave behind. `spine fork`,
-- `spine migrate`, `spine prune` and `spine serve` call these (the replay that proves a fork or
-- a migration compatible runs in `spine` before it calls them); so may psql, as the role Spine
-- works as. Refusals raise SPNF0 (no such workflow), SPIT0 (its status does not allow it) or SPIA0
-- (a bad argument), changing nothing.

ALTER TABLE spine.workflows
  ADD COLUMN forked_from text,         -- the workflow this one was forked from (spine fork)
  ADD COLUMN forked_at_step int,       -- ... keeping its steps 1 to this one
  ADD COLUMN migrated_from text,       -- the version it ran before its last spine migrate
  ADD COLUMN migrated_at timestamptz,
  ADD COLUMN max_duration text,        -- its manifest's max_duration as written ("90d")
  ADD COLUMN deadline_at timestamptz,  -- created_at + max_duration: failed when it passes
  ADD COLUMN expired_at timestamptz,   -- when its deadline failed it
  ADD COLUMN pruned_at timestamptz;    -- when spine prune removed its steps and signals
CREATE INDEX workflows_forks ON spine.workflows (forked_from) WHERE forked_from IS NOT NULL;
-- The deadlines still to come: read for the nearest one (NEXT_WAKE) and by the expiry.
CREATE INDEX workflows_deadlines ON spine.workflows (deadline_at)
  WHERE deadline_at IS NOT NULL AND ended_at IS NULL AND NOT cancel_requested;
CREATE INDEX workflows_prunable ON spine.workflows (ended_at)
  WHERE ended_at IS NOT NULL AND pruned_at IS NULL;
CREATE INDEX outbox_deliveries_delivered ON spine.outbox_deliveries (delivered_at)
  WHERE status = 'delivered';

-- A pruned workflow has no history to run again from.
CREATE OR REPLACE FUNCTION spine.can_retry(w spine.workflows) RETURNS boolean LANGUAGE sql STABLE
AS $$
  SELECT w.pruned_at IS NULL AND (w.status IN ('stuck', 'paused') OR (w.status = 'failed' AND
    NOT EXISTS (SELECT 1 FROM spine.steps s WHERE s.workflow_id = w.id AND s.kind = 'compensate')))
$$;

-- As in 0010, with the process's maximum run time: `max_duration` as its manifest writes it and
-- `max_duration_ms` (the intake parsed it), from which the row's deadline_at follows.
DROP FUNCTION spine.start_workflow(text, text, text, text, jsonb, text, bigint, text, int, text,
                                   text, text, text, int, text, text, jsonb);
CREATE FUNCTION spine.start_workflow(
  id text, process text, playbook text, version text, input jsonb, trace_id text,
  owner bigint DEFAULT NULL, parent_id text DEFAULT NULL, parent_seq int DEFAULT NULL,
  idempotency_key text DEFAULT NULL, variant text DEFAULT NULL, experiment text DEFAULT NULL,
  subject text DEFAULT NULL, bucket int DEFAULT NULL, path text DEFAULT NULL,
  source text DEFAULT NULL, params jsonb DEFAULT NULL, max_duration text DEFAULT NULL,
  max_duration_ms int8 DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF source IS NOT NULL THEN
    INSERT INTO spine.playbook_versions (hash, name, path, source)
    VALUES (version, playbook, path, source) ON CONFLICT (hash) DO NOTHING;
  END IF;
  INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id, owner,
                               wake_at, parent_id, parent_seq, idempotency_key, variant,
                               experiment, subject, bucket, params, max_duration, deadline_at)
  VALUES (id, process, playbook, version, CASE WHEN owner IS NULL THEN 'pending' ELSE 'running' END,
          input, trace_id, owner, CASE WHEN owner IS NULL THEN spine.now() END, parent_id,
          parent_seq, idempotency_key, variant, experiment, subject, bucket, params,
          CASE WHEN max_duration_ms IS NOT NULL THEN max_duration END,
          spine.now() + max_duration_ms * interval '1 ms')
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    -- a worker looks for work, and then arms its wake-up for the nearest deadline
    IF owner IS NULL OR max_duration_ms IS NOT NULL THEN
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

-- ---- the maximum run time ----

-- Fails the workflows whose deadline passed (at most `lim`, the oldest deadline first): each is
-- cancelled as an operator would (its worker stops it at once if it waits, and its
-- compensations run), marked expired, so that it ends failed with code max_duration; a paused
-- one's incident is resolved as cancelled. The engine calls it when it looks for work, which a
-- worker does at the nearest deadline (NEXT_WAKE), so a deadline costs no polling and survives
-- restarts. Returns how many it failed.
CREATE FUNCTION spine.expire_workflows(lim int DEFAULT 100) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  wf text;
  n int := 0;
BEGIN
  FOR wf IN
    SELECT w.id FROM spine.workflows w
    WHERE w.deadline_at <= spine.now() AND w.ended_at IS NULL AND NOT w.cancel_requested
    ORDER BY w.deadline_at LIMIT lim FOR UPDATE SKIP LOCKED
  LOOP
    UPDATE spine.workflows w SET cancel_requested = true, expired_at = spine.now(),
      wake_at = spine.now(), updated_at = spine.now(),
      status = CASE WHEN w.status = 'paused' THEN 'running' ELSE w.status END
    WHERE w.id = wf;
    UPDATE spine.incidents n SET resolved_at = spine.now(), resolution = 'cancelled',
      resolved_by = 'max_duration'
    WHERE n.workflow_id = wf AND n.resolved_at IS NULL;
    PERFORM pg_notify('spine', 'x:' || wf);
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- ---- fork ----

-- Raises SPIA0 naming `col`.
CREATE FUNCTION spine.refuse_argument(col text, message text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'SPIA0', COLUMN = col, MESSAGE = message;
END $$;

-- Ends workflow `wf` as cancelled at once, without its compensations: its effects stay, for
-- `by` carries its business on (a fork). A worker that holds it loses its claim (the epoch
-- moves: whatever it would still write is fenced off) and drops it when told ('m:').
CREATE FUNCTION spine.supersede_workflow(wf text, why text, actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE spine.workflows w SET status = 'cancelled', owner = NULL, epoch = w.epoch + 1,
    wake_at = NULL, waiting_for = NULL, cancelled_by = actor, updated_at = spine.now(),
    ended_at = spine.now(),
    error = jsonb_build_object('kind', 'cancelled', 'code', 'superseded', 'message', why)
  WHERE w.id = wf;
  UPDATE spine.steps s SET status = 'cancelled', ended_at = spine.now()
  WHERE s.workflow_id = wf AND s.status IN ('waiting', 'retrying', 'running', 'paused');
  UPDATE spine.incidents n SET resolved_at = spine.now(), resolution = 'cancelled',
    resolved_by = actor
  WHERE n.workflow_id = wf AND n.resolved_at IS NULL;
  PERFORM pg_notify('spine', 'm:' || wf);
END $$;

-- Forks workflow `id` at step `from_step`: a new workflow `new_id` of the same process, input,
-- variant, trace and deadline (a new one when it passed), whose history is the original's completed steps 1 to from_step, and
-- which runs on (replaying them) on version `version` (the original's when NULL; stored from
-- `source` when given). The signals the original took after that step, and those it had not
-- taken yet, are the fork's to take again, in their order. Unless `keep`, an original that has
-- not ended is superseded (cancelled without compensations: the fork carries its effects on).
-- Refuses (SPNF0, SPIT0, SPIA0) a child workflow (fork its parent), a pruned one, and a step
-- that is out of range or not completed. Returns {"id", "forked_from", "from_step", "version",
-- "original": {"id", "status"}}.
CREATE FUNCTION spine.fork_workflow(id text, from_step int, new_id text, keep boolean DEFAULT false,
                                    version text DEFAULT NULL, playbook text DEFAULT NULL,
                                    path text DEFAULT NULL, source text DEFAULT NULL,
                                    actor text DEFAULT current_user)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  o spine.workflows;
  bad record;
  last int;
  st text;
BEGIN
  SELECT * INTO o FROM spine.workflows w WHERE w.id = fork_workflow.id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM spine.refuse_action(fork_workflow.id, 'fork workflow');
  END IF;
  IF o.parent_id IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'SPIT0', COLUMN = 'id', MESSAGE = format(
      'cannot fork workflow %s: it is a child of %s (fork its parent)', o.id, o.parent_id);
  END IF;
  IF o.pruned_at IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'SPIT0', COLUMN = 'id', MESSAGE = format(
      'cannot fork workflow %s: its steps were pruned', o.id);
  END IF;
  SELECT max(s.seq) INTO last FROM spine.steps s WHERE s.workflow_id = o.id;
  IF from_step IS NULL OR from_step < 0 OR from_step > coalesce(last, 0) THEN
    PERFORM spine.refuse_argument('from_step', format(
      'cannot fork workflow %s at step %s: it has steps 1 to %s', o.id, from_step,
      coalesce(last, 0)));
  END IF;
  SELECT s.seq, s.kind, s.status INTO bad FROM spine.steps s
  WHERE s.workflow_id = o.id AND s.seq <= from_step
    AND (s.status <> 'completed' OR s.kind IN ('fail', 'compensate'))
  ORDER BY s.seq LIMIT 1;
  IF FOUND THEN
    PERFORM spine.refuse_argument('from_step', format(
      'cannot fork workflow %s at step %s: step %s (%s) is %s; a fork keeps completed steps only',
      o.id, from_step, bad.seq, bad.kind, bad.status));
  END IF;
  IF source IS NOT NULL THEN
    INSERT INTO spine.playbook_versions (hash, name, path, source)
    VALUES (fork_workflow.version, coalesce(fork_workflow.playbook, o.playbook), fork_workflow.path,
            source)
    ON CONFLICT (hash) DO NOTHING;
  END IF;
  INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id, wake_at,
                               variant, experiment, subject, bucket, params, max_duration,
                               deadline_at, forked_from, forked_at_step)
  VALUES (new_id, o.process, coalesce(fork_workflow.playbook, o.playbook),
          coalesce(fork_workflow.version, o.version), 'pending', o.input, o.trace_id, spine.now(),
          o.variant, o.experiment, o.subject, o.bucket, o.params, o.max_duration,
          -- the case's deadline; a full max_duration again when it passed (the original expired)
          CASE WHEN o.deadline_at > spine.now() THEN o.deadline_at
               ELSE spine.now() + (o.deadline_at - o.created_at) END,
          o.id, from_step);
  INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result, error, attempt, wake_at,
                           started_at, ended_at)
  SELECT new_id, s.seq, s.kind, s.name, s.status, s.result, s.error, s.attempt, s.wake_at,
         s.started_at, s.ended_at
  FROM spine.steps s WHERE s.workflow_id = o.id AND s.seq <= from_step;
  INSERT INTO spine.signals (workflow_id, name, payload, created_at)
  SELECT new_id, g.name, g.payload, g.created_at FROM spine.signals g
  WHERE g.workflow_id = o.id AND (g.consumed_seq IS NULL OR g.consumed_seq > from_step)
  ORDER BY g.id;
  st := o.status;
  IF NOT keep AND o.ended_at IS NULL THEN
    PERFORM spine.supersede_workflow(o.id, format('forked to %s at step %s', new_id, from_step),
                                     actor);
    st := 'cancelled';
  END IF;
  PERFORM pg_notify('spine', 'w');
  RETURN jsonb_build_object('id', new_id, 'forked_from', o.id, 'from_step', from_step,
                            'version', coalesce(fork_workflow.version, o.version),
                            'original', jsonb_build_object('id', o.id, 'status', st));
END $$;

-- ---- migrate ----

-- Moves waiting workflow `id` from version `from_version` to `version` (stored from `source`
-- when given): the caller replayed its history against the new source and found it compatible.
-- Its claim is taken back (the epoch moves; a worker holding it drops it when told, 'm:') and
-- it is due now, so that a worker replays it on the new version and waits again. Refuses
-- (SPNF0, SPIT0) unless it still waits on `from_version` and was not cancelled. Returns {"id",
-- "status", "from", "to"}.
CREATE FUNCTION spine.migrate_workflow(id text, from_version text, version text,
                                       playbook text DEFAULT NULL, path text DEFAULT NULL,
                                       source text DEFAULT NULL, actor text DEFAULT current_user)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF source IS NOT NULL THEN
    INSERT INTO spine.playbook_versions (hash, name, path, source)
    SELECT migrate_workflow.version, coalesce(migrate_workflow.playbook, w.playbook),
           migrate_workflow.path, source
    FROM spine.workflows w WHERE w.id = migrate_workflow.id
    ON CONFLICT (hash) DO NOTHING;
  END IF;
  UPDATE spine.workflows w SET version = migrate_workflow.version,
    playbook = coalesce(migrate_workflow.playbook, w.playbook), migrated_from = w.version,
    migrated_at = spine.now(), owner = NULL, epoch = w.epoch + 1, wake_at = spine.now(),
    updated_at = spine.now()
  WHERE w.id = migrate_workflow.id AND w.status = 'waiting' AND NOT w.cancel_requested
    AND w.version = from_version;
  IF NOT FOUND THEN
    IF EXISTS (SELECT 1 FROM spine.workflows w WHERE w.id = migrate_workflow.id
               AND w.status = 'waiting' AND w.version <> from_version) THEN
      RAISE EXCEPTION USING ERRCODE = 'SPIT0', COLUMN = 'id', MESSAGE = format(
        'cannot migrate workflow %s: it runs another version than the one replayed',
        migrate_workflow.id);
    END IF;
    PERFORM spine.refuse_action(migrate_workflow.id, 'migrate workflow', 'waiting');
  END IF;
  PERFORM pg_notify('spine', 'm:' || migrate_workflow.id);
  PERFORM pg_notify('spine', 'w');
  RETURN jsonb_build_object('id', migrate_workflow.id, 'status', 'waiting', 'from', from_version,
                            'to', migrate_workflow.version);
END $$;

-- ---- retention ----

-- One batch of spine prune: of at most `batch` workflows that ended before `ended_before` and
-- were not pruned yet, the steps and signals; and at most `batch` outbox deliveries delivered
-- before then. The workflow rows stay (status, result, error: `spine show` still answers, with
-- pruned_at) and so does the business history: nothing under lifecycle is touched. Short
-- transactions: the caller runs batches until one finds nothing. Returns what went and its
-- size in bytes (the rows' size as stored; the space is reused once vacuumed).
CREATE FUNCTION spine.prune_batch(ended_before timestamptz, batch int DEFAULT 500)
RETURNS TABLE (workflows int, steps int, signals int, deliveries int, bytes int8)
LANGUAGE plpgsql AS $$
DECLARE
  ids text[];
  b1 int8;
  b2 int8;
  b3 int8;
BEGIN
  SELECT coalesce(array_agg(w.id), '{}') INTO ids FROM (
    SELECT x.id FROM spine.workflows x
    WHERE x.ended_at < ended_before AND x.pruned_at IS NULL
    ORDER BY x.ended_at LIMIT batch FOR UPDATE SKIP LOCKED) w;
  WITH d AS (DELETE FROM spine.steps s WHERE s.workflow_id = ANY (ids)
             RETURNING pg_column_size(s.*) AS n)
  SELECT count(*), coalesce(sum(d.n), 0) INTO steps, b1 FROM d;
  WITH d AS (DELETE FROM spine.signals g WHERE g.workflow_id = ANY (ids)
             RETURNING pg_column_size(g.*) AS n)
  SELECT count(*), coalesce(sum(d.n), 0) INTO signals, b2 FROM d;
  UPDATE spine.workflows w SET pruned_at = spine.now() WHERE w.id = ANY (ids);
  workflows := cardinality(ids);
  WITH c AS (SELECT o.subscriber, o.event_id FROM spine.outbox_deliveries o
             WHERE o.status = 'delivered' AND o.delivered_at < ended_before
             ORDER BY o.delivered_at LIMIT batch FOR UPDATE SKIP LOCKED),
  d AS (DELETE FROM spine.outbox_deliveries o USING c
        WHERE o.subscriber = c.subscriber AND o.event_id = c.event_id
        RETURNING pg_column_size(o.*) AS n)
  SELECT count(*), coalesce(sum(d.n), 0) INTO deliveries, b3 FROM d;
  bytes := b1 + b2 + b3;
  RETURN NEXT;
END $$;
