/* The store against a real database: group commit, failure isolation, results. */
#include <uv.h>

#include "migrate.h"
#include "store.h"
#include "test.h"

#define NOPS 200

typedef struct probe {
  spine_op op;
  int done;
  int status;
  int rows;
  char value[32];  /* statement 0's one row's first value, read in the callback as results are */
  char value2[32]; /* statement 1's, if it has one */
} probe;

static int finished;

static void on_done(spine_op *op) {
  probe *p = op->data;
  p->done++;
  p->status = op->status;
  PGresult *r = spine_op_result(op, 0);
  p->rows = r ? PQntuples(r) : -1;
  const PGresult *one;
  int row = spine_op_row(op, 0, &one); /* a merged statement's row is lent: valid only here */
  snprintf(p->value, sizeof p->value, "%s", row >= 0 ? PQgetvalue(one, row, 0) : "(no row)");
  row = op->nstmts > 1 ? spine_op_row(op, 1, &one) : -1;
  snprintf(p->value2, sizeof p->value2, "%s", row >= 0 ? PQgetvalue(one, row, 0) : "(no row)");
  finished++;
}

static void exec(const char *conninfo, const char *sql) {
  PGconn *c = PQconnectdb(conninfo);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    TEST_FAIL_("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
}

static long long count(const char *conninfo, const char *sql) {
  PGconn *c = PQconnectdb(conninfo);
  PGresult *r = PQexec(c, sql);
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  long long n = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return n;
}

TEST_IMPL(store_group_commit) {
  const char *db = test_newdb("store_group_commit");
  exec(db, "CREATE TABLE t (k int PRIMARY KEY)");
  PGconn *c = PQconnectdb(db);
  spine_err me;
  ASSERT_EQ(spine_migrate(c, NULL, &me), 0); /* the pool prepares the engine's statements */
  PQfinish(c);
  int ins = spine_store_statement("INSERT INTO t (k) VALUES ($1) RETURNING k");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_store *s;
  spine_err e;
  ASSERT_EQ(spine_store_open(&loop, db, 2, &s, &e), 0);

  static probe p[NOPS];
  finished = 0;
  for (int i = 0; i < NOPS; i++) {
    spine_op_init(&p[i].op);
    p[i].op.cb = on_done;
    p[i].op.data = &p[i];
    spine_op_stmt(&p[i].op, ins, 1);
    /* op 57 collides with op 56: it alone must fail, every other op commits; op 0 carries a
     * negative key (integers are formatted by hand) */
    spine_op_param_int(&p[i].op, i == 57 ? 56 : i == 0 ? -1234567 : i);
    spine_store_submit(s, &p[i].op);
  }
  while (finished < NOPS)
    uv_run(&loop, UV_RUN_ONCE);

  for (int i = 0; i < NOPS; i++) {
    ASSERT_EQ(p[i].done, 1);
    if (i == 57) {
      ASSERT_EQ(p[i].status, SPINE_ECONFLICT);
      ASSERT_STR_EQ(p[i].op.sqlstate, "23505");
    } else {
      ASSERT_EQ(p[i].status, 0);
      ASSERT_EQ(p[i].rows, 1);
    }
  }
  const spine_store_stats *st = spine_store_stats_get(s);
  /* group commit: far fewer transactions than operations */
  ASSERT_LT(st->batches, NOPS / 4);
  ASSERT_GT(st->retries, 0);
  ASSERT_EQ(count(db, "SELECT count(*) FROM t"), NOPS - 1);
  ASSERT_EQ(count(db, "SELECT sum(k) FROM t"), (NOPS - 1) * NOPS / 2 - 57 - 1234567);

  for (int i = 0; i < NOPS; i++)
    spine_op_free(&p[i].op);
  spine_store_close(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(store_classify) {
  const char *db = test_newdb("store_classify");
  PGconn *c = PQconnectdb(db);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  spine_err e;
  PGresult *r = PQexec(c, "DO $$ BEGIN RAISE EXCEPTION 'contract c-1 is active' USING ERRCODE ="
                          " 'SPIT0'; END $$");
  ASSERT_EQ(spine_store_classify(r, &e), SPINE_ETRANSITION);
  ASSERT_STR_EQ(e.msg, "contract c-1 is active");
  PQclear(r);
  r = PQexec(c, "SELECT 1/0");
  ASSERT_EQ(spine_store_classify(r, &e), SPINE_EREJECTED);
  PQclear(r);
  r = PQexec(c, "SELECT pg_sleep(1) FROM nonexistent");
  ASSERT_EQ(spine_store_classify(r, &e), SPINE_EDB);
  PQclear(r);
  PQfinish(c);
  return 0;
}

/* Ops of the same shape in one batch go merged (merge.h): one statement over arrays for the
 * steps of 300 workflows, another for their ends, for new workflows' rows. Values with the
 * characters an array literal quotes come back as they went; an op whose claim moved on (one in
 * each round) gets its own SPLC0, and every other op of its batch commits. */
#define NWF       300
#define LOST_STEP 123
#define LOST_END  77
#define NNEW      50

static void submit_all(spine_store *s, uv_loop_t *loop, probe *p, int n) {
  finished = 0;
  for (int i = 0; i < n; i++) {
    p[i].done = 0;
    p[i].op.cb = on_done;
    p[i].op.data = &p[i];
    spine_store_submit(s, &p[i].op);
  }
  while (finished < n)
    uv_run(loop, UV_RUN_ONCE);
}

TEST_IMPL(store_merges_statements) {
  const char *db = test_newdb("store_merges_statements");
  PGconn *c = PQconnectdb(db);
  spine_err me;
  ASSERT_EQ(spine_migrate(c, NULL, &me), 0);
  PQfinish(c);
  exec(db, "INSERT INTO spine.playbook_versions (hash, name, path, source)"
           " VALUES ('h', 'p', 'p.lua', 'return {}')");
  exec(db, "INSERT INTO spine.workflows (id, process, playbook, version, status, trace_id, owner,"
           " epoch) SELECT 'wf-' || g, 'p', 'p', 'h', 'running', 't', 7, 3"
           " FROM generate_series(0, 299) g");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_store *s;
  spine_err e;
  ASSERT_EQ(spine_store_open(&loop, db, 2, &s, &e), 0);
  static probe p[NWF];
  static const char *result = "{\"s\": \"q\\\"b\\\\c,{x} NULL\", \"u\": \"\xc3\xa9\"}";
  char id[32];

  /* a step each: STEP_DONE_FENCED; one of an older claim */
  for (int i = 0; i < NWF; i++) {
    spine_op_init(&p[i].op);
    snprintf(id, sizeof id, "wf-%d", i);
    spine_op_stmt(&p[i].op, SPINE_SQL_STEP_DONE_FENCED, 0);
    spine_op_param(&p[i].op, id);
    spine_op_param_int(&p[i].op, 1);
    spine_op_param(&p[i].op, "step");
    spine_op_param(&p[i].op, "a,\"b\"");
    spine_op_param(&p[i].op, "completed");
    spine_op_param(&p[i].op, result);
    spine_op_param(&p[i].op, NULL);
    spine_op_param_int(&p[i].op, 1);
    spine_op_param(&p[i].op, NULL);
    spine_op_param_int(&p[i].op, 1);
    spine_op_param_int(&p[i].op, 1765100000000);
    spine_op_param_int(&p[i].op, 7);
    spine_op_param_int(&p[i].op, i == LOST_STEP ? 2 : 3);
  }
  submit_all(s, &loop, p, NWF);
  for (int i = 0; i < NWF; i++)
    ASSERT_EQ(p[i].status, i == LOST_STEP ? SPINE_ELOST : 0);
  ASSERT_GT(spine_store_stats_get(s)->merged, NWF / 2);
  ASSERT_EQ(count(db, "SELECT count(*) FROM spine.steps"), NWF - 1);
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM spine.steps WHERE result = '%s'::jsonb AND name = 'a,\"b\"'"
           " AND error IS NULL AND branch IS NULL AND ended_at = to_timestamp(1765100000)",
           "{\"s\": \"q\\\"b\\\\c,{x} NULL\", \"u\": \"\xc3\xa9\"}");
  ASSERT_EQ(count(db, sql), NWF - 1);

  /* their ends: FENCE then WF_END; one of another worker */
  for (int i = 0; i < NWF; i++) {
    spine_op_reset(&p[i].op);
    snprintf(id, sizeof id, "wf-%d", i);
    spine_op_stmt(&p[i].op, SPINE_SQL_FENCE, 0);
    spine_op_param(&p[i].op, id);
    spine_op_param_int(&p[i].op, i == LOST_END ? 8 : 7);
    spine_op_param_int(&p[i].op, 3);
    spine_op_stmt(&p[i].op, SPINE_SQL_WF_END, 0);
    spine_op_param(&p[i].op, id);
    spine_op_param(&p[i].op, "completed");
    spine_op_param(&p[i].op, result);
    spine_op_param(&p[i].op, NULL);
    spine_op_param_int(&p[i].op, 7);
    spine_op_param_int(&p[i].op, 1765100001000);
  }
  uint64_t merged = spine_store_stats_get(s)->merged;
  submit_all(s, &loop, p, NWF);
  for (int i = 0; i < NWF; i++)
    ASSERT_EQ(p[i].status, i == LOST_END ? SPINE_ELOST : 0);
  ASSERT_GT(spine_store_stats_get(s)->merged, merged + NWF / 2);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM spine.workflows WHERE status = 'completed' AND owner IS NULL"
           " AND result = '%s'::jsonb AND ended_at = to_timestamp(1765100001)",
           "{\"s\": \"q\\\"b\\\\c,{x} NULL\", \"u\": \"\xc3\xa9\"}");
  ASSERT_EQ(count(db, sql), NWF - 1);
  ASSERT_EQ(count(db, "SELECT count(*) FROM spine.workflows WHERE id = 'wf-77' AND owner = 7"
                      " AND status = 'running'"),
            1);

  /* new workflows with their first step: WF_INSERT then STEP_DONE */
  for (int i = 0; i < NNEW; i++) {
    spine_op_reset(&p[i].op);
    snprintf(id, sizeof id, "new-%d", i);
    spine_op_stmt(&p[i].op, SPINE_SQL_WF_INSERT, 0);
    spine_op_param(&p[i].op, id);
    spine_op_param(&p[i].op, "p");
    spine_op_param(&p[i].op, "p");
    spine_op_param(&p[i].op, "h");
    spine_op_param(&p[i].op, result);
    spine_op_param(&p[i].op, "trace \\ \"x\"");
    spine_op_param_int(&p[i].op, 7);
    for (int k = 0; k < 8; k++) /* parent, its step, variant … max_duration */
      spine_op_param(&p[i].op, k == 2 ? "v{1}" : NULL);
    spine_op_param_int(&p[i].op, 1765100002000);
    spine_op_param(&p[i].op, NULL);
    spine_op_stmt(&p[i].op, SPINE_SQL_STEP_DONE, 0);
    spine_op_param(&p[i].op, id);
    spine_op_param_int(&p[i].op, 1);
    spine_op_param(&p[i].op, "step");
    spine_op_param(&p[i].op, "first");
    spine_op_param(&p[i].op, "completed");
    spine_op_param(&p[i].op, "2");
    spine_op_param(&p[i].op, NULL);
    spine_op_param_int(&p[i].op, 1);
    spine_op_param(&p[i].op, NULL);
    spine_op_param_int(&p[i].op, 1);
    spine_op_param_int(&p[i].op, 1765100002000);
  }
  submit_all(s, &loop, p, NNEW);
  for (int i = 0; i < NNEW; i++)
    ASSERT_EQ(p[i].status, 0);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM spine.workflows w JOIN spine.steps s ON s.workflow_id = w.id"
           " WHERE w.id LIKE 'new-%%' AND w.input = '%s'::jsonb AND w.trace_id = 'trace \\ \"x\"'"
           " AND w.variant = 'v{1}' AND w.parent_id IS NULL AND w.deadline_at IS NULL"
           " AND w.created_at = to_timestamp(1765100002) AND s.result = '2'",
           "{\"s\": \"q\\\"b\\\\c,{x} NULL\", \"u\": \"\xc3\xa9\"}");
  ASSERT_EQ(count(db, sql), NNEW);

  for (int i = 0; i < NWF; i++)
    spine_op_free(&p[i].op);
  spine_store_close(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return 0;
}

/* A merged form that answers rows (spine_store_statement_merged): each op gets its own row as its
 * statement's result, as the single form would have answered it; one op whose value the
 * database refuses fails alone (the batch went again one by one) and the others get theirs. */
#define NROWS   120
#define BAD_ROW 41

TEST_IMPL(store_merged_rows_reach_their_ops) {
  const char *db = test_newdb("store_merged_rows");
  PGconn *c = PQconnectdb(db);
  spine_err me;
  ASSERT_EQ(spine_migrate(c, NULL, &me), 0);
  PQfinish(c);
  int twice = spine_store_statement("SELECT ($1::int * 2)::text AS v");
  spine_store_statement_merged(twice, "SELECT (x::int * 2)::text AS v, ord FROM"
                                      " unnest($1::text[]) WITH ORDINALITY AS u(x, ord)");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_store *s;
  spine_err e;
  ASSERT_EQ(spine_store_open(&loop, db, 2, &s, &e), 0);
  static probe p[NROWS];
  for (int i = 0; i < NROWS; i++) {
    spine_op_init(&p[i].op);
    spine_op_stmt(&p[i].op, twice, 1);
    if (i == BAD_ROW)
      spine_op_param(&p[i].op, "forty-one");
    else
      spine_op_param_int(&p[i].op, 1000 + i);
  }
  submit_all(s, &loop, p, NROWS);
  ASSERT_GT(spine_store_stats_get(s)->merged, NROWS / 2);
  for (int i = 0; i < NROWS; i++) {
    ASSERT_EQ(p[i].done, 1);
    if (i == BAD_ROW) {
      ASSERT_EQ(p[i].status, SPINE_EREJECTED);
      continue;
    }
    ASSERT_EQ(p[i].status, 0);
    char want[16];
    snprintf(want, sizeof want, "%d", 2 * (1000 + i));
    ASSERT_STR_EQ(p[i].value, want);
  }
  /* and merged again when nothing fails: every op its own row */
  for (int i = 0; i < NROWS; i++) {
    spine_op_reset(&p[i].op);
    spine_op_stmt(&p[i].op, twice, 1);
    spine_op_param_int(&p[i].op, -i);
  }
  uint64_t merged = spine_store_stats_get(s)->merged;
  submit_all(s, &loop, p, NROWS);
  ASSERT_GT(spine_store_stats_get(s)->merged, merged + NROWS / 2);
  int lent = 0;
  for (int i = 0; i < NROWS; i++) {
    ASSERT_EQ(p[i].status, 0);
    char want[16];
    snprintf(want, sizeof want, "%d", -2 * i);
    ASSERT_STR_EQ(p[i].value, want);
    lent += p[i].rows == -1; /* a row of the merged answer, no result of its own */
  }
  ASSERT_GT(lent, NROWS / 2);
  /* two such statements in one op: the first's row is lent, the second's a copy of its own */
  for (int i = 0; i < NROWS; i++) {
    spine_op_reset(&p[i].op);
    spine_op_stmt(&p[i].op, twice, 1);
    spine_op_param_int(&p[i].op, i);
    spine_op_stmt(&p[i].op, twice, 1);
    spine_op_param_int(&p[i].op, 3 * i);
  }
  merged = spine_store_stats_get(s)->merged;
  submit_all(s, &loop, p, NROWS);
  ASSERT_GT(spine_store_stats_get(s)->merged, merged + NROWS / 2);
  for (int i = 0; i < NROWS; i++) {
    char want[16], want2[16];
    snprintf(want, sizeof want, "%d", 2 * i);
    snprintf(want2, sizeof want2, "%d", 6 * i);
    ASSERT_EQ(p[i].status, 0);
    ASSERT_STR_EQ(p[i].value, want);
    ASSERT_STR_EQ(p[i].value2, want2);
  }
  spine_store_close(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* SPINE_MERGE=off (an operator's escape hatch, and the A/B of docs/performance.md): nothing
   * merged, the same answers */
  setenv("SPINE_MERGE", "off", 1);
  ASSERT_EQ(spine_store_open(&loop, db, 2, &s, &e), 0);
  unsetenv("SPINE_MERGE");
  for (int i = 0; i < NROWS; i++) {
    spine_op_reset(&p[i].op);
    spine_op_stmt(&p[i].op, twice, 1);
    spine_op_param_int(&p[i].op, i);
  }
  submit_all(s, &loop, p, NROWS);
  ASSERT_EQ(spine_store_stats_get(s)->merged, 0);
  for (int i = 0; i < NROWS; i++) {
    char want[16];
    snprintf(want, sizeof want, "%d", 2 * i);
    ASSERT_EQ(p[i].status, 0);
    ASSERT_STR_EQ(p[i].value, want);
  }
  for (int i = 0; i < NROWS; i++)
    spine_op_free(&p[i].op);
  spine_store_close(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return 0;
}
