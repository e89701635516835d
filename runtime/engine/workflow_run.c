/* A workflow's coroutine (workflow_internal.h): the first resume (replaying its recorded steps),
 * every resume after a step committed, and what follows its last one: the end, or the failure
 * recorded as a step and the compensations run in reverse. Only this file resumes coroutines. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctx.h"
#include "engine_internal.h"
#include "lerror.h"
#include "sql.h"
#include "steplog.h"

static void fail(spine_wf *wf);

/* How a failed workflow ends once its compensations ran (or it had none): `otherwise`, or
 * cancelled when an operator cancelled it, or failed when its max_duration ran out. */
static spine_wf_status stopped_status(const spine_wf *wf, spine_wf_status otherwise) {
  if (wf->expired) return SPINE_WF_FAILED;
  return wf->cancel_requested ? SPINE_WF_CANCELLED : otherwise;
}

static void after_resume(spine_wf *wf, int st, int nres) {
  lua_State *co = wf->co;
  if (st == LUA_YIELD) {
    lua_pop(co, nres);
    /* A ctx call moves the workflow on before it yields; still running means it did not. */
    if (wf->phase == SPINE_WF_PHASE_RUNNING)
      spine_wf_stuck(wf, "yield_outside_ctx",
                     "the playbook yielded outside a ctx call (coroutines are not allowed)");
    return;
  }
  if (wf->phase != SPINE_WF_PHASE_RUNNING) return; /* stuck or lost while it ran */
  if (spine_wf_in_branch(wf)) { /* a branch (or an undo) ended: its parallel hears of it */
    if (st != LUA_OK) spine_ctx_normalize_error(wf, co, st);
    spine_ctx_parallel_ended(wf, st == LUA_OK, st == LUA_OK ? nres : 1);
    return;
  }
  if (st == LUA_OK) {
    if (wf->compensating) {
      lua_State *L = wf->eng->L;
      lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
      lua_rawgeti(L, -1, SPINE_ANCHOR_ERROR);
      spine_buf err = SPINE_BUF_INIT;
      spine_lerror_encode(L, -1, &err);
      lua_pop(L, 2);
      spine_wf_end(wf, stopped_status(wf, SPINE_WF_COMPENSATED), NULL, spine_buf_str(&err));
      spine_buf_free(&err);
      return;
    }
    spine_buf res = SPINE_BUF_INIT;
    spine_err e;
    spine_err_clear(&e);
    int rc =
        nres ? spine_codec_encode(co, -nres, "result", &res, &e) : spine_buf_puts(&res, "null");
    lua_settop(co, 0);
    if (rc) {
      spine_lerror_push(co, "invalid_argument", "bad_result", e.msg, e.field);
      spine_buf_free(&res);
      fail(wf);
      return;
    }
    spine_wf_end(wf, SPINE_WF_COMPLETED, spine_buf_str(&res), NULL);
    spine_buf_free(&res);
    return;
  }
  /* An error: make it an error table with where it happened, then fail the workflow. */
  spine_ctx_normalize_error(wf, co, st);
  if (wf->compensating) {
    lua_State *L = wf->eng->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
    lua_rawgeti(L, -1, SPINE_ANCHOR_ERROR);
    lua_xmove(co, L, 1);
    lua_setfield(L, -2, "compensation_error");
    spine_buf err = SPINE_BUF_INIT;
    spine_lerror_encode(L, -1, &err);
    lua_pop(L, 2);
    spine_wf_end(wf, SPINE_WF_FAILED, NULL, spine_buf_str(&err));
    spine_buf_free(&err);
    return;
  }
  fail(wf);
}

void spine_wf_resume(spine_wf *wf, int error) {
  spine_engine *eng = wf->eng;
  lua_State *co = wf->co;
  wf->active_at = spine_clock_real();
  wf->cancel_pending = 0; /* its next ctx call raises a cancel */
  spine_wf_move(wf, SPINE_WF_PHASE_RUNNING);
  if (error) wf->call.kstate |= SPINE_CTX_RAISE;
  if (wf->cur) wf->cur->gen++; /* what was queued for the strand is stale now */
  spine_wf_hold(wf);
  spine_sandbox_begin(co, eng->o.instructions, eng->o.mem_limit);
  int nres = 0;
  int st = lua_resume(co, eng->L, 1, &nres);
  spine_sandbox_end(co);
  after_resume(wf, st, nres);
  spine_wf_unhold(wf);
}

static void resume_first(spine_wf *wf, int nargs) {
  spine_engine *eng = wf->eng;
  wf->active_at = spine_clock_real();
  wf->cancel_pending = 0; /* its first ctx call past the history raises a cancel */
  if (wf->cur) wf->cur->gen++;
  /* From loading, or from the failure's checkpoint to the compensations (already running when
   * the failure was replayed). */
  if (wf->phase != SPINE_WF_PHASE_RUNNING) spine_wf_move(wf, SPINE_WF_PHASE_RUNNING);
  spine_sandbox_begin(wf->co, eng->o.instructions, eng->o.mem_limit);
  int nres = 0;
  int st = lua_resume(wf->co, eng->L, nargs, &nres);
  spine_sandbox_end(wf->co);
  after_resume(wf, st, nres);
}

/* The playbook failed (error table on top of the coroutine): record the failure as a step,
 * then run the compensations in reverse order, durably, or end as failed. */
static void compensate_or_end(spine_wf *wf) {
  spine_engine *eng = wf->eng;
  lua_State *L = eng->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  int anchor = lua_gettop(L);
  lua_rawgeti(L, anchor, SPINE_ANCHOR_COMPS);
  lua_Integer n = luaL_len(L, -1);
  if (n == 0) {
    lua_rawgeti(L, anchor, SPINE_ANCHOR_ERROR);
    spine_buf err = SPINE_BUF_INIT;
    spine_lerror_encode(L, -1, &err);
    lua_settop(L, anchor - 1);
    spine_wf_end(wf, stopped_status(wf, SPINE_WF_FAILED), NULL, spine_buf_str(&err));
    spine_buf_free(&err);
    return;
  }
  lua_State *co = lua_newthread(L);
  lua_rawseti(L, anchor, SPINE_ANCHOR_CO); /* the old coroutine is dropped */
  spine_sandbox_attach(co, &wf->limits);
  wf->co = co;
  wf->compensating = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->runner_ref);
  lua_pushvalue(L, -2); /* comps */
  lua_pushcfunction(L, spine_ctx_mark_compensation);
  lua_xmove(L, co, 3);
  lua_settop(L, anchor - 1);
  resume_first(wf, 2);
}

static void fail_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_count_step(wf);
  compensate_or_end(wf);
}

static void fail(spine_wf *wf) {
  spine_engine *eng = wf->eng;
  lua_State *L = eng->L;
  int top = lua_gettop(L);
  /* Keep the error in the anchor: compensations run in another coroutine. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  lua_xmove(wf->co, L, 1);
  lua_rawseti(L, -2, SPINE_ANCHOR_ERROR);
  int seq;
  if (wf->lseq > wf->nlog) {
    seq = wf->last_seq = wf->seq++;
    wf->lseq++;
  } else {
    int m = spine_wf_next_step(wf, L, "fail", "fail", &seq);
    lua_settop(L, top + 1); /* the anchor */
    if (m != 0) {
      lua_settop(L, top);
      if (m > 0) compensate_or_end(wf); /* else stuck: non-determinism */
      return;
    }
  }
  lua_rawgeti(L, -1, SPINE_ANCHOR_ERROR);
  spine_buf err = SPINE_BUF_INIT;
  spine_lerror_encode(L, -1, &err);
  lua_settop(L, top);
  spine_op *op = spine_wf_op_begin(wf);
  spine_steplog_add_done(op, wf, seq, "fail", "fail", "failed", NULL, spine_buf_str(&err), 1);
  spine_buf_free(&err);
  spine_wf_submit(wf, fail_recorded);
}

/* Creates the coroutine and runs the playbook from the top; with a log, replays it first. */
void spine_wf_begin(spine_wf *wf, const char *input_json, const char *log_json,
                    const char *attrs_json) {
  spine_engine *eng = wf->eng;
  lua_State *L = eng->L;
  lua_createtable(L, 5, 0);
  int anchor = lua_gettop(L);
  lua_State *co = lua_newthread(L);
  lua_rawseti(L, anchor, SPINE_ANCHOR_CO);
  lua_newtable(L);
  lua_rawseti(L, anchor, SPINE_ANCHOR_COMPS);
  spine_err e;
  spine_err_clear(&e);
  if (!attrs_json || spine_codec_decode(L, attrs_json, strlen(attrs_json), &e) ||
      !lua_istable(L, -1)) {
    lua_settop(L, anchor);
    lua_newtable(L);
  }
  lua_rawseti(L, anchor, SPINE_ANCHOR_ATTRS);
  wf->nlog = 0;
  if (log_json && strcmp(log_json, "[]") != 0) {
    if (spine_codec_decode(L, log_json, strlen(log_json), &e) == 0) {
      wf->seq = spine_steplog_index(L, &wf->nrecorded) + 1;
      lua_rawseti(L, anchor, SPINE_ANCHOR_LOG);
    }
  }
  wf->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
  wf->nlog = spine_steplog_count(wf, L, NULL);
  wf->co = co;
  spine_sandbox_attach(co, &wf->limits);

  lua_rawgeti(L, LUA_REGISTRYINDEX, spine_version_module(wf->version));
  lua_getfield(L, -1, "run");
  lua_remove(L, -2);
  spine_engine_push_ctx(eng, L);
  if (spine_codec_decode(L, input_json ? input_json : "{}", strlen(input_json ? input_json : "{}"),
                         &e))
    lua_newtable(L);
  lua_xmove(L, co, 3);
  if (eng->begin_cb) eng->begin_cb(eng->begin_data, wf);
  spine_wf_hold(wf);
  resume_first(wf, 2);
  spine_wf_unhold(wf);
}

void spine_wf_start_strand(spine_wf *wf, int nargs) {
  spine_wf_hold(wf);
  resume_first(wf, nargs);
  spine_wf_unhold(wf);
}

/* Begins a workflow with its pending row data, then drops that data. */
void spine_wf_start_pending(spine_wf *wf) {
  spine_wf_pending *ps = wf->pending;
  wf->pending = NULL;
  spine_wf_begin(wf, ps ? ps->input : NULL, ps ? ps->log : NULL, ps ? ps->attrs : NULL);
  if (ps) {
    free(ps->input);
    free(ps->log);
    free(ps->attrs);
    free(ps);
  }
}

int spine_wf_adopt(spine_engine *eng, const char *id, spine_version *v, const char *process,
                   const char *input_json, const char *trace_id, const char *parent_id,
                   int parent_seq, const char *variant, const char *experiment, const char *params,
                   spine_err *e) {
  spine_version_set_stored(v);
  spine_wf *wf = spine_wf_new(eng, id, v, process, trace_id, parent_id, parent_seq);
  if (!wf) return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  wf->variant = variant ? strdup(variant) : NULL;
  wf->experiment = experiment ? strdup(experiment) : NULL;
  wf->params = params ? strdup(params) : NULL;
  spine_wf_begin(wf, input_json, NULL, NULL);
  return 0;
}

void spine_wf_cancel(spine_wf *wf) {
  int first = !wf->cancel_requested;
  wf->cancel_requested = 1;
  if (first && !wf->compensating && wf->npar) { /* its parallel stops, then it */
    spine_wf_hold(wf);
    spine_ctx_parallel_cancel(wf);
    spine_wf_unhold(wf);
    return;
  }
  if (!first || wf->compensating) return;
  wf->cancel_pending = 1;
  spine_wf_cancel_pending(wf);
}

void spine_wf_cancel_pending(spine_wf *wf) {
  if (wf->doomed || wf->op_inflight || wf->compensating || wf->npar) return;
  if (wf->phase != SPINE_WF_PHASE_TIMER && wf->phase != SPINE_WF_PHASE_SIGNAL) return;
  /* Waiting: stop waiting now; the call raises the cancellation at its site. */
  wf->cancel_pending = 0;
  spine_wf_timer_cancel(wf);
  spine_ctx_cancel_waiting(wf);
  spine_wf_resume(wf, 1);
}

void spine_wf_expire(spine_wf *wf) {
  wf->expired = 1;
  spine_wf_cancel(wf);
}

void spine_wf_push_stop(const spine_wf *wf, lua_State *L) {
  if (wf && !wf->cancel_requested && spine_wf_in_branch(wf) && wf->cur->cancelled)
    spine_lerror_push(L, "cancelled", "branch_cancelled",
                      "the branch was cancelled: its ctx.parallel ended without it", NULL);
  else if (wf && wf->expired)
    spine_lerror_push(L, "failed", "max_duration",
                      "the workflow ran past the max_duration of its process (its manifest)", NULL);
  else
    spine_lerror_push(L, "cancelled", "cancelled", "the workflow was cancelled", NULL);
}
