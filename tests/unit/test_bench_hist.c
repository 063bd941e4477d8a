/* test_bench_hist.c: the shared log-linear layout (node/loghist.h), midbench's
 * histogram over it (quantile error bound, merging) and agreement with the
 * node's metrics histogram on the same values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bench.h"
#include "loghist.h"
#include "metrics.h"

static void test_index_bounds_cover_every_value(void **state) {
    (void)state;
    /* Every value lies within its bucket, and buckets follow each other. */
    uint64_t prev_hi = 0;
    for (size_t i = 0; i < MN_LOGHIST_BUCKETS; i++) {
        uint64_t lo, hi;
        mn_loghist_bounds(i, &lo, &hi);
        assert_true(lo <= hi);
        if (i > 0) assert_int_equal(lo, prev_hi + 1);
        assert_int_equal(mn_loghist_index(lo), i);
        assert_int_equal(mn_loghist_index(hi), i);
        prev_hi = hi;
    }
    assert_int_equal(prev_hi, UINT64_MAX);
    assert_int_equal(mn_loghist_index(0), 0);
    assert_int_equal(mn_loghist_index(15), 15);
    assert_int_equal(mn_loghist_index(16), 16);
    assert_int_equal(mn_loghist_index(UINT64_MAX), MN_LOGHIST_BUCKETS - 1);
}

static void test_relative_error_bound(void **state) {
    (void)state;
    for (uint64_t v = 16; v < ((uint64_t)1 << 40); v = v * 3 + 7) {
        uint64_t lo, hi;
        mn_loghist_bounds(mn_loghist_index(v), &lo, &hi);
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

static void test_agrees_with_node_metrics(void **state) {
    (void)state;
    /* The same values give the same quantiles in midbench and on /metrics. */
    struct mn_metrics *m = mn_metrics_new();
    assert_non_null(m);
    struct mn_histogram *nh = mn_metrics_histogram(m, "x_seconds", "x", NULL, NULL, 0, 1e-6);
    assert_non_null(nh);
    static bench_histogram bh;
    bench_hist_init(&bh);
    uint64_t v = 12345;
    for (int i = 0; i < 20000; i++) {
        v = v * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = (v >> 40) % 2000000 + 3;
        bench_hist_record(&bh, x);
        mn_histogram_observe(nh, x);
    }
    const double qs[] = {0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
        assert_true(bench_hist_quantile(&bh, qs[i]) == mn_histogram_quantile(nh, qs[i]));
    assert_int_equal(mn_histogram_max(nh), bh.max);
    mn_metrics_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_bounds_cover_every_value),
        cmocka_unit_test(test_relative_error_bound),
        cmocka_unit_test(test_quantiles_uniform),
        cmocka_unit_test(test_single_value_is_exact),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_agrees_with_node_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
