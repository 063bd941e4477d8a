/* build_timing.h: when a proposer should build its next block.
 *
 * A pure function of the node's clock readings and mempool state, kept apart
 * from the event loop so its rules can be tested without one. All times are
 * milliseconds on the node's monotonic clock.
 *
 * The rules, in order:
 *  - a consensus round that already wants a block builds at once;
 *  - a waiting transaction gets company for batch_interval_ms counted from
 *    when the mempool last became non-empty (not from the last commit): under
 *    steady load the mempool never empties, the waiting transactions have had
 *    a whole round to gather, and a further wait would only add to every
 *    transaction's latency;
 *  - with nothing waiting, an empty block follows max_block_interval_ms after
 *    the tip committed, so the chain's clock keeps moving. */
#ifndef MN_BUILD_TIMING_H
#define MN_BUILD_TIMING_H

#include <stddef.h>
#include <stdint.h>

typedef struct mn_build_clock {
    uint64_t now_ms;
    uint64_t mempool_since_ms; /* when the mempool last went from empty to non-empty */
    uint64_t tip_local_ms;     /* when the tip committed */
} mn_build_clock;

/* Milliseconds to wait before building; 0 means build now. Never fails.
 * ready_count counts the waiting transactions a block could take: a caller
 * whose last build found none ready (each held behind a nonce gap) passes 0
 * until something changes, or it would build empty blocks back to back.
 * Readings from the future (since > now) count as no wait yet. */
uint64_t mn_build_delay_ms(const mn_build_clock *c, int round_waiting, size_t ready_count,
                           uint32_t batch_interval_ms, uint32_t max_block_interval_ms);

#endif
