/* The energy domain's intent catalog and SQL migrations: what the executable hands to the
 * engine's intent registry (spine_intents_set_catalog) and to the migrator
 * (spine_migrate_add_set) before anything migrates or runs. */
#ifndef SPINE_CATALOG_H
#define SPINE_CATALOG_H

#include "migrate.h"

/* Registers every intent of intents/intent_list.h, in its order. */
void spine_catalog_register(void);

/* The domain's migrations (intents/sql, compiled in), ended by {NULL, NULL}. */
extern const spine_migration spine_catalog_migrations[];

#endif
