-- Virtual time in the database (issue 15): `spine run --clock virtual` jumps its clock from
-- deadline to deadline, and its steps, signals, intents and history must carry that time, not
-- the real one, or `spine show` and `spine explain` tell a 14-day wait as milliseconds. Its
-- operations set spine.now_ms for their transaction (set_config(..., true): it goes with the
-- transaction, so no other process and no later transaction sees it); now() reads it before a
-- manual clock, then real time.
CREATE OR REPLACE FUNCTION spine.now() RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(to_timestamp(nullif(current_setting('spine.now_ms', true), '')::float8 / 1000),
                  (SELECT to_timestamp(c.now_ms::float8 / 1000) FROM spine.clock c), now())
$$;

CREATE OR REPLACE FUNCTION spine.clock_timestamp() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
  SELECT coalesce(to_timestamp(nullif(current_setting('spine.now_ms', true), '')::float8 / 1000),
                  (SELECT to_timestamp(c.now_ms::float8 / 1000) FROM spine.clock c),
                  clock_timestamp())
$$;
