/* The sandbox that playbooks and adapters run in: a restricted global environment, an
 * instruction budget per resume that C library loops are charged to as well, and a memory limit
 * on what each workflow holds. It owns the Lua allocator; it never lets a script see os, io,
 * debug, load, require. */
#ifndef SPINE_SANDBOX_H
#define SPINE_SANDBOX_H

#include <lua.h>
#include <stdint.h>

#include "err.h"

typedef enum {
  SPINE_LIMIT_NONE = 0,
  SPINE_LIMIT_INSTRUCTIONS, /* the instruction budget of one resume ran out */
  SPINE_LIMIT_MEMORY,       /* the workflow would hold more than its memory limit */
} spine_limit_kind;

/* Per-workflow limits; embedded by the owner (a workflow) and attached to its coroutine.
 * Memory is charged by block: a block allocated or grown while the workflow runs is its own
 * until freed, whenever and by whichever collection that happens, so what it keeps across
 * resumes counts and its garbage stops counting once collected.
 * Invariant: `tripped` stays set once set, until spine_sandbox_begin() of the next resume.
 * Zero it before its first attach (a calloc'd workflow is); later attaches keep what it holds. */
typedef struct spine_limits {
  int64_t instructions_left; /* decremented by the count hook and by C library loops */
  int64_t mem_used;          /* bytes in live blocks charged to it: exact while it runs, as of
                                its last resume otherwise (collections free between resumes) */
  int64_t mem_limit;         /* maximum mem_used (0 = none) */
  int64_t collections_left;  /* full collections its allocations forced, in instructions (as
                                long as the budget): once used up, it is at its memory limit */
  spine_limit_kind tripped;
  uint32_t slot, gen; /* its owner slot in the allocator (see sandbox.c); 0 = none yet */
} spine_limits;

/* Creates a Lua state whose allocator enforces `state_limit` bytes in all (0 = none) and
 * accounts allocations to the limits of the resume in progress. Opens the standard libraries
 * the sandbox draws from. Returns NULL on OOM. Close with lua_close(). */
lua_State *spine_sandbox_new_state(size_t state_limit);

/* Pushes a fresh environment table for one chunk: assert error ipairs next pairs pcall select
 * tonumber tostring type xpcall rawequal rawget rawlen rawset setmetatable getmetatable,
 * read-only string table math (no random/randomseed) utf8, and spine (spine.time,
 * spine.money: lib_time.h, lib_money.h). Reading an undefined global or
 * assigning any global raises "undeclared global 'x'". */
void spine_sandbox_push_env(lua_State *L);

/* Compiles `src` (text only; binary chunks refused) as `chunkname` ("@playbooks/x.lua"),
 * with a new sandbox environment as its _ENV, runs it under a budget of `instructions`,
 * and pushes its single return value. On failure pushes nothing and returns SPINE_ESYNTAX
 * (compile), SPINE_ERUNTIME (running it) or SPINE_ELIMIT, e->msg "file:line: message". */
int spine_sandbox_load(lua_State *L, const char *src, size_t len, const char *chunkname,
                       int64_t instructions, spine_err *e);

/* Attaches `lim` to coroutine `co` (stored in its extra space) and installs the count hook. */
void spine_sandbox_attach(lua_State *co, spine_limits *lim);
/* Before each resume of `co`: refills the budget (and as much for collections), clears
 * `tripped`, sets the memory limit, and makes its limits the ones allocations are charged to.
 * What it holds stays charged. */
void spine_sandbox_begin(lua_State *co, int64_t instructions, int64_t mem_limit);
/* After each resume: allocations are no longer charged to `co`'s limits. Returns the limit that
 * tripped during the resume (SPINE_LIMIT_NONE if none). */
spine_limit_kind spine_sandbox_end(lua_State *co);
/* Runs fn(co, data) with what it allocates charged to `co`'s limits, refusing nothing: for the
 * engine building a value `co` will be resumed with (a signal's payload, a provider's result),
 * which the workflow may keep. Allocations are charged as before once it returns, even while
 * another workflow's resume is in progress. fn must not raise. */
void spine_sandbox_charged(lua_State *co, void (*fn)(lua_State *co, void *data), void *data);
/* The limits attached to `co`, or NULL. */
spine_limits *spine_sandbox_limits(lua_State *co);

#endif
