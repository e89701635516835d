-- Fenced claims. Every claim of a workflow bumps its epoch (a fencing token); every operation a
-- worker commits for a workflow first checks that owner and epoch are still the worker's own
-- (SPINE_SQL_FENCE), so a worker that lost its claim writes nothing for that workflow.
-- The check takes no lock: what keeps a check and the writes after it together is that a
-- workflow is freed only once every session of its previous owner has ended (WORKERS_REAP
-- waits for WORKERS_KILL's terminations), so no transaction of a former owner is still open
-- when another worker claims it.
ALTER TABLE spine.workflows ADD COLUMN epoch bigint NOT NULL DEFAULT 0,
  -- times the workflow was running when its worker died or hung: a poison pill is failed after
  -- a few (reset by `spine retry`)
  ADD COLUMN lost_runs int NOT NULL DEFAULT 0;

-- Whoever reaps a dead or hung worker ends its database sessions first (a stopped process
-- keeps a half-sent pipeline's transaction, and its row locks, open for as long as it sleeps):
-- the server pids of its connections, opened before it registered.
ALTER TABLE spine.workers ADD COLUMN backends int[] NOT NULL DEFAULT '{}',
  ADD COLUMN registered_at timestamptz NOT NULL DEFAULT clock_timestamp();

-- Raised by the fence (SPINE_SQL_FENCE) when the claim is no longer the caller's.
CREATE FUNCTION spine.lost_claim(wf text, w bigint, e bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'workflow % is no longer claimed by worker % (claim %)', wf, w, e
    USING ERRCODE = 'SPLC0';
END $$;

-- A worker is dead when its lease ran out (hung, paused, cut off) or its session's advisory
-- lock is gone (its process died).
CREATE FUNCTION spine.worker_dead(k spine.workers) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT k.lease_until < now() OR NOT EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 7780
    AND l.objid::int8 = k.id AND l.objsubid = 2 AND l.granted)
$$;

-- Whether any session a worker opened before it registered is still in the server (a dying
-- one included: its transaction may still commit). Read from the transaction's snapshot of the
-- server's activity, so sessions ended by this transaction's own WORKERS_KILL show up gone in
-- the next heartbeat's.
CREATE FUNCTION spine.worker_sessions(k spine.workers) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = ANY (k.backends)
                 AND a.backend_start <= k.registered_at)
$$;
