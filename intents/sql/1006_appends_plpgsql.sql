-- History and outbox rows are appended by PL/pgSQL, not SQL-language functions: PostgreSQL 15
-- plans a SQL function's INSERT again at every call (it caches no plan across calls), while
-- PL/pgSQL prepares each statement once per session; every intent appends both. Same
-- signatures and behaviour.
CREATE OR REPLACE FUNCTION lifecycle.history_append(m jsonb, customer text, entity text,
                                                    entity_id text, before jsonb, after jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lifecycle.history (customer_id, entity, entity_id, intent, actor, workflow_id,
                                 step_seq, trace_id, before, after)
  VALUES (customer, entity, entity_id, m->>'intent', m->>'actor', m->>'workflow_id',
          (m->>'step_seq')::int, m->>'trace_id', before, after);
END $$;

CREATE OR REPLACE FUNCTION lifecycle.outbox_append(m jsonb, customer text, ordering_key text,
                                                   event_type text, payload jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lifecycle.outbox (customer_id, ordering_key, event_type, payload, intent,
                                workflow_id, trace_id)
  VALUES (customer, ordering_key, event_type, payload, m->>'intent', m->>'workflow_id',
          m->>'trace_id');
END $$;
