-- An operator's answer to a task is checked and applied in one transaction (issue 14): the
-- check now locks the task's row, so a claim by someone else cannot come between the check and
-- ResolveTask (which takes the same lock). The check runs before every operator's ResolveTask,
-- through the API's task routes, POST /v1/intents/ResolveTask, `spine tasks resolve` and
-- `spine intent ResolveTask` alike (runtime/api/api_intents.c); a playbook's ResolveTask is not
-- checked (it may close a task it opened with an outcome of its own).
CREATE OR REPLACE FUNCTION lifecycle.task_check_answer(p_id text, p_outcome text, p_data jsonb, p_actor text)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t lifecycle.tasks;
  k lifecycle.task_kinds;
  f record;
  key text;
BEGIN
  SELECT x.* INTO t FROM lifecycle.tasks x JOIN lifecycle.directory d
  ON d.kind = 'task' AND d.id = x.task_id AND d.customer_id = x.customer_id WHERE x.task_id = p_id
  FOR UPDATE OF x;
  IF t.task_id IS NULL THEN
    PERFORM lifecycle.task_refuse('SPNF0', 'id', format('no task %s', p_id));
  END IF;
  IF t.status <> 'open' THEN
    PERFORM lifecycle.task_refuse('SPIT0', 'id',
      format('task %s is resolved already (outcome %s)', p_id, t.outcome));
  END IF;
  IF t.assignee IS NOT NULL AND t.assignee <> p_actor THEN
    PERFORM lifecycle.task_refuse('SPCF0', 'id', format('task %s is claimed by %s', p_id, t.assignee));
  END IF;
  SELECT * INTO k FROM lifecycle.task_kinds WHERE kind = t.kind;
  IF k.kind IS NULL THEN
    RETURN;
  END IF;
  IF NOT p_outcome = ANY (k.outcomes) THEN
    PERFORM lifecycle.task_refuse('SPIA0', 'outcome', format('outcome must be one of %s',
                                  array_to_string(k.outcomes, ', ')));
  END IF;
  FOR f IN SELECT e.key, e.value FROM jsonb_each(k.fields) e ORDER BY e.key LOOP
    IF NOT p_data ? f.key THEN
      IF coalesce((f.value->>'required')::bool, false) THEN
        PERFORM lifecycle.task_refuse('SPIA0', 'data.' || f.key, format('data.%s is required', f.key));
      END IF;
    ELSIF jsonb_typeof(p_data->f.key) <> coalesce(f.value->>'type', 'string') THEN
      PERFORM lifecycle.task_refuse('SPIA0', 'data.' || f.key,
        format('data.%s must be a %s', f.key, coalesce(f.value->>'type', 'string')));
    END IF;
  END LOOP;
  FOR key IN SELECT jsonb_object_keys(p_data) LOOP
    IF NOT k.fields ? key THEN
      PERFORM lifecycle.task_refuse('SPIA0', 'data.' || left(key, 40),
        format('data.%s is not a field of a %s task (its fields: %s)', left(key, 40), t.kind,
               coalesce((SELECT string_agg(x, ', ' ORDER BY x) FROM jsonb_object_keys(k.fields) x),
                        'none')));
    END IF;
  END LOOP;
END $$;
