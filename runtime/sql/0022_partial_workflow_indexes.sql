-- Index entries a workflow's row pays only when it needs them (issue 16): every workflow is written
-- at its start and at its end, and each write adds an entry to every index whose predicate holds.
-- Most workflows carry no idempotency key and no contract: their NULLs were indexed all the same,
-- two entries at the start and one at the end that no query can find (`= key` and `= contract`
-- never match NULL). The unique index keeps its meaning (NULLs never conflicted); ON CONFLICT
-- without a target still sees it; the lookups by key and by contract imply IS NOT NULL, so their
-- plans keep the indexes.
ALTER TABLE spine.workflows DROP CONSTRAINT workflows_idempotency_key_key;
CREATE UNIQUE INDEX workflows_idempotency_key ON spine.workflows (idempotency_key)
  WHERE idempotency_key IS NOT NULL;

DROP INDEX spine.workflows_by_contract;
CREATE INDEX workflows_by_contract
  ON spine.workflows ((coalesce(attributes ->> 'contract_id', input ->> 'contract_id')))
  WHERE ended_at IS NULL
    AND coalesce(attributes ->> 'contract_id', input ->> 'contract_id') IS NOT NULL;
