-- A manifest's variant may give its playbook parameters instead of naming a copied playbook
-- (issue 15 §3): {"name": "polling", "params": {"activation": "polling"}, "weight": 10}. The
-- dispatcher stores the variant's parameters on the workflow when it starts the case, so that
-- ctx.param reads the same values on every replay, whatever manifest is in force later.
ALTER TABLE spine.workflows ADD COLUMN params jsonb;

DROP FUNCTION spine.start_workflow(text, text, text, text, jsonb, text, bigint, text, int, text,
                                   text, text, text, int, text, text);

CREATE FUNCTION spine.start_workflow(
  id text, process text, playbook text, version text, input jsonb, trace_id text,
  owner bigint DEFAULT NULL, parent_id text DEFAULT NULL, parent_seq int DEFAULT NULL,
  idempotency_key text DEFAULT NULL, variant text DEFAULT NULL, experiment text DEFAULT NULL,
  subject text DEFAULT NULL, bucket int DEFAULT NULL, path text DEFAULT NULL,
  source text DEFAULT NULL, params jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF source IS NOT NULL THEN
    INSERT INTO spine.playbook_versions (hash, name, path, source)
    VALUES (version, playbook, path, source) ON CONFLICT (hash) DO NOTHING;
  END IF;
  INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id, owner,
                               wake_at, parent_id, parent_seq, idempotency_key, variant,
                               experiment, subject, bucket, params)
  VALUES (id, process, playbook, version, CASE WHEN owner IS NULL THEN 'pending' ELSE 'running' END,
          input, trace_id, owner, CASE WHEN owner IS NULL THEN spine.now() END, parent_id,
          parent_seq, idempotency_key, variant, experiment, subject, bucket, params)
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
