/* The heap of deadlines (timers.h): an array of pointers to the timers, each of which keeps its
 * own index, so that a timer is removed or moved without a search. */
#include "timers.h"

#include <stdlib.h>

#include "buf.h"

void spine_timer_init(spine_timer *t, void (*fire)(spine_timer *t)) {
  t->at = 0;
  t->fire = fire;
  t->index = -1;
}

int spine_timer_armed(const spine_timer *t) {
  return t->index >= 0;
}

static void swap(spine_timers *h, int i, int j) {
  spine_timer *t = h->heap[i];
  h->heap[i] = h->heap[j];
  h->heap[j] = t;
  h->heap[i]->index = i;
  h->heap[j]->index = j;
}

static void up(spine_timers *h, int i) {
  while (i > 0) {
    int p = (i - 1) / 2;
    if (h->heap[p]->at <= h->heap[i]->at) break;
    swap(h, i, p);
    i = p;
  }
}

static void down(spine_timers *h, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->n && h->heap[l]->at < h->heap[m]->at) m = l;
    if (r < h->n && h->heap[r]->at < h->heap[m]->at) m = r;
    if (m == i) return;
    swap(h, i, m);
    i = m;
  }
}

void spine_timers_remove(spine_timers *h, spine_timer *t) {
  int i = t->index;
  if (i < 0) return;
  t->index = -1;
  h->n--;
  if (i == h->n) return;
  h->heap[i] = h->heap[h->n];
  h->heap[i]->index = i;
  up(h, i);
  down(h, h->heap[i]->index);
}

void spine_timers_add(spine_timers *h, spine_timer *t, int64_t at) {
  spine_timers_remove(h, t);
  t->at = at;
  h->heap = spine_buf_grow_array(h->heap, &h->cap, h->n + 1, sizeof *h->heap);
  h->heap[h->n] = t;
  t->index = h->n++;
  up(h, t->index);
}

spine_timer *spine_timers_next(const spine_timers *h) {
  return h->n ? h->heap[0] : NULL;
}

spine_timer *spine_timers_pop_due(spine_timers *h, int64_t now) {
  if (!h->n || h->heap[0]->at > now) return NULL;
  spine_timer *t = h->heap[0];
  spine_timers_remove(h, t);
  return t;
}

int spine_timers_count(const spine_timers *h) {
  return h->n;
}

void spine_timers_free(spine_timers *h) {
  free(h->heap);
  h->heap = NULL;
  h->n = h->cap = 0;
}
