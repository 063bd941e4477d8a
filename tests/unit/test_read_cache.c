/* test_read_cache.c: the ledger's committed-record read cache
 * (mn_ledger_get_record_cached) always agrees with the store: after every
 * commit that changes a record, for ids never issued, for expiry, and under
 * many ids competing for slots; and its warm-up scan and id filter, which
 * answer never-issued ids without a store read. */
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

/* The answer of ledger l's cache must equal the store's for id, at time_ms. */
static void agrees_on(lf_fixture *f, mn_ledger *l, const uint8_t id[32], int64_t time_ms) {
    const uint8_t *b = NULL;
    size_t bl = 0;
    Midnode__CredentialStatus st;
    int rc = mn_ledger_get_record_cached(l, id, time_ms, &b, &bl, &st);
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

static void agrees(lf_fixture *f, const uint8_t id[32], int64_t time_ms) { agrees_on(f, f->l, id, time_ms); }

static mn_read_cache_stats stats_of(mn_ledger *l) {
    mn_read_cache_stats s;
    mn_ledger_read_cache_stats(l, &s);
    return s;
}

/* Record reads of f's ledger that went to the store. */
static uint64_t store_reads(lf_fixture *f) { return stats_of(f->l).store_reads; }

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
    uint64_t m0 = store_reads(f);
    agrees(f, b, f->time_ms);
    assert_int_equal(store_reads(f), m0); /* a hit */
    assert_int_equal(op(f, MIDNODE__TX_PAYLOAD__BODY_SUSPEND, 1), TXC(OK)); /* writes a only */
    agrees(f, b, f->time_ms);
    agrees(f, never, f->time_ms);
    assert_int_equal(store_reads(f), m0); /* b and the absence survived */
    const uint8_t *bytes;
    size_t bl;
    Midnode__CredentialStatus st;
    assert_int_equal(mn_ledger_get_record_cached(f->l, a, f->time_ms, &bytes, &bl, &st), MN_OK);
    assert_int_equal(st, ST(SUSPENDED)); /* a was written through */
    assert_int_equal(store_reads(f), m0);
    assert_int_equal(issue(f, 99, 0), TXC(OK)); /* the cached absence is written now */
    assert_int_equal(mn_ledger_get_record_cached(f->l, never, f->time_ms, &bytes, &bl, &st), MN_OK);
    assert_int_equal(st, ST(ACTIVE));
    assert_int_equal(store_reads(f), m0);
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
    assert_int_equal(store_reads(f), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t id[32];
        lf_id(id, 'c', 500 + i);
        agrees(f, id, f->time_ms);
        if (i % 16 == 0) proof_verifies(f, id); /* from the cached record */
    }
    assert_int_equal(store_reads(f), 0);
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
    uint64_t m0 = store_reads(f);
    for (uint32_t i = 0; i < 4; i++) agrees(f, ids[i], f->time_ms);
    assert_int_equal(store_reads(f), m0); /* all four written through */
    agrees(f, ids[6], f->time_ms); /* never issued: the id filter answers */
    assert_int_equal(store_reads(f), m0);
    for (uint32_t i = 0; i < 4; i++) agrees(f, ids[i], f->time_ms);
    assert_int_equal(store_reads(f), m0); /* the absence evicted none */
    for (uint32_t i = 4; i < 6; i++) assert_int_equal(issue_raw(f, ids[i], i), TXC(OK));
    for (int pass = 0; pass < 3; pass++)
        for (uint32_t i = 0; i < N; i++) {
            agrees(f, ids[i], f->time_ms);
            proof_verifies(f, ids[i]);
        }
    assert_true(store_reads(f) > m0); /* six records in four ways */
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

/* A ledger that committed every block since an empty state knows every id
 * that has a record: a never-issued id costs no store read. */
static void never_issued_ids_skip_the_store(void **state) {
    lf_fixture *f = *state;
    enum { N = 50, PROBES = 1000 };
    issue_block(f, 0, N);
    assert_int_equal(mn_ledger_warm(f->l, 16), 0); /* nothing to read */
    mn_read_cache_stats s0 = stats_of(f->l);
    assert_true(s0.ids_complete);
    assert_false(s0.warm_pending);
    assert_int_equal(s0.warmed, 0);
    for (uint32_t i = 0; i < PROBES; i++) {
        uint8_t id[32];
        lf_id(id, 'x', i);
        agrees(f, id, f->time_ms);
    }
    mn_read_cache_stats s1 = stats_of(f->l);
    /* Every probe went either to the filter or (a false positive) to the store. */
    assert_int_equal((s1.absent_known - s0.absent_known) + (s1.store_reads - s0.store_reads), PROBES);
    assert_true(s1.absent_known - s0.absent_known >= PROBES - 2);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t id[32];
        lf_id(id, 'c', i);
        agrees(f, id, f->time_ms);
    }
    assert_int_equal(stats_of(f->l).store_reads, s1.store_reads);
}

static int warm_fully(mn_ledger *l, size_t step) {
    int steps = 0, rc;
    while ((rc = mn_ledger_warm(l, step)) == 1) steps++;
    assert_int_equal(rc, 0);
    return steps;
}

/* A ledger opened on a store it did not build (a restarted node) reads the
 * records in slices; until the scan ends absences go to the store, after it
 * neither records nor absences do. A commit by another writer moves the
 * root under it, which starts the scan over. */
static void warm_up_reads_a_store_built_elsewhere(void **state) {
    lf_fixture *f = *state;
    enum { N = 200, STEP = 7 };
    issue_block(f, 0, N);
    mn_ledger *l2 = NULL;
    assert_int_equal(mn_ledger_open(&l2, f->store, f->g), MN_OK);
    uint8_t never[32], id[32];
    lf_id(never, 'x', 1);
    agrees_on(f, l2, never, f->time_ms);
    mn_read_cache_stats s = stats_of(l2);
    assert_false(s.ids_complete);
    assert_true(s.warm_pending);
    assert_int_equal(s.store_reads, 1); /* not yet known: read */
    int steps = warm_fully(l2, STEP);
    assert_true(steps >= N / STEP - 1);
    s = stats_of(l2);
    assert_true(s.ids_complete);
    assert_false(s.warm_pending);
    assert_int_equal(s.warmed, N); /* each record once */
    for (uint32_t i = 0; i < N; i++) {
        lf_id(id, 'c', i);
        agrees_on(f, l2, id, f->time_ms);
    }
    lf_id(never, 'x', 2);
    agrees_on(f, l2, never, f->time_ms);
    assert_int_equal(stats_of(l2).store_reads, 1); /* all from memory */

    assert_int_equal(issue(f, 5000, 0), TXC(OK)); /* through f->l: l2 did not see it */
    lf_id(id, 'c', 5000);
    agrees_on(f, l2, id, f->time_ms); /* found, from the store */
    s = stats_of(l2);
    assert_false(s.ids_complete);
    assert_true(s.warm_pending);
    assert_int_equal(s.store_reads, 2);
    (void)warm_fully(l2, 64);
    assert_true(stats_of(l2).ids_complete);
    agrees_on(f, l2, id, f->time_ms);
    agrees_on(f, l2, never, f->time_ms);
    mn_ledger_free(l2);
}

/* Issues credential n onto holder h and device d, executed by ledger l. */
static int issue_on(lf_fixture *f, mn_ledger *l, uint32_t n, uint32_t h, uint32_t d) {
    uint8_t id[32], hb[32], db[32], *tx;
    size_t len;
    lf_id(id, 'c', n);
    lf_id(hb, 'h', h);
    lf_id(db, 'd', d);
    lf_issue(f, "mois", id, LF_RESIDENT, hb, db, "skt", 0, &tx, &len);
    mn_ledger *keep = f->l;
    f->l = l;
    int code = lf_one(f, tx, len);
    f->l = keep;
    return code;
}

/* After the warm-up scan of a store built elsewhere, an issuance to a new
 * holder on a new phone reads neither index from the store; one to a
 * holder and a phone the scan met finds both (the older credential is
 * superseded, and a loss report of the phone reaches the new one). */
static void index_reads_of_new_holders_skip_the_store(void **state) {
    lf_fixture *f = *state;
    enum { N = 120 };
    issue_block(f, 0, N);
    mn_ledger *l2 = NULL;
    assert_int_equal(mn_ledger_open(&l2, f->store, f->g), MN_OK);
    assert_int_equal(issue_on(f, l2, 9000, 9000, 9000), TXC(OK)); /* before the scan: read */
    assert_int_equal(stats_of(l2).index_absent_known, 0);
    (void)warm_fully(l2, 16);
    assert_true(stats_of(l2).ids_complete);

    assert_int_equal(issue_on(f, l2, 9001, 9001, 9001), TXC(OK));
    assert_int_equal(stats_of(l2).index_absent_known, 2); /* holder and device */

    /* holder 'h' 7 and device 'd' 8 are known only from the scan */
    uint64_t before = stats_of(l2).index_absent_known;
    assert_int_equal(issue_on(f, l2, 9002, 7, 8), TXC(OK));
    assert_int_equal(stats_of(l2).index_absent_known, before);
    uint8_t id[32], dev[32], *tx;
    size_t len;
    lf_id(id, 'c', 7);
    assert_int_equal(lf_status(f, id), ST(SUPERSEDED));
    lf_id(dev, 'd', 8);
    lf_device_op(f, "skt", 1, dev, &tx, &len);
    mn_ledger *keep = f->l;
    f->l = l2;
    assert_int_equal(lf_one(f, tx, len), TXC(OK));
    f->l = keep;
    lf_id(id, 'c', 9002);
    assert_int_equal(lf_status(f, id), ST(SUSPENDED));
    lf_id(id, 'c', 8);
    assert_int_equal(lf_status(f, id), ST(SUSPENDED));

    /* The entries its own commits wrote are known without a scan. */
    before = stats_of(l2).index_absent_known;
    assert_int_equal(issue_on(f, l2, 9003, 9001, 9001), TXC(OK));
    assert_int_equal(stats_of(l2).index_absent_known, before);
    lf_id(id, 'c', 9001);
    assert_int_equal(lf_status(f, id), ST(SUPERSEDED));
    mn_ledger_free(l2);
}

/* Blocks committed while the scan is half way are in the filter too, on
 * either side of the scan's position. */
static void a_scan_survives_commits(void **state) {
    lf_fixture *f = *state;
    enum { N = 120, M = 60 };
    issue_block(f, 0, N);
    mn_ledger *l1 = f->l, *l2 = NULL;
    assert_int_equal(mn_ledger_open(&l2, f->store, f->g), MN_OK);
    assert_int_equal(mn_ledger_warm(l2, N / 3), 1);
    f->l = l2; /* commit through the ledger that is scanning */
    issue_block(f, 1000, M);
    /* Ids of one bucket: some are evicted, so their reads rely on the filter. */
    uint8_t same[8][32];
    for (uint32_t i = 0; i < 8; i++) {
        memset(same[i], 0xa5, 32);
        same[i][31] = (uint8_t)i;
        assert_int_equal(issue_raw(f, same[i], 100 + i), TXC(OK));
    }
    assert_int_equal(mn_ledger_warm(l2, N / 3), 1);
    assert_true(stats_of(l2).warmed < N + M);
    (void)warm_fully(l2, 5);
    f->l = l1;
    mn_read_cache_stats s = stats_of(l2);
    assert_true(s.ids_complete);
    uint64_t reads = s.store_reads;
    for (uint32_t i = 0; i < N + M; i++) {
        uint8_t id[32];
        lf_id(id, 'c', i < N ? i : 1000 + (i - N));
        agrees_on(f, l2, id, f->time_ms);
        lf_id(id, 'x', i);
        agrees_on(f, l2, id, f->time_ms);
    }
    for (uint32_t i = 0; i < 8; i++) agrees_on(f, l2, same[i], f->time_ms);
    s = stats_of(l2);
    assert_true(s.store_reads - reads >= 4);      /* the evicted ones */
    assert_true(s.store_reads - reads <= 2 + 8); /* and false positives of the filter */
    assert_true(s.absent_known >= N + M - 2);
    mn_ledger_free(l2);
}

/* The store's resumable scan hands out each record once, in the order of a
 * whole scan, and reports its end. */
typedef struct { uint8_t ids[400][32]; size_t n; } id_list;

static int collect_id(void *ctx, const uint8_t *key, size_t kl, const uint8_t *v, size_t vl) {
    (void)v;
    (void)vl;
    id_list *L = ctx;
    assert_int_equal(kl, 33);
    assert_true(L->n < 400);
    memcpy(L->ids[L->n++], key + 1, 32);
    return 0;
}

static void record_scan_resumes_in_order(void **state) {
    lf_fixture *f = *state;
    issue_block(f, 0, 97);
    static id_list whole, sliced;
    whole.n = sliced.n = 0;
    assert_int_equal(mn_store_scan(f->store, 'r', collect_id, &whole), MN_OK);
    assert_int_equal(whole.n, 97);
    const size_t steps[] = {1, 3, 97, 200};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        mn_store_cursor cur = {0};
        bool done = false;
        sliced.n = 0;
        size_t calls = 0;
        while (!done) {
            size_t before = sliced.n;
            assert_int_equal(mn_store_scan_records(f->store, &cur, steps[k], collect_id, &sliced, &done), MN_OK);
            assert_true(sliced.n - before <= steps[k]);
            assert_true(++calls <= 98);
        }
        assert_int_equal(sliced.n, whole.n);
        assert_memory_equal(sliced.ids, whole.ids, whole.n * 32);
        bool again = false;
        size_t before = sliced.n;
        assert_int_equal(mn_store_scan_records(f->store, &cur, steps[k], collect_id, &sliced, &again), MN_OK);
        assert_true(again);
        assert_int_equal(sliced.n, before); /* nothing after the end */
    }
}

/* Prefetching is invisible: no read, no fill, no change of any answer,
 * with or without a cache made yet. */
static void prefetch_changes_nothing(void **state) {
    lf_fixture *f = *state;
    mn_ledger *l2 = NULL;
    assert_int_equal(mn_ledger_open(&l2, f->store, f->g), MN_OK);
    uint8_t id[32];
    lf_id(id, 'c', 1);
    mn_ledger_prefetch_record(l2, id, 0); /* no cache yet */
    mn_ledger_prefetch_record(l2, id, 1);
    mn_ledger_free(l2);
    issue_block(f, 0, 40);
    mn_read_cache_stats s0 = stats_of(f->l);
    for (uint32_t i = 0; i < 80; i++)
        for (int stage = 0; stage < 2; stage++) {
            lf_id(id, i < 40 ? 'c' : 'x', i);
            mn_ledger_prefetch_record(f->l, id, stage);
        }
    mn_read_cache_stats s1 = stats_of(f->l);
    assert_memory_equal(&s0, &s1, sizeof s0);
    for (uint32_t i = 0; i < 80; i++) {
        lf_id(id, i < 40 ? 'c' : 'x', i);
        agrees(f, id, f->time_ms);
    }
}

/* The cache's size is set before its first use, rounded down to a power of
 * two of slots; a small cache stays exact however many records it cannot
 * hold, and its id filter still answers never-issued ids. */
static void a_small_cache_is_sized_and_stays_exact(void **state) {
    lf_fixture *f = *state;
    mn_ledger *l2 = NULL;
    assert_int_equal(mn_ledger_open(&l2, f->store, f->g), MN_OK);
    assert_int_equal(mn_ledger_read_cache_slots(l2), MN_LEDGER_REC_CACHE_SLOTS);
    assert_int_equal(mn_ledger_set_read_cache_bytes(l2, 100 * 256), MN_EINVAL); /* under the minimum */
    assert_int_equal(mn_ledger_set_read_cache_bytes(l2, (uint64_t)MN_LEDGER_REC_CACHE_SLOTS_MAX * 512), MN_EINVAL);
    assert_int_equal(mn_ledger_set_read_cache_bytes(l2, 1500 * 256), MN_OK);
    assert_int_equal(mn_ledger_read_cache_slots(l2), 1024);
    assert_int_equal(mn_ledger_warm(l2, 1), 0); /* makes the cache: empty state, nothing to read */
    assert_int_equal(mn_ledger_set_read_cache_bytes(l2, 1 << 20), MN_ESTATE);
    mn_ledger *l1 = f->l;
    f->l = l2;
    for (uint32_t b = 0; b < 10; b++) issue_block(f, b * 250, 250); /* 2,500 records, 1,024 slots */
    f->l = l1;
    mn_read_cache_stats s0 = stats_of(l2);
    assert_true(s0.ids_complete);
    for (uint32_t i = 0; i < 2500; i += 7) {
        uint8_t id[32];
        lf_id(id, 'c', i);
        agrees_on(f, l2, id, f->time_ms);
        lf_id(id, 'x', i);
        agrees_on(f, l2, id, f->time_ms);
    }
    mn_read_cache_stats s1 = stats_of(l2);
    assert_true(s1.store_reads - s0.store_reads > 100);     /* most records did not fit */
    assert_true(s1.absent_known - s0.absent_known >= 350); /* of 358 never-issued ids */
    mn_ledger_free(l2);
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
        cmocka_unit_test_setup_teardown(never_issued_ids_skip_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(warm_up_reads_a_store_built_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(index_reads_of_new_holders_skip_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(a_scan_survives_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(record_scan_resumes_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(prefetch_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(a_small_cache_is_sized_and_stays_exact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
