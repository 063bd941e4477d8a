/* Fuzz target: the status-proof verifier a relying party runs.
 *
 * Input: 32 bytes credential id, 8 bytes verifier clock, then a serialised
 * StatusProof, verified with mn_verify_status_bytes against the test
 * genesis's validator set. With no validator key at hand no proof can carry
 * a valid certificate, so a proof that verifies is a forgery: abort. */
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
    if (reason == MN_VERIFY_OK) abort();
    if (rec) abort();         /* a record only comes with a verified proof */
    (void)mn_verify_reason_name(reason);
    return 0;
}
