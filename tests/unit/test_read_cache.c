/* test_read_cache.c: the ledger's committed-record read cache
 * (mn_ledger_get_record_cached) always agrees with the store: after every
 * commit that changes a record, for ids never issued, for expiry, and under
 * many ids competing for slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ledger_fixture.h"
#include "smt.h"

#define ST(x) MIDNODE__CREDENTIAL_STATUS__##x
#define TXC(x) MIDNODE__TX_CODE__TX_##x

static int setup(void **state) {
    lf_fixture *f = calloc(1, sizeof *f);
    if (!f || lf_open(f) != MN_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    lf_fixture *f = *state;
    lf_close(f);
    free(f);
    return 0;
}

/* The cached answer must equal the store's for id, at time_ms. */
static void agrees(lf_fixture *f, const uint8_t id[32], int64_t time_ms) {
    const uint8_t *b = NULL;
    size_t bl = 0;
    Midnode__CredentialStatus st;
    int rc = mn_ledger_get_record_cached(f->l, id, time_ms, &b, &bl, &st);
    uint8_t *sb = NULL;
    size_t sl = 0;
    int src = mn_store_get_record(f->store, id, &sb, &sl);
    assert_int_equal(rc, src);
    if (src == MN_ENOTFOUND) {
        assert_null(b);
        assert_int_equal(bl, 0);
        assert_int_equal(st, ST(STATUS_UNKNOWN));
        return;
    }
    assert_int_equal(bl, sl);
    assert_memory_equal(b, sb, sl);
    Midnode__CredentialRecord *r = midnode__credential_record__unpack(NULL, sl, sb);
    assert_non_null(r);
    assert_int_equal(st, mn_ledger_effective_status(r, time_ms));
    midnode__credential_record__free_unpacked(r, NULL);
    free(sb);
}

static void proof_verifies(lf_fixture *f, const uint8_t id[32]);

static int issue(lf_fixture *f, uint32_t n, int64_t expires_at) {
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    lf_id(id, 'c', n);
    lf_id(h, 'h', n);
    lf_id(d, 'd', n);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", expires_at, &tx, &len);
    return lf_one(f, tx, len);
}

static int op(lf_fixture *f, int kind, uint32_t n) {
    uint8_t id[32], *tx;
    size_t len;
    lf_id(id, 'c', n);
    lf_cred_op(f, "mois", kind, id, &tx, &len);
    return lf_one(f, tx, len);
}

static void follows_every_commit(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32];
    lf_id(id, 'c', 1);
    agrees(f, id, f->time_ms); /* unknown, and now cached as unknown */
    agrees(f, id, f->time_ms);
    assert_int_equal(issue(f, 1, 0), TXC(OK));
    agrees(f, id, f->time_ms); /* the cached miss did not outlive the commit */
    const uint8_t *b;
    size_t bl;
    Midnode__CredentialStatus st;
    assert_int_equal(mn_ledger_get_record_cached(f->l, id, f->time_ms, &b, &bl, &st), MN_OK);
    assert_int_equal(st, ST(ACTIVE));
    assert_int_equal(op(f, MIDNODE__TX_PAYLOAD__BODY_SUSPEND, 1), TXC(OK));
    assert_int_equal(mn_ledger_get_record_cached(f->l, id, f->time_ms, &b, &bl, &st), MN_OK);
    assert_int_equal(st, ST(SUSPENDED));
    agrees(f, id, f->time_ms);
    assert_int_equal(op(f, MIDNODE__TX_PAYLOAD__BODY_REVOKE, 1), TXC(OK));
    assert_int_equal(mn_ledger_get_record_cached(f->l, id, f->time_ms, &b, &bl, &st), MN_OK);
    assert_int_equal(st, ST(REVOKED));
    agrees(f, id, f->time_ms);
}

static void expiry_is_derived_at_read(void **state) {
    lf_fixture *f = *state;
    int64_t exp = f->time_ms / 1000 + 100;
    assert_int_equal(issue(f, 2, exp), TXC(OK));
    uint8_t id[32];
    lf_id(id, 'c', 2);
    const uint8_t *b;
    size_t bl;
    Midnode__CredentialStatus st;
    assert_int_equal(mn_ledger_get_record_cached(f->l, id, (exp - 1) * 1000, &b, &bl, &st), MN_OK);
    assert_int_equal(st, ST(ACTIVE));
    assert_int_equal(mn_ledger_get_record_cached(f->l, id, exp * 1000, &b, &bl, &st), MN_OK);
    assert_int_equal(st, ST(EXPIRED));
    agrees(f, id, exp * 1000);
}

/* Issues credentials first .. first+n-1 (n <= BLOCK_MAX) in one block. */
#define BLOCK_MAX 300
static void issue_block(lf_fixture *f, uint32_t first, uint32_t n) {
    uint8_t *txs[BLOCK_MAX];
    size_t lens[BLOCK_MAX];
    int codes[BLOCK_MAX];
    assert_true(n <= BLOCK_MAX);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t id[32], h[32], d[32];
        lf_id(id, 'c', first + i);
        lf_id(h, 'h', first + i);
        lf_id(d, 'd', first + i);
        lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &txs[i], &lens[i]);
    }
    assert_int_equal(lf_block(f, txs, lens, n, codes), MN_OK);
    for (uint32_t i = 0; i < n; i++) assert_int_equal(codes[i], TXC(OK));
}

static void many_ids_and_misses_stay_exact(void **state) {
    lf_fixture *f = *state;
    enum { N = 300 };
    issue_block(f, 100, N);
    /* Interleave hits with never-issued ids, twice (second pass from cache). */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < N; i++) {
            uint8_t id[32];
            lf_id(id, 'c', 100 + i);
            agrees(f, id, f->time_ms);
            if (i % 8 == 0) proof_verifies(f, id);
            lf_id(id, 'x', i);
            agrees(f, id, f->time_ms);
            if (i % 8 == 0) proof_verifies(f, id);
        }
}

/* The cached proof of id verifies against the current root with the
 * store's record (or its absence). */
static void proof_verifies(lf_fixture *f, const uint8_t id[32]) {
    const uint8_t *m = NULL;
    size_t ml = 0;
    assert_int_equal(mn_ledger_prove_cached(f->l, id, &m, &ml), MN_OK);
    Midnode__MerkleProof *mp = midnode__merkle_proof__unpack(NULL, ml, m);
    assert_non_null(mp);
    uint8_t root[32], kh[32], *rec = NULL;
    size_t rl = 0;
    mn_ledger_root(f->l, root);
    mn_smt_key_credential(kh, id);
    int src = mn_store_get_record(f->store, id, &rec, &rl);
    assert_true(src == MN_OK || src == MN_ENOTFOUND);
    const char *why = NULL;
    assert_int_equal(mn_smt_verify(root, kh, rec, rl, mp, &why), MN_OK);
    midnode__merkle_proof__free_unpacked(mp, NULL);
    free(rec);
}

static void proofs_follow_every_commit(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32], other[32];
    lf_id(id, 'c', 1);
    lf_id(other, 'x', 1);
    proof_verifies(f, id); /* absence, cached */
    proof_verifies(f, id);
    assert_int_equal(issue(f, 1, 0), TXC(OK));
    proof_verifies(f, id); /* presence now: the cached absence is stale */
    proof_verifies(f, other);
    proof_verifies(f, id);
    assert_int_equal(issue(f, 2, 0), TXC(OK)); /* another key moves the root and id's path */
    proof_verifies(f, id);
    assert_int_equal(op(f, MIDNODE__TX_PAYLOAD__BODY_REVOKE, 1), TXC(OK));
    proof_verifies(f, id);
}

/* A block keeps the cached records it did not write: a stream of commits
 * must not send every status read back to the store. */
static void commits_keep_untouched_records(void **state) {
    lf_fixture *f = *state;
    uint8_t a[32], b[32], never[32];
    lf_id(a, 'c', 1);
    lf_id(b, 'c', 2);
    lf_id(never, 'c', 99);
    assert_int_equal(issue(f, 1, 0), TXC(OK));
    assert_int_equal(issue(f, 2, 0), TXC(OK));
    agrees(f, a, f->time_ms);
    agrees(f, b, f->time_ms);
    agrees(f, never, f->time_ms);
    uint64_t m0 = mn_ledger_record_cache_misses(f->l);
    agrees(f, b, f->time_ms);
    assert_int_equal(mn_ledger_record_cache_misses(f->l), m0); /* a hit */
    assert_int_equal(op(f, MIDNODE__TX_PAYLOAD__BODY_SUSPEND, 1), TXC(OK)); /* writes a only */
    agrees(f, b, f->time_ms);
    agrees(f, never, f->time_ms);
    assert_int_equal(mn_ledger_record_cache_misses(f->l), m0); /* b and the absence survived */
    const uint8_t *bytes;
    size_t bl;
    Midnode__CredentialStatus st;
    assert_int_equal(mn_ledger_get_record_cached(f->l, a, f->time_ms, &bytes, &bl, &st), MN_OK);
    assert_int_equal(st, ST(SUSPENDED)); /* a was written through */
    assert_int_equal(mn_ledger_record_cache_misses(f->l), m0);
    assert_int_equal(issue(f, 99, 0), TXC(OK)); /* the cached absence is written now */
    assert_int_equal(mn_ledger_get_record_cached(f->l, never, f->time_ms, &bytes, &bl, &st), MN_OK);
    assert_int_equal(st, ST(ACTIVE));
    assert_int_equal(mn_ledger_record_cache_misses(f->l), m0);
    agrees(f, never, f->time_ms);
    agrees(f, a, f->time_ms);
    agrees(f, b, f->time_ms);
}

/* A node that built its state by committing blocks answers status and
 * proofs from memory without having been asked before. */
static void committed_blocks_fill_the_cache(void **state) {
    lf_fixture *f = *state;
    enum { N = 200 };
    issue_block(f, 500, N);
    assert_int_equal(mn_ledger_record_cache_misses(f->l), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t id[32];
        lf_id(id, 'c', 500 + i);
        agrees(f, id, f->time_ms);
        if (i % 16 == 0) proof_verifies(f, id); /* from the cached record */
    }
    assert_int_equal(mn_ledger_record_cache_misses(f->l), 0);
}

/* Ids that agree in their first eight bytes share one bucket: a full bucket
 * evicts and stays exact, and a never-issued id does not evict a record. */
static int issue_raw(lf_fixture *f, const uint8_t id[32], uint32_t n) {
    uint8_t h[32], d[32], *tx;
    size_t len;
    lf_id(h, 'h', 900 + n);
    lf_id(d, 'd', 900 + n);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &tx, &len);
    return lf_one(f, tx, len);
}

static void a_full_bucket_stays_exact(void **state) {
    lf_fixture *f = *state;
    enum { N = 7 };
    uint8_t ids[N][32];
    for (uint32_t i = 0; i < N; i++) {
        memset(ids[i], 0x5a, 32);
        ids[i][31] = (uint8_t)i; /* same first eight bytes: the same bucket */
    }
    for (uint32_t i = 0; i < 4; i++) assert_int_equal(issue_raw(f, ids[i], i), TXC(OK));
    uint64_t m0 = mn_ledger_record_cache_misses(f->l);
    for (uint32_t i = 0; i < 4; i++) agrees(f, ids[i], f->time_ms);
    assert_int_equal(mn_ledger_record_cache_misses(f->l), m0); /* all four written through */
    agrees(f, ids[6], f->time_ms);                              /* never issued: a miss */
    assert_int_equal(mn_ledger_record_cache_misses(f->l), m0 + 1);
    for (uint32_t i = 0; i < 4; i++) agrees(f, ids[i], f->time_ms);
    assert_int_equal(mn_ledger_record_cache_misses(f->l), m0 + 1); /* the absence evicted none */
    for (uint32_t i = 4; i < 6; i++) assert_int_equal(issue_raw(f, ids[i], i), TXC(OK));
    for (int pass = 0; pass < 3; pass++)
        for (uint32_t i = 0; i < N; i++) {
            agrees(f, ids[i], f->time_ms);
            proof_verifies(f, ids[i]);
        }
    assert_true(mn_ledger_record_cache_misses(f->l) > m0 + 1); /* six records in four ways */
    uint8_t *tx;
    size_t len;
    lf_cred_op(f, "mois", MIDNODE__TX_PAYLOAD__BODY_SUSPEND, ids[5], &tx, &len);
    assert_int_equal(lf_one(f, tx, len), TXC(OK));
    const uint8_t *b;
    size_t bl;
    Midnode__CredentialStatus st;
    assert_int_equal(mn_ledger_get_record_cached(f->l, ids[5], f->time_ms, &b, &bl, &st), MN_OK);
    assert_int_equal(st, ST(SUSPENDED));
    for (uint32_t i = 0; i < N; i++) agrees(f, ids[i], f->time_ms);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(follows_every_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_is_derived_at_read, setup, teardown),
        cmocka_unit_test_setup_teardown(many_ids_and_misses_stay_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(proofs_follow_every_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(commits_keep_untouched_records, setup, teardown),
        cmocka_unit_test_setup_teardown(committed_blocks_fill_the_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_bucket_stays_exact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
