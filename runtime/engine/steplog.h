/* Replay against the step log: a recorded step must match what the playbook asks for now, by
 * kind and name; a mismatch is non-determinism and the workflow goes stuck, nothing overwritten. */
#ifndef SPINE_STEPLOG_H
#define SPINE_STEPLOG_H

#include <lua.h>

#include "workflow.h"

/* Re-keys a decoded log (array of step tables, on top of L) by seq, in place; returns the
 * highest seq (0 for none). */
int spine_steplog_index(lua_State *L);

/* Step `seq`: 0 when not recorded (run it live); 1 with its entry table {kind, name, status,
 * result, error, attempt, wake_at} pushed when it matches; -1 on a mismatch, with the workflow
 * made stuck and an error table pushed for the caller to raise. */
int spine_steplog_expect(spine_wf *wf, lua_State *L, int seq, const char *kind, const char *name);

/* Pushes the recorded entry of `seq` (or nil) without checking it. */
void spine_steplog_peek(spine_wf *wf, lua_State *L, int seq);

#endif
