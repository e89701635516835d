/* ctx.parallel(branches, opts): branches run side by side inside one workflow, each a function
 * of ctx on its own coroutine (a strand, workflow_strand.c), its steps numbered within it.
 *
 *   all   returns every branch's result, keyed as the branches; fails as soon as one fails
 *   any   returns the first branch to succeed (key, result); fails when all failed
 *   race  returns the first branch to end (key, result), or raises its error
 *
 * Its own step (kind "parallel", in the caller's strand) is written when it starts (with its
 * deadline, opts.timeout) and finished when it decides, in one op with the cancellation of the
 * waits of the branches it does not wait for any more. Every branch starts (in key order)
 * before it may decide, so that a replay, which runs each branch as far as the history goes,
 * finds the same branches under way; a parallel whose outcome the history holds replays each
 * branch up to its first step that was not finished, where it was cancelled. Cancelled
 * branches raise the cancellation where they wait; once every branch ended, the compensations
 * of the branches it does not return (the cancelled ones, the failed ones, every one when it
 * fails) run in reverse order of registration, branch after branch in reverse key order, as
 * the parallel's undo (steps of path "<n>!"); the others' join the caller's. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctx.h"
#include "ctx_internal.h"
#include "engine_internal.h"
#include "lerror.h"
#include "log.h"
#include "sql.h"
#include "steplog.h"
#include "workflow_internal.h"

/* Limits: a hostile playbook costs its own workflow only. */
#define MAX_BRANCHES 64  /* a parallel */
#define MAX_DEPTH    8   /* parallels inside branches of parallels */
#define MAX_STRANDS  512 /* branches under way in one workflow, all levels */
#define MAX_KEY      32

enum { MODE_ALL, MODE_ANY, MODE_RACE };
static const char *const mode_names[] = {"all", "any", "race"};

static void check(spine_wf *wf, spine_par *p);

/* ---- the values it keeps: values[i] a branch's result or error, values[0] its error ---- */

static void push_value(spine_wf *wf, spine_par *p, int i) {
  lua_State *L = wf->eng->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->values_ref);
  lua_rawgeti(L, -1, i);
  lua_remove(L, -2);
}

/* Sets values[i] to the value on top of L (popped). */
static void set_value(spine_wf *wf, spine_par *p, int i) {
  lua_State *L = wf->eng->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->values_ref);
  lua_insert(L, -2);
  lua_rawseti(L, -2, i);
  lua_pop(L, 1);
}

static void push_key(lua_State *L, const spine_par *p, const spine_strand *s) {
  if (p->list)
    lua_pushinteger(L, s->index + 1);
  else
    lua_pushstring(L, s->key);
}

void spine_ctx_parallel_free(spine_wf *wf, spine_par *p) {
  spine_clock_remove(wf->eng, &p->timer);
  if (p->values_ref != LUA_NOREF) luaL_unref(wf->eng->L, LUA_REGISTRYINDEX, p->values_ref);
  for (int i = 0; i < p->n; i++)
    if (p->br[i]) spine_wf_strand_free(wf, p->br[i]);
  if (p->undo) spine_wf_strand_free(wf, p->undo);
  free(p->br);
  free(p->prefix);
  free(p);
  wf->npar--;
}

/* ---- the end: the caller resumes ---- */

/* With the caller loaded: its compensations get those of the branches it returns, then it
 * resumes with the outcome. */
static void finish_event(spine_wf *wf) {
  if (spine_wf_stopped(wf)) return;
  spine_par *p = wf->call.par;
  lua_State *L = wf->eng->L, *co = wf->co;
  int top = lua_gettop(L);
  if (p->ok) {
    spine_wf_push_comps(wf, L);
    int comps = lua_gettop(L);
    for (int i = 0; i < p->n; i++) {
      if (p->mode != MODE_ALL && i != p->winner) continue;
      if (p->br[i]->comps_ref == LUA_NOREF) continue;
      lua_rawgeti(L, LUA_REGISTRYINDEX, p->br[i]->comps_ref);
      lua_Integer n = luaL_len(L, -1);
      for (lua_Integer j = 1; j <= n; j++) {
        lua_rawgeti(L, -1, j);
        lua_rawseti(L, comps, luaL_len(L, comps) + 1);
      }
      lua_pop(L, 1);
    }
    lua_settop(L, top);
    if (p->mode == MODE_ALL) {
      lua_createtable(L, p->list ? p->n : 0, p->list ? 0 : p->n);
      for (int i = 0; i < p->n; i++) {
        push_key(L, p, p->br[i]);
        push_value(wf, p, i + 1);
        lua_rawset(L, -3);
      }
    } else {
      lua_createtable(L, 2, 0);
      push_key(L, p, p->br[p->winner]);
      lua_rawseti(L, -2, 1);
      push_value(wf, p, p->winner + 1);
      lua_rawseti(L, -2, 2);
    }
  } else {
    push_value(wf, p, 0);
  }
  lua_xmove(L, co, 1);
  lua_settop(L, top);
  int ok = p->ok;
  wf->call.par = NULL;
  spine_ctx_parallel_free(wf, p);
  if (!wf->npar) { /* the main body alone again: no strand records */
    spine_strand *m = wf->main;
    wf->main = NULL;
    spine_wf_strand_free(wf, m); /* loaded: its call is the workflow's, kept */
    wf->cur = NULL;
    wf->path = NULL;
  }
  spine_wf_resume(wf, !ok);
}

/* ---- compensations ---- */

static void undo_start(spine_wf *wf) {
  if (spine_wf_stopped(wf)) return;
  spine_wf_start_strand(wf, 2);
}

/* Every branch ended: the compensations of those it does not return run, in reverse order of
 * registration (branch by branch, in reverse key order), then the caller resumes. */
static void undo(spine_wf *wf, spine_par *p) {
  p->finishing = 1;
  lua_State *L = wf->eng->L;
  int top = lua_gettop(L);
  lua_newtable(L);
  int list = lua_gettop(L);
  for (int i = 0; i < p->n; i++) {
    if (p->ok && (p->mode == MODE_ALL || i == p->winner)) continue;
    if (p->br[i]->comps_ref == LUA_NOREF) continue;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->br[i]->comps_ref);
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer j = 1; j <= n; j++) {
      lua_rawgeti(L, -1, j);
      lua_rawseti(L, list, luaL_len(L, list) + 1);
    }
    lua_pop(L, 1);
  }
  if (luaL_len(L, list) == 0) {
    lua_settop(L, top);
    spine_wf_strand_post(wf, p->parent, finish_event);
    return;
  }
  char path[600];
  snprintf(path, sizeof path, "%.*s!", (int)strlen(p->prefix) - 1, p->prefix);
  lua_State *co = lua_newthread(L); /* kept by the parallel's table */
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->values_ref);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "undo");
  lua_pop(L, 2);
  spine_strand *u = spine_wf_strand_new(wf, p, path, NULL, -1, LUA_NOREF);
  if (!u) abort();
  u->undo = 1;
  u->co = co;
  u->nlog = spine_steplog_count(wf, L, path);
  spine_sandbox_attach(co, &wf->limits);
  p->undo = u;
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->eng->runner_ref);
  lua_pushvalue(L, list);
  lua_pushcfunction(L, spine_ctx_mark_compensation);
  lua_xmove(L, co, 3);
  lua_settop(L, top);
  spine_wf_strand_post(wf, u, undo_start);
}

static void undo_ended(spine_wf *wf, spine_par *p, int ok) {
  lua_State *L = wf->eng->L;
  spine_wf_move(wf, SPINE_WF_PHASE_PARALLEL);
  if (!ok) { /* an undo failed: the parallel fails, the first error kept */
    lua_xmove(wf->co, L, 1);
    if (p->ok) {
      p->ok = 0;
      set_value(wf, p, 0);
    } else {
      push_value(wf, p, 0);
      if (lua_istable(L, -1)) {
        lua_insert(L, -2);
        lua_setfield(L, -2, "compensation_error");
      } else {
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(wf->co, 0);
  spine_wf_strand_post(wf, p->parent, finish_event);
}

/* ---- cancellation ---- */

static void cancel_rest(spine_wf *wf, spine_par *p);

/* The error a branch stops with when its parallel no longer waits for it. */
static void push_cancelled(spine_wf *wf, lua_State *L) {
  if (wf->cancel_requested)
    spine_wf_push_stop(wf, L);
  else
    spine_lerror_push(L, "cancelled", "branch_cancelled",
                      "the branch was cancelled: its ctx.parallel ended without it", NULL);
}

/* With a cancelled branch loaded: it raises the cancellation where it waits; one waiting for
 * a parallel of its own has it stop first (decided with the outer one, in its op). */
static void cancel_event(spine_wf *wf) {
  if (spine_wf_stopped(wf)) return;
  spine_par *q = wf->call.par;
  if (wf->phase == SPINE_WF_PHASE_PARALLEL && q) {
    cancel_rest(wf, q);
    check(wf, q);
    return;
  }
  spine_wf_timer_cancel(wf);
  spine_ctx_cancel_waiting(wf);
  spine_wf_resume(wf, 1);
}

static void cancel_rest(spine_wf *wf, spine_par *p) {
  for (int i = 0; i < p->n; i++) {
    spine_strand *s = p->br[i];
    if (s->ended || s->cancelled) continue;
    s->cancelled = 1;
    /* Not started yet (a parallel inside a cancelled branch): it starts as its replay would,
     * and its first step raises the cancellation. */
    if (!s->started) continue;
    spine_wf_strand_quiet(wf, s);
    spine_wf_strand_post(wf, s, cancel_event);
  }
}

/* ---- deciding ---- */

/* Adds to `op` the end of `p`'s step and of the parallels its undecided branches wait for
 * (failed with the cancellation), marking them decided. */
static void add_decision(spine_wf *wf, spine_op *op, spine_par *p) {
  lua_State *L = wf->eng->L;
  spine_buf res = SPINE_BUF_INIT, err = SPINE_BUF_INIT;
  if (p->ok) {
    spine_buf_printf(&res, "{\"mode\":\"%s\"", mode_names[p->mode]);
    if (p->mode != MODE_ALL) {
      spine_buf_puts(&res, ",\"winner\":");
      if (p->list)
        spine_buf_printf(&res, "%d", p->winner + 1);
      else
        spine_buf_printf(&res, "\"%s\"", p->br[p->winner]->key);
    }
    spine_buf_putc(&res, '}');
  } else {
    push_value(wf, p, 0);
    spine_lerror_encode(L, -1, &err);
    lua_pop(L, 1);
  }
  spine_steplog_add_finish(op, wf, p->seq, p->ok ? "completed" : "failed",
                           p->ok ? spine_buf_str(&res) : NULL, p->ok ? NULL : spine_buf_str(&err),
                           1);
  spine_buf_free(&res);
  spine_buf_free(&err);
  for (int i = 0; i < p->n; i++) {
    spine_strand *s = p->br[i];
    spine_par *q = s->call.par;
    if (s->ended || !q || q->decided) continue;
    q->decided = 1;
    q->ok = 0;
    push_cancelled(wf, L);
    set_value(wf, q, 0);
    add_decision(wf, op, q);
  }
}

static void decided(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_count_step(wf);
  spine_op_release(op);
  spine_wf_move(wf, SPINE_WF_PHASE_PARALLEL);
  /* The loaded strand decided for the parallel it waits for (a timeout, a cancel), or for the
   * one it ended in. */
  spine_par *p = wf->call.par ? wf->call.par : wf->cur->par;
  cancel_rest(wf, p);
  check(wf, p);
}

/* The outcome is known (ok, the winner; else the error in values[0]): recorded, then the
 * branches still under way are cancelled. */
static void decide(spine_wf *wf, spine_par *p, int ok, int winner) {
  p->decided = 1;
  p->ok = ok != 0;
  p->winner = winner;
  spine_op *op = spine_wf_op_begin(wf);
  add_decision(wf, op, p);
  spine_op_stmt(op, SPINE_SQL_STEPS_CANCEL, 0);
  spine_op_param(op, wf->id);
  spine_op_param(op, p->prefix);
  spine_wf_submit(wf, decided);
}

/* All branches started: does it know its outcome? */
static void evaluate(spine_wf *wf, spine_par *p) {
  lua_State *L = wf->eng->L;
  int nfailed = 0, first_ok = -1, first_failed = -1, first_ended = -1;
  for (int i = 0; i < p->n; i++) {
    spine_strand *s = p->br[i];
    if (!s->ended) continue;
    if (first_ended < 0) first_ended = i;
    if (s->failed) {
      nfailed++;
      if (first_failed < 0) first_failed = i;
    } else if (first_ok < 0) {
      first_ok = i;
    }
  }
  switch (p->mode) {
    case MODE_ALL:
      if (first_failed >= 0) {
        push_value(wf, p, first_failed + 1);
        set_value(wf, p, 0);
        decide(wf, p, 0, -1);
      } else if (p->nended == p->n) {
        decide(wf, p, 1, -1);
      }
      return;
    case MODE_ANY:
      if (first_ok >= 0) {
        decide(wf, p, 1, first_ok);
      } else if (nfailed == p->n) {
        spine_lerror_push(L, "failed", "all_branches_failed",
                          "ctx.parallel (any): every branch failed", NULL);
        lua_createtable(L, 0, p->n);
        for (int i = 0; i < p->n; i++) {
          push_key(L, p, p->br[i]);
          push_value(wf, p, i + 1);
          lua_rawset(L, -3);
        }
        lua_setfield(L, -2, "errors");
        set_value(wf, p, 0);
        decide(wf, p, 0, -1);
      }
      return;
    default: /* race */
      if (first_ended < 0) return;
      if (p->br[first_ended]->failed) {
        push_value(wf, p, first_ended + 1);
        set_value(wf, p, 0);
        decide(wf, p, 0, -1);
      } else {
        decide(wf, p, 1, first_ended);
      }
  }
}

static void check(spine_wf *wf, spine_par *p) {
  if (spine_wf_stopped(wf) || p->finishing || p->nstarted < p->n) return;
  if (!p->decided) {
    evaluate(wf, p);
    return;
  }
  if (p->nended < p->n || wf->op_inflight) return;
  /* A replayed success needs the branches it returns to succeed again. */
  for (int i = 0; p->recorded && p->ok && i < p->n; i++)
    if ((p->mode == MODE_ALL || i == p->winner) && p->br[i]->failed) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "non-determinism: the history's ctx.parallel returned branch %s, which fails now",
               p->br[i]->key);
      spine_wf_stuck(wf, "non_determinism", msg);
      return;
    }
  undo(wf, p);
}

void spine_ctx_parallel_ended(spine_wf *wf, int ok, int nres) {
  spine_strand *s = wf->cur;
  spine_par *p = s->par;
  lua_State *L = wf->eng->L, *co = wf->co;
  if (s->index < 0) {
    undo_ended(wf, p, ok);
    return;
  }
  if (ok && nres == 0) lua_pushnil(co);
  if (ok && nres > 1) lua_pop(co, nres - 1); /* its first result */
  lua_xmove(co, L, 1);
  set_value(wf, p, s->index + 1);
  lua_settop(co, 0);
  s->ended = 1;
  s->failed = !ok;
  p->nended++;
  spine_wf_move(wf, SPINE_WF_PHASE_PARALLEL);
  check(wf, p);
}

/* ---- starting ---- */

static void start_event(spine_wf *wf) {
  if (spine_wf_stopped(wf)) return;
  spine_strand *s = wf->cur;
  spine_par *p = s->par;
  s->started = 1;
  p->nstarted++;
  spine_wf_start_strand(wf, 1);
  if (!spine_wf_stopped(wf) && p->nstarted == p->n && !wf->op_inflight &&
      wf->phase != SPINE_WF_PHASE_RUNNING)
    check(wf, p);
}

/* Its deadline passed: it fails with a timeout, its branches cancelled. */
static void timeout_event(spine_wf *wf) {
  spine_par *p = wf->call.par;
  if (spine_wf_stopped(wf) || !p || p->decided) return;
  if (p->nstarted < p->n) { /* its branches start first */
    spine_wf_strand_post(wf, wf->cur, timeout_event);
    return;
  }
  char msg[200];
  snprintf(msg, sizeof msg, "ctx.parallel (%s): the branches did not end in time",
           mode_names[p->mode]);
  spine_lerror_push(wf->eng->L, "timeout", "timeout", msg, NULL);
  set_value(wf, p, 0);
  decide(wf, p, 0, -1);
}

static void par_timer_fired(spine_timer *t) {
  spine_par *p = (spine_par *)((char *)t - offsetof(spine_par, timer));
  spine_wf *wf = p->parent->wf;
  spine_wf_hold(wf);
  spine_wf_strand_post(wf, p->parent, timeout_event);
  spine_wf_unhold(wf);
}

static void cancel_all_event(spine_wf *wf) {
  spine_par *p = wf->call.par;
  if (spine_wf_stopped(wf) || !p) return;
  if (p->nstarted < p->n) {
    spine_wf_strand_post(wf, wf->cur, cancel_all_event);
    return;
  }
  if (p->decided) return; /* its branches are being cancelled already */
  spine_wf_push_stop(wf, wf->eng->L);
  set_value(wf, p, 0);
  decide(wf, p, 0, -1);
}

void spine_ctx_parallel_cancel(spine_wf *wf) {
  spine_wf_strand_post(wf, wf->main, cancel_all_event);
}

/* Its branches start, in key order, before anything else that is queued. */
static void begin(spine_wf *wf, spine_par *p) {
  if (p->deadline && !p->recorded) spine_clock_add(wf->eng, &p->timer, p->deadline);
  for (int i = 0; i < p->n; i++)
    spine_wf_strand_post(wf, p->br[i], start_event);
}

static void recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_count_step(wf);
  spine_op_release(op);
  spine_wf_move(wf, SPINE_WF_PHASE_PARALLEL);
  begin(wf, wf->call.par);
}

/* ---- the call ---- */

static int par_k(lua_State *L, int status, lua_KContext k) {
  (void)status;
  spine_wf *wf = (spine_wf *)spine_sandbox_limits(L);
  if (wf->call.kstate & SPINE_CTX_RAISE) {
    wf->call.kstate = 0;
    return lua_error(L);
  }
  wf->call.kstate = 0;
  if (k == MODE_ALL) return 1;
  int t = lua_gettop(L);
  lua_rawgeti(L, t, 1);
  lua_rawgeti(L, t, 2);
  return 2;
}

static int valid_name(const char *s, size_t len) {
  if (len == 0 || len > MAX_KEY || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int limit(lua_State *L, const char *what, int n) {
  return spine_lerror_raise(L, "limit", "parallel_limit", "ctx.parallel: %s %d%s", what, n,
                            " (a limit of the engine, see docs/playbooks.md)");
}

/* Stack: 1 branches, 2 opts. Checks them and sorts the keys into `keys` (names; NULL for a
 * list), returning the number of branches. Raises on a bad argument or a limit. */
static int check_branches(lua_State *L, spine_wf *wf, const char ***keys, int *list) {
  int n = 0, ints = 0, names = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    n++;
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t len;
      const char *k = lua_tolstring(L, -2, &len);
      if (!valid_name(k, len))
        return spine_lerror_raise(L, "invalid_argument", "bad_argument",
                                  "ctx.parallel: branch \"%s\": a key is a name ([a-z][a-z0-9_]*, "
                                  "at most 32 bytes)",
                                  k);
      names++;
    } else if (lua_isinteger(L, -2)) {
      ints++;
    } else {
      return spine_lerror_raise(L, "invalid_argument", "bad_argument",
                                "ctx.parallel: the branches are a table of functions keyed by "
                                "names, or a list of functions");
    }
    if (lua_type(L, -1) != LUA_TFUNCTION)
      return spine_lerror_raise(L, "invalid_argument", "bad_argument",
                                "ctx.parallel: a branch is not a function");
    lua_pop(L, 1);
    if (n > MAX_BRANCHES) return limit(L, "more branches than", MAX_BRANCHES), 0;
  }
  if (n == 0)
    return spine_lerror_raise(L, "invalid_argument", "bad_argument", "ctx.parallel: no branches");
  if (names && ints)
    return spine_lerror_raise(L, "invalid_argument", "bad_argument",
                              "ctx.parallel: the branches are keyed by names or a list, not both");
  if (ints && (lua_Integer)luaL_len(L, 1) != n)
    return spine_lerror_raise(L, "invalid_argument", "bad_argument",
                              "ctx.parallel: a list of branches has keys 1 to n, no holes");
  *list = ints > 0;
  if (wf->nstrands + n > MAX_STRANDS)
    return limit(L, "more branches under way in one workflow than", MAX_STRANDS), 0;
  *keys = NULL;
  if (names) {
    const char **k = lua_newuserdatauv(L, (size_t)n * sizeof *k, 0); /* freed by the GC */
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      lua_pop(L, 1);
      k[i++] = lua_tostring(L, -1); /* kept alive by the table at 1 */
    }
    qsort(k, (size_t)n, sizeof *k, by_name);
    *keys = k;
  }
  return n;
}

static int parse_mode(lua_State *L) {
  if (lua_isnoneornil(L, 2)) return MODE_ALL;
  luaL_checktype(L, 2, LUA_TTABLE);
  int mode = MODE_ALL;
  if (lua_getfield(L, 2, "mode") != LUA_TNIL) {
    const char *m = lua_tostring(L, -1);
    if (m && !strcmp(m, "any"))
      mode = MODE_ANY;
    else if (m && !strcmp(m, "race"))
      mode = MODE_RACE;
    else if (!m || strcmp(m, "all"))
      spine_lerror_raise(L, "invalid_argument", "bad_argument",
                         "ctx.parallel: mode: \"all\", \"any\" or \"race\"");
  }
  lua_pop(L, 1);
  return mode;
}

int spine_ctx__parallel(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  int mode = parse_mode(L);
  int64_t timeout = lua_istable(L, 2) ? spine_ctx__field_duration(L, 2, "timeout", 0) : 0;
  int depth = spine_wf_in_branch(wf) ? wf->cur->par->depth + 1 : 1;
  if (depth > MAX_DEPTH) return limit(L, "parallels nested deeper than", MAX_DEPTH);
  const char **keys = NULL;
  int list = 0;
  int n = check_branches(L, wf, &keys, &list);
  int seq;
  int m = spine_wf_next_step(wf, L, "parallel", mode_names[mode], &seq);
  if (m < 0) return lua_error(L);
  if (m == 0 && spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  int entry = m > 0 ? lua_gettop(L) : 0;

  /* Every Lua value it needs is made first (an allocation may raise at the memory limit), so
   * that nothing is half set up when one does. Its table keeps the branches' coroutines (at
   * -i), then their results or errors (at i) and its own error (at 0). */
  lua_createtable(L, n, n + 2);
  int tbl = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    lua_State *co = lua_newthread(L);
    lua_rawseti(L, tbl, -(i + 1));
    spine_sandbox_attach(co, &wf->limits); /* charged to the workflow */
    if (list)
      lua_rawgeti(L, 1, i + 1);
    else
      lua_getfield(L, 1, keys[i]);
    spine_engine_push_ctx(wf->eng, L);
    lua_xmove(L, co, 2);
  }
  int64_t deadline = timeout ? spine_wf_now(wf) + timeout : 0, winner = -1;
  int decided = 0, ok = 0;
  if (entry) { /* recorded: waiting (undecided), or its outcome */
    lua_getfield(L, entry, "wake_at");
    deadline = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : 0;
    lua_getfield(L, entry, "status");
    const char *st = lua_tostring(L, -1);
    if (st && strcmp(st, "waiting")) {
      decided = 1;
      ok = !strcmp(st, "completed");
      lua_getfield(L, entry, ok ? "result" : "error");
      if (!ok) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, tbl, 0);
      } else if (mode != MODE_ALL && lua_istable(L, -1)) {
        lua_getfield(L, -1, "winner");
        for (int i = 0; i < n; i++)
          if (list ? lua_tointeger(L, -1) == i + 1
                   : lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), keys[i]))
            winner = i;
        lua_pop(L, 1);
      }
      if (ok && mode != MODE_ALL && winner < 0) {
        spine_wf_stuck(wf, "non_determinism",
                       "non-determinism: the history's ctx.parallel was won by a branch the "
                       "playbook no longer has");
        return spine_lerror_raise(L, "non_determinism", "non_determinism",
                                  "the history's ctx.parallel was won by a branch the playbook "
                                  "no longer has");
      }
    }
  }
  lua_pushvalue(L, tbl);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* From here on nothing raises. */
  spine_par *p = calloc(1, sizeof *p);
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s%s%d.", wf->path ? wf->path : "", wf->path ? "/" : "",
           wf->lseq - 1);
  if (!p || !(p->prefix = strdup(prefix)) || !(p->br = calloc((size_t)n, sizeof *p->br))) abort();
  p->n = n;
  p->seq = seq;
  p->mode = mode;
  p->depth = depth;
  p->list = list != 0;
  p->winner = (int)winner;
  p->values_ref = ref;
  p->deadline = deadline;
  p->recorded = p->decided = decided != 0;
  p->ok = ok != 0;
  spine_timer_init(&p->timer, par_timer_fired);
  if (!wf->main) { /* the first parallel: the main body gets a record */
    wf->main = spine_wf_strand_new(wf, NULL, NULL, NULL, -1, LUA_NOREF);
    if (!wf->main) abort();
    wf->cur = wf->main;
  }
  p->parent = wf->cur;
  wf->npar++;
  wf->call.par = p;
  for (int i = 0; i < n; i++) {
    char path[600], key[16];
    snprintf(key, sizeof key, "%d", i + 1);
    snprintf(path, sizeof path, "%s%s", prefix, list ? key : keys[i]);
    spine_strand *s = spine_wf_strand_new(wf, p, path, list ? key : keys[i], i, LUA_NOREF);
    if (!s) abort();
    lua_rawgeti(L, tbl, -(i + 1));
    s->co = lua_tothread(L, -1);
    lua_pop(L, 1);
    s->nlog = spine_steplog_count(wf, L, path);
    p->br[i] = s;
  }
  lua_settop(L, 0);

  if (m > 0) {
    spine_wf_move(wf, SPINE_WF_PHASE_PARALLEL);
    begin(wf, p);
    return lua_yieldk(L, 0, mode, par_k);
  }
  spine_op *op = spine_wf_op_begin(wf);
  spine_op_stmt(op, SPINE_SQL_STEP_WAIT, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, "parallel");
  spine_op_param(op, mode_names[mode]);
  spine_op_param(op, NULL);
  if (p->deadline)
    spine_op_param_int(op, p->deadline);
  else
    spine_op_param(op, NULL);
  spine_steplog_add_where(op, wf);
  spine_wf_submit(wf, recorded);
  return lua_yieldk(L, 0, mode, par_k);
}
