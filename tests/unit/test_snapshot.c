/* test_snapshot.c: a certified state snapshot: export, import into a new
 * store (same root, same records, the next block executes identically),
 * and every refusal: wrong certificate, tampered state, tampered or forged indexes,
 * truncation, a store that is not empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cert.h"
#include "ledger_fixture.h"
#include "signbytes.h"
#include "snapshot.h"

#define TXC(x) MIDNODE__TX_CODE__TX_##x
#define ST(x) MIDNODE__CREDENTIAL_STATUS__##x

typedef struct ctx {
    lf_fixture f;
    char snap[300];
    char dir2[64];
    mn_store *s2;
} ctx;

/* Commits the next block as a real Block with a header and a certificate
 * signed by every validator of the fixture. */
static void certified_block(lf_fixture *f, uint8_t **txs, size_t *lens, size_t n) {
    uint64_t h = mn_ledger_height(f->l) + 1;
    mn_exec *e = mn_exec_begin(f->l, h, f->time_ms);
    assert_non_null(e);
    for (size_t i = 0; i < n; i++) {
        char msg[MN_TX_MSG_MAX];
        assert_int_equal(mn_exec_apply_tx(e, txs[i], lens[i], msg, sizeof msg), TXC(OK));
        free(txs[i]);
    }
    uint8_t root[32];
    assert_int_equal(mn_exec_finish(e, root), MN_OK);
    Midnode__BlockHeader hd = MIDNODE__BLOCK_HEADER__INIT;
    hd.chain_id = (char *)LF_CHAIN;
    hd.height = h;
    hd.time_ms = f->time_ms;
    hd.state_root = (ProtobufCBinaryData){32, root};
    hd.proposer = (char *)"mois";
    uint8_t hbuf[512];
    size_t hl = midnode__block_header__pack(&hd, hbuf);
    Midnode__Block b = MIDNODE__BLOCK__INIT;
    b.header = (ProtobufCBinaryData){hl, hbuf};
    uint8_t bbuf[1024];
    assert_true(midnode__block__get_packed_size(&b) <= sizeof bbuf);
    size_t bl = midnode__block__pack(&b, bbuf);
    uint8_t hash[32];
    mn_sha256(hash, hbuf, hl);
    uint8_t sb[MN_SIGNBYTES_MAX], digest[32], sigs[MN_VALIDATORS_MAX][64];
    size_t sl = mn_sign_bytes(sb, LF_CHAIN, MN_SIGN_PRECOMMIT, h, 0, hash, 32, -1);
    assert_true(sl > 0);
    mn_sha256(digest, sb, sl);
    Midnode__CommitSig cs[MN_VALIDATORS_MAX], *csp[MN_VALIDATORS_MAX];
    for (size_t v = 0; v < f->g->validator_count; v++) {
        const mn_member *m = &f->g->members[f->g->validator_members[v]];
        uint8_t csk[32];
        char seed[64];
        int sn = snprintf(seed, sizeof seed, "midnode test consensus %s", m->id);
        mn_sha256(csk, seed, (size_t)sn);
        assert_int_equal(mn_sign(sigs[v], digest, csk), MN_OK);
        midnode__commit_sig__init(&cs[v]);
        cs[v].validator_index = (uint32_t)v;
        cs[v].signature = (ProtobufCBinaryData){64, sigs[v]};
        csp[v] = &cs[v];
    }
    Midnode__CommitCertificate c = MIDNODE__COMMIT_CERTIFICATE__INIT;
    c.height = h;
    c.block_hash = (ProtobufCBinaryData){32, hash};
    c.sigs = csp;
    c.n_sigs = f->g->validator_count;
    uint8_t cbuf[4096];
    assert_true(midnode__commit_certificate__get_packed_size(&c) <= sizeof cbuf);
    size_t cl = midnode__commit_certificate__pack(&c, cbuf);
    char err[160];
    assert_int_equal(mn_cert_check(f->g, h, hash, &c, err, sizeof err), MN_OK);
    assert_int_equal(mn_exec_commit(e, bbuf, bl, cbuf, cl), MN_OK);
    mn_exec_free(e);
    f->time_ms += 1000;
}

static void one(lf_fixture *f, uint8_t *tx, size_t len) { assert_int_equal(lf_one(f, tx, len), TXC(OK)); }

static int setup(void **state) {
    ctx *c = calloc(1, sizeof *c);
    if (!c) return -1;
    if (lf_open(&c->f) != MN_OK) {
        free(c);
        return -1;
    }
    lf_fixture *f = &c->f;
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    /* Credentials 0..19 on devices 0..9, carriers in turn; 3 is reissued
     * as 100 (supersede), 5 revoked, 7 suspended by its issuer, device 2
     * reported lost by its carrier, 9 already expired. */
    for (uint32_t i = 0; i < 20; i++) {
        lf_id(id, 'c', i);
        lf_id(h, 'h', i);
        lf_id(d, 'd', i % 10);
        lf_issue(f, "mois", id, LF_RESIDENT, h, d, i % 10 == 2 ? "kt" : "skt",
                 i == 9 ? f->time_ms / 1000 + 2 : 0, &tx, &len);
        one(f, tx, len);
    }
    lf_id(id, 'c', 100);
    lf_id(h, 'h', 3);
    lf_id(d, 'd', 11);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "lgu", 0, &tx, &len);
    one(f, tx, len);
    lf_id(id, 'c', 5);
    lf_cred_op(f, "mois", MIDNODE__TX_PAYLOAD__BODY_REVOKE, id, &tx, &len);
    one(f, tx, len);
    lf_id(id, 'c', 7);
    lf_cred_op(f, "mois", MIDNODE__TX_PAYLOAD__BODY_SUSPEND, id, &tx, &len);
    one(f, tx, len);
    lf_id(d, 'd', 2);
    lf_device_op(f, "kt", 1, d, &tx, &len);
    one(f, tx, len);
    f->time_ms += 10000; /* credential 9 is expired from here on */
    certified_block(f, NULL, NULL, 0);
    snprintf(c->snap, sizeof c->snap, "%s/state.snap", f->dir);
    snprintf(c->dir2, sizeof c->dir2, "/tmp/mn-snap-test-XXXXXX");
    char err[256];
    if (!mkdtemp(c->dir2) || mn_store_open(&c->s2, c->dir2, err, sizeof err) != MN_OK) {
        lf_close(&c->f);
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state) {
    ctx *c = *state;
    mn_store_close(c->s2);
    lf_rmrf(c->dir2);
    lf_close(&c->f);
    free(c);
    return 0;
}

/* The file as bytes, and written back with a fresh checksum. */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, uint8_t *b, size_t len, bool fix_checksum) {
    if (fix_checksum) mn_sha256(b + len - 32, b, len - 32);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, len, fp), len);
    fclose(fp);
}

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Offset of the value of the first entry of family fam whose key starts
 * with fam and, for records, whose value contains needle. */
static size_t find_entry(const uint8_t *b, size_t len, char fam, const char *needle, size_t *vlen) {
    size_t p = 8;
    p += 4 + be(b + p, 4);
    p += 4 + be(b + p, 4);
    while (p < len && b[p] != 0) {
        size_t kl = be(b + p + 1, 2);
        size_t vp = p + 3 + kl + 4;
        size_t vl = be(b + p + 3 + kl, 4);
        if (b[p] == (uint8_t)fam) {
            bool hit = !needle;
            for (size_t i = 0; needle && i + strlen(needle) <= vl && !hit; i++)
                hit = memcmp(b + vp + i, needle, strlen(needle)) == 0;
            if (hit) {
                *vlen = vl;
                return vp;
            }
        }
        p = vp + vl;
    }
    fail_msg("no entry of family %c", fam);
    return 0;
}

static void export_import_round_trip(void **state) {
    ctx *c = *state;
    lf_fixture *f = &c->f;
    char err[256];
    mn_snapshot_info ex, im;
    assert_int_equal(mn_snapshot_export(f->store, c->snap, &ex, err, sizeof err), MN_OK);
    assert_int_equal(ex.height, mn_ledger_height(f->l));
    assert_int_equal(ex.records, 21);
    assert_true(ex.nonces == 2 && ex.devices > 0 && ex.holders > 0);
    assert_int_equal(mn_snapshot_import(c->s2, f->g, c->snap, &im, err, sizeof err), MN_OK);
    assert_int_equal(im.height, ex.height);
    assert_memory_equal(im.state_root, ex.state_root, 32);
    assert_int_equal(im.records, 21);
    assert_int_equal(im.bytes, ex.bytes); /* every byte read */
    assert_int_equal(mn_store_height(c->s2), ex.height);
    /* Same records, same proofs, through a ledger on the new store. */
    mn_ledger *l2 = NULL;
    assert_int_equal(mn_ledger_open(&l2, c->s2, f->g), MN_OK);
    uint8_t r1[32], r2[32];
    mn_ledger_root(f->l, r1);
    mn_ledger_root(l2, r2);
    assert_memory_equal(r1, r2, 32);
    Midnode__StatusProof *p = NULL;
    uint8_t id[32];
    lf_id(id, 'c', 4);
    assert_int_equal(mn_ledger_status_proof(l2, id, &p), MN_OK);
    assert_non_null(p->commit);
    assert_true(p->record.len > 0);
    mn_ledger_status_proof_free(p);
    /* The next block runs the same on both: a loss report of device 1
     * (through the device index) and an issue superseding holder 4. */
    uint8_t d[32], h[32], *tx;
    size_t len;
    lf_id(d, 'd', 1);
    lf_device_op(f, "skt", 1, d, &tx, &len);
    uint8_t *tx2;
    size_t len2;
    lf_id(id, 'c', 200);
    lf_id(h, 'h', 4);
    lf_id(d, 'd', 12);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &tx2, &len2);
    uint64_t next = mn_ledger_height(f->l) + 1;
    mn_exec *e1 = mn_exec_begin(f->l, next, f->time_ms), *e2 = mn_exec_begin(l2, next, f->time_ms);
    assert_non_null(e1);
    assert_non_null(e2);
    char msg[MN_TX_MSG_MAX];
    assert_int_equal(mn_exec_apply_tx(e1, tx, len, msg, sizeof msg), TXC(OK));
    assert_int_equal(mn_exec_apply_tx(e2, tx, len, msg, sizeof msg), TXC(OK));
    assert_int_equal(mn_exec_apply_tx(e1, tx2, len2, msg, sizeof msg), TXC(OK));
    assert_int_equal(mn_exec_apply_tx(e2, tx2, len2, msg, sizeof msg), TXC(OK));
    size_t n1, n2;
    (void)mn_exec_changes(e1, &n1);
    (void)mn_exec_changes(e2, &n2);
    assert_int_equal(n1, n2);
    assert_int_equal(mn_exec_finish(e1, r1), MN_OK);
    assert_int_equal(mn_exec_finish(e2, r2), MN_OK);
    assert_memory_equal(r1, r2, 32);
    mn_exec_free(e1);
    mn_exec_free(e2);
    free(tx);
    free(tx2);
    mn_ledger_free(l2);
    /* A second import into the same store is refused. */
    assert_int_equal(mn_snapshot_import(c->s2, f->g, c->snap, NULL, err, sizeof err), MN_ESTATE);
}

static void other_genesis_is_refused(void **state) {
    ctx *c = *state;
    lf_fixture *f = &c->f;
    char err[256];
    assert_int_equal(mn_snapshot_export(f->store, c->snap, NULL, err, sizeof err), MN_OK);
    mn_genesis *g2 = malloc(sizeof *g2);
    assert_non_null(g2);
    memcpy(g2, f->g, sizeof *g2);
    /* Two validators with other consensus keys: no quorum of the real ones. */
    for (int v = 0; v < 2; v++) {
        uint8_t sk[32];
        mn_sha256(sk, v ? "other b" : "other a", 7);
        assert_int_equal(mn_key_pubkey(g2->members[g2->validator_members[v]].consensus_pubkey, sk), MN_OK);
    }
    assert_int_equal(mn_snapshot_import(c->s2, g2, c->snap, NULL, err, sizeof err), MN_ECRYPTO);
    assert_non_null(strstr(err, "certificate"));
    assert_int_equal(mn_store_height(c->s2), 0);
    free(g2);
}

/* The fixture's state exported to c->snap, as bytes (malloc'd). */
static uint8_t *exported_bytes(ctx *c, size_t *len) {
    char err[256];
    assert_int_equal(mn_snapshot_export(c->f.store, c->snap, NULL, err, sizeof err), MN_OK);
    return slurp(c->snap, len);
}

/* Imports bytes b into a new empty store; returns the result, err filled. */
static int import_bytes(ctx *c, uint8_t *b, size_t len, char *err, size_t err_len) {
    mn_store_close(c->s2);
    lf_rmrf(c->dir2);
    assert_int_equal(mkdir(c->dir2, 0700), 0);
    assert_int_equal(mn_store_open(&c->s2, c->dir2, err, err_len), MN_OK);
    spit(c->snap, b, len, true);
    int rc = mn_snapshot_import(c->s2, c->f.g, c->snap, NULL, err, err_len);
    if (rc != MN_OK) assert_int_equal(mn_store_height(c->s2), 0);
    return rc;
}

static void tampered_record_fails_the_root(void **state) {
    ctx *c = *state;
    lf_fixture *f = &c->f;
    char err[256];
    size_t len, vl;
    uint8_t *b = exported_bytes(c, &len);
    size_t vp = find_entry(b, len, 'r', "lgu", &vl);
    for (size_t i = 0; i + 3 <= vl; i++)
        if (memcmp(b + vp + i, "lgu", 3) == 0) memcpy(b + vp + i, "skt", 3);
    spit(c->snap, b, len, false);
    /* Without a fresh checksum: a damaged file. */
    assert_int_equal(mn_snapshot_import(c->s2, f->g, c->snap, NULL, err, sizeof err), MN_ECORRUPT);
    /* With one (a forger's file): the root gives it away. */
    assert_int_equal(import_bytes(c, b, len, err, sizeof err), MN_ECRYPTO);
    assert_non_null(strstr(err, "state root"));
    assert_int_equal(mn_store_height(c->s2), 0);
    free(b);
}

static void tampered_index_is_refused(void **state) {
    ctx *c = *state;
    char err[256];
    size_t len, vl;
    uint8_t *b = exported_bytes(c, &len);
    /* A device list that forgets its credential: a later loss report
     * would miss it. The root does not cover indexes; the import checks. */
    size_t vp = find_entry(b, len, 'd', NULL, &vl);
    assert_true(vl >= 32);
    b[vp] ^= 1;
    assert_int_equal(import_bytes(c, b, len, err, sizeof err), MN_ECORRUPT);
    assert_non_null(strstr(err, "indexes"));
    assert_int_equal(mn_store_height(c->s2), 0);
    free(b);
}

/* The snapshot bytes b (len) with one more entry before the end, the
 * entry count and checksum fixed: what a forger would write. */
static uint8_t *with_entry(const uint8_t *b, size_t len, const uint8_t *key, size_t kl, const uint8_t *val,
                           size_t vl, size_t *out_len) {
    size_t end = len - 32 - 8 - 1; /* the 0 byte after the entries */
    size_t el = 1 + 2 + kl + 4 + vl;
    uint8_t *o = malloc(len + el);
    assert_non_null(o);
    memcpy(o, b, end);
    uint8_t *p = o + end;
    *p++ = key[0];
    *p++ = (uint8_t)(kl >> 8);
    *p++ = (uint8_t)kl;
    memcpy(p, key, kl);
    p += kl;
    for (int i = 3; i >= 0; i--) *p++ = (uint8_t)(vl >> (8 * i));
    memcpy(p, val, vl);
    p += vl;
    *p++ = 0;
    uint64_t n = be(b + end + 1, 8) + 1;
    for (int i = 7; i >= 0; i--) *p++ = (uint8_t)(n >> (8 * i));
    *out_len = (size_t)(p - o) + 32;
    return o;
}

/* Index entries that name what they must not: a holder entry of a holder
 * whose live credential is another's, a device listing a revoked
 * credential or one credential twice, a holder entry naming another id.
 * Each is refused; the untouched file imports. */
static void forged_index_entries_are_refused(void **state) {
    ctx *c = *state;
    char err[256];
    size_t len, n2;
    uint8_t *b = exported_bytes(c, &len);
    uint8_t key[MN_STORE_KEY_MAX], ref[32], ids[2][32];
    lf_id(ids[0], 'c', 0);
    lf_id(ids[1], 'c', 5); /* revoked */

    lf_id(ref, 'h', 999);
    size_t kl = mn_store_key_holder(key, ref, MIDNODE__CREDENTIAL_TYPE__RESIDENT);
    uint8_t *b2 = with_entry(b, len, key, kl, ids[0], 32, &n2);
    assert_int_equal(import_bytes(c, b2, n2, err, sizeof err), MN_ECORRUPT);
    assert_non_null(strstr(err, "holder entry names no live credential"));
    free(b2);

    lf_id(ref, 'd', 50);
    kl = mn_store_key_device(key, ref);
    b2 = with_entry(b, len, key, kl, ids[1], 32, &n2);
    assert_int_equal(import_bytes(c, b2, n2, err, sizeof err), MN_ECORRUPT);
    assert_non_null(strstr(err, "not a live one of that device"));
    free(b2);

    uint8_t twice[64];
    memcpy(twice, ids[0], 32);
    memcpy(twice + 32, ids[0], 32);
    lf_id(ref, 'd', 0); /* the device credential 0 is on */
    kl = mn_store_key_device(key, ref);
    b2 = with_entry(b, len, key, kl, twice, 64, &n2);
    assert_int_equal(import_bytes(c, b2, n2, err, sizeof err), MN_ECORRUPT);
    assert_non_null(strstr(err, "twice"));
    free(b2);

    size_t vl, vp = find_entry(b, len, 'h', NULL, &vl);
    assert_int_equal(vl, 32);
    b2 = malloc(len);
    assert_non_null(b2);
    memcpy(b2, b, len);
    b2[vp + 31] ^= 1;
    assert_int_equal(import_bytes(c, b2, len, err, sizeof err), MN_ECORRUPT);
    assert_non_null(strstr(err, "indexes"));
    free(b2);

    assert_int_equal(import_bytes(c, b, len, err, sizeof err), MN_OK);
    assert_true(mn_store_height(c->s2) > 0);
    free(b);
}

/* Device 9 holds credential 9 (expired at the snapshot's time) and 19.
 * A list without 9 is what the ledger writes once it drops expired ids:
 * it imports. A list without 19, which is live and not expired, would
 * hide 19 from a loss report of device 9: refused. */
static void device_lists_may_drop_only_expired_credentials(void **state) {
    ctx *c = *state;
    char err[256];
    size_t len, n2;
    uint8_t *b = exported_bytes(c, &len);
    uint8_t key[MN_STORE_KEY_MAX], ref[32], id[32];
    lf_id(ref, 'd', 9);
    size_t kl = mn_store_key_device(key, ref);

    lf_id(id, 'c', 9);
    uint8_t *b2 = with_entry(b, len, key, kl, id, 32, &n2);
    assert_int_equal(import_bytes(c, b2, n2, err, sizeof err), MN_ECORRUPT);
    assert_non_null(strstr(err, "missing from its device's list"));
    free(b2);

    lf_id(id, 'c', 19);
    b2 = with_entry(b, len, key, kl, id, 32, &n2);
    assert_int_equal(import_bytes(c, b2, n2, err, sizeof err), MN_OK);
    assert_true(mn_store_height(c->s2) > 0);
    free(b2);
    free(b);
}

static void truncated_or_empty_state_is_refused(void **state) {
    ctx *c = *state;
    lf_fixture *f = &c->f;
    char err[256];
    assert_int_equal(mn_snapshot_export(f->store, c->snap, NULL, err, sizeof err), MN_OK);
    size_t len;
    uint8_t *b = slurp(c->snap, &len);
    spit(c->snap, b, len / 2, false);
    assert_int_equal(mn_snapshot_import(c->s2, f->g, c->snap, NULL, err, sizeof err), MN_ECORRUPT);
    spit(c->snap, b, 5, false);
    assert_int_equal(mn_snapshot_import(c->s2, f->g, c->snap, NULL, err, sizeof err), MN_ECORRUPT);
    assert_int_equal(mn_snapshot_import(c->s2, f->g, "/nonexistent/x.snap", NULL, err, sizeof err), MN_EIO);
    free(b);
    /* An empty store has nothing to export. */
    assert_int_equal(mn_snapshot_export(c->s2, c->snap, NULL, err, sizeof err), MN_ENOTFOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(export_import_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(other_genesis_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_record_fails_the_root, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_index_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(forged_index_entries_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(device_lists_may_drop_only_expired_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_or_empty_state_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
