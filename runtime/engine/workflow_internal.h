/* A workflow in memory: one run of one playbook version, its coroutine and what it waits for,
 * and what may be asked of it: the workflow module (workflow.c, workflow_run.c,
 * workflow_end.c) is the only one that resumes it, moves it between phases, commits its ops
 * and ends it. ctx asks it for each step (spine_wf_next_step, spine_wf_op_begin,
 * spine_wf_submit ...); the scheduler creates workflows, hands them claims and evicts them.
 * Outside runtime/engine a spine_wf is opaque (workflow.h). Freed after its end is committed,
 * or when it is evicted or lost. */
#ifndef SPINE_WORKFLOW_INTERNAL_H
#define SPINE_WORKFLOW_INTERNAL_H

#include <lua.h>
#include <stdint.h>

#include "err.h"
#include "provider_port.h"
#include "router_port.h"
#include "sandbox.h"
#include "store.h"
#include "timers.h"
#include "workflow.h"

typedef struct spine_ctx_provider spine_ctx_provider;
typedef struct spine_strand spine_strand;
typedef struct spine_par spine_par;

/* A workflow's row data between its insert or claim and its first resume (owned). */
typedef struct spine_wf_pending {
  char *input;
  char *log;
  char *attrs;
} spine_wf_pending;

/* Where a workflow in memory is in its life on this worker (its row's status is what the
 * database says; this is what the engine does with it now). Moves only by spine_wf_move(), which
 * refuses the impossible ones (workflow.c has the table):
 *
 *   LOADING ──> RUNNING ⇄ COMMITTING ⇄ TIMER | SIGNAL | PROVIDER
 *                  │           │            │
 *                  └───────────┴────────────┴──> ENDING | RELEASING | DROPPED  (then freed)
 */
typedef enum {
  SPINE_WF_PHASE_LOADING,    /* its row is being inserted, or its playbook version loaded */
  SPINE_WF_PHASE_RUNNING,    /* its coroutine runs: inside a resume, the only place ctx works */
  SPINE_WF_PHASE_COMMITTING, /* a step's checkpoint (wf->op) is being committed */
  SPINE_WF_PHASE_TIMER,      /* waits for a timer: a sleep or a retry backoff */
  SPINE_WF_PHASE_SIGNAL,     /* waits for a signal (ctx.wait, a child's end), maybe a deadline */
  SPINE_WF_PHASE_PROVIDER,   /* a provider call is in flight (ctx.provider) */
  SPINE_WF_PHASE_PARALLEL,   /* waits for the branches of a ctx.parallel (workflow_strand.c):
                                no strand runs or commits now */
  SPINE_WF_PHASE_ENDING,     /* its end (completed, failed, stuck ...) is being committed */
  SPINE_WF_PHASE_RELEASING,  /* its claim is being handed back (evicted, given up) */
  SPINE_WF_PHASE_DROPPED,    /* no longer this worker's (a lost claim, a replay's end) */
} spine_wf_phase;

/* Slots of the anchor table, the one registry ref of a workflow: what Lua values it keeps. */
enum {
  SPINE_ANCHOR_CO = 1,    /* the coroutine running now (main body, then compensations) */
  SPINE_ANCHOR_LOG = 2,   /* recorded steps to replay (array of tables), nil when live */
  SPINE_ANCHOR_COMPS = 3, /* compensations registered by ctx.compensate, in order */
  SPINE_ANCHOR_ATTRS = 4, /* ctx.set attributes */
  SPINE_ANCHOR_ERROR = 5, /* the failure being compensated */
};

typedef void (*spine_wf_timer_fn)(spine_wf *wf);

/* ctx's own: what the ctx call that yielded keeps until its continuation runs (one call at a
 * time a strand). The workflow module reads only kstate (a resume with an error sets
 * SPINE_CTX_RAISE), signal_pending (eviction) and provider (freed with the workflow). */
typedef struct spine_wf_call {
  int kstate;                   /* continuation state of the call that yielded */
  int wait_seq;                 /* the step that waits */
  int64_t wake_ms;              /* the deadline of the wait or backoff it is in */
  char signal[128];             /* the signal name it waits for */
  const char *match;            /* the payload it must hold, JSON, or NULL for any: borrowed
                                   from the waiting ctx.wait's stack, which keeps it */
  spine_ctx_provider *provider; /* the provider step in progress (ctx_provider.c), or NULL */
  spine_par *par;               /* the ctx.parallel it waits for (ctx_parallel.c), or NULL */
  unsigned in_step : 1;         /* inside ctx.step's function: no ctx calls */
  unsigned signal_pending : 1;  /* a signal arrived while an op was in flight */
  unsigned timer_fired : 1;     /* the deadline passed while an op was in flight */
} spine_wf_call;

/* A strand of a workflow: the main body, a branch of a ctx.parallel, or the undo of one (its
 * compensations). One strand at a time is loaded into its workflow (wf->co, wf->call,
 * wf->path, wf->lseq, wf->nlog and wf->phase are the loaded strand's), and only while nothing
 * else runs or commits: every other strand waits in its record, its events queued
 * (workflow_strand.c). */
struct spine_strand {
  spine_wf *wf;
  spine_par *par; /* the parallel it is a branch or the undo of; NULL: the main body */
  char *path;     /* owned: "3.a", "3.a/2.x", an undo's "3!"; NULL: the main body */
  char *key;      /* owned: its key among the branches ("a", "2"), NULL for the others */
  int index;      /* its place among the branches, in key order; -1: the undo */
  int ref;        /* registry ref of its coroutine (the main body's is in the anchor) */
  int comps_ref;  /* its ctx.compensate functions, a table (LUA_NOREF: the main body's) */
  lua_State *co;
  int lseq, nlog;
  spine_wf_phase phase; /* where it is while another strand is loaded */
  spine_wf_call call;
  spine_timer timer; /* its deadline (a sleep, a wait's timeout, a backoff) */
  spine_wf_timer_fn on_timer;
  unsigned gen;         /* bumped at each resume: an event queued before is stale */
  unsigned started : 1; /* resumed once */
  unsigned ended : 1;   /* returned or raised */
  unsigned failed : 1;  /* ... raised */
  unsigned cancelled : 1;
  unsigned undo : 1; /* it runs compensations: a cancellation does not stop it */
};

/* A ctx.parallel under way (ctx_parallel.c): its branches, its step in the parent strand, its
 * deadline, and what it decided. */
struct spine_par {
  spine_strand *parent; /* the strand that called it (wf->main for the main body) */
  spine_strand **br;    /* its branches, in key order */
  spine_strand *undo;   /* its compensations running, or NULL */
  int n, nstarted, nended;
  int seq;        /* its step, the parent's */
  int mode;       /* ctx_parallel.c's */
  int depth;      /* 1 in the main body, one more a level of nesting */
  int values_ref; /* a table: each branch's result or error, by index (from 1) */
  int winner;     /* the branch whose result it returns (any, race), -1 */
  int64_t deadline;
  spine_timer timer;     /* its timeout */
  char *prefix;          /* owned: its branches' paths start with it ("3.", "3.a/2.") */
  unsigned list : 1;     /* its keys are 1..n */
  unsigned decided : 1;  /* its outcome is known: the branches left are cancelled */
  unsigned recorded : 1; /* ... by the history: its branches replay up to where they were */
  unsigned ok : 1;       /* the outcome: returns (else raises the error in values[0]) */
  unsigned finishing : 1;
};

struct spine_wf {
  spine_limits limits; /* first: a coroutine's extra space points here (see sandbox.h) */
  spine_engine *eng;
  spine_version *version; /* borrowed from the engine's cache */
  char id[80];
  char trace_id[33];
  char *process;   /* owned */
  char *parent_id; /* owned, NULL for a top-level workflow */
  char *variant;   /* owned: the dispatcher's choice, NULL without a manifest */
  char *experiment;
  char *params; /* owned: the variant's parameters (JSON object text), NULL: none */
  /* owned: started here (spine_engine_start) and running before its row exists: its first op
   * inserts the row with this input instead of fencing, so that a start costs no commit of
   * its own; NULL once that op committed (or for any other workflow) */
  char *unsaved_input;
  int parent_seq;
  int64_t epoch; /* the claim's fencing token: every op checks owner and epoch (spine.fence) */
  char *state;   /* owned business state, NULL if never set */
  char *outcome; /* owned ctx.outcome named in this run, NULL if none (a replay names none) */
  int attempt;
  spine_wf_status status;

  lua_State *co; /* the running coroutine, kept alive by the anchor table */
  int anchor;    /* registry ref; LUA_NOREF once released */
  int seq;       /* the next new step's number in the workflow (from 1): its key, in commit order */
  /* The running strand (the main body, or a branch of ctx.parallel): a step is matched on
   * replay by its strand's path and its number there, whatever the order of commits. */
  const char *path; /* NULL: the main body */
  int lseq;         /* the strand's next step number (from 1) */
  int nlog;         /* the strand's recorded steps: lseq <= nlog replays */
  int nrecorded;    /* steps in the history it began with; replayed: matched so far */
  int replayed;
  int last_seq; /* the step asked for last (its seq; on a mismatch, its number in the strand) */

  spine_wf_phase phase; /* see spine_wf_move() */
  spine_timer timer;    /* armed while it waits for a deadline (spine_wf_timer) */
  spine_wf_timer_fn on_timer;
  int64_t active_at; /* when it last ran (ms): idle waiting workflows are evicted */
  /* Parked (a wait began): in the engine's list of workflows that may become passive once
   * they waited long enough (passive.c), in the order they were last looked at. */
  int64_t parked_at, looked_at;
  spine_wf *idle_prev, *idle_next;

  spine_op op;       /* the one operation in flight; reused for every step */
  spine_op_cb op_cb; /* what runs once wf->op has committed (or failed) */

  unsigned op_inflight : 1;      /* the store holds wf->op (set and cleared by spine_wf_submit) */
  unsigned row_waiting : 1;      /* its row says waiting although it runs again */
  unsigned dirty : 1;            /* state or attributes changed since last written */
  unsigned compensating : 1;     /* its compensations run (after a failure or a cancel) */
  unsigned cancel_requested : 1; /* an operator cancelled it (spine_wf_cancel) */
  unsigned expired : 1;          /* ... or its max_duration ran out: it ends failed */
  unsigned cancel_pending : 1;   /* cancelled while an op was in flight: a wait its callback
                                    begins is stopped (spine_wf_cancel_pending) */

  spine_wf_call call; /* ctx's own: the loaded strand's call (see spine_wf_call) */

  /* ctx.parallel (workflow_strand.c): the loaded strand (NULL with no parallel under way), the
   * main body's record while one is, the strands in creation order, the queue of their events
   * (a timer fired, a signal to offer, a start, a cancellation) run one at a time while nothing
   * runs or commits. */
  spine_strand *cur, *main;
  spine_strand **strands;
  int nstrands, capstrands;
  int npar; /* parallels under way */
  struct spine_wf_event {
    spine_strand *s;
    spine_wf_timer_fn fn;
    unsigned gen;
  } * events;
  int nevents, capevents;
  int64_t row_wake; /* the wake-up its row was last given (spine_wf_add_wait) */
  int holds;        /* entry points under way (spine_wf_hold): its free waits for them */
  unsigned doomed : 1;
  unsigned deferred : 1;    /* its events go on at the next loop iteration (scheduler.c) */
  unsigned idle_linked : 1; /* in the list of parked workflows (passive.c) */

  char *end_result, *end_error; /* the outcome being committed (owned) */
  spine_wf_pending *pending;    /* the row's input, log and attributes until it begins */
  spine_wf *next_free;          /* the list of workflows waiting for their version */
};

/* Text of a phase ("committing"). */
const char *spine_wf_phase_name(spine_wf_phase p);
/* Moves `wf` to phase `to`. An impossible move is an engine bug: it is logged with both phases
 * and the process aborts (crash-only: the database says where every workflow is, and a workflow
 * that keeps causing it is failed as a poison pill). */
void spine_wf_move(spine_wf *wf, spine_wf_phase to);
/* Its end is being written, its claim handed back, or it is no longer ours: nothing it asks
 * for may happen any more. */
int spine_wf_stopped(const spine_wf *wf);

/* ---- in memory (workflow.c) ---- */

/* A workflow in memory, registered under its id, in phase LOADING; NULL without memory. */
spine_wf *spine_wf_new(spine_engine *eng, const char *id, spine_version *v, const char *process,
                       const char *trace_id, const char *parent_id, int parent_seq);
void spine_wf_free(spine_wf *wf);
/* The workflow in memory with `id`, or NULL. */
spine_wf *spine_wf_find(spine_engine *eng, const char *id);
/* Every workflow in memory, *n of them, in an array the caller frees: a snapshot, so that the
 * caller may free workflows as it goes. */
spine_wf **spine_wf_all(spine_engine *eng, int *n);
/* Keeps the row's data (owned, may be NULL) until it begins; drops what it kept. */
spine_wf_pending *spine_wf_set_pending(spine_wf *wf, char *input, char *log, char *attrs);
void spine_wf_drop_pending(spine_wf *wf);

/* ---- its ops (workflow.c): one in flight at a time, in wf->op ---- */

/* Starts wf->op with the fence only (this worker's claim, checked in the op's transaction):
 * the row stays as it is. */
spine_op *spine_wf_op_fenced(spine_wf *wf);
/* Starts wf->op: the fence, then the row updates the workflow owes (state and attributes,
 * running again). */
spine_op *spine_wf_op_begin(spine_wf *wf);
/* Submits wf->op with `cb`; the workflow waits in COMMITTING. */
void spine_wf_submit(spine_wf *wf, spine_op_cb cb);
/* In an op's callback: the workflow if the op committed; else NULL, with the failure handled
 * (spine_wf_checkpoint_failed). */
spine_wf *spine_wf_committed(spine_op *op);
/* Adds to `op` the statement that inserts a workflow row owned by this worker (and its
 * playbook version if not yet stored), with what the dispatcher chose when `route` is not
 * NULL. */
void spine_wf_add_insert(spine_engine *eng, spine_op *op, const char *id, spine_version *v,
                         const char *process, const char *input, const char *trace,
                         const char *parent, int parent_seq, const spine_child_route *route);
/* Adds to `op` the update that marks its row waiting (for `waiting_for`, JSON) until
 * `wake_ms` (0: no deadline). */
void spine_wf_add_wait(spine_op *op, spine_wf *wf, const char *waiting_for, int64_t wake_ms);
/* Counts a committed step (bench figures). */
void spine_wf_count_step(spine_wf *wf);
/* A fresh instruction budget for the running workflow. */
void spine_wf_refill(spine_wf *wf);

/* ---- its steps, timer and clock (workflow.c) ---- */

/* The next step, of `kind` and `name`: its number in *seq, then 0 when it is not recorded (run
 * it live), 1 with its recorded entry pushed (replay it), or -1 when the history has another
 * step there: the workflow goes stuck (non-determinism) and an error table is pushed for the
 * caller to raise. */
int spine_wf_next_step(spine_wf *wf, lua_State *L, const char *kind, const char *name, int *seq);
/* The op that recorded its wait committed: its row says waiting, it holds no buffers, and it
 * waits in TIMER until `wake_ms`, when `fn` runs. */
void spine_wf_sleep(spine_wf *wf, int64_t wake_ms, spine_wf_timer_fn fn);
/* Its row says waiting now (the op that began a wait committed); it runs again at the next
 * step, whose op writes it running. */
void spine_wf_row_waits(spine_wf *wf);
/* Takes the strand's next step number without the step log (a ctx.patched branch the history
 * recorded). */
void spine_wf_take_step(spine_wf *wf);
/* Its business state (ctx.state) and attributes (ctx.set) changed: the next op writes them. */
void spine_wf_set_state(spine_wf *wf, const char *state);
void spine_wf_attrs_changed(spine_wf *wf);
/* Its business outcome (ctx.outcome) is `outcome` (copied): the next op writes it. */
void spine_wf_set_outcome(spine_wf *wf, const char *outcome);
/* Arms its timer for `wake_ms`; `fn` runs when it fires. Replaces an armed one. */
void spine_wf_timer(spine_wf *wf, int64_t wake_ms, spine_wf_timer_fn fn);
void spine_wf_timer_cancel(spine_wf *wf);
/* Now on the engine's clock; a draw of the engine's PRNG; the provider port (NULL once the
 * engine stops, or in a replay without a database); this worker's id. */
int64_t spine_wf_now(const spine_wf *wf);
double spine_wf_random(spine_wf *wf);
const spine_provider_port *spine_wf_providers(const spine_wf *wf);
/* The dispatcher's routing port (its impl NULL when there is none). */
const spine_router_port *spine_wf_router(const spine_wf *wf);
int64_t spine_wf_worker(const spine_wf *wf);

/* ---- its coroutine (workflow_run.c) ---- */

/* Creates the coroutine and runs the playbook from the top; with a log, replays it first. */
void spine_wf_begin(spine_wf *wf, const char *input_json, const char *log_json,
                    const char *attrs_json);
/* Begins with the pending row data, then drops it. */
void spine_wf_start_pending(spine_wf *wf);
/* Resumes the coroutine with the one value on top of its stack; `error` raises it there. */
void spine_wf_resume(spine_wf *wf, int error);
/* Starts, in memory, a workflow whose row the caller's op has just committed (ctx.child),
 * with the variant, experiment and parameters the dispatcher gave it (each may be NULL). */
int spine_wf_adopt(spine_engine *eng, const char *id, spine_version *v, const char *process,
                   const char *input_json, const char *trace_id, const char *parent_id,
                   int parent_seq, const char *variant, const char *experiment, const char *params,
                   spine_err *e);

/* An operator cancelled it: a waiting workflow stops at once (the call it waits in raises the
 * cancellation), a running one at its next ctx call; then its compensations run and it ends
 * cancelled. */
void spine_wf_cancel(spine_wf *wf);
/* Its process's max_duration ran out (spine.expire_workflows): cancelled, it ends failed. */
void spine_wf_expire(spine_wf *wf);
/* A cancel came while an op was in flight: if the workflow waits now (its op's callback began
 * a wait instead of resuming it), it stops waiting as spine_wf_cancel would have. */
void spine_wf_cancel_pending(spine_wf *wf);
/* Pushes on L the error a cancelled call raises: cancelled, or max_duration when it expired. */
void spine_wf_push_stop(const spine_wf *wf, lua_State *L);
/* Runs the loaded strand, a branch or an undo, from its start (its function and arguments
 * on its coroutine, `nargs` of them). */
void spine_wf_start_strand(spine_wf *wf, int nargs);

/* ---- strands: ctx.parallel's branches (workflow_strand.c) ---- */

/* An entry point into the workflow begins (a commit, a timer, a signal, a cancel) and ends: at
 * the end of the outermost, the queued events of its strands run, and a workflow freed
 * meanwhile is released. */
void spine_wf_hold(spine_wf *wf);
void spine_wf_unhold(spine_wf *wf);
/* A new strand (a branch or an undo of `par`; the main body's record when par is NULL), with
 * its coroutine `ref`; registered in creation order. NULL without memory. */
spine_strand *spine_wf_strand_new(spine_wf *wf, spine_par *par, const char *path, const char *key,
                                  int index, int ref);
/* Frees a strand (not loaded): its coroutine, compensations, timer and queued events. */
void spine_wf_strand_free(spine_wf *wf, spine_strand *s);
/* Queues `fn` to run with strand `s` loaded, once nothing runs or commits. */
void spine_wf_strand_post(spine_wf *wf, spine_strand *s, spine_wf_timer_fn fn);
/* Drops the events queued for `s` and disarms its timer (it is cancelled). */
void spine_wf_strand_quiet(spine_wf *wf, spine_strand *s);
/* Unloads the loaded strand into its record: the workflow waits in PARALLEL. */
void spine_wf_strand_save(spine_wf *wf);
/* Loads strand `s` (nothing loaded). */
void spine_wf_strand_load(spine_wf *wf, spine_strand *s);
/* The loaded strand is a branch or an undo of a parallel (not the main body). */
int spine_wf_in_branch(const spine_wf *wf);
/* Offers a signal to each strand waiting for one, in the order of their paths (the loaded one
 * first, as spine_ctx_signal_arrived would); `fn` delivers it to the loaded strand. */
void spine_wf_strand_offer(spine_wf *wf, spine_wf_timer_fn fn);
/* Pushes the table the loaded strand's ctx.compensate adds to. */
void spine_wf_push_comps(spine_wf *wf, lua_State *L);
/* The earliest deadline of its strands and parallels (0: none), and whether it may be
 * released from memory now (idle, its row waiting until that deadline). */
int64_t spine_wf_strand_earliest(const spine_wf *wf);
int spine_wf_strand_idle(const spine_wf *wf);
/* One of its branches waits for a provider call (the manual clock is not idle). */
int spine_wf_strand_calling(const spine_wf *wf);

/* ---- how it leaves memory (workflow_end.c) ---- */

/* Commits its end with `status`, result and error (JSON, may be NULL); the end callback hears
 * of it once committed, then it is freed. */
void spine_wf_end(spine_wf *wf, spine_wf_status status, const char *result, const char *error);
/* A fault it cannot go on from: it ends stuck with this error. */
void spine_wf_stuck(spine_wf *wf, const char *code, const char *message);
/* It left this worker without ending (its op released the row: paused for an operator): the
 * end callback hears of it with `status`, then it leaves memory. */
void spine_wf_parked(spine_wf *wf, spine_wf_status status);
/* Its claim is no longer this worker's (the fence said so): dropped from memory, writing
 * nothing; its new owner, or the next claim, runs it. */
void spine_wf_lost(spine_wf *wf, const char *why);
/* It cannot go on here although its claim is ours (its step log in memory disagrees with the
 * database): the claim is released, counted as a fault, so that a claim replays it from what
 * the database holds. A workflow given up too often is failed. */
void spine_wf_give_up(spine_wf *wf, const char *why);
/* Hands its claim back (it is in RELEASING): the row is free again, `fault` counted against
 * it as a poison pill; `cb` runs once that committed. */
void spine_wf_release(spine_wf *wf, int fault, spine_op_cb cb);
/* wf->op did not commit: the claim moved on (lost), a step the database has but the log
 * missed (given up, to be replayed), or a fault an operator must see (stuck). */
void spine_wf_checkpoint_failed(spine_wf *wf, spine_op *op);

#endif
