/* loghist.c: see loghist.h. */
#include "loghist.h"

#include <assert.h>
#include <math.h>

size_t mn_loghist_index(uint64_t v) {
    if (v < MN_LOGHIST_SUB) return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 4..63 */
    size_t sub = (size_t)((v >> (e - 4)) & (MN_LOGHIST_SUB - 1));
    size_t idx = (size_t)(e - 3) * MN_LOGHIST_SUB + sub;
    assert(idx < MN_LOGHIST_BUCKETS);
    return idx;
}

void mn_loghist_bounds(size_t idx, uint64_t *lo, uint64_t *hi) {
    assert(idx < MN_LOGHIST_BUCKETS);
    if (idx < MN_LOGHIST_SUB) {
        *lo = *hi = idx;
        return;
    }
    unsigned e = (unsigned)(idx / MN_LOGHIST_SUB) + 3;
    uint64_t sub = idx % MN_LOGHIST_SUB;
    uint64_t width = (uint64_t)1 << (e - 4);
    *lo = (MN_LOGHIST_SUB + sub) << (e - 4);
    *hi = *lo + (width - 1);
}

double mn_loghist_quantile(const uint64_t counts[static MN_LOGHIST_BUCKETS], uint64_t total,
                           uint64_t min, uint64_t max, double q) {
    if (total == 0) return 0;
    if (!(q >= 0)) q = 0; /* also NaN */
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank == 0) rank = 1;
    if (rank >= total) return (double)max;
    if (rank == 1) return (double)min;
    uint64_t seen = 0;
    double v = (double)max;
    for (size_t i = 0; i < MN_LOGHIST_BUCKETS; i++) {
        seen += counts[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            mn_loghist_bounds(i, &lo, &hi);
            v = (double)lo + (double)(hi - lo) / 2.0;
            break;
        }
    }
    if (v < (double)min) v = (double)min;
    if (v > (double)max) v = (double)max;
    return v;
}
