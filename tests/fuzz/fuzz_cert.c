/* Fuzz target: commit-certificate checking.
 *
 * Input: 8 bytes height, 32 bytes block hash, then a serialised
 * CommitCertificate, checked with mn_cert_check against the test genesis
 * (4 validators). Nobody holding a validator key signs here, so a
 * certificate that passes is a forgery: the target aborts. */
#include "fuzz_common.h"

#include "cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lf_fixture *f = fz_chain();
    if (size < 40) return 0;
    fz_reader r = {data, 40};
    uint64_t height = fz_u64(&r);
    uint8_t hash[MN_HASH_LEN];
    fz_bytes(&r, hash, sizeof hash);
    Midnode__CommitCertificate *c = midnode__commit_certificate__unpack(NULL, size - 40, data + 40);
    if (!c) return 0;
    char err[160];
    if (mn_cert_check(f->g, height, hash, c, err, sizeof err) == MN_OK) abort();
    mn_valset vs;
    if (mn_valset_from_genesis(&vs, f->g) != MN_OK) abort();
    if (mn_cert_check_valset(&vs, c->height, hash, c, err, sizeof err) == MN_OK) abort();
    midnode__commit_certificate__free_unpacked(c, NULL);
    return 0;
}
