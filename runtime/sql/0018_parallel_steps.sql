-- Branches of ctx.parallel (issue 15 §1): a step belongs to a strand of its workflow, the main
-- body or a branch, and is numbered within it, so that a replay matches each branch's steps by
-- (branch, branch_seq) whichever branch's step committed first. `seq` stays the workflow-wide
-- key (the order of commits: signals' consumed_seq, incidents, retry and skip name it).
-- A step of the main body has no branch; a row written before this migration has no
-- branch_seq either: its number is its seq, so old histories replay as they did.
ALTER TABLE spine.steps
  ADD COLUMN branch text,          -- the branch's path ("3.a", "3.a/2.x"), NULL: the main body
  ADD COLUMN branch_seq int;       -- its number within the branch (NULL: seq)

-- A fork keeps its steps' strands (as 0016's, copying branch and branch_seq).
CREATE OR REPLACE FUNCTION spine.fork_workflow(id text, from_step int, new_id text, keep boolean DEFAULT false,
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
                           started_at, ended_at, branch, branch_seq, signal, match)
  SELECT new_id, s.seq, s.kind, s.name, s.status, s.result, s.error, s.attempt, s.wake_at,
         s.started_at, s.ended_at, s.branch, s.branch_seq, s.signal, s.match
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
