/* Experiment statistics (stats.h). Wilson rather than the textbook p ± 1.96·se because it
 * stays inside [0, 1] and behaves at small counts and at rates of 0 or 1. */
#include "stats.h"

#include <math.h>

void spine_stats_wilson(long successes, long n, double *lo, double *hi) {
  if (n <= 0) {
    *lo = *hi = 0;
    return;
  }
  double z = SPINE_STATS_Z95, nn = (double)n, p = (double)successes / nn;
  double denom = 1 + z * z / nn;
  double centre = (p + z * z / (2 * nn)) / denom;
  double half = z * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denom;
  *lo = fmax(0, centre - half);
  *hi = fmin(1, centre + half);
}

void spine_stats_compare(long success_a, long n_a, long success_b, long n_b,
                         spine_stats_diff *out) {
  out->difference = 0;
  out->z = 0;
  out->p_value = 1;
  out->significant = 0;
  if (n_a <= 0 || n_b <= 0) return;
  double pa = (double)success_a / (double)n_a, pb = (double)success_b / (double)n_b;
  out->difference = pb - pa;
  double pooled = (double)(success_a + success_b) / (double)(n_a + n_b);
  double se = sqrt(pooled * (1 - pooled) * (1.0 / (double)n_a + 1.0 / (double)n_b));
  if (!(se > 0)) return;
  out->z = out->difference / se;
  out->p_value = erfc(fabs(out->z) / sqrt(2.0));
  out->significant = out->p_value < 0.05;
}
