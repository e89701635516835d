/* RegisterProvider: the C side of lifecycle.register_provider()
 * (intents/sql/1003_lifecycle_intents.sql), which holds the business logic. Checks the arguments
 * against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "RegisterProvider"
#define ARGS "provider: id, display_name: string?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("register_provider");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_register_provider = {
    .name = NAME,
    .description =
        "Registers a provider (reference data, as named in providers/providers.json) so contracts can name it; registering it again updates its display name. Returns {provider}.",
    .args = ARGS,
    .result = "provider: id",
    .prepare = prepare,
    .apply = apply,
};
