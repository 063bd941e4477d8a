/* test_smt.c: the sparse Merkle tree: batch updates against a naive
 * recomputation, canonical shape, proofs of inclusion and absence, and
 * proofs altered in any single byte failing to verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "kvmap.h"
#include "smt.h"

static uint64_t rng_state;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* n random key hashes; every `every`-th one (from the second) differs from
 * the key before it only in the last bit, so the tree splits at depth 255. */
static void random_keys(uint8_t (*keys)[32], int n, int every) {
    for (int i = 0; i < n; i++) {
        uint64_t r = rng();
        mn_sha256(keys[i], &r, sizeof r);
        if (i % every == 1) {
            memcpy(keys[i], keys[i - 1], 32);
            keys[i][31] ^= 1;
        }
    }
}

/* The committed node store of a test: a kvmap. */
static int base_get(void *ctx, const uint8_t *k, size_t kl, uint8_t node[static MN_SMT_NODE_LEN]) {
    const uint8_t *v;
    size_t vl;
    if (mn_kv_get(ctx, k, kl, &v, &vl) != MN_KV_VALUE) return MN_ENOTFOUND;
    if (vl != MN_SMT_NODE_LEN) return MN_ECORRUPT;
    memcpy(node, v, vl);
    return MN_OK;
}

static size_t live_nodes(const mn_kvmap *m) {
    size_t n = 0;
    for (size_t i = 0; i < mn_kv_count(m); i++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        mn_kv_entry(m, i, &k, &kl, &v, &vl);
        if (v) n++;
    }
    return n;
}

/* A model entry: key and value hash, kept sorted by key. */
typedef struct { uint8_t k[32], vh[32]; bool implicit; } ent;

static int ent_cmp(const void *a, const void *b) { return memcmp(a, b, 32); }

static int bit(const uint8_t *k, unsigned d) { return (k[d / 8] >> (7 - d % 8)) & 1; }

/* Root of the canonical tree over e[0..n) sharing the first d bits; counts nodes. */
static void naive(const ent *e, size_t n, unsigned d, uint8_t out[32], size_t *nodes) {
    if (n == 0) {
        memset(out, 0, 32);
        return;
    }
    (*nodes)++;
    if (n == 1) {
        mn_smt_leaf_hash(out, e[0].k, e[0].vh);
        return;
    }
    size_t s = 0;
    while (s < n && !bit(e[s].k, d)) s++;
    uint8_t buf[65];
    buf[0] = 1;
    naive(e, s, d + 1, buf + 1, nodes);
    naive(e + s, n - s, d + 1, buf + 33, nodes);
    mn_sha256(out, buf, 65);
}

typedef struct model { ent *e; size_t n, cap; } model;

static void model_set_ex(model *m, const uint8_t *k, const uint8_t *vh, bool remove, bool implicit) {
    for (size_t i = 0; i < m->n; i++)
        if (memcmp(m->e[i].k, k, 32) == 0) {
            if (remove) {
                m->e[i] = m->e[--m->n];
            } else {
                memcpy(m->e[i].vh, vh, 32);
            }
            return;
        }
    if (remove) return;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->e = realloc(m->e, m->cap * sizeof(ent));
        assert_non_null(m->e);
    }
    memcpy(m->e[m->n].k, k, 32);
    memcpy(m->e[m->n].vh, vh, 32);
    m->e[m->n].implicit = implicit;
    m->n++;
}

static void model_set(model *m, const uint8_t *k, const uint8_t *vh, bool remove) {
    model_set_ex(m, k, vh, remove, false);
}

/* A source whose implicit leaves come from a committed model, the way
 * the store derives them from records ordered by key hash. */
typedef struct { mn_kvmap *base; model *m; size_t leaf_calls, prefix_calls; } imp_src;

static int imp_leaf(void *ctx, const uint8_t *k, size_t kl, uint8_t node[static MN_SMT_NODE_LEN]) {
    imp_src *s = ctx;
    s->leaf_calls++;
    unsigned depth = ((unsigned)k[1] << 8) | k[2];
    assert_int_equal(kl, 3 + (depth + 7) / 8);
    for (size_t i = 0; i < s->m->n; i++) {
        const ent *e = &s->m->e[i];
        if (!e->implicit) continue;
        unsigned d = 0;
        while (d < depth && bit(e->k, d) == bit(k + 3, d)) d++;
        if (d < depth) continue;
        node[0] = MN_SMT_IMPLICIT;
        memcpy(node + 1, e->k, 32);
        memcpy(node + 33, e->vh, 32);
        return MN_OK;
    }
    return MN_ENOTFOUND;
}

/* The first 8 bytes of the implicit leaf's key, as the ledger's in-memory
 * tree answers them (nodemap.h), for positions down to depth 64. */
static int imp_leaf_prefix(void *ctx, const uint8_t *k, size_t kl, uint8_t prefix[static 8]) {
    imp_src *s = ctx;
    unsigned depth = ((unsigned)k[1] << 8) | k[2];
    assert_int_equal(kl, 3 + (depth + 7) / 8);
    if (depth > 64) return MN_ENOTFOUND;
    uint8_t node[MN_SMT_NODE_LEN];
    size_t calls = s->leaf_calls;
    int rc = imp_leaf(ctx, k, kl, node);
    s->leaf_calls = calls;
    if (rc != MN_OK) return rc;
    s->prefix_calls++;
    memcpy(prefix, node + 1, 8);
    return MN_OK;
}

static int imp_get(void *ctx, const uint8_t *k, size_t kl, uint8_t node[static MN_SMT_NODE_LEN]) {
    imp_src *s = ctx;
    int rc = base_get(s->base, k, kl, node);
    return rc == MN_ENOTFOUND ? imp_leaf(ctx, k, kl, node) : rc;
}

static void empty_tree_root_is_zero_and_proves_absence(void **state) {
    (void)state;
    mn_kvmap *base = mn_kv_new();
    mn_smt_src src = {base_get, base};
    uint8_t zero[32] = {0}, k[32], root[32];
    mn_sha256(k, "x", 1);
    Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
    assert_int_equal(mn_smt_prove(&src, NULL, zero, k, &p), MN_OK);
    assert_int_equal(p.depth, 0);
    assert_int_equal(mn_smt_verify(zero, k, NULL, 0, &p, NULL), MN_OK);
    assert_int_not_equal(mn_smt_verify(zero, k, (const uint8_t *)"v", 1, &p, NULL), MN_OK);
    mn_smt_proof_clear(&p);
    /* One leaf: the root is that leaf's hash. */
    mn_smt_item it = {0};
    memcpy(it.key_hash, k, 32);
    mn_sha256(it.value_hash, "v", 1);
    mn_kvmap *w = mn_kv_new();
    assert_int_equal(mn_smt_update(&src, w, zero, &it, 1, root), MN_OK);
    uint8_t leaf[32];
    mn_smt_leaf_hash(leaf, k, it.value_hash);
    assert_memory_equal(root, leaf, 32);
    assert_int_equal(mn_kv_merge(base, w), MN_OK);
    assert_int_equal(mn_smt_prove(&src, NULL, root, k, &p), MN_OK);
    assert_int_equal(mn_smt_verify(root, k, (const uint8_t *)"v", 1, &p, NULL), MN_OK);
    mn_smt_proof_clear(&p);
    /* Removing it empties the tree and its node. */
    it.remove = true;
    mn_kv_clear(w);
    assert_int_equal(mn_smt_update(&src, w, root, &it, 1, root), MN_OK);
    assert_memory_equal(root, zero, 32);
    assert_int_equal(mn_kv_merge(base, w), MN_OK);
    assert_int_equal(live_nodes(base), 0);
    mn_kv_free(w);
    mn_kv_free(base);
}

static void random_batches_match_naive_recompute(void **state) {
    (void)state;
    rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)time(NULL);
    uint64_t seed = rng_state;
    print_message("seed %llu\n", (unsigned long long)seed);
    mn_kvmap *base = mn_kv_new();
    mn_smt_src src = {base_get, base};
    model m = {0};
    uint8_t root[32] = {0};
    uint8_t keys[600][32];
    random_keys(keys, 600, 50);
    for (int round = 0; round < 40; round++) {
        size_t n = 1 + rng() % 80;
        mn_smt_item *items = calloc(n, sizeof *items);
        for (size_t i = 0; i < n; i++) {
            memcpy(items[i].key_hash, keys[rng() % 600], 32);
            uint64_t v = rng();
            mn_sha256(items[i].value_hash, &v, sizeof v);
            items[i].remove = rng() % 4 == 0;
        }
        for (size_t i = 0; i < n; i++) model_set(&m, items[i].key_hash, items[i].value_hash, items[i].remove);
        mn_kvmap *w = mn_kv_new();
        assert_int_equal(mn_smt_update(&src, w, root, items, n, root), MN_OK);
        assert_int_equal(mn_kv_merge(base, w), MN_OK);
        mn_kv_free(w);
        free(items);
        qsort(m.e, m.n, sizeof(ent), ent_cmp);
        uint8_t want[32];
        size_t nodes = 0;
        naive(m.e, m.n, 0, want, &nodes);
        if (memcmp(want, root, 32) != 0) fail_msg("seed %llu round %d: root differs", (unsigned long long)seed, round);
        /* No stale node is left behind: stored nodes are exactly the tree's. */
        assert_int_equal(live_nodes(base), nodes);
        /* Lookups agree with the model. */
        for (int q = 0; q < 20; q++) {
            const uint8_t *k = keys[rng() % 600];
            uint8_t vh[32];
            int rc = mn_smt_get(&src, NULL, root, k, vh);
            ent *hit = bsearch(k, m.e, m.n, sizeof(ent), ent_cmp);
            if (hit) {
                assert_int_equal(rc, MN_OK);
                assert_memory_equal(vh, hit->vh, 32);
            } else {
                assert_int_equal(rc, MN_ENOTFOUND);
            }
        }
    }
    /* Order independence: the same set inserted in one batch, reversed. */
    mn_kvmap *base2 = mn_kv_new();
    mn_smt_src src2 = {base_get, base2};
    mn_smt_item *all = calloc(m.n, sizeof *all);
    for (size_t i = 0; i < m.n; i++) {
        memcpy(all[i].key_hash, m.e[m.n - 1 - i].k, 32);
        memcpy(all[i].value_hash, m.e[m.n - 1 - i].vh, 32);
    }
    uint8_t zero[32] = {0}, root2[32];
    assert_int_equal(mn_smt_update(&src2, base2, zero, all, m.n, root2), MN_OK);
    assert_memory_equal(root, root2, 32);
    free(all);
    free(m.e);
    mn_kv_free(base);
    mn_kv_free(base2);
}

static int sink_into(void *ctx, const uint8_t *pos, size_t len, const uint8_t *node) {
    return node ? mn_kv_put(ctx, pos, len, node, MN_SMT_NODE_LEN) : mn_kv_del(ctx, pos, len);
}

/* mn_smt_update_to, its sink writing straight into the map its source
 * reads, leaves the same root and the same stored nodes as mn_smt_update
 * with a write set merged after each batch: through inserts, updates and
 * removals, in batches sorted (no copy is made) and not. */
static void a_sink_into_the_source_matches_a_write_set(void **state) {
    (void)state;
    rng_state = 0xD1B54A32D192ED03ULL ^ (uint64_t)time(NULL);
    uint64_t seed = rng_state;
    print_message("seed %llu\n", (unsigned long long)seed);
    mn_kvmap *a = mn_kv_new(), *b = mn_kv_new();
    mn_smt_src src_a = {base_get, a}, src_b = {base_get, b};
    mn_smt_sink sink = {sink_into, b};
    uint8_t root_a[32] = {0}, root_b[32] = {0};
    uint8_t keys[400][32];
    random_keys(keys, 400, 40);
    for (int round = 0; round < 30; round++) {
        size_t n = 1 + rng() % 120;
        mn_smt_item *items = calloc(n, sizeof *items), *copy = calloc(n, sizeof *copy);
        assert_non_null(items);
        assert_non_null(copy);
        for (size_t i = 0; i < n; i++) {
            memcpy(items[i].key_hash, keys[rng() % 400], 32);
            uint64_t v = rng();
            mn_sha256(items[i].value_hash, &v, sizeof v);
            items[i].remove = round > 3 && rng() % 4 == 0;
        }
        if (round % 2 == 0) { /* sorted, one item per key */
            qsort(items, n, sizeof *items, ent_cmp);
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (m == 0 || memcmp(items[m - 1].key_hash, items[i].key_hash, 32) != 0) items[m++] = items[i];
            n = m;
        }
        memcpy(copy, items, n * sizeof *items);
        mn_kvmap *w = mn_kv_new();
        assert_int_equal(mn_smt_update(&src_a, w, root_a, items, n, root_a), MN_OK);
        assert_int_equal(mn_kv_merge(a, w), MN_OK);
        mn_kv_free(w);
        assert_int_equal(mn_smt_update_to(&src_b, &sink, root_b, copy, n, root_b), MN_OK);
        if (memcmp(root_a, root_b, 32) != 0) fail_msg("seed %llu round %d: roots differ", (unsigned long long)seed, round);
        assert_int_equal(live_nodes(a), live_nodes(b));
        for (size_t i = 0; i < mn_kv_count(a); i++) {
            const uint8_t *k, *v, *vb;
            size_t kl, vl, vbl;
            mn_kv_entry(a, i, &k, &kl, &v, &vl);
            if (!v) continue;
            assert_int_equal(mn_kv_get(b, k, kl, &vb, &vbl), MN_KV_VALUE);
            assert_int_equal(vbl, vl);
            assert_memory_equal(vb, v, vl);
        }
        free(items);
        free(copy);
    }
    mn_kv_free(a);
    mn_kv_free(b);
}

/* Half the keys with implicit leaves (not written; the source derives
 * them): the same roots as the naive tree, only internal nodes and
 * explicit leaves stored, through inserts, updates and removals that move
 * leaves up and down. with_prefix: the source also knows each implicit
 * leaf's first 8 key bytes; one key in 40 shares 255 bits with another,
 * so updates also meet leaves those 8 bytes do not settle. */
static void run_implicit_leaves(bool with_prefix) {
    rng_state = 0x2545F4914F6CDD1DULL ^ (uint64_t)time(NULL);
    uint64_t seed = rng_state;
    print_message("seed %llu\n", (unsigned long long)seed);
    mn_kvmap *base = mn_kv_new();
    model m = {0}, committed = {0};
    imp_src is = {base, &committed, 0, 0};
    mn_smt_src src = {imp_get, &is, imp_leaf, NULL, with_prefix ? imp_leaf_prefix : NULL};
    uint8_t root[32] = {0};
    uint8_t keys[400][32];
    size_t update_leaf_calls = 0;
    random_keys(keys, 400, 40);
    for (int round = 0; round < 40; round++) {
        size_t n = 1 + rng() % 60;
        mn_smt_item *items = calloc(n, sizeof *items);
        for (size_t i = 0; i < n; i++) {
            size_t ki = rng() % 400;
            memcpy(items[i].key_hash, keys[ki], 32);
            uint64_t v = rng();
            mn_sha256(items[i].value_hash, &v, sizeof v);
            items[i].remove = rng() % 4 == 0;
            items[i].implicit = ki % 2 == 0;
        }
        for (size_t i = 0; i < n; i++)
            model_set_ex(&m, items[i].key_hash, items[i].value_hash, items[i].remove, items[i].implicit);
        mn_kvmap *w = mn_kv_new();
        size_t calls = is.leaf_calls;
        assert_int_equal(mn_smt_update(&src, w, root, items, n, root), MN_OK);
        update_leaf_calls += is.leaf_calls - calls;
        assert_int_equal(mn_kv_merge(base, w), MN_OK);
        mn_kv_free(w);
        free(items);
        qsort(m.e, m.n, sizeof(ent), ent_cmp);
        committed.n = 0;
        for (size_t i = 0; i < m.n; i++) model_set_ex(&committed, m.e[i].k, m.e[i].vh, false, m.e[i].implicit);
        uint8_t want[32];
        size_t nodes = 0, implicit = 0;
        naive(m.e, m.n, 0, want, &nodes);
        for (size_t i = 0; i < m.n; i++) implicit += m.e[i].implicit;
        if (memcmp(want, root, 32) != 0) fail_msg("seed %llu round %d: root differs", (unsigned long long)seed, round);
        assert_int_equal(live_nodes(base), nodes - implicit);
        for (size_t i = 0; i < mn_kv_count(base); i++) {
            const uint8_t *k, *v;
            size_t kl, vl;
            mn_kv_entry(base, i, &k, &kl, &v, &vl);
            if (!v || v[0] != 'L') continue;
            ent *e = bsearch(v + 1, m.e, m.n, sizeof(ent), ent_cmp);
            assert_non_null(e);
            assert_false(e->implicit);
        }
        for (int q = 0; q < 20; q++) {
            const uint8_t *k = keys[rng() % 400];
            uint8_t vh[32];
            int rc = mn_smt_get(&src, NULL, root, k, vh);
            ent *hit = bsearch(k, m.e, m.n, sizeof(ent), ent_cmp);
            if (hit) {
                assert_int_equal(rc, MN_OK);
                assert_memory_equal(vh, hit->vh, 32);
            } else {
                assert_int_equal(rc, MN_ENOTFOUND);
            }
            Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
            assert_int_equal(mn_smt_prove(&src, NULL, root, k, &p), MN_OK);
            mn_smt_proof_clear(&p);
        }
    }
    /* Parents told the tree which children are implicit: it asked for them directly. */
    assert_true(is.leaf_calls > 0);
    if (with_prefix) {
        /* Updates took the prefixes, and the whole leaf only where a key
         * shared its first 8 bytes. */
        assert_true(is.prefix_calls > 0);
        assert_true(update_leaf_calls < is.prefix_calls);
    } else {
        assert_int_equal(is.prefix_calls, 0);
        assert_true(update_leaf_calls > 0);
    }
    free(m.e);
    free(committed.e);
    mn_kv_free(base);
}

static void implicit_leaves_are_not_stored(void **state) {
    (void)state;
    run_implicit_leaves(false);
}

static void implicit_leaves_from_key_prefixes(void **state) {
    (void)state;
    run_implicit_leaves(true);
}

/* A key that shares the first 8 bytes of an implicit leaf's key makes the
 * update read the whole leaf: the prefix alone would part them wrongly. */
static void a_shared_prefix_reads_the_whole_leaf(void **state) {
    (void)state;
    mn_kvmap *base = mn_kv_new();
    model committed = {0};
    imp_src is = {base, &committed, 0, 0};
    mn_smt_src src = {imp_get, &is, imp_leaf, NULL, imp_leaf_prefix};
    uint8_t k[3][32], zero[32] = {0}, root[32], want[32];
    mn_sha256(k[0], "a", 1);
    mn_sha256(k[1], "b", 1);
    memcpy(k[2], k[0], 32);
    k[2][20] ^= 0x10; /* shares 160 bits with k[0] */
    mn_smt_item it[2] = {0};
    for (int i = 0; i < 2; i++) {
        memcpy(it[i].key_hash, k[i], 32);
        mn_sha256(it[i].value_hash, &i, sizeof i);
        it[i].implicit = true;
        model_set_ex(&committed, it[i].key_hash, it[i].value_hash, false, true);
    }
    mn_kvmap *w = mn_kv_new();
    assert_int_equal(mn_smt_update(&src, w, zero, it, 2, root), MN_OK);
    assert_int_equal(mn_kv_merge(base, w), MN_OK);
    mn_kv_free(w);
    qsort(committed.e, committed.n, sizeof(ent), ent_cmp);
    /* The root's children are the implicit leaves of k[0] and k[1] (their
     * first bits differ); k[2] lands on k[0]'s, whose first 8 bytes it
     * shares: the update asks for the prefix, then for the whole leaf. */
    mn_smt_item add = {0};
    memcpy(add.key_hash, k[2], 32);
    mn_sha256(add.value_hash, "c", 1);
    add.implicit = true;
    is.leaf_calls = is.prefix_calls = 0;
    w = mn_kv_new();
    assert_int_equal(mn_smt_update(&src, w, root, &add, 1, root), MN_OK);
    mn_kv_free(w);
    assert_int_equal(is.prefix_calls, 1);
    assert_int_equal(is.leaf_calls, 1);
    model all = {0};
    for (size_t i = 0; i < committed.n; i++) model_set_ex(&all, committed.e[i].k, committed.e[i].vh, false, true);
    model_set_ex(&all, add.key_hash, add.value_hash, false, true);
    qsort(all.e, all.n, sizeof(ent), ent_cmp);
    size_t nodes = 0;
    naive(all.e, all.n, 0, want, &nodes);
    assert_memory_equal(root, want, 32);
    free(all.e);
    free(committed.e);
    mn_kv_free(base);
}

/* Builds a tree of n random leaves whose values are "value i". */
static void build_tree(mn_kvmap *base, size_t n, uint8_t keys[][32], uint8_t root[32]) {
    mn_smt_src src = {base_get, base};
    mn_smt_item *items = calloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        char v[32];
        int vl = snprintf(v, sizeof v, "value %zu", i);
        uint64_t r = rng();
        mn_sha256(keys[i], &r, sizeof r);
        memcpy(items[i].key_hash, keys[i], 32);
        mn_sha256(items[i].value_hash, v, (size_t)vl);
    }
    uint8_t zero[32] = {0};
    assert_int_equal(mn_smt_update(&src, base, zero, items, n, root), MN_OK);
    free(items);
}

/* Every single-byte change of a valid proof must fail to verify. */
static void check_tamper(const uint8_t root[32], const uint8_t k[32], const uint8_t *val, size_t vl,
                         Midnode__MerkleProof *p) {
    assert_int_equal(mn_smt_verify(root, k, val, vl, p, NULL), MN_OK);
    ProtobufCBinaryData *fields[4 + 64];
    size_t nf = 0;
    fields[nf++] = &p->key_hash;
    fields[nf++] = &p->empty_bitmap;
    fields[nf++] = &p->other_key_hash;
    fields[nf++] = &p->other_value_hash;
    for (size_t i = 0; i < p->n_siblings && nf < 68; i++) fields[nf++] = &p->siblings[i];
    for (size_t f = 0; f < nf; f++)
        for (size_t b = 0; b < fields[f]->len; b++) {
            fields[f]->data[b] ^= 0x01;
            const char *why = NULL;
            if (mn_smt_verify(root, k, val, vl, p, &why) == MN_OK)
                fail_msg("field %zu byte %zu altered still verifies", f, b);
            assert_non_null(why);
            fields[f]->data[b] ^= 0x01;
        }
    uint32_t d = p->depth;
    p->depth = d + 1;
    assert_int_not_equal(mn_smt_verify(root, k, val, vl, p, NULL), MN_OK);
    p->depth = d ? d - 1 : 300;
    assert_int_not_equal(mn_smt_verify(root, k, val, vl, p, NULL), MN_OK);
    p->depth = d;
    if (val) {
        uint8_t bad[64];
        memcpy(bad, val, vl);
        for (size_t b = 0; b < vl; b++) {
            bad[b] ^= 0x80;
            assert_int_not_equal(mn_smt_verify(root, k, bad, vl, p, NULL), MN_OK);
            bad[b] ^= 0x80;
        }
        assert_int_not_equal(mn_smt_verify(root, k, NULL, 0, p, NULL), MN_OK);
    } else {
        assert_int_not_equal(mn_smt_verify(root, k, (const uint8_t *)"x", 1, p, NULL), MN_OK);
    }
    uint8_t other_root[32];
    memcpy(other_root, root, 32);
    other_root[5] ^= 0x10;
    assert_int_not_equal(mn_smt_verify(other_root, k, val, vl, p, NULL), MN_OK);
    uint8_t other_key[32];
    memcpy(other_key, k, 32);
    other_key[0] ^= 0x80;
    assert_int_not_equal(mn_smt_verify(root, other_key, val, vl, p, NULL), MN_OK);
    assert_int_not_equal(mn_smt_verify(root, k, val, vl, NULL, NULL), MN_OK);
}

static void proofs_verify_and_tampering_fails(void **state) {
    (void)state;
    rng_state = 12345;
    mn_kvmap *base = mn_kv_new();
    mn_smt_src src = {base_get, base};
    enum { N = 300 };
    static uint8_t keys[N][32];
    uint8_t root[32];
    build_tree(base, N, keys, root);
    size_t absent_empty = 0, absent_other = 0;
    for (size_t i = 0; i < N; i += 7) {
        char v[32];
        int vl = snprintf(v, sizeof v, "value %zu", i);
        Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
        assert_int_equal(mn_smt_prove(&src, NULL, root, keys[i], &p), MN_OK);
        assert_int_equal(p.other_key_hash.len, 0);
        check_tamper(root, keys[i], (const uint8_t *)v, (size_t)vl, &p);
        mn_smt_proof_clear(&p);
    }
    for (int i = 0; i < 60; i++) {
        uint8_t k[32];
        uint64_t r = rng();
        mn_sha256(k, &r, sizeof r);
        Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
        assert_int_equal(mn_smt_prove(&src, NULL, root, k, &p), MN_OK);
        if (p.other_key_hash.len)
            absent_other++;
        else
            absent_empty++;
        check_tamper(root, k, NULL, 0, &p);
        /* An absence proof is no proof of presence of anything. */
        assert_int_not_equal(mn_smt_verify(root, k, (const uint8_t *)"value 0", 7, &p, NULL), MN_OK);
        mn_smt_proof_clear(&p);
    }
    assert_true(absent_empty > 0); /* both kinds of absence were exercised */
    assert_true(absent_other > 0);
    /* A proof of one key does not prove another present key. */
    Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
    assert_int_equal(mn_smt_prove(&src, NULL, root, keys[0], &p), MN_OK);
    assert_int_not_equal(mn_smt_verify(root, keys[1], (const uint8_t *)"value 0", 7, &p, NULL), MN_OK);
    mn_smt_proof_clear(&p);
    mn_kv_free(base);
}

static void corrupt_node_is_detected(void **state) {
    (void)state;
    rng_state = 777;
    mn_kvmap *base = mn_kv_new();
    mn_smt_src src = {base_get, base};
    static uint8_t keys[50][32];
    uint8_t root[32];
    build_tree(base, 50, keys, root);
    /* Flip one byte of the root node as stored. */
    uint8_t pk[MN_SMT_POS_KEY_MAX], zero[32] = {0};
    size_t pl = mn_smt_pos_key(pk, 0, zero);
    const uint8_t *v;
    size_t vl;
    assert_int_equal(mn_kv_get(base, pk, pl, &v, &vl), MN_KV_VALUE);
    uint8_t node[65];
    memcpy(node, v, 65);
    node[10] ^= 1;
    assert_int_equal(mn_kv_put(base, pk, pl, node, 65), MN_OK);
    assert_int_equal(mn_smt_get(&src, NULL, root, keys[3], NULL), MN_ECORRUPT);
    mn_smt_item it = {0};
    mn_kvmap *w = mn_kv_new();
    assert_int_equal(mn_smt_update(&src, w, root, &it, 1, root), MN_ECORRUPT);
    mn_kv_free(w);
    mn_kv_free(base);
}

/* A source that counts what the tree asks of it. */
typedef struct counting { mn_kvmap *base; size_t gets; } counting;

static int counting_get(void *ctx, const uint8_t *k, size_t kl, uint8_t node[static MN_SMT_NODE_LEN]) {
    counting *c = ctx;
    c->gets++;
    return base_get(c->base, k, kl, node);
}

/* An update reads the nodes on its keys' paths, and a sibling only when
 * the other side emptied: changing one value of a tree of 2000 leaves reads
 * one node per level of its path (about 11 deep), not the ~22 a read of
 * both children at every level costs. */
static void an_update_reads_only_its_path(void **state) {
    (void)state;
    rng_state = 4242;
    mn_kvmap *base = mn_kv_new();
    enum { N = 2000 };
    static uint8_t keys[N][32];
    uint8_t root[32];
    build_tree(base, N, keys, root);
    counting cnt = {base, 0};
    mn_smt_src src = {counting_get, &cnt};
    Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
    assert_int_equal(mn_smt_prove(&src, NULL, root, keys[17], &p), MN_OK);
    size_t path = cnt.gets; /* the root, each internal node, and the leaf */
    assert_int_equal(path, p.depth + 1);
    mn_smt_proof_clear(&p);

    mn_smt_item it = {0};
    memcpy(it.key_hash, keys[17], 32);
    mn_sha256(it.value_hash, "changed", 7);
    mn_kvmap *w = mn_kv_new();
    uint8_t r2[32];
    cnt.gets = 0;
    assert_int_equal(mn_smt_update(&src, w, root, &it, 1, r2), MN_OK);
    assert_int_equal(cnt.gets, path);
    assert_memory_not_equal(r2, root, 32);

    /* Removing a key whose sibling is a leaf reads that sibling too (the
     * leaf moves up); the result matches a rebuild without the key. */
    mn_kv_clear(w);
    it.remove = true;
    cnt.gets = 0;
    assert_int_equal(mn_smt_update(&src, w, root, &it, 1, r2), MN_OK);
    assert_true(cnt.gets >= path);
    assert_true(cnt.gets <= path + 1);
    mn_kvmap *again = mn_kv_new();
    mn_smt_src asrc = {base_get, again};
    mn_smt_item *items = calloc(N, sizeof *items);
    size_t m = 0;
    for (size_t i = 0; i < N; i++) {
        if (i == 17) continue;
        char v[32];
        int vl = snprintf(v, sizeof v, "value %zu", i);
        memcpy(items[m].key_hash, keys[i], 32);
        mn_sha256(items[m].value_hash, v, (size_t)vl);
        m++;
    }
    uint8_t zero[32] = {0}, r3[32];
    assert_int_equal(mn_smt_update(&asrc, again, zero, items, m, r3), MN_OK);
    assert_memory_equal(r2, r3, 32);
    free(items);
    mn_kv_free(again);
    mn_kv_free(w);
    mn_kv_free(base);
}

/* A source that records the positions the tree says it will read. */
typedef struct hinted { mn_kvmap *base; size_t hints[2]; size_t off_path; const uint8_t *key; } hinted;

static int hinted_get(void *ctx, const uint8_t *k, size_t kl, uint8_t node[static MN_SMT_NODE_LEN]) {
    return base_get(((hinted *)ctx)->base, k, kl, node);
}

static void hinted_prefetch(void *ctx, const uint8_t *pos, size_t len, int stage) {
    hinted *h = ctx;
    assert_true(stage == 0 || stage == 1);
    h->hints[stage]++;
    unsigned depth = ((unsigned)pos[1] << 8) | pos[2];
    uint8_t want[MN_SMT_POS_KEY_MAX];
    if (depth > MN_SMT_DEPTH_MAX || mn_smt_pos_key(want, depth, h->key) != len || memcmp(want, pos, len) != 0)
        h->off_path++;
}

/* Below the level where one key is left, an update tells the source which
 * positions of that key's path it will read next; the hints change
 * nothing in the result. */
static void an_update_hints_a_lone_keys_path(void **state) {
    (void)state;
    rng_state = 777;
    mn_kvmap *base = mn_kv_new();
    enum { N = 2000 };
    static uint8_t keys[N][32];
    uint8_t root[32];
    build_tree(base, N, keys, root);
    mn_smt_item it = {0};
    memcpy(it.key_hash, keys[5], 32);
    mn_sha256(it.value_hash, "new value", 9);
    hinted h = {.base = base, .key = keys[5]};
    mn_smt_src src = {hinted_get, &h, NULL, hinted_prefetch};
    mn_smt_src plain = {hinted_get, &h, NULL, NULL};
    mn_kvmap *w1 = mn_kv_new(), *w2 = mn_kv_new();
    uint8_t r1[32], r2[32];
    assert_int_equal(mn_smt_update(&src, w1, root, &it, 1, r1), MN_OK);
    assert_true(h.hints[0] > 0);
    assert_int_equal(h.hints[0], h.hints[1]);
    assert_int_equal(h.off_path, 0);
    size_t hints = h.hints[0];
    assert_int_equal(mn_smt_update(&plain, w2, root, &it, 1, r2), MN_OK);
    assert_int_equal(h.hints[0], hints);
    assert_memory_equal(r1, r2, 32);
    assert_int_equal(mn_kv_count(w1), mn_kv_count(w2));
    mn_kv_free(w1);
    mn_kv_free(w2);
    mn_kv_free(base);
}

static void position_keys_mask_unused_bits(void **state) {
    (void)state;
    uint8_t a[32], b[32], ka[MN_SMT_POS_KEY_MAX], kb[MN_SMT_POS_KEY_MAX];
    memset(a, 0xAA, 32);
    memcpy(b, a, 32);
    b[1] ^= 0x01; /* differs at bit 15 */
    assert_int_equal(mn_smt_pos_key(ka, 15, a), 3 + 2);
    mn_smt_pos_key(kb, 15, b);
    assert_memory_equal(ka, kb, 5);
    mn_smt_pos_key(ka, 16, a);
    mn_smt_pos_key(kb, 16, b);
    assert_memory_not_equal(ka, kb, 5);
    assert_int_equal(mn_smt_pos_key(ka, 0, a), 3);
    assert_int_equal(mn_smt_pos_key(ka, 256, a), 35);
    /* mn_smt_pos_depth reads back every depth, and only keys of that shape */
    unsigned d = 999;
    for (unsigned depth = 0; depth <= 256; depth++) {
        size_t len = mn_smt_pos_key(ka, depth, a);
        assert_true(mn_smt_pos_depth(ka, len, &d));
        assert_int_equal(d, depth);
        assert_false(mn_smt_pos_depth(ka, len - 1, &d)); /* a length off the depth */
    }
    mn_smt_pos_key(ka, 20, a);
    assert_false(mn_smt_pos_depth(ka, 2, &d));
    ka[0] = 'x';
    assert_false(mn_smt_pos_depth(ka, 6, &d));
    ka[0] = MN_SMT_PREFIX;
    ka[1] = 1;
    ka[2] = 1; /* depth 257 */
    assert_false(mn_smt_pos_depth(ka, 3 + 33, &d));
}

/* An item that says what its key's value is now (has_old) spares the
 * source the read of its implicit leaf; a wrong guess is read as before.
 * Either way the root is the one a full rebuild gives. */
static void a_known_leaf_is_not_read(void **state) {
    (void)state;
    rng_state = 777;
    enum { N = 300 };
    static uint8_t keys[N][32], vh[N][32];
    random_keys(keys, N, 50);
    mn_kvmap *base = mn_kv_new();
    model committed = {0};
    imp_src is = {base, &committed, 0};
    mn_smt_src src = {imp_get, &is, imp_leaf};
    mn_smt_item *items = calloc(N, sizeof *items);
    for (size_t i = 0; i < N; i++) {
        uint64_t v = rng();
        mn_sha256(vh[i], &v, sizeof v);
        memcpy(items[i].key_hash, keys[i], 32);
        memcpy(items[i].value_hash, vh[i], 32);
        items[i].implicit = true;
    }
    uint8_t root[32] = {0}, zero[32] = {0};
    assert_int_equal(mn_smt_update(&src, base, zero, items, N, root), MN_OK);
    for (size_t i = 0; i < N; i++) model_set_ex(&committed, keys[i], vh[i], false, true);
    qsort(committed.e, committed.n, sizeof(ent), ent_cmp);

    for (int pass = 0; pass < 3; pass++) {
        /* pass 0: no hint; 1: the right old value; 2: a wrong one */
        mn_smt_item batch[8];
        memset(batch, 0, sizeof batch);
        for (size_t j = 0; j < 8; j++) {
            size_t ki = 5 + 37 * j;
            memcpy(batch[j].key_hash, keys[ki], 32);
            mn_sha256(batch[j].value_hash, &ki, sizeof ki);
            batch[j].implicit = true;
            batch[j].has_old = pass > 0;
            memcpy(batch[j].old_value_hash, vh[ki], 32);
            if (pass == 2) batch[j].old_value_hash[0] ^= 1;
        }
        mn_kvmap *w = mn_kv_new();
        uint8_t r2[32];
        is.leaf_calls = 0;
        assert_int_equal(mn_smt_update(&src, w, root, batch, 8, r2), MN_OK);
        if (pass == 1)
            assert_int_equal(is.leaf_calls, 0);
        else
            assert_true(is.leaf_calls >= 8);
        /* the same set rebuilt from nothing (an update sorts its items) */
        memset(items, 0, N * sizeof *items);
        for (size_t i = 0; i < N; i++) {
            memcpy(items[i].key_hash, keys[i], 32);
            memcpy(items[i].value_hash, vh[i], 32);
        }
        for (size_t j = 0; j < 8; j++) {
            size_t ki = 5 + 37 * j;
            mn_sha256(items[ki].value_hash, &ki, sizeof ki);
        }
        mn_kvmap *again = mn_kv_new();
        mn_smt_src asrc = {base_get, again};
        uint8_t r3[32];
        assert_int_equal(mn_smt_update(&asrc, again, zero, items, N, r3), MN_OK);
        assert_memory_equal(r2, r3, 32);
        mn_kv_free(again);
        mn_kv_free(w);
    }
    free(items);
    free(committed.e);
    mn_kv_free(base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_tree_root_is_zero_and_proves_absence),
        cmocka_unit_test(random_batches_match_naive_recompute),
        cmocka_unit_test(a_sink_into_the_source_matches_a_write_set),
        cmocka_unit_test(implicit_leaves_are_not_stored),
        cmocka_unit_test(implicit_leaves_from_key_prefixes),
        cmocka_unit_test(a_shared_prefix_reads_the_whole_leaf),
        cmocka_unit_test(proofs_verify_and_tampering_fails),
        cmocka_unit_test(corrupt_node_is_detected),
        cmocka_unit_test(position_keys_mask_unused_bits),
        cmocka_unit_test(an_update_reads_only_its_path),
        cmocka_unit_test(an_update_hints_a_lone_keys_path),
        cmocka_unit_test(a_known_leaf_is_not_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
