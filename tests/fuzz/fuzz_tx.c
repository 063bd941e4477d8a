/* Fuzz target: transaction decoding and validation.
 *
 * Input byte 0 picks the mode:
 *   even: the rest is a serialised Tx, checked with mn_ledger_check_tx and
 *         applied with mn_exec_apply_tx on top of the committed test chain;
 *   odd:  the rest is a serialised TxPayload; when it decodes it is signed
 *         with the key of its signer (if a member) so that the fuzzer reaches
 *         the rules past the signature check (roles, types, nonces, state).
 * Block 2 is executed and its state root computed, never committed, so every
 * input meets the same state. */
#include "fuzz_common.h"

static void run_tx(lf_fixture *f, const uint8_t *tx, size_t len) {
    mn_tx_info info;
    char msg[MN_TX_MSG_MAX];
    int code = mn_ledger_check_tx(f->l, tx, len, &info, msg, sizeof msg);
    (void)code;
    mn_exec *e = mn_exec_begin(f->l, mn_ledger_height(f->l) + 1, f->time_ms);
    if (!e) abort();
    int c1 = mn_exec_apply_tx(e, tx, len, msg, sizeof msg);
    /* The same tx again in the same block: a replay, never accepted twice. */
    int c2 = mn_exec_apply_tx(e, tx, len, msg, sizeof msg);
    if (c1 == MIDNODE__TX_CODE__TX_OK && c2 == MIDNODE__TX_CODE__TX_OK) abort();
    if (mn_exec_tx_count(e) != 2) abort();
    uint8_t root[MN_HASH_LEN];
    if (mn_exec_finish(e, root) != MN_OK) abort();
    size_t n = 0;
    (void)mn_exec_changes(e, &n);
    mn_exec_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lf_fixture *f = fz_chain();
    if (size == 0 || size > MN_TX_BYTES_MAX + 1) return 0;
    if ((data[0] & 1) == 0) {
        run_tx(f, data + 1, size - 1);
        return 0;
    }
    Midnode__TxPayload *p = midnode__tx_payload__unpack(NULL, size - 1, data + 1);
    if (!p) return 0;
    if (p->signer && p->nonce != 0) {
        uint8_t *tx = NULL;
        size_t len = 0;
        lf_sign_as(f, p, p->signer, &tx, &len);
        run_tx(f, tx, len);
        free(tx);
    }
    midnode__tx_payload__free_unpacked(p, NULL);
    return 0;
}
