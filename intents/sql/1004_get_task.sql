-- GetTask (intents/get_task.c): reads a human task with its resolution and resolver, so that a
-- playbook checks who answered a task against the system of record (a four-eyes approval)
-- instead of trusting the payload of the signal that woke it.
CREATE OR REPLACE FUNCTION lifecycle.get_task(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  r jsonb;
BEGIN
  SELECT customer_id INTO cust FROM lifecycle.directory WHERE kind = 'task' AND id = a->>'task_id';
  SELECT to_jsonb(t) - 'args_digest' INTO r FROM lifecycle.tasks t
  WHERE t.customer_id = cust AND t.task_id = a->>'task_id';
  IF r IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'task_id', format('no task %s', a->>'task_id'));
  END IF;
  RETURN r;
END $$;
