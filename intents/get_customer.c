/* GetCustomer: the C side of lifecycle.get_customer() (intents/sql/1003_lifecycle_intents.sql),
 * which holds the business logic. Checks the arguments against ARGS, then calls it in the step's
 * transaction. */
#include "intent_args.h"

#define NAME "GetCustomer"
#define ARGS "customer_id: id, as_of: time?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("get_customer");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_get_customer = {
    .name = NAME,
    .description =
        "Reads a customer with their contracts and ledger balances; with as_of, as they were at that time. Returns the customer record.",
    .args = ARGS,
    .result = "customer_id: id, name: string, email: string, phone: string?, iban: string?, "
              "address: address?, forgotten_at: time?, forgotten_reason: string?, "
              "version: integer, created_at: time, updated_at: time, contracts: list, "
              "balances: object, balance_cents: integer, as_of: time?",
    .prepare = prepare,
    .apply = apply,
};
