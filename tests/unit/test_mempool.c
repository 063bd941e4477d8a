/* test_mempool.c: candidate order, dedupe, bounds, stale removal, next nonce, gossip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mempool.h"

/* A fake tx: its bytes name signer and nonce, its hash is derived from them
 * plus a variant byte so conflicting txs can share (signer, nonce). */
struct ftx {
    uint8_t bytes[64];
    size_t len;
    uint8_t hash[MN_HASH_LEN];
};

static struct ftx mk(const char *signer, uint64_t nonce, uint8_t variant, size_t len) {
    struct ftx t;
    memset(&t, 0, sizeof t);
    t.len = len ? len : 16;
    snprintf((char *)t.bytes, sizeof t.bytes, "%s/%llu/%u", signer, (unsigned long long)nonce, variant);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof t.bytes; i++) h = (h ^ t.bytes[i]) * 1099511628211ull;
    for (size_t i = 0; i < MN_HASH_LEN; i++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        t.hash[i] = (uint8_t)(h >> 56);
    }
    return t;
}

static int add(struct mn_mempool *mp, const char *signer, uint64_t nonce) {
    struct ftx t = mk(signer, nonce, 0, 0);
    return mn_mempool_add(mp, t.bytes, t.len, t.hash, signer, nonce);
}

static struct mn_mempool *new_pool(size_t txs, size_t bytes, size_t per_signer) {
    char err[128];
    struct mn_mempool_config c = {.txs_max = txs, .bytes_max = bytes, .per_signer_max = per_signer};
    struct mn_mempool *mp = mn_mempool_new(&c, err, sizeof err);
    assert_non_null(mp);
    return mp;
}

struct collected {
    char order[64][48];
    size_t n;
    size_t stop_after;
};

static bool collect(void *arg, const struct mn_mempool_tx *tx) {
    struct collected *c = arg;
    assert_true(c->n < 64);
    snprintf(c->order[c->n++], sizeof c->order[0], "%s%llu", tx->signer, (unsigned long long)tx->nonce);
    return c->stop_after == 0 || c->n < c->stop_after;
}

struct nonces {
    const char *signer[4];
    uint64_t last[4];
};

static uint64_t lookup(void *arg, const char *signer) {
    const struct nonces *n = arg;
    for (size_t i = 0; i < 4 && n->signer[i]; i++)
        if (strcmp(n->signer[i], signer) == 0) return n->last[i];
    return 0;
}

static void assert_order(const struct collected *c, const char *const *want, size_t n) {
    if (c->n != n) {
        for (size_t i = 0; i < c->n; i++) print_message("got[%zu] = %s\n", i, c->order[i]);
    }
    assert_int_equal(c->n, n);
    for (size_t i = 0; i < n; i++) assert_string_equal(c->order[i], want[i]);
}

static void take_follows_arrival_and_nonce_order(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    /* a's nonce 2 arrives before nonce 1: both come out when nonce 2's
     * arrival slot is reached, lowest nonce first. */
    assert_int_equal(add(mp, "a", 2), MN_OK);
    assert_int_equal(add(mp, "b", 1), MN_OK);
    assert_int_equal(add(mp, "a", 1), MN_OK);
    assert_int_equal(add(mp, "b", 2), MN_OK);
    assert_int_equal(add(mp, "c", 5), MN_OK); /* gap: c committed 3, needs 4 */
    assert_int_equal(add(mp, "a", 3), MN_OK);
    struct nonces n = {{"a", "b", "c"}, {0, 0, 3}};
    struct collected c = {0};
    size_t got = mn_mempool_take(mp, 100, 1 << 20, lookup, &n, collect, &c);
    const char *want[] = {"a1", "a2", "b1", "b2", "a3"};
    assert_order(&c, want, 5);
    assert_int_equal(got, 5);
    /* Taking does not remove. */
    assert_int_equal(mn_mempool_count(mp), 6);
    /* Without a nonce lookup a signer's run starts at its lowest nonce. */
    struct collected c2 = {0};
    assert_int_equal(mn_mempool_take(mp, 100, 1 << 20, NULL, NULL, collect, &c2), 6);
    const char *want2[] = {"a1", "a2", "b1", "b2", "c5", "a3"};
    assert_order(&c2, want2, 6);
    mn_mempool_free(mp);
}

static void take_respects_limits_and_stop(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    for (uint64_t i = 1; i <= 5; i++) assert_int_equal(add(mp, "a", i), MN_OK);
    for (uint64_t i = 1; i <= 5; i++) assert_int_equal(add(mp, "b", i), MN_OK);
    struct collected c = {0};
    assert_int_equal(mn_mempool_take(mp, 3, 1 << 20, NULL, NULL, collect, &c), 3);
    const char *w1[] = {"a1", "a2", "a3"};
    assert_order(&c, w1, 3);
    /* 16-byte txs, 40 bytes: two fit. */
    struct collected c2 = {0};
    assert_int_equal(mn_mempool_take(mp, 100, 40, NULL, NULL, collect, &c2), 2);
    struct collected c3 = {.stop_after = 4};
    assert_int_equal(mn_mempool_take(mp, 100, 1 << 20, NULL, NULL, collect, &c3), 4);
    /* A big tx that does not fit blocks its signer's later nonces only. */
    struct mn_mempool *mp2 = new_pool(100, 0, 0);
    struct ftx big = mk("x", 1, 0, 60);
    assert_int_equal(mn_mempool_add(mp2, big.bytes, big.len, big.hash, "x", 1), MN_OK);
    assert_int_equal(add(mp2, "x", 2), MN_OK);
    assert_int_equal(add(mp2, "y", 1), MN_OK);
    struct collected c4 = {0};
    assert_int_equal(mn_mempool_take(mp2, 100, 40, NULL, NULL, collect, &c4), 1);
    const char *w4[] = {"y1"};
    assert_order(&c4, w4, 1);
    mn_mempool_free(mp2);
    mn_mempool_free(mp);
}

static void duplicates_and_conflicts_are_refused(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    assert_int_equal(add(mp, "a", 1), MN_OK);
    assert_int_equal(add(mp, "a", 1), MN_ESTATE);
    struct ftx other = mk("a", 1, 7, 0); /* same signer and nonce, other bytes */
    assert_int_equal(mn_mempool_add(mp, other.bytes, other.len, other.hash, "a", 1), MN_EPERM);
    assert_false(mn_mempool_contains(mp, other.hash));
    struct ftx first = mk("a", 1, 0, 0);
    assert_true(mn_mempool_contains(mp, first.hash));
    struct mn_mempool_tx got;
    assert_true(mn_mempool_get(mp, first.hash, &got));
    assert_memory_equal(got.tx, first.bytes, first.len);
    assert_memory_equal(got.hash, first.hash, MN_HASH_LEN);
    assert_string_equal(got.signer, "a");
    assert_int_equal(got.nonce, 1);
    assert_false(mn_mempool_get(mp, other.hash, &got));
    assert_int_equal(mn_mempool_count(mp), 1);
    assert_int_equal(mn_mempool_bytes(mp), 16);
    mn_mempool_free(mp);
}

static void bad_input_is_refused(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    struct ftx t = mk("a", 1, 0, 0);
    assert_int_equal(mn_mempool_add(mp, t.bytes, 0, t.hash, "a", 1), MN_EINVAL);
    assert_int_equal(mn_mempool_add(mp, t.bytes, t.len, t.hash, "a", 0), MN_EINVAL);
    assert_int_equal(mn_mempool_add(mp, t.bytes, t.len, t.hash, "", 1), MN_EINVAL);
    char long_id[MN_MEMBER_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    assert_int_equal(mn_mempool_add(mp, t.bytes, t.len, t.hash, long_id, 1), MN_EINVAL);
    static uint8_t huge[MN_TX_BATCH_BYTES_MAX + 1];
    assert_int_equal(mn_mempool_add(mp, huge, sizeof huge, t.hash, "a", 1), MN_ETOOBIG);
    assert_int_equal(mn_mempool_count(mp), 0);
    char err[128];
    struct mn_mempool_config c = {.txs_max = MN_MEMPOOL_TXS_LIMIT + 1};
    assert_null(mn_mempool_new(&c, err, sizeof err));
    assert_non_null(strstr(err, "txs_max"));
    mn_mempool_free(NULL);
    mn_mempool_free(mp);
}

static void bounds_give_eagain(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(4, 0, 2);
    assert_int_equal(add(mp, "a", 1), MN_OK);
    assert_int_equal(add(mp, "a", 2), MN_OK);
    assert_int_equal(add(mp, "a", 3), MN_EAGAIN); /* per signer */
    assert_int_equal(add(mp, "b", 1), MN_OK);
    assert_int_equal(add(mp, "c", 1), MN_OK);
    assert_int_equal(add(mp, "d", 1), MN_EAGAIN); /* count */
    assert_int_equal(mn_mempool_count(mp), 4);
    assert_int_equal(mn_mempool_signers(mp), 3);
    mn_mempool_free(mp);
    mp = new_pool(100, 40, 0);
    assert_int_equal(add(mp, "a", 1), MN_OK);
    assert_int_equal(add(mp, "a", 2), MN_OK);
    assert_int_equal(add(mp, "a", 3), MN_EAGAIN); /* bytes: 48 > 40 */
    assert_int_equal(mn_mempool_bytes(mp), 32);
    /* Room comes back after removal. */
    struct ftx t = mk("a", 1, 0, 0);
    assert_int_equal(mn_mempool_remove(mp, (const uint8_t (*)[MN_HASH_LEN])t.hash, 1), 1);
    assert_int_equal(add(mp, "a", 3), MN_OK);
    mn_mempool_free(mp);
}

static void remove_and_stale_removal(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    for (uint64_t i = 1; i <= 4; i++) assert_int_equal(add(mp, "a", i), MN_OK);
    for (uint64_t i = 1; i <= 3; i++) assert_int_equal(add(mp, "b", i), MN_OK);
    uint8_t hashes[3][MN_HASH_LEN];
    struct ftx t;
    t = mk("a", 1, 0, 0); memcpy(hashes[0], t.hash, MN_HASH_LEN);
    t = mk("b", 1, 0, 0); memcpy(hashes[1], t.hash, MN_HASH_LEN);
    t = mk("zz", 9, 0, 0); memcpy(hashes[2], t.hash, MN_HASH_LEN); /* not pending */
    assert_int_equal(mn_mempool_remove(mp, (const uint8_t (*)[MN_HASH_LEN])hashes, 3), 2);
    assert_int_equal(mn_mempool_count(mp), 5);
    /* a committed up to 3 (a2, a3 went in another proposer's block), b up to 3. */
    struct nonces n = {{"a", "b"}, {3, 3}};
    assert_int_equal(mn_mempool_remove_stale(mp, lookup, &n), 4);
    assert_int_equal(mn_mempool_count(mp), 1);
    assert_int_equal(mn_mempool_signers(mp), 1);
    assert_int_equal(mn_mempool_bytes(mp), 16);
    struct collected c = {0};
    assert_int_equal(mn_mempool_take(mp, 10, 1 << 20, lookup, &n, collect, &c), 1);
    const char *w[] = {"a4"};
    assert_order(&c, w, 1);
    mn_mempool_free(mp);
}

static void next_nonce_counts_the_unbroken_run(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    assert_int_equal(mn_mempool_signer_next_nonce(mp, "a", 0), 1);
    assert_int_equal(mn_mempool_signer_next_nonce(mp, "a", 7), 8);
    assert_int_equal(add(mp, "a", 8), MN_OK);
    assert_int_equal(add(mp, "a", 9), MN_OK);
    assert_int_equal(add(mp, "a", 11), MN_OK);
    assert_int_equal(mn_mempool_signer_next_nonce(mp, "a", 7), 10);
    assert_int_equal(mn_mempool_signer_next_nonce(mp, "a", 8), 10); /* 8 stale */
    assert_int_equal(mn_mempool_signer_next_nonce(mp, "a", 5), 6);  /* gap at 6 */
    assert_int_equal(add(mp, "a", 10), MN_OK);
    assert_int_equal(mn_mempool_signer_next_nonce(mp, "a", 7), 12);
    assert_int_equal(mn_mempool_signer_next_nonce(mp, "b", 3), 4);
    mn_mempool_free(mp);
}

static void gossip_hands_out_each_tx_once(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    assert_int_equal(add(mp, "a", 1), MN_OK);
    assert_int_equal(add(mp, "b", 1), MN_OK);
    assert_int_equal(add(mp, "c", 1), MN_OK);
    struct ftx b1 = mk("b", 1, 0, 0), c1 = mk("c", 1, 0, 0);
    assert_int_equal(mn_mempool_mark_gossiped(mp, b1.hash), MN_OK);
    struct mn_mempool_tx tx;
    assert_true(mn_mempool_gossip_next(mp, &tx));
    assert_string_equal(tx.signer, "a");
    assert_int_equal(tx.nonce, 1);
    assert_int_equal(tx.len, 16);
    /* Removal of a queued tx takes it off the gossip queue too. */
    assert_int_equal(mn_mempool_remove(mp, (const uint8_t (*)[MN_HASH_LEN])c1.hash, 1), 1);
    assert_false(mn_mempool_gossip_next(mp, &tx));
    assert_int_equal(add(mp, "a", 2), MN_OK);
    assert_true(mn_mempool_gossip_next(mp, &tx));
    assert_int_equal(tx.nonce, 2);
    assert_false(mn_mempool_gossip_next(mp, &tx));
    assert_int_equal(mn_mempool_mark_gossiped(mp, c1.hash), MN_ENOTFOUND);
    mn_mempool_free(mp);
}

/* The gossip timer sends a batch of views without copying the bytes. */
static void gossip_views_stay_valid_across_gossip_next(void **state) {
    (void)state;
    struct mn_mempool *mp = new_pool(100, 0, 0);
    struct ftx want[8];
    for (int i = 0; i < 8; i++) {
        want[i] = mk("s", (uint64_t)i + 1, 0, 0);
        assert_int_equal(add(mp, "s", (uint64_t)i + 1), MN_OK);
    }
    struct mn_mempool_tx views[8];
    for (int i = 0; i < 7; i++) {
        assert_true(mn_mempool_gossip_next(mp, &views[i]));
        if (i == 3) assert_int_equal(mn_mempool_mark_gossiped(mp, want[7].hash), MN_OK);
    }
    assert_false(mn_mempool_gossip_next(mp, &views[7]));
    for (int i = 0; i < 7; i++) {
        assert_int_equal(views[i].len, want[i].len);
        assert_memory_equal(views[i].tx, want[i].bytes, want[i].len);
    }
    mn_mempool_free(mp);
}

/* Many adds and removals in shuffled order keep the index consistent
 * (backward-shift deletion under heavy probing). */
static void index_survives_churn(void **state) {
    (void)state;
    enum { N = 3000 };
    struct mn_mempool *mp = new_pool(N, 0, N);
    static struct ftx txs[N];
    char signer[16];
    for (size_t i = 0; i < N; i++) {
        snprintf(signer, sizeof signer, "s%zu", i % 50);
        txs[i] = mk(signer, i / 50 + 1, 0, 0);
        assert_int_equal(mn_mempool_add(mp, txs[i].bytes, txs[i].len, txs[i].hash, signer, i / 50 + 1), MN_OK);
    }
    assert_int_equal(mn_mempool_count(mp), N);
    uint64_t seed = 12345;
    for (size_t i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1;
        if ((seed >> 40) % 2 == 0) continue;
        assert_int_equal(mn_mempool_remove(mp, (const uint8_t (*)[MN_HASH_LEN])txs[i].hash, 1), 1);
        txs[i].len = 0; /* mark removed */
    }
    for (size_t i = 0; i < N; i++) assert_int_equal(mn_mempool_contains(mp, txs[i].hash), txs[i].len != 0);
    mn_mempool_free(mp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(take_follows_arrival_and_nonce_order),
        cmocka_unit_test(take_respects_limits_and_stop),
        cmocka_unit_test(duplicates_and_conflicts_are_refused),
        cmocka_unit_test(bad_input_is_refused),
        cmocka_unit_test(bounds_give_eagain),
        cmocka_unit_test(remove_and_stale_removal),
        cmocka_unit_test(next_nonce_counts_the_unbroken_run),
        cmocka_unit_test(gossip_hands_out_each_tx_once),
        cmocka_unit_test(gossip_views_stay_valid_across_gossip_next),
        cmocka_unit_test(index_survives_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
