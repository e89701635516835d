/* The replay log of a workflow: the recorded steps, kept in its anchor table while it replays
 * and dropped once it runs live, so a live workflow holds no history in memory. It says whether
 * a step matches; what a mismatch does to the workflow is the workflow's (spine_wf_next_step). */
#include "steplog.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "sql.h"
#include "workflow_internal.h"

/* The log in memory is keyed by strand: log[path][bseq] (path "" for the main body), each
 * path's table with its highest number in field "n". */
int spine_steplog_index(lua_State *L, int *count) {
  int log = lua_gettop(L);
  lua_Integer n = luaL_len(L, log);
  lua_createtable(L, 0, 1);
  int byp = lua_gettop(L);
  int max = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, log, i);
    int e = lua_gettop(L);
    lua_getfield(L, e, "seq");
    int seq = (int)lua_tointeger(L, -1);
    lua_getfield(L, e, "bseq");
    int bseq = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : seq;
    if (lua_getfield(L, e, "branch") != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, byp) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, byp);
    }
    lua_getfield(L, -1, "n");
    if (lua_tointeger(L, -1) < bseq) {
      lua_pushinteger(L, bseq);
      lua_setfield(L, -3, "n");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, e);
    lua_rawseti(L, -2, bseq);
    if (seq > max) max = seq;
    lua_settop(L, byp);
  }
  lua_replace(L, log);
  if (count) *count = (int)n;
  return max;
}

int spine_steplog_count(spine_wf *wf, lua_State *L, const char *path) {
  int n = 0, top = lua_gettop(L);
  if (wf->anchor == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  if (lua_rawgeti(L, -1, SPINE_ANCHOR_LOG) == LUA_TTABLE &&
      lua_getfield(L, -1, path ? path : "") == LUA_TTABLE) {
    lua_getfield(L, -1, "n");
    n = (int)lua_tointeger(L, -1);
  }
  lua_settop(L, top);
  return n;
}

void spine_steplog_peek(spine_wf *wf, lua_State *L, int bseq) {
  int top = lua_gettop(L);
  if (bseq > wf->nlog || wf->anchor == LUA_NOREF) {
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  if (lua_rawgeti(L, -1, SPINE_ANCHOR_LOG) != LUA_TTABLE ||
      lua_getfield(L, -1, wf->path ? wf->path : "") != LUA_TTABLE) {
    lua_settop(L, top);
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, -1, bseq);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

static void drop_log(spine_wf *wf, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  lua_pushnil(L);
  lua_rawseti(L, -2, SPINE_ANCHOR_LOG);
  lua_pop(L, 1);
}

int spine_steplog_expect(spine_wf *wf, lua_State *L, int bseq, const char *kind, const char *name) {
  if (bseq > wf->nlog) {
    /* The main body past its history runs live, and so does everything after it. */
    if (!wf->path && wf->nlog && bseq == wf->nlog + 1) drop_log(wf, L);
    return 0;
  }
  spine_steplog_peek(wf, L, bseq);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0; /* a step that failed before its commit: it runs again */
  }
  lua_getfield(L, -1, "kind");
  lua_getfield(L, -2, "name");
  const char *rk = lua_tostring(L, -2), *rn = lua_tostring(L, -1);
  int same = rk && rn && !strcmp(rk, kind) && !strcmp(rn, name);
  if (same) {
    lua_pop(L, 2);
    return 1;
  }
  char msg[256];
  snprintf(msg, sizeof msg,
           "non-determinism at step %d%s%s: the history has %s \"%s\", the playbook now asks for "
           "%s \"%s\"",
           bseq, wf->path ? " of branch " : "", wf->path ? wf->path : "", rk ? rk : "?",
           rn ? rn : "?", kind, name);
  lua_pop(L, 3);
  lua_pushstring(L, msg);
  return -1;
}

/* ---- the rows that record steps ---- */

/* Where the step being recorded is: its strand's path (NULL: the main body) and its number
 * there (the strand's step in progress: one at a time per strand). */
static void add_where(spine_op *op, const spine_wf *wf) {
  spine_op_param(op, wf->path);
  spine_op_param_int(op, wf->lseq - 1);
}

void spine_steplog_add_where(spine_op *op, const spine_wf *wf) {
  add_where(op, wf);
}

void spine_steplog_add_done(spine_op *op, const spine_wf *wf, int seq, const char *kind,
                            const char *name, const char *status, const char *result,
                            const char *error, int attempt) {
  /* An op that is only its fence so far becomes the one statement that fences and records. */
  int fenced = op->nstmts == 1 && op->stmts[0].sql == SPINE_SQL_FENCE;
  if (fenced) spine_op_reset(op);
  spine_op_stmt(op, fenced ? SPINE_SQL_STEP_DONE_FENCED : SPINE_SQL_STEP_DONE, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, kind);
  spine_op_param(op, name);
  spine_op_param(op, status);
  spine_op_param(op, result);
  spine_op_param(op, error);
  spine_op_param_int(op, attempt);
  add_where(op, wf);
  spine_op_param_int(op, spine_wf_now(wf));
  if (!fenced) return;
  spine_op_param_int(op, spine_wf_worker(wf));
  spine_op_param_int(op, wf->epoch);
}

void spine_steplog_add_finish(spine_op *op, const spine_wf *wf, int seq, const char *status,
                              const char *result, const char *error, int attempt) {
  spine_op_stmt(op, SPINE_SQL_STEP_FINISH, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, status);
  spine_op_param(op, result);
  spine_op_param(op, error);
  spine_op_param_int(op, attempt);
}

void spine_steplog_add_retry(spine_op *op, const spine_wf *wf, int seq, const char *kind,
                             const char *name, const char *error, int attempt, int64_t wake_ms) {
  spine_op_stmt(op, SPINE_SQL_STEP_RETRY, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, kind);
  spine_op_param(op, name);
  spine_op_param(op, error);
  spine_op_param_int(op, attempt);
  spine_op_param_int(op, wake_ms);
  add_where(op, wf);
}
