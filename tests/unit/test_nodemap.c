/* test_nodemap.c: the tree's node table: puts, overwrites, deletions,
 * growth across chunks and slot tables, clearing, and refused input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "nodemap.h"
#include "smt.h"

/* The position key of node i < 2^24: depth 24..255, a path starting with
 * i's three bytes (so no two i share a key), then bits mixed from i. */
static size_t pos_of(uint8_t pos[MN_SMT_POS_KEY_MAX], uint32_t i) {
    uint8_t key[32];
    key[0] = (uint8_t)(i >> 16);
    key[1] = (uint8_t)(i >> 8);
    key[2] = (uint8_t)i;
    for (int b = 3; b < 32; b++) key[b] = (uint8_t)((i * 2654435761u) >> (8 * (b % 4))) ^ (uint8_t)b;
    unsigned depth = 24 + (i % 232);
    return mn_smt_pos_key(pos, depth, key);
}

static void node_of(uint8_t node[MN_SMT_NODE_LEN], uint32_t i, uint8_t version) {
    node[0] = 'I';
    for (int b = 1; b < MN_SMT_NODE_LEN; b++) node[b] = (uint8_t)(i >> (8 * (b % 4))) ^ version;
}

static void puts_gets_overwrites_and_deletes(void **state) {
    (void)state;
    mn_nodemap *m = mn_nodemap_new();
    assert_non_null(m);
    uint8_t pos[MN_SMT_POS_KEY_MAX], node[MN_SMT_NODE_LEN], got[MN_SMT_NODE_LEN];
    size_t pl = pos_of(pos, 7);
    assert_false(mn_nodemap_get(m, pos, pl, got));
    node_of(node, 7, 0);
    assert_int_equal(mn_nodemap_put(m, pos, pl, node), MN_OK);
    assert_true(mn_nodemap_get(m, pos, pl, got));
    assert_memory_equal(got, node, MN_SMT_NODE_LEN);
    /* the same path at another depth is another position */
    assert_false(mn_nodemap_get(m, pos, pl - 1, got));
    node_of(node, 7, 0x55);
    assert_int_equal(mn_nodemap_put(m, pos, pl, node), MN_OK);
    assert_int_equal(mn_nodemap_count(m), 1);
    assert_true(mn_nodemap_get(m, pos, pl, got));
    assert_memory_equal(got, node, MN_SMT_NODE_LEN);
    assert_int_equal(mn_nodemap_del(m, pos, pl), MN_OK);
    assert_false(mn_nodemap_get(m, pos, pl, got));
    assert_int_equal(mn_nodemap_count(m), 0);
    assert_int_equal(mn_nodemap_put(m, pos, pl, node), MN_OK);
    assert_int_equal(mn_nodemap_count(m), 1);
    assert_true(mn_nodemap_get(m, pos, pl, got));
    mn_nodemap_free(m);
}

static void many_nodes_survive_growth_and_clear(void **state) {
    (void)state;
    mn_nodemap *m = mn_nodemap_new();
    assert_non_null(m);
    const uint32_t n = 200000; /* several chunks, many slot-table growths */
    uint8_t pos[MN_SMT_POS_KEY_MAX], node[MN_SMT_NODE_LEN], got[MN_SMT_NODE_LEN];
    for (uint32_t i = 0; i < n; i++) {
        node_of(node, i, 1);
        assert_int_equal(mn_nodemap_put(m, pos, pos_of(pos, i), node), MN_OK);
    }
    /* pos_of repeats no key below n: every put was a new position */
    assert_int_equal(mn_nodemap_count(m), n);
    assert_true(mn_nodemap_bytes(m) >= n * 104);
    for (uint32_t i = 0; i < n; i += 3) assert_int_equal(mn_nodemap_del(m, pos, pos_of(pos, i)), MN_OK);
    for (uint32_t i = 0; i < n; i++) {
        bool have = mn_nodemap_get(m, pos, pos_of(pos, i), got);
        assert_int_equal(have, i % 3 != 0);
        if (have) {
            node_of(node, i, 1);
            assert_memory_equal(got, node, MN_SMT_NODE_LEN);
        }
    }
    size_t bytes = mn_nodemap_bytes(m);
    mn_nodemap_clear(m);
    assert_int_equal(mn_nodemap_count(m), 0);
    assert_false(mn_nodemap_get(m, pos, pos_of(pos, 1), got));
    for (uint32_t i = 0; i < n; i++) {
        node_of(node, i, 2);
        assert_int_equal(mn_nodemap_put(m, pos, pos_of(pos, i), node), MN_OK);
    }
    assert_int_equal(mn_nodemap_bytes(m), bytes); /* the memory was reused */
    for (uint32_t i = 0; i < n; i += 7) {
        assert_true(mn_nodemap_get(m, pos, pos_of(pos, i), got));
        node_of(node, i, 2);
        assert_memory_equal(got, node, MN_SMT_NODE_LEN);
    }
    mn_nodemap_free(m);
}

/* Prefetch hints, of present, absent and malformed positions, on an empty
 * map and a full one, change nothing. */
/* A map reserved for n nodes takes them without growing its slots, and
 * a reserve after puts keeps every node; a size past the map's limit is
 * refused and changes nothing. */
static void a_reserved_map_fills_without_growing(void **state) {
    (void)state;
    enum { N = 50000 };
    mn_nodemap *m = mn_nodemap_new();
    assert_non_null(m);
    uint8_t pos[MN_SMT_POS_KEY_MAX], node[MN_SMT_NODE_LEN], got[MN_SMT_NODE_LEN];
    node_of(node, 1, 0);
    size_t pl = pos_of(pos, 1);
    assert_int_equal(mn_nodemap_put(m, pos, pl, node), MN_OK);
    assert_int_equal(mn_nodemap_reserve(m, N), MN_OK);
    assert_true(mn_nodemap_get(m, pos, pl, got));
    assert_memory_equal(got, node, MN_SMT_NODE_LEN);
    size_t bytes = mn_nodemap_bytes(m);
    for (uint32_t i = 2; i <= N; i++) {
        pl = pos_of(pos, i);
        node_of(node, i, 0);
        assert_int_equal(mn_nodemap_put(m, pos, pl, node), MN_OK);
    }
    assert_int_equal(mn_nodemap_bytes(m), bytes);
    assert_int_equal(mn_nodemap_count(m), N);
    assert_int_equal(mn_nodemap_reserve(m, (size_t)UINT32_MAX), MN_ENOMEM);
    assert_int_equal(mn_nodemap_bytes(m), bytes);
    for (uint32_t i = 1; i <= N; i += 997) {
        pl = pos_of(pos, i);
        node_of(node, i, 0);
        assert_true(mn_nodemap_get(m, pos, pl, got));
        assert_memory_equal(got, node, MN_SMT_NODE_LEN);
    }
    mn_nodemap_free(m);
}

static void prefetch_hints_change_nothing(void **state) {
    (void)state;
    mn_nodemap *m = mn_nodemap_new();
    assert_non_null(m);
    uint8_t pos[MN_SMT_POS_KEY_MAX], node[MN_SMT_NODE_LEN], got[MN_SMT_NODE_LEN];
    for (int stage = 0; stage < 2; stage++) {
        mn_nodemap_prefetch(m, pos, pos_of(pos, 1), stage);
        mn_nodemap_prefetch(m, NULL, 0, stage);
    }
    const uint32_t n = 5000;
    for (uint32_t i = 0; i < n; i++) {
        node_of(node, i, 3);
        assert_int_equal(mn_nodemap_put(m, pos, pos_of(pos, i), node), MN_OK);
    }
    size_t bytes = mn_nodemap_bytes(m);
    for (uint32_t i = 0; i < 2 * n; i++)
        for (int stage = 0; stage < 2; stage++) mn_nodemap_prefetch(m, pos, pos_of(pos, i), stage);
    memset(pos, 0xEE, sizeof pos);
    mn_nodemap_prefetch(m, pos, 0, 1);
    mn_nodemap_prefetch(m, pos, MN_SMT_POS_KEY_MAX + 1, 1);
    assert_int_equal(mn_nodemap_count(m), n);
    assert_int_equal(mn_nodemap_bytes(m), bytes);
    for (uint32_t i = 0; i < 2 * n; i++) {
        bool have = mn_nodemap_get(m, pos, pos_of(pos, i), got);
        assert_int_equal(have, i < n);
        if (have) {
            node_of(node, i, 3);
            assert_memory_equal(got, node, MN_SMT_NODE_LEN);
        }
    }
    mn_nodemap_free(m);
}

static void bad_keys_and_empty_nodes_are_refused(void **state) {
    (void)state;
    mn_nodemap *m = mn_nodemap_new();
    assert_non_null(m);
    uint8_t pos[MN_SMT_POS_KEY_MAX + 1] = {'s', 0, 1, 0x80}, node[MN_SMT_NODE_LEN] = {'I'}, got[MN_SMT_NODE_LEN];
    assert_int_equal(mn_nodemap_put(m, pos, 0, node), MN_EINVAL);
    assert_int_equal(mn_nodemap_put(m, pos, MN_SMT_POS_KEY_MAX + 1, node), MN_EINVAL);
    assert_int_equal(mn_nodemap_del(m, pos, MN_SMT_POS_KEY_MAX + 1), MN_EINVAL);
    assert_false(mn_nodemap_get(m, pos, MN_SMT_POS_KEY_MAX + 1, got));
    node[0] = 0;
    assert_int_equal(mn_nodemap_put(m, pos, 4, node), MN_EINVAL);
    assert_int_equal(mn_nodemap_count(m), 0);
    assert_int_equal(mn_nodemap_del(m, pos, 4), MN_OK); /* nothing there: nothing to do */
    mn_nodemap_free(m);
    mn_nodemap_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(puts_gets_overwrites_and_deletes),
        cmocka_unit_test(many_nodes_survive_growth_and_clear),
        cmocka_unit_test(bad_keys_and_empty_nodes_are_refused),
        cmocka_unit_test(prefetch_hints_change_nothing),
        cmocka_unit_test(a_reserved_map_fills_without_growing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
