/* bench_hist.c: the latency histogram of midbench (log-linear buckets). Kept
 * apart from node/metrics.h because a benchmark needs one plain histogram
 * per thread, merged at the end, not an atomic registry series. */
#include <assert.h>
#include <string.h>

#include "bench.h"

void bench_hist_init(bench_histogram *h) {
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static unsigned log2_u64(uint64_t v) { return 63u - (unsigned)__builtin_clzll(v); }

size_t bench_hist_index(uint64_t v) {
    if (v < BENCH_HIST_SUB) return (size_t)v;
    unsigned e = log2_u64(v); /* >= 4 */
    size_t sub = (size_t)((v >> (e - 4)) & (BENCH_HIST_SUB - 1));
    size_t idx = (size_t)(e - 3) * BENCH_HIST_SUB + sub;
    assert(idx < BENCH_HIST_BUCKETS);
    return idx;
}

void bench_hist_bounds(size_t idx, uint64_t *lo, uint64_t *hi) {
    assert(idx < BENCH_HIST_BUCKETS);
    if (idx < BENCH_HIST_SUB) {
        *lo = *hi = idx;
        return;
    }
    unsigned e = (unsigned)(idx / BENCH_HIST_SUB) + 3;
    uint64_t sub = idx % BENCH_HIST_SUB;
    uint64_t width = (uint64_t)1 << (e - 4);
    *lo = (BENCH_HIST_SUB + sub) << (e - 4);
    *hi = *lo + (width - 1);
}

void bench_hist_record(bench_histogram *h, uint64_t v) {
    h->buckets[bench_hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void bench_hist_merge(bench_histogram *into, const bench_histogram *from) {
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++) into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->count) {
        if (from->min < into->min) into->min = from->min;
        if (from->max > into->max) into->max = from->max;
    }
}

double bench_hist_quantile(const bench_histogram *h, double q) {
    if (h->count == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            bench_hist_bounds(i, &lo, &hi);
            double mid = ((double)lo + (double)hi) / 2.0;
            if (mid < (double)h->min) mid = (double)h->min;
            if (mid > (double)h->max) mid = (double)h->max;
            return mid;
        }
    }
    return (double)h->max;
}

double bench_hist_mean(const bench_histogram *h) {
    return h->count ? (double)h->sum / (double)h->count : 0;
}
