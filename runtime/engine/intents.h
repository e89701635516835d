/* The registry of business intents: C handlers that turn arguments into SQL statements which
 * commit in the same transaction as the step's checkpoint (exactly once). The catalog lives in
 * intents/ (one table, intents/intent_list.h, expanded and registered by intents/catalog.c);
 * tests may register their own. */
#ifndef SPINE_INTENTS_H
#define SPINE_INTENTS_H

#include <lua.h>

#include "err.h"
#include "store.h"

typedef struct spine_intent_call {
  lua_State *L;
  int args;                /* absolute index of the arguments table */
  spine_op *op;            /* append statements here */
  const char *workflow_id; /* NULL outside a workflow (an operator's `spine intent`) */
  int seq;                 /* the step's sequence number (0 outside a workflow) */
  const char *actor;       /* "workflow:<id>" or the operator */
  const char *trace_id;
} spine_intent_call;

typedef struct spine_intent {
  const char *name;        /* "ConfirmActivation" */
  const char *description; /* one sentence */
  const char *args;        /* documentation of the arguments: "contract_id: string, ..." */
  /* The result's fields in the same form ("contract_id: id, state: draft|active"), or NULL
   * when unknown; documentation only (`spine intents --json`, types/intents.lua). */
  const char *result;
  /* Registers the statements it uses (spine_intents_statement); runs once at start. */
  void (*prepare)(void);
  /* Checks the arguments (nothing added on failure: return SPINE_EINVAL with e->field), then
   * adds its statements to call->op; the last must be a result statement. Must not raise. */
  int (*apply)(spine_intent_call *call, spine_err *e);
} spine_intent;

/* Registers an intent (the catalog's are registered by spine_intents_init). */
void spine_intents_register(const spine_intent *intent);
/* Names the function that registers the catalog (the domain's, intents/catalog.h), before
 * the first spine_intents_init. The engine itself knows no intent. */
void spine_intents_set_catalog(void (*register_all)(void));
/* Registers the catalog (once) and so prepares every intent's statements; idempotent. */
void spine_intents_init(void);
const spine_intent *spine_intents_find(const char *name);
/* The i-th intent in registration order, or NULL past the end. */
const spine_intent *spine_intents_at(int i);

/* One field of a schema string (spine_intent's `args` and `result`: "name: type, name: type?",
 * a trailing `?` marking an optional one). */
typedef struct spine_intent_field {
  char name[48];
  char type[128];
  int required;
} spine_intent_field;

/* The i-th field of `schema` (0-based): 1 and *out, or 0 past the end. */
int spine_intents_field(const char *schema, int i, spine_intent_field *out);

/* A plain statement for an intent (prepared on every connection). */
int spine_intents_statement(const char *sql);
/* A result statement: `sql` returns one row whose first column is the result as JSON; the
 * step checkpoint records it. To reject, raise with ERRCODE 'SPNF0' (not found), 'SPIT0'
 * (invalid transition), 'SPCF0' (conflict) or 'SPIA0' (invalid argument). */
int spine_intents_result_statement(const char *sql);
/* A result statement with a set form: the same intent for many workflows' steps of one batch
 * in one statement. `set_ctes` is one or more common table expressions (`name AS (...)`, comma
 * separated; data-modifying ones too) over `v`, the rows of the batch's calls: columns p1 … pN
 * (text: `sql`'s $1 … $N, cast as `sql` casts them) and `ord`; they define `r (ord, result)`, one
 * row per row of v, result as in `sql`. Calls run in ord order, each seeing the ones before, as
 * `sql` one by one would. Any failure sends the batch's calls again one by one, so a rejection
 * is its own call's. */
int spine_intents_result_set_statement(const char *sql, const char *set_ctes);
/* The form of result statement `stmt` (with `nparams` parameters) that also inserts the intent
 * step's row: the step's parameters follow the intent's (workflow id, seq, name, branch, its
 * number there, the time in ms), and it returns the recorded result. -1 if it has none. */
int spine_intents_recorded(int stmt, int nparams);

/* Argument helpers for handlers: fetch a field of the args table as text. Return NULL and
 * fill `e` (field named) when a required field is missing or has the wrong type. */
const char *spine_intent_arg_string(spine_intent_call *c, const char *field, int required,
                                    spine_err *e);
/* Integer fields: 0 and *out, or SPINE_EINVAL. Missing optional: returns 1, *out untouched. */
int spine_intent_arg_int(spine_intent_call *c, const char *field, int required, long long *out,
                         spine_err *e);

#endif
