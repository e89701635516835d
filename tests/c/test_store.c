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
} probe;

static int finished;

static void on_done(spine_op *op) {
  probe *p = op->data;
  p->done++;
  p->status = op->status;
  PGresult *r = spine_op_result(op, 0);
  p->rows = r ? PQntuples(r) : -1;
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
