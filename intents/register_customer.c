/* RegisterCustomer: the C side of lifecycle.register_customer()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "RegisterCustomer"
#define ARGS                                                                                       \
  "name: string, email: email, phone: string?, iban: string?, address: address?, customer_id: id?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("register_customer");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_register_customer = {
    .name = NAME,
    .description =
        "Registers a customer with their contact data and postal address. A caller-supplied customer_id makes it idempotent. Returns {customer_id}.",
    .args = ARGS,
    .result = "customer_id: id",
    .prepare = prepare,
    .apply = apply,
};
