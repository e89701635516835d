/* ApplyManualCredit: the C side of lifecycle.apply_manual_credit()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "ApplyManualCredit"
#define ARGS                                                                                       \
  "customer_id: id, amount_cents: cents, reason: string, contract_id: id?, currency: currency?, approved_by: string?, credit_id: id?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("apply_manual_credit");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_apply_manual_credit = {
    .name = NAME,
    .description =
        "Credits a customer by hand: appends a ledger entry in integer cents. A caller-supplied credit_id makes it idempotent. Returns {credit_id, balance_cents, currency}.",
    .args = ARGS,
    .result = "credit_id: id, balance_cents: integer, currency: currency",
    .prepare = prepare,
    .apply = apply,
};
