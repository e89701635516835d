/* BenchRecord, an intent with no business meaning: one narrow row in spine.bench_effects a
 * call, which nobody else writes. spine-bench measures intent_steps_per_s with it, and the
 * engine's tests check exactly-once on it. Tools and test builds register it and its table;
 * the product does neither. */
#ifndef SPINE_BENCH_RECORD_H
#define SPINE_BENCH_RECORD_H

#include "migrate.h"

/* Registers the intent (from a catalog function, or before the first engine). */
void spine_bench_record_register(void);

/* Its table (bench.sql, compiled in by scripts/embed.cmake): hand it to spine_migrate_add_set
 * before the first connection. Ends with {NULL, NULL}. */
extern const spine_migration spine_bench_record_migrations[];

#endif
