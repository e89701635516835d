/* The engine (scheduler.h): workflows in memory, the one place that resumes coroutines, the
 * timer heap on one uv timer, claims of free work, LISTEN wake-ups, worker heartbeats, and the
 * end of workflows (completion, failure and compensation, stuck). It never blocks the loop
 * after spine_engine_serve(): every database call goes through the store. */
#include "scheduler.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "ctx.h"
#include "intents.h"
#include "log.h"
#include "migrate.h"
#include "playbook.h"
#include "steplog.h"
#include "uuid.h"
#include "workflow_internal.h"

#define CLAIM_BATCH      64
/* A workflow that was running when its worker died or hung this many times, or that a worker
 * had to give up this many times, is failed instead of being passed on again (a poison pill). */
#define POISON_RUNS      3
#define MAX_BACKENDS     80
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define MAX_CHANNELS     4

struct spine_version {
  char hash[65];
  char *name; /* the playbook's name (its `name` field, else the file's) */
  char *key;  /* what it was asked for by ("contract_activation", "x/y.lua"); NULL if by hash */
  char *path;
  char *source;
  size_t len;
  int module;  /* registry ref to the compiled module table */
  int stored;  /* known to be in spine.playbook_versions */
  int loading; /* its source is being read from the database */
  spine_op op; /* the load */
  spine_engine *eng;
  spine_wf *waiters; /* claimed workflows waiting for the load */
  spine_version *next;
};

/* A workflow's row data between its insert or claim and its first resume. */
typedef struct spine_pending {
  char *input;
  char *log;
  char *attrs;
} pending_start;

static void pending_free(spine_wf *wf) {
  pending_start *ps = wf->pending;
  if (!ps) return;
  free(ps->input);
  free(ps->log);
  free(ps->attrs);
  free(ps);
  wf->pending = NULL;
}

static pending_start *pending_new(spine_wf *wf, char *input, char *log, char *attrs) {
  pending_start *ps = calloc(1, sizeof *ps);
  if (!ps) abort();
  ps->input = input;
  ps->log = log;
  ps->attrs = attrs;
  wf->pending = ps;
  return ps;
}

struct spine_engine {
  uv_loop_t *loop;
  spine_store *store;
  const spine_provider_port *providers; /* &o.providers; NULL once stopping */
  lua_State *L;
  spine_engine_opts o;
  int64_t worker;
  int serving;
  int stopping;

  int64_t vnow;         /* the virtual clock, ms since the epoch */
  uv_timer_t timer;     /* the nearest workflow deadline */
  uv_timer_t wake;      /* the nearest deadline of free workflows (claims) */
  uv_timer_t heartbeat; /* lease renewal and reaping of dead workers */
  uv_timer_t vtick;     /* virtual clock: fires the next deadline when idle */
  uv_timer_t reconnect; /* after the database connection was lost */
  int64_t reconnect_ms; /* the next attempt's delay: doubles up to RECONNECT_MAX_MS */
  spine_wf **heap;
  int nheap, cap_heap;

  int ctx_ref;    /* the ctx object */
  int wfs_ref;    /* id -> lightuserdata wf */
  int runner_ref; /* the compensation runner */
  spine_version *versions;

  int live;
  uint64_t steps;
  spine_op claim_op;
  int claim_busy, claim_again;
  spine_op hb_op;
  int hb_busy;
  /* Each heartbeat NOTIFYs "h:<worker>:<n>" to ourselves: a session connection that stops
   * hearing its own heartbeats (a blackholed network) is as good as lost. */
  uint64_t hb_next, hb_sent, hb_heard;
  spine_op wake_op;
  int wake_busy;
  spine_engine_end_cb end_cb;
  void *end_data;
  /* The manual clock's advance under way (see "the manual clock" below). */
  struct {
    int active;
    int setting;   /* its new time is being written to spine.clock */
    int finishing; /* ... and then it ends */
    int64_t target;
    unsigned round; /* each round ends with our own NOTIFY "k:<round>" coming back */
    int op_done, marker_seen, foreign, own_ops;
    uint64_t ops_at_start;
    int64_t db_next; /* the nearest deadline of a free workflow, -1 if none */
    int fired;
    spine_op op;
    spine_engine_clock_cb cb;
    void *data;
  } clk;
  void (*begin_cb)(void *data, const spine_wf *wf);
  void *begin_data;
  uint64_t rng[2];
  /* Other modules' LISTEN channels (the outbox relay's), and who hears of a lost connection. */
  struct {
    char name[64];
    spine_notify_cb cb;
    void *data;
  } channels[MAX_CHANNELS];
  int nchannels;
  void (*lost_cb)(void *data);
  void (*back_cb)(void *data);
  void *conn_data;
  /* `spine replay`: no database; the run stops where the history ends or diverges. */
  int dry;
  spine_replay_report *report;
};

static void begin(spine_wf *wf, const char *input_json, const char *log_json,
                  const char *attrs_json);
static void fail(spine_wf *wf);
static void end(spine_wf *wf, spine_wf_status status, const char *result, const char *error);
static void claim(spine_engine *eng);

/* ---- clock and timers ---- */

static int64_t real_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t spine_sched_now(spine_engine *eng) {
  return eng->o.virtual_clock || eng->o.manual_clock ? eng->vnow : real_now();
}

static int64_t engine_clock(void *data) {
  return spine_sched_now(data);
}

static void heap_swap(spine_engine *eng, int i, int j) {
  spine_wf *t = eng->heap[i];
  eng->heap[i] = eng->heap[j];
  eng->heap[j] = t;
  eng->heap[i]->heap_index = i;
  eng->heap[j]->heap_index = j;
}

static void heap_up(spine_engine *eng, int i) {
  while (i > 0) {
    int p = (i - 1) / 2;
    if (eng->heap[p]->wake_ms <= eng->heap[i]->wake_ms) break;
    heap_swap(eng, i, p);
    i = p;
  }
}

static void heap_down(spine_engine *eng, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < eng->nheap && eng->heap[l]->wake_ms < eng->heap[m]->wake_ms) m = l;
    if (r < eng->nheap && eng->heap[r]->wake_ms < eng->heap[m]->wake_ms) m = r;
    if (m == i) return;
    heap_swap(eng, i, m);
    i = m;
  }
}

static void heap_remove(spine_engine *eng, spine_wf *wf) {
  int i = wf->heap_index;
  if (i < 0) return;
  wf->heap_index = -1;
  eng->nheap--;
  if (i == eng->nheap) return;
  eng->heap[i] = eng->heap[eng->nheap];
  eng->heap[i]->heap_index = i;
  heap_up(eng, i);
  heap_down(eng, eng->heap[i]->heap_index);
}

static void on_timer(uv_timer_t *t);

/* A manual clock arms the uv timer only for deadlines already due (a zero backoff); the others
 * wait for an advance. */
static void arm(spine_engine *eng) {
  if (eng->o.virtual_clock || eng->stopping) return;
  if (!eng->nheap) {
    uv_timer_stop(&eng->timer);
    return;
  }
  int64_t delay = eng->heap[0]->wake_ms - spine_sched_now(eng);
  if (eng->o.manual_clock && delay > 0) {
    uv_timer_stop(&eng->timer);
    return;
  }
  uv_timer_start(&eng->timer, on_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

/* Fires every deadline up to `now`; returns how many. */
static int fire_due(spine_engine *eng, int64_t now) {
  int n = 0;
  while (eng->nheap && eng->heap[0]->wake_ms <= now) {
    spine_wf *wf = eng->heap[0];
    heap_remove(eng, wf);
    spine_wf_timer_fn fn = wf->on_timer;
    wf->on_timer = NULL;
    if (fn) fn(wf);
    n++;
  }
  return n;
}

static void on_timer(uv_timer_t *t) {
  spine_engine *eng = t->data;
  fire_due(eng, spine_sched_now(eng));
  arm(eng);
}

/* The virtual clock jumps to the next deadline once nothing else can happen first. */
static void on_vtick(uv_timer_t *t) {
  spine_engine *eng = t->data;
  if (!eng->nheap || !spine_store_idle(eng->store)) return;
  if (eng->heap[0]->wake_ms > eng->vnow) eng->vnow = eng->heap[0]->wake_ms;
  fire_due(eng, eng->vnow);
}

static void clock_check(spine_engine *eng);

static void on_store_idle(void *data) {
  spine_engine *eng = data;
  if (eng->o.manual_clock) clock_check(eng);
  if (eng->o.virtual_clock && eng->nheap && !eng->stopping)
    uv_timer_start(&eng->vtick, on_vtick, 0, 0);
}

void spine_sched_timer(spine_wf *wf, int64_t wake_ms, spine_wf_timer_fn fn) {
  spine_engine *eng = wf->eng;
  heap_remove(eng, wf);
  wf->wake_ms = wake_ms;
  wf->on_timer = fn;
  if (eng->nheap == eng->cap_heap) {
    int cap = eng->cap_heap ? eng->cap_heap * 2 : 256;
    spine_wf **h = realloc(eng->heap, (size_t)cap * sizeof *h);
    if (!h) abort();
    eng->heap = h;
    eng->cap_heap = cap;
  }
  eng->heap[eng->nheap] = wf;
  wf->heap_index = eng->nheap++;
  heap_up(eng, wf->heap_index);
  arm(eng);
  if (eng->o.virtual_clock) on_store_idle(eng);
}

void spine_sched_timer_cancel(spine_wf *wf) {
  heap_remove(wf->eng, wf);
  wf->on_timer = NULL;
  arm(wf->eng);
}

/* ---- workflows in memory ---- */

static void registry_set(spine_engine *eng, const char *id, spine_wf *wf) {
  lua_rawgeti(eng->L, LUA_REGISTRYINDEX, eng->wfs_ref);
  if (wf)
    lua_pushlightuserdata(eng->L, wf);
  else
    lua_pushnil(eng->L);
  lua_setfield(eng->L, -2, id);
  lua_pop(eng->L, 1);
}

static spine_wf *registry_get(spine_engine *eng, const char *id) {
  lua_rawgeti(eng->L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_getfield(eng->L, -1, id);
  spine_wf *wf = lua_touserdata(eng->L, -1);
  lua_pop(eng->L, 2);
  return wf;
}

static spine_wf *wf_new(spine_engine *eng, const char *id, spine_version *v, const char *process,
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
  wf->heap_index = -1;
  spine_op_init(&wf->op);
  wf->op.data = wf;
  registry_set(eng, wf->id, wf);
  eng->live++;
  return wf;
}

static void wf_free(spine_wf *wf) {
  spine_engine *eng = wf->eng;
  heap_remove(eng, wf);
  if (wf->anchor != LUA_NOREF) {
    luaL_unref(eng->L, LUA_REGISTRYINDEX, wf->anchor);
    wf->anchor = LUA_NOREF;
  }
  registry_set(eng, wf->id, NULL);
  spine_op_free(&wf->op);
  spine_ctx_provider_free(wf);
  pending_free(wf);
  free(wf->process);
  free(wf->parent_id);
  free(wf->variant);
  free(wf->experiment);
  free(wf->state);
  free(wf->end_result);
  free(wf->end_error);
  free(wf);
  eng->live--;
}

/* ---- resuming ---- */

static void after_resume(spine_wf *wf, int st, int nres) {
  lua_State *co = wf->co;
  if (st == LUA_YIELD) {
    lua_pop(co, nres);
    /* A ctx call moves the workflow on before it yields; still running means it did not. */
    if (wf->phase == SPINE_WF_PHASE_RUNNING)
      spine_sched_stuck(wf, "yield_outside_ctx",
                        "the playbook yielded outside a ctx call (coroutines are not allowed)");
    return;
  }
  if (wf->phase != SPINE_WF_PHASE_RUNNING) return; /* stuck or lost while it ran */
  if (st == LUA_OK) {
    if (wf->compensating) {
      lua_State *L = wf->eng->L;
      lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
      lua_rawgeti(L, -1, SPINE_ANCHOR_ERROR);
      spine_buf err = SPINE_BUF_INIT;
      spine_ctx_encode_error(L, -1, &err);
      lua_pop(L, 2);
      end(wf, wf->cancel_requested ? SPINE_WF_CANCELLED : SPINE_WF_COMPENSATED, NULL,
          spine_buf_str(&err));
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
      spine_ctx_push_error(co, "invalid_argument", "bad_result", e.msg, e.field);
      spine_buf_free(&res);
      fail(wf);
      return;
    }
    end(wf, SPINE_WF_COMPLETED, spine_buf_str(&res), NULL);
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
    spine_ctx_encode_error(L, -1, &err);
    lua_pop(L, 2);
    end(wf, SPINE_WF_FAILED, NULL, spine_buf_str(&err));
    spine_buf_free(&err);
    return;
  }
  fail(wf);
}

void spine_sched_resume(spine_wf *wf, int error) {
  spine_engine *eng = wf->eng;
  lua_State *co = wf->co;
  wf->active_at = real_now();
  spine_wf_move(wf, SPINE_WF_PHASE_RUNNING);
  if (error) wf->kstate |= SPINE_CTX_RAISE;
  spine_sandbox_begin(co, eng->o.instructions, eng->o.mem_limit);
  int nres = 0;
  int st = lua_resume(co, eng->L, 1, &nres);
  spine_sandbox_end(co);
  after_resume(wf, st, nres);
}

static void resume_first(spine_wf *wf, int nargs) {
  spine_engine *eng = wf->eng;
  wf->active_at = real_now();
  /* From loading, or from the failure's checkpoint to the compensations (already running when
   * the failure was replayed). */
  if (wf->phase != SPINE_WF_PHASE_RUNNING) spine_wf_move(wf, SPINE_WF_PHASE_RUNNING);
  spine_sandbox_begin(wf->co, eng->o.instructions, eng->o.mem_limit);
  int nres = 0;
  int st = lua_resume(wf->co, eng->L, nargs, &nres);
  spine_sandbox_end(wf->co);
  after_resume(wf, st, nres);
}

/* ---- operations every workflow needs ---- */

/* Every op of a workflow opens with its fence: a check that the row is still this worker's claim
 * (owner and epoch), or the whole op fails with SPLC0 and writes nothing. The check takes no
 * lock: a claim moves on only once every session of its former owner has ended (the reaping in
 * on_heartbeat), so no op of a former owner is still open when another worker claims. */
spine_op *spine_sched_op_fenced(spine_wf *wf) {
  spine_op *op = &wf->op;
  spine_op_reset(op);
  if (wf->eng->dry) return op;
  spine_op_stmt(op, SPINE_SQL_FENCE, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, wf->eng->worker);
  spine_op_param_int(op, wf->epoch);
  return op;
}

spine_op *spine_sched_op_begin(spine_wf *wf) {
  spine_op *op = spine_sched_op_fenced(wf);
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
    spine_buf_free(&attrs);
    wf->dirty = 0;
  }
  return op;
}

/* The store calls back here: the op is no longer in flight, then its owner's callback runs. */
static void op_done(spine_op *op) {
  spine_wf *wf = op->data;
  wf->op_inflight = 0;
  wf->op_cb(op);
}

void spine_sched_op_submit(spine_wf *wf, spine_op_cb cb) {
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

static void count_step(spine_wf *wf) {
  wf->eng->steps++;
}

/* ---- the end of a workflow ---- */

static void ended(spine_op *op) {
  spine_wf *wf = op->data;
  spine_engine *eng = wf->eng;
  if (op->status)
    spine_log_error("scheduler", "cannot record the end of a workflow", "workflow", wf->id, "error",
                    spine_op_error(op)->msg, NULL);
  if (eng->end_cb) eng->end_cb(eng->end_data, wf, wf->end_result, wf->end_error);
  wf_free(wf);
}

static void end(spine_wf *wf, spine_wf_status status, const char *result, const char *error) {
  spine_engine *eng = wf->eng;
  if (eng->dry) {
    eng->report->ended = 1;
    eng->report->status = status;
    snprintf(eng->report->error, sizeof eng->report->error, "%s", error ? error : "");
    spine_wf_move(wf, SPINE_WF_PHASE_DROPPED);
    return;
  }
  spine_sched_timer_cancel(wf);
  wf->status = status;
  spine_wf_move(wf, SPINE_WF_PHASE_ENDING);
  spine_op *op = spine_sched_op_begin(wf);
  spine_op_stmt(op, SPINE_SQL_WF_END, 0);
  spine_op_param(op, wf->id);
  spine_op_param(op, spine_wf_status_name(status));
  spine_op_param(op, result);
  spine_op_param(op, error);
  spine_op_param_int(op, eng->worker);
  if (wf->parent_id) {
    spine_buf payload = SPINE_BUF_INIT;
    spine_buf_printf(&payload, "{\"status\":\"%s\",\"result\":%s,\"error\":%s,\"id\":",
                     spine_wf_status_name(status), result ? result : "null",
                     error ? error : "null");
    spine_log_json_string(&payload, wf->id, strlen(wf->id));
    spine_buf_putc(&payload, '}');
    char name[64];
    snprintf(name, sizeof name, "spine.child:%d", wf->parent_seq);
    spine_op_stmt(op, SPINE_SQL_SIGNAL_SEND, 0);
    spine_op_param(op, wf->parent_id);
    spine_op_param(op, name);
    spine_op_param(op, spine_buf_str(&payload));
    spine_buf_free(&payload);
  }
  if (!eng->o.quiet)
    spine_log(status == SPINE_WF_COMPLETED ? SPINE_LOG_INFO : SPINE_LOG_WARN, "workflow",
              "workflow ended", "workflow", wf->id, "trace_id", wf->trace_id, "status",
              spine_wf_status_name(status), "error", error, NULL);
  /* Reported once committed: kept until then. */
  wf->end_result = result ? strdup(result) : NULL;
  wf->end_error = error ? strdup(error) : NULL;
  spine_sched_op_submit(wf, ended);
}

void spine_sched_stuck(spine_wf *wf, const char *code, const char *message) {
  if (spine_wf_stopped(wf)) return;
  wf->limits.instructions_left = 0; /* a pcall in the playbook cannot go on for long */
  spine_buf err = SPINE_BUF_INIT;
  spine_buf_puts(&err, "{\"kind\":\"stuck\",\"code\":");
  spine_log_json_string(&err, code, strlen(code));
  spine_buf_puts(&err, ",\"message\":");
  spine_log_json_string(&err, message, strlen(message));
  spine_buf_printf(&err, ",\"step\":%d}", wf->seq - 1);
  end(wf, SPINE_WF_STUCK, NULL, spine_buf_str(&err));
  spine_buf_free(&err);
}

void spine_sched_parked(spine_wf *wf, spine_wf_status status) {
  spine_engine *eng = wf->eng;
  spine_sched_timer_cancel(wf);
  wf->status = status;
  if (eng->end_cb) eng->end_cb(eng->end_data, wf, NULL, NULL);
  wf_free(wf);
}

const spine_provider_port *spine_sched_providers(spine_engine *eng) {
  return eng->providers;
}

static void lost_done(spine_op *op) {
  wf_free(op->data);
}

/* Frees `wf` on the next batch boundary: the coroutine may be on the C stack right now. */
static void drop_later(spine_wf *wf) {
  spine_sched_timer_cancel(wf);
  if (wf->op_inflight || wf->eng->dry) return; /* as in spine_sched_give_up */
  spine_op_reset(&wf->op);
  spine_op_stmt(&wf->op, SPINE_SQL_NOTIFY_WORK, 0);
  spine_sched_op_submit(wf, lost_done);
}

void spine_sched_lost(spine_wf *wf, const char *why) {
  if (spine_wf_stopped(wf)) return;
  spine_wf_move(wf, SPINE_WF_PHASE_DROPPED);
  spine_log_warn("scheduler", "workflow's claim is no longer this worker's; dropped here",
                 "workflow", wf->id, "why", why, NULL);
  drop_later(wf);
}

static void given_up(spine_op *op) {
  spine_wf *wf = op->data;
  spine_engine *eng = wf->eng;
  if (op->status && op->status != SPINE_ELOST)
    spine_log_error("scheduler", "cannot release a workflow", "workflow", wf->id, "error",
                    spine_op_error(op)->msg, NULL);
  wf_free(wf);
  claim(eng); /* it is free again (or someone else's): look for work */
}

void spine_sched_give_up(spine_wf *wf, const char *why) {
  if (spine_wf_stopped(wf)) return;
  spine_wf_move(wf, SPINE_WF_PHASE_RELEASING);
  spine_log_warn("scheduler", "workflow released to run again from its recorded steps", "workflow",
                 wf->id, "why", why, NULL);
  spine_sched_timer_cancel(wf);
  /* Called from an op's callback or a resume: no op is in flight (ctx refuses a step while one
   * is, spine_ctx__check_step). */
  if (wf->op_inflight || wf->eng->dry) return;
  spine_op *op = &wf->op;
  spine_op_reset(op);
  spine_op_stmt(op, SPINE_SQL_WF_RELEASE, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, wf->eng->worker);
  spine_op_param_int(op, wf->epoch);
  spine_op_param_int(op, 1);
  spine_sched_op_submit(wf, given_up);
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
    spine_ctx_encode_error(L, -1, &err);
    lua_settop(L, anchor - 1);
    end(wf, wf->cancel_requested ? SPINE_WF_CANCELLED : SPINE_WF_FAILED, NULL, spine_buf_str(&err));
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

void spine_sched_checkpoint_failed(spine_wf *wf, spine_op *op) {
  if (op->status == SPINE_ELOST)
    spine_sched_lost(wf, spine_op_error(op)->msg);
  else if (op->status == SPINE_ECONFLICT && !strcmp(op->sqlstate, "23505"))
    /* The fence passed, so the claim is ours: the step is in the database but not in the log
     * this worker replayed. Not a takeover: run it again from what the database holds. */
    spine_sched_give_up(wf, spine_op_error(op)->msg);
  else
    spine_sched_stuck(wf, "checkpoint_failed", spine_op_error(op)->msg);
}

static void fail_recorded(spine_op *op) {
  spine_wf *wf = op->data;
  if (op->status) {
    spine_sched_checkpoint_failed(wf, op);
    return;
  }
  count_step(wf);
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
  int seq = wf->seq++;
  if (seq <= wf->nlog) {
    int m = spine_steplog_expect(wf, L, seq, "fail", "fail");
    lua_settop(L, top);
    if (m < 0) return; /* stuck: non-determinism */
    if (m > 0) {
      compensate_or_end(wf);
      return;
    }
  }
  lua_rawgeti(L, -1, SPINE_ANCHOR_ERROR);
  spine_buf err = SPINE_BUF_INIT;
  spine_ctx_encode_error(L, -1, &err);
  lua_settop(L, top);
  spine_op *op = spine_sched_op_begin(wf);
  spine_op_stmt(op, SPINE_SQL_STEP_DONE, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, seq);
  spine_op_param(op, "fail");
  spine_op_param(op, "fail");
  spine_op_param(op, "failed");
  spine_op_param(op, NULL);
  spine_op_param(op, spine_buf_str(&err));
  spine_op_param_int(op, 1);
  spine_buf_free(&err);
  spine_sched_op_submit(wf, fail_recorded);
}

/* ---- starting ---- */

/* Creates the coroutine and runs the playbook from the top; with a log, replays it first. */
static void begin(spine_wf *wf, const char *input_json, const char *log_json,
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
      wf->nlog = spine_steplog_index(L);
      lua_rawseti(L, anchor, SPINE_ANCHOR_LOG);
    }
  }
  wf->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
  wf->co = co;
  spine_sandbox_attach(co, &wf->limits);

  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->version->module);
  lua_getfield(L, -1, "run");
  lua_remove(L, -2);
  spine_sched_push_ctx(eng, L);
  if (spine_codec_decode(L, input_json ? input_json : "{}", strlen(input_json ? input_json : "{}"),
                         &e))
    lua_newtable(L);
  lua_xmove(L, co, 3);
  if (eng->begin_cb) eng->begin_cb(eng->begin_data, wf);
  resume_first(wf, 2);
}

/* Begins a workflow with its pending row data, then drops that data. */
static void start_pending(spine_wf *wf) {
  pending_start *ps = wf->pending;
  wf->pending = NULL;
  begin(wf, ps ? ps->input : NULL, ps ? ps->log : NULL, ps ? ps->attrs : NULL);
  if (ps) {
    free(ps->input);
    free(ps->log);
    free(ps->attrs);
    free(ps);
  }
}

static void started(spine_op *op) {
  spine_wf *wf = op->data;
  if (op->status) {
    spine_log_error("scheduler", "cannot start workflow", "workflow", wf->id, "error",
                    spine_op_error(op)->msg, NULL);
    wf_free(wf);
    return;
  }
  wf->version->stored = 1;
  start_pending(wf);
}

static spine_version *find_version(spine_engine *eng, const char *key, const char *hash) {
  for (spine_version *v = eng->versions; v; v = v->next)
    if ((key && v->key && !strcmp(v->key, key)) || (hash && !strcmp(v->hash, hash))) return v;
  return NULL;
}

static spine_version *add_version(spine_engine *eng, const char *key, const char *path,
                                  const char *source, size_t len, const char *hash, spine_err *e) {
  lua_State *L = eng->L;
  int rc = spine_playbook_compile(L, source, len, path, eng->o.instructions, e);
  if (rc) return NULL;
  spine_version *v = calloc(1, sizeof *v);
  if (!v) {
    lua_pop(L, 1);
    spine_err_set(e, SPINE_ENOMEM, path, NULL, "out of memory");
    return NULL;
  }
  lua_getfield(L, -1, "name");
  const char *name = lua_tostring(L, -1);
  v->name = strdup(name ? name : key ? key : path);
  lua_pop(L, 1);
  v->module = luaL_ref(L, LUA_REGISTRYINDEX);
  snprintf(v->hash, sizeof v->hash, "%s", hash);
  v->key = key ? strdup(key) : NULL;
  v->path = strdup(path);
  v->source = malloc(len + 1);
  memcpy(v->source, source, len);
  v->source[len] = '\0';
  v->len = len;
  v->eng = eng;
  spine_op_init(&v->op);
  v->next = eng->versions;
  eng->versions = v;
  return v;
}

spine_version *spine_sched_version(spine_engine *eng, const char *name_or_path, spine_err *e) {
  spine_version *v = find_version(eng, name_or_path, NULL);
  if (v) return v;
  spine_playbook_src src;
  if (spine_playbook_read(name_or_path, eng->o.playbooks, &src, e)) return NULL;
  v = find_version(eng, NULL, src.hash);
  if (v && !v->key) v->key = strdup(name_or_path);
  if (!v) v = add_version(eng, name_or_path, src.path, src.source, src.len, src.hash, e);
  spine_playbook_src_free(&src);
  return v;
}

const char *spine_version_hash(const spine_version *v) {
  return v->hash;
}
const char *spine_version_name(const spine_version *v) {
  return v->name;
}
const char *spine_version_path(const spine_version *v) {
  return v->path;
}
const char *spine_version_source(const spine_version *v, size_t *len) {
  if (len) *len = v->len;
  return v->source;
}

/* Adds the statement that inserts a workflow row owned by this worker (spine.start_workflow),
 * with its playbook version until that is known to be stored. */
static void add_insert(spine_engine *eng, spine_op *op, const char *id, spine_version *v,
                       const char *process, const char *input, const char *trace,
                       const char *parent, int parent_seq) {
  spine_op_stmt(op, SPINE_SQL_WF_INSERT, 0);
  spine_op_param(op, id);
  spine_op_param(op, process);
  spine_op_param(op, v->name);
  spine_op_param(op, v->hash);
  spine_op_param(op, input);
  spine_op_param(op, trace);
  spine_op_param_int(op, eng->worker);
  spine_op_param(op, parent);
  if (parent)
    spine_op_param_int(op, parent_seq);
  else
    spine_op_param(op, NULL);
  spine_op_param(op, v->stored ? NULL : v->path);
  spine_op_param_len(op, v->stored ? NULL : v->source, v->len);
}

void spine_sched_add_insert(spine_engine *eng, spine_op *op, const char *id, spine_version *v,
                            const char *process, const char *input, const char *trace,
                            const char *parent, int parent_seq) {
  add_insert(eng, op, id, v, process, input, trace, parent, parent_seq);
}

int spine_engine_start(spine_engine *eng, const char *playbook, const char *input_json,
                       char id_out[80], spine_err *e) {
  spine_version *v = spine_sched_version(eng, playbook, e);
  if (!v) return e ? e->code : SPINE_EINVAL;
  lua_State *L = eng->L;
  const char *input = input_json ? input_json : "{}";
  if (spine_codec_decode(L, input, strlen(input), e)) return SPINE_EINVAL;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return spine_err_set(e, SPINE_EINVAL, NULL, "input", "must be a JSON object");
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, v->module);
  int rc = spine_playbook_check_input(L, -1, -2, v->path, e);
  lua_pop(L, 2);
  if (rc) return rc;
  char id[37], trace[33];
  spine_uuid(id);
  spine_uuid_trace_id(trace);
  spine_wf *wf = wf_new(eng, id, v, v->name, trace, NULL, 0);
  if (!wf) return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  pending_new(wf, strdup(input), NULL, NULL);
  spine_op *op = &wf->op;
  spine_op_reset(op);
  add_insert(eng, op, id, v, v->name, input, trace, NULL, 0);
  spine_sched_op_submit(wf, started);
  snprintf(id_out, 80, "%s", id);
  return 0;
}

int spine_sched_adopt(spine_engine *eng, const char *id, spine_version *v, const char *process,
                      const char *input_json, const char *trace_id, const char *parent_id,
                      int parent_seq, spine_err *e) {
  v->stored = 1;
  spine_wf *wf = wf_new(eng, id, v, process, trace_id, parent_id, parent_seq);
  if (!wf) return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  begin(wf, input_json, NULL, NULL);
  return 0;
}

/* ---- claims: free workflows this worker takes ---- */

static void version_loaded(spine_op *op) {
  spine_version *v = op->data;
  spine_engine *eng = v->eng;
  v->loading = 0;
  PGresult *r = spine_op_result(op, 0);
  spine_err e;
  spine_err_clear(&e);
  int ok = 0;
  if (!op->status && r && PQntuples(r) == 1) {
    const char *path = PQgetvalue(r, 0, 1);
    const char *src = PQgetvalue(r, 0, 2);
    size_t len = (size_t)PQgetlength(r, 0, 2);
    lua_State *L = eng->L;
    if (spine_playbook_compile(L, src, len, path, eng->o.instructions, &e) == 0) {
      lua_getfield(L, -1, "name");
      const char *name = lua_tostring(L, -1);
      free(v->name);
      v->name = strdup(name ? name : PQgetvalue(r, 0, 0));
      lua_pop(L, 1);
      v->module = luaL_ref(L, LUA_REGISTRYINDEX);
      free(v->path);
      v->path = strdup(path);
      v->source = malloc(len + 1);
      memcpy(v->source, src, len);
      v->source[len] = '\0';
      v->len = len;
      v->stored = 1;
      ok = 1;
    }
  }
  spine_wf *w = v->waiters;
  v->waiters = NULL;
  while (w) {
    spine_wf *next = w->next_free;
    w->next_free = NULL;
    if (ok) {
      start_pending(w);
    } else {
      spine_log_error("scheduler", "cannot load the playbook version of a workflow", "workflow",
                      w->id, "version", v->hash, "error", e.msg, NULL);
      spine_sched_give_up(w, "its playbook version cannot be loaded");
    }
    w = next;
  }
}

static char *dup_value(PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* Arms the wake-up for the nearest deadline among free workflows (claims mode). */
static void refresh_wake(spine_engine *eng) {
  /* A manual clock's advance finds the free workflows' deadlines itself. */
  if (eng->wake_busy || eng->stopping || !eng->o.claims || eng->o.manual_clock) return;
  eng->wake_busy = 1;
  spine_op_reset(&eng->wake_op);
  spine_op_stmt(&eng->wake_op, SPINE_SQL_NEXT_WAKE, 1);
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
  pending_free(wf);
  end(wf, SPINE_WF_FAILED, NULL, err);
}

static void claimed(spine_op *op) {
  spine_engine *eng = op->data;
  eng->claim_busy = 0;
  PGresult *r = spine_op_result(op, 0);
  int n = (!op->status && r) ? PQntuples(r) : 0;
  if (op->status)
    spine_log_error("scheduler", "claim failed", "error", spine_op_error(op)->msg, NULL);
  for (int i = 0; i < n; i++) {
    const char *id = PQgetvalue(r, i, 0);
    int64_t epoch = atoll(PQgetvalue(r, i, 16));
    eng->clk.foreign++; /* work came: an advance is not idle yet */
    if (registry_get(eng, id)) {
      /* Still in memory while its release (an eviction) commits: the old self goes when that
       * op ends; this claim is handed back so that the next one runs it. */
      release_claim(eng, id, epoch);
      continue;
    }
    const char *hash = PQgetvalue(r, i, 3);
    spine_version *v = find_version(eng, NULL, hash);
    if (!v) {
      v = calloc(1, sizeof *v);
      if (!v) abort();
      snprintf(v->hash, sizeof v->hash, "%s", hash);
      v->name = strdup(PQgetvalue(r, i, 2));
      v->path = strdup("");
      v->module = LUA_NOREF;
      v->eng = eng;
      spine_op_init(&v->op);
      v->next = eng->versions;
      eng->versions = v;
    }
    spine_wf *wf = wf_new(eng, id, v, PQgetvalue(r, i, 1), PQgetvalue(r, i, 5),
                          PQgetisnull(r, i, 6) ? NULL : PQgetvalue(r, i, 6),
                          PQgetisnull(r, i, 7) ? 0 : atoi(PQgetvalue(r, i, 7)));
    if (!wf) abort();
    wf->epoch = epoch;
    wf->cancel_requested = PQgetvalue(r, i, 9)[0] == 't';
    wf->attempt = atoi(PQgetvalue(r, i, 10));
    wf->state = dup_value(r, i, 11);
    wf->variant = dup_value(r, i, 14);
    wf->experiment = dup_value(r, i, 15);
    wf->row_waiting = !strcmp(PQgetvalue(r, i, 8), "waiting");
    pending_new(wf, dup_value(r, i, 4), dup_value(r, i, 13), dup_value(r, i, 12));
    int lost_runs = atoi(PQgetvalue(r, i, 17));
    if (lost_runs >= POISON_RUNS) {
      poisoned(wf, lost_runs);
      continue;
    }
    if (v->module != LUA_NOREF) {
      start_pending(wf);
      continue;
    }
    wf->next_free = v->waiters; /* parked until the version loads (see version_loaded) */
    v->waiters = wf;
    if (!v->loading) {
      v->loading = 1;
      spine_op_reset(&v->op);
      spine_op_stmt(&v->op, SPINE_SQL_VERSION_LOAD, 1);
      spine_op_param(&v->op, v->hash);
      v->op.cb = version_loaded;
      v->op.data = v;
      spine_store_submit(eng->store, &v->op);
    }
  }
  if (n == CLAIM_BATCH || eng->claim_again) {
    eng->claim_again = 0;
    claim(eng);
    return;
  }
  refresh_wake(eng);
}

static void on_wake(uv_timer_t *t) {
  claim(t->data);
}

static void next_wake(spine_op *op) {
  spine_engine *eng = op->data;
  eng->wake_busy = 0;
  PGresult *r = spine_op_result(op, 0);
  if (op->status || !r || PQntuples(r) != 1 || PQgetisnull(r, 0, 0) || eng->stopping) return;
  int64_t at = atoll(PQgetvalue(r, 0, 0));
  int64_t delay = at - real_now();
  uv_timer_start(&eng->wake, on_wake, delay > 0 ? (uint64_t)delay + 5 : 0, 0);
}

static void claim(spine_engine *eng) {
  if (!eng->o.claims || eng->stopping) return;
  if (eng->claim_busy) {
    eng->claim_again = 1;
    return;
  }
  eng->claim_busy = 1;
  spine_op_reset(&eng->claim_op);
  spine_op_stmt(&eng->claim_op, SPINE_SQL_CLAIM, 1);
  spine_op_param_int(&eng->claim_op, eng->worker);
  spine_op_param_int(&eng->claim_op, CLAIM_BATCH);
  spine_store_submit(eng->store, &eng->claim_op);
}

static void clock_marker(spine_engine *eng, const char *payload);

static void on_notify(void *data, const char *channel, const char *payload) {
  spine_engine *eng = data;
  for (int i = 0; i < eng->nchannels; i++)
    if (!strcmp(channel, eng->channels[i].name)) {
      eng->channels[i].cb(eng->channels[i].data, channel, payload);
      return;
    }
  if (payload[0] == 'k' && payload[1] == ':') {
    clock_marker(eng, payload + 2);
    return;
  }
  if (payload[0] == 'h' && payload[1] == ':') {
    char *rest;
    if (strtoll(payload + 2, &rest, 10) == eng->worker && *rest == ':')
      eng->hb_heard = strtoull(rest + 1, NULL, 10);
    return;
  }
  eng->clk.foreign++;
  if ((payload[0] == 's' || payload[0] == 'c') && payload[1] == ':') {
    spine_wf *wf = registry_get(eng, payload + 2);
    if (wf) {
      if (payload[0] == 's')
        spine_ctx_signal_arrived(wf);
      else
        spine_ctx_cancel(wf);
      return;
    }
  }
  claim(eng);
}

/* ---- heartbeats: keep our lease, reap dead workers ---- */

static void work_notified(spine_op *op) {
  spine_engine *eng = op->data;
  eng->hb_busy = 0;
}

static void heartbeat_done(spine_op *op) {
  spine_engine *eng = op->data;
  eng->hb_busy = 0;
  if (op->status) {
    spine_log_error("scheduler", "heartbeat failed", "error", spine_op_error(op)->msg, NULL);
    return;
  }
  eng->hb_sent = eng->hb_next;
  PGresult *mine = spine_op_result(op, 0);
  if (mine && PQntuples(mine) == 0) {
    /* Reaped: our lease ran out (we hung, or were cut off) and our workflows moved on. Start
     * over as a new worker, as after a lost connection: nothing in memory is ours any more. */
    spine_log_error("scheduler", "this worker's lease was taken: dropping its workflows", NULL);
    spine_store_lose(eng->store, "lease lost");
    return;
  }
  PGresult *reaped = spine_op_result(op, 3);
  if (reaped && PQntuples(reaped) > 0) {
    char n[16];
    snprintf(n, sizeof n, "%d", PQntuples(reaped));
    spine_log_info("scheduler", "took over the workflows of dead workers", "workflows", n, NULL);
    spine_op_reset(op);
    spine_op_stmt(op, SPINE_SQL_NOTIFY_WORK, 0);
    op->cb = work_notified;
    eng->hb_busy = 1;
    spine_store_submit(eng->store, op);
    claim(eng);
  }
}

/* ---- eviction: idle waiting workflows leave memory; a wake-up replays them ---- */

static void evicted(spine_op *op) {
  spine_wf *wf = op->data;
  spine_engine *eng = wf->eng;
  int again = wf->signal_pending; /* a signal came while releasing: claim it back */
  wf_free(wf);
  if (again) claim(eng);
  refresh_wake(eng);
}

static void evict_idle(spine_engine *eng) {
  if (!eng->o.evict_after_ms || eng->stopping) return;
  int64_t now = spine_sched_now(eng), idle_before = real_now() - eng->o.evict_after_ms;
  lua_State *L = eng->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    spine_wf *wf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!wf || wf->op_inflight || wf->compensating) continue;
    if (wf->phase != SPINE_WF_PHASE_SIGNAL && wf->phase != SPINE_WF_PHASE_TIMER) continue;
    if (wf->active_at > idle_before) continue;
    if (wf->heap_index >= 0 && wf->wake_ms < now + eng->o.evict_after_ms) continue; /* due soon */
    spine_sched_timer_cancel(wf);
    spine_wf_move(wf, SPINE_WF_PHASE_RELEASING);
    spine_op *op = &wf->op;
    spine_op_reset(op);
    spine_op_stmt(op, SPINE_SQL_WF_RELEASE, 0);
    spine_op_param(op, wf->id);
    spine_op_param_int(op, eng->worker);
    spine_op_param_int(op, wf->epoch);
    spine_op_param_int(op, 0);
    spine_sched_op_submit(wf, evicted); /* freeing it does not disturb this traversal */
  }
  lua_pop(L, 1);
}

static void on_heartbeat(uv_timer_t *t) {
  spine_engine *eng = t->data;
  evict_idle(eng);
  if (eng->hb_busy || eng->stopping) return;
  if (eng->serving && eng->hb_sent >= 2 && eng->hb_heard + 2 <= eng->hb_sent) {
    /* Two heartbeats committed since the last one we heard: notifications no longer reach us,
     * and so neither would signals or new cases. */
    spine_store_lose(eng->store, "the session connection stopped hearing notifications");
    return;
  }
  eng->hb_busy = 1;
  spine_op *op = &eng->hb_op;
  spine_op_reset(op);
  spine_op_stmt(op, SPINE_SQL_WORKER_HEARTBEAT, 1);
  spine_op_param_int(op, eng->worker);
  spine_op_param_int(op, eng->o.lease_ms);
  /* Dead or hung workers: their sessions ended first (a hung one may hold an open transaction's
   * locks; a killed one's may still be committing a batch), and only once every one of them is
   * gone are their workflows freed: no transaction of a former owner can commit after another
   * worker claimed. Then the workers that own nothing any more are forgotten. The kill waits (up
   * to 2 s) for the sessions to exit, so the heartbeat travels alone, holding up no batch. */
  spine_op_stmt(op, SPINE_SQL_WORKERS_KILL, 0);
  spine_op_param_int(op, eng->worker);
  spine_op_stmt(op, SPINE_SQL_STAT_REFRESH, 0);
  spine_op_stmt(op, SPINE_SQL_WORKERS_REAP, 1);
  spine_op_param_int(op, eng->worker);
  spine_op_stmt(op, SPINE_SQL_WORKERS_DROP, 0);
  spine_op_param_int(op, eng->worker);
  char mark[64];
  eng->hb_next = eng->hb_sent + 1;
  snprintf(mark, sizeof mark, "h:%lld:%llu", (long long)eng->worker,
           (unsigned long long)eng->hb_next);
  spine_op_stmt(op, SPINE_SQL_NOTIFY_MARK, 0);
  spine_op_param(op, mark);
  op->solo = 1;
  op->cb = heartbeat_done;
  op->data = eng;
  spine_store_submit(eng->store, op);
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
  lua_State *L = eng->L;
  int busy = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    spine_wf *wf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (wf && wf->phase == SPINE_WF_PHASE_PROVIDER) busy = 1;
  }
  lua_pop(L, 1);
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
    claim(eng);
  }
}

static void clock_marker(spine_engine *eng, const char *payload) {
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
  if (!eng->clk.op_done || !eng->clk.marker_seen) return;           /* the round is under way */
  if (!spine_store_idle(eng->store) || providers_busy(eng)) return; /* idle calls us again */
  uint64_t ops = spine_store_stats_get(eng->store)->ops - eng->clk.ops_at_start;
  if (eng->clk.foreign || eng->claim_busy || ops != (uint64_t)eng->clk.own_ops) {
    clock_round(eng);
    return;
  }
  /* Idle now. Free workflows due now were the round's claim's; only later ones count. */
  int64_t next = eng->nheap ? eng->heap[0]->wake_ms : INT64_MAX;
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

int spine_engine_advance(spine_engine *eng, int64_t to_ms, spine_engine_clock_cb cb, void *data) {
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

int64_t spine_engine_now(spine_engine *eng, int *manual) {
  if (manual) *manual = eng->o.manual_clock;
  return spine_sched_now(eng);
}

/* At start (blocking): a manual clock starts where asked, else where the database's stands,
 * else at real time, and is written there; a real-clock worker removes a manual clock a test
 * left behind, so that the database is on real time again. */
static int clock_setup(spine_engine *eng, spine_err *e) {
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
  if (!eng->vnow) eng->vnow = real_now();
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

/* ---- setup ---- */

/* Runs the compensations in reverse order; `mark` records each as a step first. */
static const char runner_src[] = "local comps, mark = ...\n"
                                 "for i = #comps, 1, -1 do\n"
                                 "  mark(i)\n"
                                 "  comps[i]()\n"
                                 "end\n";

/* What the engine keeps in its Lua state: the workflow registry, ctx, the compensation runner. */
static void lua_setup(spine_engine *eng) {
  lua_State *L = eng->L;
  lua_newtable(L);
  eng->wfs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  spine_ctx_open(L);
  eng->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (luaL_loadbufferx(L, runner_src, sizeof runner_src - 1, "=compensations", "t")) abort();
  eng->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static int register_worker(spine_engine *eng, spine_err *e) {
  PGconn *pg = spine_store_session(eng->store);
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  char pid[16], lease[24], backends[MAX_BACKENDS * 12 + 4] = "{";
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  snprintf(lease, sizeof lease, "%lld", (long long)eng->o.lease_ms);
  int pids[MAX_BACKENDS];
  int n = spine_store_backends(eng->store, pids, MAX_BACKENDS);
  for (int i = 0; i < n; i++) {
    size_t len = strlen(backends);
    snprintf(backends + len, sizeof backends - len, "%s%d", i ? "," : "", pids[i]);
  }
  strcat(backends, "}");
  const char *params[4] = {host, pid, lease, backends};
  /* The row and the session's advisory lock appear together: no one sees us without it. Its
   * connections opened before the row (registered_at): a reaper ends exactly those. */
  PGresult *r = PQexec(pg, "BEGIN");
  PQclear(r);
  r = PQexecParams(pg,
                   "WITH w AS (INSERT INTO spine.workers (host, pid, lease_until, backends)"
                   " VALUES ($1, $2, now() + $3 * interval '1 ms', $4::int[]) RETURNING id)"
                   " SELECT id, pg_advisory_lock(7780, id::int4) FROM w",
                   4, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    spine_err_set(e, SPINE_EDB, "database", NULL, "cannot register worker: %s",
                  PQresultErrorMessage(r));
    PQclear(r);
    r = PQexec(pg, "ROLLBACK");
    PQclear(r);
    return SPINE_EDB;
  }
  int64_t prev = eng->worker;
  eng->worker = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (prev) {
    /* Our former identity (before a lost connection) is dead for sure: its lease ends now, so
     * the next reaping ends its sessions (a blackholed one may live on in the server) and frees
     * its workflows without waiting for the lease to run out. */
    char old[24];
    snprintf(old, sizeof old, "%lld", (long long)prev);
    const char *p1[1] = {old};
    r = PQexecParams(pg, "UPDATE spine.workers SET lease_until = '-infinity' WHERE id = $1", 1,
                     NULL, p1, NULL, NULL, 0);
    PQclear(r);
  }
  eng->hb_next = eng->hb_sent = eng->hb_heard = 0;
  r = PQexec(pg, "COMMIT");
  PQclear(r);
  return 0;
}

static int migrate(const char *conninfo, spine_err *e) {
  PGconn *c = PQconnectdb(conninfo);
  int rc;
  if (PQstatus(c) != CONNECTION_OK)
    rc = spine_err_set(e, SPINE_EDB, "database", NULL, "cannot connect: %s", PQerrorMessage(c));
  else
    rc = spine_migrate(c, NULL, e);
  PQfinish(c);
  return rc;
}

/* ---- no adapters: the port of an engine given none, every provider unknown ---- */

static int no_call(void *impl, const spine_provider_request *r, spine_provider_cb cb, void *data,
                   spine_provider_call **out, spine_err *e) {
  (void)impl, (void)cb, (void)data;
  if (out) *out = NULL;
  return spine_err_set(e, SPINE_ENOTFOUND, "providers", "provider", "no provider \"%s\"",
                       r->provider ? r->provider : "(null)");
}

static void no_cancel(void *impl, spine_provider_call *c) {
  (void)impl, (void)c;
}

static int no_has(void *impl, const char *provider) {
  (void)impl, (void)provider;
  return 0;
}

static void no_set_clock(void *impl, int64_t (*now_ms)(void *data), void *data) {
  (void)impl, (void)now_ms, (void)data;
}

static const spine_provider_port no_providers = {NULL, no_call, no_cancel, no_has, no_set_clock};

int spine_engine_new(uv_loop_t *loop, const spine_engine_opts *opts, spine_engine **out,
                     spine_err *e) {
  spine_intents_init();
  spine_engine *eng = calloc(1, sizeof *eng);
  if (!eng) return SPINE_ENOMEM;
  eng->loop = loop;
  eng->o = *opts;
  if (!eng->o.pool) eng->o.pool = 4;
  if (!eng->o.instructions) eng->o.instructions = 50 * 1000 * 1000;
  if (!eng->o.mem_limit) eng->o.mem_limit = 64 << 20;
  if (!eng->o.playbooks) eng->o.playbooks = "playbooks";
  if (!eng->o.lease_ms) eng->o.lease_ms = 10000;
  eng->vnow = real_now();
  *out = NULL;

  eng->L = spine_sandbox_new_state(0);
  if (!eng->L) {
    free(eng);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "cannot create the Lua state");
  }
  if (!eng->o.providers.call) eng->o.providers = no_providers;
  eng->providers = &eng->o.providers;
  /* Migrate first: the pool prepares its statements against the tables. */
  int rc = migrate(opts->conninfo, e);
  if (!rc) rc = spine_store_open(loop, opts->conninfo, eng->o.pool, &eng->store, e);
  if (!rc) rc = spine_store_session_open(eng->store, opts->conninfo, e);
  if (!rc) rc = register_worker(eng, e);
  if (!rc) rc = clock_setup(eng, e);
  if (rc) {
    if (eng->store) spine_store_close(eng->store);
    uv_run(loop, UV_RUN_DEFAULT); /* let the store's handles close */
    lua_close(eng->L);
    free(eng);
    return rc;
  }
  spine_store_on_idle(eng->store, on_store_idle, eng);
  spine_store_set_timeout(eng->store, eng->o.db_timeout_ms);
  eng->providers->set_clock(eng->providers->impl, engine_clock, eng);
  lua_setup(eng);
  uint64_t seed = (uint64_t)real_now() ^ ((uint64_t)getpid() << 40);
  eng->rng[0] = seed | 1;
  eng->rng[1] = seed * 0x9E3779B97F4A7C15ull;
  uv_timer_init(loop, &eng->timer);
  uv_timer_init(loop, &eng->wake);
  uv_timer_init(loop, &eng->heartbeat);
  uv_timer_init(loop, &eng->vtick);
  uv_timer_init(loop, &eng->reconnect);
  eng->timer.data = eng->wake.data = eng->heartbeat.data = eng->vtick.data = eng;
  eng->reconnect.data = eng;
  spine_op_init(&eng->claim_op);
  eng->claim_op.cb = claimed;
  eng->claim_op.data = eng;
  spine_op_init(&eng->hb_op);
  spine_op_init(&eng->wake_op);
  eng->wake_op.cb = next_wake;
  eng->wake_op.data = eng;
  spine_op_init(&eng->clk.op);
  *out = eng;
  return 0;
}

static int listen_one(PGconn *pg, const char *channel, spine_err *e) {
  char sql[96];
  snprintf(sql, sizeof sql, "LISTEN %s", channel);
  PGresult *r = PQexec(pg, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    spine_err_set(e, SPINE_EDB, "database", NULL, "LISTEN %s failed: %s", channel,
                  PQresultErrorMessage(r));
    PQclear(r);
    return SPINE_EDB;
  }
  PQclear(r);
  return 0;
}

static int listen_session(spine_engine *eng, spine_err *e) {
  PGconn *pg = spine_store_session(eng->store);
  int rc = listen_one(pg, "spine", e);
  for (int i = 0; i < eng->nchannels && !rc; i++)
    rc = listen_one(pg, eng->channels[i].name, e);
  if (rc) return rc;
  spine_store_session_listen(eng->store, on_notify, eng);
  return 0;
}

int spine_engine_listen(spine_engine *eng, const char *channel, spine_notify_cb cb, void *data) {
  if (eng->serving || eng->nchannels == MAX_CHANNELS || strlen(channel) >= 64) return SPINE_EINVAL;
  for (const char *p = channel; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) return SPINE_EINVAL;
  snprintf(eng->channels[eng->nchannels].name, 64, "%s", channel);
  eng->channels[eng->nchannels].cb = cb;
  eng->channels[eng->nchannels].data = data;
  eng->nchannels++;
  return 0;
}

void spine_engine_on_connection(spine_engine *eng, void (*lost)(void *data),
                                void (*back)(void *data), void *data) {
  eng->lost_cb = lost;
  eng->back_cb = back;
  eng->conn_data = data;
}

/* Heartbeat (which reaps dead workers at once: after a reconnect, our former self) and claims. */
static void start_work(spine_engine *eng) {
  /* Every engine keeps its lease (a long `spine run` must not look dead); reaping at once
   * lets a restarted worker take over its old work now. */
  uint64_t every = (uint64_t)eng->o.lease_ms / 5;
  on_heartbeat(&eng->heartbeat);
  uv_timer_start(&eng->heartbeat, on_heartbeat, every, every);
  claim(eng);
}

static void on_reconnect(uv_timer_t *t) {
  spine_engine *eng = t->data;
  if (eng->stopping) return;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_store_reconnect(eng->store, &e);
  /* A new worker identity: the old one's workflows are released by its reaping, like those
   * of a worker that died; the database, not memory, says where each one is. */
  if (!rc) rc = register_worker(eng, &e);
  if (!rc) rc = listen_session(eng, &e);
  if (rc) {
    if (!spine_store_idle(eng->store) || e.code != SPINE_ETRANSIENT)
      spine_log_warn("scheduler", "cannot reconnect yet", "error", e.msg, NULL);
    spine_store_lose(eng->store, "setup after reconnect failed"); /* no-op while still lost */
    eng->reconnect_ms =
        eng->reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : eng->reconnect_ms * 2;
    uv_timer_start(&eng->reconnect, on_reconnect, (uint64_t)eng->reconnect_ms, 0);
    return;
  }
  char worker[24];
  snprintf(worker, sizeof worker, "%lld", (long long)eng->worker);
  spine_log_info("scheduler", "reconnected", "worker", worker, NULL);
  start_work(eng);
  if (eng->back_cb) eng->back_cb(eng->conn_data);
}

/* The store lost its connections and forgot every op in flight: drop every workflow from
 * memory (nothing of them is lost: the database has each one's history and lease) and
 * reconnect. Runs from the loop, never inside a resume or a store callback. */
static void on_store_lost(void *data) {
  spine_engine *eng = data;
  if (eng->stopping) return;
  uv_timer_stop(&eng->timer);
  uv_timer_stop(&eng->wake);
  uv_timer_stop(&eng->heartbeat);
  uv_timer_stop(&eng->vtick);
  for (spine_version *v = eng->versions; v; v = v->next) {
    v->waiters = NULL; /* each is in the registry too: freed below */
    v->loading = 0;
  }
  lua_State *L = eng->L;
  int n = 0, cap = eng->live > 0 ? eng->live : 1;
  spine_wf **all = malloc((size_t)cap * sizeof *all);
  if (!all) abort();
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    spine_wf *wf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (wf && n < cap) all[n++] = wf;
  }
  lua_pop(L, 1);
  for (int i = 0; i < n; i++)
    wf_free(all[i]);
  free(all);
  eng->claim_busy = eng->claim_again = eng->hb_busy = eng->wake_busy = 0;
  char dropped[16];
  snprintf(dropped, sizeof dropped, "%d", n);
  spine_log_warn("scheduler", "database connection lost: workflows left memory, reconnecting",
                 "workflows", dropped, NULL);
  eng->reconnect_ms = RECONNECT_MIN_MS;
  uv_timer_start(&eng->reconnect, on_reconnect, RECONNECT_MIN_MS, 0);
  if (eng->lost_cb) eng->lost_cb(eng->conn_data);
}

int spine_engine_serve(spine_engine *eng, spine_err *e) {
  int rc = listen_session(eng, e);
  if (rc) return rc;
  eng->serving = 1;
  /* A worker that serves claims can drop its workflows and reconnect; a `spine run` cannot
   * (its one workflow lives only in it) and exits instead. */
  if (eng->o.claims) spine_store_on_lost(eng->store, on_store_lost, eng);
  start_work(eng);
  return 0;
}

static void release_all(spine_engine *eng) {
  PGconn *pg = spine_store_session(eng->store);
  if (!pg) return;
  char worker[24];
  snprintf(worker, sizeof worker, "%lld", (long long)eng->worker);
  const char *params[1] = {worker};
  PGresult *r =
      PQexecParams(pg, spine_sql_text(SPINE_SQL_WF_RELEASE_ALL), 1, NULL, params, NULL, NULL, 0);
  PQclear(r);
  r = PQexecParams(pg, "DELETE FROM spine.workers WHERE id = $1", 1, NULL, params, NULL, NULL, 0);
  PQclear(r);
  r = PQexec(pg, "SELECT pg_notify('spine', 'w')");
  PQclear(r);
}

static void cancel_provider_calls(spine_engine *eng) {
  lua_State *L = eng->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    spine_wf *wf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (wf) spine_ctx_provider_cancel(wf);
  }
  lua_pop(L, 1);
}

void spine_engine_stop(spine_engine *eng) {
  if (eng->stopping) return;
  eng->stopping = 1;
  if (eng->clk.active) clock_finish(eng, SPINE_ECANCELLED);
  uv_timer_stop(&eng->timer);
  uv_timer_stop(&eng->wake);
  uv_timer_stop(&eng->heartbeat);
  uv_timer_stop(&eng->vtick);
  uv_timer_stop(&eng->reconnect);
  /* Blocking is fine here: the loop serves nothing more. The session connection is idle. */
  release_all(eng);
  uv_close((uv_handle_t *)&eng->reconnect, NULL);
  uv_close((uv_handle_t *)&eng->timer, NULL);
  uv_close((uv_handle_t *)&eng->wake, NULL);
  uv_close((uv_handle_t *)&eng->heartbeat, NULL);
  uv_close((uv_handle_t *)&eng->vtick, NULL);
  spine_store_close(eng->store);
  /* The adapters are the assembler's, freed after this: cancel our calls in flight (their
   * callbacks never run), give the breakers their own clock back, and let go of the port. */
  if (eng->providers) {
    cancel_provider_calls(eng);
    eng->providers->set_clock(eng->providers->impl, NULL, NULL);
    eng->providers = NULL;
  }
}

void spine_engine_free(spine_engine *eng) {
  lua_State *L = eng->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->wfs_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    spine_wf *wf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (wf) {
      spine_ctx_provider_free(wf); /* its call, if any, ended with the adapters */
      pending_free(wf);
      spine_op_free(&wf->op);
      free(wf->process);
      free(wf->parent_id);
      free(wf->state);
      free(wf);
    }
  }
  lua_pop(L, 1);
  for (spine_version *v = eng->versions, *next; v; v = next) {
    next = v->next;
    spine_op_free(&v->op);
    free(v->name);
    free(v->key);
    free(v->path);
    free(v->source);
    free(v);
  }
  spine_op_free(&eng->claim_op);
  spine_op_free(&eng->hb_op);
  spine_op_free(&eng->wake_op);
  spine_op_free(&eng->clk.op);
  free(eng->heap);
  lua_close(L);
  free(eng);
}

void spine_engine_on_end(spine_engine *eng, spine_engine_end_cb cb, void *data) {
  eng->end_cb = cb;
  eng->end_data = data;
}

void spine_engine_on_begin(spine_engine *eng, void (*cb)(void *data, const spine_wf *wf),
                           void *data) {
  eng->begin_cb = cb;
  eng->begin_data = data;
}

int spine_engine_live(const spine_engine *eng) {
  return eng->live;
}

uint64_t spine_engine_steps(const spine_engine *eng) {
  return eng->steps;
}

int64_t spine_engine_worker(const spine_engine *eng) {
  return eng->worker;
}

int64_t spine_sched_worker(spine_engine *eng) {
  return eng->worker;
}

lua_State *spine_engine_lua(spine_engine *eng) {
  return eng->L;
}

uv_loop_t *spine_engine_loop(spine_engine *eng) {
  return eng->loop;
}

spine_store *spine_engine_store(spine_engine *eng) {
  return eng->store;
}

void spine_sched_push_ctx(spine_engine *eng, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->ctx_ref);
}

double spine_sched_random(spine_engine *eng) {
  /* xorshift128+, top 53 bits */
  uint64_t s1 = eng->rng[0];
  const uint64_t s0 = eng->rng[1];
  eng->rng[0] = s0;
  s1 ^= s1 << 23;
  eng->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return (double)((eng->rng[1] + s0) >> 11) * (1.0 / 9007199254740992.0);
}

int spine_engine_replay(const char *path, const char *source, size_t len, const char *input_json,
                        const char *steps_json, spine_replay_report *out, spine_err *e) {
  memset(out, 0, sizeof *out);
  spine_intents_init();
  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_engine *eng = calloc(1, sizeof *eng);
  if (!eng) return SPINE_ENOMEM;
  eng->loop = &loop;
  eng->dry = 1;
  eng->report = out;
  eng->o.instructions = 50 * 1000 * 1000;
  eng->o.mem_limit = 64 << 20;
  eng->o.playbooks = "playbooks";
  eng->o.virtual_clock = 1;
  eng->o.quiet = 1;
  eng->vnow = real_now();
  eng->L = spine_sandbox_new_state(0);
  if (!eng->L) {
    free(eng);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "cannot create the Lua state");
  }
  lua_setup(eng);
  uv_timer_init(&loop, &eng->timer);
  uv_timer_init(&loop, &eng->vtick);
  eng->timer.data = eng->vtick.data = eng;
  char hash[65] = "replay";
  int rc = 0;
  spine_version *v = add_version(eng, NULL, path, source, len, hash, e);
  if (!v) {
    rc = e ? e->code : SPINE_EINVAL;
  } else {
    spine_wf *wf = wf_new(eng, "replay", v, v->name, "00000000000000000000000000000000", NULL, 0);
    if (!wf) abort();
    begin(wf, input_json, steps_json, NULL);
    out->recorded = wf->nlog;
    out->replayed = wf->seq - 1 < wf->nlog ? wf->seq - 1 : wf->nlog;
    out->nondeterministic = out->ended && out->status == SPINE_WF_STUCK;
    if (out->nondeterministic && out->replayed > 0) out->replayed--;
    wf_free(wf);
  }
  uv_close((uv_handle_t *)&eng->timer, NULL);
  uv_close((uv_handle_t *)&eng->vtick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  eng->store = NULL;
  spine_engine_free(eng);
  return rc;
}

void spine_sched_refill(spine_wf *wf) {
  wf->limits.instructions_left = wf->eng->o.instructions;
}

void spine_sched_count_step(spine_wf *wf) {
  count_step(wf);
}
