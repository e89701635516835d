-- The statuses of workflows and steps as domains instead of table CHECK constraints (issue 16):
-- PostgreSQL 15 reads a table's CHECK expressions back from their text (stringToNode) at every
-- statement that writes the table — 14 % of the database's CPU per step after 0019
-- (docs/performance.md) — while a domain's constraint is prepared once per session. The same
-- values are allowed; nothing else changes for the SQL that reads or writes them.
CREATE DOMAIN spine.workflow_status AS text
  CHECK (VALUE IN ('pending', 'running', 'waiting', 'completed', 'failed', 'compensated',
                   'cancelled', 'stuck', 'paused'));
CREATE DOMAIN spine.step_status AS text
  CHECK (VALUE IN ('completed', 'failed', 'waiting', 'retrying', 'cancelled', 'running',
                   'paused'));

ALTER TABLE spine.workflows DROP CONSTRAINT workflows_status_check,
  ALTER COLUMN status TYPE spine.workflow_status;
ALTER TABLE spine.steps DROP CONSTRAINT steps_status_check,
  ALTER COLUMN status TYPE spine.step_status;
