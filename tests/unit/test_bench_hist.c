/* test_bench_hist.c: midbench's latency histogram: bucket layout, quantile
 * error bound, merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bench.h"

static void test_index_bounds_cover_every_value(void **state) {
    (void)state;
    /* Every value lies within its bucket, and buckets follow each other. */
    uint64_t prev_hi = 0;
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        uint64_t lo, hi;
        bench_hist_bounds(i, &lo, &hi);
        assert_true(lo <= hi);
        if (i > 0) assert_int_equal(lo, prev_hi + 1);
        assert_int_equal(bench_hist_index(lo), i);
        assert_int_equal(bench_hist_index(hi), i);
        prev_hi = hi;
    }
    assert_int_equal(prev_hi, UINT64_MAX);
    assert_int_equal(bench_hist_index(0), 0);
    assert_int_equal(bench_hist_index(15), 15);
    assert_int_equal(bench_hist_index(16), 16);
    assert_int_equal(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
}

static void test_relative_error_bound(void **state) {
    (void)state;
    for (uint64_t v = 16; v < ((uint64_t)1 << 40); v = v * 3 + 7) {
        uint64_t lo, hi;
        bench_hist_bounds(bench_hist_index(v), &lo, &hi);
        double mid = ((double)lo + (double)hi) / 2;
        double rel = (mid > (double)v ? mid - (double)v : (double)v - mid) / (double)v;
        assert_true(rel < 0.0625);
    }
}

static void test_quantiles_uniform(void **state) {
    (void)state;
    static bench_histogram h;
    bench_hist_init(&h);
    assert_true(bench_hist_quantile(&h, 0.5) == 0);
    for (uint64_t v = 1; v <= 100000; v++) bench_hist_record(&h, v);
    assert_int_equal(h.count, 100000);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100000);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < 4; i++) {
        double want = qs[i] * 100000;
        double got = bench_hist_quantile(&h, qs[i]);
        assert_true(got >= want * 0.9375 && got <= want * 1.0625);
    }
    assert_true(bench_hist_quantile(&h, 1.0) == 100000);
    assert_true(bench_hist_quantile(&h, 0.0) == 1);
    assert_true(bench_hist_mean(&h) > 50000 && bench_hist_mean(&h) < 50001);
}

static void test_single_value_is_exact(void **state) {
    (void)state;
    static bench_histogram h;
    bench_hist_init(&h);
    bench_hist_record(&h, 123457);
    /* Clamped to the observed min and max. */
    assert_true(bench_hist_quantile(&h, 0.5) == 123457);
    assert_true(bench_hist_quantile(&h, 0.99) == 123457);
}

static void test_merge(void **state) {
    (void)state;
    static bench_histogram a, b;
    bench_hist_init(&a);
    bench_hist_init(&b);
    for (uint64_t v = 0; v < 1000; v++) bench_hist_record(&a, 10);
    for (uint64_t v = 0; v < 1000; v++) bench_hist_record(&b, 1000000);
    static bench_histogram empty;
    bench_hist_init(&empty);
    bench_hist_merge(&a, &empty);
    assert_int_equal(a.min, 10);
    bench_hist_merge(&a, &b);
    assert_int_equal(a.count, 2000);
    assert_int_equal(a.min, 10);
    assert_int_equal(a.max, 1000000);
    assert_true(bench_hist_quantile(&a, 0.5) == 10);
    double p99 = bench_hist_quantile(&a, 0.99);
    assert_true(p99 > 937500 && p99 <= 1000000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_bounds_cover_every_value),
        cmocka_unit_test(test_relative_error_bound),
        cmocka_unit_test(test_quantiles_uniform),
        cmocka_unit_test(test_single_value_is_exact),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
