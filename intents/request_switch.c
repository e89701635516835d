/* RequestSwitch: the C side of lifecycle.request_switch() (intents/sql/1003_lifecycle_intents.sql),
 * which holds the business logic. Checks the arguments against ARGS, then calls it in the step's
 * transaction. */
#include "intent_args.h"

#define NAME "RequestSwitch"
#define ARGS                                                                                       \
  "contract_id: id, tariff: string, provider: id?, switch_date: date?, new_contract_id: id?, expected_version: integer?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("request_switch");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_request_switch = {
    .name = NAME,
    .description =
        "Starts switching an active contract to another tariff (and provider): the contract goes to switch_pending. Returns {contract_id, state, version, new_contract_id}.",
    .args = ARGS,
    .result = SPINE_CONTRACT_CHANGED ", new_contract_id: id",
    .prepare = prepare,
    .apply = apply,
};
