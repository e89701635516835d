/* Lua error tables, {kind, code, message, field?}, as ctx raises them to a playbook and p to an
 * adapter: one builder, so both see one shape, and the "file:line" of the Lua code that was
 * running, which their messages start with. Owns nothing; raises only what it is asked to (and
 * on Lua OOM). */
#ifndef SPINE_LERROR_H
#define SPINE_LERROR_H

#include <lua.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "sandbox.h"

/* Pushes a new error table {kind, code, message}, with `field` too when it is neither NULL nor
 * "" (the argument a rejection names). The caller adds what else it carries (details, where,
 * a metatable). */
void spine_lerror_push(lua_State *L, const char *kind, const char *code, const char *message,
                       const char *field);
/* Raises an error table as spine_lerror_push makes it, its message "file:line: " (the calling
 * Lua function's, luaL_where level 1) followed by the formatted text (at most 511 bytes). Never
 * returns: the int is for `return spine_lerror_raise(...)` in a lua_CFunction. */
int spine_lerror_raise(lua_State *L, const char *kind, const char *code, const char *fmt, ...)
    SPINE_PRINTF(4, 5);
/* Writes "file:line" of the innermost function on the stack of `co` that runs from a file
 * (source "@...") and knows its line into out[size] and returns 1; "" and 0 when none does
 * (only C functions, a string chunk, a dead coroutine). Reads debug info only: `co` may be
 * suspended or dead. */
int spine_lerror_where(lua_State *co, char *out, size_t size);

/* Writes the error value at `idx` as JSON into `out` (reset first). A value JSON cannot hold
 * (a function among a playbook's error details, a cycle) becomes a runtime error that says so:
 * an error record is always valid JSON. */
void spine_lerror_encode(lua_State *L, int idx, spine_buf *out);
/* Replaces the error value on top of the dead coroutine `co` (status: lua_resume's) with a
 * plain error table of its own: a table's string-keyed fields read raw (kind, code, message,
 * where and field only as text; kind "runtime" if it had none), a string as the message of a
 * runtime error, a tripped limit of `lim` as a limit error; "where" (file:line) added when the
 * error did not say, and "traceback" (the playbook's frames, innermost first: "pb.lua:2 in
 * helper < pb.lua:8 in run") when it was raised two calls deep or more. Safe on any value: no
 * metamethod runs. */
void spine_lerror_normalize(lua_State *co, int status, const spine_limits *lim);

#endif
