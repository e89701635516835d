/* The report of `spine experiments` and GET /v1/experiments: per process, experiment and
 * variant, what became of the cases the dispatcher routed: counts by status, median and p95 time
 * to completion, the success rate with its 95 % Wilson interval, and its difference to the
 * control's (a two-proportion z-test); the same for each business outcome the playbooks named
 * (ctx.outcome). Blocking libpq: the CLI, or a worker thread. */
#ifndef SPINE_API_EXPERIMENTS_H
#define SPINE_API_EXPERIMENTS_H

#include <libpq-fe.h>

#include "buf.h"
#include "err.h"

/* Appends {"<items_key>": [{process, experiment, control, variants: [{variant, started,
 * completed, failed, compensated, cancelled, paused, stuck, active, finished, duration_ms:
 * {median, p95}, success_rate, ci95, vs_control, outcomes: [{outcome, count, share, ci95,
 * vs_control}]}]}] (the object left open: the caller closes it
 * with '}', after members of its own), for cases of `process` created since `since` (ISO 8601;
 * each NULL: all). 0, SPINE_EINVAL (field since), or SPINE_EDB. */
int spine_api_experiments_report(PGconn *c, const char *process, const char *since,
                                 const char *items_key, spine_buf *out, spine_err *e);

#endif
