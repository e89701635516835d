/* How late the event loop turns: a repeating timer notes, each time it fires, how much later
 * than due it ran (the loop lag). Keeps the last lag and the largest per second of the last
 * SPINE_LOOP_LAG_WINDOW seconds, for /metrics and /healthz. Never allocates. */
#ifndef SPINE_LOOP_LAG_H
#define SPINE_LOOP_LAG_H

#include <stdint.h>
#include <uv.h>

#define SPINE_LOOP_LAG_WINDOW 10 /* seconds the max looks back */

/* Embedded by its owner (as a libuv handle is): lives until spine_loop_lag_stop's callback. */
typedef struct spine_loop_lag {
  uv_timer_t timer;
  uint64_t interval_ns;
  uint64_t due_ns; /* when the timer should fire next (uv_hrtime) */
  double last_s;   /* the last lag measured */
  /* max lag noted in each of the last seconds: slot second % WINDOW, valid while `second`
   * is within the window */
  struct {
    uint64_t second;
    double max_s;
  } slots[SPINE_LOOP_LAG_WINDOW];
  void (*closed)(void *data);
  void *closed_data;
} spine_loop_lag;

/* Starts measuring every `interval_ms`. Returns 0 or a UV_E* code. */
int spine_loop_lag_start(uv_loop_t *loop, spine_loop_lag *lag, uint64_t interval_ms);
/* Stops and closes the timer; `closed(data)` (may be NULL) runs once it is closed. */
void spine_loop_lag_stop(spine_loop_lag *lag, void (*closed)(void *data), void *data);

/* Notes a lag of `lag_s` seconds measured at `now_ns` (uv_hrtime): the timer does this; tests
 * call it directly. */
void spine_loop_lag_note(spine_loop_lag *lag, uint64_t now_ns, double lag_s);
/* The last lag measured, in seconds (0 before the first). */
double spine_loop_lag_last(const spine_loop_lag *lag);
/* The largest lag noted within the window before `now_ns`, in seconds. */
double spine_loop_lag_max(const spine_loop_lag *lag, uint64_t now_ns);

#endif
