/* Which workflows run on this worker (engine_internal.h): cases started here, free workflows
 * claimed from the database (SKIP LOCKED, in batches), the wake-up for the nearest deadline
 * among free ones, and the eviction of workflows that wait idle, which a wake-up replays. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "engine_internal.h"
#include "log.h"
#include "playbook.h"
#include "sql.h"
#include "uuid.h"

#define CLAIM_BATCH 64
/* A workflow that was running when its worker died or hung this many times, or that a worker
 * had to give up this many times, is failed instead of being passed on again (a poison pill). */
#define POISON_RUNS 3

static void claimed(spine_op *op);

/* ---- starting a case ---- */

int spine_engine_start(spine_engine *eng, const char *playbook, const char *input_json,
                       char id_out[80], spine_err *e) {
  spine_version *v = spine_version_get(eng, playbook, e);
  if (!v) return e ? e->code : SPINE_EINVAL;
  lua_State *L = eng->L;
  const char *input = input_json ? input_json : "{}";
  if (spine_codec_decode(L, input, strlen(input), e)) return SPINE_EINVAL;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return spine_err_set(e, SPINE_EINVAL, NULL, "input", "must be a JSON object");
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, spine_version_module(v));
  int rc = spine_playbook_check_input(L, -1, -2, spine_version_path(v), e);
  lua_pop(L, 2);
  if (rc) return rc;
  char id[37], trace[33];
  spine_uuid_ordered(id);
  spine_uuid_trace_id(trace);
  spine_wf *wf = spine_wf_new(eng, id, v, spine_version_name(v), trace, NULL, 0);
  if (!wf) return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  /* It runs now; its first op inserts its row with what that op records (the first step, or
   * its end), one commit for both. Nothing it does is seen outside before that commit: a crash
   * meanwhile loses a start nobody saw durable. */
  if (!(wf->unsaved_input = strdup(input))) {
    spine_wf_free(wf);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  }
  snprintf(id_out, 80, "%s", id);
  spine_wf_begin(wf, input, NULL, NULL);
  return 0;
}

/* ---- claims: free workflows this worker takes ---- */

static char *dup_value(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static void next_wake(spine_op *op);

/* Arms the wake-up for the nearest deadline among free workflows (claims mode). */
void spine_sched_refresh_wake(spine_engine *eng) {
  /* A manual clock's advance finds the free workflows' deadlines itself. */
  if (eng->wake_busy || eng->stopping || !eng->o.claims || eng->o.manual_clock) return;
  eng->wake_busy = 1;
  spine_op_reset(&eng->wake_op);
  spine_op_stmt(&eng->wake_op, SPINE_SQL_NEXT_WAKE, 1);
  eng->wake_op.cb = next_wake;
  eng->wake_op.data = eng;
  spine_store_submit(eng->store, &eng->wake_op);
}

static void claim_released(spine_op *op) {
  spine_op_free(op);
  free(op);
}

/* Hands a claim back at once (the same workflow is still in memory here). */
static void release_claim(spine_engine *eng, const char *id, int64_t epoch) {
  spine_op *op = malloc(sizeof *op);
  if (!op) abort();
  spine_op_init(op);
  spine_op_stmt(op, SPINE_SQL_WF_RELEASE, 0);
  spine_op_param(op, id);
  spine_op_param_int(op, eng->worker);
  spine_op_param_int(op, epoch);
  spine_op_param_int(op, 0);
  op->cb = claim_released;
  op->data = eng;
  spine_store_submit(eng->store, op);
}

/* A workflow that its workers kept dying or hanging on, or that kept being given up: failed
 * with an error an operator can act on (`spine retry` runs it again). */
static void poisoned(spine_wf *wf, int runs) {
  char err[400];
  snprintf(err, sizeof err,
           "{\"kind\":\"poison\",\"code\":\"worker_lost\",\"message\":\"the workflow was"
           " running %d times when its worker died, hung or had to give it up: it is not run"
           " again (spine retry runs it once more)\"}",
           runs);
  spine_wf_drop_pending(wf);
  spine_wf_end(wf, SPINE_WF_FAILED, NULL, err);
}

void spine_sched_adopt(spine_engine *eng, const PGresult *r, int i) {
  const char *id = PQgetvalue(r, i, 0);
  int64_t epoch = atoll(PQgetvalue(r, i, 16));
  const char *hash = PQgetvalue(r, i, 3);
  spine_version *v = spine_version_of_hash(eng, hash, PQgetvalue(r, i, 2));
  spine_wf *wf = spine_wf_new(eng, id, v, PQgetvalue(r, i, 1), PQgetvalue(r, i, 5),
                              PQgetisnull(r, i, 6) ? NULL : PQgetvalue(r, i, 6),
                              PQgetisnull(r, i, 7) ? 0 : atoi(PQgetvalue(r, i, 7)));
  if (!wf) abort();
  wf->epoch = epoch;
  wf->cancel_requested = PQgetvalue(r, i, 9)[0] == 't';
  wf->expired = PQgetvalue(r, i, 18)[0] == 't';
  wf->attempt = atoi(PQgetvalue(r, i, 10));
  wf->state = dup_value(r, i, 11);
  wf->variant = dup_value(r, i, 14);
  wf->experiment = dup_value(r, i, 15);
  wf->params = dup_value(r, i, 19);
  wf->row_waiting = !strcmp(PQgetvalue(r, i, 8), "waiting");
  spine_wf_set_pending(wf, dup_value(r, i, 4), dup_value(r, i, 13), dup_value(r, i, 12));
  int lost_runs = atoi(PQgetvalue(r, i, 17));
  if (lost_runs >= POISON_RUNS) {
    poisoned(wf, lost_runs);
    return;
  }
  if (spine_version_module(v) != LUA_NOREF)
    spine_wf_start_pending(wf);
  else
    spine_version_wait(v, wf); /* it begins once its version is loaded */
}

static void claimed(spine_op *op) {
  spine_engine *eng = op->data;
  eng->claim_busy = 0;
  PGresult *r = spine_op_result(op, 1); /* after the expiry's */
  int n = (!op->status && r) ? PQntuples(r) : 0;
  if (op->status)
    spine_log_error("scheduler", "claim failed", "error", spine_op_error(op)->msg, NULL);
  for (int i = 0; i < n; i++) {
    const char *id = PQgetvalue(r, i, 0);
    eng->clk.foreign++; /* work came: an advance is not idle yet */
    /* Passive here under an older claim (it moved on and came back): that one is stale. */
    spine_passive_wake(eng, id, SPINE_PASSIVE_MOVED);
    if (spine_wf_find(eng, id)) {
      /* Still in memory while its release (an eviction) commits: the old self goes when that
       * op ends; this claim is handed back so that the next one runs it. */
      release_claim(eng, id, atoll(PQgetvalue(r, i, 16)));
      continue;
    }
    spine_sched_adopt(eng, r, i);
  }
  if (n == CLAIM_BATCH || eng->claim_again) {
    eng->claim_again = 0;
    spine_sched_claim(eng);
    return;
  }
  spine_sched_refresh_wake(eng);
}

static void on_wake(uv_timer_t *t) {
  spine_sched_claim(t->data);
}

static void next_wake(spine_op *op) {
  spine_engine *eng = op->data;
  eng->wake_busy = 0;
  PGresult *r = spine_op_result(op, 0);
  if (op->status || !r || PQntuples(r) != 1 || PQgetisnull(r, 0, 0) || eng->stopping) return;
  int64_t at = atoll(PQgetvalue(r, 0, 0));
  int64_t delay = at - spine_clock_real();
  uv_timer_start(&eng->wake, on_wake, delay > 0 ? (uint64_t)delay + 5 : 0, 0);
}

void spine_sched_claim(spine_engine *eng) {
  if (!eng->o.claims || eng->stopping) return;
  if (eng->claim_busy) {
    eng->claim_again = 1;
    return;
  }
  eng->claim_busy = 1;
  spine_op_reset(&eng->claim_op);
  spine_op_stmt(&eng->claim_op, SPINE_SQL_EXPIRE, 0);
  spine_op_stmt(&eng->claim_op, SPINE_SQL_CLAIM, 1);
  spine_op_param_int(&eng->claim_op, eng->worker);
  spine_op_param_int(&eng->claim_op, CLAIM_BATCH);
  eng->claim_op.cb = claimed;
  eng->claim_op.data = eng;
  spine_store_submit(eng->store, &eng->claim_op);
}

/* ---- eviction: idle waiting workflows leave memory; a wake-up replays them ---- */

static void evicted(spine_op *op) {
  spine_wf *wf = op->data;
  spine_engine *eng = wf->eng;
  int again = wf->call.signal_pending; /* a signal came while releasing: claim it back */
  spine_wf_free(wf);
  if (again) spine_sched_claim(eng);
  spine_sched_refresh_wake(eng);
}

void spine_sched_evict_idle(spine_engine *eng) {
  if (!eng->o.evict_after_ms || eng->stopping) return;
  int64_t now = spine_clock_now(eng), idle_before = spine_clock_real() - eng->o.evict_after_ms;
  int n;
  spine_wf **all = spine_wf_all(eng, &n);
  for (int i = 0; i < n; i++) {
    spine_wf *wf = all[i];
    if (wf->op_inflight || wf->compensating) continue;
    if (wf->phase == SPINE_WF_PHASE_PARALLEL) { /* its branches all wait, its row says so */
      int64_t at = spine_wf_strand_earliest(wf);
      if (!spine_wf_strand_idle(wf) || wf->active_at > idle_before) continue;
      if (at && at < now + eng->o.evict_after_ms) continue;
      spine_wf_move(wf, SPINE_WF_PHASE_RELEASING);
      spine_wf_release(wf, 0, evicted);
      continue;
    }
    if (wf->phase != SPINE_WF_PHASE_SIGNAL && wf->phase != SPINE_WF_PHASE_TIMER) continue;
    if (wf->active_at > idle_before) continue;
    if (spine_timer_armed(&wf->timer) && wf->timer.at < now + eng->o.evict_after_ms)
      continue; /* due soon */
    spine_wf_move(wf, SPINE_WF_PHASE_RELEASING);
    spine_wf_release(wf, 0, evicted);
  }
  free(all);
  spine_passive_evict_idle(eng, idle_before, now + eng->o.evict_after_ms);
}

/* ---- workflows whose branches' events ran long: the rest on the next iteration ---- */

static void on_defer(uv_idle_t *h) {
  spine_engine *eng = h->data;
  uv_idle_stop(h);
  int n = eng->ndeferred;
  spine_wf **list = eng->deferred;
  eng->deferred = NULL;
  eng->ndeferred = eng->capdeferred = 0;
  for (int i = 0; i < n; i++) {
    list[i]->deferred = 0;
    spine_wf_unhold(list[i]); /* runs its events, or frees it if it left meanwhile */
  }
  free(list);
  spine_clock_store_idle(eng); /* a manual clock's advance waited for these */
}

void spine_sched_defer(spine_engine *eng, spine_wf *wf) {
  if (wf->deferred) return;
  if (eng->ndeferred == eng->capdeferred) {
    int cap = eng->capdeferred ? eng->capdeferred * 2 : 8;
    spine_wf **a = realloc(eng->deferred, (size_t)cap * sizeof *a);
    if (!a) abort();
    eng->deferred = a;
    eng->capdeferred = cap;
  }
  wf->deferred = 1;
  spine_wf_hold(wf);
  eng->deferred[eng->ndeferred++] = wf;
  uv_idle_start(&eng->defer, on_defer);
}

void spine_sched_drop_deferred(spine_engine *eng) {
  uv_idle_stop(&eng->defer);
  for (int i = 0; i < eng->ndeferred; i++) {
    spine_wf *wf = eng->deferred[i];
    wf->deferred = 0;
    wf->holds--; /* without running anything: the engine stops */
    if (!wf->holds && wf->doomed) free(wf);
  }
  free(eng->deferred);
  eng->deferred = NULL;
  eng->ndeferred = eng->capdeferred = 0;
}
