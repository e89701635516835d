/* The energy domain's intent catalog: what spine_intents_set_catalog is given. */
#ifndef SPINE_CATALOG_H
#define SPINE_CATALOG_H

/* Registers every intent of intents/intent_list.h, in its order. */
void spine_catalog_register(void);

#endif
