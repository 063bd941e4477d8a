/* fuzz_common.h: shared set-up of the libFuzzer targets in tests/fuzz.
 *
 * fz_chain() returns a process-wide test chain (tests/unit/ledger_fixture.h:
 * default members, keys from fixed seeds, a LevelDB store in a temporary
 * directory) with block 1 committed: credentials lf_id('c', 0..3) issued by
 * mois to devices lf_id('d', 0..3) on carrier skt, so the seed corpora can
 * name existing credentials. It lives until exit (reachable, so LeakSanitizer
 * does not count it); the directory is removed at exit. Aborts on set-up
 * failure: a fuzz run without its chain would be meaningless.
 *
 * fz_reader hands out bytes of one fuzz input; reading past the end yields
 * zeros, so targets never index out of bounds. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lf_fixture fz_fixture;
static int fz_ready;

static void fz_cleanup(void) {
    if (fz_ready) lf_close(&fz_fixture);
    fz_ready = 0;
}

static inline lf_fixture *fz_chain(void) {
    if (fz_ready) return &fz_fixture;
    if (lf_open(&fz_fixture) != MN_OK) abort();
    uint8_t *txs[4];
    size_t lens[4];
    int codes[4];
    for (uint32_t i = 0; i < 4; i++) {
        uint8_t id[32], holder[32], device[32];
        lf_id(id, 'c', i);
        lf_id(holder, 'h', i);
        lf_id(device, 'd', i);
        lf_issue(&fz_fixture, "mois", id, LF_RESIDENT, holder, device, "skt", 0, &txs[i], &lens[i]);
    }
    if (lf_block(&fz_fixture, txs, lens, 4, codes) != MN_OK) abort();
    for (int i = 0; i < 4; i++) /* lf_block freed the txs */
        if (codes[i] != MIDNODE__TX_CODE__TX_OK) abort();
    fz_ready = 1;
    atexit(fz_cleanup);
    return &fz_fixture;
}

typedef struct fz_reader {
    const uint8_t *p;
    size_t left;
} fz_reader;

static inline uint8_t fz_u8(fz_reader *r) {
    if (r->left == 0) return 0;
    r->left--;
    return *r->p++;
}

static inline uint32_t fz_u32(fz_reader *r) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = (v << 8) | fz_u8(r);
    return v;
}

static inline uint64_t fz_u64(fz_reader *r) {
    uint64_t v = fz_u32(r);
    return (v << 32) | fz_u32(r);
}

static inline void fz_bytes(fz_reader *r, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = fz_u8(r);
}

#endif
