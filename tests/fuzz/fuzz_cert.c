/* Fuzz target: commit-certificate checking.
 *
 * Input: 8 bytes height, 32 bytes block hash, then a serialised
 * CommitCertificate, checked with mn_cert_check against the test genesis
 * (4 validators), and with mn_cert_check_valset against the same set: the
 * two must agree. The seed corpus holds certificates really signed by the
 * fixture's validator keys, so the fuzzer mutates valid ones; one that still
 * passes must hold a quorum of distinct in-range validator indexes. */
#include "fuzz_common.h"

#include "cert.h"
#include "signbytes.h"

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
    int rc = mn_cert_check(f->g, height, hash, c, err, sizeof err);
    mn_valset vs;
    if (mn_valset_from_genesis(&vs, f->g) != MN_OK) abort();
    if (mn_cert_check_valset(&vs, height, hash, c, err, sizeof err) != rc) abort();
    if (rc == MN_OK) {
        uint64_t seen = 0;
        uint32_t distinct = 0;
        if (c->height != height) abort();
        for (size_t i = 0; i < c->n_sigs; i++) {
            uint32_t v = c->sigs[i]->validator_index;
            if (v >= f->g->validator_count) abort();
            if (!(seen & (1ull << v))) distinct++;
            seen |= 1ull << v;
        }
        if (distinct < mn_quorum(f->g->validator_count)) abort();
    }
    midnode__commit_certificate__free_unpacked(c, NULL);
    return 0;
}
