/* The C tests' engine harness (engine_harness.h): an engine, its adapters and a loop, started
 * and stopped as the spine executable does, with nothing left on the loop. */
#include "engine_harness.h"

#include <uv.h>

#include "providers.h"
#include "test.h"

void test_engine_ended(void *data, const spine_wf *wf, const char *result, const char *error) {
  test_ended *e = data;
  if (spine_wf_parent(wf)) return;
  int i = e->count++;
  e->status[i] = spine_wf_status_of(wf);
  snprintf(e->result[i], sizeof e->result[i], "%s", result ? result : "");
  snprintf(e->error[i], sizeof e->error[i], "%s", error ? error : "");
}

void test_engine_run(const char *db, const char *const *playbooks, int n, const char *input,
                     test_ended *out) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_engine_opts o = {0};
  o.conninfo = db;
  o.pool = 2;
  o.virtual_clock = 1;
  o.quiet = 1;
  spine_providers_opts po = {0};
  po.quiet = 1;
  spine_providers *ps;
  spine_err e;
  if (spine_providers_new(&loop, &po, &ps, &e)) TEST_FAIL_("providers: %s", e.msg);
  o.providers = spine_providers_port(ps);
  spine_engine *eng;
  if (spine_engine_new(&loop, &o, &eng, &e)) TEST_FAIL_("engine: %s", e.msg);
  spine_engine_on_end(eng, test_engine_ended, out);
  ASSERT_EQ(spine_engine_serve(eng, &e), 0);
  for (int i = 0; i < n; i++) {
    char id[80];
    char path[512];
    snprintf(path, sizeof path, "%s/%s", getenv("SPINE_SRC"), playbooks[i]);
    if (spine_engine_start(eng, path, input, id, &e))
      TEST_FAIL_("start %s: %s", playbooks[i], e.msg);
    while (out->count <= i)
      uv_run(&loop, UV_RUN_ONCE);
  }
  /* children may still be running: let them end */
  while (spine_engine_live(eng) > 0)
    uv_run(&loop, UV_RUN_ONCE);
  spine_engine_stop(eng);
  spine_providers_free(ps); /* the engine stopped: its calls are cancelled */
  uv_run(&loop, UV_RUN_DEFAULT);
  spine_engine_free(eng);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}
