/* The playbook API, `ctx` (ctx.h). Every call that has an effect is a step: replayed from the
 * log when recorded, else started and checkpointed before the playbook sees its outcome.
 * Calls check their arguments first (raising holds no resource), then yield with a
 * continuation; only the scheduler resumes. Never blocks, never raises through C callbacks. */
#include "ctx.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "codec.h"
#include "ctx_internal.h"
#include "duration.h"
#include "intents.h"
#include "lerror.h"
#include "lib_time.h"
#include "log.h"
#include "playbook.h"
#include "steplog.h"
#include "uuid.h"
#include "version.h"
#include "workflow_internal.h"

/* Stack slots a waiting call keeps across its yield. */
enum { STEP_OK = 1, STEP_FAILED, STEP_BACKOFF };

/* ---- errors ---- */

void spine_ctx_normalize_error(spine_wf *wf, lua_State *co, int status) {
  spine_lerror_normalize(co, status, &wf->limits);
  lua_pushinteger(co, wf->last_seq);
  lua_setfield(co, -2, "step");
}

/* ---- common machinery ---- */

spine_wf *spine_ctx__check_wf(lua_State *L) {
  spine_limits *lim = spine_sandbox_limits(L);
  if (!lim) luaL_error(L, "ctx can only be used while a workflow runs (inside run)");
  spine_wf *wf = (spine_wf *)lim;            /* limits is the first member */
  if (wf->phase != SPINE_WF_PHASE_RUNNING) { /* stuck, or lost, while it runs */
    spine_lerror_push(L, "stuck", "stopped", "the workflow was stopped", NULL);
    lua_error(L);
  }
  if (wf->call.in_step) luaL_error(L, "ctx calls are not allowed inside the function of ctx.step");
  return wf;
}

spine_wf *spine_ctx__check_step(lua_State *L) {
  spine_wf *wf = spine_ctx__check_wf(L);
  /* A step yields until its checkpoint commits: refused, before anything is submitted, where
   * the coroutine cannot yield (a table.sort comparator, a gsub replacement function, a
   * metamethod), so that a pcall around it finds nothing half done. */
  if (!lua_isyieldable(L))
    return spine_lerror_raise(L, "runtime", "not_yieldable",
                              "ctx calls that are steps cannot run inside a function that Lua's C"
                              " code calls back (a table.sort comparator, a string.gsub"
                              " replacement, a metamethod)"),
           NULL;
  /* One step at a time: a second while one is in flight would reuse its queued operation. */
  if (wf->op_inflight)
    return spine_lerror_raise(L, "runtime", "step_in_flight",
                              "a ctx call while another step is in flight"),
           NULL;
  return wf;
}

/* A cancelled workflow stops at its next call that would act or wait (its undos still
 * run). */
int spine_ctx__cancelled(const spine_wf *wf) {
  if (spine_wf_in_branch(wf)) /* a cancelled branch stops too; an undo runs to its end */
    return !wf->cur->undo && (wf->cur->cancelled || (wf->cancel_requested && !wf->compensating));
  return wf->cancel_requested && !wf->compensating;
}

int spine_ctx__raise_cancel(lua_State *L) {
  spine_wf_push_stop((spine_wf *)spine_sandbox_limits(L), L); /* limits: its first member */
  return lua_error(L);
}

typedef struct json_text {
  const char *json;
  size_t len;
} json_text;

static void decode_json(lua_State *L, void *data) {
  json_text *t = data;
  if (!t->json || spine_codec_decode(L, t->json, t->len, NULL)) lua_pushnil(L);
}

/* Charged to the workflow whose coroutine L is: it may keep the value across its steps. */
void spine_ctx__push_json(lua_State *L, const char *json, size_t len) {
  json_text t = {json, len};
  spine_sandbox_charged(L, decode_json, &t);
}

/* The continuation of calls whose outcome the scheduler pushes. */
int spine_ctx__value_k(lua_State *L, int status, lua_KContext k) {
  (void)status, (void)k;
  spine_wf *wf = (spine_wf *)spine_sandbox_limits(L);
  if (wf->call.kstate & SPINE_CTX_RAISE) {
    wf->call.kstate = 0;
    return lua_error(L);
  }
  wf->call.kstate = 0;
  return 1;
}

/* The continuation of calls whose outcome is already on their stack, under the resume value:
 * k = STEP_OK returns it, k = STEP_FAILED raises it. */
static int keep_k(lua_State *L, int status, lua_KContext k) {
  (void)status;
  spine_wf *wf = (spine_wf *)spine_sandbox_limits(L);
  if (wf->call.kstate & SPINE_CTX_RAISE) { /* the checkpoint could not be written */
    wf->call.kstate = 0;
    return lua_error(L);
  }
  lua_pop(L, 1);
  if (k == STEP_FAILED) return lua_error(L);
  return 1;
}

static void step_committed(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_count_step(wf);
  lua_pushnil(wf->co);
  spine_wf_resume(wf, 0);
}

/* Records the value on top of L as step `seq` and yields until it is durable; `k` returns it
 * (keep_k, or one that makes something of it). */
static int record_value_k(lua_State *L, spine_wf *wf, int seq, const char *kind, const char *name,
                          lua_KFunction k) {
  spine_buf json = SPINE_BUF_INIT;
  spine_err e;
  spine_err_clear(&e);
  if (spine_codec_encode(L, -1, "result", &json, &e)) {
    spine_buf_free(&json);
    return spine_lerror_raise(L, "invalid_argument", "bad_result", "%s: %s", e.field, e.msg);
  }
  spine_op *op = spine_wf_op_begin(wf);
  spine_steplog_add_done(op, wf, seq, kind, name, "completed", spine_buf_str(&json), NULL, 1);
  spine_buf_free(&json);
  spine_wf_submit(wf, step_committed);
  return lua_yieldk(L, 0, STEP_OK, k);
}

static int record_value(lua_State *L, spine_wf *wf, int seq, const char *kind, const char *name) {
  return record_value_k(L, wf, seq, kind, name, keep_k);
}

/* Pushes the outcome of a recorded step, or raises its recorded error. */
int spine_ctx__replay_outcome(lua_State *L) {
  lua_getfield(L, -1, "status");
  int failed = !strcmp(lua_tostring(L, -1), "failed");
  lua_pop(L, 1);
  lua_getfield(L, -1, failed ? "error" : "result");
  lua_remove(L, -2);
  if (failed) return lua_error(L);
  return 1;
}

int64_t spine_ctx__duration(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Number s = lua_tonumber(L, arg);
    luaL_argcheck(L, s >= 0 && s < 9e12, arg, "duration out of range");
    return (int64_t)(s * 1000);
  }
  const char *s = luaL_checkstring(L, arg);
  int64_t ms;
  spine_err e;
  if (spine_duration_parse(s, &ms, &e)) luaL_argerror(L, arg, e.msg);
  return ms;
}

int64_t spine_ctx__field_duration(lua_State *L, int t, const char *field, int64_t dflt) {
  int ty = lua_getfield(L, t, field);
  int64_t ms = dflt;
  if (ty != LUA_TNIL) ms = spine_ctx__duration(L, lua_gettop(L));
  lua_pop(L, 1);
  return ms;
}

static void iso(int64_t ms, char out[32]) {
  spine_duration_format_time(ms, out);
}

/* ---- ctx.step ---- */

spine_ctx__policy spine_ctx__check_policy(lua_State *L, int opts, spine_ctx__policy p) {
  if (lua_isnoneornil(L, opts)) return p;
  luaL_checktype(L, opts, LUA_TTABLE);
  if (lua_getfield(L, opts, "retry") == LUA_TTABLE) {
    int r = lua_gettop(L);
    lua_getfield(L, r, "attempts");
    if (!lua_isnil(L, -1)) {
      luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1, opts,
                    "retry.attempts must be a positive integer");
      p.attempts = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    p.backoff = spine_ctx__field_duration(L, r, "backoff", p.backoff);
    p.max = spine_ctx__field_duration(L, r, "max", p.max);
    lua_getfield(L, r, "factor");
    if (lua_isnumber(L, -1)) p.factor = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return p;
}

/* ctx.step runs once unless its opts say otherwise. */
static const spine_ctx__policy step_policy = {1, 1000, 3600 * 1000, 2.0};

/* Non-retryable: business failures and rejections are answers, not faults. */
static int retryable(lua_State *L, int err) {
  lua_getfield(L, err, "kind");
  const char *kind = lua_tostring(L, -1);
  int ok = !kind || (strcmp(kind, "business") && strcmp(kind, "rejected") &&
                     strcmp(kind, "invalid_argument") && strcmp(kind, "limit"));
  lua_pop(L, 1);
  return ok;
}

int64_t spine_ctx__backoff_ms(spine_wf *wf, const spine_ctx__policy *p, int attempt) {
  double d = (double)p->backoff * pow(p->factor, attempt - 1);
  if (d > (double)p->max) d = (double)p->max;
  /* Equal jitter: half fixed, half random; the wake time is recorded, so replay agrees. */
  return (int64_t)(d / 2 + spine_wf_random(wf) * d / 2);
}

static int run_attempt(lua_State *L, spine_wf *wf);

static void backoff_fired(spine_wf *wf) {
  lua_pushnil(wf->co);
  spine_wf_resume(wf, 0);
}

static void retry_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_move(wf, SPINE_WF_PHASE_TIMER);
  spine_wf_timer(wf, wf->call.wake_ms, backoff_fired);
}

static int step_k(lua_State *L, int status, lua_KContext k) {
  (void)status;
  spine_wf *wf = (spine_wf *)spine_sandbox_limits(L);
  if (wf->call.kstate & SPINE_CTX_RAISE) {
    wf->call.kstate = 0;
    return lua_error(L);
  }
  lua_pop(L, 1);
  if (k == STEP_OK) return 1;
  if (k == STEP_FAILED) return lua_error(L);
  /* STEP_BACKOFF: the wait is over, try again. */
  lua_settop(L, 5);
  lua_pushinteger(L, lua_tointeger(L, 5) + 1);
  lua_replace(L, 5);
  return run_attempt(L, wf);
}

/* Stack: 1 name, 2 fn, 3 opts, 4 seq, 5 attempt. */
static int run_attempt(lua_State *L, spine_wf *wf) {
  const char *name = lua_tostring(L, 1);
  int seq = (int)lua_tointeger(L, 4);
  int attempt = (int)lua_tointeger(L, 5);
  spine_ctx__policy p = spine_ctx__check_policy(L, 3, step_policy);
  wf->call.in_step = 1;
  lua_pushvalue(L, 2);
  int st = lua_pcall(L, 0, 1, 0);
  wf->call.in_step = 0;
  if (wf->limits.tripped || wf->phase != SPINE_WF_PHASE_RUNNING) return lua_error(L);
  spine_buf json = SPINE_BUF_INIT;
  spine_err e;
  spine_err_clear(&e);
  if (st == LUA_OK && spine_codec_encode(L, -1, "result", &json, &e)) {
    lua_pop(L, 1);
    char msg[400];
    snprintf(msg, sizeof msg, "ctx.step \"%s\" returned a value that cannot be recorded: %s: %s",
             name, e.field, e.msg);
    spine_lerror_push(L, "invalid_argument", "bad_result", msg, NULL);
    st = LUA_ERRRUN;
  } else if (st != LUA_OK) {
    spine_ctx_normalize_error(wf, L, st);
  }
  spine_op *op = spine_wf_op_begin(wf);
  if (st == LUA_OK) {
    if (attempt > 1)
      spine_steplog_add_finish(op, wf, seq, "completed", spine_buf_str(&json), NULL, attempt);
    else
      spine_steplog_add_done(op, wf, seq, "step", name, "completed", spine_buf_str(&json), NULL, 1);
    spine_buf_free(&json);
    spine_wf_submit(wf, step_committed);
    return lua_yieldk(L, 0, STEP_OK, step_k);
  }
  spine_lerror_encode(L, -1, &json);
  if (attempt < p.attempts && retryable(L, lua_gettop(L))) {
    lua_pop(L, 1);
    wf->call.wake_ms = spine_wf_now(wf) + spine_ctx__backoff_ms(wf, &p, attempt);
    spine_steplog_add_retry(op, wf, seq, "step", name, spine_buf_str(&json), attempt,
                            wf->call.wake_ms);
    spine_buf_free(&json);
    spine_wf_submit(wf, retry_recorded);
    return lua_yieldk(L, 0, STEP_BACKOFF, step_k);
  }
  if (attempt > 1)
    spine_steplog_add_finish(op, wf, seq, "failed", NULL, spine_buf_str(&json), attempt);
  else
    spine_steplog_add_done(op, wf, seq, "step", name, "failed", NULL, spine_buf_str(&json), 1);
  spine_buf_free(&json);
  spine_wf_submit(wf, step_committed);
  return lua_yieldk(L, 0, STEP_FAILED, step_k);
}

static int ctx_step(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  spine_ctx__check_policy(L, 3, step_policy);
  lua_settop(L, 3);
  int seq;
  int m = spine_wf_next_step(wf, L, "step", name, &seq);
  if (m < 0) return lua_error(L);
  if (m == 0) {
    if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
    lua_pushinteger(L, seq);
    lua_pushinteger(L, 1);
    return run_attempt(L, wf);
  }
  /* Recorded, its entry at 4. A step waiting out a backoff waits again, then tries again. */
  lua_getfield(L, 4, "status");
  if (!strcmp(lua_tostring(L, -1), "retrying")) {
    if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
    lua_getfield(L, 4, "attempt");
    lua_Integer attempt = lua_tointeger(L, -1);
    lua_getfield(L, 4, "wake_at");
    int64_t wake = (int64_t)lua_tointeger(L, -1);
    lua_settop(L, 3);
    lua_pushinteger(L, seq);
    lua_pushinteger(L, attempt);
    spine_wf_move(wf, SPINE_WF_PHASE_TIMER);
    spine_wf_timer(wf, wake, backoff_fired);
    return lua_yieldk(L, 0, STEP_BACKOFF, step_k);
  }
  lua_pop(L, 1);
  return spine_ctx__replay_outcome(L);
}

/* ---- ctx.now, ctx.random, ctx.uuid, ctx.patched ---- */

static int simple_step(lua_State *L, const char *kind, void (*make)(lua_State *, spine_wf *)) {
  spine_wf *wf = spine_ctx__check_step(L);
  int seq;
  int m = spine_wf_next_step(wf, L, kind, kind, &seq);
  if (m < 0) return lua_error(L);
  if (m > 0) return spine_ctx__replay_outcome(L);
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  make(L, wf);
  return record_value(L, wf, seq, kind, kind);
}

static void make_now(lua_State *L, spine_wf *wf) {
  lua_pushnumber(L, (lua_Number)spine_wf_now(wf) / 1000.0);
}

static void make_random(lua_State *L, spine_wf *wf) {
  lua_pushnumber(L, spine_wf_random(wf));
}

static void make_uuid(lua_State *L, spine_wf *wf) {
  (void)wf;
  char id[37];
  spine_uuid(id);
  lua_pushstring(L, id);
}

static int ctx_now(lua_State *L) {
  return simple_step(L, "now", make_now);
}

/* The date of the recorded time on top, in the zone at 1 (ctx.today's). */
static int today_of(lua_State *L) {
  int64_t ms = (int64_t)floor(lua_tonumber(L, -1) * 1000 + 0.5);
  spine_lib_time_push_date(L, ms, 1, "ctx.today");
  return 1;
}

static int today_k(lua_State *L, int status, lua_KContext k) {
  keep_k(L, status, k); /* raises a failed checkpoint, else leaves the recorded time on top */
  return today_of(L);
}

/* ctx.today(zone?): the date of ctx.now() in zone (default UTC). The same step as ctx.now(), so
 * either replays the other's history. */
static int ctx_today(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  spine_lib_time_check_zone(L, 1, "ctx.today");
  lua_settop(L, 1);
  int seq;
  int m = spine_wf_next_step(wf, L, "now", "now", &seq);
  if (m < 0) return lua_error(L);
  if (m > 0) {
    spine_ctx__replay_outcome(L);
    return today_of(L);
  }
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  make_now(L, wf);
  return record_value_k(L, wf, seq, "now", "now", today_k);
}

/* ctx.date(t, zone?): the date of time t (seconds since the epoch, or ISO 8601) in zone. No
 * step: pure, as spine.time.date. */
static int ctx_date(lua_State *L) {
  int64_t ms = spine_lib_time_check(L, 1, "ctx.date", "t");
  spine_lib_time_push_date(L, ms, 2, "ctx.date");
  return 1;
}

static int ctx_random(lua_State *L) {
  return simple_step(L, "random", make_random);
}

static int ctx_uuid(lua_State *L) {
  return simple_step(L, "uuid", make_uuid);
}

static int ctx_patched(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  const char *id = luaL_checkstring(L, 1);
  if (wf->lseq <= wf->nlog) {
    /* Replaying: the branch is taken only if the history recorded it here. */
    spine_steplog_peek(wf, L, wf->lseq);
    int taken = 0;
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "kind");
      lua_getfield(L, -2, "name");
      taken = !strcmp(lua_tostring(L, -2), "patch") && !strcmp(lua_tostring(L, -1), id);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (taken) spine_wf_take_step(wf);
    lua_pushboolean(L, taken);
    return 1;
  }
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  int seq = wf->last_seq = wf->seq++;
  spine_wf_take_step(wf);
  lua_pushboolean(L, 1);
  return record_value(L, wf, seq, "patch", id);
}

/* ---- ctx.intent ---- */

/* The rejection is recorded; its error table is on top of the coroutine: raise it there. */
static void rejection_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_count_step(wf);
  spine_wf_resume(wf, 1);
}

/* Adds the failed intent step whose error table is on top of L. */
static void add_rejection(spine_op *op, spine_wf *wf, lua_State *L, int seq, const char *name) {
  spine_buf json = SPINE_BUF_INIT;
  spine_lerror_encode(L, -1, &json);
  spine_steplog_add_done(op, wf, seq, "intent", name, "failed", NULL, spine_buf_str(&json), 1);
  spine_buf_free(&json);
}

static int is_rejection(int code) {
  return code == SPINE_EINVAL || code == SPINE_ENOTFOUND || code == SPINE_ETRANSITION ||
         code == SPINE_ECONFLICT || code == SPINE_EREJECTED;
}

static void intent_done(spine_op *op) {
  spine_wf *wf = op->data;
  int seq = wf->call.wait_seq;
  if (op->status == 0) {
    const PGresult *r;
    int row = spine_op_row(op, op->nstmts - 1, &r); /* a merged intent step's is lent */
    spine_wf_count_step(wf);
    if (row >= 0)
      spine_ctx__push_json(wf->co, PQgetvalue(r, row, 0), (size_t)PQgetlength(r, row, 0));
    else
      lua_pushnil(wf->co);
    spine_wf_resume(wf, 0);
    return;
  }
  int step_key = op->status == SPINE_ECONFLICT && !strcmp(spine_op_error(op)->field, "steps_pkey");
  if (step_key || !is_rejection(op->status)) {
    spine_wf_checkpoint_failed(wf, op);
    return;
  }
  /* A rejection is an answer: record it, so replay raises it again. The error table is made
   * before the op is begun again, which frees the op's error. */
  lua_State *co = wf->co;
  spine_lerror_push(co, "rejected", spine_err_kind(op->status), spine_op_error(op)->msg,
                    spine_op_error(op)->field);
  const char *name = lua_tostring(co, 1); /* ctx.intent's first argument, on its frame */
  add_rejection(spine_wf_op_begin(wf), wf, co, seq, name);
  spine_wf_submit(wf, rejection_recorded);
}

static int ctx_intent(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  const char *name = luaL_checkstring(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  const spine_intent *in = spine_intents_find(name);
  if (!in)
    return spine_lerror_raise(L, "invalid_argument", "unknown_intent", "no intent named \"%s\"",
                              name);
  int seq;
  int m = spine_wf_next_step(wf, L, "intent", name, &seq);
  if (m < 0) return lua_error(L);
  if (m > 0) return spine_ctx__replay_outcome(L);
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);

  spine_op *op = spine_wf_op_begin(wf);
  char actor[sizeof "workflow:" + sizeof wf->id]; /* every intent step: no vfprintf */
  memcpy(actor, "workflow:", sizeof "workflow:" - 1);
  memcpy(actor + sizeof "workflow:" - 1, wf->id, strlen(wf->id) + 1);
  spine_intent_call call = {L, 2, op, wf->id, seq, actor, wf->trace_id};
  spine_err e;
  spine_err_clear(&e);
  wf->call.wait_seq = seq;
  int rc = in->apply(&call, &e);
  if (rc) {
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s%s%s", name, e.field, e.field[0] ? ": " : "", e.msg);
    spine_lerror_push(L, "rejected", spine_err_kind(rc), msg, e.field);
    add_rejection(op, wf, L, seq, name);
    spine_wf_submit(wf, step_committed);
    return lua_yieldk(L, 0, STEP_FAILED, keep_k);
  }
  /* The intent's result statement records the step itself (one statement), or STEP_INTENT
   * reads its result back. Either way the step's parameters are the same. */
  spine_stmt *last = op->nstmts ? &op->stmts[op->nstmts - 1] : NULL;
  int recorded = last ? spine_intents_recorded(last->sql, last->nparams) : -1;
  if (recorded >= 0) {
    last->sql = recorded;
    last->want_rows = 1;
  } else {
    spine_op_stmt(op, SPINE_SQL_STEP_INTENT, 1);
  }
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, name);
  spine_steplog_add_where(op, wf);
  spine_op_param_int(op, spine_wf_now(wf));
  spine_wf_submit(wf, intent_done);
  return lua_yieldk(L, 0, 0, spine_ctx__value_k);
}

/* ---- ctx.sleep, ctx.sleep_until ---- */

static void sleep_finished(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_count_step(wf);
  lua_pushnil(wf->co);
  spine_wf_resume(wf, 0);
}

static void sleep_fired(spine_wf *wf) {
  spine_op *op = spine_wf_op_begin(wf);
  spine_steplog_add_finish(op, wf, wf->call.wait_seq, "completed", NULL, NULL, 1);
  spine_wf_submit(wf, sleep_finished);
}

static void sleep_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_sleep(wf, wf->call.wake_ms, sleep_fired);
}

static int sleep_k(lua_State *L, int status, lua_KContext k) {
  (void)status, (void)k;
  spine_wf *wf = (spine_wf *)spine_sandbox_limits(L);
  if (wf->call.kstate & SPINE_CTX_RAISE) {
    wf->call.kstate = 0;
    return lua_error(L);
  }
  return 0;
}

static int sleep_to(lua_State *L, spine_wf *wf, int64_t wake) {
  int seq;
  int m = spine_wf_next_step(wf, L, "sleep", "sleep", &seq);
  if (m < 0) return lua_error(L);
  wf->call.wait_seq = seq;
  if (m > 0) {
    lua_getfield(L, -1, "status");
    int waiting = !strcmp(lua_tostring(L, -1), "waiting");
    lua_getfield(L, -2, "wake_at");
    wake = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 3);
    if (!waiting) return 0;
    if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
    spine_wf_move(wf, SPINE_WF_PHASE_TIMER);
    spine_wf_timer(wf, wake, sleep_fired);
    return lua_yieldk(L, 0, 0, sleep_k);
  }
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  char until[32], waiting_for[96];
  iso(wake, until);
  snprintf(waiting_for, sizeof waiting_for, "{\"kind\":\"timer\",\"until\":\"%s\"}", until);
  wf->call.wake_ms = wake;
  spine_op *op = spine_wf_op_begin(wf);
  spine_op_stmt(op, SPINE_SQL_STEP_WAIT, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, "sleep");
  spine_op_param(op, "sleep");
  spine_op_param(op, NULL);
  spine_op_param_int(op, wake);
  spine_steplog_add_where(op, wf);
  spine_wf_add_wait(op, wf, waiting_for, wake);
  spine_wf_submit(wf, sleep_recorded);
  return lua_yieldk(L, 0, 0, sleep_k);
}

static int ctx_sleep(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  int64_t ms = spine_ctx__duration(L, 1);
  return sleep_to(L, wf, spine_wf_now(wf) + ms);
}

static int ctx_sleep_until(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  int64_t at;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    at = (int64_t)(lua_tonumber(L, 1) * 1000);
  } else {
    spine_err e; /* ISO 8601, with an offset or in UTC */
    if (spine_calendar_parse_time(luaL_checkstring(L, 1), SPINE_CALENDAR_UTC, &at, &e))
      return luaL_argerror(L, 1, e.msg);
  }
  return sleep_to(L, wf, at);
}

/* ---- ctx.wait and child waits: signals ---- */

static void deliver(spine_wf *wf, int timeout);

static void delivered(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  PGresult *r = spine_op_result(op, op->nstmts - 1);
  if (r && PQntuples(r) == 1) {
    spine_wf_timer_cancel(wf);
    spine_wf_count_step(wf);
    wf->call.signal_pending = wf->call.timer_fired = 0;
    wf->call.match = NULL;
    spine_ctx__push_json(wf->co, PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    spine_wf_resume(wf, 0);
    return;
  }
  spine_wf_move(wf, SPINE_WF_PHASE_SIGNAL);
  if (wf->call.timer_fired)
    deliver(wf, 1);
  else if (wf->call.signal_pending)
    deliver(wf, 0);
}

/* Takes the oldest stored signal for the wait, or (timeout) ends the wait without one. */
static void deliver(spine_wf *wf, int timeout) {
  if (wf->op_inflight) {
    if (timeout)
      wf->call.timer_fired = 1;
    else
      wf->call.signal_pending = 1;
    return;
  }
  if (timeout) wf->call.timer_fired = 0;
  wf->call.signal_pending = 0;
  spine_op *op = spine_wf_op_fenced(wf); /* not op_begin: the row stays "waiting" */
  spine_op_stmt(op, SPINE_SQL_WAIT_DELIVER, 1);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, wf->call.wait_seq);
  spine_op_param(op, wf->call.signal);
  spine_op_param_bool(op, timeout);
  spine_op_param(op, wf->call.match);
  spine_wf_submit(wf, delivered);
}

static void wait_timeout(spine_wf *wf) {
  deliver(wf, 1);
}

int spine_ctx_cancel_waiting(spine_wf *wf) {
  spine_ctx_provider_free(wf); /* a provider step's backoff */
  spine_wf_push_stop(wf, wf->co);
  return 1;
}

static void signal_event(spine_wf *wf) {
  if (wf->phase == SPINE_WF_PHASE_SIGNAL && !wf->op_inflight)
    deliver(wf, 0);
  else
    wf->call.signal_pending = 1;
}

void spine_ctx_signal_arrived(spine_wf *wf) {
  if (!wf->npar) {
    signal_event(wf);
    return;
  }
  if (spine_wf_stopped(wf)) { /* being released: noted, so that it is claimed back */
    wf->call.signal_pending = 1;
    return;
  }
  spine_wf_hold(wf); /* offered to every waiting branch, one after the other */
  spine_wf_strand_offer(wf, signal_event);
  spine_wf_unhold(wf);
}

/* After WAIT_BEGIN (statement `i` of the op): resume at once or wait. */
static void wait_begun(spine_wf *wf, spine_op *op, int i) {
  PGresult *r = spine_op_result(op, i);
  spine_wf_row_waits(wf);
  if (r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "completed")) {
    spine_wf_count_step(wf);
    spine_ctx__push_json(wf->co, PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1),
                         (size_t)PQgetlength(r, 0, 1));
    spine_wf_resume(wf, 0);
    return;
  }
  spine_op_release(op); /* parked, perhaps for days: hold no buffers meanwhile */
  spine_wf_move(wf, SPINE_WF_PHASE_SIGNAL);
  if (wf->call.wake_ms) spine_wf_timer(wf, wf->call.wake_ms, wait_timeout);
  if (wf->call.signal_pending) deliver(wf, 0);
}

static void wait_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  wait_begun(wf, op, op->nstmts - 2);
}

/* Waits for signal `signal` whose payload holds `match` (JSON kept on the call's stack; NULL:
 * any) as step `seq` (kind, name); `wake` 0 = no deadline. The caller yields with its
 * continuation. */
static void start_wait(spine_wf *wf, int seq, const char *kind, const char *name,
                       const char *signal, const char *match, int64_t wake,
                       const char *waiting_kind) {
  wf->call.wait_seq = seq;
  snprintf(wf->call.signal, sizeof wf->call.signal, "%s", signal);
  wf->call.match = match;
  wf->call.wake_ms = wake;
  char until[32] = "";
  if (wake) iso(wake, until);
  spine_buf waiting_for = SPINE_BUF_INIT;
  spine_buf_printf(&waiting_for, "{\"kind\":\"%s\",\"name\":", waiting_kind);
  spine_log_json_string(&waiting_for, name, strlen(name));
  if (wake) spine_buf_printf(&waiting_for, ",\"until\":\"%s\"", until);
  if (match) spine_buf_printf(&waiting_for, ",\"match\":%s", match);
  spine_buf_putc(&waiting_for, '}');
  spine_op *op = &wf->op; /* the caller began it */
  spine_op_stmt(op, SPINE_SQL_WAIT_BEGIN, 1);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, kind);
  spine_op_param(op, name);
  spine_op_param(op, signal);
  if (wake)
    spine_op_param_int(op, wake);
  else
    spine_op_param(op, NULL);
  spine_op_param(op, match);
  spine_steplog_add_where(op, wf);
  spine_wf_add_wait(op, wf, spine_buf_str(&waiting_for), wake);
  spine_buf_free(&waiting_for);
}

/* A recorded step still waiting (the workflow was replayed): wait again, for the same signal
 * and match (the replayed call computed them as the first run did). Entry on top. */
static void rewait(lua_State *L, spine_wf *wf, int seq, const char *signal, const char *match) {
  lua_getfield(L, -1, "wake_at");
  int64_t wake = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : 0;
  lua_pop(L, 2);
  wf->call.wait_seq = seq;
  snprintf(wf->call.signal, sizeof wf->call.signal, "%s", signal);
  wf->call.match = match;
  wf->call.wake_ms = wake;
  spine_wf_move(wf, SPINE_WF_PHASE_SIGNAL);
  if (wake) spine_wf_timer(wf, wake, wait_timeout);
  deliver(wf, 0); /* a signal may have come while nobody held the workflow */
}

static int recorded_waiting(lua_State *L) {
  lua_getfield(L, -1, "status");
  int waiting = !strcmp(lua_tostring(L, -1), "waiting");
  lua_pop(L, 1);
  return waiting;
}

/* opts.match of ctx.wait (opts at index 2): pushes it as JSON, or nil when there is none or it
 * is empty. Each value must be a string, number or boolean: a signal matches when its payload
 * has each key with an equal value (jsonb containment). Raises naming the key. */
static void push_match(lua_State *L) {
  int t = lua_getfield(L, 2, "match");
  if (t == LUA_TNIL) return; /* the nil it pushed */
  if (t != LUA_TTABLE)
    spine_lerror_raise(L, "invalid_argument", "bad_argument",
                       "ctx.wait: match: not a table of payload fields ({task_id = id})");
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int vt = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING)
      spine_lerror_raise(L, "invalid_argument", "bad_argument",
                         "ctx.wait: match: a key is not a string");
    if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
      spine_lerror_raise(L, "invalid_argument", "bad_argument",
                         "ctx.wait: match.%s: not a string, number or boolean",
                         lua_tostring(L, -2));
    lua_pop(L, 1);
    n++;
  }
  spine_buf json = SPINE_BUF_INIT;
  spine_err e;
  spine_err_clear(&e);
  int rc = n ? spine_codec_encode(L, lua_gettop(L), "match", &json, &e) : 0;
  lua_pop(L, 1);
  if (rc) {
    spine_buf_free(&json);
    spine_lerror_raise(L, "invalid_argument", "bad_argument", "ctx.wait: %s: %s", e.field, e.msg);
  }
  if (n)
    lua_pushstring(L, spine_buf_str(&json));
  else
    lua_pushnil(L);
  spine_buf_free(&json);
}

static int ctx_wait(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  const char *name = luaL_checkstring(L, 1);
  luaL_argcheck(L, strlen(name) < sizeof wf->call.signal, 1, "signal name too long");
  int64_t timeout = 0;
  lua_settop(L, 2);
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    timeout = spine_ctx__field_duration(L, 2, "timeout", 0);
    push_match(L);
  } else {
    lua_pushnil(L);
  }
  const char *match = lua_tostring(L, 3); /* kept at 3 while the call waits */
  int seq;
  int m = spine_wf_next_step(wf, L, "wait", name, &seq);
  if (m < 0) return lua_error(L);
  if (m > 0 && !recorded_waiting(L)) return spine_ctx__replay_outcome(L);
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  if (m > 0) {
    rewait(L, wf, seq, name, match);
    return lua_yieldk(L, 0, 0, spine_ctx__value_k);
  }
  spine_wf_op_begin(wf);
  start_wait(wf, seq, "wait", name, name, match, timeout ? spine_wf_now(wf) + timeout : 0,
             "signal");
  spine_wf_submit(wf, wait_recorded);
  return lua_yieldk(L, 0, 0, spine_ctx__value_k);
}

/* ---- ctx.child, ctx.start ---- */

/* The child's end, as its signal payload on top: its result, or raise its failure. */
static int child_outcome(lua_State *L) {
  if (!lua_istable(L, -1)) return 1;
  lua_getfield(L, -1, "status");
  const char *status = lua_tostring(L, -1);
  if (status && !strcmp(status, "completed")) {
    lua_pop(L, 1);
    lua_getfield(L, -1, "result");
    return 1;
  }
  char msg[200];
  lua_getfield(L, -2, "id");
  snprintf(msg, sizeof msg, "child workflow %s ended %s", lua_tostring(L, -1),
           status ? status : "?");
  int payload = lua_gettop(L) - 2;
  spine_lerror_push(L, "child_failed", status ? status : "failed", msg, NULL);
  lua_getfield(L, payload, "error");
  lua_setfield(L, -2, "error");
  lua_getfield(L, payload, "id");
  lua_setfield(L, -2, "child");
  return lua_error(L);
}

static int child_k(lua_State *L, int status, lua_KContext k) {
  (void)status, (void)k;
  spine_wf *wf = (spine_wf *)spine_sandbox_limits(L);
  if (wf->call.kstate & SPINE_CTX_RAISE) {
    wf->call.kstate = 0;
    return lua_error(L);
  }
  return child_outcome(L);
}

/* Slots of ctx.child's and ctx.start's frame, kept across the yield for adopt_child. */
enum {
  CHILD_PROCESS = 1,
  CHILD_INPUT,
  CHILD_OPTS,
  CHILD_ID,
  CHILD_JSON,
  CHILD_VERSION,
  CHILD_VARIANT,
  CHILD_EXPERIMENT,
  CHILD_PARAMS
};

/* After the op that inserted the child committed: run the child here. */
static void adopt_child(spine_wf *wf) {
  lua_State *co = wf->co;
  spine_version *v = lua_touserdata(co, CHILD_VERSION);
  spine_err e;
  spine_err_clear(&e);
  if (spine_wf_adopt(wf->eng, lua_tostring(co, CHILD_ID), v, lua_tostring(co, CHILD_PROCESS),
                     lua_tostring(co, CHILD_JSON), wf->trace_id, wf->id, wf->call.wait_seq,
                     lua_tostring(co, CHILD_VARIANT), lua_tostring(co, CHILD_EXPERIMENT),
                     lua_tostring(co, CHILD_PARAMS), &e))
    spine_log_error("ctx", "cannot run child workflow", "workflow", wf->id, "error", e.msg, NULL);
}

static void child_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  adopt_child(wf);
  wait_begun(wf, op, op->nstmts - 2);
}

static void start_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_count_step(wf);
  adopt_child(wf);
  lua_pushvalue(wf->co, CHILD_ID);
  spine_wf_resume(wf, 0);
}

/* A string option of ctx.child's and ctx.start's third argument, or NULL. */
static const char *child_opt(lua_State *L, const char *name) {
  if (!lua_istable(L, CHILD_OPTS)) return NULL;
  lua_getfield(L, CHILD_OPTS, name);
  const char *s = lua_tostring(L, -1); /* kept alive by the options table */
  int bad = !lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING;
  lua_pop(L, 1);
  if (bad) spine_lerror_raise(L, "invalid_argument", "bad_option", "%s: expected a string", name);
  return s;
}

/* The dispatcher refused the child, or its variant's playbook is gone: a failed step, so that
 * a replay raises the same error whatever the manifests in force are by then. */
static int child_refused(lua_State *L, spine_wf *wf, int seq, const char *kind, const char *process,
                         const char *code, const spine_err *e) {
  char text[460], msg[600];
  snprintf(msg, sizeof msg, "%s: %s", process, spine_err_format(e, text, sizeof text));
  spine_lerror_push(L, "invalid_argument", code, msg, e->field[0] ? e->field : NULL);
  spine_buf json = SPINE_BUF_INIT;
  spine_lerror_encode(L, -1, &json);
  spine_op *op = spine_wf_op_begin(wf);
  spine_steplog_add_done(op, wf, seq, kind, process, "failed", NULL, spine_buf_str(&json), 1);
  spine_buf_free(&json);
  spine_wf_submit(wf, step_committed);
  return lua_yieldk(L, 0, STEP_FAILED, keep_k);
}

/* ctx.child(process, input [, opts]) and ctx.start: a process with a manifest in force goes
 * through the dispatcher (its variant's playbook, parameters and experiment, counted like a
 * case of `spine start`); opts.playbook runs that playbook instead, unrouted; opts.subject
 * routes by that key instead of the manifest's subject field. */
static int child_or_start(lua_State *L, int wait) {
  spine_wf *wf = spine_ctx__check_step(L);
  const char *process = luaL_checkstring(L, CHILD_PROCESS);
  if (lua_isnoneornil(L, CHILD_INPUT)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  luaL_checktype(L, CHILD_INPUT, LUA_TTABLE);
  if (!lua_isnoneornil(L, CHILD_OPTS)) luaL_checktype(L, CHILD_OPTS, LUA_TTABLE);
  lua_settop(L, CHILD_OPTS);
  const char *playbook = child_opt(L, "playbook");
  const char *subject = child_opt(L, "subject");
  const spine_router_port *router = spine_wf_router(wf);
  int routed = router->impl && !playbook && !spine_playbook_is_path(process);
  spine_err e;
  spine_err_clear(&e);
  spine_version *v = NULL;
  if (!routed && !(v = spine_version_get(wf->eng, playbook ? playbook : process, &e)))
    return spine_lerror_raise(L, "invalid_argument", "unknown_process", "%s", e.msg);
  spine_buf input = SPINE_BUF_INIT;
  if (spine_codec_encode(L, CHILD_INPUT, "input", &input, &e)) {
    spine_buf_free(&input);
    return spine_lerror_raise(L, "invalid_argument", "bad_input", "%s: %s", e.field, e.msg);
  }
  const char *kind = wait ? "child" : "start";
  int seq;
  int m = spine_wf_next_step(wf, L, kind, process, &seq);
  if (m < 0) {
    spine_buf_free(&input);
    return lua_error(L);
  }
  char child_id[100];
  snprintf(child_id, sizeof child_id, "%s.%d", wf->id, seq);
  char signal[64];
  snprintf(signal, sizeof signal, "spine.child:%d", seq);
  if (m > 0) {
    spine_buf_free(&input);
    if (!wait) {
      lua_getfield(L, -1, "status");
      int failed = !strcmp(lua_tostring(L, -1), "failed");
      lua_pop(L, 1);
      if (failed) return spine_ctx__replay_outcome(L);
      lua_getfield(L, -1, "result");
      lua_getfield(L, -1, "id");
      return 1;
    }
    if (!recorded_waiting(L)) {
      lua_getfield(L, -1, "status");
      int failed = !strcmp(lua_tostring(L, -1), "failed");
      lua_pop(L, 1);
      if (failed) return spine_ctx__replay_outcome(L);
      lua_getfield(L, -1, "result");
      return child_outcome(L);
    }
    if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
    rewait(L, wf, seq, signal, NULL);
    return lua_yieldk(L, 0, 0, child_k);
  }
  if (spine_ctx__cancelled(wf)) {
    spine_buf_free(&input);
    return spine_ctx__raise_cancel(L);
  }
  spine_child_route route = {0};
  if (routed) {
    int r = router->route(router->impl, process, spine_buf_str(&input), subject, &route, &e);
    if (r < 0) {
      spine_buf_free(&input);
      return child_refused(L, wf, seq, kind, process, "routing_refused", &e);
    }
    routed = r == 1;
    if (!(v = spine_version_get(wf->eng, routed ? route.playbook : process, &e))) {
      router->release(router->impl, &route);
      spine_buf_free(&input);
      return child_refused(L, wf, seq, kind, process, "unknown_process", &e);
    }
  }
  lua_pushstring(L, child_id);              /* CHILD_ID */
  lua_pushstring(L, spine_buf_str(&input)); /* CHILD_JSON */
  lua_pushlightuserdata(L, v);              /* CHILD_VERSION */
  lua_pushstring(L, route.variant);         /* CHILD_VARIANT (nil: none) */
  lua_pushstring(L, route.experiment);      /* CHILD_EXPERIMENT */
  lua_pushstring(L, route.params);          /* CHILD_PARAMS */
  wf->call.wait_seq = seq;
  spine_op *op = spine_wf_op_begin(wf);
  spine_wf_add_insert(wf->eng, op, child_id, v, process, spine_buf_str(&input), wf->trace_id,
                      wf->id, seq, routed ? &route : NULL);
  if (routed) router->release(router->impl, &route);
  spine_buf_free(&input);
  if (!wait) {
    spine_buf res = SPINE_BUF_INIT;
    spine_buf_puts(&res, "{\"id\":");
    spine_log_json_string(&res, child_id, strlen(child_id));
    spine_buf_putc(&res, '}');
    spine_steplog_add_done(op, wf, seq, "start", process, "completed", spine_buf_str(&res), NULL,
                           1);
    spine_buf_free(&res);
    spine_wf_submit(wf, start_recorded);
    return lua_yieldk(L, 0, 0, spine_ctx__value_k);
  }
  start_wait(wf, seq, "child", process, signal, NULL, 0, "child");
  spine_wf_submit(wf, child_recorded);
  return lua_yieldk(L, 0, 0, child_k);
}

static int ctx_child(lua_State *L) {
  return child_or_start(L, 1);
}

static int ctx_start(lua_State *L) {
  return child_or_start(L, 0);
}

/* ---- state, attributes, logs, failure, compensation ---- */

static int ctx_state(lua_State *L) {
  spine_wf *wf = spine_ctx__check_wf(L);
  const char *s = luaL_checkstring(L, 1);
  luaL_argcheck(L, strlen(s) <= 200, 1, "state name longer than 200 bytes");
  spine_wf_set_state(wf, s);
  return 0;
}

static int ctx_set(lua_State *L) {
  spine_wf *wf = spine_ctx__check_wf(L);
  const char *key = luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  spine_buf tmp = SPINE_BUF_INIT;
  spine_err e;
  int rc = spine_codec_encode(L, 2, key, &tmp, &e);
  spine_buf_free(&tmp);
  if (rc) return luaL_argerror(L, 2, e.msg);
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  lua_rawgeti(L, -1, SPINE_ANCHOR_ATTRS);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  spine_wf_attrs_changed(wf);
  return 0;
}

/* ctx.param(name [, default]): the parameter `name` of the variant the dispatcher chose (its
 * manifest's "params", stored on the workflow when the case started: the same on every
 * replay), or `default` when the variant gives none. Not a step: it reads what is fixed. */
static int ctx_param(lua_State *L) {
  spine_wf *wf = spine_ctx__check_wf(L);
  luaL_checkstring(L, 1);
  lua_settop(L, 2);
  if (wf->params) {
    spine_err e;
    if (spine_codec_decode(L, wf->params, strlen(wf->params), &e) == 0 && lua_istable(L, -1)) {
      lua_pushvalue(L, 1);
      if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    }
  }
  lua_settop(L, 2);
  return 1;
}

/* ctx.outcome(name): the business outcome `spine experiments` counts per variant (both endings
 * of a process are often `completed`). A step, so a replay names the same one at the same
 * place; the last one named is the workflow's. */
static int ctx_outcome(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  int good = len > 0 && len <= 64 && name[0] >= 'a' && name[0] <= 'z';
  for (size_t i = 0; good && i < len; i++)
    good =
        (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_';
  luaL_argcheck(L, good, 1, "an outcome is a name: [a-z][a-z0-9_]*, at most 64 bytes");
  int seq;
  int m = spine_wf_next_step(wf, L, "outcome", name, &seq);
  if (m < 0) return lua_error(L);
  if (m > 0) return spine_ctx__replay_outcome(L);
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  spine_wf_set_outcome(wf, name);
  lua_settop(L, 1);
  return record_value(L, wf, seq, "outcome", name);
}

static int ctx_log(lua_State *L) {
  spine_wf *wf = spine_ctx__check_wf(L);
  const char *level = luaL_checkstring(L, 1);
  const char *msg = luaL_checkstring(L, 2);
  spine_log_level lv;
  if (spine_log_parse_level(level, &lv))
    return luaL_argerror(L, 1, "level must be debug, info, warn or error");
  if (wf->lseq <= wf->nlog) return 0; /* replaying: it was logged the first time */
  spine_buf m = SPINE_BUF_INIT;
  spine_buf_puts(&m, ",\"workflow\":");
  spine_log_json_string(&m, wf->id, strlen(wf->id));
  spine_buf_printf(&m, ",\"trace_id\":\"%s\"", wf->trace_id);
  if (!lua_isnoneornil(L, 3)) {
    spine_buf_puts(&m, ",\"fields\":");
    if (spine_codec_encode(L, 3, "fields", &m, NULL)) spine_buf_puts(&m, "null");
  }
  spine_log_raw(lv, "playbook", msg, m.data ? m.data : "", m.len);
  spine_buf_free(&m);
  return 0;
}

static int ctx_fail(lua_State *L) {
  spine_ctx__check_wf(L);
  const char *code = luaL_checkstring(L, 1);
  const char *message = luaL_optstring(L, 2, code);
  lua_settop(L, 3); /* the details, or nil: the error table goes above them */
  spine_lerror_push(L, "business", code, message, NULL);
  if (!lua_isnil(L, 3)) {
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "details");
  }
  char where[300];
  spine_lerror_where(L, where, sizeof where);
  if (where[0]) {
    lua_pushstring(L, where);
    lua_setfield(L, -2, "where");
  }
  return lua_error(L);
}

static int ctx_compensate(lua_State *L) {
  spine_wf *wf = spine_ctx__check_wf(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  spine_wf_push_comps(wf, L); /* the main body's, or its branch's until the parallel ends */
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

int spine_ctx_mark_compensation(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  lua_Integer i = luaL_checkinteger(L, 1);
  char name[32];
  snprintf(name, sizeof name, "compensation %lld", (long long)i);
  int seq;
  int m = spine_wf_next_step(wf, L, "compensate", name, &seq);
  if (m < 0) return lua_error(L);
  if (m > 0) return 0;
  lua_pushboolean(L, 1);
  return record_value(L, wf, seq, "compensate", name);
}

/* ---- the ctx object ---- */

static int ctx_index(lua_State *L) {
  const char *key = luaL_checkstring(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  spine_limits *lim = spine_sandbox_limits(L);
  if (!lim) return 0;
  spine_wf *wf = (spine_wf *)lim;
  if (!strcmp(key, "id"))
    lua_pushstring(L, wf->id);
  else if (!strcmp(key, "process"))
    lua_pushstring(L, wf->process);
  else if (!strcmp(key, "playbook"))
    lua_pushstring(L, spine_version_name(wf->version));
  else if (!strcmp(key, "version"))
    lua_pushstring(L, spine_version_hash(wf->version));
  else if (!strcmp(key, "attempt"))
    lua_pushinteger(L, wf->attempt);
  else if (!strcmp(key, "trace_id"))
    lua_pushstring(L, wf->trace_id);
  else if (!strcmp(key, "parent_id") && wf->parent_id)
    lua_pushstring(L, wf->parent_id);
  else if (!strcmp(key, "variant") && wf->variant)
    lua_pushstring(L, wf->variant);
  else if (!strcmp(key, "experiment") && wf->experiment)
    lua_pushstring(L, wf->experiment);
  else if (!strcmp(key, "calendar")) { /* the playbook's own, checked when it was compiled */
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, spine_version_module(wf->version)) == LUA_TTABLE)
      lua_getfield(L, -1, "calendar");
    else
      lua_pushnil(L);
  } else
    lua_pushnil(L);
  return 1;
}

static int ctx_newindex(lua_State *L) {
  return luaL_error(L, "ctx is read-only");
}

void spine_ctx_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"intent", ctx_intent},
      {"step", ctx_step},
      {"provider", spine_ctx__provider},
      {"sleep", ctx_sleep},
      {"sleep_until", ctx_sleep_until},
      {"wait", ctx_wait},
      {"now", ctx_now},
      {"today", ctx_today},
      {"date", ctx_date},
      {"random", ctx_random},
      {"uuid", ctx_uuid},
      {"patched", ctx_patched},
      {"child", ctx_child},
      {"start", ctx_start},
      {"state", ctx_state},
      {"set", ctx_set},
      {"param", ctx_param},
      {"outcome", ctx_outcome},
      {"log", ctx_log},
      {"fail", ctx_fail},
      {"compensate", ctx_compensate},
      {"parallel", spine_ctx__parallel},
      {NULL, NULL},
  };
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 4);
  luaL_newlib(L, fns);
  lua_pushcclosure(L, ctx_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ctx_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "ctx");
  lua_setfield(L, -2, "__name");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}
