/* The sandbox playbooks and adapters run in: the allocator (a total limit; each block charged
 * to the workflow that made it), the environment (C library loops bounded), the budget (a count
 * hook pcall cannot outrun). Owns the allocator's state; never lets a script reach os, io,
 * debug, load, require, or a table another script sees. */
#include "sandbox.h"

#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib_money.h"
#include "lib_time.h"
#include "lpattern.h"

/* Instructions between two hook calls: small enough to stop a loop promptly, large enough
 * that the hook costs nothing measurable. */
#define HOOK_COUNT               1000
/* A full collection takes some 0.2-0.5 ns a byte of heap here, an instruction a few ns: one
 * forced for a workflow costs it an instruction per 16 bytes of heap, out of an allowance as
 * big as its budget, which then holds the loop about as long as its budget does. */
#define GC_BYTES_PER_INSTRUCTION 16
/* What a chunk's top level may hold (spine_sandbox_load has no mem_limit argument): a
 * playbook's top level declares tables and functions, it does not build data. */
#define LOAD_MEM_LIMIT           ((int64_t)64 << 20)

/* Who a block's bytes are charged to: a workflow, an adapter call or a chunk being loaded,
 * through the slot its spine_limits names. Each block carries its slot and the slot's
 * generation in a header; a slot whose last block is freed while it is not running is
 * recycled with the next generation, so older headers naming it then charge no one. Slot 0 is
 * no one (the engine's own allocations). */
typedef struct owner {
  int64_t bytes; /* in live blocks charged to it */
  uint32_t gen;
  uint32_t next_free; /* while free: the next free slot, 0 at the end */
} owner;

/* Before each block; 8 bytes keep Lua's alignment (8: lua_Number, pointers). */
typedef struct header {
  uint32_t slot, gen;
} header;

/* The allocator's state, one per lua_State. lua_close is the only close callers have, so the
 * allocator frees this itself when its last block goes: the state block, which lua_close
 * frees last (total reaches 0 then and only then). */
typedef struct sandbox_alloc {
  size_t total;         /* bytes in live blocks (as Lua counts them: without headers) */
  size_t limit;         /* maximum total; 0 = none */
  spine_limits *cur;    /* limits of the resume in progress, or NULL */
  uint32_t cur_slot;    /* cur's slot (0 if it has none) */
  lua_State *co;        /* the coroutine of `cur`, whose hook is re-armed when memory trips */
  int pending;          /* the last growth was refused and tripped `cur`: see refuse_growth() */
  size_t refused_at;    /* total when that happened */
  int64_t refused_used; /* and what `cur` held */
  int charge_only;      /* spine_sandbox_charged: `cur` is charged, never refused */
  int *freed;           /* during lua_newstate only: set when this struct is freed */
  owner *owners;        /* [0] unused */
  uint32_t nowners, cap_owners, free_owner;
} sandbox_alloc;

/* Registry key of the sandbox's table; its slots: */
static const char sandbox_key = 0;
enum { SLOT_FUNCS = 1, SLOT_ENV_MT, SLOT_LIB_MT };

/* The functions an environment gets, from the base library; setmetatable and xpcall are our
 * own (below). */
static const char *const base_names[] = {
    "assert", "error",  "getmetatable", "ipairs", "next",     "pairs",    "pcall", "rawequal",
    "rawget", "rawlen", "rawset",       "select", "tonumber", "tostring", "type",
};

static int read_only(lua_State *L);

/* spine, the playbooks' own library: spine.time and spine.money, each behind a userdata whose
 * metatable is protected. Not tables: these are shared by every environment of the state, and
 * rawset on a table would change them for all. */
static int open_spine(lua_State *L) {
  static const struct {
    const char *name, *full;
    lua_CFunction open;
  } parts[] = {{"time", "spine.time", spine_lib_time_open},
               {"money", "spine.money", spine_lib_money_open}};
  lua_createtable(L, 0, 2);
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    lua_newuserdatauv(L, 0, 0);
    lua_createtable(L, 0, 4);
    parts[i].open(L);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, parts[i].full);
    lua_pushcclosure(L, read_only, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushstring(L, parts[i].full);
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, parts[i].name);
  }
  return 1;
}

/* Libraries an environment sees through read-only proxies, and what they lose:
 * string.dump makes bytecode (which the loader refuses anyway); random is not replayable
 * (ctx.random() is a recorded step). */
static const struct {
  const char *name;
  lua_CFunction open;
  const char *removed[3];
} libs[] = {
    {LUA_STRLIBNAME, luaopen_string, {"dump", NULL, NULL}},
    {LUA_TABLIBNAME, luaopen_table, {NULL, NULL, NULL}},
    {LUA_MATHLIBNAME, luaopen_math, {"random", "randomseed", NULL}},
    {LUA_UTF8LIBNAME, luaopen_utf8, {NULL, NULL, NULL}},
    {"spine", open_spine, {NULL, NULL, NULL}},
};
#define NLIBS (sizeof libs / sizeof libs[0])

/* ---- limits of a coroutine ---- */

static spine_limits *limits_of(lua_State *L) {
  spine_limits *lim;
  memcpy(&lim, lua_getextraspace(L), sizeof lim);
  return lim;
}

static void set_limits(lua_State *L, spine_limits *lim) {
  memcpy(lua_getextraspace(L), &lim, sizeof lim);
}

static void *sandbox_realloc(void *ud, void *ptr, size_t osize, size_t nsize);

static sandbox_alloc *alloc_of(lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) == sandbox_realloc ? ud : NULL;
}

/* ---- the instruction budget ---- */

static int arm_count(int64_t left) {
  return left >= HOOK_COUNT ? HOOK_COUNT : left > 1 ? (int)left : 1;
}

static void budget_hook(lua_State *L, lua_Debug *ar);

/* Raises the error of the limit that tripped, located at `level` (0 in the hook, where it is
 * the running Lua function; 1 in a C function, its caller), with the hook re-armed to a count
 * of 1: a pcall in the playbook catches one error, then its next instruction raises outside
 * the pcall (as Redis's luaMaskCountHook). Once memory has tripped, building the message fails
 * and raises "not enough memory" instead: just as final. */
static int raise_tripped(lua_State *L, spine_limits *lim, int level) {
  if (lua_gethookcount(L) != 1) lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, level);
  lua_pushstring(L, lim->tripped == SPINE_LIMIT_MEMORY ? "memory limit exceeded"
                                                       : "instruction budget exceeded");
  lua_concat(L, 2);
  return lua_error(L);
}

/* Runs every `count` instructions of a hooked coroutine; once a limit trips, at every one. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  spine_limits *lim = limits_of(L);
  if (!lim) return; /* a thread that inherited the hook but has no limits */
  int count = lua_gethookcount(L);
  lim->instructions_left -= count;
  if (lim->instructions_left > 0 && lim->tripped == SPINE_LIMIT_NONE) {
    if (lim->instructions_left < count) /* count the last stretch exactly */
      lua_sethook(L, budget_hook, LUA_MASKCOUNT, arm_count(lim->instructions_left));
    return;
  }
  if (lim->tripped == SPINE_LIMIT_NONE) lim->tripped = SPINE_LIMIT_INSTRUCTIONS;
  raise_tripped(L, lim, 0);
}

/* Charges the loop a C function is about to run, `work` instructions' worth, to the budget of
 * the thread running it: the count hook sees Lua instructions only, and string.rep("", 1 << 50)
 * is one. Refuses (raises the budget error) when the work is more than what is left. */
static void charge(lua_State *L, int64_t work) {
  spine_limits *lim = limits_of(L);
  if (!lim || work <= 0) return;
  if (lim->tripped == SPINE_LIMIT_NONE && work < lim->instructions_left) {
    lim->instructions_left -= work;
    if (lim->instructions_left < lua_gethookcount(L))
      lua_sethook(L, budget_hook, LUA_MASKCOUNT, arm_count(lim->instructions_left));
    return;
  }
  if (lim->tripped == SPINE_LIMIT_NONE) {
    lim->tripped = SPINE_LIMIT_INSTRUCTIONS;
    lim->instructions_left = 0;
  }
  raise_tripped(L, lim, 1);
}

/* ---- the allocator ---- */

static void recycle(sandbox_alloc *a, uint32_t s) {
  a->owners[s].gen++;
  a->owners[s].next_free = a->free_owner;
  a->free_owner = s;
}

/* The slot of `lim`: its own while that is live, else a free or new one; 0 when the slot table
 * cannot grow (its blocks then charge no one). */
static uint32_t slot_of(sandbox_alloc *a, spine_limits *lim) {
  if (lim->slot && lim->slot < a->nowners && a->owners[lim->slot].gen == lim->gen) return lim->slot;
  uint32_t s = a->free_owner;
  if (s) {
    a->free_owner = a->owners[s].next_free;
  } else {
    if (a->nowners == a->cap_owners) {
      uint32_t cap = a->cap_owners ? a->cap_owners * 2 : 64;
      owner *o = realloc(a->owners, cap * sizeof *o);
      if (!o) return 0;
      a->owners = o;
      a->cap_owners = cap;
      if (a->nowners == 0) { /* slot 0 is no one */
        memset(o, 0, sizeof *o);
        a->nowners = 1;
      }
    }
    s = a->nowners++;
    a->owners[s].gen = 1;
  }
  a->owners[s].bytes = 0;
  a->owners[s].next_free = 0;
  lim->slot = s;
  lim->gen = a->owners[s].gen;
  return s;
}

/* The live slot a block's header names, or 0. */
static uint32_t slot_in(const sandbox_alloc *a, const header *h) {
  return h->slot && h->slot < a->nowners && a->owners[h->slot].gen == h->gen ? h->slot : 0;
}

/* Adds `delta` bytes to slot s (nothing for 0); an emptied slot that is not running is
 * recycled. */
static void add_bytes(sandbox_alloc *a, uint32_t s, int64_t delta) {
  if (!s) return;
  owner *o = &a->owners[s];
  o->bytes += delta;
  if (s == a->cur_slot)
    a->cur->mem_used = o->bytes;
  else if (o->bytes == 0)
    recycle(a, s);
}

/* Charges allocations to `lim` (NULL: to no one) from now on, as the resume of `co`. */
static void account_to(sandbox_alloc *a, spine_limits *lim, lua_State *co) {
  uint32_t prev = a->cur_slot;
  a->cur = lim;
  a->co = lim ? co : NULL;
  a->cur_slot = lim ? slot_of(a, lim) : 0;
  a->pending = 0;
  if (lim) lim->mem_used = a->cur_slot ? a->owners[a->cur_slot].bytes : 0;
  if (prev && prev != a->cur_slot && a->owners[prev].bytes == 0) recycle(a, prev);
}

/* Charges `lim` for a full collection forced for it, which freed `freed` of its own bytes;
 * returns whether that used its allowance for collections up. A collection that freed a
 * quarter of its limit or more was its garbage's due (a workflow making garbage fast, the
 * collector behind): free. One that freed nothing is the workflow holding close to its limit
 * and making the whole heap be collected at every allocation: charged in full, so that it
 * stops before the loop is held for long, and stops as what it is, at its memory limit (the
 * caller trips that). In between, in proportion. */
static int charge_collection(sandbox_alloc *a, spine_limits *lim, int64_t freed) {
  double quarter = (double)lim->mem_limit / 4;
  if (quarter <= 0 || (double)freed >= quarter) return 0;
  double cost = (double)(a->total / GC_BYTES_PER_INSTRUCTION) * (quarter - (double)freed) / quarter;
  lim->collections_left -= (int64_t)cost;
  return lim->collections_left <= 0;
}

/* Lua answers a refused allocation with an emergency collection (which frees but never
 * allocates or runs finalizers) and one retry of the same request. So the first refusal
 * marks the trip as pending: if the retry fits, the collection made room and the trip is
 * withdrawn. If not, it stands: every later growth in this resume is refused and the hook
 * re-armed to raise at the next instruction, so a pcall cannot swallow it and go on. (When Lua
 * cannot retry, the next growth request settles the pending trip instead.) A collection that
 * made room is charged (charge_collection), if there was one: if anything was freed since. */
static int refuse_growth(sandbox_alloc *a, spine_limits *lim, int64_t used, size_t grow) {
  int over = grow > (size_t)INT64_MAX || (int64_t)grow > lim->mem_limit - used;
  if (a->pending) {
    a->pending = 0;
    if (!over) {
      lim->tripped = SPINE_LIMIT_NONE;
      if (a->total < a->refused_at && charge_collection(a, lim, a->refused_used - used)) {
        lim->tripped = SPINE_LIMIT_MEMORY; /* this allocation passes; the next instruction raises */
        if (a->co) lua_sethook(a->co, budget_hook, LUA_MASKCOUNT, 1);
      }
      return 0;
    }
    if (a->co) lua_sethook(a->co, budget_hook, LUA_MASKCOUNT, 1);
    return 1;
  }
  if (lim->tripped == SPINE_LIMIT_MEMORY) return 1;
  if (!over) return 0;
  if (lim->tripped == SPINE_LIMIT_NONE) {
    lim->tripped = SPINE_LIMIT_MEMORY;
    a->pending = 1;
    a->refused_at = a->total;
    a->refused_used = used;
  }
  return 1;
}

/* Frees never fail and shrinking never fails (Lua relies on both); growth is refused past the
 * state's limit or past what the running workflow may hold. A new block, or one that grows,
 * while a workflow runs is charged to it (a table every workflow shares included: the one
 * that makes it grow pays); otherwise a block stays charged to whom it was. */
static void *sandbox_realloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sandbox_alloc *a = ud;
  header *h = ptr ? (header *)ptr - 1 : NULL;
  size_t old = ptr ? osize : 0; /* for a new block, osize is the object's type */
  uint32_t from = h ? slot_in(a, h) : 0;
  if (nsize == 0) {
    if (!ptr) return NULL;
    add_bytes(a, from, -(int64_t)old);
    free(h);
    a->total -= old;
    if (a->total == 0) { /* the state block itself: lua_close or a failed lua_newstate */
      if (a->freed) *a->freed = 1;
      free(a->owners);
      free(a);
    }
    return NULL;
  }
  uint32_t to = a->cur && (!h || nsize > old) ? a->cur_slot : from;
  if (nsize > old) {
    if (a->limit && nsize - old > a->limit - a->total) return NULL;
    if (to && to == a->cur_slot && a->cur->mem_limit > 0 && !a->charge_only &&
        refuse_growth(a, a->cur, a->owners[to].bytes, to == from ? nsize - old : nsize))
      return NULL;
  }
  header *nh = realloc(h, sizeof *nh + nsize);
  if (!nh) {
    if (nsize > old) return NULL;
    nh = h; /* a shrink that failed: the block stays as it was, smaller to Lua */
  }
  a->total = a->total - old + nsize;
  if (to == from) {
    add_bytes(a, to, (int64_t)nsize - (int64_t)old);
  } else {
    add_bytes(a, from, -(int64_t)old);
    add_bytes(a, to, (int64_t)nsize);
  }
  nh->slot = to;
  nh->gen = to ? a->owners[to].gen : 0;
  return nh + 1;
}

/* Makes sure a C function may allocate `size` bytes before it starts (string.rep knows its
 * result's size before its loop): collects first when they do not fit, as a refused
 * allocation would (and charged as one), then trips the memory limit and raises if they still
 * do not. */
static void reserve(lua_State *L, size_t size) {
  sandbox_alloc *a = alloc_of(L);
  spine_limits *lim = limits_of(L);
  if (!a || !lim || lim != a->cur || lim->mem_limit <= 0) return;
  if (lim->tripped == SPINE_LIMIT_MEMORY) raise_tripped(L, lim, 1);
  int64_t before = 0;
  for (int collected = 0;; collected = 1) {
    int64_t used = a->cur_slot ? a->owners[a->cur_slot].bytes : 0;
    if (collected && charge_collection(a, lim, before - used)) break;
    if (size <= (size_t)INT64_MAX && (int64_t)size <= lim->mem_limit - used) return;
    if (collected) break;
    before = used;
    lua_gc(L, LUA_GCCOLLECT);
  }
  luaL_where(L, 1); /* the message first: once tripped, nothing more may be allocated */
  lua_pushliteral(L, "memory limit exceeded");
  lua_concat(L, 2);
  if (lim->tripped == SPINE_LIMIT_NONE) lim->tripped = SPINE_LIMIT_MEMORY;
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  lua_error(L);
}

/* ---- the environment ---- */

static int undeclared(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "undeclared global '%s'", lua_tostring(L, 2));
  return luaL_error(L, "undeclared global (a %s key)", luaL_typename(L, 2));
}

static int read_only(lua_State *L) {
  return luaL_error(L, "attempt to modify read-only table '%s'",
                    lua_tostring(L, lua_upvalueindex(1)));
}

/* lbaselib's setmetatable, refusing __gc: a finalizer runs whenever the collector gets to it,
 * in whatever thread allocates then (the engine's main thread has no budget), so one endless
 * finalizer would hang the engine. */
static int safe_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    int gc = lua_rawget(L, 2);
    lua_pop(L, 1);
    if (gc != LUA_TNIL) return luaL_argerror(L, 2, "__gc metamethods are not allowed");
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* A message handler runs inside the error's dynamic extent, so for an error raised by the
 * budget hook it runs with hooks off (Lua sets allowhook = 0 while a hook runs): a handler that
 * loops would never be stopped. Once a limit has tripped the user's handler is skipped and the
 * error passes through unchanged. */
static int guarded_handler(lua_State *L) {
  spine_limits *lim = limits_of(L);
  if (lim && lim->tripped != SPINE_LIMIT_NONE) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* lbaselib's xpcall (a continuation keeps it yieldable, for ctx calls inside it), with the
 * handler guarded as above. */
static int finish_xpcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

static int safe_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1); /* first result */
  lua_pushvalue(L, 1);   /* function */
  lua_rotate(L, 3, 2);   /* below the function's arguments */
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_xpcall);
  return finish_xpcall(L, status, 2);
}

/* ---- library functions whose loops the hook cannot see ---- */

/* The library's own function (upvalue 1), on the same stack: the checks charged for are done,
 * and its argument errors name the same function. */
static int call_original(lua_State *L) {
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

/* A step through a metamethod (__index, __newindex, __lt written in C, such as rawlen) costs
 * what some 16 instructions do: a budget's worth of such steps then holds the loop about as
 * long as a budget of Lua instructions. */
#define META_COST 16

/* The count of f..e (e >= f) as a charge, without overflow. */
static int64_t span(lua_Integer f, lua_Integer e) {
  uint64_t n = (uint64_t)e - (uint64_t)f;
  return n >= (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n + 1;
}

/* What one element of the table at idx costs: more when its accesses may go through
 * metamethods. */
static int64_t per_element(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 1;
  lua_pop(L, 1);
  return META_COST;
}

/* n elements at `cost` each, saturating. */
static void charge_elements(lua_State *L, int64_t n, int64_t cost) {
  charge(L, n > INT64_MAX / cost ? INT64_MAX : n * cost);
}

/* string.rep: its loop runs n times even for an empty string, so n is charged; its result's
 * size is known first, so it is reserved before any work, twice over: Lua builds it in a
 * buffer, then copies it into the string. (Past INT_MAX bytes Lua's own "resulting string too
 * large" answers.) */
static int bounded_rep(lua_State *L) {
  size_t l, lsep;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  size_t unit = l + lsep;
  if (n > 0 && unit >= l && (unit == 0 || unit <= (size_t)INT_MAX / (uint64_t)n)) {
    size_t size = l * (size_t)n + lsep * (size_t)(n - 1);
    reserve(L, size > LUAL_BUFFERSIZE ? 2 * size : size);
    charge(L, n);
  }
  return call_original(L);
}

/* table.move: its loop runs e - f + 1 times, whatever the tables hold. */
static int bounded_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  luaL_checkinteger(L, 4);
  if (e >= f && (f > 0 || e < LUA_MAXINTEGER + f)) {
    int64_t cost = per_element(L, 1);
    if (!lua_isnoneornil(L, 5) && per_element(L, 5) > cost) cost = META_COST;
    charge_elements(L, span(f, e), cost);
  }
  return call_original(L);
}

static int constant(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

/* The length the library function will see for its table (argument 1), or -1 when that is not
 * a table (the function raises its own error). #t is taken once: a table whose __len answers
 * differently each time is replaced by a proxy that answers the first length and reads and
 * writes through to it, so the loop the function runs is the one charged for. */
static lua_Integer fixed_len(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTABLE) return -1;
  if (luaL_getmetafield(L, 1, "__len") == LUA_TNIL) return (lua_Integer)lua_rawlen(L, 1);
  lua_pop(L, 1);
  lua_Integer n = luaL_len(L, 1);
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, n);
  lua_pushcclosure(L, constant, 1);
  lua_setfield(L, -2, "__len");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
  lua_replace(L, 1);
  return n;
}

/* table.insert(t, pos, v) moves the elements pos..#t up. */
static int bounded_insert(lua_State *L) {
  lua_Integer n = fixed_len(L);
  if (n >= 0 && lua_gettop(L) == 3) {
    lua_Integer pos = luaL_checkinteger(L, 2);
    if (pos >= 1 && pos <= n) charge_elements(L, span(pos, n), per_element(L, 1));
  }
  return call_original(L);
}

/* table.remove(t, pos) moves the elements pos+1..#t down. */
static int bounded_remove(lua_State *L) {
  lua_Integer n = fixed_len(L);
  if (n >= 0) {
    lua_Integer pos = luaL_optinteger(L, 2, n);
    if (pos >= 1 && pos < n) charge_elements(L, span(pos + 1, n), per_element(L, 1));
  }
  return call_original(L);
}

/* table.sort compares about n log n times; without a Lua comparator nothing else is counted. */
static int bounded_sort(lua_State *L) {
  lua_Integer n = fixed_len(L);
  if (n > 1 && n < INT_MAX) {
    int64_t log2 = 1;
    for (lua_Integer k = n; k > 1; k >>= 1)
      log2++;
    charge_elements(L, (int64_t)n * log2, per_element(L, 1));
  }
  return call_original(L);
}

/* table.concat(t, sep, i, j) reads i..j, whose values __index may make up. */
static int bounded_concat(lua_State *L) {
  lua_Integer last = fixed_len(L);
  if (last >= 0) {
    luaL_optlstring(L, 2, "", NULL);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    if (last >= i) charge_elements(L, span(i, last), per_element(L, 1));
  }
  return call_original(L);
}

/* Replacements in the environments' copies of the libraries; the patterns (find, match,
 * gmatch, gsub) are lpattern.c's. */
static const struct {
  const char *lib, *name;
  lua_CFunction fn;
} bounded[] = {
    {LUA_STRLIBNAME, "rep", bounded_rep},       {LUA_TABLIBNAME, "move", bounded_move},
    {LUA_TABLIBNAME, "insert", bounded_insert}, {LUA_TABLIBNAME, "remove", bounded_remove},
    {LUA_TABLIBNAME, "sort", bounded_sort},     {LUA_TABLIBNAME, "concat", bounded_concat},
};

/* Builds the registry table push_env copies from. The libraries' tables stay as opened, for
 * the engine's own code; environments see shallow copies without the removed functions and
 * with bounded ones (above) where a C loop would escape the budget, each behind a proxy with a
 * protected metatable, so the copies are unreachable for writing. */
static int setup(lua_State *L) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  lua_pop(L, 1);
  for (size_t i = 0; i < NLIBS; i++) {
    luaL_requiref(L, libs[i].name, libs[i].open, 1);
    lua_pop(L, 1);
  }
  lua_createtable(L, SLOT_LIB_MT + (int)NLIBS, 0);
  int s = lua_gettop(L);

  lua_createtable(L, 0, (int)(sizeof base_names / sizeof base_names[0]) + 1);
  for (size_t i = 0; i < sizeof base_names / sizeof base_names[0]; i++) {
    lua_getglobal(L, base_names[i]);
    lua_setfield(L, -2, base_names[i]);
  }
  lua_pushcfunction(L, safe_setmetatable);
  lua_setfield(L, -2, "setmetatable");
  lua_pushcfunction(L, safe_xpcall);
  lua_setfield(L, -2, "xpcall");
  lua_rawseti(L, s, SLOT_FUNCS);

  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, undeclared);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, undeclared);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0); /* getmetatable(_ENV) gives false; setmetatable(_ENV) fails */
  lua_setfield(L, -2, "__metatable");
  lua_rawseti(L, s, SLOT_ENV_MT);

  for (size_t i = 0; i < NLIBS; i++) {
    lua_getglobal(L, libs[i].name);
    int real = lua_gettop(L);
    lua_newtable(L);
    int copy = real + 1;
    lua_pushnil(L);
    while (lua_next(L, real)) {
      int keep = 1;
      for (int j = 0; libs[i].removed[j] && keep; j++)
        keep = lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), libs[i].removed[j]);
      if (keep) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, copy);
      } else {
        lua_pop(L, 1);
      }
    }
    for (size_t j = 0; j < sizeof bounded / sizeof bounded[0]; j++) {
      if (strcmp(bounded[j].lib, libs[i].name)) continue;
      lua_getfield(L, real, bounded[j].name);
      lua_pushcclosure(L, bounded[j].fn, 1);
      lua_setfield(L, copy, bounded[j].name);
    }
    if (libs[i].open == luaopen_string) spine_lpattern_register(L, copy, charge);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, copy);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, libs[i].name);
    lua_pushcclosure(L, read_only, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawseti(L, s, SLOT_LIB_MT + (int)i);
    if (libs[i].open == luaopen_string) {
      /* ("x"):dump() and getmetatable("").__index would reach the real string table. */
      lua_pushliteral(L, "");
      lua_getmetatable(L, -1);
      lua_pushvalue(L, copy);
      lua_setfield(L, -2, "__index");
      lua_pushboolean(L, 0);
      lua_setfield(L, -2, "__metatable");
      lua_pop(L, 2);
    }
    lua_settop(L, real - 1);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key);
  return 0;
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "spine: PANIC: unprotected error in call to Lua API (%s)\n",
          msg ? msg : "error object is not a string");
  return 0; /* Lua aborts */
}

lua_State *spine_sandbox_new_state(size_t state_limit) {
  sandbox_alloc *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->limit = state_limit;
  int freed = 0;
  a->freed = &freed;
  lua_State *L = lua_newstate(sandbox_realloc, a);
  if (!L) {
    if (!freed) free(a);
    return NULL;
  }
  a->freed = NULL;
  /* New threads copy the main thread's extra space: theirs must start without limits. */
  set_limits(L, NULL);
  lua_atpanic(L, panic);
  lua_pushcfunction(L, setup);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Each environment is a fresh table with fresh proxies: a playbook's rawset reaches only its
 * own, never what another playbook sees. */
void spine_sandbox_push_env(lua_State *L) {
  luaL_checkstack(L, 6, "sandbox environment");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key) != LUA_TTABLE)
    luaL_error(L, "not a sandbox state (use spine_sandbox_new_state)");
  int s = lua_gettop(L);
  lua_createtable(L, 0, (int)(sizeof base_names / sizeof base_names[0] + 1 + NLIBS));
  int env = s + 1;
  lua_rawgeti(L, s, SLOT_FUNCS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, env);
  }
  lua_pop(L, 1);
  for (size_t i = 0; i < NLIBS; i++) {
    lua_createtable(L, 0, 0);
    lua_rawgeti(L, s, SLOT_LIB_MT + (int)i);
    lua_setmetatable(L, -2);
    lua_setfield(L, env, libs[i].name); /* env has no metatable yet: a raw set */
  }
  lua_rawgeti(L, s, SLOT_ENV_MT);
  lua_setmetatable(L, env);
  lua_remove(L, s);
}

/* ---- loading a chunk ---- */

/* Protected, so that an out-of-memory in making the environment is an error, not a panic. */
static int run_chunk(lua_State *L) {
  spine_sandbox_push_env(L);
  if (!lua_setupvalue(L, 1, 1)) lua_pop(L, 1); /* a main chunk's one upvalue is _ENV */
  lua_call(L, 0, 1);
  return 1;
}

/* "playbooks/x.lua" from "@playbooks/x.lua" or "=x". */
static const char *display_name(const char *chunkname) {
  return chunkname[0] == '@' || chunkname[0] == '=' ? chunkname + 1 : chunkname;
}

static const char *error_text(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushliteral(L, "message");
    int t = lua_rawget(L, idx < 0 ? idx - 1 : idx);
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive in the table */
    if (s) return s;
  }
  return lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
}

int spine_sandbox_load(lua_State *L, const char *src, size_t len, const char *chunkname,
                       int64_t instructions, spine_err *e) {
  int top = lua_gettop(L);
  if (!chunkname) chunkname = "=chunk";
  int st = luaL_loadbufferx(L, src, len, chunkname, "t");
  if (st != LUA_OK) {
    int code = st == LUA_ERRSYNTAX ? SPINE_ESYNTAX : SPINE_ENOMEM;
    const char *name = display_name(chunkname), *msg = error_text(L, -1);
    /* Syntax errors carry "file:line:"; the binary-chunk refusal carries no name at all. */
    if (strncmp(msg, name, strlen(name)) == 0)
      spine_err_set(e, code, NULL, NULL, "%s", msg);
    else
      spine_err_set(e, code, NULL, NULL, "%s: %s", name, msg);
    lua_settop(L, top);
    return code;
  }
  lua_pushcfunction(L, run_chunk);
  lua_insert(L, -2);

  /* Budget the chunk as a resume: limits on L (the main thread, usually) only for the call,
   * everything as it was afterwards. What the top level keeps (the module) is charged to a
   * slot of its own, which no resume is charged to. */
  sandbox_alloc *a = alloc_of(L);
  spine_limits *prev = limits_of(L);
  lua_Hook hook = lua_gethook(L);
  int mask = lua_gethookmask(L), count = lua_gethookcount(L);
  spine_limits *prev_cur = a ? a->cur : NULL;
  lua_State *prev_co = a ? a->co : NULL;
  spine_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.instructions_left = lim.collections_left = instructions;
  lim.mem_limit = LOAD_MEM_LIMIT;
  set_limits(L, &lim);
  if (a) account_to(a, &lim, L);
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, arm_count(instructions));
  st = lua_pcall(L, 1, 1, 0);
  lua_sethook(L, hook, mask, count);
  set_limits(L, prev);
  if (a) account_to(a, prev_cur, prev_co);

  if (st == LUA_OK) return 0;
  int code = SPINE_ERUNTIME;
  if (lim.tripped == SPINE_LIMIT_INSTRUCTIONS) {
    code = SPINE_ELIMIT;
    spine_err_set(e, code, NULL, NULL, "%s", error_text(L, -1));
  } else if (lim.tripped == SPINE_LIMIT_MEMORY || st == LUA_ERRMEM) {
    code = SPINE_ELIMIT;
    spine_err_set(e, code, NULL, NULL, "%s: memory limit exceeded (%s)", display_name(chunkname),
                  lim.tripped == SPINE_LIMIT_MEMORY ? "the top level allocated over 64 MB"
                                                    : "the state is full");
  } else {
    spine_err_set(e, code, NULL, NULL, "%s", error_text(L, -1));
  }
  lua_settop(L, top);
  return code;
}

/* ---- coroutines ---- */

void spine_sandbox_attach(lua_State *co, spine_limits *lim) {
  set_limits(co, lim);
  if (lim)
    lua_sethook(co, budget_hook, LUA_MASKCOUNT, HOOK_COUNT);
  else
    lua_sethook(co, NULL, 0, 0);
}

void spine_sandbox_begin(lua_State *co, int64_t instructions, int64_t mem_limit) {
  spine_limits *lim = limits_of(co);
  if (!lim) return;
  lim->instructions_left = lim->collections_left = instructions;
  lim->mem_limit = mem_limit;
  lim->tripped = SPINE_LIMIT_NONE;
  /* Re-arming also drops the count-1 hook of a previous trip. */
  lua_sethook(co, budget_hook, LUA_MASKCOUNT, arm_count(instructions));
  sandbox_alloc *a = alloc_of(co);
  if (a) account_to(a, lim, co);
}

spine_limit_kind spine_sandbox_end(lua_State *co) {
  sandbox_alloc *a = alloc_of(co);
  if (a && a->co == co) account_to(a, NULL, NULL);
  spine_limits *lim = limits_of(co);
  return lim ? lim->tripped : SPINE_LIMIT_NONE;
}

void spine_sandbox_charged(lua_State *co, void (*fn)(lua_State *co, void *data), void *data) {
  sandbox_alloc *a = alloc_of(co);
  spine_limits *lim = limits_of(co);
  if (!a || !lim || a->cur == lim) { /* its resume runs: charged already */
    fn(co, data);
    return;
  }
  spine_limits *prev = a->cur;
  lua_State *prev_co = a->co;
  int prev_pending = a->pending, prev_only = a->charge_only;
  account_to(a, lim, co);
  a->charge_only = 1;
  fn(co, data);
  account_to(a, prev, prev_co);
  a->charge_only = prev_only;
  a->pending = prev_pending;
}

spine_limits *spine_sandbox_limits(lua_State *co) {
  return limits_of(co);
}
