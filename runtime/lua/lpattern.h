/* Lua 5.4 patterns (reference manual §6.4.1) under a step budget, for the sandbox's string
 * library: find, match, gmatch and gsub behave as Lua's own, except that a pathological pattern
 * uses up the budget instead of holding the event loop. Owns nothing; never calls malloc. */
#ifndef SPINE_LPATTERN_H
#define SPINE_LPATTERN_H

#include <lua.h>
#include <stdint.h>

/* Takes `steps` matching steps from the budget of the thread `L`. Raises a Lua error to stop
 * the match: the matcher holds nothing but Lua values, so it may long-jump out at any step. */
typedef void (*spine_lpattern_charge)(lua_State *L, int64_t steps);

/* Sets find, match, gmatch and gsub in the table at `idx`, each charging `charge` (NULL: no
 * budget) for its steps, in strides of about a thousand. */
void spine_lpattern_register(lua_State *L, int idx, spine_lpattern_charge charge);

#endif
