/* test_bench_args.c: midbench's command line: defaults, every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bench.h"

static bench_opts o;
static char err[256];

static int parse(int argc, char **argv) {
    err[0] = '\0';
    return bench_parse_args(&o, argc, argv, err, sizeof err);
}
#define PARSE(...)                                            \
    ({                                                        \
        char *argv_[] = {"midbench", __VA_ARGS__};            \
        parse((int)(sizeof argv_ / sizeof argv_[0]), argv_); \
    })

static void test_defaults(void **state) {
    (void)state;
    assert_int_equal(PARSE("status"), MN_OK);
    assert_int_equal(o.workload, BENCH_STATUS);
    assert_int_equal(o.connections, 8);
    assert_int_equal(o.depth, 1);
    assert_true(o.rate == 0);
    assert_true(o.duration_s == 10);
    assert_int_equal(o.seed, 1);
    assert_false(o.json);
    assert_string_equal(bench_workload_name(o.workload), "status");
}

static void test_full_line(void **state) {
    (void)state;
    assert_int_equal(PARSE("--json", "status-proof", "--node", "127.0.0.1:9", "--connections", "50", "--depth",
                           "16", "--rate", "2500", "--duration", "1.5", "--count", "1000", "--seed", "7",
                           "--miss-ratio", "0.25"),
                     MN_OK);
    assert_int_equal(o.workload, BENCH_STATUS_PROOF);
    assert_string_equal(o.node, "127.0.0.1:9");
    assert_int_equal(o.connections, 50);
    assert_int_equal(o.depth, 16);
    assert_true(o.rate == 2500);
    assert_true(o.duration_s == 1.5);
    assert_int_equal(o.count, 1000);
    assert_int_equal(o.seed, 7);
    assert_true(o.miss_ratio == 0.25);
    assert_true(o.json);
}

static void test_nodes_list(void **state) {
    (void)state;
    assert_int_equal(PARSE("propagation", "--testnet", "/t", "--rate", "10", "--nodes", "a:1,b:2,c:3"), MN_OK);
    assert_int_equal(o.node_count, 3);
    assert_string_equal(o.nodes[2], "c:3");
    assert_int_equal(PARSE("propagation", "--testnet", "/t", "--rate", "10", "--nodes", "a:1,,b:2"), MN_EINVAL);
    assert_int_equal(PARSE("propagation", "--testnet", "/t", "--rate", "10", "--nodes", "a:1,"), MN_EINVAL);
    assert_int_equal(PARSE("propagation", "--testnet", "/t", "--rate", "10", "--nodes", ""), MN_EINVAL);
}

static void test_refusals(void **state) {
    (void)state;
    assert_int_equal(PARSE("--json"), MN_EINVAL); /* no workload */
    assert_non_null(strstr(err, "workload"));
    assert_int_equal(PARSE("bogus"), MN_EINVAL);
    assert_int_equal(PARSE("status", "status"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--frob", "1"), MN_EINVAL);
    assert_non_null(strstr(err, "--frob"));
    assert_int_equal(PARSE("status", "--connections"), MN_EINVAL); /* missing value */
    assert_int_equal(PARSE("status", "--connections", "0"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--connections", "513"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--connections", "-3"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--connections", "4x"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--depth", "1025"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--rate", "-1"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--rate", "nan"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--duration", "0"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--miss-ratio", "1.5"), MN_EINVAL);
    assert_int_equal(PARSE("status", "--seed", "18446744073709551616"), MN_EINVAL);
    assert_non_null(strstr(err, "--seed"));
}

static void test_workload_requirements(void **state) {
    (void)state;
    assert_int_equal(PARSE("submit"), MN_EINVAL);
    assert_non_null(strstr(err, "--testnet"));
    assert_int_equal(PARSE("submit", "--testnet", "/t"), MN_OK);
    assert_int_equal(PARSE("preload", "--testnet", "/t"), MN_EINVAL);
    assert_non_null(strstr(err, "--count"));
    assert_int_equal(PARSE("preload", "--testnet", "/t", "--count", "10"), MN_OK);
    assert_int_equal(o.connections, 16);
    assert_int_equal(o.batch, 0);
    assert_int_equal(PARSE("preload", "--testnet", "/t", "--count", "10", "--batch", "1000"), MN_OK);
    assert_int_equal(o.batch, 1000);
    assert_int_equal(PARSE("preload", "--testnet", "/t", "--count", "10", "--batch", "1"), MN_OK);
    assert_int_equal(o.batch, 0); /* one ISSUE per tx */
    assert_int_equal(PARSE("preload", "--testnet", "/t", "--count", "10", "--batch", "1001"), MN_EINVAL);
    assert_non_null(strstr(err, "--batch"));
    assert_int_equal(PARSE("preload", "--testnet", "/t", "--count", "10", "--batch", "0"), MN_EINVAL);
    assert_int_equal(PARSE("propagation", "--testnet", "/t"), MN_EINVAL);
    assert_non_null(strstr(err, "--rate"));
}

static void test_shares(void **state) {
    (void)state;
    assert_int_equal(PARSE("submit", "--testnet", "/t"), MN_OK);
    assert_true(o.loss_share == 0 && o.revoke_share == 0); /* plain issuances */
    assert_int_equal(PARSE("submit", "--testnet", "/t", "--loss-share", "0.2", "--revoke-share", "0.3"), MN_OK);
    assert_true(o.loss_share == 0.2 && o.revoke_share == 0.3);
    assert_int_equal(PARSE("submit", "--testnet", "/t", "--loss-share", "0.6", "--revoke-share", "0.5"), MN_EINVAL);
    assert_non_null(strstr(err, "over 1"));
    assert_int_equal(PARSE("propagation", "--testnet", "/t", "--rate", "5"), MN_OK);
    assert_true(o.loss_share == 0.5);
    assert_int_equal(PARSE("propagation", "--testnet", "/t", "--rate", "5", "--loss-share", "0"), MN_EINVAL);
}

static void test_help(void **state) {
    (void)state;
    assert_int_equal(PARSE("--help"), MN_OK);
    assert_true(o.help);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_full_line),
        cmocka_unit_test(test_nodes_list),    cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_workload_requirements), cmocka_unit_test(test_shares),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
