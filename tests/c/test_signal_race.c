/* A signal racing the worker that frees a dead owner's workflows (WORKERS_REAP) or a release
 * (WF_RELEASE): whichever commits first, the waiting workflow must end up with a wake_at, or
 * it stays waiting, unowned, with its signal unread, and nothing ever claims it.
 * Made deterministic with two sessions: the signal's transaction is held open while the
 * reaper's statement runs, then committed. */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>

#include "migrate.h"
#include "sql.h"
#include "test.h"

static PGconn *open_conn(const char *db) {
  PGconn *c = PQconnectdb(db);
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  return c;
}

static void run(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    TEST_FAIL_("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
}

static char *value(PGconn *c, const char *sql) {
  static char out[256];
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) TEST_FAIL_("%s: %s", sql, PQresultErrorMessage(r));
  snprintf(out, sizeof out, "%s", PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
  PQclear(r);
  return out;
}

/* One race: `signal` runs in an open transaction, then `freer` (parameters $1..$4 below) is
 * sent on another session; once it has either finished or is waiting for a lock, the signal
 * commits. Returns whether the freed workflow has a wake_at ("f" = stranded). */
static const char *race(const char *db, PGconn *admin, const char *signal, spine_sql_id freer) {
  run(admin, "DELETE FROM spine.signals; DELETE FROM spine.steps; DELETE FROM spine.workflows;"
             " DELETE FROM spine.workers");
  /* a worker that is dead (lease over, no advisory lock, no sessions) and one that is alive */
  run(admin,
      "INSERT INTO spine.workers (id, host, pid, lease_until) VALUES"
      " (1, 'dead', 1, now() - interval '1 hour'), (2, 'live', 2, now() + interval '1 hour')");
  run(admin, "INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id,"
             " owner, epoch, wake_at) SELECT 'wf-race', 'p', 'p', hash, 'waiting', '{}', 't', 1, 1,"
             " NULL FROM spine.playbook_versions LIMIT 1");
  run(admin, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, signal)"
             " VALUES ('wf-race', 1, 'wait', 'go', 'waiting', 'go')");
  ASSERT_STR_EQ(value(admin, "SELECT count(*) FROM spine.workflows"), "1");

  PGconn *sig = open_conn(db), *fr = open_conn(db);
  run(sig, "BEGIN");
  run(sig, signal);
  const char *params[4] = {"2", NULL, NULL, NULL};
  int n = 1;
  if (freer == SPINE_SQL_WF_RELEASE) { /* the owner itself hands it back, no fault */
    params[0] = "wf-race", params[1] = "1", params[2] = "1", params[3] = "0";
    n = 4;
  }
  ASSERT_EQ(PQsendQueryParams(fr, spine_sql_text(freer), n, NULL, params, NULL, NULL, 0), 1);
  /* wait until the freer finished, or waits for the signal's row lock */
  char pid_sql[200];
  snprintf(pid_sql, sizeof pid_sql,
           "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
           PQbackendPID(fr));
  for (;;) {
    ASSERT_EQ(PQconsumeInput(fr), 1);
    if (!PQisBusy(fr)) break;
    if (!strcmp(value(admin, pid_sql), "1")) break;
    uv_sleep(5); /* a look every 5 ms at a condition, not a wait for time to pass */
  }
  run(sig, "COMMIT");
  PGresult *r;
  while ((r = PQgetResult(fr))) {
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
      TEST_FAIL_("%s: %s", spine_sql_text(freer), PQresultErrorMessage(r));
    PQclear(r);
  }
  PQfinish(sig);
  PQfinish(fr);
  /* The reaper skips a row locked by the signal (SKIP LOCKED): its next heartbeat frees it. */
  if (freer == SPINE_SQL_WORKERS_REAP &&
      strcmp(value(admin, "SELECT coalesce(owner::text, 'free') FROM spine.workflows"), "free")) {
    PGresult *again = PQexecParams(admin, spine_sql_text(freer), n, NULL, params, NULL, NULL, 0);
    ASSERT_EQ(PQresultStatus(again), PGRES_TUPLES_OK);
    PQclear(again);
  }
  ASSERT_STR_EQ(value(admin, "SELECT coalesce(owner::text, 'free') FROM spine.workflows"), "free");
  ASSERT_STR_EQ(value(admin, "SELECT count(*) FROM spine.signals WHERE consumed_seq IS NULL"), "1");
  return value(admin, "SELECT wake_at IS NOT NULL FROM spine.workflows");
}

/* A connection to `db` (test_newdb's), migrated, with a playbook version 'h' for its workflows'
 * rows. */
static PGconn *migrated(const char *db) {
  PGconn *admin = open_conn(db);
  spine_err e;
  ASSERT_EQ(spine_migrate(admin, NULL, &e), 0);
  run(admin, "INSERT INTO spine.playbook_versions (hash, name, path, source)"
             " VALUES ('h', 'p', 'p.lua', 'return {}')");
  return admin;
}

TEST_IMPL(signal_races_the_reaper) {
  const char *db = test_newdb("signal_races_the_reaper");
  PGconn *admin = migrated(db);
  char send[600];
  /* SIGNAL_SEND as `spine signal` runs it, with its parameters written in */
  const char *text = spine_sql_text(SPINE_SQL_SIGNAL_SEND);
  snprintf(send, sizeof send, "PREPARE send (text, text, jsonb) AS %s", text);
  const char *signals[] = {"SELECT spine.signal_workflow('wf-race', 'go', '{}')",
                           "EXECUTE send ('wf-race', 'go', '{}')"};
  spine_sql_id freers[] = {SPINE_SQL_WORKERS_REAP, SPINE_SQL_WF_RELEASE};
  for (size_t s = 0; s < 2; s++)
    for (size_t f = 0; f < 2; f++) {
      const char *sig = signals[s];
      char prepared[800];
      if (s == 1) { /* a prepared statement lives in its session: prepare it in the signal's */
        snprintf(prepared, sizeof prepared, "%s; %s", send, signals[1]);
        sig = prepared;
      }
      const char *woken = race(db, admin, sig, freers[f]);
      if (strcmp(woken, "t"))
        TEST_FAIL_("%s racing %s left the workflow waiting with no wake_at", signals[s],
                   f ? "WF_RELEASE" : "WORKERS_REAP");
    }
  PQfinish(admin);
  return 0;
}

/* A cancel of a waiting workflow whose owner died, then the reaper frees it: it must be due,
 * or it waits on for a signal that may never come, cancelled in name only. */
TEST_IMPL(cancel_wakes_a_dead_owners_workflow) {
  const char *db = test_newdb("cancel_wakes_a_dead_owners_workflow");
  PGconn *admin = migrated(db);
  run(admin,
      "INSERT INTO spine.workers (id, host, pid, lease_until) VALUES"
      " (1, 'dead', 1, now() - interval '1 hour'), (2, 'live', 2, now() + interval '1 hour')");
  run(admin, "INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id,"
             " owner, epoch, wake_at) VALUES ('wf-c', 'p', 'p', 'h', 'waiting', '{}', 't', 1, 1,"
             " NULL)");
  ASSERT_STR_EQ(value(admin, "SELECT count(*) FROM spine.cancel_workflows(ARRAY['wf-c'], 'ops')"),
                "1");
  const char *params[1] = {"2"};
  PGresult *r =
      PQexecParams(admin, spine_sql_text(SPINE_SQL_WORKERS_REAP), 1, NULL, params, NULL, NULL, 0);
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  ASSERT_EQ(PQntuples(r), 1);
  PQclear(r);
  ASSERT_STR_EQ(value(admin, "SELECT coalesce(owner::text, 'free') || ' ' || cancel_requested ||"
                             " ' ' || (wake_at IS NOT NULL) FROM spine.workflows"),
                "free true true");
  PQfinish(admin);
  return 0;
}

/* Only a signal a waiting step would take makes its workflow due: another signal, or one whose
 * payload its match refuses, leaves the wake-up as it was, on arrival and on every release and
 * reaping after (or the workflow is claimed and replayed for nothing, again and again). The
 * step's name is not its signal (a child wait's signal is "spine.child:<seq>"). */
TEST_IMPL(only_an_awaited_signal_wakes) {
  const char *db = test_newdb("only_an_awaited_signal_wakes");
  PGconn *admin = migrated(db);
  run(admin, "INSERT INTO spine.workers (id, host, pid, lease_until) VALUES"
             " (1, 'w', 1, now() + interval '1 hour')");
  run(admin, "INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id,"
             " owner, epoch, wake_at) VALUES ('wf-m', 'p', 'p', 'h', 'waiting', '{}', 't', 1, 1,"
             " '2030-01-01T00:00:00Z')");
  run(admin, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, signal, match,"
             " wake_at) VALUES ('wf-m', 3, 'wait', 'approval', 'waiting', 'task.resolved',"
             " '{\"task_id\": \"t-1\"}', '2030-01-01T00:00:00Z')");
  const char *deadline = "SELECT wake_at = '2030-01-01T00:00:00Z' FROM spine.workflows";
  /* another name; the awaited name with another task's payload: through both ways in */
  run(admin, "SELECT spine.signal_workflow('wf-m', 'event.ContractActivated', '{}')");
  ASSERT_STR_EQ(value(admin, deadline), "t");
  char send[600];
  snprintf(send, sizeof send, "PREPARE send (text, text, jsonb) AS %s",
           spine_sql_text(SPINE_SQL_SIGNAL_SEND));
  run(admin, send);
  run(admin, "EXECUTE send ('wf-m', 'task.resolved', '{\"task_id\": \"t-2\"}')");
  ASSERT_STR_EQ(value(admin, deadline), "t");
  /* its owner hands it back, and a dead owner's reaping: still due at its deadline only */
  const char *rel[4] = {"wf-m", "1", "1", "0"};
  PGresult *r =
      PQexecParams(admin, spine_sql_text(SPINE_SQL_WF_RELEASE), 4, NULL, rel, NULL, NULL, 0);
  ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  ASSERT_STR_EQ(value(admin, deadline), "t");
  run(admin, "UPDATE spine.workflows SET owner = 1; UPDATE spine.workers SET"
             " lease_until = now() - interval '1 hour'; INSERT INTO spine.workers (id, host, pid,"
             " lease_until) VALUES (2, 'live', 2, now() + interval '1 hour')");
  const char *live[1] = {"2"};
  r = PQexecParams(admin, spine_sql_text(SPINE_SQL_WORKERS_REAP), 1, NULL, live, NULL, NULL, 0);
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  ASSERT_EQ(PQntuples(r), 1); /* it was reaped */
  PQclear(r);
  ASSERT_STR_EQ(value(admin, deadline), "t");
  ASSERT_STR_EQ(value(admin, "SELECT count(*) FROM spine.signals WHERE consumed_seq IS NULL"), "2");
  /* the awaited one, with more in its payload than the match asks: due now */
  run(admin,
      "EXECUTE send ('wf-m', 'task.resolved', '{\"task_id\": \"t-1\", \"outcome\": \"ok\"}')");
  ASSERT_STR_EQ(value(admin, "SELECT wake_at <= now() FROM spine.workflows"), "t");
  /* and a release after it keeps it due: the signal is unread */
  run(admin, "UPDATE spine.workflows SET owner = 2, wake_at = '2030-01-01T00:00:00Z'");
  const char *rel2[4] = {"wf-m", "2", "1", "0"};
  r = PQexecParams(admin, spine_sql_text(SPINE_SQL_WF_RELEASE), 4, NULL, rel2, NULL, NULL, 0);
  ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  ASSERT_STR_EQ(value(admin, "SELECT wake_at <= now() FROM spine.workflows"), "t");
  PQfinish(admin);
  return 0;
}

/* A step's record that carries its op's fence (STEP_DONE_FENCED, the hot path's one statement):
 * with the claim (owner, epoch) its own it writes the step; once the claim moved on (another
 * epoch, or another owner) it raises SPLC0 and writes nothing, as FENCE does. */
TEST_IMPL(fenced_step_refuses_a_moved_claim) {
  const char *db = test_newdb("fenced_step_refuses_a_moved_claim");
  PGconn *admin = migrated(db);
  run(admin, "INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id,"
             " owner, epoch) VALUES ('wf-f', 'p', 'p', 'h', 'running', '{}', 't', 7, 3)");
  static const struct {
    const char *seq, *owner, *epoch, *sqlstate;
  } cases[] = {
      {"1", "7", "2", "SPLC0"}, /* an older claim of the same worker */
      {"2", "8", "3", "SPLC0"}, /* another worker */
      {"3", "7", "3", NULL},    /* its own */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p[13] = {"wf-f",          cases[i].seq,   "step",        "a",  "completed",
                         "{\"x\": 1}",    NULL,           "1",           NULL, NULL,
                         "1765100000000", cases[i].owner, cases[i].epoch};
    PGresult *r =
        PQexecParams(admin, spine_sql_text(SPINE_SQL_STEP_DONE_FENCED), 13, NULL, p, NULL, NULL, 0);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (cases[i].sqlstate) {
      ASSERT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
      ASSERT_STR_EQ(state ? state : "", cases[i].sqlstate);
    } else {
      if (PQresultStatus(r) != PGRES_COMMAND_OK) TEST_FAIL_("%s", PQresultErrorMessage(r));
      ASSERT_STR_EQ(PQcmdTuples(r), "1");
    }
    PQclear(r);
  }
  ASSERT_STR_EQ(value(admin, "SELECT string_agg(seq || ' ' || extract(epoch FROM ended_at)::int8"
                             " || ' ' || (started_at = ended_at), ',') FROM spine.steps"),
                "3 1765100000 true");
  PQfinish(admin);
  return 0;
}

/* A playbook version is what its workflows replay from, and no foreign key stands guard over it
 * any more (0024_lean_workflow_rows.sql): it can be added, never changed or removed. */
TEST_IMPL(playbook_versions_are_append_only) {
  const char *db = test_newdb("playbook_versions_are_append_only");
  PGconn *admin = migrated(db);
  static const char *const writes[] = {
      "DELETE FROM spine.playbook_versions WHERE hash = 'h'",
      "UPDATE spine.playbook_versions SET source = 'return nil' WHERE hash = 'h'",
  };
  for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
    PGresult *r = PQexec(admin, writes[i]);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    ASSERT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
    ASSERT_STR_EQ(state ? state : "", "SPV01");
    ASSERT_STR_CONTAINS(PQresultErrorMessage(r), "append-only");
    PQclear(r);
  }
  ASSERT_STR_EQ(value(admin, "SELECT source FROM spine.playbook_versions"), "return {}");
  PQfinish(admin);
  return 0;
}
