/* node_rpc.c: the client API methods (DESIGN.md section 8) on top of the
 * ledger, the mempool and the committed tip; SubmitTx waiters and
 * WatchStatusChanges streams. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "node_internal.h"
#include "smt.h"

/* ------------------------------------------------------------ replies */

static void reply_msg(mn_rpc_call *call, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_INTERNAL, 0, "out of memory", NULL, 0);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_OK, 0, NULL, buf, len);
    free(buf);
}

static void reply_err(mn_rpc_call *call, int code, const char *fmt, const char *detail)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    (void)mn_rpc_reply(call, code, 0, msg, NULL, 0);
}

/* ------------------------------------------------------------ admission */

int node_admit_tx(struct mn_node *n, const uint8_t *tx, size_t len, uint8_t hash[MN_HASH_LEN], char *msg,
                  size_t msg_len, bool from_peer)
{
    mn_tx_info info;
    memset(&info, 0, sizeof info);
    msg[0] = '\0';
    /* The ledger's check bounds each kind; this only keeps hashing cheap. */
    if (len == 0 || len > MN_TX_BATCH_BYTES_MAX) {
        snprintf(msg, msg_len, "transaction of %zu bytes (limit %d)", len, MN_TX_BATCH_BYTES_MAX);
        return len ? MIDNODE__TX_CODE__TX_TOO_LARGE : MIDNODE__TX_CODE__TX_MALFORMED;
    }
    mn_sha256(hash, tx, len);
    if (mn_mempool_contains(n->mempool, hash)) {
        snprintf(msg, msg_len, "already pending");
        return MIDNODE__TX_CODE__TX_DUPLICATE;
    }
    int code = mn_ledger_check_tx(n->ledger, tx, len, &info, msg, msg_len);
    /* A committed tx is refused by its nonce (a signer's nonces only grow).
     * A client is then told "already committed" (its height is in the
     * reply), which takes a store read; only a tx the nonce refused can be
     * committed, so a new one costs no read. Gossip needs no reason. */
    uint64_t h;
    uint32_t idx;
    if (code == MIDNODE__TX_CODE__TX_WRONG_NONCE && !from_peer &&
        mn_store_get_tx_location(n->store, hash, &h, &idx) == MN_OK) {
        snprintf(msg, msg_len, "already committed at height %llu", (unsigned long long)h);
        return MIDNODE__TX_CODE__TX_DUPLICATE;
    }
    if (code != MIDNODE__TX_CODE__TX_OK) return code;
    if (!from_peer) {
        /* When this tx is next in its signer's sequence, a trial run against
         * committed state tells the submitter now why it would fail. */
        uint64_t last = node_committed_nonce(n, info.signer);
        if (info.nonce == last + 1) {
            int64_t t = (int64_t)node_now_ms();
            mn_exec *e = mn_exec_begin(n->ledger, n->height + 1, t > n->tip_time_ms ? t : n->tip_time_ms + 1);
            if (e) {
                code = mn_exec_apply_tx_opts(e, tx, len, MN_EXEC_SIG_CHECKED, msg, msg_len);
                mn_exec_free(e);
                if (code != MIDNODE__TX_CODE__TX_OK) return code;
            }
        }
    }
    int rc = mn_mempool_add(n->mempool, tx, len, hash, info.signer, info.nonce);
    switch (rc) {
    case MN_OK: break;
    case MN_ESTATE: snprintf(msg, msg_len, "already pending"); return MIDNODE__TX_CODE__TX_DUPLICATE;
    case MN_EPERM:
        snprintf(msg, msg_len, "another transaction of %s with nonce %llu is pending", info.signer,
                 (unsigned long long)info.nonce);
        return MIDNODE__TX_CODE__TX_WRONG_NONCE;
    case MN_EAGAIN: snprintf(msg, msg_len, "mempool full; retry later"); return MIDNODE__TX_CODE__TX_MEMPOOL_FULL;
    case MN_ETOOBIG: snprintf(msg, msg_len, "transaction too large"); return MIDNODE__TX_CODE__TX_TOO_LARGE;
    default: snprintf(msg, msg_len, "mempool: %s", mn_strerror(rc)); return MIDNODE__TX_CODE__TX_MALFORMED;
    }
    if (from_peer) (void)mn_mempool_mark_gossiped(n->mempool, hash);
    mn_counter_inc(n->m_tx_accepted);
    node_tx_admitted(n);
    return MIDNODE__TX_CODE__TX_OK;
}

/* ------------------------------------------------------------ waiters */

static void waiter_unlink(struct mn_node *n, node_waiter *w)
{
    if (w->prev) w->prev->next = w->next;
    else n->waiters = w->next;
    if (w->next) w->next->prev = w->prev;
    n->waiter_count--;
}

static void waiter_cancel(void *arg, mn_rpc_call *call)
{
    (void)call;
    node_waiter *w = arg;
    waiter_unlink(w->node, w);
    free(w);
}

static void waiter_done(struct mn_node *n, node_waiter *w, uint64_t height)
{
    Midnode__SubmitTxResponse r = MIDNODE__SUBMIT_TX_RESPONSE__INIT;
    r.tx_hash.data = w->tx_hash;
    r.tx_hash.len = MN_HASH_LEN;
    r.height = height;
    waiter_unlink(n, w);
    reply_msg(w->call, &r.base);
    free(w);
}

static void waiter_fail(struct mn_node *n, node_waiter *w, int code, int tx_code, const char *msg)
{
    waiter_unlink(n, w);
    (void)mn_rpc_reply(w->call, code, tx_code, msg, NULL, 0);
    free(w);
}

static int add_waiter(struct mn_node *n, mn_rpc_call *call, const uint8_t hash[MN_HASH_LEN], uint32_t timeout_ms)
{
    node_waiter *w = calloc(1, sizeof *w);
    if (!w) return MN_ENOMEM;
    w->node = n;
    w->call = call;
    memcpy(w->tx_hash, hash, MN_HASH_LEN);
    if (timeout_ms == 0) timeout_ms = NODE_WAIT_DEFAULT_MS;
    if (timeout_ms > NODE_WAIT_MAX_MS) timeout_ms = NODE_WAIT_MAX_MS;
    w->deadline_ms = node_mono_ms(n) + timeout_ms;
    w->next = n->waiters;
    if (n->waiters) n->waiters->prev = w;
    n->waiters = w;
    n->waiter_count++;
    mn_rpc_call_on_cancel(call, waiter_cancel, w);
    return MN_OK;
}

/* ------------------------------------------------------------ watchers */

static void watcher_unlink(struct mn_node *n, node_watcher *w)
{
    if (w->prev) w->prev->next = w->next;
    else n->watchers = w->next;
    if (w->next) w->next->prev = w->prev;
    n->watcher_count--;
}

static void watcher_cancel(void *arg, mn_rpc_call *call)
{
    (void)call;
    node_watcher *w = arg;
    watcher_unlink(w->node, w);
    free(w);
}

struct pump_ctx {
    node_watcher *w;
    size_t sent;
    uint64_t last_height;
    int rc;
    bool stopped_early;
};

static int pump_one(void *arg, uint64_t height, const uint8_t *change, size_t len)
{
    struct pump_ctx *p = arg;
    if (p->sent >= NODE_WATCH_CHUNK && height != p->last_height) {
        p->stopped_early = true;
        return 1;
    }
    int rc = mn_rpc_stream(p->w->call, change, len);
    if (rc != MN_OK) {
        p->rc = rc;
        return 1;
    }
    p->sent++;
    p->last_height = height;
    p->w->next_height = height; /* this height may still have more */
    return 0;
}

/* Streams what committed since the watcher's position. Returns false when
 * the watcher was ended (and freed). */
static bool watcher_pump(struct mn_node *n, node_watcher *w)
{
    for (int chunks = 0; chunks < 16 && w->next_height <= n->height; chunks++) {
        struct pump_ctx p = {.w = w, .last_height = 0};
        uint64_t from = w->next_height;
        int rc = mn_store_status_changes(n->store, from, (size_t)-1, pump_one, &p);
        if (rc != MN_OK) {
            watcher_unlink(n, w);
            (void)mn_rpc_reply(w->call, MIDNODE__RPC_CODE__RPC_INTERNAL, 0, "store read failed", NULL, 0);
            free(w);
            return false;
        }
        if (p.rc == MN_EAGAIN) {
            watcher_unlink(n, w);
            (void)mn_rpc_reply(w->call, MIDNODE__RPC_CODE__RPC_OVERLOADED, 0,
                               "watch stream ended: the client does not read fast enough", NULL, 0);
            free(w);
            return false;
        }
        if (p.rc != MN_OK) return true; /* connection going away; cancel frees it */
        if (!p.stopped_early) {
            w->next_height = n->height + 1;
            break;
        }
        w->next_height = p.last_height + 1;
    }
    return true;
}

void node_rpc_after_commit(struct mn_node *n, const node_pending *committed)
{
    /* waiters: a set of this block's tx hashes, then one pass over waiters */
    if (n->waiters) {
        size_t cap = 16;
        while (cap < committed->tx_count * 2) cap *= 2;
        const uint8_t **set = calloc(cap, sizeof *set);
        if (set) {
            for (size_t i = 0; i < committed->tx_count; i++) {
                const uint8_t *h = committed->tx_hashes[i];
                size_t k = ((size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2]) & (cap - 1);
                while (set[k]) k = (k + 1) & (cap - 1);
                set[k] = h;
            }
        }
        node_waiter *w = n->waiters;
        while (w) {
            node_waiter *next = w->next;
            bool in_block = false;
            if (set) {
                size_t k = ((size_t)w->tx_hash[0] << 16 | (size_t)w->tx_hash[1] << 8 | w->tx_hash[2]) & (cap - 1);
                for (; set[k]; k = (k + 1) & (cap - 1))
                    if (memcmp(set[k], w->tx_hash, MN_HASH_LEN) == 0) {
                        in_block = true;
                        break;
                    }
            }
            if (in_block) {
                waiter_done(n, w, n->height);
            } else if (!mn_mempool_contains(n->mempool, w->tx_hash)) {
                uint64_t h;
                uint32_t idx;
                if (mn_store_get_tx_location(n->store, w->tx_hash, &h, &idx) == MN_OK)
                    waiter_done(n, w, h);
                else
                    waiter_fail(n, w, MIDNODE__RPC_CODE__RPC_TX_REJECTED, MIDNODE__TX_CODE__TX_WRONG_NONCE,
                                "dropped: its nonce was used by another transaction, or it failed at execution");
            }
            w = next;
        }
        free(set);
    }
    node_watcher *w = n->watchers;
    while (w) {
        node_watcher *next = w->next;
        (void)watcher_pump(n, w);
        w = next;
    }
}

void node_rpc_expire(struct mn_node *n)
{
    uint64_t now = node_mono_ms(n);
    node_waiter *w = n->waiters;
    while (w) {
        node_waiter *next = w->next;
        if (now >= w->deadline_ms)
            waiter_fail(n, w, MIDNODE__RPC_CODE__RPC_TIMEOUT, 0,
                        "not committed before the deadline; it may still commit (query GetTx)");
        w = next;
    }
}

void node_rpc_close_all(struct mn_node *n)
{
    while (n->waiters)
        waiter_fail(n, n->waiters, MIDNODE__RPC_CODE__RPC_UNAVAILABLE, 0, "node stopping; it may still commit");
    while (n->watchers) {
        node_watcher *w = n->watchers;
        watcher_unlink(n, w);
        (void)mn_rpc_reply(w->call, MIDNODE__RPC_CODE__RPC_UNAVAILABLE, 0, "node stopping", NULL, 0);
        free(w);
    }
}

/* ------------------------------------------------------------ methods */

static void do_submit(struct mn_node *n, mn_rpc_call *call, const uint8_t *payload, size_t len)
{
    Midnode__SubmitTxRequest *req = midnode__submit_tx_request__unpack(NULL, len, payload);
    if (!req) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "SubmitTxRequest does not decode%s", NULL);
        return;
    }
    uint8_t hash[MN_HASH_LEN];
    char msg[MN_TX_MSG_MAX + 64];
    int code = node_admit_tx(n, req->tx.data, req->tx.len, hash, msg, sizeof msg, false);
    if (code == MIDNODE__TX_CODE__TX_DUPLICATE && req->wait_commit) {
        uint64_t h;
        uint32_t idx;
        if (mn_store_get_tx_location(n->store, hash, &h, &idx) == MN_OK) {
            node_waiter tmp = {.node = n, .call = call};
            memcpy(tmp.tx_hash, hash, MN_HASH_LEN);
            Midnode__SubmitTxResponse r = MIDNODE__SUBMIT_TX_RESPONSE__INIT;
            r.tx_hash.data = tmp.tx_hash;
            r.tx_hash.len = MN_HASH_LEN;
            r.height = h;
            reply_msg(call, &r.base);
            goto out;
        }
        code = MIDNODE__TX_CODE__TX_OK; /* pending: wait for it like the first submitter */
    }
    if (code != MIDNODE__TX_CODE__TX_OK) {
        mn_counter_inc(n->m_tx_rejected);
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_TX_REJECTED, code, msg, NULL, 0);
        goto out;
    }
    if (req->wait_commit) {
        if (add_waiter(n, call, hash, req->timeout_ms) != MN_OK)
            reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "out of memory%s", NULL);
        goto out;
    }
    Midnode__SubmitTxResponse r = MIDNODE__SUBMIT_TX_RESPONSE__INIT;
    r.tx_hash.data = hash;
    r.tx_hash.len = MN_HASH_LEN;
    reply_msg(call, &r.base);
out:
    midnode__submit_tx_request__free_unpacked(req, NULL);
}

/* Fills r for one credential; proof pieces are malloc'd into *owned_*. */
struct status_owned {
    Midnode__CredentialRecord *record;
    uint8_t *record_bytes;
    Midnode__MerkleProof merkle;
    Midnode__StatusProof proof;
    bool have_merkle;
};

static int fill_status(struct mn_node *n, const ProtobufCBinaryData *id, bool with_proof, Midnode__GetStatusResponse *r,
                       struct status_owned *o)
{
    midnode__get_status_response__init(r);
    memset(o, 0, sizeof *o);
    if (id->len != MN_ID_LEN) return MN_EINVAL;
    r->credential_id = *id;
    r->height = n->height;
    r->time_ms = n->tip_time_ms;
    int rc = mn_ledger_get_record(n->ledger, id->data, &o->record);
    if (rc == MN_OK) {
        r->record = o->record;
        r->status = mn_ledger_effective_status(o->record, n->tip_time_ms);
    } else if (rc == MN_ENOTFOUND) {
        r->status = MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN;
    } else {
        return rc;
    }
    if (!with_proof) return MN_OK;
    if (n->height == 0 || !n->tip_cert) return MN_ESTATE;
    midnode__merkle_proof__init(&o->merkle);
    size_t rec_len = 0;
    uint64_t ph = 0;
    rc = mn_ledger_prove(n->ledger, id->data, &o->record_bytes, &rec_len, &o->merkle, &ph);
    o->have_merkle = true;
    if (rc != MN_OK) return rc;
    if (ph != n->height) return MN_ESTATE;
    midnode__status_proof__init(&o->proof);
    o->proof.credential_id = *id;
    o->proof.record.data = o->record_bytes;
    o->proof.record.len = rec_len;
    o->proof.merkle = &o->merkle;
    o->proof.header.data = n->tip_header;
    o->proof.header.len = n->tip_header_len;
    o->proof.commit = n->tip_cert;
    r->proof = &o->proof;
    return MN_OK;
}

static void status_owned_free(struct status_owned *o)
{
    if (o->record) midnode__credential_record__free_unpacked(o->record, NULL);
    free(o->record_bytes);
    if (o->have_merkle) mn_smt_proof_clear(&o->merkle);
}

/* Protobuf varint; returns bytes written (at most 10). */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

/* GetStatus, the hot query: the record comes from the ledger's read cache
 * as stored bytes (and with_proof, the serialised Merkle path from its proof
 * cache) and the GetStatusResponse is written field by field around them,
 * in the wire form protobuf-c produces. A query thus costs no store lookup
 * while the state is unchanged, and no unpack or repack of the record. */
static void status_fast(struct mn_node *n, mn_rpc_call *call, const uint8_t id[MN_ID_LEN], bool with_proof)
{
    const uint8_t *rec = NULL, *merkle = NULL;
    size_t rec_len = 0, merkle_len = 0, cert_len = 0;
    Midnode__CredentialStatus st = MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN;
    int rc = mn_ledger_get_record_cached(n->ledger, id, n->tip_time_ms, &rec, &rec_len, &st);
    bool found = rc == MN_OK;
    if (rc != MN_OK && rc != MN_ENOTFOUND) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "store read failed: %s", mn_strerror(rc));
        return;
    }
    if (with_proof) {
        if (n->height == 0 || !n->tip_cert || mn_ledger_height(n->ledger) != n->height) {
            reply_err(call, MIDNODE__RPC_CODE__RPC_UNAVAILABLE, "no committed block to prove against yet%s", NULL);
            return;
        }
        /* After the record: both caches serve the same root, and the record
         * bytes stay valid (the proof cache never evicts record slots). */
        rc = mn_ledger_prove_cached(n->ledger, id, &merkle, &merkle_len);
        if (rc != MN_OK) {
            reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "store read failed: %s", mn_strerror(rc));
            return;
        }
        cert_len = midnode__commit_certificate__get_packed_size(n->tip_cert);
    }
    size_t proof_len = 0;
    if (with_proof) {
        proof_len = 2 + MN_ID_LEN + 1 + 10 + merkle_len + 1 + 10 + n->tip_header_len + 1 + 10 + cert_len;
        if (found) proof_len += 1 + 10 + rec_len;
    }
    uint8_t stack[1024];
    size_t cap = 2 + MN_ID_LEN + 3 * 11 + 1 + 10 + rec_len + (with_proof ? 1 + 10 + proof_len : 0);
    uint8_t *buf = cap <= sizeof stack ? stack : malloc(cap);
    if (!buf) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "out of memory%s", NULL);
        return;
    }
    size_t k = 0;
    buf[k++] = 0x0a; /* 1: credential_id */
    buf[k++] = MN_ID_LEN;
    memcpy(buf + k, id, MN_ID_LEN);
    k += MN_ID_LEN;
    if (st != 0) {
        buf[k++] = 0x10; /* 2: status */
        k += put_varint(buf + k, (uint64_t)(int64_t)st);
    }
    if (n->height != 0) {
        buf[k++] = 0x18; /* 3: height */
        k += put_varint(buf + k, n->height);
    }
    if (n->tip_time_ms != 0) {
        buf[k++] = 0x20; /* 4: time_ms */
        k += put_varint(buf + k, (uint64_t)n->tip_time_ms);
    }
    if (found) {
        buf[k++] = 0x2a; /* 5: record */
        k += put_varint(buf + k, rec_len);
        memcpy(buf + k, rec, rec_len);
        k += rec_len;
    }
    if (with_proof) {
        size_t body = 2 + MN_ID_LEN + 1 + varint_len(merkle_len) + merkle_len;
        if (found && rec_len) body += 1 + varint_len(rec_len) + rec_len;
        if (n->tip_header_len) body += 1 + varint_len(n->tip_header_len) + n->tip_header_len;
        if (cert_len) body += 1 + varint_len(cert_len) + cert_len;
        buf[k++] = 0x32; /* 6: proof (StatusProof) */
        k += put_varint(buf + k, body);
        size_t start = k;
        buf[k++] = 0x0a; /* StatusProof 1: credential_id */
        buf[k++] = MN_ID_LEN;
        memcpy(buf + k, id, MN_ID_LEN);
        k += MN_ID_LEN;
        if (found && rec_len) {
            buf[k++] = 0x12; /* 2: record */
            k += put_varint(buf + k, rec_len);
            memcpy(buf + k, rec, rec_len);
            k += rec_len;
        }
        buf[k++] = 0x1a; /* 3: merkle */
        k += put_varint(buf + k, merkle_len);
        memcpy(buf + k, merkle, merkle_len);
        k += merkle_len;
        if (n->tip_header_len) {
            buf[k++] = 0x22; /* 4: header */
            k += put_varint(buf + k, n->tip_header_len);
            memcpy(buf + k, n->tip_header, n->tip_header_len);
            k += n->tip_header_len;
        }
        if (cert_len) {
            buf[k++] = 0x2a; /* 5: commit */
            k += put_varint(buf + k, cert_len);
            k += midnode__commit_certificate__pack(n->tip_cert, buf + k);
        }
        assert(k - start == body);
    }
    assert(k <= cap);
    (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_OK, 0, NULL, buf, k);
    if (buf != stack) free(buf);
}

static void do_status(struct mn_node *n, mn_rpc_call *call, const uint8_t *payload, size_t len)
{
    mn_counter_inc(n->m_status_queries);
    /* The canonical encodings, {1: 32-byte id} and {1: id, 2: bool}, are
     * read in place; anything else goes through protobuf-c. */
    if (len >= 2 + MN_ID_LEN && payload[0] == 0x0a && payload[1] == MN_ID_LEN &&
        (len == 2 + MN_ID_LEN ||
         (len == 4 + MN_ID_LEN && payload[2 + MN_ID_LEN] == 0x10 && payload[3 + MN_ID_LEN] <= 1))) {
        status_fast(n, call, payload + 2, len == 4 + MN_ID_LEN && payload[3 + MN_ID_LEN] == 1);
        return;
    }
    Midnode__GetStatusRequest *req = midnode__get_status_request__unpack(NULL, len, payload);
    if (!req) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "GetStatusRequest does not decode%s", NULL);
        return;
    }
    if (req->credential_id.len == MN_ID_LEN) {
        status_fast(n, call, req->credential_id.data, req->with_proof);
        midnode__get_status_request__free_unpacked(req, NULL);
        return;
    }
    Midnode__GetStatusResponse r;
    struct status_owned o;
    int rc = fill_status(n, &req->credential_id, req->with_proof, &r, &o);
    if (rc == MN_EINVAL) reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "credential_id must be 32 bytes%s", NULL);
    else if (rc == MN_ESTATE) reply_err(call, MIDNODE__RPC_CODE__RPC_UNAVAILABLE, "no committed block to prove against yet%s", NULL);
    else if (rc != MN_OK) reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "store read failed: %s", mn_strerror(rc));
    else reply_msg(call, &r.base);
    status_owned_free(&o);
    midnode__get_status_request__free_unpacked(req, NULL);
}

static void do_status_batch(struct mn_node *n, mn_rpc_call *call, const uint8_t *payload, size_t len)
{
    Midnode__GetStatusBatchRequest *req = midnode__get_status_batch_request__unpack(NULL, len, payload);
    if (!req) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "GetStatusBatchRequest does not decode%s", NULL);
        return;
    }
    if (req->n_credential_ids > MN_STATUS_BATCH_MAX) {
        char lim[32];
        snprintf(lim, sizeof lim, "%d", MN_STATUS_BATCH_MAX);
        reply_err(call, MIDNODE__RPC_CODE__RPC_TOO_LARGE, "at most %s credentials per batch", lim);
        midnode__get_status_batch_request__free_unpacked(req, NULL);
        return;
    }
    size_t k = req->n_credential_ids;
    Midnode__GetStatusResponse *rs = calloc(k ? k : 1, sizeof *rs);
    Midnode__GetStatusResponse **ptrs = calloc(k ? k : 1, sizeof *ptrs);
    struct status_owned *os = calloc(k ? k : 1, sizeof *os);
    int rc = (rs && ptrs && os) ? MN_OK : MN_ENOMEM;
    size_t done = 0;
    while (rc == MN_OK && done < k) {
        rc = fill_status(n, &req->credential_ids[done], req->with_proof, &rs[done], &os[done]);
        ptrs[done] = &rs[done];
        done++;
    }
    mn_counter_add(n->m_status_queries, k);
    if (rc == MN_OK) {
        Midnode__GetStatusBatchResponse br = MIDNODE__GET_STATUS_BATCH_RESPONSE__INIT;
        br.n_statuses = k;
        br.statuses = ptrs;
        reply_msg(call, &br.base);
    } else if (rc == MN_EINVAL) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "every credential_id must be 32 bytes%s", NULL);
    } else if (rc == MN_ESTATE) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_UNAVAILABLE, "no committed block to prove against yet%s", NULL);
    } else {
        reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "status read failed: %s", mn_strerror(rc));
    }
    for (size_t i = 0; os && i < done; i++) status_owned_free(&os[i]);
    free(rs);
    free(ptrs);
    free(os);
    midnode__get_status_batch_request__free_unpacked(req, NULL);
}

static void do_chain_info(struct mn_node *n, mn_rpc_call *call)
{
    Midnode__GetChainInfoResponse r = MIDNODE__GET_CHAIN_INFO_RESPONSE__INIT;
    uint8_t root[MN_HASH_LEN];
    mn_ledger_root(n->ledger, root);
    r.chain_id = n->genesis->chain_id;
    r.height = n->height;
    r.time_ms = n->tip_time_ms;
    r.block_hash.data = n->tip_hash;
    r.block_hash.len = n->height ? MN_HASH_LEN : 0;
    r.state_root.data = root;
    r.state_root.len = MN_HASH_LEN;
    r.validators = n->genesis->validator_count;
    r.peers = n->net ? (uint32_t)mn_net_peer_count(n->net) : 0;
    r.node_name = n->cfg.node_name;
    r.is_validator = n->is_validator;
    if (n->cons) {
        mn_cons_status st;
        mn_cons_get_status(n->cons, &st);
        r.round = st.round;
    }
    r.mempool_txs = (uint32_t)mn_mempool_count(n->mempool);
    reply_msg(call, &r.base);
}

static void do_signer(struct mn_node *n, mn_rpc_call *call, const uint8_t *payload, size_t len)
{
    Midnode__GetSignerRequest *req = midnode__get_signer_request__unpack(NULL, len, payload);
    if (!req) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "GetSignerRequest does not decode%s", NULL);
        return;
    }
    const mn_member *m = mn_genesis_member(n->genesis, req->signer);
    if (!m) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_NOT_FOUND, "no member '%s' in genesis", req->signer);
        midnode__get_signer_request__free_unpacked(req, NULL);
        return;
    }
    uint64_t last = 0;
    if (mn_ledger_get_nonce(n->ledger, m->id, &last) != MN_OK) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "store read failed%s", NULL);
        midnode__get_signer_request__free_unpacked(req, NULL);
        return;
    }
    char *roles[3];
    size_t nr = 0;
    if (m->roles & MN_ROLE_VALIDATOR) roles[nr++] = "validator";
    if (m->roles & MN_ROLE_ISSUER) roles[nr++] = "issuer";
    if (m->roles & MN_ROLE_CARRIER) roles[nr++] = "carrier";
    Midnode__GetSignerResponse r = MIDNODE__GET_SIGNER_RESPONSE__INIT;
    r.signer = (char *)m->id;
    r.last_nonce = last;
    r.next_nonce = mn_mempool_signer_next_nonce(n->mempool, m->id, last);
    r.n_roles = nr;
    r.roles = roles;
    reply_msg(call, &r.base);
    midnode__get_signer_request__free_unpacked(req, NULL);
}

static void do_block(struct mn_node *n, mn_rpc_call *call, const uint8_t *payload, size_t len)
{
    Midnode__GetBlockRequest *req = midnode__get_block_request__unpack(NULL, len, payload);
    if (!req) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "GetBlockRequest does not decode%s", NULL);
        return;
    }
    uint64_t h = req->height ? req->height : n->height;
    midnode__get_block_request__free_unpacked(req, NULL);
    char hs[24];
    snprintf(hs, sizeof hs, "%llu", (unsigned long long)h);
    if (h == 0 || h > n->height) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_NOT_FOUND, "no block at height %s", hs);
        return;
    }
    uint8_t *bb = NULL, *cb = NULL;
    size_t bl = 0, cl = 0;
    if (mn_store_get_block(n->store, h, &bb, &bl) != MN_OK || mn_store_get_cert(n->store, h, &cb, &cl) != MN_OK) {
        free(bb);
        reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "block %s unreadable", hs);
        return;
    }
    Midnode__GetBlockResponse r = MIDNODE__GET_BLOCK_RESPONSE__INIT;
    r.block = midnode__block__unpack(NULL, bl, bb);
    r.commit = midnode__commit_certificate__unpack(NULL, cl, cb);
    if (r.block && r.commit) reply_msg(call, &r.base);
    else reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "block %s does not decode", hs);
    if (r.block) midnode__block__free_unpacked(r.block, NULL);
    if (r.commit) midnode__commit_certificate__free_unpacked(r.commit, NULL);
    free(bb);
    free(cb);
}

static void do_tx(struct mn_node *n, mn_rpc_call *call, const uint8_t *payload, size_t len)
{
    Midnode__GetTxRequest *req = midnode__get_tx_request__unpack(NULL, len, payload);
    if (!req || req->tx_hash.len != MN_HASH_LEN) {
        if (req) midnode__get_tx_request__free_unpacked(req, NULL);
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "GetTxRequest needs a 32-byte tx_hash%s", NULL);
        return;
    }
    uint64_t h;
    uint32_t idx;
    Midnode__GetTxResponse r = MIDNODE__GET_TX_RESPONSE__INIT;
    if (mn_store_get_tx_location(n->store, req->tx_hash.data, &h, &idx) == MN_OK) {
        uint8_t *bb = NULL;
        size_t bl = 0;
        Midnode__Block *b = NULL;
        if (mn_store_get_block(n->store, h, &bb, &bl) == MN_OK) b = midnode__block__unpack(NULL, bl, bb);
        free(bb);
        if (b && idx < b->n_txs) {
            r.tx = b->txs[idx];
            r.height = h;
            r.index = idx;
            reply_msg(call, &r.base);
        } else {
            reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "block of the transaction unreadable%s", NULL);
        }
        if (b) midnode__block__free_unpacked(b, NULL);
    } else {
        struct mn_mempool_tx t;
        if (mn_mempool_get(n->mempool, req->tx_hash.data, &t)) {
            r.tx.data = (uint8_t *)t.tx;
            r.tx.len = t.len;
            reply_msg(call, &r.base); /* height 0: pending */
        } else {
            reply_err(call, MIDNODE__RPC_CODE__RPC_NOT_FOUND, "no such transaction%s", NULL);
        }
    }
    midnode__get_tx_request__free_unpacked(req, NULL);
}

static void do_watch(struct mn_node *n, mn_rpc_call *call, const uint8_t *payload, size_t len)
{
    Midnode__WatchStatusChangesRequest *req = midnode__watch_status_changes_request__unpack(NULL, len, payload);
    if (!req) {
        reply_err(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "WatchStatusChangesRequest does not decode%s", NULL);
        return;
    }
    node_watcher *w = calloc(1, sizeof *w);
    if (!w) {
        midnode__watch_status_changes_request__free_unpacked(req, NULL);
        reply_err(call, MIDNODE__RPC_CODE__RPC_INTERNAL, "out of memory%s", NULL);
        return;
    }
    w->node = n;
    w->call = call;
    w->next_height = req->from_height ? req->from_height : n->height + 1;
    midnode__watch_status_changes_request__free_unpacked(req, NULL);
    w->next = n->watchers;
    if (n->watchers) n->watchers->prev = w;
    n->watchers = w;
    n->watcher_count++;
    mn_rpc_call_on_cancel(call, watcher_cancel, w);
    (void)watcher_pump(n, w);
}

void node_rpc_peek(void *ctx, int stage, const char *method, const uint8_t *payload, size_t len)
{
    struct mn_node *n = ctx;
    if (len >= 2 + MN_ID_LEN && payload[0] == 0x0a && payload[1] == MN_ID_LEN &&
        strcmp(method, MN_RPC_GET_STATUS) == 0)
        mn_ledger_prefetch_record(n->ledger, payload + 2, stage);
}

void node_rpc_handler(void *ctx, mn_rpc_call *call, const char *method, const uint8_t *payload, size_t len)
{
    struct mn_node *n = ctx;
    mn_counter_inc(n->m_rpc_requests);
    uint64_t t0 = uv_hrtime();
    if (n->stopping) {
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_UNAVAILABLE, 0, "node stopping", NULL, 0);
        return;
    }
    if (strcmp(method, MN_RPC_SUBMIT_TX) == 0) do_submit(n, call, payload, len);
    else if (strcmp(method, MN_RPC_GET_STATUS) == 0) do_status(n, call, payload, len);
    else if (strcmp(method, MN_RPC_GET_STATUS_BATCH) == 0) do_status_batch(n, call, payload, len);
    else if (strcmp(method, MN_RPC_GET_CHAIN_INFO) == 0) do_chain_info(n, call);
    else if (strcmp(method, MN_RPC_GET_SIGNER) == 0) do_signer(n, call, payload, len);
    else if (strcmp(method, MN_RPC_GET_BLOCK) == 0) do_block(n, call, payload, len);
    else if (strcmp(method, MN_RPC_GET_TX) == 0) do_tx(n, call, payload, len);
    else if (strcmp(method, MN_RPC_WATCH_STATUS_CHANGES) == 0) do_watch(n, call, payload, len);
    else (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_UNKNOWN_METHOD, 0, "unknown method", NULL, 0);
    mn_histogram_observe(n->m_rpc_latency, (uv_hrtime() - t0) / 1000);
}
