/* The statistics of experiment reports: a 95 % Wilson score interval for a success rate and a
 * two-proportion z-test for the difference of two rates. Pure arithmetic. */
#ifndef SPINE_STATS_H
#define SPINE_STATS_H

#define SPINE_STATS_Z95 1.959963984540054

/* Wilson score interval of `successes` out of `n` at 95 %; [0, 0] when n is 0. */
void spine_stats_wilson(long successes, long n, double *lo, double *hi);

typedef struct spine_stats_diff {
  double difference; /* rate b - rate a */
  double z;          /* pooled two-proportion z statistic (0 when undefined) */
  double p_value;    /* two-sided */
  int significant;   /* p < 0.05 */
} spine_stats_diff;

/* Compares b's success rate to a's. Undefined (z = 0, p = 1) when either n is 0 or the pooled
 * rate is 0 or 1. */
void spine_stats_compare(long success_a, long n_a, long success_b, long n_b, spine_stats_diff *out);

#endif
