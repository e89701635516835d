/* The engine: one libuv loop, one Lua state, the store, the deadlines, and every workflow this
 * process holds. It claims runnable workflows (SKIP LOCKED), wakes on LISTEN/NOTIFY and one
 * timer, replays workflows it takes over, and ends them (completion, failure with
 * compensations, non-determinism). What is inside: engine_internal.h. */
#ifndef SPINE_ENGINE_H
#define SPINE_ENGINE_H

#include <lua.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"
#include "provider_port.h"
#include "router_port.h"
#include "store.h"
#include "workflow.h"

/* What `spine serve` passivates after unless SPINE_PASSIVATE_AFTER_MS says otherwise (ms). */
#define SPINE_ENGINE_PASSIVATE_AFTER_MS 1000

typedef struct spine_engine_opts {
  const char *conninfo;
  int pool;               /* pipelined connections (default 4) */
  int claims;             /* claim free workflows (serve); 0 for `spine run` */
  int virtual_clock;      /* timers fire as soon as nothing else is to do */
  int manual_clock;       /* time stands still until spine_engine_advance() (serve, tests) */
  int64_t clock_start;    /* manual: ms since the epoch to start at (0 = the database's
                             manual clock if it has one, else real time) */
  int64_t instructions;   /* budget per resume (default 50M) */
  int64_t mem_limit;      /* bytes a workflow may hold (default 64 MB) */
  const char *playbooks;  /* directory of playbooks by name (default "playbooks") */
  int64_t lease_ms;       /* worker lease (default 10 s) */
  int64_t db_timeout_ms;  /* a batch unanswered this long: the connection is lost (15 s) */
  int64_t evict_after_ms; /* evict workflows waiting longer than this (0 = never) */
  /* A workflow that waited idle this long, and will wait at least as long again, keeps only a
   * compact record in memory and is replayed when it wakes (0 = never; never on a virtual or
   * manual clock; `spine serve` and `spine bench`: SPINE_ENGINE_PASSIVATE_AFTER_MS) */
  int64_t passivate_after_ms;
  int quiet; /* no info logs */

  /* The provider adapters (spine_providers_port of a registry the caller made first, so that a
   * bad adapter stops the start before anything is connected), borrowed until
   * spine_engine_stop returns; the caller frees them after that. Unset: no adapters, every
   * provider unknown. */
  spine_provider_port providers;
  /* The dispatcher's routing of child workflows (spine_router_port), borrowed like the
   * providers. Unset: every child runs the playbook its process names. */
  spine_router_port router;
} spine_engine_opts;

/* Called when a workflow this engine ran reaches an end (completed, failed, compensated,
 * cancelled, stuck): its id and status, the result or error as JSON text (may be NULL). */
typedef void (*spine_engine_end_cb)(void *data, const spine_wf *wf, const char *result_json,
                                    const char *error_json);

/* Connects (blocking), migrates, registers this worker, and prepares the Lua state. */
int spine_engine_new(uv_loop_t *loop, const spine_engine_opts *opts, spine_engine **out,
                     spine_err *e);
/* Another module's LISTEN channel (lower-case letters, digits, '_'): its notifications go to
 * `cb` on the loop, also after a reconnect. Call before spine_engine_serve (SPINE_EINVAL after,
 * or past a few channels). */
int spine_engine_listen(spine_engine *eng, const char *channel, spine_notify_cb cb, void *data);
/* `lost(data)` runs when the store lost its connections and forgot every op in flight (their
 * callbacks never run); `back(data)` once the engine reconnected and serves again. */
void spine_engine_on_connection(spine_engine *eng, void (*lost)(void *data),
                                void (*back)(void *data), void *data);
/* Starts serving: LISTEN, reaping dead workers, claiming, heartbeats (claims mode only). */
int spine_engine_serve(spine_engine *eng, spine_err *e);
/* Stops timers and connections; the loop then ends. Workflows in memory are released. */
void spine_engine_stop(spine_engine *eng);
void spine_engine_free(spine_engine *eng);
void spine_engine_on_end(spine_engine *eng, spine_engine_end_cb cb, void *data);
/* Called when a workflow's coroutine first runs (bench: start-to-first-step latency). */
void spine_engine_on_begin(spine_engine *eng, void (*cb)(void *data, const spine_wf *wf),
                           void *data);

/* Starts a workflow of playbook `playbook` (a path, or a name in the playbooks directory)
 * owned by this process, with input JSON (NULL = {}). Its id goes into id_out[80]. It runs
 * at once, up to its first step (callbacks may run before this returns); its row is inserted
 * by the op that records that step, so the start is durable with it. */
int spine_engine_start(spine_engine *eng, const char *playbook, const char *input_json,
                       char id_out[80], spine_err *e);

/* On a virtual clock (`spine run --clock virtual --signal-at 3d:NAME=JSON`): delivers signal
 * `name` with `payload_json` (NULL = {}) to workflow `id` when the clock reaches `at_ms`, as
 * `spine signal` would then; a deadline like any other, so the clock stops there. 0, or
 * SPINE_EINVAL on another clock, SPINE_ENOMEM. */
int spine_engine_signal_at(spine_engine *eng, const char *id, int64_t at_ms, const char *name,
                           const char *payload_json, spine_err *e);

/* What `spine replay` found: how far the history replayed, and how the playbook diverged. */
typedef struct spine_replay_report {
  int recorded;         /* steps in the history */
  int replayed;         /* steps that matched */
  int nondeterministic; /* the playbook asked for another step than the history has */
  int ended;            /* the playbook ended within the history */
  spine_wf_status status;
  char error[1024]; /* JSON of the divergence or failure, "" if none */
} spine_replay_report;

/* Replays a history (steps as the JSON array the store keeps) against a playbook source,
 * without a database; `params_json` is the variant's parameters (ctx.param), NULL for none.
 * Returns 0 with the report, or an error (the playbook does not compile). */
int spine_engine_replay(const char *path, const char *source, size_t len, const char *input_json,
                        const char *params_json, const char *steps_json, spine_replay_report *out,
                        spine_err *e);

/* The manual clock (opts.manual_clock). `cb` runs once when the advance ended: status 0 with
 * the new now and the number of timers that fired, or SPINE_ECANCELLED when the engine stops. */
typedef void (*spine_engine_clock_cb)(void *data, int status, int64_t now_ms, int fired);
/* Moves the manual clock to `to_ms`: fires, in deadline order, every timer due by then (this
 * worker's and those of free workflows in the database), letting the workflows run until
 * nothing is left to do between one deadline and the next, and calls `cb` once the engine is
 * idle at `to_ms`. `to_ms` equal to now only waits for idleness (settle). Returns 0, or
 * SPINE_EINVAL (not a manual clock, or `to_ms` in the past), or SPINE_ECONFLICT (an advance is
 * under way); `cb` then never runs. */
int spine_engine_advance(spine_engine *eng, int64_t to_ms, spine_engine_clock_cb cb, void *data);
/* Now on the engine's clock, ms since the epoch; 1 when it is a manual clock. */
int64_t spine_engine_now(spine_engine *eng, int *manual);

/* Number of workflows this worker holds, with a coroutine or passive (a compact record); of
 * passive ones alone; of steps committed. */
int spine_engine_live(const spine_engine *eng);
int spine_engine_passive(const spine_engine *eng);
uint64_t spine_engine_steps(const spine_engine *eng);
/* What this worker counted since it started, for /metrics: workflows whose end it committed,
 * by status (completed, failed, compensated, cancelled, stuck; the others stay 0) and paused
 * (an incident opened); dead or hung workers it found and forgot, and their workflows it freed
 * for claiming (workers_lost counts a worker that stopped cleanly never). */
typedef struct spine_engine_counts {
  uint64_t ended[SPINE_WF_PAUSED + 1];
  uint64_t workers_lost;
  uint64_t taken_over;
  uint64_t passivated; /* waiting workflows that left their coroutine (passive.c) */
  uint64_t activated;  /* ... and that a wake-up replayed */
} spine_engine_counts;
/* Borrowed: valid until spine_engine_free; the engine updates it on the loop. */
const spine_engine_counts *spine_engine_counts_get(const spine_engine *eng);
int64_t spine_engine_worker(const spine_engine *eng);
lua_State *spine_engine_lua(spine_engine *eng);
spine_store *spine_engine_store(spine_engine *eng);
/* The loop the engine runs on. */
struct uv_loop_s *spine_engine_loop(spine_engine *eng);

#endif
