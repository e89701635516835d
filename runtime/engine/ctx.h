/* `ctx`, the playbook API (SPEC §4): each effect is a step, replayed from the log when it is
 * recorded, else started, checkpointed and yielded on; the scheduler resumes the coroutine with
 * one value and the continuation returns it or raises it at the call site. */
#ifndef SPINE_CTX_H
#define SPINE_CTX_H

#include <lua.h>

#include "buf.h"
#include "workflow.h"

struct spine_par;
struct spine_ctx_provider;

/* Set in wf->kstate by the scheduler when the resume value is an error to raise. */
#define SPINE_CTX_RAISE 0x40000000

/* Pushes the ctx object (one for all workflows: its calls act on the running one). */
void spine_ctx_open(lua_State *L);
/* Replaces the error value on top of the dead coroutine `co` with an error table that says
 * where it happened (file:line), why (limits included) and at which step (spine_lerror_normalize,
 * then the step). `status` is lua_resume's. */
void spine_ctx_normalize_error(spine_wf *wf, lua_State *co, int status);
/* The compensation runner's marker: records a `compensate` step before each undo. */
int spine_ctx_mark_compensation(lua_State *L);
/* The waiting `wf` is cancelled (spine_wf_cancel): its provider step's backoff ends and the
 * cancellation error is pushed on its coroutine, for the resume to raise at the call's site. */
int spine_ctx_cancel_waiting(spine_wf *wf);
/* Frees the provider step `wf` is in (ctx_provider.c), cancelling its call in flight. */
void spine_ctx_provider_free(spine_wf *wf);
/* The same for a provider step kept by a strand that is not loaded (a branch's). */
void spine_ctx_provider_drop(spine_wf *wf, struct spine_ctx_provider *st);
/* Cancels the provider calls `wf` has in flight, its branches' too (the engine stops): their
 * callbacks never run; the steps stay as recorded. */
void spine_ctx_provider_cancel(spine_wf *wf);
/* A signal for `wf` was stored: deliver it if the workflow waits for one (to each of its
 * branches that waits, in the order of their paths). */
void spine_ctx_signal_arrived(spine_wf *wf);

/* ---- ctx.parallel (ctx_parallel.c) ---- */

/* The loaded branch (or undo) of a parallel ended: returned `nres` values, or raised (ok 0,
 * its error table on top of its coroutine). */
void spine_ctx_parallel_ended(spine_wf *wf, int ok, int nres);
/* The workflow is cancelled while a parallel runs: the parallel stops first (its branches are
 * cancelled, their compensations run), then its caller raises the cancellation. */
void spine_ctx_parallel_cancel(spine_wf *wf);
/* Frees a parallel (the workflow leaves memory): its timer and what it holds. */
void spine_ctx_parallel_free(spine_wf *wf, struct spine_par *p);

#endif
