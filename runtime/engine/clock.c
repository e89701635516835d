/* The engine's clocks and the deadlines on them (engine_internal.h). Real: timers fire on one
 * uv timer armed for the nearest deadline. Virtual (`spine run --clock virtual`, replays): time
 * jumps to the next deadline as soon as the store is idle. Manual (tests, `spine serve --clock
 * manual`): time stands still until an advance moves it, deadline by deadline, waiting at each
 * for the engine to be idle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"
#include "log.h"
#include "sql.h"

int64_t spine_clock_real(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t spine_clock_now(spine_engine *eng) {
  return eng->o.virtual_clock || eng->o.manual_clock ? eng->vnow : spine_clock_real();
}

int64_t spine_clock_of(void *eng) {
  return spine_clock_now(eng);
}

void spine_clock_op(spine_engine *eng, spine_op *op) {
  if (!eng->o.virtual_clock) return;
  spine_op_stmt(op, SPINE_SQL_VIRTUAL_NOW, 0);
  spine_op_param_int(op, eng->vnow);
}

/* ---- deadlines ---- */

static void on_timer(uv_timer_t *t);

/* A manual clock arms the uv timer only for deadlines already due (a zero backoff); the others
 * wait for an advance. */
static void arm(spine_engine *eng) {
  if (eng->o.virtual_clock || eng->stopping) return;
  spine_timer *first = spine_timers_next(&eng->timers);
  if (!first) {
    uv_timer_stop(&eng->timer);
    return;
  }
  int64_t delay = first->at - spine_clock_now(eng);
  if (eng->o.manual_clock && delay > 0) {
    uv_timer_stop(&eng->timer);
    return;
  }
  uv_timer_start(&eng->timer, on_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

/* Fires every deadline up to `now`; returns how many. */
static int fire_due(spine_engine *eng, int64_t now) {
  int n = 0;
  for (spine_timer *t; (t = spine_timers_pop_due(&eng->timers, now)); n++)
    t->fire(t);
  return n;
}

static void on_timer(uv_timer_t *t) {
  spine_engine *eng = t->data;
  fire_due(eng, spine_clock_now(eng));
  arm(eng);
}

/* The virtual clock jumps to the next deadline once nothing else can happen first. */
static void on_vtick(uv_timer_t *t) {
  spine_engine *eng = t->data;
  spine_timer *first = spine_timers_next(&eng->timers);
  if (!first || !spine_store_idle(eng->store)) return;
  if (first->at > eng->vnow) eng->vnow = first->at;
  fire_due(eng, eng->vnow);
}

static void clock_check(spine_engine *eng);

void spine_clock_store_idle(void *data) {
  spine_engine *eng = data;
  if (eng->o.manual_clock) clock_check(eng);
  if (eng->o.virtual_clock && spine_timers_count(&eng->timers) && !eng->stopping)
    uv_timer_start(&eng->vtick, on_vtick, 0, 0);
}

void spine_clock_add(spine_engine *eng, spine_timer *t, int64_t at) {
  spine_timers_add(&eng->timers, t, at);
  arm(eng);
  if (eng->o.virtual_clock) spine_clock_store_idle(eng);
}

void spine_clock_remove(spine_engine *eng, spine_timer *t) {
  if (!spine_timer_armed(t)) return;
  spine_timers_remove(&eng->timers, t);
  arm(eng);
}

/* ---- the manual clock: time moves only when told (spine_engine_advance) ----
 *
 * An advance alternates two things until it reaches its target: wait until the engine is idle,
 * then move the clock to the nearest deadline (ours in the heap, or a free workflow's in the
 * database) and fire what is due. "Idle" is a round with nothing in it: the round sends our
 * own NOTIFY "k:<round>" with a claim and a look at the free workflows' deadlines; when the
 * marker comes back, every notification committed before it (a signal from `spine signal`, a
 * case from `spine start`) has come back too (PostgreSQL delivers them in commit order), so if
 * the store is idle, no provider call is in flight, no notification but the marker came and no
 * op but the round's own committed, nothing is left to do at this time. Otherwise: another
 * round, as soon as the store is idle again. */

static int providers_busy(spine_engine *eng) {
  int n, busy = 0;
  spine_wf **all = spine_wf_all(eng, &n);
  for (int i = 0; i < n && !busy; i++)
    busy = all[i]->phase == SPINE_WF_PHASE_PROVIDER || spine_wf_strand_calling(all[i]);
  free(all);
  return busy;
}

static void clock_round_done(spine_op *op) {
  spine_engine *eng = op->data;
  PGresult *r = spine_op_result(op, 1);
  eng->clk.db_next = -1;
  if (!op->status && r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
    eng->clk.db_next = atoll(PQgetvalue(r, 0, 0));
  if (op->status)
    spine_log_error("scheduler", "clock round failed", "error", spine_op_error(op)->msg, NULL);
  eng->clk.op_done = 1;
  clock_check(eng);
}

static void clock_round(spine_engine *eng) {
  eng->clk.round++;
  eng->clk.op_done = eng->clk.marker_seen = eng->clk.foreign = 0;
  eng->clk.ops_at_start = spine_store_stats_get(eng->store)->ops;
  eng->clk.own_ops = 1;
  char mark[32];
  snprintf(mark, sizeof mark, "k:%u", eng->clk.round);
  spine_op *op = &eng->clk.op;
  spine_op_reset(op);
  spine_op_stmt(op, SPINE_SQL_NOTIFY_MARK, 0);
  spine_op_param(op, mark);
  spine_op_stmt(op, SPINE_SQL_NEXT_WAKE, 1);
  op->cb = clock_round_done;
  op->data = eng;
  spine_store_submit(eng->store, op);
  if (eng->o.claims && !eng->claim_busy) {
    eng->clk.own_ops++;
    spine_sched_claim(eng);
  }
}

void spine_clock_marker(spine_engine *eng, const char *payload) {
  if (!eng->clk.active || (unsigned)strtoul(payload, NULL, 10) != eng->clk.round) return;
  eng->clk.marker_seen = 1;
  clock_check(eng);
}

static void clock_finish(spine_engine *eng, int status) {
  spine_engine_clock_cb cb = eng->clk.cb;
  eng->clk.active = 0;
  eng->clk.cb = NULL;
  if (cb) cb(eng->clk.data, status, eng->vnow, eng->clk.fired);
}

static void clock_set_done(spine_op *op) {
  spine_engine *eng = op->data;
  eng->clk.setting = 0;
  if (op->status)
    spine_log_error("scheduler", "cannot record the manual clock", "error", spine_op_error(op)->msg,
                    NULL);
  if (eng->clk.finishing) {
    clock_finish(eng, 0);
    return;
  }
  eng->clk.fired += fire_due(eng, eng->vnow);
  clock_round(eng);
}

/* Moves the clock to `to`, first in the database: the workflows woken at `to` write their
 * intents and steps at `to`. */
static void clock_set(spine_engine *eng, int64_t to, int finishing) {
  eng->vnow = to;
  eng->clk.setting = 1;
  eng->clk.finishing = finishing;
  spine_op *op = &eng->clk.op;
  spine_op_reset(op);
  spine_op_stmt(op, SPINE_SQL_CLOCK_SET, 0);
  spine_op_param_int(op, to);
  spine_op_param_int(op, eng->worker);
  op->cb = clock_set_done;
  op->data = eng;
  spine_store_submit(eng->store, op);
}

static void clock_check(spine_engine *eng) {
  if (!eng->clk.active || eng->clk.setting || eng->stopping) return;
  if (!eng->clk.op_done || !eng->clk.marker_seen) return; /* the round is under way */
  if (!spine_store_idle(eng->store) || providers_busy(eng) || eng->ndeferred)
    return; /* idle (or the deferred workflows' turn) calls us again */
  uint64_t ops = spine_store_stats_get(eng->store)->ops - eng->clk.ops_at_start;
  if (eng->clk.foreign || eng->claim_busy || ops != (uint64_t)eng->clk.own_ops) {
    clock_round(eng);
    return;
  }
  /* Idle now. Free workflows due now were the round's claim's; only later ones count. */
  spine_timer *first = spine_timers_next(&eng->timers);
  int64_t next = first ? first->at : INT64_MAX;
  if (eng->clk.db_next > eng->vnow && eng->clk.db_next < next) next = eng->clk.db_next;
  if (next <= eng->vnow) { /* due already (armed at zero delay): fire, then look again */
    eng->clk.fired += fire_due(eng, eng->vnow);
    clock_round(eng);
  } else if (next <= eng->clk.target) {
    clock_set(eng, next, 0);
  } else if (eng->clk.target > eng->vnow) {
    clock_set(eng, eng->clk.target, 1);
  } else {
    clock_finish(eng, 0);
  }
}

int spine_clock_advance(spine_engine *eng, int64_t to_ms, spine_engine_clock_cb cb, void *data) {
  if (!eng->o.manual_clock || to_ms < eng->vnow || eng->stopping) return SPINE_EINVAL;
  if (eng->clk.active) return SPINE_ECONFLICT;
  eng->clk.active = 1;
  eng->clk.target = to_ms;
  eng->clk.fired = 0;
  eng->clk.cb = cb;
  eng->clk.data = data;
  clock_round(eng);
  return 0;
}

/* At start (blocking): a manual clock starts where asked, else where the database's stands,
 * else at real time, and is written there; a real-clock worker removes a manual clock a test
 * left behind, so that the database is on real time again. */
int spine_clock_setup(spine_engine *eng, spine_err *e) {
  PGconn *pg = spine_store_session(eng->store);
  PGresult *r;
  if (!eng->o.manual_clock) {
    if (!eng->o.claims) return 0;
    r = PQexec(pg, "DELETE FROM spine.clock RETURNING now_ms");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
      spine_log_warn("scheduler", "the database had a manual clock: back to real time", NULL);
    PQclear(r);
    return 0;
  }
  eng->vnow = eng->o.clock_start;
  if (!eng->vnow) {
    r = PQexec(pg, "SELECT now_ms FROM spine.clock");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
      eng->vnow = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  if (!eng->vnow) eng->vnow = spine_clock_real();
  char now[24], worker[24];
  snprintf(now, sizeof now, "%lld", (long long)eng->vnow);
  snprintf(worker, sizeof worker, "%lld", (long long)eng->worker);
  const char *params[2] = {now, worker};
  r = PQexecParams(pg, spine_sql_text(SPINE_SQL_CLOCK_SET), 2, NULL, params, NULL, NULL, 0);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    spine_err_set(e, SPINE_EDB, "database", NULL, "cannot set the manual clock: %s",
                  PQresultErrorMessage(r));
  PQclear(r);
  return ok ? 0 : SPINE_EDB;
}

void spine_clock_stop(spine_engine *eng) {
  if (eng->clk.active) clock_finish(eng, SPINE_ECANCELLED);
}
