/* The loop lag monitor: the max looks back over whole seconds of the window and forgets what
 * is older; a loop held by a blocking callback is measured late by at least the stall beyond
 * the tick, and the monitor closes cleanly. */
#include "loop_lag.h"

#include "test.h"

#define S 1000000000ull

TEST_IMPL(loop_lag_window) {
  spine_loop_lag lag;
  memset(&lag, 0, sizeof lag);
  uint64_t t = 1000 * S; /* an uptime long past the window */
  ASSERT(spine_loop_lag_max(&lag, t) == 0);
  spine_loop_lag_note(&lag, t, 0.2);
  spine_loop_lag_note(&lag, t + S / 2, 0.1); /* the same second: its max stays */
  ASSERT(spine_loop_lag_max(&lag, t + S / 2) == 0.2);
  ASSERT(spine_loop_lag_last(&lag) == 0.1);
  spine_loop_lag_note(&lag, t + S, 1.5);
  ASSERT(spine_loop_lag_max(&lag, t + S) == 1.5);
  /* second t+1 is within the window until t+11 */
  ASSERT(spine_loop_lag_max(&lag, t + 10 * S + S - 1) == 1.5);
  ASSERT(spine_loop_lag_max(&lag, t + 11 * S) == 0);
  /* a slot coming round again starts afresh */
  spine_loop_lag_note(&lag, t + 11 * S, 0.3);
  ASSERT(spine_loop_lag_max(&lag, t + 11 * S) == 0.3);
  ASSERT(spine_loop_lag_last(&lag) == 0.3);
  return 0;
}

typedef struct stall {
  uv_timer_t timer;
  spine_loop_lag *lag;
  int stalled, closed;
} stall;

static void on_closed(void *data) {
  (*(int *)data)++;
}

static void on_stall(uv_timer_t *t) {
  stall *s = t->data;
  if (!s->stalled) {
    s->stalled = 1;
    uv_sleep(400); /* holds the loop, as a long resume does */
    return;
  }
  /* a later turn: the lag timer ran since (due 100 ms after start, run after the stall) */
  if (spine_loop_lag_max(s->lag, uv_hrtime()) == 0) return;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, NULL);
  spine_loop_lag_stop(s->lag, on_closed, &s->closed);
}

TEST_IMPL(loop_lag_measures_a_stall) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_loop_lag lag;
  ASSERT_EQ(spine_loop_lag_start(&loop, &lag, 100), 0);
  stall s = {.lag = &lag};
  s.timer.data = &s;
  ASSERT_EQ(uv_timer_init(&loop, &s.timer), 0);
  ASSERT_EQ(uv_timer_start(&s.timer, on_stall, 0, 10), 0);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(s.closed, 1);
  /* due at 100 ms, run after the 400 ms stall: at least 300 ms late */
  ASSERT(spine_loop_lag_max(&lag, uv_hrtime()) >= 0.3);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return 0;
}
