/* An engine in one process for the C tests: runs playbooks to their end on the virtual clock,
 * with the adapters of providers/, and records how each top-level workflow ended. Shared by the
 * runtime's runner and the domain's (tests/domain). */
#ifndef SPINE_TEST_ENGINE_HARNESS_H
#define SPINE_TEST_ENGINE_HARNESS_H

#include "engine.h"

typedef struct test_ended {
  int count;
  spine_wf_status status[16];
  char error[16][1024];
  char result[16][2048];
} test_ended;

/* A spine_engine_end_cb: records a top-level workflow's end in the test_ended `data`. */
void test_engine_ended(void *data, const spine_wf *wf, const char *result, const char *error);

/* Runs the playbooks (paths relative to the source tree) one after the other, each with
 * `input`, in one engine on database `db`; then lets children end and stops it. */
void test_engine_run(const char *db, const char *const *playbooks, int n, const char *input,
                     test_ended *out);

#endif
