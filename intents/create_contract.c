/* CreateContract: the C side of lifecycle.create_contract()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "CreateContract"
#define ARGS "customer_id: id, provider: id, tariff: string, meter_point_id: id?, contract_id: id?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("create_contract");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_create_contract = {
    .name = NAME,
    .description =
        "Creates a draft contract of a customer with a provider and tariff. A caller-supplied contract_id makes it idempotent. Returns {contract_id, state}.",
    .args = ARGS,
    .result = "contract_id: id, state: draft",
    .prepare = prepare,
    .apply = apply,
};
