/* test_store_index.c: holder and device index values name ids by their
 * records' key-hash prefix (store.c, "index values") and read back whole:
 * shorter on disk, the same to every caller, whole where records share a
 * prefix, and refused when they name no record of their entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <leveldb/c.h>

#include "kvmap.h"
#include "ledger_fixture.h"
#include "smt.h"
#include "store.h"
#include "store_raw.h"

static mn_store *open_new(tmpdir *t, unsigned prefix) {
    tmp_make(t);
    char err[256];
    mn_store *s = NULL;
    assert_int_equal(mn_store_open(&s, t->data, err, sizeof err), MN_OK);
    if (prefix) assert_int_equal(mn_store_set_index_prefix(s, prefix), MN_OK);
    return s;
}

/* A record of id with holder ref(h, holder), device ref(d, device), type 1. */
static size_t pack_record(uint8_t *out, const uint8_t id[32], uint32_t holder, uint32_t device) {
    uint8_t h[32], d[32], tx[32];
    lf_id(h, 'h', holder);
    lf_id(d, 'd', device);
    memset(tx, 0x5a, 32);
    Midnode__CredentialRecord m = MIDNODE__CREDENTIAL_RECORD__INIT;
    m.credential_id = (ProtobufCBinaryData){32, (uint8_t *)id};
    m.type = MIDNODE__CREDENTIAL_TYPE__RESIDENT;
    m.holder_ref = (ProtobufCBinaryData){32, h};
    m.device_ref = (ProtobufCBinaryData){32, d};
    m.carrier = (char *)"skt";
    m.issuer = (char *)"mois";
    m.status = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
    m.issued_height = 1;
    m.issued_tx = (ProtobufCBinaryData){32, tx};
    m.updated_height = 1;
    m.updated_tx = (ProtobufCBinaryData){32, tx};
    return midnode__credential_record__pack(&m, out);
}

static void put_record(mn_kvmap *m, const uint8_t id[32], uint32_t holder, uint32_t device) {
    uint8_t k[MN_STORE_KEY_MAX], v[256];
    size_t kl = mn_store_key_record(k, id), vl = pack_record(v, id, holder, device);
    assert_int_equal(mn_kv_put(m, k, kl, v, vl), MN_OK);
}

/* The 'T' entry of the transaction (hash 0x5a..) put_record's records
 * name, at height 1, index 300 (whose varint has a byte past the first). */
static void put_issuing_tx(mn_kvmap *m) {
    uint8_t k[MN_STORE_KEY_MAX], th[32], loc[MN_STORE_TX_LOC_MAX];
    memset(th, 0x5a, 32);
    size_t kl = mn_store_key_tx(k, th), ll = mn_store_tx_location(loc, 1, 300);
    assert_int_equal(mn_kv_put(m, k, kl, loc, ll), MN_OK);
}

static uint64_t family_entries(mn_store *s, uint8_t fam) {
    static mn_store_fam_stat st[256];
    assert_int_equal(mn_store_stats(s, st), MN_OK);
    return st[fam].entries;
}

static size_t holder_key(uint8_t *k, uint32_t holder) {
    uint8_t h[32];
    lf_id(h, 'h', holder);
    return mn_store_key_holder(k, h, MIDNODE__CREDENTIAL_TYPE__RESIDENT);
}

static size_t device_key(uint8_t *k, uint32_t device) {
    uint8_t d[32];
    lf_id(d, 'd', device);
    return mn_store_key_device(k, d);
}

static int commit(mn_store *s, mn_kvmap *m) {
    uint8_t zero[32] = {0};
    int rc = mn_store_commit(s, mn_store_height(s) + 1, (const uint8_t *)"b", 1, NULL, 0, m, zero);
    mn_kv_free(m);
    return rc;
}

static void reads_as(mn_store *s, const uint8_t *k, size_t kl, const uint8_t *want, size_t want_len) {
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(mn_store_get(s, k, kl, &v, &vl), MN_OK);
    assert_int_equal(vl, want_len);
    assert_memory_equal(v, want, vl);
    free(v);
    uint8_t buf[32 * 40];
    assert_int_equal(mn_store_get_buf(s, k, kl, buf, sizeof buf, &vl), MN_OK);
    assert_int_equal(vl, want_len);
    assert_memory_equal(buf, want, vl);
}

/* Stored (encoded) value bytes of a family, from the store's own accounting. */
static uint64_t stored_value_bytes(mn_store *s, uint8_t fam) {
    static mn_store_fam_stat st[256];
    assert_int_equal(mn_store_stats(s, st), MN_OK);
    return st[fam].value_bytes;
}

typedef struct { size_t n; uint8_t key[64]; uint8_t val[32 * 40]; size_t vl; } seen_entry;

static int see_entry(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    seen_entry *e = ctx;
    e->n++;
    assert_true(kl <= sizeof e->key && vl <= sizeof e->val);
    memcpy(e->key, k, kl);
    memcpy(e->val, v, vl);
    e->vl = vl;
    return 0;
}

/* The value a scan hands out for one key (vl 0 when it does not). */
typedef struct { uint8_t key[64]; size_t kl; uint8_t val[32 * 40]; size_t vl; } found_entry;

static int find_entry(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    found_entry *f = ctx;
    if (kl == f->kl && memcmp(k, f->key, kl) == 0) {
        assert_true(vl <= sizeof f->val);
        memcpy(f->val, v, vl);
        f->vl = vl;
    }
    return 0;
}

/* Ten records on one device, each its own holder: the holder entries take
 * 8 bytes and the device list 1 + 10 x 8, and every getter, the scan and
 * a reopened store give the whole ids. */
static void index_ids_are_stored_by_prefix_and_read_whole(void **state) {
    (void)state;
    enum { N = 10 };
    tmpdir t;
    mn_store *s = open_new(&t, 0);
    mn_kvmap *m = mn_kv_new();
    assert_non_null(m);
    uint8_t ids[N][32], k[MN_STORE_KEY_MAX];
    for (uint32_t i = 0; i < N; i++) {
        lf_id(ids[i], 'c', i);
        put_record(m, ids[i], i, 7);
        size_t kl = holder_key(k, i);
        assert_int_equal(mn_kv_put(m, k, kl, ids[i], 32), MN_OK);
    }
    size_t dkl = device_key(k, 7);
    assert_int_equal(mn_kv_put(m, k, dkl, ids, sizeof ids), MN_OK);
    put_issuing_tx(m);
    assert_int_equal(commit(s, m), MN_OK);
    assert_int_equal(family_entries(s, 'X'), 1); /* the ten records name their transaction by index */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < N; i++) {
            size_t kl = holder_key(k, i);
            reads_as(s, k, kl, ids[i], 32);
        }
        dkl = device_key(k, 7);
        reads_as(s, k, dkl, (const uint8_t *)ids, sizeof ids);
        seen_entry e = {0};
        assert_int_equal(mn_store_scan(s, 'd', see_entry, &e), MN_OK);
        assert_int_equal(e.n, 1);
        assert_int_equal(e.vl, sizeof ids);
        assert_memory_equal(e.val, ids, sizeof ids);
        memset(&e, 0, sizeof e);
        assert_int_equal(mn_store_scan(s, 'h', see_entry, &e), MN_OK);
        assert_int_equal(e.n, N);
        assert_int_equal(e.vl, 32);
        assert_int_equal(stored_value_bytes(s, 'h'), N * 8);
        assert_int_equal(stored_value_bytes(s, 'd'), 1 + N * 8);
        mn_store_close(s);
        char err[256];
        assert_int_equal(mn_store_open(&s, t.data, err, sizeof err), MN_OK);
    }
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* The first key-hash byte of an id. */
static uint8_t kh0(const uint8_t id[32]) {
    uint8_t kh[32];
    mn_smt_key_credential(kh, id);
    return kh[0];
}

/* With one byte of prefix (a test setting), ids whose records share it
 * are kept whole, in the same write or against the store, and the others
 * still read through the records, also once a record with another holder
 * or device comes to share their prefix. */
static void ids_sharing_a_prefix_are_kept_whole(void **state) {
    (void)state;
    tmpdir t;
    mn_store *s = open_new(&t, 1);
    /* a, b: two ids sharing their first key-hash byte; c: an id of a byte no other id here has */
    uint8_t a[32], b[32], c[32], id[32];
    int ia = -1, ib = -1, ic = -1;
    int first_of[256];
    for (int i = 0; i < 256; i++) first_of[i] = -1;
    for (uint32_t i = 0; i < 600 && ib < 0; i++) {
        lf_id(id, 'x', i);
        uint8_t p = kh0(id);
        if (first_of[p] >= 0) {
            ia = first_of[p];
            ib = (int)i;
        } else {
            first_of[p] = (int)i;
        }
    }
    assert_true(ib >= 0);
    lf_id(a, 'x', (uint32_t)ia);
    lf_id(b, 'x', (uint32_t)ib);
    for (uint32_t i = 1000; ic < 0; i++) {
        lf_id(id, 'x', i);
        if (first_of[kh0(id)] < 0) ic = (int)i;
    }
    lf_id(c, 'x', (uint32_t)ic);

    /* Height 1: a on device 1 with holder 1, b on device 1 with holder 2,
     * c on device 2 with holder 3. */
    mn_kvmap *m = mn_kv_new();
    uint8_t k[MN_STORE_KEY_MAX], ab[64];
    put_record(m, a, 1, 1);
    put_record(m, b, 2, 1);
    put_record(m, c, 3, 2);
    memcpy(ab, a, 32);
    memcpy(ab + 32, b, 32);
    size_t kl = device_key(k, 1);
    assert_int_equal(mn_kv_put(m, k, kl, ab, 64), MN_OK);
    kl = device_key(k, 2);
    assert_int_equal(mn_kv_put(m, k, kl, c, 32), MN_OK);
    kl = holder_key(k, 1);
    assert_int_equal(mn_kv_put(m, k, kl, a, 32), MN_OK);
    kl = holder_key(k, 3);
    assert_int_equal(mn_kv_put(m, k, kl, c, 32), MN_OK);
    assert_int_equal(commit(s, m), MN_OK);
    /* a and b whole (they share a byte), c by its byte */
    assert_int_equal(stored_value_bytes(s, 'd'), (1 + 2 + 64) + (1 + 1));
    assert_int_equal(stored_value_bytes(s, 'h'), 32 + 1);

    /* Height 2: b's holder entry, written against the store, where a shares its byte. */
    m = mn_kv_new();
    kl = holder_key(k, 2);
    assert_int_equal(mn_kv_put(m, k, kl, b, 32), MN_OK);
    assert_int_equal(commit(s, m), MN_OK);
    assert_int_equal(stored_value_bytes(s, 'h'), 32 + 1 + 32);

    /* Height 3: a record d2 sharing c's byte, of another holder and device:
     * c's entries still read c. */
    uint8_t d2[32];
    for (uint32_t i = 2000;; i++) {
        lf_id(d2, 'x', i);
        if (kh0(d2) == kh0(c)) break;
    }
    m = mn_kv_new();
    put_record(m, d2, 4, 3);
    assert_int_equal(commit(s, m), MN_OK);
    for (int pass = 0; pass < 2; pass++) {
        /* scans: c's byte is held by c and d2, told apart by holder and device */
        seen_entry e = {0};
        assert_int_equal(mn_store_scan(s, 'h', see_entry, &e), MN_OK);
        assert_int_equal(e.n, 3);
        memset(&e, 0, sizeof e);
        assert_int_equal(mn_store_scan(s, 'd', see_entry, &e), MN_OK);
        assert_int_equal(e.n, 2);
        found_entry f = {0};
        f.kl = device_key(f.key, 2);
        assert_int_equal(mn_store_scan(s, 'd', find_entry, &f), MN_OK);
        assert_int_equal(f.vl, 32);
        assert_memory_equal(f.val, c, 32);
        memset(&f, 0, sizeof f);
        f.kl = holder_key(f.key, 3);
        assert_int_equal(mn_store_scan(s, 'h', find_entry, &f), MN_OK);
        assert_int_equal(f.vl, 32);
        assert_memory_equal(f.val, c, 32);
        kl = device_key(k, 1);
        reads_as(s, k, kl, ab, 64);
        kl = device_key(k, 2);
        reads_as(s, k, kl, c, 32);
        kl = holder_key(k, 1);
        reads_as(s, k, kl, a, 32);
        kl = holder_key(k, 2);
        reads_as(s, k, kl, b, 32);
        kl = holder_key(k, 3);
        reads_as(s, k, kl, c, 32);
        mn_store_close(s);
        char err[256];
        assert_int_equal(mn_store_open(&s, t.data, err, sizeof err), MN_OK);
    }

    /* Height 4: d2 onto c's device: the list, rewritten, keeps both whole. */
    m = mn_kv_new();
    uint8_t cd[64];
    memcpy(cd, c, 32);
    memcpy(cd + 32, d2, 32);
    kl = device_key(k, 2);
    assert_int_equal(mn_kv_put(m, k, kl, cd, 64), MN_OK);
    assert_int_equal(commit(s, m), MN_OK);
    reads_as(s, k, kl, cd, 64);
    assert_int_equal(stored_value_bytes(s, 'd'), (1 + 2 + 64) + (1 + 2 + 64));
    mn_store_close(s);
    lf_rmrf(t.dir);
}

static int tree_cannot_tell(void *ctx, const uint8_t *pos, size_t len) {
    (void)ctx;
    (void)pos;
    (void)len;
    return -1;
}

/* A write carrying tree nodes whose tree cannot answer (its keeper's tree
 * is not the committed one) is checked in the store and the write: two
 * ids sharing their byte in the same write stay whole. */
static void a_tree_that_cannot_tell_falls_back_to_the_write(void **state) {
    (void)state;
    tmpdir t;
    mn_store *s = open_new(&t, 1);
    mn_store_set_tree(s, tree_cannot_tell, NULL);
    uint8_t ids[2][32], id[32], k[MN_STORE_KEY_MAX];
    int first_of[256], found = 0;
    for (int i = 0; i < 256; i++) first_of[i] = -1;
    for (uint32_t i = 0; !found; i++) {
        lf_id(id, 'y', i);
        uint8_t p = kh0(id);
        if (first_of[p] >= 0) {
            lf_id(ids[0], 'y', (uint32_t)first_of[p]);
            memcpy(ids[1], id, 32);
            found = 1;
        }
        first_of[p] = (int)i;
    }
    mn_kvmap *m = mn_kv_new();
    put_record(m, ids[0], 1, 1);
    put_record(m, ids[1], 2, 1);
    uint8_t node_key[3] = {MN_SMT_PREFIX, 0, 0}, node[MN_SMT_NODE_LEN] = {MN_SMT_INNER};
    assert_int_equal(mn_kv_put(m, node_key, sizeof node_key, node, sizeof node), MN_OK);
    size_t kl = device_key(k, 1);
    assert_int_equal(mn_kv_put(m, k, kl, ids, sizeof ids), MN_OK);
    assert_int_equal(commit(s, m), MN_OK);
    reads_as(s, k, kl, (const uint8_t *)ids, sizeof ids);
    assert_int_equal(stored_value_bytes(s, 'd'), 1 + 2 + 64);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* An entry naming an id no record of its holder and type (or device)
 * has reads MN_ECORRUPT; a value that is not ids is refused at commit;
 * the prefix is set only on a new store. */
static void entries_naming_no_such_record_are_corrupt(void **state) {
    (void)state;
    tmpdir t;
    mn_store *s = open_new(&t, 0);
    uint8_t id[32], k[MN_STORE_KEY_MAX], dkey[MN_STORE_KEY_MAX];
    lf_id(id, 'c', 1);
    mn_kvmap *m = mn_kv_new();
    put_record(m, id, 1, 1);
    size_t hk = holder_key(k, 2); /* holder 2 has no record */
    assert_int_equal(mn_kv_put(m, k, hk, id, 32), MN_OK);
    uint8_t none[32];
    lf_id(none, 'c', 99); /* no record at all */
    size_t dk = device_key(dkey, 1);
    assert_int_equal(mn_kv_put(m, dkey, dk, none, 32), MN_OK);
    assert_int_equal(commit(s, m), MN_OK);
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(mn_store_get(s, k, hk, &v, &vl), MN_ECORRUPT);
    assert_int_equal(mn_store_get(s, dkey, dk, &v, &vl), MN_ECORRUPT);
    /* A scan takes the one record under a prefix without reading it again
     * (the snapshot import checks indexes against records); a prefix no
     * record holds is corrupt there too. */
    seen_entry e = {0};
    assert_int_equal(mn_store_scan(s, 'h', see_entry, &e), MN_OK);
    assert_int_equal(e.n, 1);
    assert_memory_equal(e.val, id, 32);
    memset(&e, 0, sizeof e);
    assert_int_equal(mn_store_scan(s, 'd', see_entry, &e), MN_ECORRUPT);

    m = mn_kv_new();
    assert_int_equal(mn_kv_put(m, k, hk, id, 31), MN_OK);
    assert_int_equal(commit(s, m), MN_EINVAL);
    m = mn_kv_new();
    assert_int_equal(mn_kv_put(m, k, hk, (const uint8_t *)"0123456789012345678901234567890123456789012345678901234567890123", 64),
                     MN_OK);
    assert_int_equal(commit(s, m), MN_EINVAL);
    m = mn_kv_new();
    uint8_t odd[33] = {0};
    assert_int_equal(mn_kv_put(m, dkey, dk, odd, sizeof odd), MN_OK);
    assert_int_equal(commit(s, m), MN_EINVAL);
    assert_int_equal(mn_store_height(s), 1);
    assert_int_equal(mn_store_set_index_prefix(s, 2), MN_ESTATE);
    mn_store_close(s);
    lf_rmrf(t.dir);

    s = open_new(&t, 0);
    assert_int_equal(mn_store_set_index_prefix(s, 0), MN_EINVAL);
    assert_int_equal(mn_store_set_index_prefix(s, 9), MN_EINVAL);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* A store of format 5 keeps writing and reading whole ids and records
 * with their transaction's hash; a marker of
 * format 6 with a prefix length out of range is refused. */
static void a_store_of_format_5_keeps_whole_ids(void **state) {
    (void)state;
    tmpdir t;
    mn_store *s = open_new(&t, 0);
    mn_store_close(s);
    raw_write(t.data, "Mformat", 7, "\x05", 1);
    char err[256];
    assert_int_equal(mn_store_open(&s, t.data, err, sizeof err), MN_OK);
    assert_int_equal(mn_store_set_index_prefix(s, 1), MN_ESTATE);
    uint8_t id[32], k[MN_STORE_KEY_MAX];
    lf_id(id, 'c', 1);
    mn_kvmap *m = mn_kv_new();
    uint8_t id2[32];
    lf_id(id2, 'c', 2);
    put_record(m, id, 1, 1);
    put_record(m, id2, 2, 1);
    put_issuing_tx(m);
    size_t kl = holder_key(k, 1);
    assert_int_equal(mn_kv_put(m, k, kl, id, 32), MN_OK);
    assert_int_equal(commit(s, m), MN_OK);
    reads_as(s, k, kl, id, 32);
    assert_int_equal(stored_value_bytes(s, 'h'), 32);
    assert_int_equal(family_entries(s, 'X'), 0); /* records keep their transaction's hash */
    mn_store_close(s);
    raw_write(t.data, "Mformat", 7, "\x06\x09", 2);
    s = NULL;
    assert_int_equal(mn_store_open(&s, t.data, err, sizeof err), MN_ECORRUPT);
    assert_null(s);
    lf_rmrf(t.dir);
}

/* ---- the ledger on a store where ids share prefixes all the time */

typedef struct {
    lf_fixture f;
} run;

static void open_run(run *r, unsigned prefix) {
    assert_int_equal(lf_open(&r->f), MN_OK);
    lf_close_store(&r->f);
    char path[300], err[256];
    snprintf(path, sizeof path, "%s/data", r->f.dir);
    assert_int_equal(mn_store_open(&r->f.store, path, err, sizeof err), MN_OK);
    if (prefix) assert_int_equal(mn_store_set_index_prefix(r->f.store, prefix), MN_OK);
    assert_int_equal(mn_ledger_open(&r->f.l, r->f.store, r->f.g), MN_OK);
}

enum { CREDS = 300, DEVICES = 20, HOLDERS = 250 };

/* Issues CREDS credentials (holders repeat, so some supersede), reports
 * two devices lost and one recovered, revokes some; reopens midway so
 * that the index entries are read back from the store. */
static void scenario(run *r) {
    lf_fixture *f = &r->f;
    uint8_t id[32], h[32], d[32];
    for (uint32_t i = 0; i < CREDS; i++) {
        uint8_t *tx;
        size_t n;
        lf_id(id, 'c', i);
        lf_id(h, 'h', i % HOLDERS);
        lf_id(d, 'd', i % DEVICES);
        lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &tx, &n);
        assert_int_equal(lf_one(f, tx, n), 0);
        if (i == CREDS / 2) {
            lf_close_store(f);
            assert_int_equal(lf_open_store(f), MN_OK);
        }
    }
    for (uint32_t dev = 0; dev < 3; dev++) {
        uint8_t *tx;
        size_t n;
        lf_id(d, 'd', dev);
        lf_device_op(f, "skt", 1, d, &tx, &n);
        assert_int_equal(lf_one(f, tx, n), 0);
    }
    uint8_t *tx;
    size_t n;
    lf_id(d, 'd', 1);
    lf_device_op(f, "skt", 0, d, &tx, &n);
    assert_int_equal(lf_one(f, tx, n), 0);
    for (uint32_t i = 0; i < CREDS; i += 7) {
        lf_id(id, 'c', i);
        if (lf_status(f, id) == MIDNODE__CREDENTIAL_STATUS__SUPERSEDED) continue;
        lf_cred_op(f, "mois", MIDNODE__TX_PAYLOAD__BODY_REVOKE, id, &tx, &n);
        assert_int_equal(lf_one(f, tx, n), 0);
    }
    lf_close_store(f);
    assert_int_equal(lf_open_store(f), MN_OK);
}

/* The ids an index entry names in both runs, which must agree (0 when
 * neither has the entry). */
static size_t same_ids(run *a, run *b, const uint8_t *k, size_t kl) {
    uint8_t va[32 * 40], vb[32 * 40];
    size_t al = 0, bl = 0;
    int rc = mn_store_get_buf(a->f.store, k, kl, va, sizeof va, &al);
    assert_int_equal(rc, mn_store_get_buf(b->f.store, k, kl, vb, sizeof vb, &bl));
    if (rc == MN_ENOTFOUND) return 0;
    assert_int_equal(rc, MN_OK);
    assert_int_equal(al, bl);
    assert_memory_equal(va, vb, al);
    return al / 32;
}

/* The same transactions on a store of one-byte prefixes (300 records in
 * 256 prefixes) and on one of eight: the same root, statuses, device
 * lists and holder entries, and the one-byte store keeps some ids whole
 * and names others by prefix. */
static void the_ledger_reads_the_same_with_shared_prefixes(void **state) {
    (void)state;
    static run short_run, long_run;
    open_run(&short_run, 1);
    open_run(&long_run, 0);
    scenario(&short_run);
    scenario(&long_run);
    uint8_t r1[32], r2[32];
    mn_ledger_root(short_run.f.l, r1);
    mn_ledger_root(long_run.f.l, r2);
    assert_memory_equal(r1, r2, 32);
    uint8_t id[32], k[MN_STORE_KEY_MAX];
    int suspended = 0;
    for (uint32_t i = 0; i < CREDS; i++) {
        lf_id(id, 'c', i);
        int st = lf_status(&short_run.f, id);
        assert_int_equal(st, lf_status(&long_run.f, id));
        suspended += st == MIDNODE__CREDENTIAL_STATUS__SUSPENDED;
    }
    assert_true(suspended > 0);
    size_t listed = 0, named = 0;
    for (uint32_t dev = 0; dev < DEVICES; dev++) {
        size_t kl = device_key(k, dev);
        listed += same_ids(&short_run, &long_run, k, kl);
    }
    assert_true(listed > 0);
    for (uint32_t hd = 0; hd < HOLDERS; hd++) {
        size_t kl = holder_key(k, hd);
        size_t n = same_ids(&short_run, &long_run, k, kl);
        assert_true(n <= 1);
        named += n;
    }
    assert_true(named > 0);
    static mn_store_fam_stat st[256];
    assert_int_equal(mn_store_stats(short_run.f.store, st), MN_OK);
    uint64_t entries = st['h'].entries, bytes = st['h'].value_bytes;
    assert_true(entries > 0);
    assert_true(bytes > entries * 1 && bytes < entries * 32); /* some whole, some by prefix */
    assert_int_equal(mn_store_stats(long_run.f.store, st), MN_OK);
    assert_int_equal(st['h'].value_bytes, st['h'].entries * 8);
    lf_close(&short_run.f);
    lf_close(&long_run.f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_ids_are_stored_by_prefix_and_read_whole),
        cmocka_unit_test(ids_sharing_a_prefix_are_kept_whole),
        cmocka_unit_test(a_tree_that_cannot_tell_falls_back_to_the_write),
        cmocka_unit_test(entries_naming_no_such_record_are_corrupt),
        cmocka_unit_test(a_store_of_format_5_keeps_whole_ids),
        cmocka_unit_test(the_ledger_reads_the_same_with_shared_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
