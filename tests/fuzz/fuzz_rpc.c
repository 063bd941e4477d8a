/* Fuzz target: the client RPC request path without sockets.
 *
 * Input: byte 0 chooses the read size, the rest is the byte stream a client
 * sends. Frames (4-byte big-endian length, bound MN_RPC_FRAME_BYTES_MAX, the
 * same decoder node/rpc.c uses) are decoded as RpcRequest, the method is
 * looked up with mn_rpc_method_known, and the payload is decoded as that
 * method's request and handled the way node/node_rpc.c does against the test
 * chain: SubmitTx checks the tx, GetStatus builds and verifies a proof,
 * GetSigner reads a nonce, GetStatusBatch checks the batch bound. */
#include "fuzz_common.h"

#include "net.h"
#include "rpc.h"
#include "smt.h"

static void get_status(lf_fixture *f, ProtobufCBinaryData id) {
    if (id.len != MN_ID_LEN) return; /* the node answers RPC_INVALID */
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    uint64_t height = 0;
    Midnode__MerkleProof proof = MIDNODE__MERKLE_PROOF__INIT;
    if (mn_ledger_prove(f->l, id.data, &rec, &rec_len, &proof, &height) != MN_OK) abort();
    if (height != mn_ledger_height(f->l)) abort();
    /* What the ledger proves must verify against its own root. */
    uint8_t pre[1 + MN_ID_LEN], key[MN_HASH_LEN], root[MN_HASH_LEN];
    pre[0] = 0x01;
    memcpy(pre + 1, id.data, MN_ID_LEN);
    mn_sha256(key, pre, sizeof pre);
    mn_ledger_root(f->l, root);
    if (mn_smt_verify(root, key, rec, rec_len, &proof, NULL) != MN_OK) abort();
    free(rec);
    mn_smt_proof_clear(&proof);
}

static int on_frame(void *arg, const uint8_t *frame, size_t len) {
    lf_fixture *f = arg;
    Midnode__RpcRequest *req = midnode__rpc_request__unpack(NULL, len, frame);
    if (!req) return MN_OK;
    const char *m = req->method;
    const uint8_t *pl = req->payload.data;
    size_t pn = req->payload.len;
    if (!mn_rpc_method_known(m)) goto done;
    if (strcmp(m, MN_RPC_SUBMIT_TX) == 0) {
        Midnode__SubmitTxRequest *r = midnode__submit_tx_request__unpack(NULL, pn, pl);
        if (r) {
            char msg[MN_TX_MSG_MAX];
            mn_tx_info info;
            (void)mn_ledger_check_tx(f->l, r->tx.data, r->tx.len, &info, msg, sizeof msg);
            midnode__submit_tx_request__free_unpacked(r, NULL);
        }
    } else if (strcmp(m, MN_RPC_GET_STATUS) == 0) {
        Midnode__GetStatusRequest *r = midnode__get_status_request__unpack(NULL, pn, pl);
        if (r) {
            get_status(f, r->credential_id);
            midnode__get_status_request__free_unpacked(r, NULL);
        }
    } else if (strcmp(m, MN_RPC_GET_STATUS_BATCH) == 0) {
        Midnode__GetStatusBatchRequest *r = midnode__get_status_batch_request__unpack(NULL, pn, pl);
        if (r) {
            for (size_t i = 0; i < r->n_credential_ids && i < 4; i++) get_status(f, r->credential_ids[i]);
            midnode__get_status_batch_request__free_unpacked(r, NULL);
        }
    } else if (strcmp(m, MN_RPC_GET_SIGNER) == 0) {
        Midnode__GetSignerRequest *r = midnode__get_signer_request__unpack(NULL, pn, pl);
        if (r) {
            uint64_t nonce = 0;
            if (strlen(r->signer) <= MN_MEMBER_ID_MAX && mn_ledger_get_nonce(f->l, r->signer, &nonce) != MN_OK)
                abort();
            midnode__get_signer_request__free_unpacked(r, NULL);
        }
    } else if (strcmp(m, MN_RPC_GET_BLOCK) == 0) {
        Midnode__GetBlockRequest *r = midnode__get_block_request__unpack(NULL, pn, pl);
        if (r) midnode__get_block_request__free_unpacked(r, NULL);
    } else if (strcmp(m, MN_RPC_GET_TX) == 0) {
        Midnode__GetTxRequest *r = midnode__get_tx_request__unpack(NULL, pn, pl);
        if (r) midnode__get_tx_request__free_unpacked(r, NULL);
    } else if (strcmp(m, MN_RPC_WATCH_STATUS_CHANGES) == 0) {
        Midnode__WatchStatusChangesRequest *r = midnode__watch_status_changes_request__unpack(NULL, pn, pl);
        if (r) midnode__watch_status_changes_request__free_unpacked(r, NULL);
    }
done:
    midnode__rpc_request__free_unpacked(req, NULL);
    return MN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lf_fixture *f = fz_chain();
    if (size == 0) return 0;
    mn_frame_decoder d;
    mn_frame_decoder_init(&d, MN_RPC_FRAME_BYTES_MAX);
    size_t chunk = (size_t)data[0] + 1;
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        if (mn_frame_decode(&d, p, n, on_frame, f, NULL) != MN_OK) break;
        p += n;
        left -= n;
    }
    mn_frame_decoder_reset(&d);
    return 0;
}
