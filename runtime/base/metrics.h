/* A registry of counters and gauges rendered as Prometheus text (format 0.0.4) for /metrics.
 * Modules register once, at setup; a metric is either a value the registry owns (add/set) or
 * a callback that reads a value the module keeps. Owns the names and help texts it copies. */
#ifndef SPINE_METRICS_H
#define SPINE_METRICS_H

#include "buf.h"
#include "err.h"

typedef struct spine_metrics spine_metrics;
typedef struct spine_metric spine_metric;

typedef enum { SPINE_METRIC_COUNTER, SPINE_METRIC_GAUGE } spine_metric_type;

/* Returns a new registry, or NULL without memory; free with spine_metrics_free(). */
spine_metrics *spine_metrics_new(void);
void spine_metrics_free(spine_metrics *m);

/* Registers a metric the registry owns, starting at 0. `name` is a Prometheus name, with an
 * optional label set (`spine_http_requests_total{code="200"}`): metrics sharing the name
 * before `{` are one family, with one HELP and TYPE. Returns the metric (borrowed, valid
 * until spine_metrics_free), or NULL (bad name, no memory, or the same name twice). */
spine_metric *spine_metrics_add(spine_metrics *m, spine_metric_type type, const char *name,
                                const char *help);
/* Registers a metric whose value `read(data)` returns when rendered. Returns 0 or SPINE_E*. */
int spine_metrics_add_fn(spine_metrics *m, spine_metric_type type, const char *name,
                         const char *help, double (*read)(void *data), void *data);
/* The metric of that exact name, or NULL. */
spine_metric *spine_metrics_find(spine_metrics *m, const char *name);

void spine_metrics_inc(spine_metric *x, double by);
void spine_metrics_set(spine_metric *x, double value);
double spine_metrics_value(const spine_metric *x);

/* Appends the text exposition of every metric, families in registration order. */
int spine_metrics_render(spine_metrics *m, spine_buf *out);

#endif
