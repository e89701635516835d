/* The engine in one process on a real database, under the sanitizers: playbooks run to their
 * end on the virtual clock, failures compensate, errors name file and line, and hostile
 * playbooks each fail alone. */
#include <uv.h>

#include "engine_harness.h"
#include "http_server.h"
#include "providers.h"
#include "test.h"

/* What every playbook here is started with (durable_tour.lua's input). */
#define INPUT "{\"customer\":\"c\"}"

TEST_IMPL(engine_runs_playbooks) {
  const char *db = test_newdb("engine_runs_playbooks");
  static const char *const playbooks[] = {"tests/playbooks/durable_tour.lua",
                                          "tests/playbooks/saga.lua", "tests/playbooks/parent.lua"};
  test_ended out = {0};
  test_engine_run(db, playbooks, 3, INPUT, &out);
  ASSERT_EQ(out.count, 3);
  ASSERT_EQ(out.status[0], SPINE_WF_COMPLETED);
  ASSERT_STR_EQ(out.result[0], "{\"recorded\":7,\"slept_days\":14,\"tries\":3}");
  ASSERT_EQ(out.status[1], SPINE_WF_COMPENSATED);
  ASSERT_STR_CONTAINS(out.error[1], "\"code\":\"no_capacity\"");
  ASSERT_EQ(out.status[2], SPINE_WF_COMPLETED);
  ASSERT_STR_EQ(out.result[2], "{\"child\":true,\"started\":true}");
  return 0;
}

/* ctx.parallel's branches, timers, cancellations and undos, nested, with hostile branches,
 * under the sanitizers (tests/playbooks/parallel_tour.lua). */
TEST_IMPL(engine_runs_parallels) {
  const char *db = test_newdb("engine_runs_parallels");
  static const char *const playbooks[] = {"tests/playbooks/parallel_tour.lua"};
  test_ended out = {0};
  test_engine_run(db, playbooks, 1, INPUT, &out);
  ASSERT_EQ(out.count, 1);
  ASSERT_EQ(out.status[0], SPINE_WF_COMPLETED);
  ASSERT_STR_EQ(out.result[0], "{\"a\":3,\"any\":\"2:second\",\"b\":true,\"children\":true,"
                               "\"hostile\":"
                               "\"all_branches_failed\",\"race\":\"fast\",\"timeout\":"
                               "\"timeout\",\"too_wide\":\"parallel_limit\",\"undone\":"
                               "\"y_failed\"}");
  return 0;
}

TEST_IMPL(engine_contains_bad_playbooks) {
  const char *db = test_newdb("engine_contains_bad_playbooks");
  static const char *const playbooks[] = {
      "tests/playbooks/bad_loop.lua", "tests/playbooks/bad_memory.lua",
      "tests/playbooks/bad_runtime.lua", "tests/playbooks/durable_tour.lua"};
  test_ended out = {0};
  test_engine_run(db, playbooks, 4, INPUT, &out);
  ASSERT_EQ(out.status[0], SPINE_WF_FAILED);
  ASSERT_STR_CONTAINS(out.error[0], "instruction_budget");
  ASSERT_STR_CONTAINS(out.error[0], "bad_loop.lua:");
  ASSERT_EQ(out.status[1], SPINE_WF_FAILED);
  ASSERT_STR_CONTAINS(out.error[1], "memory_limit");
  ASSERT_EQ(out.status[2], SPINE_WF_FAILED);
  ASSERT_STR_CONTAINS(out.error[2], "bad_runtime.lua:6: attempt to index");
  /* and the engine still runs a good one afterwards */
  ASSERT_EQ(out.status[3], SPINE_WF_COMPLETED);
  return 0;
}

/* Each hostile playbook (tests/playbooks/hostile_*.lua) ends failed with the limit or error it
 * deserves, in the one engine, which then runs a well-behaved one that makes 200 MB of garbage
 * in all to its end. */
TEST_IMPL(engine_survives_hostile_playbooks) {
  const char *db = test_newdb("engine_survives_hostile_playbooks");
  static const struct {
    const char *playbook, *error[3];
  } cases[] = {
      {"hostile_rep_empty", {"\"code\":\"instruction_budget\"", "hostile_rep_empty.lua:6"}},
      {"hostile_rep_huge", {"\"code\":\"memory_limit\"", "more than 64 MB"}},
      {"hostile_move", {"\"code\":\"instruction_budget\"", "hostile_move.lua:6"}},
      {"hostile_find", {"\"code\":\"instruction_budget\"", "hostile_find.lua:7"}},
      {"hostile_match", {"\"code\":\"instruction_budget\""}},
      {"hostile_gmatch", {"\"code\":\"instruction_budget\""}},
      {"hostile_gsub", {"\"code\":\"instruction_budget\""}},
      {"hostile_len", {"\"code\":\"instruction_budget\"", "hostile_len.lua:17"}},
      {"hostile_error",
       {"\"code\":\"hostile_error\"", "\"kind\":\"business\"", "\"message\":\"raised raw\""}},
      {"hostile_error_late",
       {"\"code\":\"late_hostile_error\"", "\"compensation_error\":{", "\"kind\":\"business\""}},
      {"hostile_collect", {"\"code\":\"memory_limit\"", "hostile_collect.lua:10"}},
      {"hostile_memory",
       {"\"code\":\"memory_limit\"", "\"kind\":\"limit\"", "hostile_memory.lua:11"}},
  };
  enum { N = sizeof cases / sizeof cases[0] };
  const char *playbooks[N + 1];
  char paths[N + 1][128];
  for (int i = 0; i <= N; i++) {
    snprintf(paths[i], sizeof paths[i], "tests/playbooks/%s.lua",
             i < N ? cases[i].playbook : "churn");
    playbooks[i] = paths[i];
  }
  test_ended out = {0};
  test_engine_run(db, playbooks, N + 1, INPUT, &out);
  ASSERT_EQ(out.count, N + 1);
  for (int i = 0; i < N; i++) {
    if (out.status[i] != SPINE_WF_FAILED)
      TEST_FAIL_("%s ended %d: %s", cases[i].playbook, out.status[i], out.error[i]);
    for (int j = 0; j < 3 && cases[i].error[j]; j++)
      if (!strstr(out.error[i], cases[i].error[j]))
        TEST_FAIL_("%s: no %s in %s", cases[i].playbook, cases[i].error[j], out.error[i]);
  }
  ASSERT_EQ(out.status[N], SPINE_WF_COMPLETED);
  ASSERT_STR_EQ(out.result[N], "{\"bytes\":200000530}");
  return 0;
}

/* ---- the provider port ---- */

typedef struct hung {
  int hits;
  spine_http_server_exchange *x; /* the request held unanswered, NULL once aborted */
  int closed;
} hung;

static void on_hung_abort(void *data) {
  ((hung *)data)->x = NULL;
}

static void on_hang(void *data, spine_http_server_exchange *x) {
  hung *h = data;
  h->hits++;
  h->x = x;
  spine_http_server_on_abort(x, on_hung_abort, h);
}

static void on_server_closed(void *data) {
  ((hung *)data)->closed = 1;
}

/* The engine reaches the adapters only through the port it was given. A provider call in flight
 * when it stops (tests/providers/acme.lua's hang, on a server that never answers) is cancelled
 * by the stop itself: the registry has no call left before its owner frees it, the workflow
 * never hears of it, and the loop ends. */
TEST_IMPL(engine_stop_cancels_provider_calls) {
  const char *db = test_newdb("engine_stop_cancels_provider_calls");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_err e;
  spine_http_server_opts so = {0};
  spine_http_server *srv;
  ASSERT_EQ(spine_http_server_start(&loop, &so, &srv, &e), 0);
  hung h = {0};
  ASSERT_EQ(spine_http_server_route(srv, "GET", "/hang", on_hang, &h), 0);
  spine_providers_opts po = {0};
  po.dir = "tests/providers";
  po.quiet = 1;
  spine_providers *ps;
  if (spine_providers_new(&loop, &po, &ps, &e)) TEST_FAIL_("providers: %s", e.msg);
  spine_engine_opts o = {0};
  o.conninfo = db;
  o.pool = 2;
  o.virtual_clock = 1;
  o.quiet = 1;
  o.providers = spine_providers_port(ps);
  spine_engine *eng;
  if (spine_engine_new(&loop, &o, &eng, &e)) TEST_FAIL_("engine: %s", e.msg);
  test_ended out = {0};
  spine_engine_on_end(eng, test_engine_ended, &out);
  ASSERT_EQ(spine_engine_serve(eng, &e), 0);
  char path[512], input[256], id[80];
  snprintf(path, sizeof path, "%s/tests/playbooks/provider_undo.lua", getenv("SPINE_SRC"));
  snprintf(input, sizeof input,
           "{\"provider\":\"acme\",\"submit\":\"hang\",\"undo\":\"hang\","
           "\"args\":{\"base\":\"http://127.0.0.1:%d\"}}",
           spine_http_server_port(srv));
  if (spine_engine_start(eng, path, input, id, &e)) TEST_FAIL_("start: %s", e.msg);
  while (h.hits == 0)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(spine_providers_running(ps), 1);
  spine_engine_stop(eng);
  ASSERT_EQ(spine_providers_running(ps), 0); /* cancelled by the stop, through the port */
  spine_providers_free(ps);
  spine_http_server_close(srv, on_server_closed, &h);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  spine_engine_free(eng);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  ASSERT_EQ(h.closed, 1);
  ASSERT_EQ(out.count, 0); /* released to run again, not ended */
  return 0;
}
