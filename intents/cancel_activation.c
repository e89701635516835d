/* CancelActivation: the C side of lifecycle.cancel_activation()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "CancelActivation"
#define ARGS "contract_id: id, reason: string, expected_version: integer?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("cancel_activation");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_cancel_activation = {
    .name = NAME,
    .description =
        "Cancels a draft or pending_activation contract. Returns {contract_id, state, version}.",
    .args = ARGS,
    .result = SPINE_CONTRACT_CHANGED,
    .prepare = prepare,
    .apply = apply,
};
