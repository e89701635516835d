/* A workflow in memory: one run of one playbook version, its coroutine and what it waits for.
 * Shared by the scheduler (lifecycle), ctx (the Lua API) and steplog (replay). Owned by the
 * engine; freed after its end is committed, or when it is evicted or lost. */
#ifndef SPINE_WORKFLOW_H
#define SPINE_WORKFLOW_H

#include <lua.h>
#include <stdint.h>

#include "sandbox.h"
#include "store.h"

typedef struct spine_engine spine_engine;
typedef struct spine_version spine_version;
typedef struct spine_wf spine_wf;
typedef struct spine_ctx_provider spine_ctx_provider;

typedef enum {
  SPINE_WF_PENDING,
  SPINE_WF_RUNNING,
  SPINE_WF_WAITING,
  SPINE_WF_COMPLETED,
  SPINE_WF_FAILED,
  SPINE_WF_COMPENSATED,
  SPINE_WF_CANCELLED,
  SPINE_WF_STUCK,
  SPINE_WF_PAUSED,
} spine_wf_status;

/* What a yielded coroutine waits for. */
typedef enum {
  SPINE_WAIT_NONE,     /* running, or yielded by itself (a bug: the workflow goes stuck) */
  SPINE_WAIT_COMMIT,   /* its step's checkpoint is being committed */
  SPINE_WAIT_TIMER,    /* a sleep or a retry backoff */
  SPINE_WAIT_SIGNAL,   /* ctx.wait or a child's end, perhaps with a deadline */
  SPINE_WAIT_PROVIDER, /* a provider call is in flight (ctx.provider) */
} spine_wait;

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

  spine_wait wait;
  int64_t wake_ms; /* deadline while in the timer heap */
  int heap_index;  /* -1 when not in the heap */
  spine_wf_timer_fn on_timer;
  int wait_seq;      /* the step that waits (signal waits) */
  char signal[128];  /* the signal name it waits for */
  int kstate;        /* continuation state of the ctx call that yielded */
  int64_t active_at; /* when it last ran (ms): idle waiting workflows are evicted */

  spine_op op;                  /* the one operation in flight; reused for every step */
  spine_ctx_provider *provider; /* the provider step in progress (ctx_provider.c), or NULL */

  unsigned busy : 1;           /* op in flight */
  unsigned row_waiting : 1;    /* its row says waiting although it runs again */
  unsigned dirty : 1;          /* state or attributes changed since last written */
  unsigned in_step : 1;        /* inside ctx.step's function: no ctx calls */
  unsigned doomed : 1;         /* non-determinism or a lost lease: stop at once */
  unsigned signal_pending : 1; /* a signal arrived while busy */
  unsigned timer_fired : 1;    /* the deadline passed while busy */
  unsigned compensating : 1;
  unsigned cancel_requested : 1;
  unsigned ending : 1; /* its end is being committed */

  char *end_result, *end_error;  /* the outcome being committed (owned) */
  struct spine_pending *pending; /* the row's input, log and attributes until begin() */
  spine_wf *next_free;           /* the list of workflows waiting for their version */
};

/* Text of a status ("waiting"). */
const char *spine_wf_status_name(spine_wf_status s);

#endif
