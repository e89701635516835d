/* RequestTermination: the C side of lifecycle.request_termination()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "RequestTermination"
#define ARGS "contract_id: id, reason: string, requested_date: date?, expected_version: integer?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("request_termination");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_request_termination = {
    .name = NAME,
    .description =
        "Asks to terminate an active (or switch_pending) contract: it goes to termination_requested. Returns {contract_id, state, version}.",
    .args = ARGS,
    .result = SPINE_CONTRACT_CHANGED,
    .prepare = prepare,
    .apply = apply,
};
