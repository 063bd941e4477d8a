/* test_build_timing.c: when a proposer builds its next block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "build_timing.h"

enum { BATCH = 20, MAX_INTERVAL = 1000 };

static uint64_t delay(uint64_t now, uint64_t since, uint64_t tip, int round_waiting, size_t waiting)
{
    mn_build_clock c = {.now_ms = now, .mempool_since_ms = since, .tip_local_ms = tip};
    return mn_build_delay_ms(&c, round_waiting, waiting, BATCH, MAX_INTERVAL);
}

static void a_round_that_wants_a_block_builds_at_once(void **state)
{
    (void)state;
    assert_int_equal(delay(5000, 5000, 5000, 1, 0), 0);
    assert_int_equal(delay(5000, 5000, 5000, 1, 7), 0);
}

static void a_fresh_transaction_waits_the_batch_interval(void **state)
{
    (void)state;
    assert_int_equal(delay(5000, 5000, 4000, 0, 1), BATCH);
    assert_int_equal(delay(5007, 5000, 4000, 0, 1), BATCH - 7);
}

static void transactions_that_waited_through_a_round_build_at_once(void **state)
{
    (void)state;
    /* The mempool filled at 5000 while a round ran; the round committed at
     * 5030. Those transactions have already waited longer than the batch
     * interval: the next block follows the commit without another wait. */
    assert_int_equal(delay(5030, 5000, 5030, 0, 300), 0);
    /* Only part of the interval has passed: wait out the rest, no more. */
    assert_int_equal(delay(5030, 5015, 5030, 0, 2), 5);
}

static void an_idle_chain_builds_an_empty_block_after_the_max_interval(void **state)
{
    (void)state;
    assert_int_equal(delay(5000, 0, 5000, 0, 0), MAX_INTERVAL);
    assert_int_equal(delay(5400, 0, 5000, 0, 0), MAX_INTERVAL - 400);
    assert_int_equal(delay(7000, 0, 5000, 0, 0), 0);
}

static void readings_from_the_future_count_as_no_wait(void **state)
{
    (void)state;
    assert_int_equal(delay(5000, 5010, 4000, 0, 1), BATCH);
    assert_int_equal(delay(5000, 0, 6000, 0, 0), MAX_INTERVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_round_that_wants_a_block_builds_at_once),
        cmocka_unit_test(a_fresh_transaction_waits_the_batch_interval),
        cmocka_unit_test(transactions_that_waited_through_a_round_build_at_once),
        cmocka_unit_test(an_idle_chain_builds_an_empty_block_after_the_max_interval),
        cmocka_unit_test(readings_from_the_future_count_as_no_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
