/* What the files of ctx share (ctx.c, ctx_provider.c): argument checks, the retry policy, and
 * the common paths of a step (replay of a recorded outcome, a checkpoint that failed). Not an
 * interface: only ctx's own files include it. */
#ifndef SPINE_CTX_INTERNAL_H
#define SPINE_CTX_INTERNAL_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "workflow_internal.h"

typedef struct spine_ctx__policy {
  int attempts;
  int64_t backoff, max;
  double factor;
} spine_ctx__policy;

/* The running workflow, or raises (outside a workflow, inside ctx.step's function, stopped). */
spine_wf *spine_ctx__check_wf(lua_State *L);
/* The same for a call that is a step: also raises where the coroutine cannot yield, or while
 * another step of the workflow is in flight. */
spine_wf *spine_ctx__check_step(lua_State *L);
/* A cancellation was asked for and the workflow is not compensating: the call must raise. */
int spine_ctx__cancelled(const spine_wf *wf);
int spine_ctx__raise_cancel(lua_State *L);
/* Pushes the outcome of the recorded step on top (its result), or raises its error. */
int spine_ctx__replay_outcome(lua_State *L);
/* Pushes the value of JSON text (nil for NULL or bad JSON). */
void spine_ctx__push_json(lua_State *L, const char *json, size_t len);
/* A duration argument ("30s" or seconds) in ms; raises on a bad one. */
int64_t spine_ctx__duration(lua_State *L, int arg);
/* Field `field` of table `t` as a duration, or `dflt` when absent. */
int64_t spine_ctx__field_duration(lua_State *L, int t, const char *field, int64_t dflt);
/* The retry policy in opts (at index `opts`, may be nil): {retry = {attempts, backoff, max,
 * factor}}, starting from `dflt`; raises on a bad one. */
spine_ctx__policy spine_ctx__check_policy(lua_State *L, int opts, spine_ctx__policy dflt);
/* The wait before attempt `attempt` + 1: exponential, capped, with equal jitter. */
int64_t spine_ctx__backoff_ms(spine_wf *wf, const spine_ctx__policy *p, int attempt);
/* The continuation of a call the scheduler resumes with one value: returns it, or raises it. */
int spine_ctx__value_k(lua_State *L, int status, lua_KContext k);

/* ctx.provider (ctx_provider.c). */
int spine_ctx__provider(lua_State *L);
/* ctx.parallel (ctx_parallel.c). */
int spine_ctx__parallel(lua_State *L);

#endif
