/* test_leafkeys.c: the implicit leaves' key prefixes: lookups at every
 * depth against a scan, repeats kept once, clearing, and the tree map's
 * position-key front end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "leafkeys.h"
#include "nodemap.h"
#include "smt.h"

static uint64_t rng_state;
static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static uint64_t be64(const uint8_t *p) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | p[i];
    return x;
}

static void put_be64(uint8_t *p, uint64_t x) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(x >> (56 - 8 * i));
}

/* The smallest of keys[0..n) whose first depth bits are path's, by a scan. */
static bool scan_find(const uint64_t *keys, size_t n, unsigned depth, uint64_t path, uint64_t *out) {
    uint64_t mask = depth == 0 ? 0 : ~0ull << (64 - depth);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if ((keys[i] & mask) == (path & mask) && (!found || keys[i] < *out)) {
            *out = keys[i];
            found = true;
        }
    return found;
}

static void lookups_match_a_scan_at_every_depth(void **state) {
    (void)state;
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL);
    print_message("seed %llu\n", (unsigned long long)rng_state);
    enum { N = 3000 };
    uint64_t *keys = malloc(N * sizeof *keys);
    assert_non_null(keys);
    mn_leafkeys *k = mn_leafkeys_new();
    assert_non_null(k);
    uint8_t p8[8];
    assert_int_equal(mn_leafkeys_find(k, 0, p8, p8), MN_ENOTFOUND); /* empty */
    for (size_t i = 0; i < N; i++) {
        keys[i] = rng();
        if (i % 100 == 1) keys[i] = keys[i - 1] ^ 1; /* neighbours down to bit 63 */
        uint8_t kh[32];
        put_be64(kh, keys[i]);
        memset(kh + 8, 0xAB, 24);
        assert_int_equal(mn_leafkeys_add(k, kh), MN_OK);
    }
    assert_int_equal(mn_leafkeys_count(k), N);
    for (int q = 0; q < 20000; q++) {
        unsigned depth = (unsigned)(rng() % 65);
        /* half the paths from a key (a hit down to depth 64), half at random */
        uint64_t path = q % 2 ? keys[rng() % N] : rng();
        uint8_t pb[8], got[8];
        put_be64(pb, path);
        if (depth < 64 && depth % 8) pb[depth / 8] &= (uint8_t)(0xFF << (8 - depth % 8));
        for (unsigned b = (depth + 7) / 8; b < 8; b++) pb[b] = 0x5A; /* past the path: must not be read */
        uint64_t want = 0;
        bool expect = scan_find(keys, N, depth, path, &want);
        int rc = mn_leafkeys_find(k, depth, pb, got);
        if (expect) {
            assert_int_equal(rc, MN_OK);
            assert_true(be64(got) == want);
        } else {
            assert_int_equal(rc, MN_ENOTFOUND);
        }
    }
    assert_int_equal(mn_leafkeys_find(k, 65, p8, p8), MN_ENOTFOUND);
    free(keys);
    mn_leafkeys_free(k);
    mn_leafkeys_free(NULL);
}

static void repeats_are_kept_once_and_clear_empties(void **state) {
    (void)state;
    mn_leafkeys *k = mn_leafkeys_new();
    assert_non_null(k);
    uint8_t a[32], b[32], got[8];
    mn_sha256(a, "a", 1);
    memcpy(b, a, 32);
    b[31] ^= 1; /* the same first 8 bytes */
    assert_int_equal(mn_leafkeys_add(k, a), MN_OK);
    assert_int_equal(mn_leafkeys_add(k, a), MN_OK);
    assert_int_equal(mn_leafkeys_add(k, b), MN_OK);
    assert_int_equal(mn_leafkeys_count(k), 1);
    assert_int_equal(mn_leafkeys_find(k, 64, a, got), MN_OK);
    assert_memory_equal(got, a, 8);
    assert_int_equal(mn_leafkeys_find(k, 0, a, got), MN_OK); /* the only key is under the root */
    assert_true(mn_leafkeys_bytes(k) > 0);
    mn_leafkeys_clear(k);
    assert_int_equal(mn_leafkeys_count(k), 0);
    assert_int_equal(mn_leafkeys_find(k, 64, a, got), MN_ENOTFOUND);
    assert_int_equal(mn_leafkeys_add(k, b), MN_OK);
    assert_int_equal(mn_leafkeys_find(k, 10, a, got), MN_OK);
    assert_memory_equal(got, b, 8);
    mn_leafkeys_free(k);
}

/* The tree map answers by position key; clearing the map forgets them. */
static void the_tree_map_finds_leaves_by_position(void **state) {
    (void)state;
    mn_nodemap *m = mn_nodemap_new();
    assert_non_null(m);
    uint8_t kh[32], other[32], pos[MN_SMT_POS_KEY_MAX], got[8];
    mn_sha256(kh, "credential", 10);
    mn_sha256(other, "other", 5);
    size_t pl = mn_smt_pos_key(pos, 20, kh);
    assert_int_equal(mn_nodemap_leaf_find(m, pos, pl, got), MN_ENOTFOUND);
    assert_int_equal(mn_nodemap_leaf_add(m, kh), MN_OK);
    assert_int_equal(mn_nodemap_leaf_count(m), 1);
    assert_int_equal(mn_nodemap_leaf_find(m, pos, pl, got), MN_OK);
    assert_memory_equal(got, kh, 8);
    /* a position off the key's path, one too deep to answer, a malformed one */
    pl = mn_smt_pos_key(pos, 64, other);
    assert_int_equal(mn_nodemap_leaf_find(m, pos, pl, got), MN_ENOTFOUND);
    pl = mn_smt_pos_key(pos, 65, kh);
    assert_int_equal(mn_nodemap_leaf_find(m, pos, pl, got), MN_ENOTFOUND);
    pl = mn_smt_pos_key(pos, 20, kh);
    assert_int_equal(mn_nodemap_leaf_find(m, pos, pl - 1, got), MN_ENOTFOUND);
    pos[0] = 'x';
    assert_int_equal(mn_nodemap_leaf_find(m, pos, pl, got), MN_ENOTFOUND);
    size_t bytes = mn_nodemap_bytes(m);
    mn_nodemap_clear(m);
    assert_int_equal(mn_nodemap_leaf_count(m), 0);
    pl = mn_smt_pos_key(pos, 20, kh);
    assert_int_equal(mn_nodemap_leaf_find(m, pos, pl, got), MN_ENOTFOUND);
    assert_true(mn_nodemap_bytes(m) == bytes); /* memory kept for reuse */
    mn_nodemap_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookups_match_a_scan_at_every_depth),
        cmocka_unit_test(repeats_are_kept_once_and_clear_empties),
        cmocka_unit_test(the_tree_map_finds_leaves_by_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
