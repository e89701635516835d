/* Waiting workflows kept small (engine_internal.h). A workflow that has waited idle for
 * opts.passivate_after_ms, and will go on waiting at least that long, leaves its coroutine and
 * keeps here only its id, its claim's epoch and its deadline: a passive record of 144 bytes
 * instead of a coroutine and its workflow (~3.6 KB). Its row stays this worker's claim. What
 * would have woken it (its deadline; a signal, a cancel or an expiry notified for it) loads its
 * row again, fenced by that claim and without a commit, and replays it as a claim would; what
 * was heard while the row loaded is told to it once it runs again.
 *
 * Records sit in an open-addressing table by id (linear probing, deletion by backward shift),
 * not in the Lua registry: a Lua key would cost more than the record. Parked workflows wait for
 * their turn in a list in the order they were last looked at, swept by one uv timer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "engine_internal.h"
#include "log.h"
#include "sql.h"

/* How often a failed load of a passive workflow's row is tried again. */
#define RETRY_MS        1000
/* Workflows one sweep makes passive at most: the rest on the next loop iteration. */
#define SWEEP_MAX       1024
/* A replay costs in proportion to the steps it replays: a workflow waits passivate_after_ms
 * more before it becomes passive for every STEPS_PER_GRACE steps of its history, so that one
 * with a long history that wakes often is not replayed at every wake-up. */
#define STEPS_PER_GRACE 32

struct spine_passive {
  spine_timer timer; /* first: its deadline (unarmed: it waits for a notification only) */
  spine_engine *eng;
  int64_t epoch; /* the claim it keeps */
  int64_t since; /* when it became passive (real ms): evicted after opts.evict_after_ms */
  spine_op *op;  /* its row's load, or its release, in flight (a pending op's); else NULL */
  unsigned releasing : 1;
  unsigned dropped : 1;      /* left the table while its op was in flight: freed after it */
  unsigned heard_signal : 1; /* ... heard while the op was in flight */
  unsigned heard_cancel : 1; /*     (told to the workflow once it runs again) */
  unsigned heard_expiry : 1;
  char id[80]; /* the workflow's id (as spine_wf's) */
};

typedef struct spine_passive passive;

_Static_assert(sizeof((passive *)0)->id == sizeof((spine_wf *)0)->id, "a record holds any id");

/* ---- records in slabs ----
 *
 * Records come from aligned blocks of their own, not from malloc one by one: a record allocated
 * among the coroutines and workflows that left memory would keep each of their pages resident,
 * so that nothing went back to the system. A slab is found from a record by its address; one
 * that empties is freed unless it is the only one with room. */

#define SLAB_BYTES 65536

typedef struct spine_passive_slab {
  struct spine_passive_slab *prev, *next; /* in the list of slabs with room */
  passive *free;                          /* its free records, linked through their op field */
  int used;
  int fresh; /* records never handed out yet, from the end of the block */
} slab;

#define SLAB_RECORDS ((int)((SLAB_BYTES - sizeof(slab)) / sizeof(passive)))

static slab *slab_of(const passive *p) {
  return (slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
}

static void slab_unlink(spine_passive_set *t, slab *b) {
  if (b->prev)
    b->prev->next = b->next;
  else
    t->room = b->next;
  if (b->next) b->next->prev = b->prev;
  b->prev = b->next = NULL;
}

static void slab_link(spine_passive_set *t, slab *b) {
  b->prev = NULL;
  b->next = t->room;
  if (t->room) t->room->prev = b;
  t->room = b;
}

static passive *record_new(spine_passive_set *t) {
  slab *b = t->room;
  if (!b) {
    if (!(b = aligned_alloc(SLAB_BYTES, SLAB_BYTES))) return NULL;
    memset(b, 0, sizeof *b);
    b->fresh = SLAB_RECORDS;
    slab_link(t, b);
  }
  passive *p;
  if (b->free) {
    p = b->free;
    b->free = (passive *)p->op;
  } else {
    p = (passive *)(b + 1) + --b->fresh;
  }
  if (++b->used == SLAB_RECORDS) slab_unlink(t, b);
  memset(p, 0, sizeof *p);
  return p;
}

static void record_free(spine_passive_set *t, passive *p) {
  slab *b = slab_of(p);
  if (b->used == SLAB_RECORDS) slab_link(t, b); /* it has room again */
  p->op = (spine_op *)b->free;
  b->free = p;
  if (--b->used == 0 && (b->prev || b->next)) {
    slab_unlink(t, b);
    free(b);
  }
}

/* ---- the table ---- */

static size_t hash(const char *s) {
  size_t h = 14695981039346656037u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

/* The slot holding `id`, or the empty slot where it would go. */
static size_t slot_of(const spine_passive_set *t, const char *id) {
  size_t mask = t->cap - 1, i = hash(id) & mask;
  while (t->slots[i] && strcmp(t->slots[i]->id, id))
    i = (i + 1) & mask;
  return i;
}

static passive *find(const spine_passive_set *t, const char *id) {
  return t->slots[slot_of(t, id)];
}

/* Moves every record to a table of `cap` slots. */
static void resize(spine_passive_set *t, size_t cap) {
  passive **old = t->slots;
  size_t oldcap = t->cap;
  t->slots = calloc(cap, sizeof *t->slots);
  if (!t->slots) abort();
  t->cap = cap;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i]) t->slots[slot_of(t, old[i]->id)] = old[i];
  free(old);
}

static void put(spine_passive_set *t, passive *p) {
  if (2 * (t->n + 1) > t->cap) resize(t, t->cap ? 2 * t->cap : 64); /* at most half full */
  t->slots[slot_of(t, p->id)] = p;
  t->n++;
}

static void take(spine_passive_set *t, const passive *p) {
  size_t mask = t->cap - 1, i = slot_of(t, p->id);
  if (t->slots[i] != p) return;
  t->slots[i] = NULL;
  t->n--;
  /* Backward shift: move up each later entry of the run whose home is not between. */
  for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
    size_t home = hash(t->slots[j]->id) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      t->slots[i] = t->slots[j];
      t->slots[j] = NULL;
      i = j;
    }
  }
  if (t->cap > 64 && 8 * t->n < t->cap) resize(t, t->cap / 4); /* after a peak has passed */
}

/* An op of a passive workflow in flight: listed, so that the engine's end finds it (the store
 * drops ops without calling them back when it closes or loses its connections). */
typedef struct spine_passive_op {
  spine_op op; /* first */
  passive *p;
  struct spine_passive_op *prev, *next;
} pending;

static pending *pending_new(spine_passive_set *t, passive *p) {
  pending *po = malloc(sizeof *po);
  if (!po) return NULL;
  spine_op_init(&po->op);
  po->op.data = po;
  po->p = p;
  po->prev = NULL;
  po->next = t->pending;
  if (t->pending) t->pending->prev = po;
  t->pending = po;
  p->op = &po->op;
  return po;
}

static void pending_free(spine_passive_set *t, pending *po) {
  if (po->prev)
    po->prev->next = po->next;
  else
    t->pending = po->next;
  if (po->next) po->next->prev = po->prev;
  spine_op_free(&po->op);
  free(po);
}

/* Leaves the table; freed now, or once its op in flight has answered. */
static void drop(spine_engine *eng, passive *p) {
  spine_clock_remove(eng, &p->timer);
  take(&eng->pas, p);
  if (p->op)
    p->dropped = 1;
  else
    record_free(&eng->pas, p);
}

/* ---- parking and passivating ---- */

int spine_passive_enabled(const spine_engine *eng) {
  return eng->o.passivate_after_ms > 0 && !eng->dry && !eng->o.virtual_clock &&
         !eng->o.manual_clock && !eng->stopping;
}

static void unlink_idle(spine_engine *eng, spine_wf *wf) {
  if (wf->idle_prev)
    wf->idle_prev->idle_next = wf->idle_next;
  else
    eng->pas.idle_head = wf->idle_next;
  if (wf->idle_next)
    wf->idle_next->idle_prev = wf->idle_prev;
  else
    eng->pas.idle_tail = wf->idle_prev;
  wf->idle_prev = wf->idle_next = NULL;
  wf->idle_linked = 0;
}

static void on_sweep(uv_timer_t *t);

static void arm_sweep(spine_engine *eng) {
  spine_wf *first = eng->pas.idle_head;
  if (!first || eng->stopping) return;
  int64_t delay = first->looked_at + eng->o.passivate_after_ms - spine_clock_real();
  uv_timer_start(&eng->pas.sweep, on_sweep, delay > 0 ? (uint64_t)delay : 0, 0);
}

/* Appends `wf` to the parked ones, looked at again passivate_after_ms after `at`. */
static void link_idle(spine_engine *eng, spine_wf *wf, int64_t at) {
  wf->looked_at = at;
  wf->idle_prev = eng->pas.idle_tail;
  wf->idle_next = NULL;
  if (eng->pas.idle_tail)
    eng->pas.idle_tail->idle_next = wf;
  else
    eng->pas.idle_head = wf;
  eng->pas.idle_tail = wf;
  wf->idle_linked = 1;
}

void spine_passive_parked(spine_wf *wf) {
  spine_engine *eng = wf->eng;
  if (wf->idle_linked || !spine_passive_enabled(eng)) return;
  wf->parked_at = spine_clock_real();
  link_idle(eng, wf, wf->parked_at);
  if (eng->pas.idle_head == wf) arm_sweep(eng);
}

/* How long `wf` waits before it becomes passive (see STEPS_PER_GRACE). */
static int64_t grace(const spine_wf *wf) {
  return wf->eng->o.passivate_after_ms * (1 + (wf->seq - 1) / STEPS_PER_GRACE);
}

void spine_passive_unparked(spine_wf *wf) {
  if (wf->idle_linked) unlink_idle(wf->eng, wf);
}

/* Whether `wf` may leave its coroutine now: its main body waits (no parallel, no compensation,
 * nothing in flight, queued or unwritten) for a signal, or for a deadline at least its grace
 * away. */
static int passivable(const spine_wf *wf, int64_t now) {
  if (wf->op_inflight || wf->compensating || wf->npar || wf->holds || wf->deferred || wf->dirty ||
      wf->unsaved_input || wf->pending || wf->call.provider || wf->call.signal_pending ||
      wf->call.timer_fired || wf->cancel_requested)
    return 0;
  int armed = spine_timer_armed(&wf->timer);
  if (wf->phase == SPINE_WF_PHASE_TIMER && !armed) return 0;
  if (wf->phase != SPINE_WF_PHASE_TIMER && wf->phase != SPINE_WF_PHASE_SIGNAL) return 0;
  return !armed || wf->timer.at >= now + grace(wf);
}

static void passive_due(spine_timer *t);

static void passivate(spine_wf *wf) {
  spine_engine *eng = wf->eng;
  passive *p = record_new(&eng->pas);
  if (!p) return; /* it stays as it is */
  memcpy(p->id, wf->id, sizeof p->id);
  spine_timer_init(&p->timer, passive_due);
  p->eng = eng;
  p->epoch = wf->epoch;
  p->since = spine_clock_real();
  int64_t at = spine_timer_armed(&wf->timer) ? wf->timer.at : 0;
  spine_wf_free(wf);
  put(&eng->pas, p);
  if (at) spine_clock_add(eng, &p->timer, at);
  eng->counts.passivated++;
}

static void on_sweep(uv_timer_t *t) {
  spine_engine *eng = t->data;
  int64_t real = spine_clock_real(), now = spine_clock_now(eng);
  spine_wf *wf;
  for (int n = 0; n < SWEEP_MAX && (wf = eng->pas.idle_head) &&
                  wf->looked_at + eng->o.passivate_after_ms <= real;
       n++) {
    unlink_idle(eng, wf); /* one that may not go now parks again when it next waits */
    if (!passivable(wf, now)) continue;
    if (wf->parked_at + grace(wf) <= real)
      passivate(wf);
    else
      link_idle(eng, wf, real); /* a long history: looked at again later */
  }
  arm_sweep(eng); /* at once if more are due */
}

/* ---- waking: its row is loaded again and replayed ---- */

/* What was heard while its row loaded, told to the workflow now that it runs again. */
static void tell(spine_engine *eng, const char *id, unsigned signal, unsigned cancel,
                 unsigned expiry) {
  spine_wf *wf = spine_wf_find(eng, id);
  if (!wf) return;
  if (expiry)
    spine_wf_expire(wf);
  else if (cancel)
    spine_wf_cancel(wf);
  if (signal && spine_wf_find(eng, id) == wf) spine_ctx_signal_arrived(wf);
}

static void arm_retry(spine_engine *eng, passive *p) {
  spine_clock_add(eng, &p->timer, spine_clock_now(eng) + RETRY_MS);
}

static void loaded(spine_op *op) {
  pending *po = op->data;
  passive *p = po->p;
  spine_engine *eng = p->eng;
  const PGresult *r = NULL;
  int row = op->status ? -1 : spine_op_row(op, 0, &r); /* merged with other loads, or alone */
  int n = op->status ? -1 : row >= 0;
  p->op = NULL;
  if (p->dropped) {
    record_free(&eng->pas, p);
  } else if (n < 0) { /* kept: tried again in a while */
    spine_log_error("scheduler", "cannot load a passive workflow", "workflow", p->id, "error",
                    spine_op_error(op)->msg, NULL);
    arm_retry(eng, p);
  } else {
    unsigned signal = p->heard_signal, cancel = p->heard_cancel, expiry = p->heard_expiry;
    char id[sizeof p->id];
    memcpy(id, p->id, sizeof id);
    drop(eng, p);
    if (n == 1) {
      eng->counts.activated++;
      spine_sched_adopt(eng, r, row);
      tell(eng, id, signal, cancel, expiry);
    } else {
      /* Its claim moved on (an operator's repair, a reaping after a lost lease): free now, or
       * another worker's; a claim finds out. */
      spine_log_warn("scheduler", "workflow's claim is no longer this worker's; dropped here",
                     "workflow", id, "why", "passive: its row has another claim", NULL);
      spine_sched_claim(eng);
    }
  }
  pending_free(&eng->pas, po);
}

static void load(spine_engine *eng, passive *p) {
  if (p->op) return; /* loading (or being released) already */
  spine_clock_remove(eng, &p->timer);
  pending *po = pending_new(&eng->pas, p);
  if (!po) {
    arm_retry(eng, p);
    return;
  }
  po->op.cb = loaded;
  spine_op_stmt(&po->op, SPINE_SQL_WF_LOAD, 1);
  spine_op_param(&po->op, p->id);
  spine_op_param_int(&po->op, eng->worker);
  spine_op_param_int(&po->op, p->epoch);
  spine_store_submit(eng->store, &po->op);
}

static void passive_due(spine_timer *t) {
  passive *p = (passive *)t;
  load(p->eng, p);
}

int spine_passive_wake(spine_engine *eng, const char *id, spine_passive_event ev) {
  passive *p = eng->pas.cap ? find(&eng->pas, id) : NULL;
  if (!p) return 0;
  switch (ev) {
    case SPINE_PASSIVE_MOVED:
      drop(eng, p);
      return 1;
    case SPINE_PASSIVE_SIGNAL:
      p->heard_signal = 1;
      break;
    case SPINE_PASSIVE_CANCEL:
      p->heard_cancel = 1;
      break;
    case SPINE_PASSIVE_EXPIRY:
      p->heard_expiry = 1;
      break;
  }
  if (!p->releasing) load(eng, p); /* else: claimed back once released */
  return 1;
}

/* ---- leaving memory altogether ---- */

static void released(spine_op *op) {
  pending *po = op->data;
  passive *p = po->p;
  spine_engine *eng = p->eng;
  int again = p->heard_signal || p->heard_cancel || p->heard_expiry;
  if (op->status && op->status != SPINE_ELOST)
    spine_log_error("scheduler", "cannot release a passive workflow", "workflow", p->id, "error",
                    spine_op_error(op)->msg, NULL);
  p->op = NULL;
  if (p->dropped)
    record_free(&eng->pas, p);
  else
    drop(eng, p);
  pending_free(&eng->pas, po);
  if (again) spine_sched_claim(eng); /* heard of while releasing: claim it back */
  spine_sched_refresh_wake(eng);
}

void spine_passive_evict_idle(spine_engine *eng, int64_t idle_before, int64_t due_before) {
  for (size_t i = 0; i < eng->pas.cap; i++) {
    passive *p = eng->pas.slots[i];
    if (!p || p->op || p->since > idle_before) continue;
    if (spine_timer_armed(&p->timer) && p->timer.at < due_before) continue;
    pending *po = pending_new(&eng->pas, p);
    if (!po) return;
    spine_clock_remove(eng, &p->timer);
    p->releasing = 1;
    po->op.cb = released;
    spine_op_stmt(&po->op, SPINE_SQL_WF_RELEASE, 0);
    spine_op_param(&po->op, p->id);
    spine_op_param_int(&po->op, eng->worker);
    spine_op_param_int(&po->op, p->epoch);
    spine_op_param_int(&po->op, 0);
    spine_store_submit(eng->store, &po->op);
  }
}

void spine_passive_forget_all(spine_engine *eng) {
  spine_passive_set *t = &eng->pas;
  while (t->idle_head)
    unlink_idle(eng, t->idle_head);
  while (t->pending) { /* the store forgot their ops */
    pending *po = t->pending;
    po->p->op = NULL;
    if (po->p->dropped) record_free(t, po->p);
    pending_free(t, po);
  }
  for (size_t i = 0; i < t->cap; i++)
    if (t->slots[i]) {
      spine_clock_remove(eng, &t->slots[i]->timer);
      record_free(t, t->slots[i]);
    }
  free(t->slots);
  t->slots = NULL;
  t->cap = t->n = 0;
  while (t->room) { /* each is empty now */
    slab *b = t->room;
    slab_unlink(t, b);
    free(b);
  }
}

int spine_passive_count(const spine_engine *eng) {
  return (int)eng->pas.n;
}
