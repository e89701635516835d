#!/usr/bin/env python3
"""The database's cost of one step's statements and of their variants (scripts/profile-bench
micro; docs/performance.md).

  profile-micro.py ADMIN_CONNINFO WORKDIR [SECONDS]

Each variant is a pgbench script of 100 copies of one statement in one pipeline (one Sync: one
implicit transaction, as the engine's store sends a batch), or of one merged statement of 100
rows, prepared (-M prepared), one client, for SECONDS (default 3); the figure is microseconds
per statement (per row for the merged ones) = 1e6 / (tps * 100), best of two runs. One client on one backend: what it measures is mostly that backend's CPU. The tables
are copies in schema public (WAL-logged, as the real ones), dropped at the end.
"""
import os
import subprocess
import sys

PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
admin, work = sys.argv[1], sys.argv[2]
seconds = sys.argv[3] if len(sys.argv) > 3 else "3"

SETUP = """
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.prof_steps, public.prof_steps_lean, public.prof_steps_pl,
  public.prof_raw, public.prof_wf, public.prof_steps_v4, public.prof_steps_v7, public.prof_wf_fk,
  public.prof_wf_lean, public.prof_versions, public.prof_credits, public.prof_manifests;
DROP FUNCTION IF EXISTS public.prof_now_pl();
-- spine.now()'s body, as PL/pgSQL (whose plans are cached per session) instead of SQL
CREATE FUNCTION public.prof_now_pl() RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN coalesce(to_timestamp(nullif(current_setting('spine.now_ms', true), '')::float8 / 1000),
                  (SELECT to_timestamp(c.now_ms::float8 / 1000) FROM spine.clock c), now());
END $$;
-- spine.steps as it is: its defaults call spine.now(), its CHECK constraint on status
CREATE TABLE public.prof_steps (LIKE spine.steps INCLUDING ALL);
-- the same, started_at's default by the PL/pgSQL copy
CREATE TABLE public.prof_steps_pl (LIKE spine.steps INCLUDING ALL);
ALTER TABLE public.prof_steps_pl ALTER COLUMN started_at SET DEFAULT public.prof_now_pl();
-- the same without the CHECK constraint and without a default that calls a function
CREATE TABLE public.prof_steps_lean (LIKE spine.steps INCLUDING INDEXES);
-- the row raw-pg writes (rawpg.c)
CREATE TABLE public.prof_raw (wf bigint, seq int, output jsonb NOT NULL, PRIMARY KEY (wf, seq));
-- a fence target: a row of spine.workflows' shape, owned
CREATE TABLE public.prof_wf (LIKE spine.workflows INCLUDING ALL);
INSERT INTO public.prof_wf (id, process, playbook, version, status, trace_id, owner, epoch)
VALUES ('wf-prof', 'p', 'p', 'v', 'running', 't', 7, 3);
-- spine.steps with a history of 1,000,000 rows, keyed by random ids (version 4) and by ids in
-- time order (as version 7: the wall clock's milliseconds first)
CREATE TABLE public.prof_steps_v4 (LIKE spine.steps INCLUDING ALL);
CREATE TABLE public.prof_steps_v7 (LIKE spine.steps INCLUDING ALL);
INSERT INTO public.prof_steps_v4 (workflow_id, seq, kind, name, status, result, attempt)
SELECT gen_random_uuid()::text, s, 'step', 's', 'completed', '3', 1
FROM generate_series(1, 100000) w, generate_series(1, 10) s;
INSERT INTO public.prof_steps_v7 (workflow_id, seq, kind, name, status, result, attempt)
SELECT (lpad(to_hex(1700000000000 + w), 12, '0') || substr(md5(w::text), 1, 20))::uuid::text, s,
  'step', 's', 'completed', '3', 1
FROM generate_series(1, 100000) w, generate_series(1, 10) s;
-- spine.workflows before migration 0024 (the foreign key to a copy of playbook_versions, a
-- claimable index with the ended workflows, fillfactor 100) and after it
CREATE TABLE public.prof_versions (LIKE spine.playbook_versions INCLUDING ALL);
INSERT INTO public.prof_versions (hash, name, path, source) VALUES ('v', 'p', 'p.lua', '');
CREATE TABLE public.prof_wf_fk (LIKE spine.workflows INCLUDING ALL);
ALTER TABLE public.prof_wf_fk ADD FOREIGN KEY (version) REFERENCES public.prof_versions (hash);
CREATE INDEX ON public.prof_wf_fk (wake_at) WHERE owner IS NULL;
CREATE TABLE public.prof_wf_lean (LIKE spine.workflows INCLUDING ALL);
ALTER TABLE public.prof_wf_lean SET (fillfactor = 70);
-- a customer's ledger of 20,000 credits (lifecycle.credits' shape and indexes, 1010's included)
CREATE TABLE public.prof_credits (LIKE lifecycle.credits INCLUDING INDEXES INCLUDING DEFAULTS);
INSERT INTO public.prof_credits (customer_id, credit_id, amount_cents, currency, balance_cents,
  reason, actor) SELECT 'cu-prof', 'cr-' || g, 1, 'EUR', g, 'r', 'a' FROM generate_series(1, 20000) g;
-- 20 manifests of ~2 KB, none listing the event in on_events (spine.manifests' shape, 0025's
-- generated column included)
CREATE TABLE public.prof_manifests (LIKE spine.manifests INCLUDING ALL INCLUDING GENERATED);
INSERT INTO public.prof_manifests (process, path, hash, body, load_id)
SELECT 'p' || g, 'p.json', 'h', jsonb_build_object('process', 'p' || g, 'on_events',
  jsonb_build_array('Other' || g), 'variants', (SELECT jsonb_agg(jsonb_build_object('name',
  'v' || k, 'playbook', 'playbooks/p.lua', 'weight', k)) FROM generate_series(1, 30) k))::text, 1
FROM generate_series(1, 20) g;
ANALYZE public.prof_steps_v4, public.prof_steps_v7, public.prof_credits, public.prof_manifests;
"""
TEARDOWN = """DROP TABLE public.prof_steps, public.prof_steps_lean, public.prof_steps_pl,
  public.prof_raw, public.prof_wf, public.prof_steps_v4, public.prof_steps_v7, public.prof_wf_fk,
  public.prof_wf_lean, public.prof_versions, public.prof_credits, public.prof_manifests;
  DROP FUNCTION public.prof_now_pl();"""

COLS = "(workflow_id, seq, kind, name, status, result, error, attempt, ended_at, branch, branch_seq)"
COLS_T = ("(workflow_id, seq, kind, name, status, result, error, attempt, started_at, ended_at,"
          " branch, branch_seq)")
T = "to_timestamp(:t::float8 / 1000)"  # the worker's clock as a parameter (ms)
# The merged forms (runtime/store/merge.c): one statement of 100 rows, the arrays built from a
# series as the store builds them from its ops; the figure is per row all the same.
MERGED_ROWS = ("unnest(array_fill(:w || '-wf'::text, ARRAY[100]), (SELECT array_agg(g) FROM"
               " generate_series(1, 100) g), array_fill('step'::text, ARRAY[100]),"
               " array_fill('s'::text, ARRAY[100]), array_fill('completed'::text, ARRAY[100]),"
               " array_fill('3'::jsonb, ARRAY[100]), array_fill(NULL::jsonb, ARRAY[100]),"
               " array_fill(1, ARRAY[100]), array_fill(NULL::text, ARRAY[100]), (SELECT"
               " array_agg(g) FROM generate_series(1, 100) g), array_fill(:t::int8, ARRAY[100]))"
               " AS v(w, s, k, n, st, r, e, a, b, bs, t)")
MERGED_INSERT = ("INSERT INTO public.prof_steps " + COLS_T + " SELECT v.w, v.s, v.k, v.n, v.st,"
                 " v.r, v.e, v.a, to_timestamp(v.t::float8 / 1000), to_timestamp(v.t::float8 /"
                 " 1000), v.b, v.bs FROM ")


MERGED_PLAIN = MERGED_INSERT + MERGED_ROWS + ";"
MERGED_FENCED = ("WITH v AS (SELECT * FROM " + MERGED_ROWS + "), i AS (" + MERGED_INSERT +
                 "v JOIN public.prof_wf f ON f.id = 'wf-prof' AND f.owner IS NOT DISTINCT FROM 7"
                 " AND f.epoch = :e RETURNING 1) SELECT CASE WHEN (SELECT count(*) FROM i) <> 100"
                 " THEN spine.lost_claims(1) END;")

# 100 new ids a statement: random, or in time order (the clock's milliseconds, then random)
IDS_V4 = "(SELECT array_agg(md5(:w::text || g)::uuid::text) FROM generate_series(1, 100) g)"
IDS_V7 = ("(SELECT array_agg((lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::int8),"
          " 12, '0') || substr(md5(:w::text || g), 1, 20))::uuid::text) FROM generate_series(1,"
          " 100) g)")


def merged_ids(table, ids):
    """MERGED_PLAIN into `table`, the workflow ids `ids` (one step each)."""
    rows = MERGED_ROWS.replace("array_fill(:w || '-wf'::text, ARRAY[100])", ids)
    rows = rows.replace("(SELECT array_agg(g) FROM generate_series(1, 100) g), array_fill('step'",
                        "array_fill(1, ARRAY[100]), array_fill('step'", 1)
    return MERGED_INSERT.replace("public.prof_steps", table) + rows + ";"


def lifecycle(table, conflict):
    """100 workflows inserted as WF_INSERT_MANY does, then ended as FENCE_MANY and WF_END_MANY
    do; their ids are made first (\\gset), outside the pipeline."""
    return ("SELECT " + IDS_V7 + "::text AS ids \\gset\n\\startpipeline\n"
            "INSERT INTO public." + table + " (id, process, playbook, version, status, input,"
            " trace_id, owner, epoch, created_at, updated_at) SELECT v.id, 'p', 'p', 'v',"
            " 'running', '{}', 't', 7, 0, to_timestamp(:t::float8 / 1000), to_timestamp(:t::float8"
            " / 1000) FROM unnest(:ids::text[]) AS v(id)" + conflict + ";\n"
            "SELECT CASE WHEN l.n > 0 THEN spine.lost_claims(l.n) END FROM (SELECT 100 - count(*)"
            " AS n FROM unnest(:ids::text[]) AS v(id) JOIN public." + table + " f ON f.id = v.id"
            " AND f.owner IS NOT DISTINCT FROM 7 AND f.epoch = 0) l;\n"
            "UPDATE public." + table + " w SET status = 'completed', result = 'true', owner = NULL,"
            " wake_at = NULL, waiting_for = NULL, updated_at = to_timestamp(:t::float8 / 1000),"
            " ended_at = to_timestamp(:t::float8 / 1000) FROM unnest(:ids::text[]) AS v(id)"
            " WHERE w.id = v.id AND w.owner IS NOT DISTINCT FROM 7;\n\\endpipeline")


ONCE = {"step_done_fenced_merged", "step_done_merged", "step_done_merged_v4_ids",
        "step_done_merged_v7_ids", "workflow_before_0024", "workflow_after_0024"}
# one statement of 100 rows (a workflow's: three), not 100
LIFECYCLE = {"workflow_before_0024", "workflow_after_0024"}

VARIANTS = [
    ("select_1", "SELECT 1;", "a trivial statement: the protocol's and executor's floor"),
    ("spine_now", "SELECT spine.now();", "spine.now(): a SQL function with a sub-select"),
    ("spine_now_plpgsql", "SELECT public.prof_now_pl();", "its body as PL/pgSQL"),
    ("fence", "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM public.prof_wf WHERE id = 'wf-prof'"
     " AND owner = 7 AND epoch = :e) THEN spine.lost_claim('wf-prof', 7, :e) END;",
     "spine_FENCE"),
    ("raw_insert", "INSERT INTO public.prof_raw (wf, seq, output) VALUES (:w, {i},"
     " '{{\"step\": 1, \"ok\": true}}');", "rawpg.c's step"),
    ("step_done", "INSERT INTO public.prof_steps " + COLS + " VALUES (:w || '-wf', {i}, 'step',"
     " 's', 'completed', '3', NULL, 1, spine.now(), NULL, {i});",
     "spine_STEP_DONE as it is (spine.now() twice: ended_at, started_at's default)"),
    ("step_done_plpgsql_now", "INSERT INTO public.prof_steps_pl " + COLS + " VALUES (:w || '-wf',"
     " {i}, 'step', 's', 'completed', '3', NULL, 1, public.prof_now_pl(), NULL, {i});",
     "the same with spine.now() as PL/pgSQL"),
    ("step_done_time_param", "INSERT INTO public.prof_steps " + COLS_T + " VALUES (:w || '-wf',"
     " {i}, 'step', 's', 'completed', '3', NULL, 1, " + T + ", " + T + ", NULL, {i});",
     "the same with the time a parameter"),
    ("step_done_fenced", "INSERT INTO public.prof_steps " + COLS_T + " SELECT :w || '-wf', {i},"
     " 'step', 's', 'completed', '3'::jsonb, NULL, 1, " + T + ", " + T + ", NULL, {i} WHERE CASE"
     " WHEN EXISTS (SELECT 1 FROM public.prof_wf WHERE id = 'wf-prof' AND owner IS NOT DISTINCT"
     " FROM 7 AND epoch = :e) THEN true ELSE (SELECT false FROM spine.lost_claim('wf-prof', 7,"
     " :e)) END;", "spine_STEP_DONE_FENCED: the step's row with its claim check, one a step"),
    ("step_done_fenced_merged", MERGED_FENCED,
     "spine_STEP_DONE_FENCED_MANY: 100 steps' rows in one statement over arrays, per row"),
    ("step_done_merged", MERGED_PLAIN,
     "spine_STEP_DONE_MANY: the same without the claim check, per row"),
    ("step_done_merged_v4_ids", merged_ids("public.prof_steps_v4", IDS_V4),
     "spine_STEP_DONE_MANY into 1,000,000 steps' rows, random workflow ids (version 4), per row"),
    ("step_done_merged_v7_ids", merged_ids("public.prof_steps_v7", IDS_V7),
     "... ids in time order (version 7, spine_uuid_ordered), per row"),
    ("workflow_before_0024", lifecycle("prof_wf_fk", " ON CONFLICT DO NOTHING"),
     "a workflow's row inserted and ended (100 a statement), before migration 0024, per workflow"),
    ("workflow_after_0024", lifecycle("prof_wf_lean", ""),
     "... after it: no foreign key, a plain INSERT, fillfactor 70, claimable without the ended"),
    ("credit_balance_sum", "SELECT sum(amount_cents) FROM public.prof_credits WHERE customer_id ="
     " 'cu-prof' AND currency = 'EUR';",
     "ApplyManualCredit's balance before 1010: the sum of a 20,000-credit ledger"),
    ("credit_balance_max", "SELECT max(balance_cents) FROM public.prof_credits WHERE customer_id ="
     " 'cu-prof' AND currency = 'EUR';", "... after it: the greatest entry (credits_balance)"),
    ("fan_out_parse_manifests", "SELECT EXISTS (SELECT 1 FROM public.prof_manifests m WHERE"
     " m.body::jsonb -> 'on_events' ? 'CreditApplied');",
     "outbox_fan_out's on_events test before 0025, per event (20 manifests of ~2 KB)"),
    ("fan_out_on_events", "SELECT EXISTS (SELECT 1 FROM public.prof_manifests m WHERE"
     " m.on_events ? 'CreditApplied');", "... after it: the stored column"),
    ("step_done_time_param_no_check", "INSERT INTO public.prof_steps_lean " + COLS_T +
     " VALUES (:w || '-wf', {i}, 'step', 's', 'completed', '3', NULL, 1, " + T + ", " + T +
     ", NULL, {i});", "... and no CHECK constraint"),
]


def psql(sql):
    r = subprocess.run([f"{PGBIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", admin, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"psql: {r.stderr.strip()}")


psql(SETUP)
try:
    print(f"{'variant':32} {'us/stmt':>8}  what")
    for name, stmt, what in VARIANTS:
        path = f"{work}/{name}.pgbench"
        with open(path, "w") as f:
            f.write("\\set w random(1, 2000000000)\n\\set t 1765000000000\n\\set e 3\n")
            if name in LIFECYCLE:  # its own pipeline, after its ids
                f.write(stmt + "\n")
            else:
                f.write("\\startpipeline\n")
                for i in range(1 if name in ONCE else 100):
                    f.write((stmt if name in ONCE else stmt.format(i=i)) + "\n")
                f.write("\\endpipeline\n")
        best = None
        for _ in range(2):
            r = subprocess.run([f"{PGBIN}/pgbench", "-n", "-M", "prepared", "-c", "1", "-T",
                                seconds, "-f", path, admin], capture_output=True, text=True)
            tps = [float(l.split()[2]) for l in r.stdout.split("\n") if l.startswith("tps")]
            if not tps:
                sys.exit(f"pgbench {name}: {r.stderr.strip()}")
            us = 1e6 / (tps[0] * 100)
            best = us if best is None else min(best, us)
        print(f"{name:32} {best:>8.2f}  {what}")
finally:
    psql(TEARDOWN)
