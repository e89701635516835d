-- The HTTP API's callers and what they did (issue 14): API tokens, kept as the SHA-256 of their
-- secret (never the secret: `spine tokens create` prints it once), with their subject (the
-- actor recorded for what they do) and scopes; and an append-only audit of API actions. The
-- operator actions record their actor on the workflow too: cancelled_by, retried_by (the
-- incidents' resolved_by already had it).

CREATE TABLE spine.api_tokens (
  id text PRIMARY KEY,
  subject text NOT NULL CHECK (subject <> ''),
  scopes text[] NOT NULL,
  token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz
);

-- One row an API request that acts (every method but GET), refused ones included: who (the
-- token's subject, NULL when none was valid), what (method, route pattern, target), when, from
-- where (the client's address), the HTTP status and an outcome word. Rows are only inserted:
-- a trigger refuses UPDATE and DELETE (TRUNCATE stays the operator's).
CREATE TABLE spine.api_audit (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  subject text,
  token_id text,
  method text NOT NULL,
  route text NOT NULL,
  target text,
  source text,
  status int NOT NULL,
  outcome text NOT NULL
);
CREATE INDEX api_audit_at ON spine.api_audit (at);

CREATE FUNCTION spine.api_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'spine.api_audit is append-only';
END $$;
CREATE TRIGGER api_audit_append_only BEFORE UPDATE OR DELETE ON spine.api_audit
  FOR EACH ROW EXECUTE FUNCTION spine.api_audit_append_only();

ALTER TABLE spine.workflows ADD COLUMN cancelled_by text, ADD COLUMN retried_by text;

-- As 0011's, recording the actor on the workflow.
CREATE OR REPLACE FUNCTION spine.cancel_workflows(ids text[], actor text DEFAULT current_user)
RETURNS TABLE (id text, status text) LANGUAGE plpgsql AS $$
BEGIN
  FOR id, status IN
    UPDATE spine.workflows w SET cancel_requested = true, updated_at = spine.now(),
      wake_at = spine.now(), cancelled_by = actor,
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

-- As 0010's, recording the actor on the workflow.
CREATE OR REPLACE FUNCTION spine.retry_workflows(ids text[], actor text DEFAULT current_user)
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
      attempt = w.attempt + 1, lost_runs = 0, updated_at = spine.now(), retried_by = actor
    WHERE w.id = retry_workflows.id
    RETURNING w.status INTO status;
    PERFORM pg_notify('spine', 'w');
    RETURN NEXT;
  END LOOP;
END $$;
