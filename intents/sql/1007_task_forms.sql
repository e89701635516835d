-- What an operator answers to a task (issue 14): each kind of task declares its form, the
-- outcomes it takes and the fields of its data ({"name": {"type": "string|number|boolean|
-- object", "required": true|false}}); a kind without a row takes any outcome and any data
-- object. A task can be claimed: its assignee answers it, another claimer is refused. The HTTP
-- API's task routes (runtime/api/api_tasks.c) call the functions below; ResolveTask itself does
-- not check the form, so that a playbook can close a task it opened with an outcome of its own
-- ("unanswered", "expired").
CREATE TABLE lifecycle.task_kinds (
  kind text PRIMARY KEY,
  outcomes text[] NOT NULL CHECK (cardinality(outcomes) > 0),
  fields jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(fields) = 'object'),
  description text
);

INSERT INTO lifecycle.task_kinds (kind, outcomes, fields, description) VALUES
  ('credit_approval', '{approved,rejected}',
   '{"comment": {"type": "string", "required": false}}',
   'Approve a manual credit (someone other than its requester)'),
  ('credit_approval_escalated', '{approved,rejected}',
   '{"comment": {"type": "string", "required": false}}',
   'Approve a manual credit nobody approved in time');

ALTER TABLE lifecycle.tasks ADD COLUMN assignee text, ADD COLUMN claimed_at timestamptz;

CREATE FUNCTION lifecycle.task_refuse(code text, field text, message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = code, COLUMN = coalesce(field, ''), MESSAGE = message;
END $$;

CREATE FUNCTION lifecycle.task_json(t lifecycle.tasks) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('task_id', t.task_id, 'kind', t.kind, 'subject', t.subject,
    'customer_id', t.customer_id, 'status', t.status, 'data', t.data, 'due', t.due,
    'assignee', t.assignee, 'claimed_at', t.claimed_at, 'outcome', t.outcome,
    'resolution', t.resolution, 'resolved_by', t.resolved_by, 'resolved_at', t.resolved_at,
    'workflow_id', t.workflow_id, 'created_at', t.created_at,
    'form', (SELECT jsonb_build_object('outcomes', to_jsonb(k.outcomes), 'fields', k.fields,
                                       'description', k.description)
             FROM lifecycle.task_kinds k WHERE k.kind = t.kind))
$$;

-- One task by id, or NULL.
CREATE FUNCTION lifecycle.task_get(p_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT lifecycle.task_json(t) FROM lifecycle.tasks t JOIN lifecycle.directory d
  ON d.kind = 'task' AND d.id = t.task_id AND d.customer_id = t.customer_id
  WHERE t.task_id = p_id
$$;

-- A page of open tasks, oldest first, {items, next_cursor}; the cursor is the hex of
-- "<created_at µs>/<task_id>" of the page's last task.
CREATE FUNCTION lifecycle.task_page(p_kind text, p_subject text, p_assignee text,
                                    p_due_before timestamptz, p_cursor text, p_limit int)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
  c_us int8;
  c_id text;
  items jsonb;
  total int;
  last_us int8;
  last_id text;
BEGIN
  IF p_cursor IS NOT NULL THEN
    BEGIN
      c_us := split_part(convert_from(decode(p_cursor, 'hex'), 'UTF8'), '/', 1)::int8;
      c_id := substr(convert_from(decode(p_cursor, 'hex'), 'UTF8'),
                     strpos(convert_from(decode(p_cursor, 'hex'), 'UTF8'), '/') + 1);
    EXCEPTION WHEN others THEN
      PERFORM lifecycle.task_refuse('SPIA0', 'cursor',
                                    'not a cursor this server gave (use next_cursor as it is)');
    END;
  END IF;
  WITH page AS (
    SELECT t.customer_id, t.task_id, (extract(epoch FROM t.created_at) * 1000000)::int8 AS us
    FROM lifecycle.tasks t
    WHERE t.status = 'open'
      AND (p_kind IS NULL OR t.kind = p_kind) AND (p_subject IS NULL OR t.subject = p_subject)
      AND (p_assignee IS NULL OR t.assignee IS NOT DISTINCT FROM nullif(p_assignee, ''))
      AND (p_due_before IS NULL OR t.due < p_due_before)
      AND (c_us IS NULL OR ((extract(epoch FROM t.created_at) * 1000000)::int8, t.task_id)
                           > (c_us, c_id))
    ORDER BY 3, 2 LIMIT p_limit + 1),
  numbered AS (SELECT page.*, row_number() OVER (ORDER BY us, task_id) AS rn FROM page)
  SELECT coalesce(jsonb_agg(lifecycle.task_json(t) ORDER BY n.us, n.task_id)
                  FILTER (WHERE n.rn <= p_limit), '[]'),
         count(*), max(n.us) FILTER (WHERE n.rn = p_limit),
         max(n.task_id) FILTER (WHERE n.rn = p_limit)
  INTO items, total, last_us, last_id
  FROM numbered n JOIN lifecycle.tasks t ON t.customer_id = n.customer_id
    AND t.task_id = n.task_id;
  RETURN jsonb_build_object('items', items, 'next_cursor',
    CASE WHEN total > p_limit THEN encode(convert_to(last_us || '/' || last_id, 'UTF8'), 'hex') END);
END $$;

-- Claims open task `p_id` for `p_actor`: again by the same actor is nothing new; another's claim
-- is a conflict (SPCF0). Returns the task.
CREATE FUNCTION lifecycle.task_claim(p_id text, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  t lifecycle.tasks;
BEGIN
  SELECT x.* INTO t FROM lifecycle.tasks x JOIN lifecycle.directory d
  ON d.kind = 'task' AND d.id = x.task_id AND d.customer_id = x.customer_id
  WHERE x.task_id = p_id FOR UPDATE OF x;
  IF t.task_id IS NULL THEN
    PERFORM lifecycle.task_refuse('SPNF0', 'id', format('no task %s', p_id));
  END IF;
  IF t.status <> 'open' THEN
    PERFORM lifecycle.task_refuse('SPIT0', 'id', format('task %s is resolved already', p_id));
  END IF;
  IF t.assignee IS NOT NULL AND t.assignee <> p_actor THEN
    PERFORM lifecycle.task_refuse('SPCF0', 'id',
                                  format('task %s is claimed by %s', p_id, t.assignee));
  END IF;
  IF t.assignee IS NULL THEN
    UPDATE lifecycle.tasks SET assignee = p_actor, claimed_at = spine.now()
    WHERE customer_id = t.customer_id AND task_id = t.task_id RETURNING * INTO t;
  END IF;
  RETURN lifecycle.task_json(t);
END $$;

-- Checks an answer to task `p_id` by `p_actor` against its kind's form: the task is open, not
-- claimed by someone else, the outcome is one of the form's, the data has the form's fields
-- (required ones present, each of its type, no other). Refuses naming the field.
CREATE FUNCTION lifecycle.task_check_answer(p_id text, p_outcome text, p_data jsonb, p_actor text)
RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
  t lifecycle.tasks;
  k lifecycle.task_kinds;
  f record;
  key text;
BEGIN
  SELECT x.* INTO t FROM lifecycle.tasks x JOIN lifecycle.directory d
  ON d.kind = 'task' AND d.id = x.task_id AND d.customer_id = x.customer_id WHERE x.task_id = p_id;
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
