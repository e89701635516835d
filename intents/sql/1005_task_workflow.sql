-- A task knows the workflow that opened it (CreateTask called from a playbook; NULL when an
-- operator or another system opened it), and ResolveTask signals that workflow, in the same
-- transaction, as "task.resolved" {task_id, kind, subject, outcome, data, resolved_by}: exactly
-- the case waiting for it, whatever the task's subject. A workflow closing a task it opened
-- itself (an unanswered approval) is not signalled: it knows. The TaskResolved outbox event
-- stays for other subscribers.
ALTER TABLE lifecycle.tasks ADD COLUMN workflow_id text;

CREATE OR REPLACE FUNCTION lifecycle.create_task(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  t lifecycle.tasks;
  inserted text;
BEGIN
  SELECT customer_id INTO cust FROM lifecycle.directory
  WHERE kind = 'contract' AND id = a->>'subject';
  IF cust IS NULL THEN
    SELECT customer_id INTO cust FROM lifecycle.customers WHERE customer_id = a->>'subject';
  END IF;
  IF cust IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'subject',
                             format('no contract or customer %s', a->>'subject'));
  END IF;
  t.customer_id := cust;
  t.task_id := coalesce(a->>'task_id', gen_random_uuid()::text);
  t.kind := a->>'kind';
  t.subject := a->>'subject';
  t.status := 'open';
  t.data := coalesce(a->'data', '{}');
  t.due := lifecycle.arg_time(m, a, 'due');
  t.args_digest := lifecycle.digest(a);
  t.created_at := spine.now();
  t.workflow_id := m->>'workflow_id';
  INSERT INTO lifecycle.directory (kind, id, customer_id) VALUES ('task', t.task_id, cust)
  ON CONFLICT DO NOTHING RETURNING id INTO inserted;
  IF inserted IS NULL THEN
    IF NOT EXISTS (SELECT 1 FROM lifecycle.tasks x JOIN lifecycle.directory d
                   ON d.kind = 'task' AND d.id = x.task_id AND d.customer_id = x.customer_id
                   WHERE x.task_id = t.task_id AND x.args_digest = t.args_digest) THEN
      PERFORM lifecycle.reject(m, 'SPCF0', 'task_id',
                               format('task %s exists with other arguments', t.task_id));
    END IF;
    RETURN jsonb_build_object('task_id', t.task_id, 'status', 'open');
  END IF;
  INSERT INTO lifecycle.tasks SELECT t.*;
  PERFORM lifecycle.history_append(m, cust, 'task', t.task_id, NULL, to_jsonb(t) - 'args_digest');
  PERFORM lifecycle.outbox_append(m, cust, t.subject, 'TaskCreated',
    jsonb_build_object('task_id', t.task_id, 'kind', t.kind, 'subject', t.subject,
                       'customer_id', cust));
  RETURN jsonb_build_object('task_id', t.task_id, 'status', 'open');
END $$;

CREATE OR REPLACE FUNCTION lifecycle.resolve_task(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  t lifecycle.tasks;
  n lifecycle.tasks;
BEGIN
  SELECT customer_id INTO cust FROM lifecycle.directory WHERE kind = 'task' AND id = a->>'task_id';
  SELECT * INTO t FROM lifecycle.tasks
  WHERE customer_id = cust AND task_id = a->>'task_id' FOR UPDATE;
  IF t.task_id IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'task_id', format('no task %s', a->>'task_id'));
  END IF;
  IF t.status <> 'open' THEN
    PERFORM lifecycle.reject(m, 'SPIT0', NULL,
      format('task %s is resolved already (outcome %s)', t.task_id, t.outcome));
  END IF;
  UPDATE lifecycle.tasks SET status = 'resolved', outcome = a->>'outcome',
    resolution = coalesce(a->'data', '{}'), resolved_by = m->>'actor', resolved_at = spine.now()
  WHERE customer_id = t.customer_id AND task_id = t.task_id
  RETURNING * INTO n;
  PERFORM lifecycle.history_append(m, cust, 'task', t.task_id, to_jsonb(t) - 'args_digest',
                                   to_jsonb(n) - 'args_digest');
  PERFORM lifecycle.outbox_append(m, cust, t.subject, 'TaskResolved',
    jsonb_build_object('task_id', t.task_id, 'kind', t.kind, 'subject', t.subject,
                       'outcome', n.outcome, 'data', n.resolution));
  IF t.workflow_id IS NOT NULL AND t.workflow_id IS DISTINCT FROM m->>'workflow_id' THEN
    PERFORM spine.signal_workflow(t.workflow_id, 'task.resolved',
      jsonb_build_object('task_id', t.task_id, 'kind', t.kind, 'subject', t.subject,
                         'outcome', n.outcome, 'data', n.resolution,
                         'resolved_by', n.resolved_by));
  END IF;
  RETURN jsonb_build_object('task_id', t.task_id, 'status', 'resolved', 'outcome', n.outcome);
END $$;
