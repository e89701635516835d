/* The strands of a workflow (workflow_internal.h): while a ctx.parallel is under way, its
 * branches are strands beside the main body, each with its coroutine, its call, its step
 * numbers and its timer. They run one at a time: a strand is loaded into the workflow (so that
 * ctx and the rest of the workflow module see one running strand, as without a parallel) only
 * while no other runs or commits; what happens to the others meanwhile (a timer fires, a
 * signal comes, a branch is to start or be cancelled) is queued as an event and runs once the
 * workflow is idle again, in order. So a workflow still has one op in flight at a time, and a
 * strand's op is never built while another's is in flight. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "engine_internal.h"
#include "workflow_internal.h"

/* ---- loading and saving ---- */

int spine_wf_in_branch(const spine_wf *wf) {
  return wf->cur && wf->cur != wf->main;
}

void spine_wf_strand_save(spine_wf *wf) {
  spine_strand *s = wf->cur;
  s->co = wf->co;
  s->call = wf->call;
  s->lseq = wf->lseq;
  s->nlog = wf->nlog;
  s->phase = wf->phase;
  wf->cur = NULL;
  memset(&wf->call, 0, sizeof wf->call);
  /* Not spine_wf_move: the strand keeps its phase in its record; the workflow waits. */
  wf->phase = SPINE_WF_PHASE_PARALLEL;
}

void spine_wf_strand_load(spine_wf *wf, spine_strand *s) {
  wf->cur = s;
  wf->co = s->co;
  wf->call = s->call;
  wf->lseq = s->lseq;
  wf->nlog = s->nlog;
  wf->path = s->path;
  wf->phase = s->phase;
}

/* ---- strands ---- */

static void strand_timer_fired(spine_timer *t);

spine_strand *spine_wf_strand_new(spine_wf *wf, spine_par *par, const char *path, const char *key,
                                  int index, int ref) {
  if (wf->nstrands == wf->capstrands) {
    int cap = wf->capstrands ? wf->capstrands * 2 : 8;
    spine_strand **a = realloc(wf->strands, (size_t)cap * sizeof *a);
    if (!a) return NULL;
    wf->strands = a;
    wf->capstrands = cap;
  }
  spine_strand *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->wf = wf;
  s->par = par;
  s->path = path ? strdup(path) : NULL;
  s->key = key ? strdup(key) : NULL;
  s->index = index;
  s->ref = ref;
  s->comps_ref = LUA_NOREF;
  s->lseq = 1;
  s->phase = SPINE_WF_PHASE_PARALLEL;
  spine_timer_init(&s->timer, strand_timer_fired);
  if ((path && !s->path) || (key && !s->key)) {
    free(s->path);
    free(s->key);
    free(s);
    return NULL;
  }
  wf->strands[wf->nstrands++] = s;
  return s;
}

void spine_wf_strand_quiet(spine_wf *wf, spine_strand *s) {
  spine_clock_remove(wf->eng, &s->timer);
  s->on_timer = NULL;
  int k = 0;
  for (int i = 0; i < wf->nevents; i++)
    if (wf->events[i].s != s) wf->events[k++] = wf->events[i];
  wf->nevents = k;
}

void spine_wf_strand_free(spine_wf *wf, spine_strand *s) {
  spine_wf_strand_quiet(wf, s);
  if (s != wf->cur) { /* a loaded strand's is the workflow's (spine_ctx_provider_free) */
    spine_ctx_provider_drop(wf, s->call.provider);
    s->call.provider = NULL;
  }
  lua_State *L = wf->eng->L;
  if (s->ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
  if (s->comps_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->comps_ref);
  for (int i = 0; i < wf->nstrands; i++)
    if (wf->strands[i] == s) {
      memmove(wf->strands + i, wf->strands + i + 1,
              (size_t)(wf->nstrands - i - 1) * sizeof *wf->strands);
      wf->nstrands--;
      break;
    }
  if (wf->cur == s) wf->cur = NULL;
  free(s->path);
  free(s->key);
  free(s);
}

void spine_wf_push_comps(spine_wf *wf, lua_State *L) {
  if (spine_wf_in_branch(wf)) {
    if (wf->cur->comps_ref == LUA_NOREF) { /* its first: may raise at the memory limit */
      lua_newtable(L);
      wf->cur->comps_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, wf->cur->comps_ref);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, wf->anchor);
  lua_rawgeti(L, -1, SPINE_ANCHOR_COMPS);
  lua_remove(L, -2);
}

/* ---- events ---- */

void spine_wf_strand_post(spine_wf *wf, spine_strand *s, spine_wf_timer_fn fn) {
  if (wf->nevents == wf->capevents) {
    int cap = wf->capevents ? wf->capevents * 2 : 8;
    struct spine_wf_event *a = realloc(wf->events, (size_t)cap * sizeof *a);
    if (!a) abort();
    wf->events = a;
    wf->capevents = cap;
  }
  wf->events[wf->nevents++] = (struct spine_wf_event){s, fn, s->gen};
}

static void strand_timer_fired(spine_timer *t) {
  spine_strand *s = (spine_strand *)((char *)t - offsetof(spine_strand, timer));
  spine_wf *wf = s->wf;
  spine_wf_timer_fn fn = s->on_timer;
  s->on_timer = NULL;
  if (!fn) return;
  spine_wf_hold(wf);
  spine_wf_strand_post(wf, s, fn);
  spine_wf_unhold(wf);
}

static int by_path(const void *a, const void *b) {
  const spine_strand *x = *(spine_strand *const *)a, *y = *(spine_strand *const *)b;
  return strcmp(x->path ? x->path : "", y->path ? y->path : "");
}

void spine_wf_strand_offer(spine_wf *wf, spine_wf_timer_fn fn) {
  if (wf->cur) fn(wf); /* loaded: its wait may be being begun (it notes the signal) */
  int n = 0;
  spine_strand **waiting = malloc((size_t)(wf->nstrands ? wf->nstrands : 1) * sizeof *waiting);
  if (!waiting) abort();
  for (int i = 0; i < wf->nstrands; i++) {
    spine_strand *s = wf->strands[i];
    if (s != wf->cur && s->phase == SPINE_WF_PHASE_SIGNAL) waiting[n++] = s;
  }
  qsort(waiting, (size_t)n, sizeof *waiting, by_path);
  for (int i = 0; i < n; i++)
    spine_wf_strand_post(wf, waiting[i], fn);
  free(waiting);
}

/* ---- idle: the row says waiting, until the earliest deadline ---- */

int64_t spine_wf_strand_earliest(const spine_wf *wf) {
  int64_t at = 0;
  for (int i = 0; i < wf->nstrands; i++) {
    const spine_strand *s = wf->strands[i];
    int64_t t = 0;
    if (spine_timer_armed(&s->timer)) t = s->timer.at;
    if (s->call.par && spine_timer_armed(&s->call.par->timer) && (!t || s->call.par->timer.at < t))
      t = s->call.par->timer.at;
    if (wf->cur == s && wf->call.par && spine_timer_armed(&wf->call.par->timer) &&
        (!t || wf->call.par->timer.at < t))
      t = wf->call.par->timer.at;
    if (t && (!at || t < at)) at = t;
  }
  return at;
}

int spine_wf_strand_calling(const spine_wf *wf) {
  for (int i = 0; i < wf->nstrands; i++)
    if (wf->strands[i] != wf->cur && wf->strands[i]->phase == SPINE_WF_PHASE_PROVIDER) return 1;
  return 0;
}

int spine_wf_strand_idle(const spine_wf *wf) {
  if (!wf->npar || wf->cur || wf->nevents || wf->op_inflight || wf->deferred) return 0;
  if (wf->phase != SPINE_WF_PHASE_PARALLEL || !wf->row_waiting) return 0;
  for (int i = 0; i < wf->nstrands; i++)
    if (wf->strands[i]->phase == SPINE_WF_PHASE_PROVIDER) return 0;
  return wf->row_wake == spine_wf_strand_earliest(wf);
}

static void row_synced(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_op_release(op);
  spine_wf_row_waits(wf);
  spine_wf_move(wf, SPINE_WF_PHASE_PARALLEL);
}

/* Nothing to run: its row must say waiting, with the earliest deadline of its strands as its
 * wake-up, so that a workflow released from memory (or whose worker died) is claimed again
 * in time and replays to the same waits. */
static void sync_row(spine_wf *wf) {
  int64_t at = spine_wf_strand_earliest(wf);
  if (wf->row_waiting && wf->row_wake == at) return;
  spine_op *op = spine_wf_op_fenced(wf);
  if (wf->eng->dry) return;
  spine_wf_add_wait(op, wf, "{\"kind\":\"parallel\"}", at);
  spine_wf_submit(wf, row_synced);
}

/* ---- the queue ---- */

/* Events run in one go for at most this long; the rest wait for the next loop iteration, so
 * that many busy branches (each resume with its own instruction budget) cost their workflow
 * time, not the worker's other workflows. */
#define SETTLE_MS 50

static void settle(spine_wf *wf) {
  int64_t start = spine_clock_real();
  int ran = 0;
  while (wf->npar && !wf->doomed && !spine_wf_stopped(wf) && !wf->op_inflight &&
         wf->phase != SPINE_WF_PHASE_RUNNING && wf->phase != SPINE_WF_PHASE_COMMITTING) {
    if (wf->cur) spine_wf_strand_save(wf);
    if (!wf->nevents) {
      sync_row(wf);
      return;
    }
    if (ran && !wf->eng->dry && spine_clock_real() - start > SETTLE_MS) { /* one at least */
      spine_sched_defer(wf->eng, wf);
      return;
    }
    struct spine_wf_event ev = wf->events[0];
    memmove(wf->events, wf->events + 1, (size_t)(wf->nevents - 1) * sizeof *wf->events);
    wf->nevents--;
    if (ev.gen != ev.s->gen) continue; /* the strand moved on since */
    spine_wf_strand_load(wf, ev.s);
    ran = 1;
    ev.fn(wf);
  }
}

void spine_wf_hold(spine_wf *wf) {
  wf->holds++;
}

void spine_wf_unhold(spine_wf *wf) {
  if (wf->holds == 1 && !wf->doomed && wf->npar) settle(wf);
  if (--wf->holds == 0 && wf->doomed) free(wf);
}
