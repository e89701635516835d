-- Fenced claims. Every claim of a workflow bumps its epoch (a fencing token); every operation a
-- worker commits for a workflow first locks its row and checks that owner and epoch are still
-- the worker's own (spine.fence), so a worker that lost its claim (paused past its lease, cut
-- off from the database) writes nothing for that workflow: the lock is held to the commit, so
-- no claim can change hands between the check and the writes.
ALTER TABLE spine.workflows ADD COLUMN epoch bigint NOT NULL DEFAULT 0,
  -- times the workflow was running when its worker died or hung: a poison pill is failed after
  -- a few (reset by `spine retry`)
  ADD COLUMN lost_runs int NOT NULL DEFAULT 0;

-- Whoever reaps a dead or hung worker ends its database sessions first (a stopped process
-- keeps a half-sent pipeline's transaction, and its row locks, open for as long as it sleeps):
-- the server pids of its connections, opened before it registered.
ALTER TABLE spine.workers ADD COLUMN backends int[] NOT NULL DEFAULT '{}',
  ADD COLUMN registered_at timestamptz NOT NULL DEFAULT clock_timestamp();

CREATE FUNCTION spine.fence(wf text, w bigint, e bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM spine.workflows WHERE id = wf AND owner = w AND epoch = e FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'workflow % is no longer claimed by worker % (claim %)', wf, w, e
      USING ERRCODE = 'SPLC0';
  END IF;
END $$;

-- A worker is dead when its lease ran out (hung, paused, cut off) or its session's advisory
-- lock is gone (its process died).
CREATE FUNCTION spine.worker_dead(k spine.workers) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT k.lease_until < now() OR NOT EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 7780
    AND l.objid::int8 = k.id AND l.objsubid = 2 AND l.granted)
$$;
