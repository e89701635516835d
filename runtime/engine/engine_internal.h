/* Inside the engine: the struct its files share, and what each offers the others. Nobody
 * outside runtime/engine includes it; they see engine.h and an opaque spine_wf (workflow.h).
 *
 *   engine.c        the process: connecting, the worker's registration and heartbeats,
 *                   notifications, reconnecting, stopping
 *   scheduler.c     which workflows run here: claims of free work, wake-ups, starting a case,
 *                   eviction of idle ones
 *   passive.c       waiting workflows kept as compact records, replayed when they wake
 *   workflow.c      one workflow in memory: its phases, its row's ops (fence, checkpoint)
 *   workflow_run.c  its coroutine: the first resume, replay, every resume after, failure and
 *                   compensations
 *   workflow_end.c  how it leaves memory: ended, stuck, parked, lost, given up
 *   workflow_strand.c  its strands while a ctx.parallel runs: loaded one at a time, events
 *   clock.c         the clocks (real, virtual, manual) and the deadlines on them
 *   version.c       playbook versions: compiled once, loaded from the database for a claim
 *   replay.c        `spine replay`: a history against a playbook, without a database
 *   ctx*.c, steplog.c  the playbook API, which asks the workflow for each step (ctx_parallel.c:
 *                   ctx.parallel) */
#ifndef SPINE_ENGINE_INTERNAL_H
#define SPINE_ENGINE_INTERNAL_H

#include <lua.h>
#include <stdint.h>
#include <uv.h>

#include "engine.h"
#include "store.h"
#include "timers.h"
#include "version.h"
#include "workflow_internal.h"

#define MAX_CHANNELS 4

/* The passive workflows (passive.c): records by id, and the parked ones in the order they
 * parked, waiting for their turn to become passive. */
typedef struct spine_passive_set {
  struct spine_passive **slots;
  size_t cap, n;
  struct spine_passive_slab *room;  /* the slabs of records with room */
  struct spine_passive_op *pending; /* their ops in flight */
  spine_wf *idle_head, *idle_tail;
  uv_timer_t sweep;
} spine_passive_set;

struct spine_engine {
  uv_loop_t *loop;
  spine_store *store;
  const spine_provider_port *providers; /* &o.providers; NULL once stopping */
  lua_State *L;
  spine_engine_opts o;
  int64_t worker;
  int serving;
  int stopping;

  int64_t vnow;         /* the virtual or manual clock, ms since the epoch (clock.c) */
  spine_timers timers;  /* the deadlines of workflows in memory (clock.c) */
  uv_timer_t timer;     /* the nearest workflow deadline */
  uv_timer_t wake;      /* the nearest deadline of free workflows (claims) */
  uv_timer_t heartbeat; /* lease renewal and reaping of dead workers */
  uv_timer_t vtick;     /* virtual clock: fires the next deadline when idle */
  uv_timer_t reconnect; /* after the database connection was lost */
  /* Workflows whose branches' events ran long in one go: the rest run on the next loop
   * iteration, so that a workflow with many busy branches cannot hold the loop
   * (workflow_strand.c). Each is held (spine_wf_hold) until then. */
  uv_idle_t defer;
  spine_wf **deferred;
  int ndeferred, capdeferred;
  int64_t reconnect_ms; /* the next attempt's delay: doubles up to RECONNECT_MAX_MS */

  int ctx_ref;             /* the ctx object */
  int wfs_ref;             /* id -> lightuserdata wf */
  int runner_ref;          /* the compensation runner */
  spine_version *versions; /* version.c */

  int live;
  spine_passive_set pas;
  uint64_t steps;
  spine_engine_counts counts;
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
  /* The manual clock's advance under way (clock.c). */
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
  /* Signals scripted on the virtual clock (spine_engine_signal_at), each a deadline. */
  struct spine_engine_script *scripts;
  /* `spine replay`: no database; the run stops where the history ends or diverges. */
  int dry;
  spine_replay_report *report;
};

/* ---- engine.c ---- */

/* Pushes the ctx object (shared by all workflows; it reads the running one). */
void spine_engine_push_ctx(spine_engine *eng, lua_State *L);
/* The engine's PRNG (ctx.random records its draw). */
double spine_engine_random(spine_engine *eng);
/* Prepares the engine's Lua state: the workflow registry, ctx, the compensation runner. */
void spine_engine_lua_setup(spine_engine *eng);

/* ---- scheduler.c ---- */

/* Looks for free work to claim (claims mode), or again once the claim under way returns. */
void spine_sched_claim(spine_engine *eng);
/* Arms the wake-up for the nearest deadline among free workflows (claims mode). */
void spine_sched_refresh_wake(spine_engine *eng);
/* Releases the workflows that have waited idle longer than opts.evict_after_ms. */
void spine_sched_evict_idle(spine_engine *eng);
/* Makes a workflow of row `i` of a claim's or a load's answer (SPINE_WF_COLUMNS, epoch,
 * lost_runs, expired, params) and runs it: a replay of its steps, or a failure as a poison pill
 * when its workers were lost too often. */
void spine_sched_adopt(spine_engine *eng, const PGresult *r, int i);
/* Runs the rest of `wf`'s queued events on the next loop iteration (workflow_strand.c). */
void spine_sched_defer(spine_engine *eng, spine_wf *wf);
/* The engine stops: the workflows deferred are let go (released with the others). */
void spine_sched_drop_deferred(spine_engine *eng);

/* ---- passive.c ---- */

typedef enum {
  SPINE_PASSIVE_SIGNAL, /* a signal was stored for it */
  SPINE_PASSIVE_CANCEL,
  SPINE_PASSIVE_EXPIRY, /* its max_duration ran out */
  SPINE_PASSIVE_MOVED,  /* its claim moved on (an operator's repair): forgotten */
} spine_passive_event;

/* Workflows become passive here: not on a virtual or manual clock (time jumps there, and a
 * test's clock keeps every workflow in memory), not in `spine replay`, not when stopping. */
int spine_passive_enabled(const spine_engine *eng);
/* `wf` moved to a wait (TIMER, SIGNAL): it becomes passive once it waited passivate_after_ms,
 * if it still waits then; it moved on. */
void spine_passive_parked(spine_wf *wf);
void spine_passive_unparked(spine_wf *wf);
/* An event for workflow `id`: 1 if it is passive here (its row is loaded and replayed, and the
 * event told to it then; MOVED forgets it), else 0. */
int spine_passive_wake(spine_engine *eng, const char *id, spine_passive_event ev);
/* Releases the claims of passive workflows passive since before `idle_before` (real ms) and
 * not due before `due_before` (the engine's clock). */
void spine_passive_evict_idle(spine_engine *eng, int64_t idle_before, int64_t due_before);
/* Forgets every passive workflow (the store forgot their ops: a lost connection, the end). */
void spine_passive_forget_all(spine_engine *eng);
int spine_passive_count(const spine_engine *eng);

/* ---- clock.c ---- */

/* Real time, ms since the epoch. */
int64_t spine_clock_real(void);
/* Now, on the engine's clock (virtual, manual or real), ms since the epoch. */
int64_t spine_clock_now(spine_engine *eng);
/* The same for the provider adapters' breakers (a `now_ms(data)` with the engine as data). */
int64_t spine_clock_of(void *eng);
/* On a virtual clock, appends to `op` the statement that makes spine.now() its time for the
 * op's transaction, so that what the op writes carries virtual time; else nothing. */
void spine_clock_op(spine_engine *eng, spine_op *op);
/* Arms `t` (a workflow's) for `at` on the engine's clock; disarms it. */
void spine_clock_add(spine_engine *eng, spine_timer *t, int64_t at);
void spine_clock_remove(spine_engine *eng, spine_timer *t);
/* The store went idle: a virtual clock jumps to the next deadline, a manual one's advance
 * looks again. */
void spine_clock_store_idle(void *eng);
/* At start (blocking): where a manual clock starts; a real-clock worker clears a manual clock
 * left in the database. */
int spine_clock_setup(spine_engine *eng, spine_err *e);
/* Our own NOTIFY "k:<round>" came back (the manual clock's rounds). */
void spine_clock_marker(spine_engine *eng, const char *payload);
/* The manual clock (spine_engine_advance, spine_engine_now). */
int spine_clock_advance(spine_engine *eng, int64_t to_ms, spine_engine_clock_cb cb, void *data);
/* The engine stops: an advance under way ends with SPINE_ECANCELLED. */
void spine_clock_stop(spine_engine *eng);

#endif
