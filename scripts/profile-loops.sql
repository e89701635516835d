-- What one row's constraint and one key's collation cost the database (scripts/profile-bench
-- loops; docs/performance.md): 100,000 single-row INSERTs in a DO loop each, a variable as the
-- value (no constant folding), in unlogged tables of schema public, dropped at the end. Read
-- the ratios: the machine is shared. psql's \timing prints each loop's time.
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.loop_check, public.loop_domain, public.loop_key_default,
  public.loop_key_c;
DROP DOMAIN IF EXISTS public.loop_status;
CREATE DOMAIN public.loop_status AS text
  CHECK (VALUE IN ('completed', 'failed', 'waiting', 'retrying', 'cancelled', 'running', 'paused'));
-- a status as spine.steps had it before 0020 (a table CHECK), and as it has it now (a domain)
CREATE UNLOGGED TABLE public.loop_check (id bigserial, status text NOT NULL
  CHECK (status IN ('completed', 'failed', 'waiting', 'retrying', 'cancelled', 'running', 'paused')));
CREATE UNLOGGED TABLE public.loop_domain (id bigserial, status public.loop_status NOT NULL);
-- spine.steps' key (workflow_id text, seq), in the database's collation and in "C"
CREATE UNLOGGED TABLE public.loop_key_default (id text, seq int, PRIMARY KEY (id, seq));
CREATE UNLOGGED TABLE public.loop_key_c (id text COLLATE "C", seq int, PRIMARY KEY (id, seq));
\timing on
\echo status CHECK (table constraint)
DO $$ DECLARE s text; BEGIN FOR i IN 1..100000 LOOP
  s := CASE WHEN i % 2 = 0 THEN 'completed' ELSE 'failed' END;
  INSERT INTO public.loop_check (status) VALUES (s); END LOOP; END $$;
\echo status domain
DO $$ DECLARE s text; BEGIN FOR i IN 1..100000 LOOP
  s := CASE WHEN i % 2 = 0 THEN 'completed' ELSE 'failed' END;
  INSERT INTO public.loop_domain (status) VALUES (s); END LOOP; END $$;
\echo key (text, int) in the database collation
DO $$ DECLARE u text; BEGIN FOR i IN 1..10000 LOOP u := gen_random_uuid()::text;
  FOR j IN 1..10 LOOP INSERT INTO public.loop_key_default VALUES (u, j); END LOOP; END LOOP; END $$;
\echo key (text COLLATE "C", int)
DO $$ DECLARE u text; BEGIN FOR i IN 1..10000 LOOP u := gen_random_uuid()::text;
  FOR j IN 1..10 LOOP INSERT INTO public.loop_key_c VALUES (u, j); END LOOP; END LOOP; END $$;
\timing off
DROP TABLE public.loop_check, public.loop_domain, public.loop_key_default, public.loop_key_c;
DROP DOMAIN public.loop_status;
