//  umb_bench - what the benchmarks share: a monotonic clock, medians of
//  rounds, and percentiles of latencies
#ifndef UMB_BENCH_H_INCLUDED
#define UMB_BENCH_H_INCLUDED

#include <stddef.h>

//  Seconds on the monotonic clock.
double umb_bench_now (void);
//  Sorts values in place, smallest first.
void   umb_bench_sort (double *values, size_t count);
//  The median of count values (left as they are); count > 0.
double umb_bench_median (const double *values, size_t count);
//  The nearest-rank percentile, in thousandths (990: p99), of sorted values.
double umb_bench_percentile (const double *sorted, size_t count, int permille);

#endif
