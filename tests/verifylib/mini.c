/* mini.c: a bank's smallest verifier: links the verifier library with only
 * libsecp256k1, libcrypto and libprotobuf-c, checks a real proof, and
 * refuses a tampered one. Prints one "ok N ..." or "not ok N ..." a check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "crypto.h"
#include "kvmap.h"
#include "signbytes.h"
#include "smt.h"
#include "verify.h"

static int n_ok, n_fail;

static void check(int cond, const char *what) {
    if (cond) {
        n_ok++;
        printf("ok %d %s\n", n_ok + n_fail, what);
    } else {
        n_fail++;
        printf("not ok %d %s\n", n_ok + n_fail, what);
    }
}

static int no_node(void *ctx, const uint8_t *k, size_t kl, uint8_t node[static MN_SMT_NODE_LEN]) {
    (void)ctx, (void)k, (void)kl, (void)node;
    return MN_ENOTFOUND;
}

int main(void) {
    if (mn_crypto_init() != MN_OK) return 1;
    uint8_t sk[4][32], pk[4][33];
    for (int i = 0; i < 4; i++)
        if (mn_key_generate(sk[i]) != MN_OK || mn_key_pubkey(pk[i], sk[i]) != MN_OK) return 1;
    mn_valset vs;
    if (mn_valset_init(&vs, "bank-chain", (const uint8_t(*)[33])pk, 4) != MN_OK) return 1;

    uint8_t id[32] = {0xc0, 0xde}, rec[256];
    Midnode__CredentialRecord r = MIDNODE__CREDENTIAL_RECORD__INIT;
    r.credential_id.data = id;
    r.credential_id.len = 32;
    r.status = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
    r.issuer = "mois";
    size_t rl = midnode__credential_record__pack(&r, rec);
    mn_smt_item item = {0};
    mn_smt_key_credential(item.key_hash, id);
    mn_sha256(item.value_hash, rec, rl);
    item.remove = false;
    mn_kvmap *w = mn_kv_new();
    mn_smt_src src = {no_node, NULL};
    uint8_t zero[32] = {0}, root[32];
    if (!w || mn_smt_update(&src, w, zero, &item, 1, root) != MN_OK) return 1;

    Midnode__BlockHeader h = MIDNODE__BLOCK_HEADER__INIT;
    h.chain_id = "bank-chain";
    h.height = 7;
    h.time_ms = 1800000000000ll;
    h.state_root.data = root;
    h.state_root.len = 32;
    h.validators_hash.data = vs.hash;
    h.validators_hash.len = 32;
    uint8_t hb[256], bh[32], sb[MN_SIGNBYTES_MAX], dg[32], sig[3][64];
    size_t hl = midnode__block_header__pack(&h, hb);
    mn_sha256(bh, hb, hl);
    mn_sha256(dg, sb, mn_sign_bytes(sb, "bank-chain", MN_SIGN_PRECOMMIT, 7, 0, bh, 32, -1));
    Midnode__CommitSig cs[3], *csp[3];
    for (int i = 0; i < 3; i++) {
        midnode__commit_sig__init(&cs[i]);
        if (mn_sign(sig[i], dg, sk[i]) != MN_OK) return 1;
        cs[i].validator_index = (uint32_t)i;
        cs[i].signature.data = sig[i];
        cs[i].signature.len = 64;
        csp[i] = &cs[i];
    }
    Midnode__CommitCertificate c = MIDNODE__COMMIT_CERTIFICATE__INIT;
    c.height = 7;
    c.block_hash.data = bh;
    c.block_hash.len = 32;
    c.sigs = csp;
    c.n_sigs = 3;
    Midnode__MerkleProof mp = MIDNODE__MERKLE_PROOF__INIT;
    if (mn_smt_prove(&src, w, root, item.key_hash, &mp) != MN_OK) return 1;
    Midnode__StatusProof p = MIDNODE__STATUS_PROOF__INIT;
    p.credential_id.data = id;
    p.credential_id.len = 32;
    p.record.data = rec;
    p.record.len = rl;
    p.merkle = &mp;
    p.header.data = hb;
    p.header.len = hl;
    p.commit = &c;

    mn_verify_result res;
    int v = mn_verify_status(&vs, &p, id, h.time_ms + 1000, 5000, &res, NULL);
    check(v == MN_VERIFY_OK && res.status == MIDNODE__CREDENTIAL_STATUS__ACTIVE, "genuine proof verifies ACTIVE");
    v = mn_verify_status(&vs, &p, id, h.time_ms + 60000, 5000, &res, NULL);
    check(v == MN_VERIFY_STALE, "old header is STALE");
    rec[rl - 1] ^= 1;
    v = mn_verify_status(&vs, &p, id, h.time_ms + 1000, 5000, &res, NULL);
    check(v == MN_VERIFY_MERKLE_MISMATCH || v == MN_VERIFY_MALFORMED || v == MN_VERIFY_RECORD_MISMATCH,
          "altered record refused");
    rec[rl - 1] ^= 1;
    c.n_sigs = 2;
    v = mn_verify_status(&vs, &p, id, h.time_ms + 1000, 5000, &res, NULL);
    check(v == MN_VERIFY_BAD_CERTIFICATE, "two of four signatures is BAD_CERTIFICATE");
    mn_smt_proof_clear(&mp);
    mn_kv_free(w);
    return n_fail == 0 ? 0 : 1;
}
