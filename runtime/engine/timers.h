/* Deadlines: a binary min-heap of timers, each embedded in its owner (a workflow), ordered by
 * when it is due. It knows nothing of clocks or workflows: the engine's clock module asks it
 * for the nearest deadline and pops what is due. O(log n) to add, move or remove a timer. */
#ifndef SPINE_TIMERS_H
#define SPINE_TIMERS_H

#include <stdint.h>

typedef struct spine_timer spine_timer;
struct spine_timer {
  int64_t at;                   /* the deadline, ms since the epoch on the engine's clock */
  int index;                    /* its place in the heap; -1 when not armed */
  void (*fire)(spine_timer *t); /* what its owner does when it is due (the heap never calls it) */
};

typedef struct spine_timers {
  spine_timer **heap;
  int n, cap;
} spine_timers;

/* An unarmed timer whose owner runs `fire` when it is due. */
void spine_timer_init(spine_timer *t, void (*fire)(spine_timer *t));
/* Whether `t` is in a heap. */
int spine_timer_armed(const spine_timer *t);

/* Arms `t` for `at`, or moves it there if it is armed already. */
void spine_timers_add(spine_timers *h, spine_timer *t, int64_t at);
/* Disarms `t`; nothing if it is not armed. */
void spine_timers_remove(spine_timers *h, spine_timer *t);
/* The nearest deadline, or NULL when none is armed. */
spine_timer *spine_timers_next(const spine_timers *h);
/* Disarms and returns the nearest timer if it is due by `now`, else NULL. */
spine_timer *spine_timers_pop_due(spine_timers *h, int64_t now);
int spine_timers_count(const spine_timers *h);
void spine_timers_free(spine_timers *h);

#endif
