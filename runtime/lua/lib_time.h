/* spine.time, the playbooks' calendar (calendar.c for Lua): dates as "YYYY-MM-DD", times as
 * seconds since the epoch (what ctx.now() returns), zones and holiday calendars by name.
 * Pure: no function reads a clock, so a replay computes what the first run did. Errors name
 * the function and the argument ("time.add_days: date: not a date ..."). */
#ifndef SPINE_LIB_TIME_H
#define SPINE_LIB_TIME_H

#include <lua.h>
#include <stdint.h>

/* Pushes the table of spine.time's functions. */
int spine_lib_time_open(lua_State *L);

/* The time at `arg`, seconds since the epoch or ISO 8601 text, in ms; raises
 * "<fn>: <name>: not a time ..." otherwise. */
int64_t spine_lib_time_check(lua_State *L, int arg, const char *fn, const char *name);
/* Checks the zone name at `arg` (none or nil: UTC); raises "<fn>: zone: ..." otherwise. */
void spine_lib_time_check_zone(lua_State *L, int arg, const char *fn);
/* Pushes the date ("YYYY-MM-DD") of `ms` in the zone named at `zone_arg` (checked). */
void spine_lib_time_push_date(lua_State *L, int64_t ms, int zone_arg, const char *fn);

#endif
