/* Replay against the step log: a recorded step must match what the playbook asks for now, by
 * kind and name; a mismatch is non-determinism, reported to the caller (the workflow goes
 * stuck, spine_wf_next_step), nothing overwritten. */
#ifndef SPINE_STEPLOG_H
#define SPINE_STEPLOG_H

#include <lua.h>
#include <stdint.h>

#include "store.h"

#include "workflow.h"

/* Re-keys a decoded log (array of step tables, on top of L) in place by strand and number
 * within it: log[branch or ""][bseq]; returns the highest seq (0 for none), the number of
 * steps in *count. */
int spine_steplog_index(lua_State *L, int *count);

/* The highest recorded number of the strand `path` (NULL: the main body), 0 for none. */
int spine_steplog_count(spine_wf *wf, lua_State *L, const char *path);

/* Step `bseq` of the running strand (wf->path): 0 when not recorded (run it live); 1 with its
 * entry table {seq, kind, name, status, result, error, attempt, wake_at} pushed when it
 * matches; -1 on a mismatch, with a message saying what the history has and what the playbook
 * asks for pushed. */
int spine_steplog_expect(spine_wf *wf, lua_State *L, int bseq, const char *kind, const char *name);

/* Pushes the recorded entry of `bseq` of the running strand (or nil) without checking it. */
void spine_steplog_peek(spine_wf *wf, lua_State *L, int bseq);

/* Adds the step's place as two parameters: its strand's path and its number there. */
void spine_steplog_add_where(spine_op *op, const spine_wf *wf);

/* The rows that record a step, added to `op` (the workflow's op, after its fence). */
/* A step done at once: its outcome (status "completed" or "failed", result or error JSON). */
void spine_steplog_add_done(spine_op *op, const spine_wf *wf, int seq, const char *kind,
                            const char *name, const char *status, const char *result,
                            const char *error, int attempt);
/* The outcome of a step recorded before (a wait, a retry, a provider call) after `attempt`s. */
void spine_steplog_add_finish(spine_op *op, const spine_wf *wf, int seq, const char *status,
                              const char *result, const char *error, int attempt);
/* A failed attempt, to be tried again at `wake_ms`. */
void spine_steplog_add_retry(spine_op *op, const spine_wf *wf, int seq, const char *kind,
                             const char *name, const char *error, int attempt, int64_t wake_ms);

#endif
