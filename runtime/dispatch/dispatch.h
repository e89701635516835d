/* Sticky assignment of a case to a manifest's variant. A stable hash of (experiment id,
 * subject key) picks one of 10,000 buckets; variants own consecutive ranges of buckets in the
 * manifest's order, so changing weights moves only the subjects whose bucket changed owner.
 * Overrides win. Pure functions: no I/O, no randomness, no clock. */
#ifndef SPINE_DISPATCH_H
#define SPINE_DISPATCH_H

#include "manifest.h"

typedef struct spine_route {
  const spine_manifest_variant *variant; /* borrowed from the manifest */
  int bucket;                            /* 0..9999, also for overridden subjects */
  int overridden;                        /* 1 when an override chose the variant */
} spine_route;

/* The bucket of `subject` under `salt` (the experiment id, or the process name). */
int spine_dispatch_bucket(const char *salt, const char *subject);
/* Routes `subject` by manifest `m`. Never fails for a validated manifest. */
void spine_dispatch_route(const spine_manifest *m, const char *subject, spine_route *out);

#endif
