/* test_kvmap.c: the write-set map: values, deletions and absences;
 * overwrites longer and shorter than before, after a deletion; values
 * larger than a chunk; iteration in first-insertion order; clear and reuse;
 * merge. Checked against a plain array model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmap.h"

enum { KEYS = 3000, VMAX = 300 };

/* The model: per key, its state and value; order of first writes. */
typedef struct model {
    int state[KEYS];
    uint8_t val[KEYS][VMAX];
    size_t len[KEYS];
    int order[KEYS];
    size_t n;
} model;

static size_t key_of(char *k, int i) { return (size_t)snprintf(k, 32, "key-%d", i); }

static void model_set(model *m, int i, const uint8_t *v, size_t len, bool del) {
    if (m->state[i] == MN_KV_ABSENT) m->order[m->n++] = i;
    m->state[i] = del ? MN_KV_DELETED : MN_KV_VALUE;
    m->len[i] = del ? 0 : len;
    if (!del) memcpy(m->val[i], v, len);
}

static void agrees(const mn_kvmap *kv, const model *m) {
    assert_int_equal(mn_kv_count(kv), m->n);
    for (int i = 0; i < KEYS; i++) {
        char k[32];
        size_t kl = key_of(k, i);
        const uint8_t *v = NULL;
        size_t vl = 0;
        int st = mn_kv_get(kv, k, kl, &v, &vl);
        assert_int_equal(st, m->state[i]);
        if (st == MN_KV_VALUE) {
            assert_int_equal(vl, m->len[i]);
            assert_memory_equal(v, m->val[i], vl ? vl : 0);
        }
    }
    for (size_t j = 0; j < m->n; j++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        mn_kv_entry(kv, j, &k, &kl, &v, &vl);
        char want[32];
        size_t wl = key_of(want, m->order[j]);
        assert_int_equal(kl, wl);
        assert_memory_equal(k, want, kl);
        assert_int_equal(v == NULL, m->state[m->order[j]] == MN_KV_DELETED);
    }
}

static uint64_t rng_state = 99;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_writes_match_the_model(void **state) {
    (void)state;
    static model m;
    mn_kvmap *kv = mn_kv_new();
    assert_non_null(kv);
    for (int round = 0; round < 3; round++) {
        memset(&m, 0, sizeof m);
        for (int op = 0; op < 20000; op++) {
            int i = (int)(rng() % (op < 5000 ? KEYS : 200)); /* later: many overwrites of few keys */
            char k[32];
            size_t kl = key_of(k, i);
            if (rng() % 5 == 0) {
                assert_int_equal(mn_kv_del(kv, k, kl), MN_OK);
                model_set(&m, i, NULL, 0, true);
            } else {
                uint8_t v[VMAX];
                size_t len = (size_t)(rng() % VMAX);
                for (size_t b = 0; b < len; b++) v[b] = (uint8_t)rng();
                assert_int_equal(mn_kv_put(kv, k, kl, v, len), MN_OK);
                model_set(&m, i, v, len, false);
            }
        }
        agrees(kv, &m);
        mn_kv_clear(kv); /* reused, emptied */
        assert_int_equal(mn_kv_count(kv), 0);
        char k[32];
        assert_int_equal(mn_kv_get(kv, k, key_of(k, 1), NULL, NULL), MN_KV_ABSENT);
    }
    mn_kv_free(kv);
}

/* Values larger than a chunk, beside small ones written before and after. */
static void large_values_keep_their_neighbours(void **state) {
    (void)state;
    mn_kvmap *kv = mn_kv_new();
    size_t big = 300 * 1024;
    uint8_t *b1 = malloc(big), *b2 = malloc(big + 1);
    assert_non_null(b1);
    assert_non_null(b2);
    memset(b1, 0xAB, big);
    memset(b2, 0xCD, big + 1);
    assert_int_equal(mn_kv_put(kv, "a", 1, "small", 5), MN_OK);
    assert_int_equal(mn_kv_put(kv, "big", 3, b1, big), MN_OK);
    assert_int_equal(mn_kv_put(kv, "b", 1, "after", 5), MN_OK);
    assert_int_equal(mn_kv_put(kv, "big", 3, b2, big + 1), MN_OK); /* grows: new room */
    assert_int_equal(mn_kv_put(kv, "a", 1, "x", 1), MN_OK);        /* shrinks: in place */
    const uint8_t *v;
    size_t vl;
    assert_int_equal(mn_kv_get(kv, "big", 3, &v, &vl), MN_KV_VALUE);
    assert_int_equal(vl, big + 1);
    assert_memory_equal(v, b2, vl);
    assert_int_equal(mn_kv_get(kv, "a", 1, &v, &vl), MN_KV_VALUE);
    assert_int_equal(vl, 1);
    assert_memory_equal(v, "x", 1);
    assert_int_equal(mn_kv_get(kv, "b", 1, &v, &vl), MN_KV_VALUE);
    assert_memory_equal(v, "after", 5);
    assert_int_equal(mn_kv_put(kv, "big", 3, NULL, 0), MN_OK); /* empty value, not a deletion */
    assert_int_equal(mn_kv_get(kv, "big", 3, &v, &vl), MN_KV_VALUE);
    assert_int_equal(vl, 0);
    /* merge copies values, deletions included */
    assert_int_equal(mn_kv_del(kv, "b", 1), MN_OK);
    mn_kvmap *dst = mn_kv_new();
    assert_int_equal(mn_kv_put(dst, "b", 1, "old", 3), MN_OK);
    assert_int_equal(mn_kv_merge(dst, kv), MN_OK);
    assert_int_equal(mn_kv_get(dst, "b", 1, NULL, NULL), MN_KV_DELETED);
    assert_int_equal(mn_kv_get(dst, "a", 1, &v, &vl), MN_KV_VALUE);
    assert_memory_equal(v, "x", 1);
    mn_kv_free(kv);
    assert_int_equal(mn_kv_get(dst, "a", 1, &v, &vl), MN_KV_VALUE); /* its own copy */
    assert_memory_equal(v, "x", 1);
    mn_kv_free(dst);
    free(b1);
    free(b2);
}

static void oversized_keys_are_refused(void **state) {
    (void)state;
    mn_kvmap *kv = mn_kv_new();
    uint8_t k[MN_KV_KEY_MAX + 1] = {0};
    assert_int_equal(mn_kv_put(kv, k, sizeof k, "v", 1), MN_ETOOBIG);
    assert_int_equal(mn_kv_put(kv, k, 0, "v", 1), MN_ETOOBIG);
    assert_int_equal(mn_kv_put(kv, k, MN_KV_KEY_MAX, "v", 1), MN_OK);
    assert_int_equal(mn_kv_count(kv), 1);
    mn_kv_free(kv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_writes_match_the_model),
        cmocka_unit_test(large_values_keep_their_neighbours),
        cmocka_unit_test(oversized_keys_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
