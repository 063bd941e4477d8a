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
    assert_true(mn_nodemap_bytes(m) >= n * 77);
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

/* Positions down to depth 64 (keys of at most 11 bytes) take the short
 * entries, deeper ones the long; both kinds, at the same paths, are kept
 * apart and found, and a map of shallow positions is the smaller. */
static void shallow_positions_take_short_entries(void **state) {
    (void)state;
    enum { N = 70000 }; /* more than one chunk of each kind */
    mn_nodemap *shallow = mn_nodemap_new(), *deep = mn_nodemap_new(), *both = mn_nodemap_new();
    assert_non_null(shallow);
    assert_non_null(deep);
    assert_non_null(both);
    uint8_t key[32], pos[MN_SMT_POS_KEY_MAX], node[MN_SMT_NODE_LEN], got[MN_SMT_NODE_LEN];
    memset(key, 0xA5, sizeof key);
    for (uint32_t i = 0; i < N; i++) {
        memcpy(key, &i, sizeof i);
        size_t pl = mn_smt_pos_key(pos, 64, key);
        assert_int_equal(pl, 11);
        node_of(node, i, 4);
        assert_int_equal(mn_nodemap_put(shallow, pos, pl, node), MN_OK);
        assert_int_equal(mn_nodemap_put(both, pos, pl, node), MN_OK);
        pl = mn_smt_pos_key(pos, 65, key);
        assert_int_equal(pl, 12);
        node_of(node, i, 5);
        assert_int_equal(mn_nodemap_put(deep, pos, pl, node), MN_OK);
        assert_int_equal(mn_nodemap_put(both, pos, pl, node), MN_OK);
    }
    assert_int_equal(mn_nodemap_count(both), 2 * N);
    size_t sb = mn_nodemap_bytes(shallow), db = mn_nodemap_bytes(deep);
    assert_true(sb >= (size_t)N * 77 && sb < db);
    assert_true(db - sb >= (size_t)N * 24); /* 24 bytes less per entry */
    for (uint32_t i = 0; i < N; i += 101) {
        memcpy(key, &i, sizeof i);
        assert_true(mn_nodemap_get(both, pos, mn_smt_pos_key(pos, 64, key), got));
        node_of(node, i, 4);
        assert_memory_equal(got, node, MN_SMT_NODE_LEN);
        assert_true(mn_nodemap_get(both, pos, mn_smt_pos_key(pos, 65, key), got));
        node_of(node, i, 5);
        assert_memory_equal(got, node, MN_SMT_NODE_LEN);
        assert_int_equal(mn_nodemap_del(both, pos, mn_smt_pos_key(pos, 65, key)), MN_OK);
        assert_false(mn_nodemap_get(both, pos, mn_smt_pos_key(pos, 65, key), got));
        assert_true(mn_nodemap_get(both, pos, mn_smt_pos_key(pos, 64, key), got));
    }
    mn_nodemap_free(shallow);
    mn_nodemap_free(deep);
    mn_nodemap_free(both);
}

/* A doubling of the slots is copied a few slots per put: right after the
 * put that starts it the map is still growing, and every node, whether
 * its slot was copied yet or not, is found, overwritten and deleted
 * through it; puts go on until the copy is done. */
static void slots_grow_a_few_at_a_time(void **state) {
    (void)state;
    mn_nodemap *m = mn_nodemap_new();
    assert_non_null(m);
    uint8_t pos[MN_SMT_POS_KEY_MAX], node[MN_SMT_NODE_LEN], got[MN_SMT_NODE_LEN];
    uint32_t i = 0, started = 0, done = 0, growths = 0;
    for (; i < 120000 || mn_nodemap_growing(m); i++) {
        bool was = mn_nodemap_growing(m);
        node_of(node, i, 6);
        assert_int_equal(mn_nodemap_put(m, pos, pos_of(pos, i), node), MN_OK);
        if (!was && mn_nodemap_growing(m)) {
            started = i;
            growths++;
        }
        if (mn_nodemap_growing(m)) {
            /* nodes put before the doubling (most not copied yet) and after */
            for (uint32_t j = i % 7; j <= i; j += 1 + i / 16) {
                assert_true(mn_nodemap_get(m, pos, pos_of(pos, j), got));
                node_of(node, j, 6);
                assert_memory_equal(got, node, MN_SMT_NODE_LEN);
            }
            if (i % 5 == 0 && started > 10) {
                uint32_t j = started - 1 - i % 11; /* put before the doubling */
                size_t pl = pos_of(pos, j);
                assert_int_equal(mn_nodemap_del(m, pos, pl), MN_OK);
                assert_false(mn_nodemap_get(m, pos, pl, got));
                node_of(node, j, 6);
                assert_int_equal(mn_nodemap_put(m, pos, pl, node), MN_OK);
                assert_true(mn_nodemap_get(m, pos, pl, got));
            }
        }
        if (was && !mn_nodemap_growing(m)) done = i;
    }
    assert_true(growths >= 5);      /* 1024 slots to 262,144 */
    assert_true(done > started + 1); /* the last copy took several puts */
    assert_int_equal(mn_nodemap_count(m), i);
    for (uint32_t j = 0; j < i; j += 3) {
        assert_true(mn_nodemap_get(m, pos, pos_of(pos, j), got));
        node_of(node, j, 6);
        assert_memory_equal(got, node, MN_SMT_NODE_LEN);
    }
    mn_nodemap_free(m);
}

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
    /* node 2 is at depth 26 (a short entry), node 100 at depth 124 (a long
     * one): both kinds have their first chunk, which holds the rest */
    for (uint32_t i = 2; i <= 100; i += 98) {
        pl = pos_of(pos, i);
        node_of(node, i, 0);
        assert_int_equal(mn_nodemap_put(m, pos, pl, node), MN_OK);
    }
    size_t bytes = mn_nodemap_bytes(m);
    for (uint32_t i = 3; i <= N; i++) {
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

/* Prefetch hints, of present, absent and malformed positions, on an empty
 * map and a full one, change nothing. */
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
        cmocka_unit_test(shallow_positions_take_short_entries),
        cmocka_unit_test(slots_grow_a_few_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
