/* The metrics registry: a grown array of metrics, rendered family by family. Registration
 * allocates; updating a value never does. Never calls a read callback outside rendering. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

struct spine_metric {
  spine_metric_type type;
  char *name; /* with labels, as registered */
  size_t family_len;
  char *help;
  double value;
  double (*read)(void *data);
  void *data;
};

struct spine_metrics {
  spine_metric **items;
  int n, cap;
};

spine_metrics *spine_metrics_new(void) {
  return calloc(1, sizeof(spine_metrics));
}

void spine_metrics_free(spine_metrics *m) {
  if (!m) return;
  for (int i = 0; i < m->n; i++) {
    free(m->items[i]->name);
    free(m->items[i]->help);
    free(m->items[i]);
  }
  free(m->items);
  free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* then optionally {...} ending the name. */
static size_t family_length(const char *name) {
  size_t i = 0;
  for (; name[i] && name[i] != '{'; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
             (i > 0 && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  if (name[i] == '{' && name[strlen(name) - 1] != '}') return 0;
  return i;
}

spine_metric *spine_metrics_find(spine_metrics *m, const char *name) {
  for (int i = 0; i < m->n; i++)
    if (!strcmp(m->items[i]->name, name)) return m->items[i];
  return NULL;
}

static spine_metric *add(spine_metrics *m, spine_metric_type type, const char *name,
                         const char *help) {
  size_t fam = family_length(name);
  if (!fam || spine_metrics_find(m, name)) return NULL;
  if (m->n == m->cap) {
    int cap = m->cap ? 2 * m->cap : 16;
    spine_metric **items = realloc(m->items, (size_t)cap * sizeof *items);
    if (!items) return NULL;
    m->items = items;
    m->cap = cap;
  }
  spine_metric *x = calloc(1, sizeof *x);
  if (!x) return NULL;
  x->type = type;
  x->family_len = fam;
  x->name = strdup(name);
  x->help = strdup(help ? help : "");
  if (!x->name || !x->help) {
    free(x->name);
    free(x->help);
    free(x);
    return NULL;
  }
  m->items[m->n++] = x;
  return x;
}

spine_metric *spine_metrics_add(spine_metrics *m, spine_metric_type type, const char *name,
                                const char *help) {
  return add(m, type, name, help);
}

int spine_metrics_add_fn(spine_metrics *m, spine_metric_type type, const char *name,
                         const char *help, double (*read)(void *data), void *data) {
  spine_metric *x = add(m, type, name, help);
  if (!x) return SPINE_EINVAL;
  x->read = read;
  x->data = data;
  return 0;
}

void spine_metrics_inc(spine_metric *x, double by) {
  if (x) x->value += by;
}

void spine_metrics_set(spine_metric *x, double value) {
  if (x) x->value = value;
}

double spine_metrics_value(const spine_metric *x) {
  return x->read ? x->read(x->data) : x->value;
}

static int same_family(const spine_metric *a, const spine_metric *b) {
  return a->family_len == b->family_len && !memcmp(a->name, b->name, a->family_len);
}

int spine_metrics_render(spine_metrics *m, spine_buf *out) {
  int rc = 0;
  for (int i = 0; i < m->n && !rc; i++) {
    spine_metric *x = m->items[i];
    int seen = 0;
    for (int j = 0; j < i && !seen; j++)
      seen = same_family(m->items[j], x);
    if (seen) continue; /* rendered with the first of its family */
    int fam = (int)x->family_len;
    rc = spine_buf_printf(out, "# HELP %.*s %s\n# TYPE %.*s %s\n", fam, x->name, x->help, fam,
                          x->name, x->type == SPINE_METRIC_COUNTER ? "counter" : "gauge");
    for (int j = i; j < m->n && !rc; j++)
      if (same_family(m->items[j], x))
        rc = spine_buf_printf(out, "%s %.17g\n", m->items[j]->name,
                              spine_metrics_value(m->items[j]));
  }
  return rc;
}
