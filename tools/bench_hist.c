/* bench_hist.c: midbench's per-thread latency histograms over the bucket
 * layout of node/loghist.h. */
#include <string.h>

#include "bench.h"

void bench_hist_init(bench_histogram *h) {
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void bench_hist_record(bench_histogram *h, uint64_t v) {
    h->buckets[mn_loghist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void bench_hist_merge(bench_histogram *into, const bench_histogram *from) {
    for (size_t i = 0; i < MN_LOGHIST_BUCKETS; i++) into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->count) {
        if (from->min < into->min) into->min = from->min;
        if (from->max > into->max) into->max = from->max;
    }
}

double bench_hist_quantile(const bench_histogram *h, double q) {
    return mn_loghist_quantile(h->buckets, h->count, h->min, h->max, q);
}

double bench_hist_mean(const bench_histogram *h) {
    return h->count ? (double)h->sum / (double)h->count : 0;
}
