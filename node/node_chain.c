/* node_chain.c: the consensus driver (executes the engine's actions), block
 * building and validation, commit, peer messages, and catch-up sync.
 *
 * Safety rules this file keeps:
 *  - a PERSIST action is written synced before any later action runs, so a
 *    signed vote never leaves the node before it is durable;
 *  - a block is judged valid only after every transaction executed and the
 *    resulting state root equals the header's;
 *  - a block from sync is applied only under a commit certificate checked
 *    against genesis validators. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_timing.h"
#include "crypto.h"
#include "log.h"
#include "merkle.h"
#include "cons_pb.h"
#include "node_internal.h"

/* ------------------------------------------------------------ helpers */

static void hex8(char out[17], const uint8_t *h)
{
    mn_hex_encode(out, h, 8);
}

uint64_t node_committed_nonce(void *arg, const char *signer)
{
    struct mn_node *n = arg;
    uint64_t nonce = 0;
    if (mn_ledger_get_nonce(n->ledger, signer, &nonce) != MN_OK) return UINT64_MAX; /* blocks the signer */
    return nonce;
}

static node_peer_state *peer_state(struct mn_node *n, const char *peer)
{
    for (size_t i = 0; i < n->peer_state_count; i++)
        if (strcmp(n->peer_state[i].name, peer) == 0) return &n->peer_state[i];
    return NULL;
}

static void pending_release(node_pending *p)
{
    free(p->block);
    free(p->tx_hashes);
    mn_exec_free(p->exec);
    memset(p, 0, sizeof *p);
}

static node_pending *pending_find(struct mn_node *n, const uint8_t hash[MN_HASH_LEN])
{
    for (int i = 0; i < NODE_PENDING_MAX; i++)
        if (n->pending[i].used && memcmp(n->pending[i].hash, hash, MN_HASH_LEN) == 0) return &n->pending[i];
    return NULL;
}

static node_pending *pending_slot(struct mn_node *n)
{
    for (int i = 0; i < NODE_PENDING_MAX; i++)
        if (!n->pending[i].used) return &n->pending[i];
    /* Full: drop an invalid block first, else the oldest unjudged one. A
     * Byzantine proposer flooding blocks cannot evict more than that. */
    for (int i = 0; i < NODE_PENDING_MAX; i++)
        if (n->pending[i].verdict < 0) {
            pending_release(&n->pending[i]);
            return &n->pending[i];
        }
    return NULL;
}

static void pending_drop_below(struct mn_node *n, uint64_t height)
{
    for (int i = 0; i < NODE_PENDING_MAX; i++)
        if (n->pending[i].used && n->pending[i].height < height) pending_release(&n->pending[i]);
}

/* ------------------------------------------------------------ crypto table */

static void cons_sha256(void *ctx, uint8_t out[MN_HASH_LEN], const uint8_t *data, size_t len)
{
    (void)ctx;
    mn_sha256(out, data, len);
}

static int cons_sign(void *ctx, uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN])
{
    struct mn_node *n = ctx;
    int rc = mn_sign(sig, digest, n->cons_seckey);
    /* Our own precommits come back inside the next block's last_commit. */
    if (rc == MN_OK && n->self_index >= 0) mn_sigcache_add(n->sigcache, sig, digest, n->valset.keys[n->self_index]);
    return rc;
}

/* Every consensus signature (votes, proposals, certificates) goes through
 * the node's cache of signatures already verified: the same bytes are met
 * more than once (see sigcache.h). */
static bool cons_verify(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                        const uint8_t pubkey[MN_PUBKEY_LEN])
{
    struct mn_node *n = ctx;
    return mn_sigcache_verify(n->sigcache, sig, digest, pubkey);
}

static int cert_check(struct mn_node *n, uint64_t height, const uint8_t block_hash[MN_HASH_LEN],
                      const Midnode__CommitCertificate *c, char *err, size_t err_len)
{
    return mn_cert_check_valset_with(&n->valset, height, block_hash, c, cons_verify, n, err, err_len);
}

/* ------------------------------------------------------------ tip */

static int cert_from_bytes(const uint8_t *b, size_t len, Midnode__CommitCertificate **out)
{
    *out = midnode__commit_certificate__unpack(NULL, len, b);
    return *out ? MN_OK : MN_ECORRUPT;
}

int node_load_tip(struct mn_node *n)
{
    n->height = mn_ledger_height(n->ledger);
    free(n->tip_header);
    n->tip_header = NULL;
    n->tip_header_len = 0;
    if (n->tip_cert) midnode__commit_certificate__free_unpacked(n->tip_cert, NULL);
    n->tip_cert = NULL;
    free(n->tip_cert_bytes);
    n->tip_cert_bytes = NULL;
    n->tip_cert_len = 0;
    memset(n->tip_hash, 0, sizeof n->tip_hash);
    n->tip_time_ms = n->genesis->genesis_time_ms;
    n->tip_local_ms = node_mono_ms(n);
    if (n->height == 0) return MN_OK;

    uint8_t *block = NULL, *cert = NULL;
    size_t block_len = 0, cert_len = 0;
    int rc = mn_store_get_block(n->store, n->height, &block, &block_len);
    if (rc != MN_OK) return rc;
    Midnode__Block *b = midnode__block__unpack(NULL, block_len, block);
    free(block);
    if (!b) return MN_ECORRUPT;
    Midnode__BlockHeader *h = midnode__block_header__unpack(NULL, b->header.len, b->header.data);
    rc = MN_OK;
    if (!h || strcmp(h->chain_id, n->genesis->chain_id) != 0 || h->height != n->height ||
        h->validators_hash.len != MN_HASH_LEN ||
        memcmp(h->validators_hash.data, n->genesis->validators_hash, MN_HASH_LEN) != 0) {
        rc = MN_ECORRUPT;
    } else {
        n->tip_time_ms = h->time_ms;
        mn_sha256(n->tip_hash, b->header.data, b->header.len);
        n->tip_header = malloc(b->header.len);
        if (!n->tip_header) rc = MN_ENOMEM;
        else {
            memcpy(n->tip_header, b->header.data, b->header.len);
            n->tip_header_len = b->header.len;
        }
    }
    if (h) midnode__block_header__free_unpacked(h, NULL);
    midnode__block__free_unpacked(b, NULL);
    if (rc != MN_OK) return rc;
    rc = mn_store_get_cert(n->store, n->height, &cert, &cert_len);
    if (rc != MN_OK) return rc;
    rc = cert_from_bytes(cert, cert_len, &n->tip_cert);
    if (rc != MN_OK) {
        free(cert);
        return rc;
    }
    n->tip_cert_bytes = cert;
    n->tip_cert_len = cert_len;
    mn_sha256(n->tip_cert_hash, cert, cert_len);
    return MN_OK;
}

/* ------------------------------------------------------------ sending */

static void broadcast_msg(struct mn_node *n, const Midnode__PeerMessage *m)
{
    if (!n->net) return;
    size_t len = midnode__peer_message__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    midnode__peer_message__pack(m, buf);
    (void)mn_net_broadcast(n->net, buf, len);
    free(buf);
}

static void send_msg(struct mn_node *n, const char *peer, const Midnode__PeerMessage *m)
{
    if (!n->net) return;
    size_t len = midnode__peer_message__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    midnode__peer_message__pack(m, buf);
    int rc = mn_net_send(n->net, peer, buf, len);
    if (rc != MN_OK) LOG_DEBUG("peer_send_failed", "peer=%s reason=%s", peer, mn_strerror(rc));
    free(buf);
}

static void announce_status(struct mn_node *n)
{
    Midnode__StatusAnnounce sa = MIDNODE__STATUS_ANNOUNCE__INIT;
    sa.height = n->height;
    if (n->cons) {
        mn_cons_status st;
        mn_cons_get_status(n->cons, &st);
        sa.round = st.round;
    }
    Midnode__PeerMessage m = MIDNODE__PEER_MESSAGE__INIT;
    m.msg_case = MIDNODE__PEER_MESSAGE__MSG_STATUS;
    m.status = &sa;
    broadcast_msg(n, &m);
}

static void send_proposal(struct mn_node *n, const mn_cons_proposal *p)
{
    node_pending *pb = pending_find(n, p->block_hash);
    if (!pb || !pb->block) {
        char hx[17];
        hex8(hx, p->block_hash);
        LOG_WARN("proposal_without_block", "height=%llu round=%u block=%s",
                 (unsigned long long)p->height, p->round, hx);
        return;
    }
    Midnode__Block *block = midnode__block__unpack(NULL, pb->block_len, pb->block);
    if (!block) return;
    Midnode__Proposal pr;
    mn_cons_proposal_to_pb(&pr, p);
    pr.block = block;
    Midnode__PeerMessage m = MIDNODE__PEER_MESSAGE__INIT;
    m.msg_case = MIDNODE__PEER_MESSAGE__MSG_PROPOSAL;
    m.proposal = &pr;
    broadcast_msg(n, &m);
    midnode__block__free_unpacked(block, NULL);
    /* Out now: the rest of this turn (a commit's synced writes, a batch of
     * signatures to check) would otherwise hold the round back. */
    mn_net_flush(n->net);
}

static void send_vote(struct mn_node *n, const mn_cons_vote *v)
{
    Midnode__Vote pv;
    mn_cons_vote_to_pb(&pv, v);
    Midnode__PeerMessage m = MIDNODE__PEER_MESSAGE__INIT;
    m.msg_case = MIDNODE__PEER_MESSAGE__MSG_VOTE;
    m.vote = &pv;
    broadcast_msg(n, &m);
    mn_net_flush(n->net); /* as a proposal: peers wait on it */
}

/* ------------------------------------------------------------ block checks */

/* Executes a block on top of the committed tip and judges it. Fills *p
 * (block copied) on success. Returns MN_OK when valid; otherwise a code and
 * a reason in why. */
static int judge_block(struct mn_node *n, const uint8_t *bytes, size_t len, node_pending *p, char *why,
                       size_t why_len)
{
    int rc = MN_EINVAL;
    Midnode__Block *b = NULL;
    Midnode__BlockHeader *h = NULL;
    mn_exec *e = NULL;
    uint8_t (*hashes)[MN_HASH_LEN] = NULL;
    uint64_t t0 = node_mono_ms(n);

    if (len > MN_BLOCK_BYTES_MAX) {
        snprintf(why, why_len, "block of %zu bytes over the bound", len);
        goto out;
    }
    b = midnode__block__unpack(NULL, len, bytes);
    if (!b) {
        snprintf(why, why_len, "block does not decode");
        goto out;
    }
    h = midnode__block_header__unpack(NULL, b->header.len, b->header.data);
    if (!h) {
        snprintf(why, why_len, "header does not decode");
        goto out;
    }
    uint64_t height = n->height + 1;
    if (strcmp(h->chain_id, n->genesis->chain_id) != 0) {
        snprintf(why, why_len, "chain id '%s'", h->chain_id);
        goto out;
    }
    if (h->height != height) {
        snprintf(why, why_len, "height %llu, expected %llu", (unsigned long long)h->height,
                 (unsigned long long)height);
        rc = MN_ESTATE;
        goto out;
    }
    bool prev_ok = height == 1 ? h->prev_hash.len == 0
                               : (h->prev_hash.len == MN_HASH_LEN &&
                                  memcmp(h->prev_hash.data, n->tip_hash, MN_HASH_LEN) == 0);
    if (!prev_ok) {
        snprintf(why, why_len, "prev_hash does not name our block %llu", (unsigned long long)n->height);
        goto out;
    }
    if (h->validators_hash.len != MN_HASH_LEN ||
        memcmp(h->validators_hash.data, n->genesis->validators_hash, MN_HASH_LEN) != 0) {
        snprintf(why, why_len, "validators_hash differs from genesis");
        goto out;
    }
    if (h->time_ms <= n->tip_time_ms) {
        snprintf(why, why_len, "time %lld not after the previous block's", (long long)h->time_ms);
        goto out;
    }
    if ((uint64_t)h->time_ms > node_now_ms() + NODE_CLOCK_SKEW_MS) {
        snprintf(why, why_len, "time %lld too far in the future", (long long)h->time_ms);
        goto out;
    }
    const mn_member *prop = mn_genesis_member(n->genesis, h->proposer);
    if (!prop || prop->validator_index < 0) {
        snprintf(why, why_len, "proposer '%s' is not a validator", h->proposer);
        goto out;
    }
    if (height > 1) {
        if (!b->last_commit) {
            snprintf(why, why_len, "no certificate of the previous block");
            goto out;
        }
        size_t cl = midnode__commit_certificate__get_packed_size(b->last_commit);
        uint8_t *cb = malloc(cl ? cl : 1);
        if (!cb) {
            rc = MN_ENOMEM;
            goto out;
        }
        midnode__commit_certificate__pack(b->last_commit, cb);
        /* The certificate we committed our tip with was checked then; only
         * another set of signatures for it costs a check now. */
        bool same_as_ours = n->tip_cert_bytes && n->tip_cert_len == cl && memcmp(n->tip_cert_bytes, cb, cl) == 0;
        char cerr[160];
        if (!same_as_ours &&
            cert_check(n, height - 1, n->tip_hash, b->last_commit, cerr, sizeof cerr) != MN_OK) {
            free(cb);
            snprintf(why, why_len, "last_commit: %s", cerr);
            goto out;
        }
        uint8_t ch[MN_HASH_LEN];
        mn_sha256(ch, cb, cl);
        free(cb);
        if (h->last_commit_hash.len != MN_HASH_LEN || memcmp(h->last_commit_hash.data, ch, MN_HASH_LEN) != 0) {
            snprintf(why, why_len, "last_commit_hash does not match the certificate");
            goto out;
        }
    } else if (b->last_commit || h->last_commit_hash.len != 0) {
        snprintf(why, why_len, "block 1 carries a last commit");
        goto out;
    }
    if (b->n_txs > n->genesis->params.max_block_txs || b->n_txs > MN_BLOCK_TXS_MAX) {
        snprintf(why, why_len, "%zu transactions over the bound", b->n_txs);
        goto out;
    }
    hashes = malloc((b->n_txs ? b->n_txs : 1) * sizeof *hashes);
    if (!hashes) {
        rc = MN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < b->n_txs; i++) mn_sha256(hashes[i], b->txs[i].data, b->txs[i].len);
    uint8_t root[MN_HASH_LEN];
    mn_merkle_root((const uint8_t *)hashes, b->n_txs, root);
    if (h->tx_root.len != MN_HASH_LEN || memcmp(h->tx_root.data, root, MN_HASH_LEN) != 0) {
        snprintf(why, why_len, "tx_root does not match the transactions");
        goto out;
    }
    e = mn_exec_begin(n->ledger, height, h->time_ms);
    if (!e) {
        rc = MN_ENOMEM;
        snprintf(why, why_len, "cannot start execution");
        goto out;
    }
    for (size_t i = 0; i < b->n_txs; i++) {
        char msg[MN_TX_MSG_MAX];
        /* a tx admitted to our mempool had its signature checked then */
        unsigned flags = mn_mempool_contains(n->mempool, hashes[i]) ? MN_EXEC_SIG_CHECKED : 0;
        int code = mn_exec_apply_tx_opts(e, b->txs[i].data, b->txs[i].len, flags, msg, sizeof msg);
        if (code != MIDNODE__TX_CODE__TX_OK) {
            snprintf(why, why_len, "tx %zu refused: %s: %s", i, mn_tx_code_name(code), msg);
            rc = mn_exec_failed(e) ? MN_EIO : MN_EINVAL;
            goto out;
        }
    }
    uint8_t state_root[MN_HASH_LEN];
    if ((rc = mn_exec_finish(e, state_root)) != MN_OK) {
        snprintf(why, why_len, "state root: %s", mn_strerror(rc));
        goto out;
    }
    if (h->state_root.len != MN_HASH_LEN || memcmp(h->state_root.data, state_root, MN_HASH_LEN) != 0) {
        snprintf(why, why_len, "state_root differs from the executed state");
        rc = MN_EINVAL;
        goto out;
    }
    p->block = malloc(len);
    if (!p->block) {
        rc = MN_ENOMEM;
        goto out;
    }
    memcpy(p->block, bytes, len);
    p->block_len = len;
    mn_sha256(p->hash, b->header.data, b->header.len);
    p->height = height;
    p->exec = e;
    e = NULL;
    p->tx_hashes = hashes;
    hashes = NULL;
    p->tx_count = b->n_txs;
    p->verdict = 1;
    p->used = true;
    p->first_seen_ms = t0;
    rc = MN_OK;
    if (n->m_exec_time) mn_histogram_observe(n->m_exec_time, (node_mono_ms(n) - t0) * 1000);
out:
    free(hashes);
    mn_exec_free(e);
    if (h) midnode__block_header__free_unpacked(h, NULL);
    if (b) midnode__block__free_unpacked(b, NULL);
    return rc;
}

/* ------------------------------------------------------------ commit */

/* A synced write that takes this long is logged: consensus waits on it. */
#define NODE_SLOW_DURABLE_WRITE_MS 100

static void note_durable_write(struct mn_node *n, const char *what, uint64_t height, uint64_t t0_ns)
{
    uint64_t us = (uv_hrtime() - t0_ns) / 1000;
    mn_histogram_observe(n->m_durable_write, us);
    if (us >= NODE_SLOW_DURABLE_WRITE_MS * 1000)
        LOG_WARN("slow_durable_write", "what=%s height=%llu ms=%llu", what, (unsigned long long)height,
                 (unsigned long long)(us / 1000));
}

static int commit_pending(struct mn_node *n, node_pending *p, const Midnode__CommitCertificate *cert)
{
    size_t cl = midnode__commit_certificate__get_packed_size(cert);
    uint8_t *cb = malloc(cl ? cl : 1);
    if (!cb) return MN_ENOMEM;
    midnode__commit_certificate__pack(cert, cb);
    uint64_t t0 = uv_hrtime();
    int rc = mn_exec_commit(p->exec, p->block, p->block_len, cb, cl);
    free(cb);
    if (rc != MN_OK) return rc;
    note_durable_write(n, "commit", p->height, t0);

    uint64_t prev_local = n->tip_local_ms;
    rc = node_load_tip(n);
    if (rc != MN_OK) return rc;
    mn_counter_inc(n->m_blocks);
    mn_counter_add(n->m_txs_committed, p->tx_count);
    mn_gauge_set(n->m_height, (double)n->height);
    mn_histogram_observe(n->m_block_interval, (n->tip_local_ms - prev_local) * 1000);
    if (p->first_seen_ms && n->tip_local_ms >= p->first_seen_ms)
        mn_histogram_observe(n->m_commit_latency, (n->tip_local_ms - p->first_seen_ms) * 1000);
    uint64_t wall = node_now_ms();
    if (wall >= (uint64_t)n->tip_time_ms) mn_histogram_observe(n->m_propagation, (wall - (uint64_t)n->tip_time_ms) * 1000);
    char hx[17];
    hex8(hx, p->hash);
    LOG_INFO("block_committed", "height=%llu txs=%zu block=%s", (unsigned long long)n->height, p->tx_count, hx);

    (void)mn_mempool_remove(n->mempool, (const uint8_t(*)[MN_HASH_LEN])p->tx_hashes, p->tx_count);
    if (p->tx_count > 0) n->mempool_stalled = false;
    (void)mn_mempool_remove_stale(n->mempool, node_committed_nonce, n);
    node_rpc_after_commit(n, p);
    /* Old heights' records are ignored at start, so they may stay a while:
     * pruning every block cost a scan and a synced write per block. */
    if (n->is_validator && n->height > 2 && n->height % NODE_VOTELOG_PRUNE_EVERY == 0) {
        if (mn_store_votelog_prune(n->store, n->height) != MN_OK)
            LOG_WARN("votelog_prune_failed", "height=%llu", (unsigned long long)n->height);
    }
    pending_release(p);
    pending_drop_below(n, n->height + 1);
    announce_status(n);
    return MN_OK;
}

/* ------------------------------------------------------------ engine actions */

static void set_cons_timer(struct mn_node *n, int kind, uint64_t height, uint32_t round, uint32_t ms)
{
    if (kind < 1 || kind >= NODE_CONS_TIMERS) return;
    n->cons_timer_arg[kind].height = height;
    n->cons_timer_arg[kind].round = round;
    if (uv_timer_start(&n->cons_timers[kind], node_on_cons_timer, ms, 0) != 0)
        node_fatal(n, MN_EIO, "cannot arm a consensus timer");
}

static void schedule_build(struct mn_node *n)
{
    if (!n->need_block) return;
    const mn_consensus_params *pp = &n->genesis->params;
    mn_build_clock clock = {
        .now_ms = node_mono_ms(n), .mempool_since_ms = n->mempool_since_ms, .tip_local_ms = n->tip_local_ms};
    size_t ready = n->mempool_stalled ? 0 : mn_mempool_count(n->mempool);
    uint64_t delay = mn_build_delay_ms(&clock, n->need_round > 0, ready,
                                       pp->batch_interval_ms, pp->max_block_interval_ms);
    if (uv_timer_start(&n->build_timer, node_on_build_timer, delay, 0) != 0)
        node_fatal(n, MN_EIO, "cannot arm the build timer");
}

static void drive(struct mn_node *n);
static void gossip_flush(struct mn_node *n);
static void future_replay(struct mn_node *n);

/* The vote-log records of one run of consecutive PERSIST actions, written
 * in one synced write before the next action of the queue executes (cons.h:
 * a PERSIST must be durable before any LATER action, so records in a row
 * may share a sync). */
#define VOTELOG_QUEUE_MAX 16
#define VOTELOG_RECORD_MAX 256

typedef struct votelog_queue {
    size_t count;
    mn_store_votelog_entry entry[VOTELOG_QUEUE_MAX]; /* entry[i].data: bytes[i] */
    uint8_t bytes[VOTELOG_QUEUE_MAX][VOTELOG_RECORD_MAX];
} votelog_queue;

static void votelog_flush(struct mn_node *n, votelog_queue *q)
{
    if (q->count == 0) return;
    uint64_t t0 = uv_hrtime();
    int rc = mn_store_votelog_append(n->store, q->entry, q->count);
    if (rc != MN_OK) node_fatal(n, rc, "cannot make a signed vote durable");
    note_durable_write(n, "vote", q->entry[q->count - 1].height, t0);
    q->count = 0;
}

static void votelog_queue_record(struct mn_node *n, votelog_queue *q, const mn_cons_record *r)
{
    Midnode__SignedRecord sr;
    mn_cons_record_to_pb(&sr, r);
    size_t len = midnode__signed_record__get_packed_size(&sr);
    if (len > VOTELOG_RECORD_MAX) {
        node_fatal(n, MN_ETOOBIG, "vote log record too large");
        return;
    }
    if (q->count == VOTELOG_QUEUE_MAX) votelog_flush(n, q);
    midnode__signed_record__pack(&sr, q->bytes[q->count]);
    q->entry[q->count] = (mn_store_votelog_entry){.height = r->height, .data = q->bytes[q->count], .len = len};
    q->count++;
}

static void on_commit_action(struct mn_node *n, const mn_cons_action *a)
{
    node_pending *p = pending_find(n, a->u.commit.block_hash);
    if (!p || p->verdict != 1 || !p->exec || p->height != n->height + 1) {
        /* The engine decided a block we cannot apply here: fetch it. */
        LOG_WARN("commit_without_block", "height=%llu action=sync", (unsigned long long)a->u.commit.height);
        n->behind = true;
        return;
    }
    mn_cons_cert_pb cert;
    int rc = commit_pending(n, p, mn_cons_cert_to_pb(&cert, a->u.commit.cert));
    if (rc != MN_OK) node_fatal(n, rc, "cannot commit a decided block");
}

static void on_evidence(struct mn_node *n, const mn_cons_action *a)
{
    Midnode__Vote v[2];
    const mn_cons_vote *src[2] = {&a->u.evidence.first, &a->u.evidence.second};
    for (int i = 0; i < 2; i++) mn_cons_vote_to_pb(&v[i], src[i]);
    Midnode__Evidence ev = MIDNODE__EVIDENCE__INIT;
    ev.first = &v[0];
    ev.second = &v[1];
    uint8_t buf[512];
    size_t len = midnode__evidence__get_packed_size(&ev);
    if (len <= sizeof buf) {
        midnode__evidence__pack(&ev, buf);
        if (mn_store_evidence_put(n->store, buf, len) != MN_OK) LOG_WARN("evidence_store_failed", "%s", "");
    }
    mn_counter_inc(n->m_evidence);
    const mn_member *m = mn_genesis_validator(n->genesis, src[0]->validator_index);
    LOG_WARN("equivocation", "validator=%s height=%llu round=%u type=%s", m ? m->id : "?",
             (unsigned long long)src[0]->height, src[0]->round,
             src[0]->type == MN_CONS_PREVOTE ? "prevote" : "precommit");
}

/* Runs every queued action in order; verdicts the engine asks for are fed
 * back after the queue is empty. */
static void drive(struct mn_node *n)
{
    if (!n->cons) return;
    for (int rounds = 0; rounds < 64 && !n->stopping; rounds++) {
        uint8_t verdict_hash[8][MN_HASH_LEN];
        uint64_t verdict_height[8];
        bool verdict_valid[8];
        int verdicts = 0;
        mn_cons_action a;
        /* empty whenever a handler below runs, so a nested drive() cannot
         * execute an action ahead of a record queued here */
        votelog_queue vq;
        vq.count = 0; /* the rest is filled as records come */
        while (!n->stopping && mn_cons_next_action(n->cons, &a)) {
            if (a.kind == MN_CONS_PERSIST) {
                votelog_queue_record(n, &vq, &a.u.record);
                continue;
            }
            votelog_flush(n, &vq);
            if (n->stopping) break;
            switch (a.kind) {
            case MN_CONS_SEND_PROPOSAL: send_proposal(n, &a.u.proposal); break;
            case MN_CONS_SEND_VOTE: send_vote(n, &a.u.vote); break;
            case MN_CONS_SET_TIMER:
                set_cons_timer(n, a.u.timer.kind, a.u.timer.height, a.u.timer.round, a.u.timer.ms);
                break;
            case MN_CONS_NEED_BLOCK:
                n->need_block = true;
                n->need_height = a.u.need.height;
                n->need_round = a.u.need.round;
                schedule_build(n);
                break;
            case MN_CONS_NEED_VERDICT: {
                node_pending *p = pending_find(n, a.u.need.block_hash);
                if (p && p->verdict != 0 && verdicts < 8) {
                    memcpy(verdict_hash[verdicts], a.u.need.block_hash, MN_HASH_LEN);
                    verdict_height[verdicts] = a.u.need.height;
                    verdict_valid[verdicts] = p->verdict > 0;
                    verdicts++;
                }
                /* unknown block: the verdict follows when its proposal arrives */
                break;
            }
            case MN_CONS_COMMIT: on_commit_action(n, &a); break;
            case MN_CONS_EVIDENCE: on_evidence(n, &a); break;
            default: LOG_WARN("unknown_action", "kind=%d", a.kind); break;
            }
        }
        votelog_flush(n, &vq);
        if (verdicts == 0) break;
        for (int i = 0; i < verdicts; i++)
            (void)mn_cons_block_verdict(n->cons, verdict_height[i], verdict_hash[i], verdict_valid[i]);
    }
    mn_cons_status st;
    mn_cons_get_status(n->cons, &st);
    mn_gauge_set(n->m_round, st.round);
}

void node_on_cons_timer(uv_timer_t *t)
{
    struct mn_node *n = t->data;
    int kind = (int)(t - n->cons_timers);
    if (!n->cons || n->stopping) return;
    (void)mn_cons_on_timeout(n->cons, kind, n->cons_timer_arg[kind].height, n->cons_timer_arg[kind].round);
    drive(n);
    future_replay(n);
}

/* ------------------------------------------------------------ building */

struct build_ctx {
    mn_exec *e;
    const uint8_t **txs;
    size_t *lens;
    size_t count, cap, bytes;
    uint8_t (*drop)[MN_HASH_LEN];
    size_t drops;
};

static bool build_take(void *arg, const struct mn_mempool_tx *tx)
{
    struct build_ctx *b = arg;
    char msg[MN_TX_MSG_MAX];
    int code = mn_exec_apply_tx_opts(b->e, tx->tx, tx->len, MN_EXEC_SIG_CHECKED, msg, sizeof msg);
    if (mn_exec_failed(b->e)) return false;
    if (code == MIDNODE__TX_CODE__TX_OK) {
        if (b->count < b->cap) {
            b->txs[b->count] = tx->tx;
            b->lens[b->count] = tx->len;
            b->count++;
            b->bytes += tx->len;
        }
    } else if (b->drops < b->cap) {
        memcpy(b->drop[b->drops++], tx->hash, MN_HASH_LEN);
        char hx[17];
        hex8(hx, tx->hash);
        LOG_INFO("tx_dropped", "tx=%s signer=%s code=%s reason=\"%s\"", hx, tx->signer, mn_tx_code_name(code), msg);
    }
    return b->count < b->cap;
}

static int build_block(struct mn_node *n, uint8_t hash_out[MN_HASH_LEN])
{
    const mn_consensus_params *pp = &n->genesis->params;
    uint64_t height = n->height + 1;
    int64_t now = (int64_t)node_now_ms();
    int64_t time_ms = now > n->tip_time_ms ? now : n->tip_time_ms + 1;
    size_t cap = pp->max_block_txs ? pp->max_block_txs : 1;
    if (cap > MN_BLOCK_TXS_MAX) cap = MN_BLOCK_TXS_MAX;

    struct build_ctx b = {.cap = cap};
    b.txs = calloc(cap, sizeof *b.txs);
    b.lens = calloc(cap, sizeof *b.lens);
    b.drop = calloc(cap, sizeof *b.drop);
    b.e = mn_exec_begin(n->ledger, height, time_ms);
    int rc = MN_ENOMEM;
    uint8_t *block_bytes = NULL;
    if (!b.txs || !b.lens || !b.drop || !b.e) goto out;
    (void)mn_mempool_take(n->mempool, cap, MN_BLOCK_BYTES_MAX - 65536, node_committed_nonce, n, build_take, &b);
    n->mempool_stalled = b.count == 0 && mn_mempool_count(n->mempool) > 0;
    if (mn_exec_failed(b.e)) {
        rc = MN_EIO;
        goto out;
    }
    if (b.drops > 0) {
        /* Refused transactions took tx indexes: execute the chosen ones
         * again so the proposer's state is exactly what validators compute. */
        (void)mn_mempool_remove(n->mempool, (const uint8_t(*)[MN_HASH_LEN])b.drop, b.drops);
        mn_exec_free(b.e);
        b.e = mn_exec_begin(n->ledger, height, time_ms);
        if (!b.e) goto out;
        for (size_t i = 0; i < b.count; i++) {
            char msg[MN_TX_MSG_MAX];
            if (mn_exec_apply_tx_opts(b.e, b.txs[i], b.lens[i], MN_EXEC_SIG_CHECKED, msg, sizeof msg) !=
                MIDNODE__TX_CODE__TX_OK) {
                rc = MN_ESTATE;
                LOG_ERROR("build_replay_failed", "reason=\"%s\"", msg);
                goto out;
            }
        }
    }
    uint8_t state_root[MN_HASH_LEN];
    if ((rc = mn_exec_finish(b.e, state_root)) != MN_OK) goto out;

    uint8_t (*hashes)[MN_HASH_LEN] = malloc((b.count ? b.count : 1) * sizeof *hashes);
    if (!hashes) {
        rc = MN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < b.count; i++) mn_sha256(hashes[i], b.txs[i], b.lens[i]);
    uint8_t tx_root[MN_HASH_LEN];
    mn_merkle_root((const uint8_t *)hashes, b.count, tx_root);

    Midnode__BlockHeader h = MIDNODE__BLOCK_HEADER__INIT;
    h.chain_id = n->genesis->chain_id;
    h.height = height;
    h.time_ms = time_ms;
    if (height > 1) {
        h.prev_hash.data = n->tip_hash;
        h.prev_hash.len = MN_HASH_LEN;
    }
    h.tx_root.data = tx_root;
    h.tx_root.len = MN_HASH_LEN;
    h.state_root.data = state_root;
    h.state_root.len = MN_HASH_LEN;
    h.proposer = n->cfg.member_id;
    h.validators_hash.data = n->genesis->validators_hash;
    h.validators_hash.len = MN_HASH_LEN;
    if (height > 1) {
        if (!n->tip_cert) {
            free(hashes);
            rc = MN_ESTATE;
            goto out;
        }
        h.last_commit_hash.data = n->tip_cert_hash;
        h.last_commit_hash.len = MN_HASH_LEN;
    }
    size_t hl = midnode__block_header__get_packed_size(&h);
    uint8_t *hb = malloc(hl);
    ProtobufCBinaryData *txs = calloc(b.count ? b.count : 1, sizeof *txs);
    if (!hb || !txs) {
        free(hb);
        free(txs);
        free(hashes);
        goto out;
    }
    midnode__block_header__pack(&h, hb);
    for (size_t i = 0; i < b.count; i++) {
        txs[i].data = (uint8_t *)b.txs[i];
        txs[i].len = b.lens[i];
    }
    Midnode__Block blk = MIDNODE__BLOCK__INIT;
    blk.header.data = hb;
    blk.header.len = hl;
    blk.n_txs = b.count;
    blk.txs = txs;
    blk.last_commit = height > 1 ? n->tip_cert : NULL;
    size_t bl = midnode__block__get_packed_size(&blk);
    block_bytes = malloc(bl);
    if (!block_bytes) {
        free(hb);
        free(txs);
        free(hashes);
        goto out;
    }
    midnode__block__pack(&blk, block_bytes);
    node_pending *p = pending_slot(n);
    if (!p) {
        free(hb);
        free(txs);
        free(hashes);
        rc = MN_EAGAIN;
        goto out;
    }
    memset(p, 0, sizeof *p);
    p->used = true;
    mn_sha256(p->hash, hb, hl);
    memcpy(hash_out, p->hash, MN_HASH_LEN);
    p->height = height;
    p->block = block_bytes;
    block_bytes = NULL;
    p->block_len = bl;
    p->verdict = 1;
    p->exec = b.e;
    b.e = NULL;
    p->tx_hashes = hashes;
    p->tx_count = b.count;
    p->first_seen_ms = node_mono_ms(n);
    free(hb);
    free(txs);
    rc = MN_OK;
out:
    free(block_bytes);
    mn_exec_free(b.e);
    free(b.txs);
    free(b.lens);
    free(b.drop);
    return rc;
}

void node_on_build_timer(uv_timer_t *t)
{
    struct mn_node *n = t->data;
    if (!n->need_block || !n->cons || n->stopping) return;
    if (n->need_height != n->height + 1) {
        n->need_block = false;
        return;
    }
    /* Peers get the block's transactions before the proposal (one ordered
     * link per peer), so they admit them through gossip, verifying each
     * signature once, and execute the proposal on them without checking the
     * signatures again. Sent after the proposal, a tx would be verified
     * twice: in the block, and on admission while the block is pending. */
    gossip_flush(n);
    uint8_t hash[MN_HASH_LEN];
    int rc = build_block(n, hash);
    if (rc != MN_OK) {
        LOG_ERROR("build_failed", "height=%llu reason=%s", (unsigned long long)n->need_height, mn_strerror(rc));
        if (rc == MN_EIO) node_fatal(n, rc, "store failed while building a block");
        return;
    }
    n->need_block = false;
    rc = mn_cons_propose_block(n->cons, n->need_height, n->need_round, hash);
    if (rc != MN_OK) LOG_DEBUG("propose_stale", "height=%llu round=%u", (unsigned long long)n->need_height, n->need_round);
    drive(n);
}

void node_tx_admitted(struct mn_node *n)
{
    /* The first transaction, or one that may close a gap, starts a batch. */
    bool starts_batch = mn_mempool_count(n->mempool) == 1 || n->mempool_stalled;
    if (starts_batch) n->mempool_since_ms = node_mono_ms(n);
    n->mempool_stalled = false;
    if (!uv_is_active((uv_handle_t *)&n->gossip_timer) && !n->stopping)
        (void)uv_timer_start(&n->gossip_timer, node_on_gossip_timer, NODE_GOSSIP_DELAY_MS, 0);
    if (n->need_block && n->need_round == 0 && starts_batch) schedule_build(n);
}

void node_on_gossip_timer(uv_timer_t *t)
{
    gossip_flush(t->data);
}

/* Sends every admitted transaction not yet gossiped. */
static void gossip_flush(struct mn_node *n)
{
    if (n->stopping || !n->net) return;
    ProtobufCBinaryData *txs = calloc(NODE_GOSSIP_BATCH, sizeof *txs);
    if (!txs) return;
    for (;;) {
        size_t count = 0, bytes = 0;
        struct mn_mempool_tx tx;
        /* the views stay valid across gossip_next calls (mempool.h) */
        while (count < NODE_GOSSIP_BATCH && bytes < MN_PEER_FRAME_BYTES_MAX / 2 && mn_mempool_gossip_next(n->mempool, &tx)) {
            txs[count].data = (uint8_t *)tx.tx;
            txs[count].len = tx.len;
            bytes += tx.len;
            count++;
        }
        if (count > 0) {
            Midnode__TxBatch tb = MIDNODE__TX_BATCH__INIT;
            tb.n_txs = count;
            tb.txs = txs;
            Midnode__PeerMessage m = MIDNODE__PEER_MESSAGE__INIT;
            m.msg_case = MIDNODE__PEER_MESSAGE__MSG_TXS;
            m.txs = &tb;
            broadcast_msg(n, &m);
        }
        if (count < NODE_GOSSIP_BATCH) break;
    }
    free(txs);
}

/* ------------------------------------------------------------ sync */

static void request_blocks(struct mn_node *n)
{
    uint64_t now = node_mono_ms(n);
    if (now < n->sync_inflight_until_ms) return;
    node_peer_state *best = NULL;
    for (size_t i = 0; i < n->peer_state_count; i++) {
        node_peer_state *ps = &n->peer_state[i];
        if (!ps->hello_ok || ps->refused) continue;
        if (ps->height > n->height && (!best || ps->height > best->height)) best = ps;
    }
    if (!best) return;
    Midnode__BlocksRequest br = MIDNODE__BLOCKS_REQUEST__INIT;
    br.from_height = n->height + 1;
    br.max_blocks = NODE_SYNC_BATCH;
    Midnode__PeerMessage m = MIDNODE__PEER_MESSAGE__INIT;
    m.msg_case = MIDNODE__PEER_MESSAGE__MSG_BLOCKS_REQUEST;
    m.blocks_request = &br;
    send_msg(n, best->name, &m);
    n->sync_inflight_until_ms = now + 2000;
    LOG_DEBUG("sync_request", "peer=%s from=%llu peer_height=%llu", best->name,
              (unsigned long long)br.from_height, (unsigned long long)best->height);
}

static void serve_blocks(struct mn_node *n, const char *peer, const Midnode__BlocksRequest *br)
{
    uint32_t max = br->max_blocks;
    if (max == 0 || max > MN_SYNC_BLOCKS_MAX) max = MN_SYNC_BLOCKS_MAX;
    if (br->from_height == 0 || br->from_height > n->height) return;
    Midnode__CommittedBlock *items = calloc(max, sizeof *items);
    Midnode__CommittedBlock **ptrs = calloc(max, sizeof *ptrs);
    size_t count = 0, bytes = 0;
    if (!items || !ptrs) goto out;
    for (uint64_t h = br->from_height; h <= n->height && count < max && bytes < NODE_SYNC_RESPONSE_BYTES; h++) {
        uint8_t *blk = NULL, *cert = NULL;
        size_t bl = 0, cl = 0;
        if (mn_store_get_block(n->store, h, &blk, &bl) != MN_OK) break;
        if (mn_store_get_cert(n->store, h, &cert, &cl) != MN_OK) {
            free(blk);
            break;
        }
        midnode__committed_block__init(&items[count]);
        items[count].block = midnode__block__unpack(NULL, bl, blk);
        items[count].commit = midnode__commit_certificate__unpack(NULL, cl, cert);
        free(blk);
        free(cert);
        if (!items[count].block || !items[count].commit) {
            if (items[count].block) midnode__block__free_unpacked(items[count].block, NULL);
            if (items[count].commit) midnode__commit_certificate__free_unpacked(items[count].commit, NULL);
            break;
        }
        ptrs[count] = &items[count];
        bytes += bl + cl;
        count++;
    }
    if (count > 0) {
        Midnode__BlocksResponse resp = MIDNODE__BLOCKS_RESPONSE__INIT;
        resp.n_blocks = count;
        resp.blocks = ptrs;
        Midnode__PeerMessage m = MIDNODE__PEER_MESSAGE__INIT;
        m.msg_case = MIDNODE__PEER_MESSAGE__MSG_BLOCKS_RESPONSE;
        m.blocks_response = &resp;
        send_msg(n, peer, &m);
    }
out:
    for (size_t i = 0; i < count; i++) {
        midnode__block__free_unpacked(items[i].block, NULL);
        midnode__commit_certificate__free_unpacked(items[i].commit, NULL);
    }
    free(items);
    free(ptrs);
}

/* Applies one block received with its certificate. Returns MN_OK when it
 * committed, MN_ESTATE when it is not the next height. */
static int apply_synced(struct mn_node *n, const char *peer, const Midnode__CommittedBlock *cb)
{
    if (!cb->block || !cb->commit) return MN_EINVAL;
    Midnode__BlockHeader *h = midnode__block_header__unpack(NULL, cb->block->header.len, cb->block->header.data);
    if (!h) return MN_EINVAL;
    uint64_t height = h->height;
    midnode__block_header__free_unpacked(h, NULL);
    if (height != n->height + 1) return MN_ESTATE;
    uint8_t hash[MN_HASH_LEN];
    mn_sha256(hash, cb->block->header.data, cb->block->header.len);
    char cerr[160];
    if (cert_check(n, height, hash, cb->commit, cerr, sizeof cerr) != MN_OK) {
        LOG_WARN("sync_bad_certificate", "peer=%s height=%llu reason=\"%s\"", peer, (unsigned long long)height, cerr);
        mn_counter_inc(n->m_peer_msgs_bad);
        return MN_ECRYPTO;
    }
    node_pending *p = pending_find(n, hash);
    if (!p || p->verdict != 1 || !p->exec) {
        if (p) pending_release(p);
        size_t bl = midnode__block__get_packed_size(cb->block);
        uint8_t *bb = malloc(bl ? bl : 1);
        if (!bb) return MN_ENOMEM;
        midnode__block__pack(cb->block, bb);
        p = pending_slot(n);
        if (!p) {
            free(bb);
            return MN_EAGAIN;
        }
        memset(p, 0, sizeof *p);
        char why[256];
        int rc = judge_block(n, bb, bl, p, why, sizeof why);
        free(bb);
        if (rc != MN_OK) {
            /* A certified block that does not execute here means our state
             * differs from the quorum's: stop rather than diverge. */
            LOG_ERROR("sync_block_invalid", "peer=%s height=%llu reason=\"%s\"", peer, (unsigned long long)height, why);
            if (p->used) pending_release(p);
            if (rc == MN_EIO || rc == MN_EINVAL) node_fatal(n, MN_ECORRUPT, "a certified block does not execute");
            return rc;
        }
    }
    int rc = commit_pending(n, p, cb->commit);
    if (rc != MN_OK) {
        node_fatal(n, rc, "cannot commit a synced block");
        return rc;
    }
    mn_counter_inc(n->m_sync_blocks);
    return MN_OK;
}

static void on_blocks_response(struct mn_node *n, const char *peer, const Midnode__BlocksResponse *r)
{
    size_t applied = 0;
    for (size_t i = 0; i < r->n_blocks && !n->stopping; i++) {
        int rc = apply_synced(n, peer, r->blocks[i]);
        if (rc == MN_ESTATE) continue;
        if (rc != MN_OK) break;
        applied++;
    }
    n->sync_inflight_until_ms = 0;
    if (applied > 0) {
        LOG_INFO("synced", "peer=%s blocks=%zu height=%llu", peer, applied, (unsigned long long)n->height);
        if (n->cons) {
            mn_cons_status st;
            mn_cons_get_status(n->cons, &st);
            if (st.height <= n->height) {
                n->need_block = false;
                if (mn_cons_skip_to(n->cons, n->height + 1) == MN_OK) drive(n);
            }
        }
        request_blocks(n);
    }
}

/* ------------------------------------------------------------ peer messages */

/* Keeps a proposal for the height after the one being decided (see
 * futureprop.h); judged by future_replay when this node gets there. */
static void future_keep(struct mn_node *n, const char *peer, const Midnode__Proposal *pp)
{
    size_t len = midnode__proposal__get_packed_size(pp);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes) return;
    midnode__proposal__pack(pp, bytes);
    int rc = mn_futureprop_keep(&n->future, peer, pp->height, bytes, len);
    if (rc != MN_OK) {
        LOG_DEBUG("proposal_not_kept", "peer=%s height=%llu reason=%s", peer, (unsigned long long)pp->height,
                  mn_strerror(rc));
        free(bytes);
    }
}

static void on_proposal_msg(struct mn_node *n, const char *peer, const Midnode__Proposal *pp);

/* Judges the kept proposals for the height now being decided. Runs after a
 * message or a timer has been handled, not inside drive(). */
static void future_replay(struct mn_node *n)
{
    char peer[MN_MEMBER_ID_MAX + 1];
    uint8_t *bytes;
    size_t len;
    while (!n->stopping && mn_futureprop_take(&n->future, n->height + 1, peer, &bytes, &len)) {
        Midnode__Proposal *pp = midnode__proposal__unpack(NULL, len, bytes);
        free(bytes);
        if (!pp) continue;
        mn_counter_inc(n->m_proposals_deferred);
        on_proposal_msg(n, peer, pp);
        midnode__proposal__free_unpacked(pp, NULL);
    }
}

static void on_proposal_msg(struct mn_node *n, const char *peer, const Midnode__Proposal *pp)
{
    if (!n->cons) return;
    mn_cons_proposal p;
    if (!pp->block || mn_cons_proposal_from_pb(&p, pp) != MN_OK) {
        mn_counter_inc(n->m_peer_msgs_bad);
        return;
    }
    if (pp->height > n->height + 1) {
        n->behind = true;
        if (pp->height == n->height + 2) future_keep(n, peer, pp);
        return;
    }
    if (pp->height <= n->height) return;
    uint8_t header_hash[MN_HASH_LEN];
    mn_sha256(header_hash, pp->block->header.data, pp->block->header.len);
    if (memcmp(header_hash, p.block_hash, MN_HASH_LEN) != 0) {
        LOG_WARN("proposal_refused", "peer=%s reason=\"block hash does not match its header\"", peer);
        mn_counter_inc(n->m_peer_msgs_bad);
        return;
    }
    /* Check the proposer's signature before spending execution on it. */
    uint8_t digest[MN_HASH_LEN];
    mn_cons_crypto cc = {.ctx = n, .sha256 = cons_sha256, .sign = cons_sign, .verify = cons_verify};
    if (p.proposer_index >= n->genesis->validator_count ||
        p.proposer_index != mn_cons_proposer(p.height, p.round, n->genesis->validator_count) ||
        mn_cons_proposal_digest(&cc, n->genesis->chain_id, &p, digest) != MN_OK ||
        !cons_verify(n, p.sig, digest, n->valset.keys[p.proposer_index])) {
        LOG_WARN("proposal_refused", "peer=%s height=%llu round=%u reason=\"bad proposer or signature\"", peer,
                 (unsigned long long)p.height, p.round);
        mn_counter_inc(n->m_peer_msgs_bad);
        return;
    }
    if (!pending_find(n, p.block_hash)) {
        node_pending *slot = pending_slot(n);
        if (!slot) {
            LOG_WARN("proposal_dropped", "reason=\"pending blocks full\"%s", "");
            return;
        }
        size_t bl = midnode__block__get_packed_size(pp->block);
        uint8_t *bb = malloc(bl ? bl : 1);
        if (!bb) return;
        midnode__block__pack(pp->block, bb);
        memset(slot, 0, sizeof *slot);
        char why[256] = "";
        int rc = judge_block(n, bb, bl, slot, why, sizeof why);
        if (rc != MN_OK) {
            if (slot->used) pending_release(slot);
            if (rc == MN_EIO) {
                free(bb);
                node_fatal(n, rc, "store failed while executing a proposal");
                return;
            }
            if (rc == MN_ESTATE) {
                /* Not the height after our tip: we are behind, which says
                 * nothing about the block. No verdict; sync, and judge it
                 * when the proposal is resent. */
                free(bb);
                n->behind = true;
                request_blocks(n);
                return;
            }
            /* remember the refusal so the engine gets its verdict */
            slot->used = true;
            slot->verdict = -1;
            slot->height = p.height;
            memcpy(slot->hash, p.block_hash, MN_HASH_LEN);
            mn_counter_inc(n->m_invalid_proposals);
            char hx[17];
            hex8(hx, p.block_hash);
            LOG_WARN("proposal_invalid", "peer=%s height=%llu round=%u block=%s reason=\"%s\"", peer,
                     (unsigned long long)p.height, p.round, hx, why);
        }
        free(bb);
    }
    int rc = mn_cons_on_proposal(n->cons, &p);
    if (rc == MN_EAGAIN) n->behind = true;
    drive(n);
    node_pending *pb = pending_find(n, p.block_hash);
    if (pb && pb->verdict != 0) {
        (void)mn_cons_block_verdict(n->cons, p.height, p.block_hash, pb->verdict > 0);
        drive(n);
    }
}

static void on_hello(struct mn_node *n, const char *peer, const Midnode__Hello *h)
{
    node_peer_state *ps = peer_state(n, peer);
    if (!ps) return;
    if (strcmp(h->chain_id, n->genesis->chain_id) != 0 || h->genesis_hash.len != MN_HASH_LEN ||
        memcmp(h->genesis_hash.data, n->genesis->genesis_hash, MN_HASH_LEN) != 0) {
        if (!ps->refused)
            LOG_ERROR("peer_wrong_chain", "peer=%s chain=%s reason=\"genesis differs from ours; ignoring it\"", peer,
                      h->chain_id);
        ps->refused = true;
        return;
    }
    ps->hello_ok = true;
    ps->refused = false;
    ps->height = h->height;
    if (h->height > n->height) request_blocks(n);
}

void node_on_peer_message(void *ctx, const char *peer, const uint8_t *frame, size_t len)
{
    struct mn_node *n = ctx;
    if (n->stopping) return;
    Midnode__PeerMessage *m = midnode__peer_message__unpack(NULL, len, frame);
    if (!m) {
        mn_counter_inc(n->m_peer_msgs_bad);
        LOG_WARN("peer_message_refused", "peer=%s reason=\"does not decode\" bytes=%zu", peer, len);
        return;
    }
    node_peer_state *ps = peer_state(n, peer);
    if (m->msg_case == MIDNODE__PEER_MESSAGE__MSG_HELLO) {
        on_hello(n, peer, m->hello);
        goto out;
    }
    if (!ps || !ps->hello_ok || ps->refused) goto out;
    switch (m->msg_case) {
    case MIDNODE__PEER_MESSAGE__MSG_PROPOSAL: on_proposal_msg(n, peer, m->proposal); break;
    case MIDNODE__PEER_MESSAGE__MSG_VOTE: {
        mn_cons_vote v;
        if (!n->cons) break;
        if (mn_cons_vote_from_pb(&v, m->vote) != MN_OK) {
            mn_counter_inc(n->m_peer_msgs_bad);
            break;
        }
        if (v.height <= n->height) break;
        int rc = mn_cons_on_vote(n->cons, &v);
        if (rc == MN_EAGAIN) n->behind = true;
        drive(n);
        break;
    }
    case MIDNODE__PEER_MESSAGE__MSG_TXS:
        for (size_t i = 0; i < m->txs->n_txs && i < NODE_GOSSIP_BATCH; i++) {
            uint8_t hash[MN_HASH_LEN];
            char msg[MN_TX_MSG_MAX];
            (void)node_admit_tx(n, m->txs->txs[i].data, m->txs->txs[i].len, hash, msg, sizeof msg, true);
        }
        break;
    case MIDNODE__PEER_MESSAGE__MSG_BLOCKS_REQUEST: serve_blocks(n, peer, m->blocks_request); break;
    case MIDNODE__PEER_MESSAGE__MSG_BLOCKS_RESPONSE: on_blocks_response(n, peer, m->blocks_response); break;
    case MIDNODE__PEER_MESSAGE__MSG_STATUS:
        ps->height = m->status->height;
        if (ps->height > n->height) request_blocks(n);
        break;
    case MIDNODE__PEER_MESSAGE__MSG_COMMITTED: {
        Midnode__BlocksResponse one = MIDNODE__BLOCKS_RESPONSE__INIT;
        Midnode__CommittedBlock *ptr = m->committed;
        one.n_blocks = 1;
        one.blocks = &ptr;
        on_blocks_response(n, peer, &one);
        break;
    }
    default: mn_counter_inc(n->m_peer_msgs_bad); break;
    }
    future_replay(n);
out:
    midnode__peer_message__free_unpacked(m, NULL);
}

void node_on_peer_up(void *ctx, const char *peer)
{
    struct mn_node *n = ctx;
    LOG_INFO("peer_up", "peer=%s", peer);
    Midnode__Hello h = MIDNODE__HELLO__INIT;
    h.chain_id = n->genesis->chain_id;
    h.node_name = n->cfg.node_name;
    h.height = n->height;
    h.genesis_hash.data = n->genesis->genesis_hash;
    h.genesis_hash.len = MN_HASH_LEN;
    Midnode__PeerMessage m = MIDNODE__PEER_MESSAGE__INIT;
    m.msg_case = MIDNODE__PEER_MESSAGE__MSG_HELLO;
    m.hello = &h;
    send_msg(n, peer, &m);
}

void node_on_peer_down(void *ctx, const char *peer)
{
    struct mn_node *n = ctx;
    node_peer_state *ps = peer_state(n, peer);
    if (ps) ps->hello_ok = false;
    LOG_INFO("peer_down", "peer=%s", peer);
}

void node_on_tick(uv_timer_t *t)
{
    struct mn_node *n = t->data;
    if (n->stopping) return;
    announce_status(n);
    request_blocks(n);
    node_rpc_expire(n);
    mn_read_cache_stats rs;
    mn_ledger_read_cache_stats(n->ledger, &rs);
    if (rs.warm_pending && !n->warm_failed && !uv_is_active((uv_handle_t *)&n->warm_idle))
        (void)node_warm_start(n); /* the root moved under the cache: read the store's records again */
}

int node_warm_start(struct mn_node *n)
{
    n->warm_started_ms = node_mono_ms(n);
    return uv_idle_start(&n->warm_idle, node_on_warm);
}

/* The warm-up runs in slices of about NODE_WARM_SLICE_NS, so peers'
 * handshakes and queries that arrive meanwhile wait little, in steps of
 * NODE_WARM_STEP records: the first write to a cache page can cost
 * milliseconds (the kernel zeroes it, and a virtual machine's host may
 * back it then), so a fixed number of records per slice could block the
 * loop for seconds on a fresh cache of gigabytes. Half a millisecond:
 * a loop serving 50 connections spends about as long answering a round
 * of their queries, so the warm-up takes half of a busy loop and all of an
 * idle one (2 ms slices held a restarted 10 M node to 12,500 to 16,000
 * status/s while it warmed, 0.5 ms to 29,000 to 39,000/s). */
#define NODE_WARM_STEP 16
#define NODE_WARM_SLICE_NS 500000u

void node_on_warm(uv_idle_t *h)
{
    struct mn_node *n = h->data;
    if (n->stopping) return;
    uint64_t t0 = uv_hrtime();
    int rc;
    do {
        rc = mn_ledger_warm(n->ledger, NODE_WARM_STEP);
    } while (rc == 1 && uv_hrtime() - t0 < NODE_WARM_SLICE_NS);
    if (rc == 1) return;
    (void)uv_idle_stop(h);
    mn_read_cache_stats rs;
    mn_ledger_read_cache_stats(n->ledger, &rs);
    if (rc == MN_OK)
        LOG_INFO("read_cache_warm", "records=%llu complete=%s ms=%llu", (unsigned long long)rs.warmed,
                 rs.ids_complete ? "yes" : "no", (unsigned long long)(node_mono_ms(n) - n->warm_started_ms));
    else { /* queries still work, reading the store for ids the cache lacks */
        n->warm_failed = true;
        LOG_WARN("read_cache_warm_failed", "error=%s records=%llu", mn_strerror(rc), (unsigned long long)rs.warmed);
    }
}

/* ------------------------------------------------------------ start/stop */

struct votelog_ctx {
    mn_cons_record *recs;
    size_t count, cap;
    int rc;
};

static int votelog_collect(void *arg, const uint8_t *data, size_t len)
{
    struct votelog_ctx *v = arg;
    Midnode__SignedRecord *sr = midnode__signed_record__unpack(NULL, len, data);
    if (!sr) {
        v->rc = MN_ECORRUPT;
        return 1;
    }
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        mn_cons_record *r = realloc(v->recs, cap * sizeof *r);
        if (!r) {
            midnode__signed_record__free_unpacked(sr, NULL);
            v->rc = MN_ENOMEM;
            return 1;
        }
        v->recs = r;
        v->cap = cap;
    }
    int rc = mn_cons_record_from_pb(&v->recs[v->count], sr);
    midnode__signed_record__free_unpacked(sr, NULL);
    if (rc != MN_OK) {
        v->rc = MN_ECORRUPT;
        return 1;
    }
    v->count++;
    return 0;
}

int node_chain_start(struct mn_node *n, char *err, size_t err_len)
{
    if (!n->is_validator) return MN_OK; /* observers follow committed blocks only */
    mn_cons_config cc;
    memset(&cc, 0, sizeof cc);
    snprintf(cc.chain_id, sizeof cc.chain_id, "%s", n->genesis->chain_id);
    cc.n = n->genesis->validator_count;
    memcpy(cc.pubkeys, n->valset.keys, sizeof cc.pubkeys);
    cc.self = n->self_index;
    cc.crypto = (mn_cons_crypto){.ctx = n, .sha256 = cons_sha256, .sign = cons_sign, .verify = cons_verify};
    const mn_consensus_params *pp = &n->genesis->params;
    cc.timeout_propose_ms = pp->timeout_propose_ms;
    cc.timeout_prevote_ms = pp->timeout_prevote_ms;
    cc.timeout_precommit_ms = pp->timeout_precommit_ms;
    cc.timeout_delta_ms = pp->timeout_delta_ms;
    cc.resend_ms = pp->timeout_prevote_ms;
    n->cons = mn_cons_new(&cc);
    if (!n->cons) {
        snprintf(err, err_len, "consensus engine: bad configuration");
        return MN_EINVAL;
    }
    struct votelog_ctx v = {0};
    int rc = mn_store_votelog_list(n->store, votelog_collect, &v);
    if (rc == MN_OK) rc = v.rc;
    if (rc != MN_OK) {
        free(v.recs);
        snprintf(err, err_len, "vote log unreadable (%s): refusing to start rather than risk double-signing",
                 mn_strerror(rc));
        return rc;
    }
    rc = mn_cons_start(n->cons, n->height + 1, v.recs, v.count);
    free(v.recs);
    if (rc != MN_OK) {
        snprintf(err, err_len, "vote log is ahead of the store (%s): refusing to start", mn_strerror(rc));
        return rc;
    }
    LOG_INFO("consensus_started", "height=%llu votelog_records=%zu index=%d", (unsigned long long)(n->height + 1),
             v.count, n->self_index);
    drive(n);
    return MN_OK;
}

void node_chain_stop(struct mn_node *n)
{
    for (int i = 0; i < NODE_PENDING_MAX; i++)
        if (n->pending[i].used) pending_release(&n->pending[i]);
    mn_futureprop_clear(&n->future);
}
