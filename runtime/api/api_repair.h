/* Repairing runs in flight, shared by the CLI and `spine serve` (issue 15 §4): a recorded
 * history replayed against a playbook source (the proof a fork or a migration needs, and
 * `spine replay --sample`), forking a workflow from a step, moving a waiting one to another
 * version, and pruning what ended workflows leave. The rows change only in the SQL functions of
 * runtime/sql/0013_repair.sql. Blocking libpq: the CLI, or a worker thread of `spine serve`. */
#ifndef SPINE_API_REPAIR_H
#define SPINE_API_REPAIR_H

#include <libpq-fe.h>
#include <stdint.h>

#include "buf.h"
#include "engine.h"
#include "err.h"
#include "playbook.h"

/* What replaying one workflow's history found. */
typedef struct spine_api_replay {
  spine_replay_report rep;
  char version[65]; /* the version the workflow runs (its hash) */
  char status[16];  /* the workflow's status */
  int diverged;     /* the source takes other steps than the history (or ends before it) */
  int step;         /* ... first at this step */
  char why[1200];   /* ... saying how: "step 3: expected intent X, got sleep" */
} spine_api_replay;

/* Replays workflow `id`'s steps 1 to `upto` (all when < 0) against `src` (NULL: the version it
 * runs) without touching the database. 0, SPINE_ENOTFOUND (field id), a compile error of the
 * source, or SPINE_EDB. */
int spine_api_replay_one(PGconn *c, const char *id, int upto, const spine_playbook_src *src,
                         spine_api_replay *out, spine_err *e);

/* Forks workflow `id` at step `from_step` into a new workflow on `src` (NULL: its own
 * version), once a replay proved steps 1 to from_step the same on it (src only: the replay runs
 * an engine of its own, so the HTTP API forks on the workflow's own version, without one);
 * supersedes the original unless `keep`. Appends spine.fork_workflow's answer to out. 0,
 * SPINE_ENOTFOUND, SPINE_ETRANSITION, SPINE_EINVAL (field from_step; field playbook: the replay
 * diverged), or SPINE_EDB. */
int spine_api_fork(PGconn *c, const char *id, int from_step, const spine_playbook_src *src,
                   int keep, const char *actor, spine_buf *out, spine_err *e);

/* Moves waiting workflow `id`, which runs `from_version`, to `src` (the caller's replay found
 * it compatible). Appends spine.migrate_workflow's answer to out. */
int spine_api_migrate(PGconn *c, const char *id, const char *from_version,
                      const spine_playbook_src *src, const char *actor, spine_buf *out,
                      spine_err *e);

/* The cutoff of a prune as ISO 8601 in out[40]: `age` ("90d") back from now on the engine's clock
 * (a manual one in tests), or a time as given. 0, SPINE_EINVAL (field ended_before), SPINE_EDB. */
int spine_api_prune_cutoff(PGconn *c, const char *age, char out[40], spine_err *e);

/* What a prune removed. */
typedef struct spine_api_pruned {
  int64_t workflows, steps, signals, deliveries, bytes;
  int batches;
} spine_api_pruned;

/* Prunes, in batches of `batch` rows (each its own short transaction), the steps and signals of
 * workflows that ended before `before` (ISO 8601) and the outbox deliveries delivered before
 * then, adding to *out what went, until a batch finds nothing. 0 or SPINE_EDB (what the batches
 * before the failure removed stays counted). */
int spine_api_prune(PGconn *c, const char *before, int batch, spine_api_pruned *out, spine_err *e);
/* Appends {"ended_before", "workflows", "steps", "signals", "deliveries", "bytes", "batches"}. */
void spine_api_pruned_json(const spine_api_pruned *p, const char *before, spine_buf *out);

#endif
