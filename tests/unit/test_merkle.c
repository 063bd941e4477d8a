/* test_merkle.c: the tx_root Merkle tree against its RFC 6962 definition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "crypto.h"
#include "merkle.h"

static void leaf(uint8_t out[32], const uint8_t h[32]) {
    uint8_t b[33];
    b[0] = 0;
    memcpy(b + 1, h, 32);
    mn_sha256(out, b, 33);
}

static void node(uint8_t out[32], const uint8_t l[32], const uint8_t r[32]) {
    uint8_t b[65];
    b[0] = 1;
    memcpy(b + 1, l, 32);
    memcpy(b + 33, r, 32);
    mn_sha256(out, b, 65);
}

static void small_trees_follow_the_definition(void **state) {
    (void)state;
    uint8_t h[5][32], out[32], want[32], a[32], b[32], c[32], d[32], e[32];
    for (int i = 0; i < 5; i++) mn_sha256(h[i], &i, sizeof i);
    mn_merkle_root(NULL, 0, out);
    mn_sha256(want, "", 0);
    assert_memory_equal(out, want, 32);
    mn_merkle_root(h[0], 1, out);
    leaf(want, h[0]);
    assert_memory_equal(out, want, 32);
    mn_merkle_root(h[0], 2, out);
    leaf(a, h[0]);
    leaf(b, h[1]);
    node(want, a, b);
    assert_memory_equal(out, want, 32);
    /* Three: split at 2 -> node(node(l0,l1), l2). */
    mn_merkle_root(h[0], 3, out);
    leaf(c, h[2]);
    node(d, a, b);
    node(want, d, c);
    assert_memory_equal(out, want, 32);
    /* Five: node(MTH(0..4), l4). */
    leaf(d, h[3]);
    node(e, c, d);
    node(a, a, b);
    node(a, a, e);
    leaf(b, h[4]);
    node(want, a, b);
    mn_merkle_root(h[0], 5, out);
    assert_memory_equal(out, want, 32);
}

static void order_and_content_change_the_root(void **state) {
    (void)state;
    uint8_t h[64][32], r1[32], r2[32];
    for (int i = 0; i < 64; i++) mn_sha256(h[i], &i, sizeof i);
    for (size_t n = 2; n <= 64; n += 7) {
        mn_merkle_root(h[0], n, r1);
        uint8_t t[32];
        memcpy(t, h[0], 32);
        memcpy(h[0], h[n - 1], 32);
        memcpy(h[n - 1], t, 32);
        mn_merkle_root(h[0], n, r2);
        assert_memory_not_equal(r1, r2, 32);
        memcpy(h[n - 1], h[0], 32);
        memcpy(h[0], t, 32);
        mn_merkle_root(h[0], n - 1, r2); /* a prefix is a different list */
        assert_memory_not_equal(r1, r2, 32);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_trees_follow_the_definition),
        cmocka_unit_test(order_and_content_change_the_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
