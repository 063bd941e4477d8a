/* Fuzz target: the status-proof verifier a relying party runs.
 *
 * Input: 32 bytes credential id, 8 bytes verifier clock, then a serialised
 * StatusProof, verified with mn_verify_status_bytes against the test
 * genesis's validator set. The seeds are proofs really certified by the
 * fixture's validators, so mutations reach the Merkle and record checks. A
 * proof that verifies must be self-consistent: a record exactly when the
 * credential is present, and the record is of the asked credential. */
#include "fuzz_common.h"

#include "cert.h"
#include "verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lf_fixture *f = fz_chain();
    if (size < 40) return 0;
    static mn_valset vs;
    static int have_vs;
    if (!have_vs) {
        if (mn_valset_from_genesis(&vs, f->g) != MN_OK) abort();
        have_vs = 1;
    }
    fz_reader r = {data, 40};
    uint8_t id[MN_ID_LEN];
    fz_bytes(&r, id, sizeof id);
    int64_t now_ms = (int64_t)(fz_u64(&r) >> 1);
    mn_verify_result res;
    Midnode__CredentialRecord *rec = NULL;
    int max_age = (data[39] & 1) ? -1 : 60000;
    int reason = mn_verify_status_bytes(&vs, data + 40, size - 40, id, now_ms, max_age, &res, &rec);
    if (reason != res.reason) abort();
    if (reason == MN_VERIFY_OK) {
        if (res.present != (rec != NULL)) abort();
        if (rec && (rec->credential_id.len != MN_ID_LEN || memcmp(rec->credential_id.data, id, MN_ID_LEN) != 0))
            abort();
    } else if (rec) {
        abort(); /* a record only comes with a verified proof */
    }
    if (rec) midnode__credential_record__free_unpacked(rec, NULL);
    (void)mn_verify_reason_name(reason);
    return 0;
}
