/* What the catalog's intents share: the argument schema (one string per intent, the single
 * source of validation, `spine intents` and docs/intents.md) and the one statement that calls
 * the intent's PL/pgSQL function (intents/sql/1003_lifecycle_intents.sql).
 *
 * Schema: "name: type, name: type?, ..." — a trailing `?` marks an optional argument. Types:
 * id (non-empty text up to 100 bytes, no spaces), string (non-empty, up to 2000 bytes), integer,
 * cents (integer > 0), date (YYYY-MM-DD), time (ISO 8601, date first), deadline (a time, or a
 * duration from now with its unit, "14d": the SQL adds it to spine.now()), email, currency (ISO
 * 4217, three capitals), address ({street, postcode, city, country?}), object (a table), or an
 * enumeration a|b|c. Arguments not in the schema are refused. Result schemas (spine_intent's
 * `result`, documentation only) use the same form, and also `list` (an array of objects) and
 * single values (`state: draft`: always "draft"). */
#ifndef SPINE_INTENT_ARGS_H
#define SPINE_INTENT_ARGS_H

#include "intents.h"

/* A contract's states, and the result of an intent that changes one (contract_changed()). */
#define SPINE_CONTRACT_STATES                                                                      \
  "draft|pending_activation|active|cancelled|switch_pending|termination_requested|terminated"
#define SPINE_CONTRACT_CHANGED "contract_id: id, state: " SPINE_CONTRACT_STATES ", version: integer"

/* Checks the arguments table at `args` against `schema`. 0, or SPINE_EINVAL with e->field
 * naming the argument ("address.city") and e->msg what is wrong. Never raises. */
int spine_intent_args_check(lua_State *L, int args, const char *schema, spine_err *e);

/* Registers the result statement calling lifecycle.<fn>(args, meta); returns its id. */
int spine_intent_args_statement(const char *fn);

/* The catalog's apply: checks the arguments, then adds statement `stmt` with the arguments as
 * JSON and the call's meta (intent, actor, workflow id, step, trace id). */
int spine_intent_args_apply(spine_intent_call *c, const char *intent, const char *schema, int stmt,
                            spine_err *e);

#endif
