/* ForgetCustomer: the C side of lifecycle.forget_customer()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "ForgetCustomer"
#define ARGS "customer_id: id, reason: string"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("forget_customer");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_forget_customer = {
    .name = NAME,
    .description =
        "GDPR erasure: pseudonymises the customer's personal data everywhere it is stored (history and outbox payloads, tasks, the workflows that acted for them), keeps the ledger and amounts, and records that it happened. Returns {customer_id, forgotten_at}.",
    .args = ARGS,
    .result = "customer_id: id, forgotten_at: time",
    .prepare = prepare,
    .apply = apply,
};
