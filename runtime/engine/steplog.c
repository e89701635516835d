/* The replay log of a workflow: the recorded steps, kept in its anchor table while it replays
 * and dropped once it runs live, so a live workflow holds no history in memory. It says whether
 * a step matches; what a mismatch does to the workflow is the workflow's (spine_wf_next_step). */
#include "steplog.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "sql.h"
#include "workflow_internal.h"

int spine_steplog_index(lua_State *L) {
  int log = lua_gettop(L);
  lua_Integer n = luaL_len(L, log);
  lua_createtable(L, (int)n, 0);
  int max = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, log, i);
    lua_getfield(L, -1, "seq");
    int seq = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (seq > max) max = seq;
    lua_rawseti(L, -2, seq);
  }
  lua_replace(L, log);
  return max;
}

void spine_steplog_peek(spine_wf *wf, lua_State *L, int seq) {
  if (seq > wf->nlog || wf->anchor == LUA_NOREF) {
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  if (lua_rawgeti(L, -1, SPINE_ANCHOR_LOG) != LUA_TTABLE) {
    lua_pop(L, 2);
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, -1, seq);
  lua_remove(L, -2);
  lua_remove(L, -2);
}

static void drop_log(spine_wf *wf, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  lua_pushnil(L);
  lua_rawseti(L, -2, SPINE_ANCHOR_LOG);
  lua_pop(L, 1);
}

int spine_steplog_expect(spine_wf *wf, lua_State *L, int seq, const char *kind, const char *name) {
  if (seq > wf->nlog) {
    if (wf->nlog && seq == wf->nlog + 1) drop_log(wf, L);
    return 0;
  }
  spine_steplog_peek(wf, L, seq);
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
           "non-determinism at step %d: the history has %s \"%s\", the playbook now asks for %s "
           "\"%s\"",
           seq, rk ? rk : "?", rn ? rn : "?", kind, name);
  lua_pop(L, 3);
  lua_pushstring(L, msg);
  return -1;
}

/* ---- the rows that record steps ---- */

void spine_steplog_add_done(spine_op *op, const spine_wf *wf, int seq, const char *kind,
                            const char *name, const char *status, const char *result,
                            const char *error, int attempt) {
  spine_op_stmt(op, SPINE_SQL_STEP_DONE, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, kind);
  spine_op_param(op, name);
  spine_op_param(op, status);
  spine_op_param(op, result);
  spine_op_param(op, error);
  spine_op_param_int(op, attempt);
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
}
