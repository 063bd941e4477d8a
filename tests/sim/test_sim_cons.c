/* test_sim_cons.c: each rule of the consensus engine, driven by hand, plus
 * the certificate check, evidence, restarts and a one-validator chain with
 * real secp256k1 keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cons.h"
#include "cons_pb.h"
#include "crypto.h"
#include "sim.h"

/* ------------------------------------------------------------ fixture */

#define CHAIN "test-chain"

typedef struct {
    uint32_t index;
} key_ctx;

static uint8_t secrets[MN_VALIDATORS_MAX][MN_HASH_LEN];
static uint8_t pubs[MN_VALIDATORS_MAX][MN_PUBKEY_LEN];
static key_ctx key_ctxs[MN_VALIDATORS_MAX];

static void t_sha(void *ctx, uint8_t out[MN_HASH_LEN], const uint8_t *d, size_t len) {
    (void)ctx;
    mn_sha256(out, d, len);
}

static void t_tag(uint32_t i, const uint8_t digest[MN_HASH_LEN], uint8_t sig[MN_SIG_LEN]) {
    uint8_t buf[64];
    memcpy(buf, secrets[i], 32);
    memcpy(buf + 32, digest, 32);
    mn_sha256(sig, buf, 64);
    memcpy(sig + 32, sig, 32);
}

static int t_sign(void *ctx, uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN]) {
    t_tag(((key_ctx *)ctx)->index, digest, sig);
    return MN_OK;
}

static bool t_verify(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                     const uint8_t pubkey[MN_PUBKEY_LEN]) {
    (void)ctx;
    uint32_t i = pubkey[1];
    if (i >= MN_VALIDATORS_MAX || memcmp(pubkey, pubs[i], MN_PUBKEY_LEN) != 0) return false;
    uint8_t want[MN_SIG_LEN];
    t_tag(i, digest, want);
    return memcmp(want, sig, MN_SIG_LEN) == 0;
}

static mn_cons_crypto t_crypto(uint32_t i) {
    key_ctxs[i].index = i;
    mn_cons_crypto c = {.ctx = &key_ctxs[i], .sha256 = t_sha, .sign = t_sign, .verify = t_verify};
    return c;
}

static void make_keys(void) {
    for (uint32_t i = 0; i < MN_VALIDATORS_MAX; i++) {
        memset(secrets[i], (int)(i + 1), 32);
        memset(pubs[i], 0, MN_PUBKEY_LEN);
        pubs[i][0] = 2;
        pubs[i][1] = (uint8_t)i;
        pubs[i][2] = (uint8_t)(i * 7 + 3);
    }
}

static mn_cons_config config(uint32_t n, int32_t self) {
    make_keys();
    mn_cons_config cfg = {.n = n, .self = self, .crypto = t_crypto(self < 0 ? 0 : (uint32_t)self % MN_VALIDATORS_MAX),
                          .timeout_propose_ms = 1000, .timeout_prevote_ms = 500, .timeout_precommit_ms = 500,
                          .timeout_delta_ms = 100, .resend_ms = 700};
    strcpy(cfg.chain_id, CHAIN);
    memcpy(cfg.pubkeys, pubs, sizeof pubs[0] * n);
    return cfg;
}

static mn_cons_vote vote(uint32_t from, int type, uint64_t h, uint32_t r, const uint8_t *hash) {
    mn_cons_vote v = {.type = (uint8_t)type, .has_hash = hash != NULL, .height = h, .round = r,
                      .validator_index = from};
    if (hash) memcpy(v.block_hash, hash, 32);
    mn_cons_crypto c = t_crypto(from);
    uint8_t d[32];
    assert_int_equal(mn_cons_vote_digest(&c, CHAIN, &v, d), MN_OK);
    t_tag(from, d, v.sig);
    return v;
}

static mn_cons_proposal proposal(uint64_t h, uint32_t r, int32_t pol, const uint8_t *hash, uint32_t n) {
    mn_cons_proposal p = {.height = h, .round = r, .pol_round = pol, .proposer_index = mn_cons_proposer(h, r, n)};
    memcpy(p.block_hash, hash, 32);
    mn_cons_crypto c = t_crypto(p.proposer_index);
    uint8_t d[32];
    assert_int_equal(mn_cons_proposal_digest(&c, CHAIN, &p, d), MN_OK);
    t_tag(p.proposer_index, d, p.sig);
    return p;
}

/* Drains the queue, answering NEED_VERDICT with `valid`, and records what
 * came out. Asserts PERSIST precedes the SEND of every own message. */
typedef struct {
    int persists, proposals, prevotes, precommits, commits, evidence, need_block, need_verdict, timers;
    mn_cons_vote last_prevote, last_precommit;
    mn_cons_proposal last_proposal;
    uint64_t commit_height;
    uint8_t commit_hash[32];
    mn_cons_cert cert;
    mn_cons_record records[64];
    int nrecords;
    int last_timer_kind;
    uint32_t last_timer_ms;
} outq;

static void drain(mn_cons *c, outq *o, int verdict) {
    mn_cons_action a;
    int guard = 0;
    bool again = true;
    while (again) {
        again = false;
        while (mn_cons_next_action(c, &a)) {
            assert_true(++guard < 100000);
            switch (a.kind) {
            case MN_CONS_PERSIST:
                o->persists++;
                if (o->nrecords < 64) o->records[o->nrecords++] = a.u.record;
                break;
            case MN_CONS_SEND_VOTE: {
                bool persisted = false;
                for (int i = 0; i < o->nrecords; i++)
                    persisted |= o->records[i].height == a.u.vote.height && o->records[i].round == a.u.vote.round &&
                                 o->records[i].step == a.u.vote.type &&
                                 o->records[i].validator_index == a.u.vote.validator_index;
                assert_true(persisted);
                if (a.u.vote.type == MN_CONS_PREVOTE) {
                    o->prevotes++;
                    o->last_prevote = a.u.vote;
                } else {
                    o->precommits++;
                    o->last_precommit = a.u.vote;
                }
                break;
            }
            case MN_CONS_SEND_PROPOSAL:
                o->proposals++;
                o->last_proposal = a.u.proposal;
                break;
            case MN_CONS_SET_TIMER:
                o->timers++;
                o->last_timer_kind = a.u.timer.kind;
                o->last_timer_ms = a.u.timer.ms;
                break;
            case MN_CONS_NEED_BLOCK:
                o->need_block++;
                break;
            case MN_CONS_NEED_VERDICT:
                o->need_verdict++;
                if (verdict >= 0) {
                    assert_int_equal(mn_cons_block_verdict(c, a.u.need.height, a.u.need.block_hash, verdict == 1),
                                     MN_OK);
                    again = true;
                }
                break;
            case MN_CONS_COMMIT:
                o->commits++;
                o->commit_height = a.u.commit.height;
                memcpy(o->commit_hash, a.u.commit.block_hash, 32);
                o->cert = *a.u.commit.cert;
                break;
            case MN_CONS_EVIDENCE:
                o->evidence++;
                break;
            default:
                fail_msg("unknown action %d", a.kind);
            }
        }
    }
}

static const uint8_t HA[32] = {0xaa, 1};
static const uint8_t HB[32] = {0xbb, 2};

/* ------------------------------------------------------------ tests */

static void proposer_is_round_robin(void **state) {
    (void)state;
    assert_int_equal(mn_cons_proposer(1, 0, 4), 1);
    assert_int_equal(mn_cons_proposer(1, 1, 4), 2);
    assert_int_equal(mn_cons_proposer(4, 0, 4), 0);
    assert_int_equal(mn_cons_proposer(7, 3, 1), 0);
    uint32_t seen[7] = {0};
    for (uint32_t r = 0; r < 70; r++) seen[mn_cons_proposer(5, r, 7)]++;
    for (int i = 0; i < 7; i++) assert_int_equal(seen[i], 10);
}

static void new_refuses_bad_config(void **state) {
    (void)state;
    mn_cons_config cfg = config(4, 0);
    cfg.n = 0;
    assert_null(mn_cons_new(&cfg));
    cfg = config(4, 4);
    assert_null(mn_cons_new(&cfg));
    cfg = config(4, 0);
    cfg.crypto.verify = NULL;
    assert_null(mn_cons_new(&cfg));
    cfg = config(4, 0);
    cfg.n = MN_VALIDATORS_MAX + 1;
    assert_null(mn_cons_new(&cfg));
    cfg = config(4, -2);
    assert_null(mn_cons_new(&cfg));
    mn_cons_free(NULL);
}

static void single_validator_commits_every_height(void **state) {
    (void)state;
    mn_cons_config cfg = config(1, 0);
    mn_cons *c = mn_cons_new(&cfg);
    assert_non_null(c);
    assert_int_equal(mn_cons_start(c, 1, NULL, 0), MN_OK);
    outq o = {0};
    drain(c, &o, 1);
    assert_int_equal(o.need_block, 1);
    for (uint64_t h = 1; h <= 5; h++) {
        uint8_t hash[32] = {(uint8_t)h, 0x42};
        assert_int_equal(mn_cons_propose_block(c, h, 0, hash), MN_OK);
        assert_int_equal(mn_cons_propose_block(c, h, 0, hash), MN_ESTATE); /* once per round */
        outq q = {0};
        drain(c, &q, 1);
        assert_int_equal(q.proposals, 1);
        assert_int_equal(q.prevotes, 1);
        assert_int_equal(q.precommits, 1);
        assert_int_equal(q.commits, 1);
        assert_int_equal(q.commit_height, h);
        assert_memory_equal(q.commit_hash, hash, 32);
        assert_int_equal(q.cert.count, 1);
        mn_cons_crypto cr = t_crypto(0);
        assert_int_equal(mn_cons_check_certificate(CHAIN, 1, pubs, h, hash, &q.cert, &cr), MN_OK);
        assert_int_equal(q.need_block, 1); /* the next height asks for its block */
        mn_cons_status st;
        mn_cons_get_status(c, &st);
        assert_int_equal(st.height, h + 1);
    }
    mn_cons_free(c);
}

/* n=4, self=0, height 1: proposer(1,0)=1. */
static mn_cons *four(outq *o) {
    mn_cons_config cfg = config(4, 0);
    mn_cons *c = mn_cons_new(&cfg);
    assert_non_null(c);
    assert_int_equal(mn_cons_start(c, 1, NULL, 0), MN_OK);
    drain(c, o, 1);
    assert_int_equal(o->need_block, 0);
    return c;
}

static void happy_path_locks_and_commits(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.prevotes, 1);
    assert_true(o.last_prevote.has_hash);
    assert_memory_equal(o.last_prevote.block_hash, HA, 32);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
        drain(c, &o, 1);
    }
    assert_int_equal(o.precommits, 1);
    assert_memory_equal(o.last_precommit.block_hash, HA, 32);
    mn_cons_status st;
    mn_cons_get_status(c, &st);
    assert_int_equal(st.locked_round, 0);
    assert_memory_equal(st.locked_hash, HA, 32);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
        drain(c, &o, 1);
    }
    assert_int_equal(o.commits, 1);
    assert_int_equal(o.commit_height, 1);
    assert_int_equal(o.cert.count, 3);
    mn_cons_crypto cr = t_crypto(0);
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 1, HA, &o.cert, &cr), MN_OK);
    mn_cons_get_status(c, &st);
    assert_int_equal(st.height, 2);
    assert_int_equal(st.locked_round, -1);
    mn_cons_free(c);
}

static void two_precommits_of_four_do_not_commit(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    assert_int_equal(o.commits, 0);
    mn_cons_vote v = vote(3, MN_CONS_PRECOMMIT, 1, 0, HA);
    assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.commits, 1); /* line 49: any three precommits with the proposal */
    mn_cons_free(c);
}

static void invalid_block_gets_nil_prevote(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    drain(c, &o, 0);
    assert_int_equal(o.need_verdict, 1);
    assert_int_equal(o.prevotes, 1);
    assert_false(o.last_prevote.has_hash);
    /* and an invalid block is never committed, even with a quorum */
    for (uint32_t i = 1; i <= 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 0);
    assert_int_equal(o.commits, 0);
    mn_cons_free(c);
}

static void no_prevote_before_verdict(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    drain(c, &o, -1);
    assert_int_equal(o.need_verdict, 1);
    assert_int_equal(o.prevotes, 0);
    assert_int_equal(mn_cons_block_verdict(c, 1, HA, true), MN_OK);
    drain(c, &o, -1);
    assert_int_equal(o.prevotes, 1);
    assert_true(o.last_prevote.has_hash);
    mn_cons_free(c);
}

static void timeouts_vote_nil_and_advance(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    /* stale timers change nothing */
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PROPOSE, 1, 5), MN_OK);
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PROPOSE, 9, 0), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.prevotes, 0);
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PROPOSE, 1, 0), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.prevotes, 1);
    assert_false(o.last_prevote.has_hash);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 0, HB);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    assert_int_equal(o.last_timer_kind, MN_CONS_TIMEOUT_PREVOTE); /* line 34 */
    assert_int_equal(o.last_timer_ms, 500);
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PREVOTE, 1, 0), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.precommits, 1);
    assert_false(o.last_precommit.has_hash);
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PRECOMMIT, 1, 0), MN_OK);
    drain(c, &o, 1);
    mn_cons_status st;
    mn_cons_get_status(c, &st);
    assert_int_equal(st.round, 1);
    assert_int_equal(st.step, 1);
    assert_int_equal(o.last_timer_ms, 1100); /* propose timeout grows with the round */
    assert_int_equal(mn_cons_on_timeout(c, 99, 1, 1), MN_EINVAL);
    mn_cons_free(c);
}

static void nil_quorum_precommits_nil(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PROPOSE, 1, 0), MN_OK);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 0, NULL);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    assert_int_equal(o.precommits, 1); /* line 44 */
    assert_false(o.last_precommit.has_hash);
    mn_cons_free(c);
}

/* Locked on A in round 0: a fresh proposal of B in round 1 gets nil; B with
 * a polka from round 1 in round 2 unlocks (line 28). */
static void lock_is_kept_until_a_later_polka(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    mn_cons_status st;
    mn_cons_get_status(c, &st);
    assert_int_equal(st.locked_round, 0);
    /* round 0 ends without commit */
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 1, 0, NULL);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PRECOMMIT, 1, 0), MN_OK);
    drain(c, &o, 1);
    mn_cons_get_status(c, &st);
    assert_int_equal(st.round, 1);
    int prevotes = o.prevotes;
    mn_cons_proposal pb = proposal(1, 1, -1, HB, 4);
    assert_int_equal(mn_cons_on_proposal(c, &pb), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.prevotes, prevotes + 1);
    assert_false(o.last_prevote.has_hash); /* the lock holds */
    /* others saw a polka for B in round 1 */
    for (uint32_t i = 1; i <= 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 1, HB);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    mn_cons_get_status(c, &st);
    assert_int_equal(st.valid_round, 1); /* line 36 updates the valid value even after prevote step */
    assert_memory_equal(st.valid_hash, HB, 32);
    for (uint32_t i = 1; i <= 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 1, 1, NULL);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PRECOMMIT, 1, 1), MN_OK);
    drain(c, &o, 1);
    mn_cons_get_status(c, &st);
    assert_int_equal(st.round, 2);
    prevotes = o.prevotes;
    mn_cons_proposal pb2 = proposal(1, 2, 1, HB, 4);
    assert_int_equal(mn_cons_on_proposal(c, &pb2), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.prevotes, prevotes + 1);
    assert_true(o.last_prevote.has_hash);
    assert_memory_equal(o.last_prevote.block_hash, HB, 32);
    mn_cons_free(c);
}

static void skip_lock_variant_breaks_the_lock(void **state) {
    (void)state;
    mn_cons_config cfg = config(4, 0);
    cfg.test_flags = MN_CONS_TEST_SKIP_LOCK;
    mn_cons *c = mn_cons_new(&cfg);
    assert_int_equal(mn_cons_start(c, 1, NULL, 0), MN_OK);
    outq o = {0};
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PRECOMMIT, 1, 0), MN_OK);
    drain(c, &o, 1);
    mn_cons_proposal pb = proposal(1, 1, -1, HB, 4);
    assert_int_equal(mn_cons_on_proposal(c, &pb), MN_OK);
    drain(c, &o, 1);
    assert_true(o.last_prevote.has_hash);
    mn_cons_free(c);
}

static void conflicting_votes_are_evidence(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_vote a = vote(2, MN_CONS_PREVOTE, 1, 0, HA);
    mn_cons_vote b = vote(2, MN_CONS_PREVOTE, 1, 0, HB);
    mn_cons_vote n = vote(2, MN_CONS_PREVOTE, 1, 0, NULL);
    assert_int_equal(mn_cons_on_vote(c, &a), MN_OK);
    assert_int_equal(mn_cons_on_vote(c, &a), MN_OK); /* duplicate: no evidence */
    drain(c, &o, 1);
    assert_int_equal(o.evidence, 0);
    assert_int_equal(mn_cons_on_vote(c, &b), MN_OK);
    mn_cons_action act;
    bool found = false;
    while (mn_cons_next_action(c, &act)) {
        if (act.kind != MN_CONS_EVIDENCE) continue;
        found = true;
        assert_int_equal(act.u.evidence.first.validator_index, 2);
        assert_memory_equal(act.u.evidence.first.block_hash, HA, 32);
        assert_memory_equal(act.u.evidence.second.block_hash, HB, 32);
    }
    assert_true(found);
    assert_int_equal(mn_cons_on_vote(c, &b), MN_OK); /* reported once */
    drain(c, &o, 1);
    assert_int_equal(o.evidence, 0);
    (void)n;
    /* a prevote and a precommit of one round do not conflict */
    mn_cons_vote pc = vote(2, MN_CONS_PRECOMMIT, 1, 0, HB);
    assert_int_equal(mn_cons_on_vote(c, &pc), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.evidence, 0);
    mn_cons_free(c);
}

/* A polka that needs the vote an equivocator sent others still counts at a
 * node that first saw its other vote (and the cert carries that vote). */
static void equivocator_counts_toward_the_relayed_polka(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_vote first = vote(3, MN_CONS_PREVOTE, 1, 0, NULL);
    assert_int_equal(mn_cons_on_vote(c, &first), MN_OK);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    drain(c, &o, 1);
    mn_cons_vote v1 = vote(1, MN_CONS_PREVOTE, 1, 0, HA);
    mn_cons_vote v3 = vote(3, MN_CONS_PREVOTE, 1, 0, HA);
    assert_int_equal(mn_cons_on_vote(c, &v1), MN_OK);
    assert_int_equal(mn_cons_on_vote(c, &v3), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.evidence, 1);
    assert_int_equal(o.precommits, 1);
    assert_true(o.last_precommit.has_hash);
    mn_cons_vote c1 = vote(1, MN_CONS_PRECOMMIT, 1, 0, HA);
    mn_cons_vote c3n = vote(3, MN_CONS_PRECOMMIT, 1, 0, NULL);
    mn_cons_vote c3 = vote(3, MN_CONS_PRECOMMIT, 1, 0, HA);
    assert_int_equal(mn_cons_on_vote(c, &c1), MN_OK);
    assert_int_equal(mn_cons_on_vote(c, &c3n), MN_OK);
    assert_int_equal(mn_cons_on_vote(c, &c3), MN_OK);
    drain(c, &o, 1);
    assert_int_equal(o.commits, 1);
    assert_int_equal(o.cert.count, 3);
    mn_cons_crypto cr = t_crypto(0);
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 1, HA, &o.cert, &cr), MN_OK);
    mn_cons_free(c);
}

static void bad_input_is_refused(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_vote v = vote(2, MN_CONS_PREVOTE, 1, 0, HA);
    v.sig[5] ^= 1;
    assert_int_equal(mn_cons_on_vote(c, &v), MN_ECRYPTO);
    v = vote(2, MN_CONS_PREVOTE, 1, 0, HA);
    v.block_hash[0] ^= 1; /* signature over another hash */
    assert_int_equal(mn_cons_on_vote(c, &v), MN_ECRYPTO);
    v = vote(2, MN_CONS_PREVOTE, 1, 0, HA);
    v.validator_index = 4;
    assert_int_equal(mn_cons_on_vote(c, &v), MN_EINVAL);
    v = vote(2, MN_CONS_PREVOTE, 1, 0, HA);
    v.type = 7;
    assert_int_equal(mn_cons_on_vote(c, &v), MN_EINVAL);
    v = vote(2, MN_CONS_PREVOTE, 3, 0, HA);
    assert_int_equal(mn_cons_on_vote(c, &v), MN_EAGAIN);
    v = vote(2, MN_CONS_PREVOTE, 1, 1000, HA);
    assert_int_equal(mn_cons_on_vote(c, &v), MN_ESTATE);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    p.proposer_index = 2; /* not the proposer of (1, 0) */
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_EINVAL);
    p = proposal(1, 0, 0, HA, 4); /* pol_round must be below the round */
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_EINVAL);
    p = proposal(1, 0, -1, HA, 4);
    p.sig[0] ^= 1;
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_ECRYPTO);
    assert_int_equal(mn_cons_block_verdict(c, 5, HA, true), MN_ESTATE);
    assert_int_equal(mn_cons_propose_block(c, 1, 0, HA), MN_ESTATE); /* not our turn */
    assert_int_equal(mn_cons_skip_to(c, 1), MN_ESTATE);
    drain(c, &o, 1);
    assert_int_equal(o.prevotes + o.precommits + o.proposals + o.commits, 0);
    /* other chains' signatures do not verify */
    mn_cons_free(c);
}

static void next_height_messages_are_buffered(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    /* height 2 arrives early: proposer(2,0)=2 */
    mn_cons_proposal p2 = proposal(2, 0, -1, HB, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p2), MN_OK);
    for (uint32_t i = 1; i <= 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 2, 0, HB);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    assert_int_equal(o.commits, 0);
    /* height 1 commits: the buffered messages commit height 2 at once */
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    for (uint32_t i = 1; i <= 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    /* both COMMIT actions of this one input carry their own certificate */
    mn_cons_action a;
    int commits = 0;
    while (mn_cons_next_action(c, &a)) {
        if (a.kind == MN_CONS_NEED_VERDICT)
            assert_int_equal(mn_cons_block_verdict(c, a.u.need.height, a.u.need.block_hash, true), MN_OK);
        if (a.kind != MN_CONS_COMMIT) continue;
        commits++;
        assert_int_equal(a.u.commit.cert->height, a.u.commit.height);
        assert_memory_equal(a.u.commit.cert->block_hash, a.u.commit.block_hash, 32);
        assert_memory_equal(a.u.commit.block_hash, commits == 1 ? HA : HB, 32);
    }
    assert_int_equal(commits, 2);
    mn_cons_free(c);
}

static void future_round_with_weak_quorum_is_joined(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_vote v = vote(1, MN_CONS_PREVOTE, 1, 5, NULL);
    assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    drain(c, &o, 1);
    mn_cons_status st;
    mn_cons_get_status(c, &st);
    assert_int_equal(st.round, 0); /* one validator (possibly faulty) is not enough */
    v = vote(3, MN_CONS_PRECOMMIT, 1, 5, NULL);
    assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    drain(c, &o, 1);
    mn_cons_get_status(c, &st);
    assert_int_equal(st.round, 5); /* line 55: f+1 */
    /* round 0 was left with nil votes, for peers still counting in it */
    assert_int_equal(o.prevotes, 1);
    assert_int_equal(o.precommits, 1);
    assert_int_equal(o.last_precommit.round, 0);
    assert_false(o.last_precommit.has_hash);
    mn_cons_free(c);
}

static void restart_never_signs_a_conflict(void **state) {
    (void)state;
    outq o = {0};
    mn_cons *c = four(&o);
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    for (uint32_t i = 1; i <= 2; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    assert_int_equal(o.precommits, 1);
    mn_cons_free(c); /* crash */

    mn_cons_config cfg = config(4, 0);
    c = mn_cons_new(&cfg);
    outq r = {0};
    memcpy(r.records, o.records, sizeof o.records); /* what the vote log holds */
    r.nrecords = o.nrecords;
    assert_int_equal(mn_cons_start(c, 1, o.records, (size_t)o.nrecords), MN_OK);
    drain(c, &r, 1);
    mn_cons_status st;
    mn_cons_get_status(c, &st);
    assert_int_equal(st.locked_round, 0); /* lock restored */
    assert_memory_equal(st.locked_hash, HA, 32);
    /* it resends exactly what it signed: the same precommit */
    assert_true(r.precommits >= 1);
    assert_memory_equal(r.last_precommit.block_hash, HA, 32);
    assert_memory_equal(r.last_precommit.sig, o.last_precommit.sig, 64);
    /* a nil-prevote quorum of round 0 cannot make it precommit nil now */
    for (uint32_t i = 1; i <= 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PREVOTE, 1, 0, NULL);
        (void)mn_cons_on_vote(c, &v);
    }
    assert_int_equal(mn_cons_on_timeout(c, MN_CONS_TIMEOUT_PROPOSE, 1, 0), MN_OK);
    drain(c, &r, 1);
    assert_int_equal(r.persists, 0); /* nothing new signed for round 0 */
    /* the polka behind the lock was restored too: re-proposing works */
    mn_cons_free(c);

    /* a vote log ahead of the store is refused */
    c = mn_cons_new(&cfg);
    o.records[0].height = 7;
    assert_int_equal(mn_cons_start(c, 1, o.records, 1), MN_ESTATE);
    o.records[0].step = 9;
    assert_int_equal(mn_cons_start(c, 7, o.records, 1), MN_EINVAL);
    mn_cons_free(c);
}

static void observer_never_signs(void **state) {
    (void)state;
    mn_cons_config cfg = config(4, -1);
    mn_cons *c = mn_cons_new(&cfg);
    assert_non_null(c);
    assert_int_equal(mn_cons_start(c, 1, NULL, 0), MN_OK);
    outq o = {0};
    mn_cons_proposal p = proposal(1, 0, -1, HA, 4);
    assert_int_equal(mn_cons_on_proposal(c, &p), MN_OK);
    for (uint32_t i = 1; i <= 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 1, 0, HA);
        assert_int_equal(mn_cons_on_vote(c, &v), MN_OK);
    }
    drain(c, &o, 1);
    assert_int_equal(o.persists + o.prevotes + o.precommits, 0);
    assert_int_equal(o.commits, 1);
    mn_cons_free(c);
}

static void certificate_check_refuses_each_flaw(void **state) {
    (void)state;
    make_keys();
    mn_cons_crypto cr = t_crypto(0);
    mn_cons_cert cert = {.height = 9, .round = 2, .count = 3};
    memcpy(cert.block_hash, HA, 32);
    for (uint32_t i = 0; i < 3; i++) {
        mn_cons_vote v = vote(i, MN_CONS_PRECOMMIT, 9, 2, HA);
        cert.sigs[i].validator_index = i;
        memcpy(cert.sigs[i].sig, v.sig, 64);
    }
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &cert, &cr), MN_OK);
    assert_int_equal(mn_cons_check_certificate("other-chain", 4, pubs, 9, HA, &cert, &cr), MN_ECRYPTO);
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 8, HA, &cert, &cr), MN_EINVAL);
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HB, &cert, &cr), MN_EINVAL);
    assert_int_equal(mn_cons_check_certificate(CHAIN, 7, pubs, 9, HA, &cert, &cr), MN_EAGAIN); /* 3 < 5 */
    assert_int_equal(mn_cons_check_certificate(CHAIN, 0, pubs, 9, HA, &cert, &cr), MN_EINVAL);
    mn_cons_cert bad = cert;
    bad.sigs[2] = bad.sigs[1]; /* duplicate signer */
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &bad, &cr), MN_EINVAL);
    bad = cert;
    bad.sigs[2].validator_index = 4; /* unknown validator */
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &bad, &cr), MN_EINVAL);
    bad = cert;
    bad.sigs[1].sig[10] ^= 1;
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &bad, &cr), MN_ECRYPTO);
    bad = cert;
    bad.round = 3; /* signatures were for round 2 */
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &bad, &cr), MN_ECRYPTO);
    bad = cert;
    bad.count = 2;
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &bad, &cr), MN_EAGAIN);
    bad.count = 1000;
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &bad, &cr), MN_EINVAL);
}

/* ---- real secp256k1 keys through the same table */

static uint8_t real_sk[MN_SECKEY_LEN];

static void r_sha(void *ctx, uint8_t out[MN_HASH_LEN], const uint8_t *d, size_t len) {
    (void)ctx;
    mn_sha256(out, d, len);
}
static int r_sign(void *ctx, uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN]) {
    (void)ctx;
    return mn_sign(sig, digest, real_sk);
}
static bool r_verify(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                     const uint8_t pubkey[MN_PUBKEY_LEN]) {
    (void)ctx;
    return mn_verify(sig, digest, pubkey);
}

static void secp256k1_single_validator_chain(void **state) {
    (void)state;
    assert_int_equal(mn_crypto_init(), MN_OK);
    assert_int_equal(mn_key_generate(real_sk), MN_OK);
    mn_cons_config cfg = {.n = 1, .self = 0, .timeout_propose_ms = 10, .timeout_prevote_ms = 10,
                          .timeout_precommit_ms = 10, .timeout_delta_ms = 1, .resend_ms = 100};
    strcpy(cfg.chain_id, "secp-chain");
    assert_int_equal(mn_key_pubkey(cfg.pubkeys[0], real_sk), MN_OK);
    mn_cons_crypto cr = {.sha256 = r_sha, .sign = r_sign, .verify = r_verify};
    cfg.crypto = cr;
    mn_cons *c = mn_cons_new(&cfg);
    assert_int_equal(mn_cons_start(c, 1, NULL, 0), MN_OK);
    uint8_t hash[32] = {7};
    assert_int_equal(mn_cons_propose_block(c, 1, 0, hash), MN_OK);
    mn_cons_action a;
    bool committed = false;
    while (mn_cons_next_action(c, &a)) {
        if (a.kind != MN_CONS_COMMIT) continue;
        committed = true;
        assert_int_equal(mn_cons_check_certificate("secp-chain", 1, (const uint8_t(*)[33])cfg.pubkeys, 1, hash,
                                                   a.u.commit.cert, &cr),
                         MN_OK);
        mn_cons_cert bad = *a.u.commit.cert;
        assert_int_equal(mn_cons_check_certificate("other", 1, (const uint8_t(*)[33])cfg.pubkeys, 1, hash, &bad, &cr),
                         MN_ECRYPTO);
    }
    assert_true(committed);
    mn_cons_free(c);
}

/* ---- protobuf conversions survive a pack/unpack round trip */

static void pb_round_trips_and_refuses_bad_lengths(void **state) {
    (void)state;
    make_keys();
    uint8_t buf[4096];
    mn_cons_vote v = vote(3, MN_CONS_PRECOMMIT, 12, 4, HA), v2;
    Midnode__Vote pv;
    mn_cons_vote_to_pb(&pv, &v);
    size_t len = midnode__vote__pack(&pv, buf);
    Midnode__Vote *uv = midnode__vote__unpack(NULL, len, buf);
    assert_non_null(uv);
    assert_int_equal(mn_cons_vote_from_pb(&v2, uv), MN_OK);
    assert_int_equal(v2.type, v.type);
    assert_int_equal(v2.height, 12);
    assert_int_equal(v2.round, 4);
    assert_true(v2.has_hash);
    assert_memory_equal(v2.block_hash, HA, 32);
    assert_memory_equal(v2.sig, v.sig, 64);
    uv->signature.len = 63;
    assert_int_equal(mn_cons_vote_from_pb(&v2, uv), MN_EINVAL);
    uv->signature.len = 64;
    uv->block_hash.len = 31;
    assert_int_equal(mn_cons_vote_from_pb(&v2, uv), MN_EINVAL);
    uv->block_hash.len = 32;
    uv->type = MIDNODE__VOTE_TYPE__VOTE_UNSPECIFIED;
    assert_int_equal(mn_cons_vote_from_pb(&v2, uv), MN_EINVAL);
    midnode__vote__free_unpacked(uv, NULL);

    mn_cons_vote nilv = vote(1, MN_CONS_PREVOTE, 2, 0, NULL);
    mn_cons_vote_to_pb(&pv, &nilv);
    len = midnode__vote__pack(&pv, buf);
    uv = midnode__vote__unpack(NULL, len, buf);
    assert_int_equal(mn_cons_vote_from_pb(&v2, uv), MN_OK);
    assert_false(v2.has_hash);
    assert_int_equal(v2.type, MN_CONS_PREVOTE);
    midnode__vote__free_unpacked(uv, NULL);

    mn_cons_proposal p = proposal(5, 2, 1, HB, 4), p2;
    Midnode__Proposal pp;
    mn_cons_proposal_to_pb(&pp, &p);
    len = midnode__proposal__pack(&pp, buf);
    Midnode__Proposal *up = midnode__proposal__unpack(NULL, len, buf);
    assert_int_equal(mn_cons_proposal_from_pb(&p2, up), MN_OK);
    assert_int_equal(p2.pol_round, 1);
    assert_int_equal(p2.proposer_index, p.proposer_index);
    assert_memory_equal(p2.block_hash, HB, 32);
    up->block_hash.len = 0; /* a proposal of nothing */
    assert_int_equal(mn_cons_proposal_from_pb(&p2, up), MN_EINVAL);
    midnode__proposal__free_unpacked(up, NULL);

    mn_cons_record r = {.height = 3, .round = 1, .step = MN_SIGN_PROPOSAL, .has_hash = true, .pol_round = 0,
                        .validator_index = 2}, r2;
    memcpy(r.block_hash, HA, 32);
    memset(r.sig, 9, 64);
    Midnode__SignedRecord pr;
    mn_cons_record_to_pb(&pr, &r);
    len = midnode__signed_record__pack(&pr, buf);
    Midnode__SignedRecord *ur = midnode__signed_record__unpack(NULL, len, buf);
    assert_int_equal(mn_cons_record_from_pb(&r2, ur), MN_OK);
    assert_int_equal(r2.step, MN_SIGN_PROPOSAL);
    assert_int_equal(r2.pol_round, 0);
    assert_int_equal(r2.validator_index, 2);
    assert_memory_equal(r2.sig, r.sig, 64);
    ur->step = 4;
    assert_int_equal(mn_cons_record_from_pb(&r2, ur), MN_EINVAL);
    midnode__signed_record__free_unpacked(ur, NULL);
    mn_cons_record mark = {.height = 3, .round = 6, .step = MN_CONS_STEP_ROUND, .pol_round = -1};
    mn_cons_record_to_pb(&pr, &mark);
    len = midnode__signed_record__pack(&pr, buf);
    ur = midnode__signed_record__unpack(NULL, len, buf);
    assert_int_equal(mn_cons_record_from_pb(&r2, ur), MN_OK);
    assert_int_equal(r2.step, MN_CONS_STEP_ROUND);
    assert_int_equal(r2.round, 6);
    midnode__signed_record__free_unpacked(ur, NULL);

    mn_cons_cert cert = {.height = 9, .round = 2, .count = 3}, cert2;
    memcpy(cert.block_hash, HA, 32);
    for (uint32_t i = 0; i < 3; i++) {
        mn_cons_vote pv3 = vote(i, MN_CONS_PRECOMMIT, 9, 2, HA);
        cert.sigs[i].validator_index = i;
        memcpy(cert.sigs[i].sig, pv3.sig, 64);
    }
    mn_cons_cert_pb store;
    len = midnode__commit_certificate__pack(mn_cons_cert_to_pb(&store, &cert), buf);
    Midnode__CommitCertificate *uc = midnode__commit_certificate__unpack(NULL, len, buf);
    assert_int_equal(mn_cons_cert_from_pb(&cert2, uc), MN_OK);
    mn_cons_crypto cr = t_crypto(0);
    assert_int_equal(mn_cons_check_certificate(CHAIN, 4, pubs, 9, HA, &cert2, &cr), MN_OK);
    uc->sigs[1]->signature.len = 10;
    assert_int_equal(mn_cons_cert_from_pb(&cert2, uc), MN_EINVAL);
    midnode__commit_certificate__free_unpacked(uc, NULL);
}

/* ---- the simulator itself */

static void simulator_passes_and_replays(void **state) {
    (void)state;
    for (uint32_t n = 1; n <= 10; n += 3) {
        sim_params p = {.n = n, .byzantine = -1, .seed = 11, .steps = 1500};
        sim_result a, b;
        bool ok = sim_run(&p, &a);
        if (!ok) fail_msg("n=%u: %s (replay: %s)", n, a.reason, sim_replay_command(&p));
        assert_true(a.min_height >= 2);
        assert_true(sim_run(&p, &b));
        assert_int_equal(a.events, b.events); /* deterministic */
        assert_int_equal(a.max_height, b.max_height);
    }
}

static void simulator_catches_broken_variants(void **state) {
    (void)state;
    for (int v = SIM_VARIANT_QUORUM_2F; v < SIM_VARIANT_COUNT; v++) {
        bool caught = false;
        for (uint64_t seed = 1; seed <= 20 && !caught; seed++) {
            sim_params p = {.n = 4, .byzantine = -1, .seed = seed, .steps = 3000, .variant = v};
            sim_result r;
            caught = !sim_run(&p, &r);
        }
        if (!caught) fail_msg("variant %s not caught in 20 seeds", sim_variant_name(v));
    }
    assert_int_equal(sim_variant_parse("skip-lock"), SIM_VARIANT_SKIP_LOCK);
    assert_int_equal(sim_variant_parse("nope"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proposer_is_round_robin),
        cmocka_unit_test(new_refuses_bad_config),
        cmocka_unit_test(single_validator_commits_every_height),
        cmocka_unit_test(happy_path_locks_and_commits),
        cmocka_unit_test(two_precommits_of_four_do_not_commit),
        cmocka_unit_test(invalid_block_gets_nil_prevote),
        cmocka_unit_test(no_prevote_before_verdict),
        cmocka_unit_test(timeouts_vote_nil_and_advance),
        cmocka_unit_test(nil_quorum_precommits_nil),
        cmocka_unit_test(lock_is_kept_until_a_later_polka),
        cmocka_unit_test(skip_lock_variant_breaks_the_lock),
        cmocka_unit_test(conflicting_votes_are_evidence),
        cmocka_unit_test(equivocator_counts_toward_the_relayed_polka),
        cmocka_unit_test(bad_input_is_refused),
        cmocka_unit_test(next_height_messages_are_buffered),
        cmocka_unit_test(future_round_with_weak_quorum_is_joined),
        cmocka_unit_test(restart_never_signs_a_conflict),
        cmocka_unit_test(observer_never_signs),
        cmocka_unit_test(certificate_check_refuses_each_flaw),
        cmocka_unit_test(secp256k1_single_validator_chain),
        cmocka_unit_test(pb_round_trips_and_refuses_bad_lengths),
        cmocka_unit_test(simulator_passes_and_replays),
        cmocka_unit_test(simulator_catches_broken_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
