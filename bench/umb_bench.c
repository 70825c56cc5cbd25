//  umb_bench - clocks, medians and percentiles for the benchmarks
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "umb_bench.h"

double
umb_bench_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

void
umb_bench_sort (double *values, size_t count)
{
    qsort (values, count, sizeof *values, s_compare);
}

double
umb_bench_median (const double *values, size_t count)
{
    assert (count > 0);
    double *sorted = malloc (count * sizeof (double));
    assert (sorted);
    memcpy (sorted, values, count * sizeof (double));
    umb_bench_sort (sorted, count);
    double median = count % 2? sorted [count / 2]: (sorted [count / 2 - 1] + sorted [count / 2]) / 2;
    free (sorted);
    return median;
}

double
umb_bench_percentile (const double *sorted, size_t count, int permille)
{
    size_t rank = (size_t) (((uint64_t) count * (uint64_t) permille + 999) / 1000);
    return sorted [rank < 1? 0: rank - 1];
}
