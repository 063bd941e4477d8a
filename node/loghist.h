/* loghist.h: the log-linear bucket layout shared by the node's latency
 * metrics (node/metrics.c) and midbench's histograms (tools/bench_hist.c),
 * so the two report quantiles the same way.
 *
 * Values below 16 get a bucket each; above, every power of two is split into
 * 16 equal buckets, so a bucket's width is under 6.25% of its values. The
 * layout covers every uint64_t in MN_LOGHIST_BUCKETS buckets.
 *
 * Pure functions over caller-owned arrays; nothing here allocates. */
#ifndef MN_LOGHIST_H
#define MN_LOGHIST_H

#include <stddef.h>
#include <stdint.h>

#define MN_LOGHIST_SUB 16
#define MN_LOGHIST_BUCKETS (61 * MN_LOGHIST_SUB)

/* Bucket of v (always < MN_LOGHIST_BUCKETS). */
size_t mn_loghist_index(uint64_t v);

/* Inclusive bounds [lo, hi] of bucket idx (idx < MN_LOGHIST_BUCKETS). */
void mn_loghist_bounds(size_t idx, uint64_t *lo, uint64_t *hi);

/* The q-quantile (0 <= q <= 1, nearest rank ceil(q * total)) of total values
 * counted in counts[MN_LOGHIST_BUCKETS], whose exact smallest and largest
 * are min and max: the extremes are returned exactly, other ranks as the
 * midpoint of their bucket clamped to [min, max]. Returns 0 when total is 0. */
double mn_loghist_quantile(const uint64_t counts[static MN_LOGHIST_BUCKETS], uint64_t total,
                           uint64_t min, uint64_t max, double q);

#endif
