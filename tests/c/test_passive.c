/* Passive workflows (runtime/engine/passive.c) under the sanitizers: hundreds of waiting
 * workflows leave their coroutines for compact records, then wake in a shuffled order, by a
 * signal or by their deadline, each replayed from its row and ended with its own value (one
 * whose claim moved on by its new claim); the records' table grows and shrinks through all of
 * it, and nothing leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "engine.h"
#include "store.h"
#include "test.h"

#define WAITERS  600 /* by a signal: half with a deadline an hour away, half with none */
#define SLEEPERS 20  /* by their deadline, 50 ms on */

typedef struct ends {
  int completed, wrong;
} ends;

/* Each waiter returns the id it was signalled with: its own, or it got another's signal. */
static void ended(void *data, const spine_wf *wf, const char *result, const char *error) {
  ends *e = data;
  (void)error;
  if (spine_wf_status_of(wf) != SPINE_WF_COMPLETED || !result) {
    e->wrong++;
    return;
  }
  e->completed++;
  if (!strstr(result, "\"slept\":true") && !strstr(result, spine_wf_id(wf))) e->wrong++;
}

static const char waiter_src[] =
    "return { name = 'passive_waiter', run = function(ctx, input)\n"
    "  local got = ctx.wait('go', input.deadline and { timeout = '1h' } or nil)\n"
    "  return { got = got.value }\n"
    "end }\n";

static const char sleeper_src[] = "return { name = 'passive_sleeper', run = function(ctx)\n"
                                  "  ctx.sleep('50ms')\n"
                                  "  return { slept = true }\n"
                                  "end }\n";

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  fclose(f);
}

/* An engine on `db` that claims, makes waiting workflows passive after `grace_ms`, and counts
 * their ends in `out`. */
static spine_engine *open_engine(uv_loop_t *loop, const char *db, int64_t grace_ms, ends *out) {
  ASSERT_EQ(uv_loop_init(loop), 0);
  spine_engine_opts o = {0};
  o.conninfo = db;
  o.pool = 2;
  o.claims = 1;
  o.quiet = 1;
  o.passivate_after_ms = grace_ms;
  spine_engine *eng;
  spine_err e;
  if (spine_engine_new(loop, &o, &eng, &e)) TEST_FAIL_("engine: %s", e.msg);
  spine_engine_on_end(eng, ended, out);
  if (spine_engine_serve(eng, &e)) TEST_FAIL_("serve: %s", e.msg);
  return eng;
}

static void close_engine(uv_loop_t *loop, spine_engine *eng) {
  spine_engine_stop(eng);
  uv_run(loop, UV_RUN_DEFAULT);
  spine_engine_free(eng);
  ASSERT_EQ(uv_loop_close(loop), 0);
}

/* Runs `sql` on `c`; its answer (cleared by the caller) must have status `want`. */
static PGresult *query(PGconn *c, const char *sql, ExecStatusType want) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != want) TEST_FAIL_("%s: %s", sql, PQresultErrorMessage(r));
  return r;
}

TEST_IMPL(engine_passivates_waiting_workflows) {
  const char *db = test_newdb("engine_passivates_waiting_workflows");
  char dir[] = "/tmp/spine-passive-XXXXXX", waiter[128], sleeper[128];
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(waiter, sizeof waiter, "%s/waiter.lua", dir);
  snprintf(sleeper, sizeof sleeper, "%s/sleeper.lua", dir);
  write_file(waiter, waiter_src);
  write_file(sleeper, sleeper_src);

  uv_loop_t loop;
  ends out = {0};
  spine_engine *eng = open_engine(&loop, db, 1, &out);
  spine_err e;

  char id[80];
  for (int i = 0; i < WAITERS; i++)
    if (spine_engine_start(eng, waiter, i % 2 ? "{\"deadline\":true}" : "{}", id, &e))
      TEST_FAIL_("start: %s", e.msg);
  while (spine_engine_passive(eng) < WAITERS)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(spine_engine_live(eng), WAITERS); /* held, each as a record */
  ASSERT_EQ(out.completed + out.wrong, 0);

  /* Deadlines: each sleeper goes passive and its timer wakes it. */
  for (int i = 0; i < SLEEPERS; i++)
    if (spine_engine_start(eng, sleeper, NULL, id, &e)) TEST_FAIL_("start: %s", e.msg);
  while (out.completed + out.wrong < SLEEPERS)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(out.wrong, 0);

  /* One of them has another claim now, as a reaper and a new owner would make it: its load
   * (merged with the others') finds no row, it is dropped here, and a claim runs it. */
  PGconn *c = PQconnectdb(db);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  PQclear(query(c,
                "UPDATE spine.workflows SET owner = NULL, epoch = epoch + 1, wake_at = now()"
                " WHERE id = (SELECT min(id) FROM spine.workflows WHERE process ="
                " 'passive_waiter')",
                PGRES_COMMAND_OK));
  /* Signals, in an order unrelated to the records' slots, all committed at once: their loads
   * go merged (each woken workflow's load, delivery and end: three ops that merge with the
   * others' of a batch, where without merged loads only the last two would). */
  const spine_store_stats *st = spine_store_stats_get(spine_engine_store(eng));
  uint64_t merged = st->merged;
  PGresult *r = query(c,
                      "SELECT count(spine.signal_workflow(id, 'go', jsonb_build_object('value',"
                      " id))) FROM (SELECT id FROM spine.workflows WHERE process ="
                      " 'passive_waiter' ORDER BY md5(id)) w",
                      PGRES_TUPLES_OK);
  ASSERT_EQ(atoi(PQgetvalue(r, 0, 0)), WAITERS);
  PQclear(r);
  while (out.completed + out.wrong < SLEEPERS + WAITERS)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(out.wrong, 0);
  ASSERT_EQ(spine_engine_passive(eng), 0);
  ASSERT(st->merged - merged > 2 * WAITERS + WAITERS / 4); /* 1,800 here; 1,200 without */
  const spine_engine_counts *n = spine_engine_counts_get(eng);
  ASSERT(n->passivated >= WAITERS);    /* a sleeper may wake before its turn to be passive */
  ASSERT(n->activated >= WAITERS - 1); /* the one claimed again was replayed by its claim */
  r = query(c, "SELECT count(*) FROM spine.workflows WHERE status = 'completed'", PGRES_TUPLES_OK);
  ASSERT_EQ(atoi(PQgetvalue(r, 0, 0)), WAITERS + SLEEPERS);
  PQclear(r);
  PQfinish(c);
  close_engine(&loop, eng);
  remove(waiter);
  remove(sleeper);
  rmdir(dir);
  return 0;
}

/* A replay costs in proportion to the history: a workflow of 200 steps waits seven times
 * passivate_after_ms (one more for every 32 steps) before it becomes passive. A lower bound on
 * the time: a busy machine only makes it later. */
static const char long_src[] =
    "return { name = 'passive_long', run = function(ctx)\n"
    "  for i = 1, 200 do ctx.step('s' .. i, function() return i end) end\n"
    "  local got = ctx.wait('go')\n"
    "  return { got = got.value }\n"
    "end }\n";

TEST_IMPL(engine_passivates_long_histories_later) {
  const char *db = test_newdb("engine_passivates_long_histories_later");
  char dir[] = "/tmp/spine-passive-XXXXXX", path[128];
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/long.lua", dir);
  write_file(path, long_src);
  uv_loop_t loop;
  ends out = {0};
  spine_engine *eng = open_engine(&loop, db, 200, &out);
  spine_err e;
  char id[80];
  uint64_t t0 = uv_hrtime();
  if (spine_engine_start(eng, path, NULL, id, &e)) TEST_FAIL_("start: %s", e.msg);
  while (spine_engine_passive(eng) < 1)
    uv_run(&loop, UV_RUN_ONCE);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  if (ms < 1390)
    TEST_FAIL_("passive after %llu ms, before its grace of 1,400", (unsigned long long)ms);
  PGconn *c = PQconnectdb(db);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT spine.signal_workflow('%s', 'go', jsonb_build_object('value', '%s'))", id, id);
  PQclear(query(c, sql, PGRES_TUPLES_OK));
  PQfinish(c);
  while (out.completed + out.wrong < 1)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(out.wrong, 0); /* replayed through its 200 steps, then given its signal */
  close_engine(&loop, eng);
  remove(path);
  rmdir(dir);
  return 0;
}
