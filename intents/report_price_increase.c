/* ReportPriceIncrease: the C side of lifecycle.report_price_increase()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "ReportPriceIncrease"
#define ARGS                                                                                       \
  "contract_id: id, new_price_cents: cents, unit: string, effective_date: date, notice_date: date"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("report_price_increase");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_report_price_increase = {
    .name = NAME,
    .description =
        "Records a provider's price increase on an active contract; the customer may terminate until the day before it takes effect. Returns {price_change_id, contract_id, termination_deadline}.",
    .args = ARGS,
    .result = "price_change_id: id, contract_id: id, termination_deadline: date",
    .prepare = prepare,
    .apply = apply,
};
