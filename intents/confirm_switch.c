/* ConfirmSwitch: the C side of lifecycle.confirm_switch() (intents/sql/1003_lifecycle_intents.sql),
 * which holds the business logic. Checks the arguments against ARGS, then calls it in the step's
 * transaction. */
#include "intent_args.h"

#define NAME "ConfirmSwitch"
#define ARGS                                                                                       \
  "contract_id: id, switch_date: date?, provider_reference: string?, expected_version: integer?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("confirm_switch");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_confirm_switch = {
    .name = NAME,
    .description =
        "Completes a pending switch: the old contract is terminated on the switch date and the new one is active from it. Returns {contract_id, state, version, new_contract_id}.",
    .args = ARGS,
    .result = SPINE_CONTRACT_CHANGED ", new_contract_id: id",
    .prepare = prepare,
    .apply = apply,
};
