/* Fuzz target: the peer wire path, from stream bytes to consensus.
 *
 * Input: byte 0 chooses how the rest is cut into reads (as TCP would), the
 * rest is the byte stream a peer sends. Each frame mn_frame_decoder yields is
 * decoded as a PeerMessage; proposals and votes are fed, as the node does,
 * to a consensus engine (4 validators, signature checks off so fuzzed votes
 * reach the state machine; the engine's own checks stay on), whose actions
 * are drained and answered (block verdicts); a block carried by a proposal or
 * a CommittedBlock has its header decoded, its transactions executed on the
 * test chain and its certificate checked with mn_cert_check. */
#include "fuzz_common.h"

#include "cert.h"
#include "cons.h"
#include "net.h"

#define FZ_FRAME_MAX (256 * 1024)

typedef struct peer_ctx {
    lf_fixture *f;
    mn_cons *cons;
    unsigned frames;
} peer_ctx;

static void h_sha(void *ctx, uint8_t out[MN_HASH_LEN], const uint8_t *d, size_t n) {
    (void)ctx;
    mn_sha256(out, d, n);
}

static int h_sign(void *ctx, uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN]) {
    (void)ctx;
    (void)digest;
    memset(sig, 0, MN_SIG_LEN);
    return MN_OK;
}

static bool h_verify(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                     const uint8_t pubkey[MN_PUBKEY_LEN]) {
    (void)ctx;
    return mn_verify(sig, digest, pubkey);
}

static void drain(mn_cons *c) {
    mn_cons_action a;
    unsigned guard = 0;
    while (mn_cons_next_action(c, &a)) {
        if (++guard > 100000) abort(); /* the action queue is bounded */
        if (a.kind == MN_CONS_NEED_VERDICT)
            (void)mn_cons_block_verdict(c, a.u.need.height, a.u.need.block_hash, (a.u.need.round & 1) == 0);
    }
}

static void check_block(lf_fixture *f, const Midnode__Block *b, const Midnode__CommitCertificate *cert) {
    if (!b) return;
    Midnode__BlockHeader *h = midnode__block_header__unpack(NULL, b->header.len, b->header.data);
    if (h) midnode__block_header__free_unpacked(h, NULL);
    if (b->n_txs <= 64) {
        mn_exec *e = mn_exec_begin(f->l, mn_ledger_height(f->l) + 1, f->time_ms);
        if (!e) abort();
        for (size_t i = 0; i < b->n_txs; i++) {
            char msg[MN_TX_MSG_MAX];
            (void)mn_exec_apply_tx(e, b->txs[i].data, b->txs[i].len, msg, sizeof msg);
        }
        uint8_t root[MN_HASH_LEN];
        if (mn_exec_finish(e, root) != MN_OK) abort();
        mn_exec_free(e);
    }
    if (cert) {
        uint8_t hash[MN_HASH_LEN];
        mn_sha256(hash, b->header.data, b->header.len);
        char err[128];
        (void)mn_cert_check(f->g, cert->height, hash, cert, err, sizeof err);
    }
}

static bool copy_hash(uint8_t out[MN_HASH_LEN], ProtobufCBinaryData d) {
    memset(out, 0, MN_HASH_LEN);
    if (d.len != MN_HASH_LEN) return false;
    memcpy(out, d.data, MN_HASH_LEN);
    return true;
}

static int on_frame(void *arg, const uint8_t *frame, size_t len) {
    peer_ctx *pc = arg;
    pc->frames++;
    Midnode__PeerMessage *m = midnode__peer_message__unpack(NULL, len, frame);
    if (!m) return MN_OK;
    switch (m->msg_case) {
    case MIDNODE__PEER_MESSAGE__MSG_PROPOSAL: {
        const Midnode__Proposal *p = m->proposal;
        mn_cons_proposal cp = {.height = p->height, .round = p->round, .pol_round = p->pol_round,
                               .proposer_index = p->proposer_index};
        if (copy_hash(cp.block_hash, p->block_hash)) {
            if (p->signature.len == MN_SIG_LEN) memcpy(cp.sig, p->signature.data, MN_SIG_LEN);
            (void)mn_cons_on_proposal(pc->cons, &cp);
            drain(pc->cons);
        }
        check_block(pc->f, p->block, NULL);
        break;
    }
    case MIDNODE__PEER_MESSAGE__MSG_VOTE: {
        const Midnode__Vote *v = m->vote;
        mn_cons_vote cv = {.type = (uint8_t)v->type, .height = v->height, .round = v->round,
                           .validator_index = v->validator_index};
        cv.has_hash = copy_hash(cv.block_hash, v->block_hash);
        if (v->signature.len == MN_SIG_LEN) memcpy(cv.sig, v->signature.data, MN_SIG_LEN);
        (void)mn_cons_on_vote(pc->cons, &cv);
        drain(pc->cons);
        break;
    }
    case MIDNODE__PEER_MESSAGE__MSG_COMMITTED:
        check_block(pc->f, m->committed->block, m->committed->commit);
        break;
    case MIDNODE__PEER_MESSAGE__MSG_BLOCKS_RESPONSE:
        for (size_t i = 0; i < m->blocks_response->n_blocks && i < 8; i++)
            check_block(pc->f, m->blocks_response->blocks[i]->block, m->blocks_response->blocks[i]->commit);
        break;
    default:
        break;
    }
    midnode__peer_message__free_unpacked(m, NULL);
    return MN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lf_fixture *f = fz_chain();
    if (size == 0) return 0;
    mn_cons_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.chain_id, sizeof cfg.chain_id, "%s", f->g->chain_id);
    cfg.n = f->g->validator_count;
    for (uint32_t i = 0; i < cfg.n; i++) {
        const mn_member *m = mn_genesis_validator(f->g, i);
        if (!m) abort();
        memcpy(cfg.pubkeys[i], m->consensus_pubkey, MN_PUBKEY_LEN);
    }
    cfg.self = (data[0] & 0x80) ? 1 : -1;
    cfg.crypto = (mn_cons_crypto){NULL, h_sha, h_sign, h_verify};
    cfg.timeout_propose_ms = cfg.timeout_prevote_ms = cfg.timeout_precommit_ms = 1000;
    cfg.timeout_delta_ms = 500;
    cfg.resend_ms = 1000;
    cfg.test_flags = MN_CONS_TEST_NO_SIG_CHECK;
    mn_cons *c = mn_cons_new(&cfg);
    if (!c) abort();
    if (mn_cons_start(c, 1, NULL, 0) != MN_OK) abort();
    drain(c);
    peer_ctx pc = {f, c, 0};
    mn_frame_decoder d;
    mn_frame_decoder_init(&d, FZ_FRAME_MAX);
    size_t chunk = (size_t)(data[0] & 0x7f) + 1;
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        size_t used = 0;
        int rc = mn_frame_decode(&d, p, n, on_frame, &pc, &used);
        if (rc != MN_OK) break; /* the connection would be dropped */
        p += n;
        left -= n;
        /* a timeout between reads, as the timer would fire it */
        mn_cons_status st;
        mn_cons_get_status(c, &st);
        (void)mn_cons_on_timeout(c, 1 + (int)(n % 4), st.height, st.round);
        drain(c);
    }
    mn_frame_decoder_reset(&d);
    mn_cons_free(c);
    return 0;
}
