/* One workflow in memory (workflow_internal.h): created and freed here, its phases and the one
 * function that moves it between them (refusing moves the engine never makes), and what every
 * step asks of it: the ops on its row (fenced by its claim), its timer, its clock. */
#include "workflow_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctx.h"
#include "engine_internal.h"
#include "lerror.h"
#include "log.h"
#include "sql.h"
#include "steplog.h"

#define BIT(p) (1u << SPINE_WF_PHASE_##p)
#define FINAL  (BIT(ENDING) | BIT(RELEASING) | BIT(DROPPED))

/* allowed[from]: the phases a workflow may move to from `from`. */
static const unsigned allowed[] = {
    [SPINE_WF_PHASE_LOADING] = BIT(RUNNING) | BIT(COMMITTING) | FINAL,
    [SPINE_WF_PHASE_RUNNING] = BIT(COMMITTING) | BIT(TIMER) | BIT(SIGNAL) | BIT(PARALLEL) | FINAL,
    [SPINE_WF_PHASE_COMMITTING] = BIT(RUNNING) | BIT(COMMITTING) | BIT(TIMER) | BIT(SIGNAL) |
                                  BIT(PROVIDER) | BIT(PARALLEL) | FINAL,
    [SPINE_WF_PHASE_TIMER] = BIT(RUNNING) | BIT(COMMITTING) | FINAL,
    [SPINE_WF_PHASE_SIGNAL] = BIT(RUNNING) | BIT(COMMITTING) | FINAL,
    /* RUNNING: a branch cancelled while its provider call is in flight. */
    [SPINE_WF_PHASE_PROVIDER] = BIT(COMMITTING) | BIT(RUNNING) | FINAL,
    /* A strand waits for its parallel's branches (or, unloaded, the workflow for its strands:
     * workflow_strand.c saves and loads strands without a move). */
    [SPINE_WF_PHASE_PARALLEL] = BIT(RUNNING) | BIT(COMMITTING) | FINAL,
    /* Final: the last op (the end, the release, the drop) commits, then the workflow is freed.
     * A replay without a database ends in DROPPED and may be stopped again there. */
    [SPINE_WF_PHASE_ENDING] = 0,
    [SPINE_WF_PHASE_RELEASING] = 0,
    [SPINE_WF_PHASE_DROPPED] = BIT(DROPPED),
};

const char *spine_wf_phase_name(spine_wf_phase p) {
  switch (p) {
    case SPINE_WF_PHASE_LOADING:
      return "loading";
    case SPINE_WF_PHASE_RUNNING:
      return "running";
    case SPINE_WF_PHASE_COMMITTING:
      return "committing";
    case SPINE_WF_PHASE_TIMER:
      return "timer";
    case SPINE_WF_PHASE_SIGNAL:
      return "signal";
    case SPINE_WF_PHASE_PROVIDER:
      return "provider";
    case SPINE_WF_PHASE_PARALLEL:
      return "parallel";
    case SPINE_WF_PHASE_ENDING:
      return "ending";
    case SPINE_WF_PHASE_RELEASING:
      return "releasing";
    case SPINE_WF_PHASE_DROPPED:
      return "dropped";
  }
  abort();
}

void spine_wf_move(spine_wf *wf, spine_wf_phase to) {
  if (!(allowed[wf->phase] & (1u << to))) {
    spine_log_error("workflow", "engine fault: impossible move of a workflow", "workflow", wf->id,
                    "from", spine_wf_phase_name(wf->phase), "to", spine_wf_phase_name(to), NULL);
    abort();
  }
  if (wf->idle_linked) spine_passive_unparked(wf);
  wf->phase = to;
  if (to == SPINE_WF_PHASE_TIMER || to == SPINE_WF_PHASE_SIGNAL) spine_passive_parked(wf);
}

const char *spine_wf_status_name(spine_wf_status s) {
  static const char *const names[] = {"pending",     "running",   "waiting", "completed", "failed",
                                      "compensated", "cancelled", "stuck",   "paused"};
  return names[s];
}

const char *spine_wf_id(const spine_wf *wf) {
  return wf->id;
}

spine_wf_status spine_wf_status_of(const spine_wf *wf) {
  return wf->status;
}

const char *spine_wf_parent(const spine_wf *wf) {
  return wf->parent_id;
}

int spine_wf_stopped(const spine_wf *wf) {
  return ((1u << wf->phase) & FINAL) != 0;
}

/* ---- in memory ---- */

static void timer_fired(spine_timer *t);

static void registry_set(spine_engine *eng, const char *id, spine_wf *wf) {
  lua_rawgeti(eng->L, LUA_REGISTRYINDEX, eng->wfs_ref);
  if (wf)
    lua_pushlightuserdata(eng->L, wf);
  else
    lua_pushnil(eng->L);
  lua_setfield(eng->L, -2, id);
  lua_pop(eng->L, 1);
}

spine_wf *spine_wf_find(spine_engine *eng, const char *id) {
  lua_rawgeti(eng->L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_getfield(eng->L, -1, id);
  spine_wf *wf = lua_touserdata(eng->L, -1);
  lua_pop(eng->L, 2);
  return wf;
}

spine_wf *spine_wf_new(spine_engine *eng, const char *id, spine_version *v, const char *process,
                       const char *trace_id, const char *parent_id, int parent_seq) {
  spine_wf *wf = calloc(1, sizeof *wf);
  if (!wf) return NULL;
  wf->eng = eng;
  wf->version = v;
  snprintf(wf->id, sizeof wf->id, "%s", id);
  snprintf(wf->trace_id, sizeof wf->trace_id, "%s", trace_id);
  wf->process = strdup(process);
  wf->parent_id = parent_id ? strdup(parent_id) : NULL;
  wf->parent_seq = parent_seq;
  wf->attempt = 1;
  wf->status = SPINE_WF_RUNNING;
  wf->anchor = LUA_NOREF;
  wf->seq = 1;
  wf->lseq = 1;
  spine_timer_init(&wf->timer, timer_fired);
  spine_op_init(&wf->op);
  wf->op.data = wf;
  registry_set(eng, wf->id, wf);
  eng->live++;
  return wf;
}

void spine_wf_free(spine_wf *wf) {
  spine_engine *eng = wf->eng;
  if (wf->doomed) return;
  spine_passive_unparked(wf);
  spine_clock_remove(eng, &wf->timer);
  /* Its parallels and strands, innermost last created first. */
  for (int i = wf->nstrands - 1; i >= 0; i--) {
    spine_strand *s = wf->strands[i];
    spine_par *p = s == wf->cur ? wf->call.par : s->call.par;
    s->call.par = NULL;
    if (s == wf->cur) wf->call.par = NULL;
    if (p) spine_ctx_parallel_free(wf, p);
  }
  while (wf->nstrands)
    spine_wf_strand_free(wf, wf->strands[wf->nstrands - 1]);
  free(wf->strands);
  free(wf->events);
  wf->strands = NULL;
  wf->events = NULL;
  wf->nevents = wf->npar = 0;
  wf->cur = wf->main = NULL;
  if (wf->anchor != LUA_NOREF) {
    luaL_unref(eng->L, LUA_REGISTRYINDEX, wf->anchor);
    wf->anchor = LUA_NOREF;
  }
  registry_set(eng, wf->id, NULL);
  spine_op_free(&wf->op);
  spine_ctx_provider_free(wf);
  spine_wf_drop_pending(wf);
  free(wf->process);
  free(wf->parent_id);
  free(wf->variant);
  free(wf->params);
  free(wf->unsaved_input);
  free(wf->experiment);
  free(wf->state);
  free(wf->outcome);
  free(wf->end_result);
  free(wf->end_error);
  eng->live--;
  if (wf->holds) { /* an entry point is under way: spine_wf_unhold frees it */
    wf->doomed = 1;
    return;
  }
  free(wf);
}

void spine_wf_drop_pending(spine_wf *wf) {
  spine_wf_pending *ps = wf->pending;
  if (!ps) return;
  free(ps->input);
  free(ps->log);
  free(ps->attrs);
  free(ps);
  wf->pending = NULL;
}

spine_wf_pending *spine_wf_set_pending(spine_wf *wf, char *input, char *log, char *attrs) {
  spine_wf_pending *ps = calloc(1, sizeof *ps);
  if (!ps) abort();
  ps->input = input;
  ps->log = log;
  ps->attrs = attrs;
  wf->pending = ps;
  return ps;
}

spine_wf **spine_wf_all(spine_engine *eng, int *n) {
  lua_State *L = eng->L;
  int k = 0, cap = eng->live > 0 ? eng->live : 1;
  spine_wf **all = malloc((size_t)cap * sizeof *all);
  if (!all) abort();
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    spine_wf *wf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (wf && k < cap) all[k++] = wf;
  }
  lua_pop(L, 1);
  *n = k;
  return all;
}

/* ---- its ops ---- */

/* Every op of a workflow opens with its fence: a check that the row is still this worker's claim
 * (owner and epoch), or the whole op fails with SPLC0 and writes nothing. The check takes no
 * lock: a claim moves on only once every session of its former owner has ended (the reaping in
 * on_heartbeat), so no op of a former owner is still open when another worker claims. */
spine_op *spine_wf_op_fenced(spine_wf *wf) {
  spine_op *op = &wf->op;
  spine_op_reset(op);
  if (wf->eng->dry) return op;
  if (wf->unsaved_input) { /* its row, inserted in this op: no claim to check yet */
    spine_wf_add_insert(wf->eng, op, wf->id, wf->version, wf->process, wf->unsaved_input,
                        wf->trace_id, NULL, 0, NULL);
  } else {
    spine_op_stmt(op, SPINE_SQL_FENCE, 0);
    spine_op_param(op, wf->id);
    spine_op_param_int(op, wf->eng->worker);
    spine_op_param_int(op, wf->epoch);
  }
  spine_clock_op(wf->eng, op);
  return op;
}

spine_op *spine_wf_op_begin(spine_wf *wf) {
  spine_op *op = spine_wf_op_fenced(wf);
  if (wf->row_waiting) {
    spine_op_stmt(op, SPINE_SQL_WF_RUN, 0);
    spine_op_param(op, wf->id);
    wf->row_waiting = 0;
  }
  if (wf->dirty) {
    lua_State *L = wf->eng->L;
    spine_buf attrs = SPINE_BUF_INIT;
    lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
    lua_rawgeti(L, -1, SPINE_ANCHOR_ATTRS);
    if (spine_codec_encode(L, -1, "attributes", &attrs, NULL)) spine_buf_puts(&attrs, "{}");
    lua_pop(L, 2);
    spine_op_stmt(op, SPINE_SQL_WF_ATTRS, 0);
    spine_op_param(op, wf->id);
    spine_op_param(op, wf->state);
    spine_op_param(op, spine_buf_str(&attrs));
    spine_op_param(op, wf->outcome); /* NULL: the row keeps the one it has */
    spine_buf_free(&attrs);
    wf->dirty = 0;
  }
  return op;
}

/* The store calls back here: the op is no longer in flight, then its owner's callback runs. */
static void op_done(spine_op *op) {
  spine_wf *wf = op->data;
  wf->op_inflight = 0;
  if (!op->status && wf->unsaved_input) { /* the row is in: later ops fence */
    free(wf->unsaved_input);
    wf->unsaved_input = NULL;
    spine_version_set_stored(wf->version);
  }
  spine_wf_hold(wf);
  wf->op_cb(op);
  if (wf->cancel_pending) spine_wf_cancel_pending(wf); /* cancelled meanwhile, now waiting */
  spine_wf_unhold(wf);
}

void spine_wf_submit(spine_wf *wf, spine_op_cb cb) {
  if (wf->eng->dry) { /* replay only: the history ends here */
    spine_wf_move(wf, SPINE_WF_PHASE_DROPPED);
    return;
  }
  /* A step waits for its commit; a stopped workflow's last op (its end, its release) commits
   * in the phase that stopped it. */
  if (!spine_wf_stopped(wf)) spine_wf_move(wf, SPINE_WF_PHASE_COMMITTING);
  wf->op_cb = cb;
  wf->op.cb = op_done;
  wf->op.data = wf;
  wf->op_inflight = 1;
  spine_store_submit(wf->eng->store, &wf->op);
}

void spine_wf_count_step(spine_wf *wf) {
  wf->eng->steps++;
}

/* Adds the statements that insert a workflow row owned by this worker, with its playbook
 * version until that is known to be stored. */
void spine_wf_add_insert(spine_engine *eng, spine_op *op, const char *id, spine_version *v,
                         const char *process, const char *input, const char *trace,
                         const char *parent, int parent_seq, const spine_child_route *route) {
  if (!spine_version_stored(v)) {
    size_t len;
    const char *source = spine_version_source(v, &len);
    spine_op_stmt(op, SPINE_SQL_VERSION_STORE, 0);
    spine_op_param(op, spine_version_hash(v));
    spine_op_param(op, spine_version_name(v));
    spine_op_param(op, spine_version_path(v));
    spine_op_param_len(op, source, len);
  }
  spine_op_stmt(op, parent ? SPINE_SQL_WF_INSERT_CHILD : SPINE_SQL_WF_INSERT, 0);
  spine_op_param(op, id);
  spine_op_param(op, process);
  spine_op_param(op, spine_version_name(v));
  spine_op_param(op, spine_version_hash(v));
  spine_op_param(op, input);
  spine_op_param(op, trace);
  spine_op_param_int(op, eng->worker);
  spine_op_param(op, parent);
  if (parent)
    spine_op_param_int(op, parent_seq);
  else
    spine_op_param(op, NULL);
  int deadline = route && route->max_duration_ms;
  spine_op_param(op, route ? route->variant : NULL);
  spine_op_param(op, route ? route->experiment : NULL);
  spine_op_param(op, route ? route->subject : NULL);
  if (route)
    spine_op_param_int(op, route->bucket);
  else
    spine_op_param(op, NULL);
  spine_op_param(op, route ? route->params : NULL);
  spine_op_param(op, deadline ? route->max_duration : NULL);
  spine_op_param_int(op, spine_clock_now(eng));
  if (deadline)
    spine_op_param_int(op, route->max_duration_ms);
  else
    spine_op_param(op, NULL);
  /* a worker arms its wake-up for the nearest deadline of them all */
  if (deadline) spine_op_stmt(op, SPINE_SQL_NOTIFY_WORK, 0);
}

void spine_wf_add_wait(spine_op *op, spine_wf *wf, const char *waiting_for, int64_t wake_ms) {
  /* Branches wait side by side: the row wakes at the earliest deadline of them all. */
  if (wf->npar) {
    int64_t at = spine_wf_strand_earliest(wf);
    if (at && (!wake_ms || at < wake_ms)) wake_ms = at;
  }
  wf->row_wake = wake_ms;
  spine_op_stmt(op, SPINE_SQL_WF_WAIT, 0);
  spine_op_param(op, wf->id);
  spine_op_param(op, waiting_for);
  if (wake_ms)
    spine_op_param_int(op, wake_ms);
  else
    spine_op_param(op, NULL);
}

void spine_wf_refill(spine_wf *wf) {
  wf->limits.instructions_left = wf->eng->o.instructions;
}

spine_wf *spine_wf_committed(spine_op *op) {
  spine_wf *wf = op->data;
  if (!op->status) return wf;
  spine_wf_checkpoint_failed(wf, op);
  return NULL;
}

/* ---- its timer and clock ---- */

static void timer_fired(spine_timer *t) {
  spine_wf *wf = (spine_wf *)((char *)t - offsetof(spine_wf, timer));
  spine_wf_timer_fn fn = wf->on_timer;
  wf->on_timer = NULL;
  if (!fn) return;
  spine_wf_hold(wf);
  if (wf->npar && wf->main) /* the main body's, queued behind what its branches do */
    spine_wf_strand_post(wf, wf->main, fn);
  else
    fn(wf);
  spine_wf_unhold(wf);
}

/* A branch's deadline is its own: several wait side by side. */
void spine_wf_timer(spine_wf *wf, int64_t wake_ms, spine_wf_timer_fn fn) {
  if (spine_wf_in_branch(wf)) {
    wf->cur->on_timer = fn;
    spine_clock_add(wf->eng, &wf->cur->timer, wake_ms);
    return;
  }
  wf->on_timer = fn;
  spine_clock_add(wf->eng, &wf->timer, wake_ms);
}

void spine_wf_timer_cancel(spine_wf *wf) {
  if (spine_wf_in_branch(wf)) {
    wf->cur->on_timer = NULL;
    spine_clock_remove(wf->eng, &wf->cur->timer);
    return;
  }
  wf->on_timer = NULL;
  spine_clock_remove(wf->eng, &wf->timer);
}

int64_t spine_wf_now(const spine_wf *wf) {
  return spine_clock_now(wf->eng);
}

double spine_wf_random(spine_wf *wf) {
  return spine_engine_random(wf->eng);
}

const spine_provider_port *spine_wf_providers(const spine_wf *wf) {
  return wf->eng->providers;
}

const spine_router_port *spine_wf_router(const spine_wf *wf) {
  return &wf->eng->o.router;
}

int64_t spine_wf_worker(const spine_wf *wf) {
  return wf->eng->worker;
}

void spine_wf_sleep(spine_wf *wf, int64_t wake_ms, spine_wf_timer_fn fn) {
  spine_op_release(&wf->op); /* the wait may be long: hold no buffers */
  spine_wf_row_waits(wf);
  spine_wf_move(wf, SPINE_WF_PHASE_TIMER);
  spine_wf_timer(wf, wake_ms, fn);
}

void spine_wf_row_waits(spine_wf *wf) {
  wf->row_waiting = 1;
}

/* ---- its steps, state and attributes ---- */

void spine_wf_take_step(spine_wf *wf) {
  wf->lseq++;
}

void spine_wf_set_state(spine_wf *wf, const char *state) {
  if (wf->state && !strcmp(wf->state, state)) return;
  free(wf->state);
  wf->state = strdup(state);
  if (!wf->state) abort();
  wf->dirty = 1;
}

void spine_wf_attrs_changed(spine_wf *wf) {
  wf->dirty = 1;
}

void spine_wf_set_outcome(spine_wf *wf, const char *outcome) {
  free(wf->outcome);
  wf->outcome = strdup(outcome);
  if (!wf->outcome) abort();
  wf->dirty = 1;
}

/* A branch of a parallel whose outcome the history holds replays up to where it was when its
 * parallel ended: there (a step not recorded, or recorded unfinished) it was cancelled, and is
 * again: the cancellation error is pushed for the call to raise. */
static int cut_off(spine_wf *wf, lua_State *L, int m) {
  if (!spine_wf_in_branch(wf) || wf->cur->undo || !wf->cur->par->recorded) return 0;
  if (m > 0) {
    lua_getfield(L, -1, "status");
    const char *st = lua_tostring(L, -1);
    int done = st && (!strcmp(st, "completed") || !strcmp(st, "failed"));
    lua_pop(L, 1);
    if (done) return 0;
    lua_pop(L, 1);
  }
  wf->cur->cancelled = 1;
  spine_wf_push_stop(wf, L);
  return 1;
}

int spine_wf_next_step(spine_wf *wf, lua_State *L, const char *kind, const char *name, int *seq) {
  int bseq = wf->lseq++;
  int m = spine_steplog_expect(wf, L, bseq, kind, name);
  if (m > 0) {
    lua_getfield(L, -1, "seq");
    *seq = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    wf->replayed++;
  } else if (m == 0) {
    *seq = wf->seq++;
  } else {
    *seq = 0;
  }
  wf->last_seq = m < 0 ? bseq : *seq;
  if (m >= 0 && cut_off(wf, L, m)) return -1;
  if (m >= 0) {
    /* A replay runs the whole history in one resume: each replayed step is charged as the
     * resume it once was, so a workflow that ran within its budget live replays within it. */
    if (m > 0 && wf->limits.tripped == SPINE_LIMIT_NONE) spine_wf_refill(wf);
    return m;
  }
  spine_wf_stuck(wf, "non_determinism", lua_tostring(L, -1));
  const char *msg = lua_tostring(L, -1);
  spine_lerror_push(L, "non_determinism", "non_determinism", msg, NULL);
  lua_remove(L, -2);
  return -1;
}
