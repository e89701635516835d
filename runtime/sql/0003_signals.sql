-- Signals from outside a workflow (provider webhooks, the outbox relay, operators), in SQL so
-- that every sender stores, wakes and notifies the same way, in the sender's transaction.
--
-- A workflow belongs to a contract when its attributes (ctx.set("contract_id", ...)) or, failing
-- that, its input name it: the relay signals a contract's events to those workflows, a provider's
-- webhook may address a contract instead of a workflow id.
CREATE INDEX workflows_by_contract
  ON spine.workflows ((coalesce(attributes ->> 'contract_id', input ->> 'contract_id')))
  WHERE ended_at IS NULL;

-- Stores signal `name` for workflow `wf`, wakes it if it waits unowned, notifies its owner.
-- Returns the signal's id, or NULL when no such workflow runs (ended or unknown).
CREATE FUNCTION spine.signal_workflow(wf text, name text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  sid bigint;
BEGIN
  PERFORM 1 FROM spine.workflows WHERE id = wf AND ended_at IS NULL;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  UPDATE spine.workflows SET wake_at = now()
    WHERE id = wf AND owner IS NULL AND status = 'waiting';
  INSERT INTO spine.signals (workflow_id, name, payload)
    VALUES (wf, name, coalesce(payload, '{}')) RETURNING id INTO sid;
  PERFORM pg_notify('spine', 's:' || wf);
  RETURN sid;
END $$;

-- Signals every running workflow of contract `contract`; returns their ids (none is not an
-- error: an event may concern no process in flight).
CREATE FUNCTION spine.signal_contract(contract text, name text, payload jsonb)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  wf text;
BEGIN
  FOR wf IN SELECT id FROM spine.workflows
             WHERE coalesce(attributes ->> 'contract_id', input ->> 'contract_id') = contract
               AND ended_at IS NULL ORDER BY created_at, id LOOP
    PERFORM spine.signal_workflow(wf, name, payload);
    RETURN NEXT wf;
  END LOOP;
END $$;

-- A provider webhook's actions (the adapter's answer, validated by Spine):
-- [{"signal": name, "workflow_id": id, "payload": {...}} | {"signal", "contract_id", "payload"}]
-- Signals them all in the caller's transaction; returns {"signalled": [ids], "unmatched": n}
-- (actions whose workflow or contract has no running workflow).
CREATE FUNCTION spine.webhook_signals(actions jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a jsonb;
  ids text[] := '{}';
  got text;
  matched boolean;
  unmatched int := 0;
BEGIN
  FOR a IN SELECT value FROM jsonb_array_elements(actions) LOOP
    matched := false;
    IF a ? 'workflow_id' THEN
      IF spine.signal_workflow(a ->> 'workflow_id', a ->> 'signal',
                               coalesce(a -> 'payload', '{}')) IS NOT NULL THEN
        ids := ids || (a ->> 'workflow_id');
        matched := true;
      END IF;
    ELSIF a ? 'contract_id' THEN
      FOR got IN SELECT spine.signal_contract(a ->> 'contract_id', a ->> 'signal',
                                              coalesce(a -> 'payload', '{}')) LOOP
        ids := ids || got;
        matched := true;
      END LOOP;
    END IF;
    IF NOT matched THEN
      unmatched := unmatched + 1;
    END IF;
  END LOOP;
  RETURN jsonb_build_object('signalled', to_jsonb(ids), 'unmatched', unmatched);
END $$;
