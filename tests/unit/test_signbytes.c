/* test_signbytes.c: the bytes validators sign bind every field, and quorums. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "signbytes.h"

static const uint8_t hash_a[32] = {1, 2, 3};
static const uint8_t hash_b[32] = {1, 2, 4};

static size_t sb(uint8_t *out, const char *chain, int kind, uint64_t h, uint32_t r, const uint8_t *hash,
                 size_t hash_len, int32_t pol) {
    return mn_sign_bytes(out, chain, kind, h, r, hash, hash_len, pol);
}

static void layout_is_as_documented(void **state) {
    (void)state;
    uint8_t out[MN_SIGNBYTES_MAX];
    size_t n = sb(out, "c", MN_SIGN_PRECOMMIT, 0x0102030405060708ull, 0x0a0b0c0d, hash_a, 32, -1);
    assert_int_equal(n, 15 + 1 + 1 + 1 + 8 + 4 + 1 + 32);
    assert_memory_equal(out, "midnode/sign/v1", 15);
    assert_int_equal(out[15], 1);
    assert_int_equal(out[16], 'c');
    assert_int_equal(out[17], MN_SIGN_PRECOMMIT);
    const uint8_t height_be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(out + 18, height_be, 8);
    const uint8_t round_be[4] = {0x0a, 0x0b, 0x0c, 0x0d};
    assert_memory_equal(out + 26, round_be, 4);
    assert_int_equal(out[30], 32);
    assert_memory_equal(out + 31, hash_a, 32);
    n = sb(out, "c", MN_SIGN_PROPOSAL, 1, 0, hash_a, 32, -1);
    assert_int_equal(n, 15 + 1 + 1 + 1 + 8 + 4 + 1 + 32 + 4);
    const uint8_t minus_one[4] = {0xff, 0xff, 0xff, 0xff};
    assert_memory_equal(out + n - 4, minus_one, 4);
}

static void every_field_changes_the_bytes(void **state) {
    (void)state;
    uint8_t base[MN_SIGNBYTES_MAX], other[MN_SIGNBYTES_MAX];
    size_t n = sb(base, "chain", MN_SIGN_PREVOTE, 7, 2, hash_a, 32, -1);
    struct { const char *chain; int kind; uint64_t h; uint32_t r; const uint8_t *hash; size_t hl; } variants[] = {
        {"chaim", MN_SIGN_PREVOTE, 7, 2, hash_a, 32},  {"chain", MN_SIGN_PRECOMMIT, 7, 2, hash_a, 32},
        {"chain", MN_SIGN_PREVOTE, 8, 2, hash_a, 32},  {"chain", MN_SIGN_PREVOTE, 7, 3, hash_a, 32},
        {"chain", MN_SIGN_PREVOTE, 7, 2, hash_b, 32},  {"chain", MN_SIGN_PREVOTE, 7, 2, NULL, 0},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        size_t m = sb(other, variants[i].chain, variants[i].kind, variants[i].h, variants[i].r, variants[i].hash,
                      variants[i].hl, -1);
        assert_true(m > 0);
        assert_true(m != n || memcmp(base, other, n) != 0);
    }
    /* a proposal's pol_round is bound too */
    size_t p1 = sb(base, "chain", MN_SIGN_PROPOSAL, 7, 2, hash_a, 32, -1);
    size_t p2 = sb(other, "chain", MN_SIGN_PROPOSAL, 7, 2, hash_a, 32, 1);
    assert_int_equal(p1, p2);
    assert_memory_not_equal(base, other, p1);
}

static void out_of_range_arguments_are_refused(void **state) {
    (void)state;
    uint8_t out[MN_SIGNBYTES_MAX];
    char long_chain[70];
    memset(long_chain, 'x', sizeof long_chain - 1);
    long_chain[69] = '\0';
    assert_int_equal(sb(out, long_chain, MN_SIGN_PREVOTE, 1, 0, hash_a, 32, -1), 0);
    assert_int_equal(sb(out, "c", 9, 1, 0, hash_a, 32, -1), 0);
    assert_int_equal(sb(out, "c", MN_SIGN_PREVOTE, 1, 0, hash_a, 31, -1), 0);
    assert_int_equal(sb(out, "c", MN_SIGN_PREVOTE, 1, 0, NULL, 32, -1), 0);
}

static void quorum_is_more_than_two_thirds(void **state) {
    (void)state;
    assert_int_equal(mn_quorum(1), 1);
    assert_int_equal(mn_quorum(4), 3);
    assert_int_equal(mn_quorum(7), 5);
    assert_int_equal(mn_quorum(10), 7);
    for (uint32_t n = 1; n <= 64; n++) {
        uint32_t q = mn_quorum(n);
        assert_true(3 * q > 2 * n);            /* two quorums intersect in an honest node when f < n/3 */
        assert_true(3 * (q - 1) <= 2 * n);     /* and it is the smallest such number */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout_is_as_documented),
        cmocka_unit_test(every_field_changes_the_bytes),
        cmocka_unit_test(out_of_range_arguments_are_refused),
        cmocka_unit_test(quorum_is_more_than_two_thirds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
