/* The intent catalog and applying one intent as an operator, shared by `spine intents --json`,
 * `spine intent NAME --args --actor` and GET /v1/intents, POST /v1/intents/{name}: the handler
 * of the engine's registry builds the statements, spine_store_exec runs them in one
 * transaction on a blocking connection (the CLI's, or a worker thread's of `spine serve`). */
#ifndef SPINE_API_INTENTS_H
#define SPINE_API_INTENTS_H

#include <libpq-fe.h>

#include "buf.h"
#include "err.h"

/* Appends {"<items_key>": [{name, description, schema, args: [{name, type, required}],
 * result?}]} (the registry must be initialised: spine_intents_init). */
void spine_api_intents_catalog(const char *items_key, spine_buf *out);

/* Applies intent `name` with `args` (a JSON object; NULL: {}) as `actor`, under trace id
 * `trace_id` (32 hex characters; caller makes it). Appends the intent's result (JSON) to out.
 * 0; SPINE_ENOTFOUND (field "name": no such intent); SPINE_EINVAL (field "args", or the
 * argument at fault); the intent's refusals (SPINE_ENOTFOUND, SPINE_ETRANSITION,
 * SPINE_ECONFLICT, SPINE_EINVAL with its field); or SPINE_EDB. */
int spine_api_intents_apply(PGconn *c, const char *name, const char *args, const char *actor,
                            const char *trace_id, spine_buf *out, spine_err *e);

#endif
