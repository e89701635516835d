/* The loop lag monitor: one repeating uv timer, measured against its own due time with
 * uv_hrtime (the loop's cached clock would hide a stall that ended in the same iteration).
 * Owns its timer handle; never blocks, never allocates. */
#include "loop_lag.h"

#include <string.h>

#define NS_PER_S 1000000000ull

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

void spine_loop_lag_note(spine_loop_lag *lag, uint64_t now_ns, double lag_s) {
  uint64_t second = now_ns / NS_PER_S;
  int i = (int)(second % SPINE_LOOP_LAG_WINDOW);
  if (lag->slots[i].second != second) {
    lag->slots[i].second = second;
    lag->slots[i].max_s = 0;
  }
  if (lag_s > lag->slots[i].max_s) lag->slots[i].max_s = lag_s;
  lag->last_s = lag_s;
}

double spine_loop_lag_last(const spine_loop_lag *lag) {
  return lag->last_s;
}

double spine_loop_lag_max(const spine_loop_lag *lag, uint64_t now_ns) {
  uint64_t second = now_ns / NS_PER_S;
  double max = 0;
  for (int i = 0; i < SPINE_LOOP_LAG_WINDOW; i++)
    if (lag->slots[i].second + SPINE_LOOP_LAG_WINDOW > second && lag->slots[i].max_s > max)
      max = lag->slots[i].max_s;
  return max;
}

/* Runs first in the iteration after a stall: libuv runs due timers before it polls. */
static void on_tick(uv_timer_t *t) {
  spine_loop_lag *lag = container_of(t, spine_loop_lag, timer);
  uint64_t now = uv_hrtime();
  double late = now > lag->due_ns ? (double)(now - lag->due_ns) / (double)NS_PER_S : 0;
  spine_loop_lag_note(lag, now, late);
  lag->due_ns = now + lag->interval_ns;
}

int spine_loop_lag_start(uv_loop_t *loop, spine_loop_lag *lag, uint64_t interval_ms) {
  memset(lag, 0, sizeof *lag);
  int rc = uv_timer_init(loop, &lag->timer);
  if (rc) return rc;
  lag->interval_ns = interval_ms * 1000000u;
  uv_update_time(loop); /* the timer is due interval_ms after now, not after the cached time */
  lag->due_ns = uv_hrtime() + lag->interval_ns;
  return uv_timer_start(&lag->timer, on_tick, interval_ms, interval_ms);
}

static void on_close(uv_handle_t *h) {
  spine_loop_lag *lag = container_of(h, spine_loop_lag, timer);
  if (lag->closed) lag->closed(lag->closed_data);
}

void spine_loop_lag_stop(spine_loop_lag *lag, void (*closed)(void *data), void *data) {
  lag->closed = closed;
  lag->closed_data = data;
  uv_close((uv_handle_t *)&lag->timer, on_close);
}
