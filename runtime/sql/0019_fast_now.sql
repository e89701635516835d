-- spine.now() and spine.clock_timestamp() as PL/pgSQL (issue 16): as SQL functions with a
-- sub-select they were never inlined, so PostgreSQL parsed, analysed and planned their body at
-- every call — half the database's CPU per step (docs/performance.md). PL/pgSQL keeps the plan
-- of its one query for the session. Same answers, same order: the transaction's virtual time
-- (spine.now_ms), else the manual clock, else real time.
CREATE OR REPLACE FUNCTION spine.now() RETURNS timestamptz LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  v text := current_setting('spine.now_ms', true);
  ms int8;
BEGIN
  IF v <> '' THEN
    RETURN to_timestamp(v::float8 / 1000);
  END IF;
  SELECT c.now_ms INTO ms FROM spine.clock c;
  RETURN coalesce(to_timestamp(ms::float8 / 1000), now());
END $$;

CREATE OR REPLACE FUNCTION spine.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v text := current_setting('spine.now_ms', true);
  ms int8;
BEGIN
  IF v <> '' THEN
    RETURN to_timestamp(v::float8 / 1000);
  END IF;
  SELECT c.now_ms INTO ms FROM spine.clock c;
  RETURN coalesce(to_timestamp(ms::float8 / 1000), clock_timestamp());
END $$;
