/* The energy domain's intent catalog (catalog.h): intent_list.h, one registration each. */
#include "catalog.h"

#include "intents.h"

#define XX(name) extern const spine_intent spine_intent_##name;
#include "intent_list.h"
#undef XX

void spine_catalog_register(void) {
#define XX(name) spine_intents_register(&spine_intent_##name);
#include "intent_list.h"
#undef XX
}
