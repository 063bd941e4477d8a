/* test_cert.c: a commit certificate is accepted only with a quorum of
 * distinct, known validators' valid precommits for that chain, height and
 * block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "crypto.h"
#include "signbytes.h"

#define N 4
static uint8_t sk[N][MN_SECKEY_LEN];
static uint8_t pk[N][MN_PUBKEY_LEN];
static mn_valset vs;
static const uint8_t block[32] = {0xb1, 0x0c, 0x4};

static int setup(void **state) {
    (void)state;
    if (mn_crypto_init() != MN_OK) return -1;
    for (int i = 0; i < N; i++)
        if (mn_key_generate(sk[i]) != MN_OK || mn_key_pubkey(pk[i], sk[i]) != MN_OK) return -1;
    return mn_valset_init(&vs, "chain-a", (const uint8_t(*)[MN_PUBKEY_LEN])pk, N);
}

typedef struct cert_buf {
    Midnode__CommitCertificate c;
    Midnode__CommitSig sigs[8];
    Midnode__CommitSig *ptrs[8];
    uint8_t sig_bytes[8][MN_SIG_LEN];
    uint8_t hash[32];
} cert_buf;

/* Signs a certificate by validators idx[0..n) (signer key k may differ from
 * the index claimed, to forge). */
static void make_cert(cert_buf *b, const char *chain, uint64_t height, uint32_t round, const uint8_t *hash,
                      const int *idx, const int *keys, size_t n) {
    memset(b, 0, sizeof *b);
    midnode__commit_certificate__init(&b->c);
    memcpy(b->hash, hash, 32);
    b->c.height = height;
    b->c.round = round;
    b->c.block_hash.data = b->hash;
    b->c.block_hash.len = 32;
    uint8_t sbytes[MN_SIGNBYTES_MAX], digest[32];
    size_t len = mn_sign_bytes(sbytes, chain, MN_SIGN_PRECOMMIT, height, round, hash, 32, -1);
    assert_true(len > 0);
    mn_sha256(digest, sbytes, len);
    for (size_t i = 0; i < n; i++) {
        midnode__commit_sig__init(&b->sigs[i]);
        assert_int_equal(mn_sign(b->sig_bytes[i], digest, sk[keys ? keys[i] : idx[i]]), MN_OK);
        b->sigs[i].validator_index = (uint32_t)idx[i];
        b->sigs[i].signature.data = b->sig_bytes[i];
        b->sigs[i].signature.len = MN_SIG_LEN;
        b->ptrs[i] = &b->sigs[i];
    }
    b->c.sigs = b->ptrs;
    b->c.n_sigs = n;
}

static int check(const cert_buf *b, uint64_t height, const uint8_t *hash, char *err) {
    return mn_cert_check_valset(&vs, height, hash, &b->c, err, 200);
}

static void quorum_of_valid_signatures_is_accepted(void **state) {
    (void)state;
    cert_buf b;
    char err[200] = "";
    int three[] = {0, 2, 3};
    make_cert(&b, "chain-a", 9, 1, block, three, NULL, 3);
    assert_int_equal(check(&b, 9, block, err), MN_OK);
    int all[] = {3, 1, 0, 2};
    make_cert(&b, "chain-a", 9, 0, block, all, NULL, 4);
    assert_int_equal(check(&b, 9, block, err), MN_OK);
}

static void too_few_signatures_are_refused(void **state) {
    (void)state;
    cert_buf b;
    char err[200] = "";
    int two[] = {0, 1};
    make_cert(&b, "chain-a", 9, 0, block, two, NULL, 2);
    assert_int_equal(check(&b, 9, block, err), MN_ECRYPTO);
    assert_non_null(strstr(err, "quorum"));
}

static void duplicate_signer_is_refused(void **state) {
    (void)state;
    cert_buf b;
    char err[200] = "";
    int dup[] = {0, 1, 1};
    make_cert(&b, "chain-a", 9, 0, block, dup, NULL, 3);
    assert_int_equal(check(&b, 9, block, err), MN_ECRYPTO);
    assert_non_null(strstr(err, "two signatures"));
}

static void unknown_validator_index_is_refused(void **state) {
    (void)state;
    cert_buf b;
    char err[200] = "";
    int idx[] = {0, 1, 4};
    int keys[] = {0, 1, 2};
    make_cert(&b, "chain-a", 9, 0, block, idx, keys, 3);
    assert_int_equal(check(&b, 9, block, err), MN_ECRYPTO);
    assert_non_null(strstr(err, "unknown validator"));
}

static void signature_by_another_key_is_refused(void **state) {
    (void)state;
    cert_buf b;
    char err[200] = "";
    int idx[] = {0, 1, 2};
    int keys[] = {0, 1, 3}; /* validator 3 signs in validator 2's name */
    make_cert(&b, "chain-a", 9, 0, block, idx, keys, 3);
    assert_int_equal(check(&b, 9, block, err), MN_ECRYPTO);
    assert_non_null(strstr(err, "does not verify"));
}

static void wrong_chain_height_or_block_is_refused(void **state) {
    (void)state;
    cert_buf b;
    char err[200] = "";
    int three[] = {0, 1, 2};
    make_cert(&b, "chain-b", 9, 0, block, three, NULL, 3);
    assert_int_equal(check(&b, 9, block, err), MN_ECRYPTO); /* signed for another chain */
    make_cert(&b, "chain-a", 9, 0, block, three, NULL, 3);
    assert_int_equal(check(&b, 10, block, err), MN_ECRYPTO);
    assert_non_null(strstr(err, "height"));
    uint8_t other[32] = {0xb1, 0x0c, 0x5};
    assert_int_equal(check(&b, 9, other, err), MN_ECRYPTO);
    /* claims another height than it was signed for */
    b.c.height = 10;
    assert_int_equal(check(&b, 10, block, err), MN_ECRYPTO);
    /* a changed round no longer matches the signatures */
    make_cert(&b, "chain-a", 9, 0, block, three, NULL, 3);
    b.c.round = 1;
    assert_int_equal(check(&b, 9, block, err), MN_ECRYPTO);
}

static void malformed_certificate_is_refused_not_crashing(void **state) {
    (void)state;
    cert_buf b;
    char err[200] = "";
    int three[] = {0, 1, 2};
    make_cert(&b, "chain-a", 9, 0, block, three, NULL, 3);
    b.sigs[1].signature.len = 63;
    assert_int_equal(check(&b, 9, block, err), MN_EINVAL);
    make_cert(&b, "chain-a", 9, 0, block, three, NULL, 3);
    b.c.block_hash.len = 31;
    assert_int_equal(check(&b, 9, block, err), MN_EINVAL);
    assert_int_equal(mn_cert_check_valset(&vs, 9, block, NULL, err, sizeof err), MN_EINVAL);
    /* more signatures than validators */
    int five[] = {0, 1, 2, 3, 3};
    make_cert(&b, "chain-a", 9, 0, block, five, NULL, 5);
    assert_int_equal(check(&b, 9, block, err), MN_ECRYPTO);
}

static void valset_hash_binds_keys_and_order(void **state) {
    (void)state;
    uint8_t h1[32], h2[32];
    mn_validators_hash(h1, (const uint8_t(*)[MN_PUBKEY_LEN])pk, N);
    assert_memory_equal(h1, vs.hash, 32);
    uint8_t swapped[N][MN_PUBKEY_LEN];
    memcpy(swapped, pk, sizeof swapped);
    memcpy(swapped[0], pk[1], MN_PUBKEY_LEN);
    memcpy(swapped[1], pk[0], MN_PUBKEY_LEN);
    mn_validators_hash(h2, (const uint8_t(*)[MN_PUBKEY_LEN])swapped, N);
    assert_memory_not_equal(h1, h2, 32);
    mn_valset bad;
    assert_int_equal(mn_valset_init(&bad, "c", (const uint8_t(*)[MN_PUBKEY_LEN])pk, 0), MN_EINVAL);
    assert_int_equal(mn_valset_init(&bad, "", (const uint8_t(*)[MN_PUBKEY_LEN])pk, 1), MN_EINVAL);
    /* quorum for one validator is that one */
    mn_valset one;
    assert_int_equal(mn_valset_init(&one, "chain-a", (const uint8_t(*)[MN_PUBKEY_LEN])pk, 1), MN_OK);
    cert_buf b;
    int zero[] = {0};
    make_cert(&b, "chain-a", 1, 0, block, zero, NULL, 1);
    char err[200];
    assert_int_equal(mn_cert_check_valset(&one, 1, block, &b.c, err, sizeof err), MN_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quorum_of_valid_signatures_is_accepted),
        cmocka_unit_test(too_few_signatures_are_refused),
        cmocka_unit_test(duplicate_signer_is_refused),
        cmocka_unit_test(unknown_validator_index_is_refused),
        cmocka_unit_test(signature_by_another_key_is_refused),
        cmocka_unit_test(wrong_chain_height_or_block_is_refused),
        cmocka_unit_test(malformed_certificate_is_refused_not_crashing),
        cmocka_unit_test(valset_hash_binds_keys_and_order),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
