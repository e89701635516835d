-- What a workflow's row costs at its start and its end (issue 16; docs/performance.md).
--
-- The foreign key workflows.version -> playbook_versions ran a lookup through SPI and took a KEY
-- SHARE lock on the version's row at every insert: more database time than the insert itself.
-- A version is stored before any row names it (the engine's op stores it first, in the same
-- transaction; spine.start_workflow and the repairs insert it too), and versions are never
-- removed: the trigger below keeps it so, which is what the key guarded.
ALTER TABLE spine.workflows DROP CONSTRAINT workflows_version_fkey;

CREATE FUNCTION spine.playbook_versions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'spine.playbook_versions is append-only: workflows replay from these sources'
    USING ERRCODE = 'SPV01';
END $$;
CREATE TRIGGER playbook_versions_append_only BEFORE UPDATE OR DELETE ON spine.playbook_versions
  FOR EACH ROW EXECUTE FUNCTION spine.playbook_versions_append_only();

-- A workflow's rows are written densely at their start; room on the page lets its next version
-- (waiting, running again, ended) stay on the same page: one buffer, no extra lock record.
ALTER TABLE spine.workflows SET (fillfactor = 70);

-- Claimable = free with a wake-up. Ended workflows are free with none: each added an entry no
-- claim can find (every reader asks wake_at <= now or wake_at IS NOT NULL, which implies it),
-- and the index grew with the history instead of with the work to do.
DROP INDEX spine.workflows_claimable;
CREATE INDEX workflows_claimable ON spine.workflows (wake_at)
  WHERE owner IS NULL AND wake_at IS NOT NULL;
