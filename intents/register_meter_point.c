/* RegisterMeterPoint: the C side of lifecycle.register_meter_point()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "RegisterMeterPoint"
#define ARGS                                                                                       \
  "customer_id: id, meter_id: id, commodity: electricity|gas, address: address?, meter_point_id: id?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("register_meter_point");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_register_meter_point = {
    .name = NAME,
    .description =
        "Registers a customer's meter point (a meter is registered to one customer only; the same arguments again return the same meter point). Returns {meter_point_id}.",
    .args = ARGS,
    .result = "meter_point_id: id",
    .prepare = prepare,
    .apply = apply,
};
