/* The energy domain's intent catalog (catalog.h): expands intent_list.h once into the intents
 * and registers them in its order. An XX entry's handler is the shared one of intent_args.c
 * (check the arguments, call lifecycle.<fn>()); the business logic stays in intents/sql. */
#include "catalog.h"

#include "intent_args.h"

/* Each XX entry: its statement, prepared at registration, and the intent calling it. */
#define XX(Name, fn, Args, Result, Description)                                                    \
  static int stmt_##fn;                                                                            \
  static void prepare_##fn(void) {                                                                 \
    stmt_##fn = spine_intent_args_statement(#fn);                                                  \
  }                                                                                                \
  static int apply_##fn(spine_intent_call *c, spine_err *e) {                                      \
    return spine_intent_args_apply(c, #Name, Args, stmt_##fn, e);                                  \
  }                                                                                                \
  static const spine_intent intent_##fn = {.name = #Name,                                          \
                                           .description = Description,                             \
                                           .args = Args,                                           \
                                           .result = Result,                                       \
                                           .prepare = prepare_##fn,                                \
                                           .apply = apply_##fn};
#include "intent_list.h"
#undef XX

void spine_catalog_register(void) {
#define XX(Name, fn, Args, Result, Description) spine_intents_register(&intent_##fn);
#include "intent_list.h"
#undef XX
}
