/* test_metrics.c: exact Prometheus 0.0.4 rendering, registration rules, quantiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static double seven(void *arg) {
    (void)arg;
    return 7;
}

static void render_is_exact(void **state) {
    (void)state;
    struct mn_metrics *m = mn_metrics_new();
    assert_non_null(m);
    struct mn_counter *get = mn_metrics_counter(m, "mn_rpc_requests_total", "RPC requests.", "method=\"GetStatus\"");
    struct mn_gauge *height = mn_metrics_gauge(m, "mn_height", "Last committed height.", NULL);
    struct mn_counter *sub = mn_metrics_counter(m, "mn_rpc_requests_total", "RPC requests.", "method=\"SubmitTx\"");
    const double bounds[] = {0.001, 0.01, 0.1};
    struct mn_histogram *lat = mn_metrics_histogram(m, "mn_commit_seconds", "Commit latency\\with\nnewline.", NULL,
                                                    bounds, 3, 1e-6);
    assert_non_null(mn_metrics_gauge_fn(m, "mn_mempool_txs", "Pending txs.", "", seven, NULL));
    assert_non_null(get);
    assert_non_null(height);
    assert_non_null(sub);
    assert_non_null(lat);
    mn_counter_add(get, 3);
    mn_counter_inc(sub);
    mn_gauge_set(height, 42);
    mn_gauge_add(height, 0.5);
    mn_histogram_observe(lat, 500);     /* 0.0005 s */
    mn_histogram_observe(lat, 1000);    /* exactly on the 0.001 bound: le is inclusive */
    mn_histogram_observe(lat, 50000);   /* 0.05 s */
    mn_histogram_observe(lat, 2000000); /* 2 s: only +Inf */
    size_t len = 0;
    char *text = mn_metrics_render(m, &len);
    assert_non_null(text);
    const char *want =
        "# HELP mn_rpc_requests_total RPC requests.\n"
        "# TYPE mn_rpc_requests_total counter\n"
        "mn_rpc_requests_total{method=\"GetStatus\"} 3\n"
        "mn_rpc_requests_total{method=\"SubmitTx\"} 1\n"
        "# HELP mn_height Last committed height.\n"
        "# TYPE mn_height gauge\n"
        "mn_height 42.5\n"
        "# HELP mn_commit_seconds Commit latency\\\\with\\nnewline.\n"
        "# TYPE mn_commit_seconds histogram\n"
        "mn_commit_seconds_bucket{le=\"0.001\"} 2\n"
        "mn_commit_seconds_bucket{le=\"0.01\"} 2\n"
        "mn_commit_seconds_bucket{le=\"0.1\"} 3\n"
        "mn_commit_seconds_bucket{le=\"+Inf\"} 4\n"
        "mn_commit_seconds_sum 2.0515\n"
        "mn_commit_seconds_count 4\n"
        "# HELP mn_mempool_txs Pending txs.\n"
        "# TYPE mn_mempool_txs gauge\n"
        "mn_mempool_txs 7\n";
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
    mn_metrics_free(m);
}

/* Count of the bucket line `le="<le>"` of family name in text, or -1. */
static long bucket_count(const char *text, const char *name, const char *le) {
    char key[128];
    snprintf(key, sizeof key, "%s_bucket{le=\"%s\"} ", name, le);
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Observations compare integers against bounds converted to raw units at
 * registration; each value must still land in the first bucket whose bound
 * is at or above its exported value, on both sides of every bound, for
 * scales that divide exactly and scales that do not. */
static void values_land_on_the_right_side_of_bounds(void **state) {
    (void)state;
    const double scales[] = {1e-6, 1e-3, 0.3, 2.5};
    const double bounds[] = {-1, 0, 0.0001, 0.3, 0.9, 1, 7.5, 1e30};
    const char *les[] = {"-1", "0", "0.0001", "0.3", "0.9", "1", "7.5", "1e+30"};
    const size_t nb = sizeof bounds / sizeof bounds[0];
    for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
        double inv = 1.0 / scales[si];
        bool divide = inv >= 1 && fabs(inv - round(inv)) < 1e-9 * inv;
        for (uint64_t raw = 0; raw < 400; raw++) {
            struct mn_metrics *m = mn_metrics_new();
            assert_non_null(m);
            struct mn_histogram *h = mn_metrics_histogram(m, "h", "H.", NULL, bounds, nb, scales[si]);
            assert_non_null(h);
            uint64_t v = raw < 200 ? raw : raw * 1000 + (raw & 3); /* small values, then large */
            mn_histogram_observe(h, v);
            char *text = mn_metrics_render(m, NULL);
            assert_non_null(text);
            double x = divide ? (double)v / round(inv) : (double)v * scales[si];
            for (size_t b = 0; b < nb; b++)
                assert_int_equal(bucket_count(text, "h", les[b]), x <= bounds[b] ? 1 : 0);
            assert_int_equal(bucket_count(text, "h", "+Inf"), 1);
            free(text);
            mn_metrics_free(m);
        }
    }
}

static void labelled_histogram_and_default_bounds(void **state) {
    (void)state;
    struct mn_metrics *m = mn_metrics_new();
    struct mn_histogram *h = mn_metrics_histogram(m, "mn_rpc_seconds", "x", "method=\"GetBlock\"", NULL, 0, 1e-6);
    assert_non_null(h);
    mn_histogram_observe(h, 100); /* 0.0001: first default bound */
    char *text = mn_metrics_render(m, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "mn_rpc_seconds_bucket{method=\"GetBlock\",le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(text, "mn_rpc_seconds_bucket{method=\"GetBlock\",le=\"0.00025\"} 1\n"));
    assert_non_null(strstr(text, "mn_rpc_seconds_bucket{method=\"GetBlock\",le=\"10\"} 1\n"));
    assert_non_null(strstr(text, "mn_rpc_seconds_bucket{method=\"GetBlock\",le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(text, "mn_rpc_seconds_sum{method=\"GetBlock\"} 0.0001\n"));
    assert_non_null(strstr(text, "mn_rpc_seconds_count{method=\"GetBlock\"} 1\n"));
    free(text);
    mn_metrics_free(m);
}

static void registration_refuses_bad_series(void **state) {
    (void)state;
    struct mn_metrics *m = mn_metrics_new();
    assert_non_null(mn_metrics_counter(m, "a_total", "h", NULL));
    assert_null(mn_metrics_counter(m, "a_total", "h", NULL));    /* same series twice */
    assert_null(mn_metrics_gauge(m, "a_total", "h", "x=\"1\"")); /* family with another type */
    assert_null(mn_metrics_counter(m, "9abc", "h", NULL));
    assert_null(mn_metrics_counter(m, "a-b", "h", NULL));
    assert_null(mn_metrics_counter(m, "", "h", NULL));
    assert_null(mn_metrics_counter(m, "b", "h", "x=\"}\""));
    assert_null(mn_metrics_counter(m, "c", "h", "x=\"\n\""));
    const double bad[] = {1, 1};
    assert_null(mn_metrics_histogram(m, "h", "h", NULL, bad, 2, 1));
    assert_null(mn_metrics_histogram(m, "h", "h", NULL, NULL, 0, 0));
    assert_null(mn_metrics_gauge_fn(m, "g", "h", NULL, NULL, NULL));
    mn_metrics_free(m);
    /* The registry is bounded. */
    m = mn_metrics_new();
    char labels[32];
    for (int i = 0; i < MN_METRICS_MAX; i++) {
        snprintf(labels, sizeof labels, "i=\"%d\"", i);
        assert_non_null(mn_metrics_counter(m, "many_total", "h", labels));
    }
    assert_null(mn_metrics_counter(m, "one_more_total", "h", NULL));
    mn_metrics_free(m);
    mn_metrics_free(NULL);
}

static void quantiles_are_close(void **state) {
    (void)state;
    struct mn_metrics *m = mn_metrics_new();
    struct mn_histogram *h = mn_metrics_histogram(m, "lat", "h", NULL, NULL, 0, 1e-6);
    assert_true(mn_histogram_quantile(h, 0.5) == 0);
    for (uint64_t v = 1; v <= 10000; v++) mn_histogram_observe(h, v * 100); /* 100 .. 1e6 */
    assert_int_equal(mn_histogram_count(h), 10000);
    assert_int_equal(mn_histogram_max(h), 1000000);
    double p50 = mn_histogram_quantile(h, 0.5), p99 = mn_histogram_quantile(h, 0.99);
    print_message("p50 %.0f p99 %.0f\n", p50, p99);
    assert_true(fabs(p50 - 500000) / 500000 < 0.04);
    assert_true(fabs(p99 - 990000) / 990000 < 0.04);
    assert_true(mn_histogram_quantile(h, 1) == 1000000);
    assert_true(mn_histogram_quantile(h, 0) >= 100);
    /* Small values are exact. */
    mn_histogram_reset(h);
    assert_int_equal(mn_histogram_count(h), 0);
    for (int i = 0; i < 9; i++) mn_histogram_observe(h, 3);
    mn_histogram_observe(h, 12);
    assert_true(mn_histogram_quantile(h, 0.5) == 3);
    assert_true(mn_histogram_quantile(h, 0.99) == 12);
    mn_metrics_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(render_is_exact),
        cmocka_unit_test(labelled_histogram_and_default_bounds),
        cmocka_unit_test(values_land_on_the_right_side_of_bounds),
        cmocka_unit_test(registration_refuses_bad_series),
        cmocka_unit_test(quantiles_are_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
