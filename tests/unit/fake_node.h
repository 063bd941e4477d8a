/* fake_node.h: an in-process stand-in for midnode's RPC side, for the client
 * and midctl tests. Header-only. It keeps a toy ledger that is strict where
 * the tests need it (signatures over the exact payload bytes, chain id,
 * nonces, known signers) and trivial elsewhere: every accepted transaction
 * commits at once in a block of its own; a requested proof carries only the
 * credential id (no path, header or certificate) and never verifies: real
 * proofs are tested against real nodes (tests/functional).
 * Everything runs on the server's loop thread. */
#ifndef MN_TEST_FAKE_NODE_H
#define MN_TEST_FAKE_NODE_H

#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "loop_thread.h"
#include "midnode.pb-c.h"
#include "rpc.h"

#define FN_CHAIN "fake-chain"
#define FN_SIGNERS_MAX 8
#define FN_CREDS_MAX 64
#define FN_CHANGES_MAX 128
#define FN_TIME_MS 1764547200000LL /* 2025-12-01T00:00:00Z */

typedef struct fn_signer {
    char id[MN_MEMBER_ID_MAX + 1];
    uint8_t pubkey[MN_PUBKEY_LEN];
    uint64_t nonce;
} fn_signer;

typedef struct fn_cred {
    uint8_t id[MN_ID_LEN];
    uint8_t device[MN_ID_LEN];
    char issuer[MN_MEMBER_ID_MAX + 1];
    char carrier[MN_MEMBER_ID_MAX + 1];
    int type;
    int status;
    uint64_t height;
} fn_cred;

typedef struct fn_change {
    uint64_t height;
    uint8_t cred[MN_ID_LEN];
    uint8_t tx_hash[MN_HASH_LEN];
    int status, previous;
    char kind[24];
    char signer[MN_MEMBER_ID_MAX + 1];
} fn_change;

typedef struct fake_node {
    loop_thread lt;
    uint64_t height;
    fn_signer signers[FN_SIGNERS_MAX];
    size_t signer_count;
    fn_cred creds[FN_CREDS_MAX];
    size_t cred_count;
    fn_change changes[FN_CHANGES_MAX];
    size_t change_count;
    uint8_t last_tx[MN_TX_BYTES_MAX]; /* the last accepted tx, for GetBlock/GetTx */
    size_t last_tx_len;
    uint64_t last_tx_height;
} fake_node;

static void fn_reply_msg(mn_rpc_call *call, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_INTERNAL, 0, "oom", NULL, 0);
        return;
    }
    protobuf_c_message_pack(m, buf);
    (void)mn_rpc_reply(call, 0, 0, NULL, buf, n);
    free(buf);
}

static void fn_reject(mn_rpc_call *call, int tx_code, const char *msg) {
    (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_TX_REJECTED, tx_code, msg, NULL, 0);
}

static fn_signer *fn_signer_find(fake_node *f, const char *id) {
    for (size_t i = 0; i < f->signer_count; i++)
        if (strcmp(f->signers[i].id, id) == 0) return &f->signers[i];
    return NULL;
}

static fn_cred *fn_cred_find(fake_node *f, const uint8_t *id, size_t len) {
    if (len != MN_ID_LEN) return NULL;
    for (size_t i = 0; i < f->cred_count; i++)
        if (memcmp(f->creds[i].id, id, MN_ID_LEN) == 0) return &f->creds[i];
    return NULL;
}

static void fn_change_add(fake_node *f, const fn_cred *c, int previous, const char *kind, const char *signer,
                          const uint8_t tx_hash[MN_HASH_LEN]) {
    if (f->change_count == FN_CHANGES_MAX) return;
    fn_change *ch = &f->changes[f->change_count++];
    ch->height = f->height;
    memcpy(ch->cred, c->id, MN_ID_LEN);
    memcpy(ch->tx_hash, tx_hash, MN_HASH_LEN);
    ch->status = c->status;
    ch->previous = previous;
    snprintf(ch->kind, sizeof ch->kind, "%s", kind);
    snprintf(ch->signer, sizeof ch->signer, "%s", signer);
}

static void fn_set_status(fake_node *f, fn_cred *c, int status, const char *kind, const char *signer,
                          const uint8_t h[MN_HASH_LEN]) {
    int prev = c->status;
    c->status = status;
    fn_change_add(f, c, prev, kind, signer, h);
}

static void fn_submit(fake_node *f, mn_rpc_call *call, const uint8_t *p, size_t len) {
    Midnode__SubmitTxRequest *req = midnode__submit_tx_request__unpack(NULL, len, p);
    if (!req) {
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, 0, "bad SubmitTxRequest", NULL, 0);
        return;
    }
    Midnode__Tx *tx = midnode__tx__unpack(NULL, req->tx.len, req->tx.data);
    Midnode__TxPayload *pl = tx ? midnode__tx_payload__unpack(NULL, tx->payload.len, tx->payload.data) : NULL;
    uint8_t h[MN_HASH_LEN], digest[MN_HASH_LEN];
    fn_signer *s = NULL;
    if (!pl || tx->signature.len != MN_SIG_LEN || req->tx.len > MN_TX_BYTES_MAX) {
        fn_reject(call, MIDNODE__TX_CODE__TX_MALFORMED, "malformed");
        goto out;
    }
    mn_sha256(h, req->tx.data, req->tx.len);
    mn_sha256(digest, tx->payload.data, tx->payload.len);
    if (strcmp(pl->chain_id, FN_CHAIN) != 0) {
        fn_reject(call, MIDNODE__TX_CODE__TX_WRONG_CHAIN, "wrong chain");
        goto out;
    }
    s = fn_signer_find(f, pl->signer);
    if (!s) {
        fn_reject(call, MIDNODE__TX_CODE__TX_UNKNOWN_SIGNER, "unknown signer");
        goto out;
    }
    if (!mn_verify(tx->signature.data, digest, s->pubkey)) {
        fn_reject(call, MIDNODE__TX_CODE__TX_BAD_SIGNATURE, "bad signature");
        goto out;
    }
    if (pl->nonce != s->nonce + 1) {
        fn_reject(call, MIDNODE__TX_CODE__TX_WRONG_NONCE, "wrong nonce");
        goto out;
    }
    fn_cred *c = NULL;
    switch (pl->body_case) {
    case MIDNODE__TX_PAYLOAD__BODY_ISSUE: {
        const Midnode__IssueBody *b = pl->issue;
        if (b->credential_id.len != MN_ID_LEN || b->device_ref.len != MN_ID_LEN || b->holder_ref.len != MN_ID_LEN) {
            fn_reject(call, MIDNODE__TX_CODE__TX_MALFORMED, "ids must be 32 bytes");
            goto out;
        }
        if (fn_cred_find(f, b->credential_id.data, b->credential_id.len)) {
            fn_reject(call, MIDNODE__TX_CODE__TX_CREDENTIAL_EXISTS, "credential exists");
            goto out;
        }
        if (f->cred_count == FN_CREDS_MAX) {
            fn_reject(call, MIDNODE__TX_CODE__TX_MEMPOOL_FULL, "fake full");
            goto out;
        }
        f->height++;
        c = &f->creds[f->cred_count++];
        memset(c, 0, sizeof *c);
        memcpy(c->id, b->credential_id.data, MN_ID_LEN);
        memcpy(c->device, b->device_ref.data, MN_ID_LEN);
        snprintf(c->issuer, sizeof c->issuer, "%s", pl->signer);
        snprintf(c->carrier, sizeof c->carrier, "%s", b->carrier);
        c->type = (int)b->type;
        c->height = f->height;
        fn_set_status(f, c, MIDNODE__CREDENTIAL_STATUS__ACTIVE, "issue", pl->signer, h);
        break;
    }
    case MIDNODE__TX_PAYLOAD__BODY_REVOKE:
    case MIDNODE__TX_PAYLOAD__BODY_SUSPEND:
    case MIDNODE__TX_PAYLOAD__BODY_RESUME: {
        const ProtobufCBinaryData *id = pl->body_case == MIDNODE__TX_PAYLOAD__BODY_REVOKE ? &pl->revoke->credential_id
                                        : pl->body_case == MIDNODE__TX_PAYLOAD__BODY_SUSPEND
                                            ? &pl->suspend->credential_id
                                            : &pl->resume->credential_id;
        c = fn_cred_find(f, id->data, id->len);
        if (!c) {
            fn_reject(call, MIDNODE__TX_CODE__TX_UNKNOWN_CREDENTIAL, "unknown credential");
            goto out;
        }
        f->height++;
        if (pl->body_case == MIDNODE__TX_PAYLOAD__BODY_REVOKE)
            fn_set_status(f, c, MIDNODE__CREDENTIAL_STATUS__REVOKED, "revoke", pl->signer, h);
        else if (pl->body_case == MIDNODE__TX_PAYLOAD__BODY_SUSPEND)
            fn_set_status(f, c, MIDNODE__CREDENTIAL_STATUS__SUSPENDED, "suspend", pl->signer, h);
        else
            fn_set_status(f, c, MIDNODE__CREDENTIAL_STATUS__ACTIVE, "resume", pl->signer, h);
        break;
    }
    case MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS:
    case MIDNODE__TX_PAYLOAD__BODY_REPORT_RECOVERY: {
        bool loss = pl->body_case == MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS;
        const ProtobufCBinaryData *dev = loss ? &pl->report_loss->device_ref : &pl->report_recovery->device_ref;
        if (dev->len != MN_ID_LEN) {
            fn_reject(call, MIDNODE__TX_CODE__TX_MALFORMED, "device must be 32 bytes");
            goto out;
        }
        f->height++;
        for (size_t i = 0; i < f->cred_count; i++) {
            fn_cred *x = &f->creds[i];
            if (memcmp(x->device, dev->data, MN_ID_LEN) != 0 || strcmp(x->carrier, pl->signer) != 0) continue;
            if (loss && x->status == MIDNODE__CREDENTIAL_STATUS__ACTIVE)
                fn_set_status(f, x, MIDNODE__CREDENTIAL_STATUS__SUSPENDED, "report_loss", pl->signer, h);
            else if (!loss && x->status == MIDNODE__CREDENTIAL_STATUS__SUSPENDED)
                fn_set_status(f, x, MIDNODE__CREDENTIAL_STATUS__ACTIVE, "report_recovery", pl->signer, h);
        }
        break;
    }
    default: fn_reject(call, MIDNODE__TX_CODE__TX_MALFORMED, "no body"); goto out;
    }
    s->nonce++;
    memcpy(f->last_tx, req->tx.data, req->tx.len);
    f->last_tx_len = req->tx.len;
    f->last_tx_height = f->height;
    Midnode__SubmitTxResponse r = MIDNODE__SUBMIT_TX_RESPONSE__INIT;
    r.tx_hash = (ProtobufCBinaryData){MN_HASH_LEN, h};
    r.height = req->wait_commit ? f->height : 0;
    fn_reply_msg(call, &r.base);
out:
    if (pl) midnode__tx_payload__free_unpacked(pl, NULL);
    if (tx) midnode__tx__free_unpacked(tx, NULL);
    midnode__submit_tx_request__free_unpacked(req, NULL);
}

static void fn_fill_status(fake_node *f, Midnode__GetStatusResponse *r, Midnode__CredentialRecord *rec,
                           Midnode__StatusProof *proof, const uint8_t *id, size_t len, bool with_proof) {
    r->credential_id = (ProtobufCBinaryData){len, (uint8_t *)id};
    r->height = f->height;
    r->time_ms = FN_TIME_MS + (int64_t)f->height * 1000;
    fn_cred *c = fn_cred_find(f, id, len);
    if (c) {
        r->status = (Midnode__CredentialStatus)c->status;
        rec->credential_id = (ProtobufCBinaryData){MN_ID_LEN, c->id};
        rec->device_ref = (ProtobufCBinaryData){MN_ID_LEN, c->device};
        rec->type = (Midnode__CredentialType)c->type;
        rec->issuer = c->issuer;
        rec->carrier = c->carrier;
        rec->status = (Midnode__CredentialStatus)c->status;
        rec->issued_height = c->height;
        r->record = rec;
    }
    if (with_proof) {
        proof->credential_id = r->credential_id;
        r->proof = proof;
    }
}

static void fn_handler(void *ctx, mn_rpc_call *call, const char *method, const uint8_t *p, size_t len) {
    fake_node *f = ctx;
    if (strcmp(method, MN_RPC_SUBMIT_TX) == 0) {
        fn_submit(f, call, p, len);
    } else if (strcmp(method, MN_RPC_GET_CHAIN_INFO) == 0) {
        Midnode__GetChainInfoResponse r = MIDNODE__GET_CHAIN_INFO_RESPONSE__INIT;
        uint8_t root[MN_HASH_LEN];
        memset(root, 0xab, sizeof root);
        r.chain_id = (char *)FN_CHAIN;
        r.height = f->height;
        r.time_ms = FN_TIME_MS + (int64_t)f->height * 1000;
        r.state_root = (ProtobufCBinaryData){MN_HASH_LEN, root};
        r.block_hash = (ProtobufCBinaryData){MN_HASH_LEN, root};
        r.validators = 4;
        r.peers = 3;
        r.node_name = (char *)"fake0";
        r.is_validator = true;
        fn_reply_msg(call, &r.base);
    } else if (strcmp(method, MN_RPC_GET_SIGNER) == 0) {
        Midnode__GetSignerRequest *req = midnode__get_signer_request__unpack(NULL, len, p);
        fn_signer *s = req ? fn_signer_find(f, req->signer) : NULL;
        if (!s) {
            (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_NOT_FOUND, 0, "no such signer", NULL, 0);
        } else {
            Midnode__GetSignerResponse r = MIDNODE__GET_SIGNER_RESPONSE__INIT;
            r.signer = s->id;
            r.last_nonce = s->nonce;
            r.next_nonce = s->nonce + 1;
            fn_reply_msg(call, &r.base);
        }
        if (req) midnode__get_signer_request__free_unpacked(req, NULL);
    } else if (strcmp(method, MN_RPC_GET_STATUS) == 0) {
        Midnode__GetStatusRequest *req = midnode__get_status_request__unpack(NULL, len, p);
        if (!req || req->credential_id.len != MN_ID_LEN) {
            (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, 0, "credential_id must be 32 bytes", NULL, 0);
        } else {
            Midnode__GetStatusResponse r = MIDNODE__GET_STATUS_RESPONSE__INIT;
            Midnode__CredentialRecord rec = MIDNODE__CREDENTIAL_RECORD__INIT;
            Midnode__StatusProof proof = MIDNODE__STATUS_PROOF__INIT;
            fn_fill_status(f, &r, &rec, &proof, req->credential_id.data, req->credential_id.len, req->with_proof);
            fn_reply_msg(call, &r.base);
        }
        if (req) midnode__get_status_request__free_unpacked(req, NULL);
    } else if (strcmp(method, MN_RPC_GET_STATUS_BATCH) == 0) {
        Midnode__GetStatusBatchRequest *req = midnode__get_status_batch_request__unpack(NULL, len, p);
        if (!req || req->n_credential_ids > 16) {
            (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, 0, "bad batch", NULL, 0);
        } else {
            Midnode__GetStatusResponse rs[16], *rp[16];
            Midnode__CredentialRecord recs[16];
            Midnode__StatusProof proofs[16];
            for (size_t i = 0; i < req->n_credential_ids; i++) {
                midnode__get_status_response__init(&rs[i]);
                midnode__credential_record__init(&recs[i]);
                midnode__status_proof__init(&proofs[i]);
                fn_fill_status(f, &rs[i], &recs[i], &proofs[i], req->credential_ids[i].data,
                               req->credential_ids[i].len, req->with_proof);
                rp[i] = &rs[i];
            }
            Midnode__GetStatusBatchResponse r = MIDNODE__GET_STATUS_BATCH_RESPONSE__INIT;
            r.n_statuses = req->n_credential_ids;
            r.statuses = rp;
            fn_reply_msg(call, &r.base);
        }
        if (req) midnode__get_status_batch_request__free_unpacked(req, NULL);
    } else if (strcmp(method, MN_RPC_GET_BLOCK) == 0) {
        Midnode__GetBlockRequest *req = midnode__get_block_request__unpack(NULL, len, p);
        uint64_t height = req ? (req->height ? req->height : f->height) : 0;
        if (req) midnode__get_block_request__free_unpacked(req, NULL);
        if (height == 0 || height > f->height) {
            (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_NOT_FOUND, 0, "no such block", NULL, 0);
            return;
        }
        uint8_t prev[MN_HASH_LEN], root[MN_HASH_LEN], bh[MN_HASH_LEN], sig[MN_SIG_LEN];
        memset(prev, 0x11, sizeof prev);
        memset(root, 0xab, sizeof root);
        memset(sig, 0x5a, sizeof sig);
        Midnode__BlockHeader hd = MIDNODE__BLOCK_HEADER__INIT;
        hd.chain_id = (char *)FN_CHAIN;
        hd.height = height;
        hd.time_ms = FN_TIME_MS + (int64_t)height * 1000;
        hd.prev_hash = (ProtobufCBinaryData){height > 1 ? MN_HASH_LEN : 0, prev};
        hd.tx_root = (ProtobufCBinaryData){MN_HASH_LEN, root};
        hd.state_root = (ProtobufCBinaryData){MN_HASH_LEN, root};
        hd.proposer = (char *)"mois";
        uint8_t hbuf[512];
        size_t hl = midnode__block_header__pack(&hd, hbuf);
        mn_sha256(bh, hbuf, hl);
        Midnode__Block b = MIDNODE__BLOCK__INIT;
        b.header = (ProtobufCBinaryData){hl, hbuf};
        ProtobufCBinaryData txs[1] = {{f->last_tx_len, f->last_tx}};
        if (height == f->last_tx_height && f->last_tx_len) {
            b.n_txs = 1;
            b.txs = txs;
        }
        Midnode__CommitSig cs = MIDNODE__COMMIT_SIG__INIT, *csp[1] = {&cs};
        cs.validator_index = 2;
        cs.signature = (ProtobufCBinaryData){MN_SIG_LEN, sig};
        Midnode__CommitCertificate cert = MIDNODE__COMMIT_CERTIFICATE__INIT;
        cert.height = height;
        cert.block_hash = (ProtobufCBinaryData){MN_HASH_LEN, bh};
        cert.n_sigs = 1;
        cert.sigs = csp;
        Midnode__GetBlockResponse r = MIDNODE__GET_BLOCK_RESPONSE__INIT;
        r.block = &b;
        r.commit = &cert;
        fn_reply_msg(call, &r.base);
    } else if (strcmp(method, MN_RPC_GET_TX) == 0) {
        Midnode__GetTxRequest *req = midnode__get_tx_request__unpack(NULL, len, p);
        uint8_t h[MN_HASH_LEN];
        mn_sha256(h, f->last_tx, f->last_tx_len);
        if (!req || !f->last_tx_len || req->tx_hash.len != MN_HASH_LEN || memcmp(req->tx_hash.data, h, MN_HASH_LEN)) {
            (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_NOT_FOUND, 0, "no such tx", NULL, 0);
        } else {
            Midnode__GetTxResponse r = MIDNODE__GET_TX_RESPONSE__INIT;
            r.tx = (ProtobufCBinaryData){f->last_tx_len, f->last_tx};
            r.height = f->last_tx_height;
            fn_reply_msg(call, &r.base);
        }
        if (req) midnode__get_tx_request__free_unpacked(req, NULL);
    } else if (strcmp(method, MN_RPC_WATCH_STATUS_CHANGES) == 0) {
        /* The fake streams the recorded changes from the height asked, then
         * ends the stream (a real node keeps it open for live changes). */
        Midnode__WatchStatusChangesRequest *req = midnode__watch_status_changes_request__unpack(NULL, len, p);
        uint64_t from = req ? req->from_height : 0;
        if (req) midnode__watch_status_changes_request__free_unpacked(req, NULL);
        for (size_t i = 0; i < f->change_count; i++) {
            const fn_change *ch = &f->changes[i];
            if (ch->height < from) continue;
            Midnode__StatusChange sc = MIDNODE__STATUS_CHANGE__INIT;
            sc.height = ch->height;
            sc.time_ms = FN_TIME_MS + (int64_t)ch->height * 1000;
            sc.tx_hash = (ProtobufCBinaryData){MN_HASH_LEN, (uint8_t *)ch->tx_hash};
            sc.credential_id = (ProtobufCBinaryData){MN_ID_LEN, (uint8_t *)ch->cred};
            sc.status = (Midnode__CredentialStatus)ch->status;
            sc.previous = (Midnode__CredentialStatus)ch->previous;
            sc.signer = (char *)ch->signer;
            sc.kind = (char *)ch->kind;
            uint8_t buf[256];
            size_t n = midnode__status_change__pack(&sc, buf);
            if (mn_rpc_stream(call, buf, n) != MN_OK) break;
        }
        (void)mn_rpc_reply(call, 0, 0, NULL, NULL, 0);
    } else {
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_UNKNOWN_METHOD, 0, "fake: no such method", NULL, 0);
    }
}

/* Adds a signer the fake accepts. Call before fn_start. */
static void fn_add_signer(fake_node *f, const char *id, const uint8_t pubkey[MN_PUBKEY_LEN]) {
    fn_signer *s = &f->signers[f->signer_count++];
    snprintf(s->id, sizeof s->id, "%s", id);
    memcpy(s->pubkey, pubkey, MN_PUBKEY_LEN);
    s->nonce = 0;
}

static void fn_start(fake_node *f) {
    mn_rpc_config cfg;
    mn_rpc_config_default(&cfg);
    cfg.idle_timeout_ms = 0;
    lt_start(&f->lt, &cfg, fn_handler, f);
}

static int fn_stop(fake_node *f) { return lt_stop(&f->lt); }

#endif
