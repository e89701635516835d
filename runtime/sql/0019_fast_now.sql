-- spine.now() and spine.clock_timestamp() without a sub-select (issue 16): as SQL functions
-- with one they were never inlined, so PostgreSQL parsed, analysed and planned their body at
-- every call — half the database's CPU per step (docs/performance.md). What they share, the
-- time a clock other than the real one says, is PL/pgSQL, which keeps the plan of its one query
-- for the session; the two are one-expression SQL functions around it, which PostgreSQL inlines.
-- Same answers, same order: the transaction's virtual time (spine.now_ms), else the manual
-- clock, else real time.
CREATE FUNCTION spine.clock_override() RETURNS timestamptz LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
  v text := current_setting('spine.now_ms', true);
  ms int8;
BEGIN
  IF v <> '' THEN
    RETURN to_timestamp(v::float8 / 1000);
  END IF;
  SELECT c.now_ms INTO ms FROM spine.clock c;
  RETURN to_timestamp(ms::float8 / 1000); -- NULL without a manual clock
END $$;

CREATE OR REPLACE FUNCTION spine.now() RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(spine.clock_override(), now())
$$;

CREATE OR REPLACE FUNCTION spine.clock_timestamp() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
  SELECT coalesce(spine.clock_override(), clock_timestamp())
$$;
