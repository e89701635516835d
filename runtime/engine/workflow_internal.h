/* A workflow in memory: one run of one playbook version, its coroutine and what it waits for.
 * Shared by the engine's own files only — the scheduler (lifecycle), ctx (the Lua API), steplog
 * (replay) and workflow.c (its phases); everyone else holds an opaque spine_wf (workflow.h).
 * Owned by the engine; freed after its end is committed, or when it is evicted or lost. */
#ifndef SPINE_WORKFLOW_INTERNAL_H
#define SPINE_WORKFLOW_INTERNAL_H

#include <lua.h>
#include <stdint.h>

#include "sandbox.h"
#include "store.h"
#include "workflow.h"

typedef struct spine_ctx_provider spine_ctx_provider;

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
  int parent_seq;
  int64_t epoch; /* the claim's fencing token: every op checks owner and epoch (spine.fence) */
  char *state;   /* owned business state, NULL if never set */
  int attempt;
  spine_wf_status status;

  lua_State *co; /* the running coroutine, kept alive by the anchor table */
  int anchor;    /* registry ref; LUA_NOREF once released */
  int seq;       /* the next step's sequence number (from 1) */
  int nlog;      /* recorded steps: seq <= nlog replays */

  spine_wf_phase phase; /* see spine_wf_move() */
  int64_t wake_ms;      /* deadline while in the timer heap */
  int heap_index;       /* -1 when not in the heap */
  spine_wf_timer_fn on_timer;
  int wait_seq;      /* the step that waits (signal waits) */
  char signal[128];  /* the signal name it waits for */
  int kstate;        /* continuation state of the ctx call that yielded */
  int64_t active_at; /* when it last ran (ms): idle waiting workflows are evicted */

  spine_op op;                  /* the one operation in flight; reused for every step */
  spine_op_cb op_cb;            /* what runs once wf->op has committed (or failed) */
  spine_ctx_provider *provider; /* the provider step in progress (ctx_provider.c), or NULL */

  unsigned op_inflight : 1;    /* the store holds wf->op (set and cleared by the scheduler only) */
  unsigned row_waiting : 1;    /* its row says waiting although it runs again */
  unsigned dirty : 1;          /* state or attributes changed since last written */
  unsigned in_step : 1;        /* inside ctx.step's function: no ctx calls */
  unsigned signal_pending : 1; /* a signal arrived while an op was in flight */
  unsigned timer_fired : 1;    /* the deadline passed while an op was in flight */
  unsigned compensating : 1;
  unsigned cancel_requested : 1;

  char *end_result, *end_error;  /* the outcome being committed (owned) */
  struct spine_pending *pending; /* the row's input, log and attributes until begin() */
  spine_wf *next_free;           /* the list of workflows waiting for their version */
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

#endif
