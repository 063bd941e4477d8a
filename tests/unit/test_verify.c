/* test_verify.c: the verifier library accepts real proofs built with the
 * sparse Merkle tree and a signed certificate, and refuses every kind of
 * tampering with the reason that names it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "crypto.h"
#include "kvmap.h"
#include "signbytes.h"
#include "smt.h"
#include "verify.h"

#define NV 4
#define CHAIN "chain-v"
#define HEIGHT 42
#define T_MS 1800000000000ll
#define NOW (T_MS + 1500)
#define MAX_AGE 10000

static uint8_t sk[NV][MN_SECKEY_LEN];
static uint8_t pk[NV][MN_PUBKEY_LEN];
static mn_valset vs;
static mn_kvmap *writes;
static uint8_t root[32];

enum { C_ACTIVE, C_LOST, C_REVOKED, C_EXPIRED, C_FILL0, C_COUNT = C_FILL0 + 12, C_ABSENT = C_COUNT };
static uint8_t ids[C_COUNT + 1][MN_ID_LEN];
static uint8_t recbuf[C_COUNT][512];
static size_t reclen[C_COUNT];

static int no_node(void *ctx, const uint8_t *k, size_t kl, uint8_t node[static MN_SMT_NODE_LEN]) {
    (void)ctx, (void)k, (void)kl, (void)node;
    return MN_ENOTFOUND;
}
static const mn_smt_src empty_src = {no_node, NULL};

static int setup(void **state) {
    (void)state;
    if (mn_crypto_init() != MN_OK) return -1;
    for (int i = 0; i < NV; i++)
        if (mn_key_generate(sk[i]) != MN_OK || mn_key_pubkey(pk[i], sk[i]) != MN_OK) return -1;
    if (mn_valset_init(&vs, CHAIN, (const uint8_t(*)[MN_PUBKEY_LEN])pk, NV) != MN_OK) return -1;
    writes = mn_kv_new();
    mn_smt_item items[C_COUNT] = {0};
    for (int i = 0; i <= C_COUNT; i++) {
        memset(ids[i], 0, MN_ID_LEN);
        ids[i][0] = (uint8_t)(0x10 + i);
        ids[i][31] = (uint8_t)i;
    }
    static uint8_t holder[32] = {7}, device[32] = {8};
    for (int i = 0; i < C_COUNT; i++) {
        Midnode__CredentialRecord r = MIDNODE__CREDENTIAL_RECORD__INIT;
        r.credential_id.data = ids[i];
        r.credential_id.len = MN_ID_LEN;
        r.type = MIDNODE__CREDENTIAL_TYPE__RESIDENT;
        r.holder_ref.data = holder;
        r.holder_ref.len = 32;
        r.device_ref.data = device;
        r.device_ref.len = 32;
        r.carrier = "skt";
        r.issuer = "mois";
        r.status = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
        r.issued_height = 3;
        if (i == C_LOST) {
            r.status = MIDNODE__CREDENTIAL_STATUS__SUSPENDED;
            r.loss_suspended = 1;
        }
        if (i == C_REVOKED) {
            r.status = MIDNODE__CREDENTIAL_STATUS__REVOKED;
            r.revoke_reason = "fraud";
        }
        if (i == C_EXPIRED) r.expires_at = T_MS / 1000 - 60;
        reclen[i] = midnode__credential_record__pack(&r, recbuf[i]);
        mn_smt_key_credential(items[i].key_hash, ids[i]);
        mn_sha256(items[i].value_hash, recbuf[i], reclen[i]);
        items[i].remove = false;
    }
    uint8_t zero[32] = {0};
    return mn_smt_update(&empty_src, writes, zero, items, C_COUNT, root) == MN_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    mn_kv_free(writes);
    return 0;
}

typedef struct opts {
    const char *chain;
    int64_t time_ms;
    const uint8_t *state_root;
    int signers;        /* how many validators sign */
    uint64_t cert_height;
} opts;

static opts defaults(void) { return (opts){CHAIN, T_MS, root, 3, HEIGHT}; }

/* A serialised StatusProof of credential `c` (C_ABSENT for absence). */
static uint8_t *make_proof(int c, opts o, size_t *len) {
    Midnode__BlockHeader h = MIDNODE__BLOCK_HEADER__INIT;
    uint8_t prev[32] = {1}, txr[32] = {2};
    h.chain_id = (char *)o.chain;
    h.height = HEIGHT;
    h.time_ms = o.time_ms;
    h.prev_hash.data = prev;
    h.prev_hash.len = 32;
    h.tx_root.data = txr;
    h.tx_root.len = 32;
    h.state_root.data = (uint8_t *)o.state_root;
    h.state_root.len = 32;
    h.proposer = "mois";
    h.validators_hash.data = vs.hash;
    h.validators_hash.len = 32;
    uint8_t hbytes[512];
    size_t hlen = midnode__block_header__pack(&h, hbytes);
    uint8_t bh[32], sb[MN_SIGNBYTES_MAX], digest[32];
    mn_sha256(bh, hbytes, hlen);
    size_t sl = mn_sign_bytes(sb, o.chain, MN_SIGN_PRECOMMIT, o.cert_height, 0, bh, 32, -1);
    assert_true(sl > 0);
    mn_sha256(digest, sb, sl);
    Midnode__CommitSig sigs[NV], *sp[NV];
    uint8_t sigb[NV][64];
    for (int i = 0; i < o.signers; i++) {
        midnode__commit_sig__init(&sigs[i]);
        assert_int_equal(mn_sign(sigb[i], digest, sk[i]), MN_OK);
        sigs[i].validator_index = (uint32_t)i;
        sigs[i].signature.data = sigb[i];
        sigs[i].signature.len = 64;
        sp[i] = &sigs[i];
    }
    Midnode__CommitCertificate cert = MIDNODE__COMMIT_CERTIFICATE__INIT;
    cert.height = o.cert_height;
    cert.block_hash.data = bh;
    cert.block_hash.len = 32;
    cert.sigs = sp;
    cert.n_sigs = (size_t)o.signers;
    Midnode__MerkleProof mp = MIDNODE__MERKLE_PROOF__INIT;
    uint8_t kh[32];
    mn_smt_key_credential(kh, ids[c]);
    assert_int_equal(mn_smt_prove(&empty_src, writes, root, kh, &mp), MN_OK);
    Midnode__StatusProof p = MIDNODE__STATUS_PROOF__INIT;
    p.credential_id.data = ids[c];
    p.credential_id.len = 32;
    if (c != C_ABSENT) {
        p.record.data = recbuf[c];
        p.record.len = reclen[c];
    }
    p.merkle = &mp;
    p.header.data = hbytes;
    p.header.len = hlen;
    p.commit = &cert;
    *len = midnode__status_proof__get_packed_size(&p);
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    midnode__status_proof__pack(&p, out);
    mn_smt_proof_clear(&mp);
    return out;
}

static Midnode__StatusProof *proof_of(int c, opts o) {
    size_t len;
    uint8_t *b = make_proof(c, o, &len);
    Midnode__StatusProof *p = midnode__status_proof__unpack(NULL, len, b);
    free(b);
    assert_non_null(p);
    return p;
}

static int verify(const Midnode__StatusProof *p, int asked, int64_t now, mn_verify_result *res) {
    int r = mn_verify_status(&vs, p, ids[asked], now, MAX_AGE, res, NULL);
    assert_int_equal(r, res->reason);
    assert_true(res->message[0] != '\0');
    return r;
}

static void expect(int reason, const Midnode__StatusProof *p, int asked, int64_t now) {
    mn_verify_result res;
    int r = verify(p, asked, now, &res);
    if (r != reason) fail_msg("expected %s, got %s: %s", mn_verify_reason_name(reason), mn_verify_reason_name(r),
                              res.message);
}

static void valid_proofs_give_each_status(void **state) {
    (void)state;
    struct { int c; int status; bool present; } cases[] = {
        {C_ACTIVE, MIDNODE__CREDENTIAL_STATUS__ACTIVE, true},
        {C_LOST, MIDNODE__CREDENTIAL_STATUS__SUSPENDED, true},
        {C_REVOKED, MIDNODE__CREDENTIAL_STATUS__REVOKED, true},
        {C_EXPIRED, MIDNODE__CREDENTIAL_STATUS__EXPIRED, true},
        {C_ABSENT, MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *b = make_proof(cases[i].c, defaults(), &len);
        mn_verify_result res;
        Midnode__CredentialRecord *rec = NULL;
        int r = mn_verify_status_bytes(&vs, b, len, ids[cases[i].c], NOW, MAX_AGE, &res, &rec);
        free(b);
        if (r != MN_VERIFY_OK) fail_msg("case %zu: %s: %s", i, mn_verify_reason_name(r), res.message);
        assert_int_equal(res.status, cases[i].status);
        assert_int_equal(res.present, cases[i].present);
        assert_int_equal(res.height, HEIGHT);
        assert_int_equal(res.time_ms, T_MS);
        if (cases[i].present) {
            assert_non_null(rec);
            assert_memory_equal(rec->credential_id.data, ids[cases[i].c], 32);
            midnode__credential_record__free_unpacked(rec, NULL);
        } else {
            assert_null(rec);
        }
    }
}

static void malformed_parts_are_named(void **state) {
    (void)state;
    Midnode__StatusProof *p = proof_of(C_ACTIVE, defaults());
    Midnode__MerkleProof *m = p->merkle;
    p->merkle = NULL;
    expect(MN_VERIFY_MALFORMED, p, C_ACTIVE, NOW);
    p->merkle = m;
    size_t hl = p->header.len;
    p->header.len = 3; /* truncated header */
    expect(MN_VERIFY_MALFORMED, p, C_ACTIVE, NOW);
    p->header.len = hl;
    size_t rl = p->record.len;
    p->record.len = rl - 5; /* truncated record */
    expect(MN_VERIFY_MALFORMED, p, C_ACTIVE, NOW);
    p->record.len = rl;
    p->merkle->siblings[0].len = 31;
    expect(MN_VERIFY_MALFORMED, p, C_ACTIVE, NOW);
    p->merkle->siblings[0].len = 32;
    expect(MN_VERIFY_OK, p, C_ACTIVE, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
    mn_verify_result res;
    uint8_t junk[40];
    memset(junk, 0xff, sizeof junk);
    assert_int_equal(mn_verify_status_bytes(&vs, junk, sizeof junk, ids[0], NOW, MAX_AGE, &res, NULL),
                     MN_VERIFY_MALFORMED);
    assert_int_equal(mn_verify_status_bytes(&vs, NULL, 0, ids[0], NOW, MAX_AGE, &res, NULL), MN_VERIFY_MALFORMED);
}

static void other_chain_is_refused(void **state) {
    (void)state;
    opts o = defaults();
    o.chain = "chain-w";
    Midnode__StatusProof *p = proof_of(C_ACTIVE, o);
    expect(MN_VERIFY_WRONG_CHAIN, p, C_ACTIVE, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
    /* a genuine proof checked against another chain's genesis */
    p = proof_of(C_ACTIVE, defaults());
    mn_valset other;
    assert_int_equal(mn_valset_init(&other, "chain-other", (const uint8_t(*)[MN_PUBKEY_LEN])pk, NV), MN_OK);
    mn_verify_result res;
    assert_int_equal(mn_verify_status(&other, p, ids[C_ACTIVE], NOW, MAX_AGE, &res, NULL), MN_VERIFY_WRONG_CHAIN);
    midnode__status_proof__free_unpacked(p, NULL);
}

static void other_validator_set_is_refused(void **state) {
    (void)state;
    Midnode__StatusProof *p = proof_of(C_ACTIVE, defaults());
    uint8_t keys2[NV][MN_PUBKEY_LEN];
    memcpy(keys2, pk, sizeof keys2);
    uint8_t s[32];
    assert_int_equal(mn_key_generate(s), MN_OK);
    assert_int_equal(mn_key_pubkey(keys2[3], s), MN_OK);
    mn_valset other;
    assert_int_equal(mn_valset_init(&other, CHAIN, (const uint8_t(*)[MN_PUBKEY_LEN])keys2, NV), MN_OK);
    mn_verify_result res;
    assert_int_equal(mn_verify_status(&other, p, ids[C_ACTIVE], NOW, MAX_AGE, &res, NULL),
                     MN_VERIFY_UNKNOWN_VALIDATORS);
    midnode__status_proof__free_unpacked(p, NULL);
}

static void uncertified_header_is_refused(void **state) {
    (void)state;
    opts o = defaults();
    o.signers = 2; /* below the quorum of 3 */
    Midnode__StatusProof *p = proof_of(C_ACTIVE, o);
    expect(MN_VERIFY_BAD_CERTIFICATE, p, C_ACTIVE, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
    o = defaults();
    o.cert_height = HEIGHT - 1; /* certificate of another height */
    p = proof_of(C_ACTIVE, o);
    expect(MN_VERIFY_BAD_CERTIFICATE, p, C_ACTIVE, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
    /* a header altered after signing (a fresher time) */
    p = proof_of(C_ACTIVE, defaults());
    Midnode__BlockHeader *h = midnode__block_header__unpack(NULL, p->header.len, p->header.data);
    assert_non_null(h);
    h->time_ms += 1000;
    uint8_t nb[512];
    size_t nl = midnode__block_header__pack(h, nb);
    midnode__block_header__free_unpacked(h, NULL);
    uint8_t *old = p->header.data;
    p->header.data = nb;
    p->header.len = nl;
    expect(MN_VERIFY_BAD_CERTIFICATE, p, C_ACTIVE, NOW);
    p->header.data = old;
    /* no certificate at all */
    size_t n_sigs = p->commit->n_sigs;
    p->commit->n_sigs = 0;
    expect(MN_VERIFY_BAD_CERTIFICATE, p, C_ACTIVE, NOW);
    p->commit->n_sigs = n_sigs;
    midnode__status_proof__free_unpacked(p, NULL);
}

static void old_and_future_headers_are_refused(void **state) {
    (void)state;
    Midnode__StatusProof *p = proof_of(C_ACTIVE, defaults());
    expect(MN_VERIFY_STALE, p, C_ACTIVE, T_MS + MAX_AGE + 1);
    expect(MN_VERIFY_OK, p, C_ACTIVE, T_MS + MAX_AGE);
    expect(MN_VERIFY_FUTURE, p, C_ACTIVE, T_MS - MN_VERIFY_CLOCK_SKEW_MS - 1);
    expect(MN_VERIFY_OK, p, C_ACTIVE, T_MS - MN_VERIFY_CLOCK_SKEW_MS);
    mn_verify_result res;
    /* max_age < 0: freshness left to the caller */
    assert_int_equal(mn_verify_status(&vs, p, ids[C_ACTIVE], T_MS + 86400000, -1, &res, NULL), MN_VERIFY_OK);
    midnode__status_proof__free_unpacked(p, NULL);
}

static void record_of_another_credential_is_refused(void **state) {
    (void)state;
    Midnode__StatusProof *p = proof_of(C_ACTIVE, defaults());
    expect(MN_VERIFY_RECORD_MISMATCH, p, C_REVOKED, NOW); /* asked about another credential */
    /* the record swapped for another credential's, credential_id kept */
    uint8_t *old = p->record.data;
    size_t oldl = p->record.len;
    p->record.data = recbuf[C_LOST];
    p->record.len = reclen[C_LOST];
    expect(MN_VERIFY_RECORD_MISMATCH, p, C_ACTIVE, NOW);
    p->record.data = old;
    p->record.len = oldl;
    midnode__status_proof__free_unpacked(p, NULL);
    /* a whole genuine proof of another credential relabelled as ours */
    p = proof_of(C_LOST, defaults());
    memcpy(p->credential_id.data, ids[C_ACTIVE], 32);
    expect(MN_VERIFY_RECORD_MISMATCH, p, C_ACTIVE, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
}

static void altered_state_fails_the_merkle_path(void **state) {
    (void)state;
    /* a revoked credential dressed up as active */
    Midnode__StatusProof *p = proof_of(C_REVOKED, defaults());
    Midnode__CredentialRecord *r = midnode__credential_record__unpack(NULL, p->record.len, p->record.data);
    assert_non_null(r);
    r->status = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
    uint8_t nb[512];
    size_t nl = midnode__credential_record__pack(r, nb);
    midnode__credential_record__free_unpacked(r, NULL);
    uint8_t *old = p->record.data;
    size_t oldl = p->record.len;
    p->record.data = nb;
    p->record.len = nl;
    expect(MN_VERIFY_MERKLE_MISMATCH, p, C_REVOKED, NOW);
    p->record.data = old;
    p->record.len = oldl;
    /* the record hidden: "unknown" claimed for a credential that exists */
    p->record.len = 0;
    expect(MN_VERIFY_MERKLE_MISMATCH, p, C_REVOKED, NOW);
    p->record.len = oldl;
    /* a sibling changed */
    p->merkle->siblings[p->merkle->n_siblings - 1].data[5] ^= 1;
    expect(MN_VERIFY_MERKLE_MISMATCH, p, C_REVOKED, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
    /* a genuine path under a certified header of another state */
    opts o = defaults();
    uint8_t other_root[32];
    memcpy(other_root, root, 32);
    other_root[0] ^= 0x80;
    o.state_root = other_root;
    p = proof_of(C_ACTIVE, o);
    expect(MN_VERIFY_MERKLE_MISMATCH, p, C_ACTIVE, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
    /* an absence proof with a record slipped in */
    p = proof_of(C_ABSENT, defaults());
    expect(MN_VERIFY_OK, p, C_ABSENT, NOW);
    midnode__status_proof__free_unpacked(p, NULL);
}

/* A node's response built honestly from a proof. */
static Midnode__GetStatusResponse *response_of(int c) {
    Midnode__GetStatusResponse resp = MIDNODE__GET_STATUS_RESPONSE__INIT;
    size_t len;
    uint8_t *b = make_proof(c, defaults(), &len);
    Midnode__StatusProof *p = midnode__status_proof__unpack(NULL, len, b);
    free(b);
    mn_verify_result res;
    Midnode__CredentialRecord *rec;
    assert_int_equal(mn_verify_status(&vs, p, ids[c], NOW, MAX_AGE, &res, &rec), MN_VERIFY_OK);
    resp.credential_id.data = ids[c];
    resp.credential_id.len = 32;
    resp.status = (Midnode__CredentialStatus)res.status;
    resp.height = res.height;
    resp.time_ms = res.time_ms;
    resp.record = rec;
    resp.proof = p;
    size_t rl = midnode__get_status_response__get_packed_size(&resp);
    uint8_t *rb = malloc(rl);
    midnode__get_status_response__pack(&resp, rb);
    midnode__status_proof__free_unpacked(p, NULL);
    if (rec) midnode__credential_record__free_unpacked(rec, NULL);
    Midnode__GetStatusResponse *out = midnode__get_status_response__unpack(NULL, rl, rb);
    free(rb);
    assert_non_null(out);
    return out;
}

static int check_resp(const Midnode__GetStatusResponse *r, int c) {
    mn_verify_result res;
    return mn_verify_response(&vs, r, ids[c], NOW, MAX_AGE, &res, NULL);
}

static void node_claims_must_match_the_proof(void **state) {
    (void)state;
    Midnode__GetStatusResponse *r = response_of(C_LOST);
    assert_int_equal(check_resp(r, C_LOST), MN_VERIFY_OK);
    r->status = MIDNODE__CREDENTIAL_STATUS__ACTIVE; /* the lost phone claimed fine */
    assert_int_equal(check_resp(r, C_LOST), MN_VERIFY_CLAIM_MISMATCH);
    r->status = MIDNODE__CREDENTIAL_STATUS__SUSPENDED;
    r->height++;
    assert_int_equal(check_resp(r, C_LOST), MN_VERIFY_CLAIM_MISMATCH);
    r->height--;
    r->record->loss_suspended = 0;
    assert_int_equal(check_resp(r, C_LOST), MN_VERIFY_CLAIM_MISMATCH);
    r->record->loss_suspended = 1;
    assert_int_equal(check_resp(r, C_LOST), MN_VERIFY_OK);
    Midnode__StatusProof *p = r->proof;
    r->proof = NULL; /* an answer without proof is never trusted */
    assert_int_equal(check_resp(r, C_LOST), MN_VERIFY_MALFORMED);
    r->proof = p;
    assert_int_equal(check_resp(r, C_ACTIVE), MN_VERIFY_CLAIM_MISMATCH);
    midnode__get_status_response__free_unpacked(r, NULL);

    r = response_of(C_ABSENT);
    assert_int_equal(check_resp(r, C_ABSENT), MN_VERIFY_OK);
    r->status = MIDNODE__CREDENTIAL_STATUS__REVOKED;
    assert_int_equal(check_resp(r, C_ABSENT), MN_VERIFY_CLAIM_MISMATCH);
    midnode__get_status_response__free_unpacked(r, NULL);
    mn_verify_result res;
    assert_int_equal(mn_verify_response(&vs, NULL, ids[0], NOW, MAX_AGE, &res, NULL), MN_VERIFY_MALFORMED);
}

static void effective_status_and_names(void **state) {
    (void)state;
    Midnode__CredentialRecord r = MIDNODE__CREDENTIAL_RECORD__INIT;
    r.status = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
    assert_int_equal(mn_effective_status(&r, T_MS), MIDNODE__CREDENTIAL_STATUS__ACTIVE);
    r.issuer_suspended = 1;
    assert_int_equal(mn_effective_status(&r, T_MS), MIDNODE__CREDENTIAL_STATUS__SUSPENDED);
    r.expires_at = T_MS / 1000;
    assert_int_equal(mn_effective_status(&r, T_MS), MIDNODE__CREDENTIAL_STATUS__EXPIRED);
    assert_int_equal(mn_effective_status(&r, T_MS - 1000), MIDNODE__CREDENTIAL_STATUS__SUSPENDED);
    r.status = MIDNODE__CREDENTIAL_STATUS__REVOKED;
    assert_int_equal(mn_effective_status(&r, T_MS), MIDNODE__CREDENTIAL_STATUS__REVOKED);
    for (int i = 0; i < MN_VERIFY_REASON_COUNT; i++) assert_string_not_equal(mn_verify_reason_name(i), "?");
    assert_string_equal(mn_verify_reason_name(MN_VERIFY_REASON_COUNT), "?");
    assert_string_equal(mn_verify_reason_name(MN_VERIFY_STALE), "STALE");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_proofs_give_each_status),
        cmocka_unit_test(malformed_parts_are_named),
        cmocka_unit_test(other_chain_is_refused),
        cmocka_unit_test(other_validator_set_is_refused),
        cmocka_unit_test(uncertified_header_is_refused),
        cmocka_unit_test(old_and_future_headers_are_refused),
        cmocka_unit_test(record_of_another_credential_is_refused),
        cmocka_unit_test(altered_state_fails_the_merkle_path),
        cmocka_unit_test(node_claims_must_match_the_proof),
        cmocka_unit_test(effective_status_and_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
