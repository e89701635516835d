/* GetContract: the C side of lifecycle.get_contract() (intents/sql/1003_lifecycle_intents.sql),
 * which holds the business logic. Checks the arguments against ARGS, then calls it in the step's
 * transaction. */
#include "intent_args.h"

#define NAME "GetContract"
#define ARGS "contract_id: id, as_of: time?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("get_contract");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_get_contract = {
    .name = NAME,
    .description =
        "Reads a contract; with as_of, the contract as it was at that time (from the history). Returns the contract record.",
    .args = ARGS,
    .result =
        "customer_id: id, contract_id: id, provider: id, tariff: string, meter_point_id: id?, "
        "state: " SPINE_CONTRACT_STATES ", requested_start: date?, activation_date: date?, "
        "provider_reference: string?, cancel_reason: string?, pending_switch: object?, "
        "switched_from: id?, switched_to: id?, termination_reason: string?, "
        "termination_requested_date: date?, termination_date: date?, version: integer, "
        "created_at: time, updated_at: time, as_of: time?",
    .prepare = prepare,
    .apply = apply,
};
