/* build_timing.c: see build_timing.h. */
#include "build_timing.h"

static uint64_t remaining(uint64_t now, uint64_t since, uint32_t interval)
{
    uint64_t waited = now > since ? now - since : 0;
    return waited >= interval ? 0 : interval - waited;
}

uint64_t mn_build_delay_ms(const mn_build_clock *c, int round_waiting, size_t ready_count,
                           uint32_t batch_interval_ms, uint32_t max_block_interval_ms)
{
    if (round_waiting) return 0;
    if (ready_count > 0) return remaining(c->now_ms, c->mempool_since_ms, batch_interval_ms);
    return remaining(c->now_ms, c->tip_local_ms, max_block_interval_ms);
}
