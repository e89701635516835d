/* The actions an adapter's webhook asks for: signals to a workflow or a contract, or new
 * cases. Validates the shape the adapter returned and writes it as canonical JSON. */
#ifndef SPINE_WEBHOOK_ACTIONS_H
#define SPINE_WEBHOOK_ACTIONS_H

#include <lua.h>

#include "buf.h"
#include "err.h"

/* Pops the value on top of L (nil, one action, or a list of them) and appends to `out` the
 * JSON array of actions, each
 *   {"signal": name, "workflow_id" | "contract_id": id, "payload": {...}}  or
 *   {"start": process, "input": {...}, "idempotency_key"?: k}
 * (a missing payload or input is {}; unknown fields are refused; so is a NUL character in any
 * string, which PostgreSQL's jsonb cannot hold). Returns 0, or SPINE_EINVAL
 * with e->msg "`where`: webhook: action 2: ..." and nothing appended. */
int spine_webhook_actions_encode(lua_State *L, const char *where, spine_buf *out, spine_err *e);

#endif
