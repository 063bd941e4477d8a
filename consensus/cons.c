/* cons.c: the Tendermint state machine (see cons.h). The "upon" rules of
 * Algorithm 1 are evaluated to a fixed point after every input; every
 * signature passes the double-sign guard before it is queued, and the
 * PERSIST action is always queued before the SEND of the same message. */
#include "cons.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum { STEP_PROPOSE = 1, STEP_PREVOTE = 2, STEP_PRECOMMIT = 3 };

#define VERDICTS_MAX 32
#define PROPS_PER_ROUND 2

typedef struct {
    bool has, has_conflict;
    mn_cons_vote v;
    mn_cons_vote conflict; /* the first conflicting vote seen: reported once */
} vote_slot;

typedef struct {
    bool used;
    uint32_t round;
    int nprops;
    /* props[0]: the first proposal received, the one the prevote rules
     * follow; props[1]: the latest different one (an equivocating proposer),
     * kept so a node can still commit/lock a value the others agreed on. */
    mn_cons_proposal props[PROPS_PER_ROUND];
    vote_slot *votes[2]; /* [0] prevotes, [1] precommits; n each */
    bool prevote_timer_set, precommit_timer_set, polka_seen;
} round_slot;

typedef struct {
    bool used, known, valid, asked;
    uint8_t hash[MN_HASH_LEN];
} verdict;

typedef struct {
    bool is_proposal;
    mn_cons_vote v;
    mn_cons_proposal p;
} future_msg;

struct mn_cons {
    mn_cons_config cfg;
    uint32_t quorum, weak; /* 2f+1 and f+1 */
    bool started;
    uint64_t height;
    uint32_t round;
    uint8_t step;
    int32_t locked_round, valid_round;
    uint8_t locked_hash[MN_HASH_LEN], valid_hash[MN_HASH_LEN];
    bool awaiting_block;
    round_slot slots[MN_CONS_ROUND_SLOTS];
    vote_slot *vote_mem;
    verdict verdicts[VERDICTS_MAX];
    bool has_last;
    mn_cons_record last; /* the last message signed: the double-sign guard */
    future_msg *future, *future_scratch;
    size_t nfuture, future_cap;
    /* One input commits at most twice (its own height, then height + 1 from
     * the buffer), so COMMIT actions of one input never share a certificate. */
    mn_cons_cert certs[2];
    unsigned cert_next;
    mn_cons_action *q;
    size_t qhead, qlen;
};

/* ------------------------------------------------------------ helpers */

uint32_t mn_cons_proposer(uint64_t height, uint32_t round, uint32_t n) {
    if (n == 0) return 0;
    return (uint32_t)((height + round) % n);
}

static void push(mn_cons *c, const mn_cons_action *a) {
    assert(c->qlen < MN_CONS_ACTIONS_MAX && "caller drains the queue after every input");
    if (c->qlen >= MN_CONS_ACTIONS_MAX) return;
    c->q[(c->qhead + c->qlen) % MN_CONS_ACTIONS_MAX] = *a;
    c->qlen++;
}

bool mn_cons_next_action(mn_cons *c, mn_cons_action *out) {
    if (!c || c->qlen == 0) return false;
    *out = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % MN_CONS_ACTIONS_MAX;
    c->qlen--;
    return true;
}

static void set_timer(mn_cons *c, int kind, uint32_t ms) {
    mn_cons_action a = {.kind = MN_CONS_SET_TIMER};
    a.u.timer.kind = kind;
    a.u.timer.height = c->height;
    a.u.timer.round = c->round;
    a.u.timer.ms = ms;
    push(c, &a);
}

static uint32_t timeout_ms(const mn_cons *c, uint32_t base) {
    uint64_t ms = (uint64_t)base + (uint64_t)c->round * c->cfg.timeout_delta_ms;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

int mn_cons_vote_digest(const mn_cons_crypto *crypto, const char *chain_id, const mn_cons_vote *v,
                        uint8_t out[MN_HASH_LEN]) {
    uint8_t sb[MN_SIGNBYTES_MAX];
    size_t len = mn_sign_bytes(sb, chain_id, v->type, v->height, v->round, v->has_hash ? v->block_hash : NULL,
                               v->has_hash ? MN_HASH_LEN : 0, -1);
    if (len == 0) return MN_EINVAL;
    crypto->sha256(crypto->ctx, out, sb, len);
    return MN_OK;
}

int mn_cons_proposal_digest(const mn_cons_crypto *crypto, const char *chain_id, const mn_cons_proposal *p,
                            uint8_t out[MN_HASH_LEN]) {
    uint8_t sb[MN_SIGNBYTES_MAX];
    size_t len = mn_sign_bytes(sb, chain_id, MN_SIGN_PROPOSAL, p->height, p->round, p->block_hash, MN_HASH_LEN,
                               p->pol_round);
    if (len == 0) return MN_EINVAL;
    crypto->sha256(crypto->ctx, out, sb, len);
    return MN_OK;
}

static bool sig_ok(const mn_cons *c, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                   uint32_t index) {
    if (c->cfg.test_flags & MN_CONS_TEST_NO_SIG_CHECK) return true;
    return c->cfg.crypto.verify(c->cfg.crypto.ctx, sig, digest, c->cfg.pubkeys[index]);
}

static bool vote_equal(const mn_cons_vote *a, const mn_cons_vote *b) {
    return a->type == b->type && a->has_hash == b->has_hash && a->height == b->height && a->round == b->round &&
           a->validator_index == b->validator_index &&
           (!a->has_hash || memcmp(a->block_hash, b->block_hash, MN_HASH_LEN) == 0) &&
           memcmp(a->sig, b->sig, MN_SIG_LEN) == 0;
}

static bool proposal_equal(const mn_cons_proposal *a, const mn_cons_proposal *b) {
    return a->height == b->height && a->round == b->round && a->pol_round == b->pol_round &&
           a->proposer_index == b->proposer_index && memcmp(a->block_hash, b->block_hash, MN_HASH_LEN) == 0 &&
           memcmp(a->sig, b->sig, MN_SIG_LEN) == 0;
}

static bool same_vote_value(const mn_cons_vote *a, const mn_cons_vote *b) {
    if (a->has_hash != b->has_hash) return false;
    return !a->has_hash || memcmp(a->block_hash, b->block_hash, MN_HASH_LEN) == 0;
}

/* ------------------------------------------------------------ verdicts */

static verdict *verdict_find(mn_cons *c, const uint8_t hash[MN_HASH_LEN]) {
    for (int i = 0; i < VERDICTS_MAX; i++)
        if (c->verdicts[i].used && memcmp(c->verdicts[i].hash, hash, MN_HASH_LEN) == 0) return &c->verdicts[i];
    return NULL;
}

static verdict *verdict_get(mn_cons *c, const uint8_t hash[MN_HASH_LEN]) {
    verdict *v = verdict_find(c, hash);
    if (v) return v;
    int victim = -1;
    for (int i = 0; i < VERDICTS_MAX && victim < 0; i++)
        if (!c->verdicts[i].used) victim = i;
    /* Full: forget an entry that is neither locked nor valid; only a
     * Byzantine flood of proposals gets here, and a forgotten verdict is
     * merely asked for again. */
    for (int i = 0; i < VERDICTS_MAX && victim < 0; i++) {
        bool keep = (c->locked_round >= 0 && memcmp(c->verdicts[i].hash, c->locked_hash, MN_HASH_LEN) == 0) ||
                    (c->valid_round >= 0 && memcmp(c->verdicts[i].hash, c->valid_hash, MN_HASH_LEN) == 0);
        if (!keep) victim = i;
    }
    assert(victim >= 0);
    v = &c->verdicts[victim];
    memset(v, 0, sizeof *v);
    v->used = true;
    memcpy(v->hash, hash, MN_HASH_LEN);
    return v;
}

/* 1 valid, 0 invalid, -1 unknown (asked for once). */
static int verdict_of(mn_cons *c, const uint8_t hash[MN_HASH_LEN], uint32_t round) {
    verdict *v = verdict_get(c, hash);
    if (v->known) return v->valid ? 1 : 0;
    if (!v->asked) {
        v->asked = true;
        mn_cons_action a = {.kind = MN_CONS_NEED_VERDICT};
        a.u.need.height = c->height;
        a.u.need.round = round;
        memcpy(a.u.need.block_hash, hash, MN_HASH_LEN);
        push(c, &a);
    }
    return -1;
}

/* ------------------------------------------------------------ rounds */

static round_slot *slot_find(mn_cons *c, uint32_t round) {
    for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++)
        if (c->slots[i].used && c->slots[i].round == round) return &c->slots[i];
    return NULL;
}

static void slot_clear(mn_cons *c, round_slot *s) {
    vote_slot *v0 = s->votes[0], *v1 = s->votes[1];
    memset(s, 0, sizeof *s);
    s->votes[0] = v0;
    s->votes[1] = v1;
    memset(v0, 0, sizeof *v0 * c->cfg.n);
    memset(v1, 0, sizeof *v1 * c->cfg.n);
}

static bool wanted_pol_round(const mn_cons *c, uint32_t round) {
    const round_slot *cur = slot_find((mn_cons *)c, c->round);
    for (int k = 0; cur && k < cur->nprops; k++)
        if (cur->props[k].pol_round >= 0 && (uint32_t)cur->props[k].pol_round == round) return true;
    return false;
}

static bool slot_protected(const mn_cons *c, uint32_t round) {
    return round == c->round || (int64_t)round == c->locked_round || (int64_t)round == c->valid_round ||
           wanted_pol_round(c, round);
}

/* The slot of `round`, made when missing. Rounds ahead of ours (line 55)
 * and the round a current proposal cites as its polka (line 28) may evict
 * the lowest unprotected round; other old rounds only fill free slots.
 * NULL when there is no room. */
static round_slot *slot_get(mn_cons *c, uint32_t round) {
    round_slot *s = slot_find(c, round);
    if (s) return s;
    round_slot *victim = NULL;
    for (int i = 0; i < MN_CONS_ROUND_SLOTS && !victim; i++)
        if (!c->slots[i].used) victim = &c->slots[i];
    if (!victim) {
        if (round < c->round && !slot_protected(c, round)) return NULL;
        for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++) {
            round_slot *t = &c->slots[i];
            if (slot_protected(c, t->round)) continue;
            if (!victim || t->round < victim->round) victim = t;
        }
        if (!victim) return NULL;
    }
    slot_clear(c, victim);
    victim->used = true;
    victim->round = round;
    return victim;
}

/* The vote of one validator matching `which` (0 any, 1 nil, 2 for hash):
 * its first vote, or else the conflicting one it also signed. Counting an
 * equivocator for both values is sound (quorum intersection still leaves a
 * correct validator in common) and needed: a node that first saw the
 * Byzantine vote for X must still count the polka for Y relayed to it. */
static const mn_cons_vote *vote_matching(const vote_slot *vs, int which, const uint8_t *hash) {
    const mn_cons_vote *cands[2] = {vs->has ? &vs->v : NULL, vs->has_conflict ? &vs->conflict : NULL};
    for (int k = 0; k < 2; k++) {
        const mn_cons_vote *v = cands[k];
        if (!v) continue;
        if (which == 0) return v;
        if (which == 1 && !v->has_hash) return v;
        if (which == 2 && v->has_hash && memcmp(v->block_hash, hash, MN_HASH_LEN) == 0) return v;
    }
    return NULL;
}

static uint32_t count_votes(const mn_cons *c, const round_slot *s, int type, int which,
                            const uint8_t *hash) {
    if (!s) return 0;
    const vote_slot *vs = s->votes[type == MN_CONS_PREVOTE ? 0 : 1];
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->cfg.n; i++)
        if (vote_matching(&vs[i], which, hash)) k++;
    return k;
}

static const mn_cons_proposal *slot_proposal_for(const round_slot *s, const uint8_t hash[MN_HASH_LEN]) {
    for (int i = 0; s && i < s->nprops; i++)
        if (memcmp(s->props[i].block_hash, hash, MN_HASH_LEN) == 0) return &s->props[i];
    return NULL;
}

/* ------------------------------------------------------------ signing */

static int cmp_hrs(uint64_t h1, uint32_t r1, uint8_t s1, uint64_t h2, uint32_t r2, uint8_t s2) {
    if (h1 != h2) return h1 < h2 ? -1 : 1;
    if (r1 != r2) return r1 < r2 ? -1 : 1;
    if (s1 != s2) return s1 < s2 ? -1 : 1;
    return 0;
}

/* The double-sign guard: signs (height, round, step, value) only when it is
 * after the last signed message, or is that very message again (then the
 * stored signature is reused). Queues PERSIST for a new signature.
 * Returns true when sig holds a signature that may be sent. */
static bool guarded_sign(mn_cons *c, uint8_t step, uint32_t round, bool has_hash, const uint8_t *hash,
                         int32_t pol_round, const uint8_t digest[MN_HASH_LEN], uint8_t sig[MN_SIG_LEN]) {
    if (c->cfg.self < 0) return false;
    if (c->has_last) {
        int o = cmp_hrs(c->height, round, step, c->last.height, c->last.round, c->last.step);
        if (o < 0) return false;
        if (o == 0) {
            bool same = c->last.has_hash == has_hash &&
                        (!has_hash || memcmp(c->last.block_hash, hash, MN_HASH_LEN) == 0) &&
                        (step != MN_SIGN_PROPOSAL || c->last.pol_round == pol_round);
            if (!same) return false;
            memcpy(sig, c->last.sig, MN_SIG_LEN);
            return true;
        }
    }
    if (c->cfg.crypto.sign(c->cfg.crypto.ctx, sig, digest) != MN_OK) return false;
    mn_cons_record r = {.height = c->height, .round = round, .step = step, .has_hash = has_hash,
                        .pol_round = step == MN_SIGN_PROPOSAL ? pol_round : -1,
                        .validator_index = (uint32_t)c->cfg.self};
    if (has_hash) memcpy(r.block_hash, hash, MN_HASH_LEN);
    memcpy(r.sig, sig, MN_SIG_LEN);
    c->last = r;
    c->has_last = true;
    mn_cons_action a = {.kind = MN_CONS_PERSIST};
    a.u.record = r;
    push(c, &a);
    return true;
}

static void store_vote(mn_cons *c, round_slot *s, const mn_cons_vote *v) {
    vote_slot *vs = &s->votes[v->type == MN_CONS_PREVOTE ? 0 : 1][v->validator_index];
    (void)c;
    vs->has = true;
    vs->v = *v;
}

static void store_proposal(round_slot *s, const mn_cons_proposal *p) {
    if (slot_proposal_for(s, p->block_hash)) return;
    if (s->nprops < PROPS_PER_ROUND) s->props[s->nprops++] = *p;
    else s->props[PROPS_PER_ROUND - 1] = *p;
}

static void cast_vote(mn_cons *c, int type, bool has_hash, const uint8_t *hash) {
    mn_cons_vote v = {.type = (uint8_t)type, .has_hash = has_hash, .height = c->height, .round = c->round,
                      .validator_index = c->cfg.self < 0 ? 0 : (uint32_t)c->cfg.self};
    if (has_hash) memcpy(v.block_hash, hash, MN_HASH_LEN);
    uint8_t digest[MN_HASH_LEN];
    if (mn_cons_vote_digest(&c->cfg.crypto, c->cfg.chain_id, &v, digest) != MN_OK) return;
    if (!guarded_sign(c, (uint8_t)type, c->round, has_hash, hash, -1, digest, v.sig)) return;
    round_slot *s = slot_get(c, c->round);
    if (s) store_vote(c, s, &v);
    mn_cons_action a = {.kind = MN_CONS_SEND_VOTE};
    a.u.vote = v;
    push(c, &a);
}

static void send_proposal(mn_cons *c, const uint8_t hash[MN_HASH_LEN], int32_t pol_round) {
    mn_cons_proposal p = {.height = c->height, .round = c->round, .pol_round = pol_round,
                          .proposer_index = (uint32_t)c->cfg.self};
    memcpy(p.block_hash, hash, MN_HASH_LEN);
    uint8_t digest[MN_HASH_LEN];
    if (mn_cons_proposal_digest(&c->cfg.crypto, c->cfg.chain_id, &p, digest) != MN_OK) return;
    if (!guarded_sign(c, MN_SIGN_PROPOSAL, c->round, true, hash, pol_round, digest, p.sig)) return;
    round_slot *s = slot_get(c, c->round);
    if (s) store_proposal(s, &p);
    mn_cons_action a = {.kind = MN_CONS_SEND_PROPOSAL};
    a.u.proposal = p;
    push(c, &a);
}

/* ------------------------------------------------------------ rules */

static void cast_vote(mn_cons *c, int type, bool has_hash, const uint8_t *hash);

static void start_round(mn_cons *c, uint32_t round) {
    if (round > c->round && c->step < STEP_PRECOMMIT) {
        /* Leaving a round early (line 47 or 55) with nil votes, which are
         * always safe: peers still in that round may be one precommit short
         * of their own timeout, and this node may never resend what it
         * received there (a restart forgets it), only what it signed. */
        if (c->step == STEP_PROPOSE) cast_vote(c, MN_CONS_PREVOTE, false, NULL);
        cast_vote(c, MN_CONS_PRECOMMIT, false, NULL);
    }
    if (c->cfg.self >= 0 && round > 0 && round != c->round) {
        /* Entering a round is made durable too: a validator restarted into
         * an earlier round than its peers could leave them a vote short of
         * every timeout (they moved on counting on it). */
        mn_cons_action a = {.kind = MN_CONS_PERSIST};
        a.u.record.height = c->height;
        a.u.record.round = round;
        a.u.record.step = MN_CONS_STEP_ROUND;
        a.u.record.pol_round = -1;
        a.u.record.validator_index = (uint32_t)c->cfg.self;
        push(c, &a);
    }
    c->round = round;
    c->step = STEP_PROPOSE;
    c->awaiting_block = false;
    set_timer(c, MN_CONS_TIMEOUT_RESEND, c->cfg.resend_ms);
    set_timer(c, MN_CONS_TIMEOUT_PROPOSE, timeout_ms(c, c->cfg.timeout_propose_ms));
    if (c->cfg.self < 0 || mn_cons_proposer(c->height, round, c->cfg.n) != (uint32_t)c->cfg.self) return;
    round_slot *s = slot_find(c, round);
    if (s && s->nprops > 0 && s->props[0].proposer_index == (uint32_t)c->cfg.self) {
        /* restored from the vote log: send exactly what was signed */
        send_proposal(c, s->props[0].block_hash, s->props[0].pol_round);
    } else if (c->valid_round >= 0) {
        send_proposal(c, c->valid_hash, c->valid_round);
    } else {
        c->awaiting_block = true;
        mn_cons_action a = {.kind = MN_CONS_NEED_BLOCK};
        a.u.need.height = c->height;
        a.u.need.round = round;
        push(c, &a);
    }
}

static void replay_future(mn_cons *c);

static void new_height(mn_cons *c, uint64_t height) {
    c->height = height;
    c->locked_round = c->valid_round = -1;
    memset(c->locked_hash, 0, MN_HASH_LEN);
    memset(c->valid_hash, 0, MN_HASH_LEN);
    for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++) slot_clear(c, &c->slots[i]);
    memset(c->verdicts, 0, sizeof c->verdicts);
    c->round = 0;
    replay_future(c);
    start_round(c, 0);
}

static void decide(mn_cons *c, const round_slot *s, const uint8_t hash[MN_HASH_LEN]) {
    mn_cons_cert *cert = &c->certs[c->cert_next++ % 2];
    memset(cert, 0, sizeof *cert);
    cert->height = c->height;
    cert->round = s->round;
    memcpy(cert->block_hash, hash, MN_HASH_LEN);
    const vote_slot *vs = s->votes[1];
    for (uint32_t i = 0; i < c->cfg.n; i++) {
        const mn_cons_vote *v = vote_matching(&vs[i], 2, hash);
        if (!v) continue;
        cert->sigs[cert->count].validator_index = i;
        memcpy(cert->sigs[cert->count].sig, v->sig, MN_SIG_LEN);
        cert->count++;
    }
    mn_cons_action a = {.kind = MN_CONS_COMMIT};
    a.u.commit.height = c->height;
    a.u.commit.round = s->round;
    memcpy(a.u.commit.block_hash, hash, MN_HASH_LEN);
    a.u.commit.cert = cert;
    push(c, &a);
    new_height(c, c->height + 1);
}

/* Line 49: a quorum of precommits for a proposed, valid block in any round. */
static bool try_commit(mn_cons *c) {
    for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++) {
        round_slot *s = &c->slots[i];
        if (!s->used) continue;
        for (int k = 0; k < s->nprops; k++) {
            const uint8_t *h = s->props[k].block_hash;
            if (count_votes(c, s, MN_CONS_PRECOMMIT, 2, h) < c->quorum) continue;
            if (verdict_of(c, h, s->round) != 1) continue;
            decide(c, s, h);
            return true;
        }
    }
    return false;
}

static bool lock_allows(const mn_cons *c, const uint8_t hash[MN_HASH_LEN], int32_t pol_round) {
    if (c->cfg.test_flags & MN_CONS_TEST_SKIP_LOCK) return true;
    if (c->locked_round < 0) return true;
    if (memcmp(c->locked_hash, hash, MN_HASH_LEN) == 0) return true;
    return pol_round >= 0 && c->locked_round <= pol_round;
}

/* The prevotes behind a lock go to the vote log with it: after a restart
 * the lock is restored, and without its polka this validator could neither
 * re-propose the locked value nor convince others (line 28) to unlock. */
static void persist_polka(mn_cons *c, const round_slot *s, const uint8_t hash[MN_HASH_LEN]) {
    const vote_slot *vs = s->votes[0];
    for (uint32_t i = 0; i < c->cfg.n; i++) {
        const mn_cons_vote *v = vote_matching(&vs[i], 2, hash);
        if (!v || (int64_t)i == c->cfg.self) continue;
        mn_cons_action a = {.kind = MN_CONS_PERSIST};
        mn_cons_record *r = &a.u.record;
        r->height = c->height;
        r->round = s->round;
        r->step = MN_SIGN_PREVOTE;
        r->has_hash = true;
        memcpy(r->block_hash, hash, MN_HASH_LEN);
        r->pol_round = -1;
        r->validator_index = i;
        memcpy(r->sig, v->sig, MN_SIG_LEN);
        push(c, &a);
    }
}

/* One pass over the rules of the current round; true when one fired. */
static bool step_rules(mn_cons *c) {
    if (try_commit(c)) return true;
    round_slot *s = slot_find(c, c->round);

    /* Lines 22 and 28: prevote on the round's first proposal. */
    if (c->step == STEP_PROPOSE && s && s->nprops > 0) {
        const mn_cons_proposal *p = &s->props[0];
        bool decided = false, yes = false;
        if (p->pol_round < 0) {
            decided = true;
        } else if ((uint32_t)p->pol_round < c->round &&
                   count_votes(c, slot_find(c, (uint32_t)p->pol_round), MN_CONS_PREVOTE, 2, p->block_hash) >=
                       c->quorum) {
            decided = true;
        }
        if (decided) {
            int vd = verdict_of(c, p->block_hash, c->round);
            if (vd >= 0) {
                yes = vd == 1 && lock_allows(c, p->block_hash, p->pol_round);
                c->step = STEP_PREVOTE;
                cast_vote(c, MN_CONS_PREVOTE, yes, p->block_hash);
                return true;
            }
        }
    }
    if (!s) goto future_rounds;

    /* Line 34 */
    if (c->step == STEP_PREVOTE && !s->prevote_timer_set &&
        count_votes(c, s, MN_CONS_PREVOTE, 0, NULL) >= c->quorum) {
        s->prevote_timer_set = true;
        set_timer(c, MN_CONS_TIMEOUT_PREVOTE, timeout_ms(c, c->cfg.timeout_prevote_ms));
        return true;
    }
    /* Line 36: a polka for a valid proposed block. */
    if (c->step >= STEP_PREVOTE && !s->polka_seen) {
        for (int k = 0; k < s->nprops; k++) {
            const uint8_t *h = s->props[k].block_hash;
            if (count_votes(c, s, MN_CONS_PREVOTE, 2, h) < c->quorum) continue;
            if (verdict_of(c, h, c->round) != 1) continue;
            s->polka_seen = true;
            if (c->step == STEP_PREVOTE) {
                persist_polka(c, s, h);
                c->locked_round = (int32_t)c->round;
                memcpy(c->locked_hash, h, MN_HASH_LEN);
                c->step = STEP_PRECOMMIT;
                cast_vote(c, MN_CONS_PRECOMMIT, true, h);
            }
            c->valid_round = (int32_t)c->round;
            memcpy(c->valid_hash, h, MN_HASH_LEN);
            return true;
        }
    }
    /* Line 44 */
    if (c->step == STEP_PREVOTE && count_votes(c, s, MN_CONS_PREVOTE, 1, NULL) >= c->quorum) {
        c->step = STEP_PRECOMMIT;
        cast_vote(c, MN_CONS_PRECOMMIT, false, NULL);
        return true;
    }
    /* Line 47 */
    if (!s->precommit_timer_set && count_votes(c, s, MN_CONS_PRECOMMIT, 0, NULL) >= c->quorum) {
        s->precommit_timer_set = true;
        set_timer(c, MN_CONS_TIMEOUT_PRECOMMIT, timeout_ms(c, c->cfg.timeout_precommit_ms));
        return true;
    }

future_rounds:
    /* Line 55: f+1 validators are in a later round: join the latest such. */
    {
        round_slot *best = NULL;
        for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++) {
            round_slot *t = &c->slots[i];
            if (!t->used || t->round <= c->round) continue;
            uint32_t k = 0;
            for (uint32_t v = 0; v < c->cfg.n; v++) {
                bool any = t->votes[0][v].has || t->votes[1][v].has;
                for (int p = 0; p < t->nprops && !any; p++) any = t->props[p].proposer_index == v;
                if (any) k++;
            }
            if (k >= c->weak && (!best || t->round > best->round)) best = t;
        }
        if (best) {
            start_round(c, best->round);
            return true;
        }
    }
    return false;
}

static void evaluate(mn_cons *c) {
    /* Each firing advances the state monotonically; the bound only guards
     * against a programming error looping forever. */
    for (int guard = 0; guard < 10000; guard++)
        if (!step_rules(c)) return;
    assert(!"consensus rules did not reach a fixed point");
}

/* ------------------------------------------------------------ inputs */

static int ingest_vote(mn_cons *c, const mn_cons_vote *v, bool verified);
static int ingest_proposal(mn_cons *c, const mn_cons_proposal *p, bool verified);

static int buffer_future(mn_cons *c, const future_msg *m) {
    uint32_t sender = m->is_proposal ? m->p.proposer_index : m->v.validator_index;
    uint32_t k = 0;
    for (size_t i = 0; i < c->nfuture; i++) {
        const future_msg *f = &c->future[i];
        if ((f->is_proposal ? f->p.proposer_index : f->v.validator_index) == sender) k++;
        if (f->is_proposal == m->is_proposal &&
            (m->is_proposal ? proposal_equal(&f->p, &m->p) : vote_equal(&f->v, &m->v)))
            return MN_OK;
    }
    if (k >= MN_CONS_FUTURE_PER_VALIDATOR || c->nfuture >= c->future_cap) return MN_ETOOBIG;
    c->future[c->nfuture++] = *m;
    return MN_OK;
}

static void replay_future(mn_cons *c) {
    size_t n = c->nfuture;
    memcpy(c->future_scratch, c->future, n * sizeof *c->future);
    c->nfuture = 0;
    for (size_t i = 0; i < n; i++) {
        const future_msg *m = &c->future_scratch[i];
        if (m->is_proposal) {
            if (m->p.height == c->height) (void)ingest_proposal(c, &m->p, true);
        } else if (m->v.height == c->height) {
            (void)ingest_vote(c, &m->v, true);
        }
    }
}

static int check_height(const mn_cons *c, uint64_t height, uint32_t round) {
    if (height < c->height) return MN_ESTATE;
    if (height > c->height + 1) return MN_EAGAIN;
    if (height == c->height && round > c->round + MN_CONS_ROUND_AHEAD) return MN_ESTATE;
    return MN_OK;
}

/* A block value that a proposal of the round, the lock or the valid value
 * names. */
static bool value_matters(const mn_cons *c, const round_slot *s, const mn_cons_vote *v) {
    if (!v->has_hash) return false;
    if (slot_proposal_for(s, v->block_hash)) return true;
    if (c->locked_round >= 0 && memcmp(v->block_hash, c->locked_hash, MN_HASH_LEN) == 0) return true;
    return c->valid_round >= 0 && memcmp(v->block_hash, c->valid_hash, MN_HASH_LEN) == 0;
}

static int ingest_vote(mn_cons *c, const mn_cons_vote *v, bool verified) {
    if (v->type != MN_CONS_PREVOTE && v->type != MN_CONS_PRECOMMIT) return MN_EINVAL;
    if (v->validator_index >= c->cfg.n || v->height == 0) return MN_EINVAL;
    int rc = check_height(c, v->height, v->round);
    if (rc != MN_OK) return rc;
    round_slot *s = v->height == c->height ? slot_find(c, v->round) : NULL;
    const vote_slot *have = s ? &s->votes[v->type == MN_CONS_PREVOTE ? 0 : 1][v->validator_index] : NULL;
    /* duplicates (of the vote or of its reported conflict): no re-verify */
    if (have && have->has && (vote_equal(&have->v, v) || (have->has_conflict && vote_equal(&have->conflict, v))))
        return MN_OK;
    if (!verified) {
        uint8_t digest[MN_HASH_LEN];
        if (mn_cons_vote_digest(&c->cfg.crypto, c->cfg.chain_id, v, digest) != MN_OK) return MN_EINVAL;
        if (!sig_ok(c, v->sig, digest, v->validator_index)) return MN_ECRYPTO;
    }
    if (v->height == c->height + 1) {
        future_msg m = {.is_proposal = false, .v = *v};
        return buffer_future(c, &m);
    }
    if (!s) s = slot_get(c, v->round);
    if (!s) return MN_ESTATE;
    vote_slot *vs = &s->votes[v->type == MN_CONS_PREVOTE ? 0 : 1][v->validator_index];
    if (vs->has) {
        if (same_vote_value(&vs->v, v)) return MN_OK;
        bool first_conflict = !vs->has_conflict;
        /* One conflicting vote is kept beside the first. It is replaced
         * only while it backs nothing this node cares about, so a flood of
         * an equivocator's votes cannot push out the one a polka needs. */
        if (first_conflict || (!value_matters(c, s, &vs->conflict) && value_matters(c, s, v))) {
            vs->has_conflict = true;
            vs->conflict = *v;
        }
        if (first_conflict) {
            mn_cons_action a = {.kind = MN_CONS_EVIDENCE};
            a.u.evidence.first = vs->v;
            a.u.evidence.second = *v;
            push(c, &a);
        }
        return MN_OK;
    }
    store_vote(c, s, v);
    return MN_OK;
}

static int ingest_proposal(mn_cons *c, const mn_cons_proposal *p, bool verified) {
    if (p->height == 0 || p->proposer_index >= c->cfg.n) return MN_EINVAL;
    if (p->proposer_index != mn_cons_proposer(p->height, p->round, c->cfg.n)) return MN_EINVAL;
    if (p->pol_round < -1 || (p->pol_round >= 0 && (uint32_t)p->pol_round >= p->round)) return MN_EINVAL;
    int rc = check_height(c, p->height, p->round);
    if (rc != MN_OK) return rc;
    round_slot *s = p->height == c->height ? slot_find(c, p->round) : NULL;
    if (s) {
        const mn_cons_proposal *have = slot_proposal_for(s, p->block_hash);
        if (have && proposal_equal(have, p)) return MN_OK;
    }
    if (!verified) {
        uint8_t digest[MN_HASH_LEN];
        if (mn_cons_proposal_digest(&c->cfg.crypto, c->cfg.chain_id, p, digest) != MN_OK) return MN_EINVAL;
        if (!sig_ok(c, p->sig, digest, p->proposer_index)) return MN_ECRYPTO;
    }
    if (p->height == c->height + 1) {
        future_msg m = {.is_proposal = true, .p = *p};
        return buffer_future(c, &m);
    }
    if (!s) s = slot_get(c, p->round);
    if (!s) return MN_ESTATE;
    store_proposal(s, p);
    (void)verdict_of(c, p->block_hash, p->round);
    return MN_OK;
}

int mn_cons_on_vote(mn_cons *c, const mn_cons_vote *v) {
    if (!c || !v || !c->started) return MN_EINVAL;
    int rc = ingest_vote(c, v, false);
    if (rc == MN_OK) evaluate(c);
    return rc;
}

int mn_cons_on_proposal(mn_cons *c, const mn_cons_proposal *p) {
    if (!c || !p || !c->started) return MN_EINVAL;
    int rc = ingest_proposal(c, p, false);
    if (rc == MN_OK) evaluate(c);
    return rc;
}

static void push_vote(mn_cons *c, const mn_cons_vote *v) {
    mn_cons_action a = {.kind = MN_CONS_SEND_VOTE};
    a.u.vote = *v;
    push(c, &a);
}

/* Relays what this node holds, as the paper's gossip assumes (a message one
 * correct process received, all eventually receive): every vote of the
 * current and the previous round, the proposals and polka of the current
 * and valid rounds, and this node's own votes of every remembered round.
 * A peer left behind in a round needs these to time out of it (line 47) or
 * catch up (line 55). Bounded by the slots: at most 4n + 2 * slots + 4. */
static void resend(mn_cons *c) {
    for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++) {
        const round_slot *s = &c->slots[i];
        if (!s->used) continue;
        bool current = s->round == c->round;
        bool previous = c->round > 0 && s->round == c->round - 1;
        bool valid = c->valid_round >= 0 && s->round == (uint32_t)c->valid_round;
        if (current || valid)
            for (int k = 0; k < s->nprops; k++) {
                mn_cons_action a = {.kind = MN_CONS_SEND_PROPOSAL};
                a.u.proposal = s->props[k];
                push(c, &a);
            }
        for (int t = 0; t < 2; t++)
            for (uint32_t v = 0; v < c->cfg.n; v++) {
                const vote_slot *vs = &s->votes[t][v];
                if (!vs->has) continue;
                const mn_cons_vote *polka = valid && t == 0 ? vote_matching(vs, 2, c->valid_hash) : NULL;
                if (polka && polka != &vs->v) push_vote(c, polka);
                if (current || previous || polka == &vs->v || (int64_t)v == c->cfg.self) push_vote(c, &vs->v);
            }
    }
    set_timer(c, MN_CONS_TIMEOUT_RESEND, c->cfg.resend_ms);
}

int mn_cons_on_timeout(mn_cons *c, int kind, uint64_t height, uint32_t round) {
    if (!c || !c->started) return MN_EINVAL;
    if (height != c->height || round != c->round) return MN_OK;
    switch (kind) {
    case MN_CONS_TIMEOUT_PROPOSE:
        if (c->step == STEP_PROPOSE) {
            c->step = STEP_PREVOTE;
            cast_vote(c, MN_CONS_PREVOTE, false, NULL);
        }
        break;
    case MN_CONS_TIMEOUT_PREVOTE:
        if (c->step == STEP_PREVOTE) {
            c->step = STEP_PRECOMMIT;
            cast_vote(c, MN_CONS_PRECOMMIT, false, NULL);
        }
        break;
    case MN_CONS_TIMEOUT_PRECOMMIT:
        start_round(c, round + 1);
        break;
    case MN_CONS_TIMEOUT_RESEND:
        resend(c);
        break;
    default:
        return MN_EINVAL;
    }
    evaluate(c);
    return MN_OK;
}

int mn_cons_block_verdict(mn_cons *c, uint64_t height, const uint8_t block_hash[MN_HASH_LEN], bool valid) {
    if (!c || !block_hash || !c->started) return MN_EINVAL;
    if (height != c->height) return MN_ESTATE;
    verdict *v = verdict_get(c, block_hash);
    v->known = true;
    v->valid = valid;
    v->asked = true;
    evaluate(c);
    return MN_OK;
}

int mn_cons_propose_block(mn_cons *c, uint64_t height, uint32_t round, const uint8_t block_hash[MN_HASH_LEN]) {
    if (!c || !block_hash || !c->started) return MN_EINVAL;
    if (height != c->height || round != c->round || !c->awaiting_block || c->step != STEP_PROPOSE)
        return MN_ESTATE;
    c->awaiting_block = false;
    verdict *v = verdict_get(c, block_hash);
    v->known = v->valid = v->asked = true;
    send_proposal(c, block_hash, -1);
    evaluate(c);
    return MN_OK;
}

int mn_cons_skip_to(mn_cons *c, uint64_t height) {
    if (!c || !c->started) return MN_EINVAL;
    if (height <= c->height) return MN_ESTATE;
    new_height(c, height);
    evaluate(c);
    return MN_OK;
}

/* ------------------------------------------------------------ life cycle */

mn_cons *mn_cons_new(const mn_cons_config *cfg) {
    if (!cfg || cfg->n == 0 || cfg->n > MN_VALIDATORS_MAX) return NULL;
    if (cfg->self < -1 || cfg->self >= (int32_t)cfg->n) return NULL;
    if (!cfg->crypto.sha256 || !cfg->crypto.verify || (cfg->self >= 0 && !cfg->crypto.sign)) return NULL;
    if (memchr(cfg->chain_id, 0, sizeof cfg->chain_id) == NULL) return NULL;
    mn_cons *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cfg = *cfg;
    c->quorum = mn_quorum(cfg->n);
    c->weak = (cfg->n - 1) / 3 + 1;
    if (cfg->test_flags & MN_CONS_TEST_QUORUM_2F) {
        uint32_t f = (cfg->n - 1) / 3;
        c->quorum = 2 * f > 0 ? 2 * f : 1;
    }
    c->future_cap = (size_t)cfg->n * MN_CONS_FUTURE_PER_VALIDATOR;
    c->vote_mem = calloc((size_t)MN_CONS_ROUND_SLOTS * 2 * cfg->n, sizeof *c->vote_mem);
    c->future = calloc(c->future_cap, sizeof *c->future);
    c->future_scratch = calloc(c->future_cap, sizeof *c->future_scratch);
    c->q = calloc(MN_CONS_ACTIONS_MAX, sizeof *c->q);
    if (!c->vote_mem || !c->future || !c->future_scratch || !c->q) {
        mn_cons_free(c);
        return NULL;
    }
    for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++) {
        c->slots[i].votes[0] = c->vote_mem + (size_t)(2 * i) * cfg->n;
        c->slots[i].votes[1] = c->vote_mem + (size_t)(2 * i + 1) * cfg->n;
    }
    c->locked_round = c->valid_round = -1;
    return c;
}

void mn_cons_free(mn_cons *c) {
    if (!c) return;
    free(c->vote_mem);
    free(c->future);
    free(c->future_scratch);
    free(c->q);
    free(c);
}

int mn_cons_start(mn_cons *c, uint64_t height, const mn_cons_record *records, size_t count) {
    if (!c || height == 0 || (count > 0 && !records)) return MN_EINVAL;
    const mn_cons_record *last = NULL, *lock = NULL;
    uint32_t max_round = 0;
    for (size_t i = 0; i < count; i++) {
        const mn_cons_record *r = &records[i];
        if (r->step > MN_SIGN_PRECOMMIT) return MN_EINVAL;
        if (r->height > height) return MN_ESTATE;
        if (r->height < height) continue;
        if (c->cfg.self < 0 || r->validator_index != (uint32_t)c->cfg.self) continue;
        if (r->round > max_round) max_round = r->round;
        if (r->step == MN_CONS_STEP_ROUND) continue;
        if (!last || cmp_hrs(r->height, r->round, r->step, last->height, last->round, last->step) > 0) last = r;
        if (r->step == MN_SIGN_PRECOMMIT && r->has_hash && (!lock || r->round > lock->round)) lock = r;
    }
    c->qhead = c->qlen = 0;
    c->nfuture = 0;
    c->started = true;
    c->height = height;
    c->locked_round = c->valid_round = -1;
    for (int i = 0; i < MN_CONS_ROUND_SLOTS; i++) slot_clear(c, &c->slots[i]);
    memset(c->verdicts, 0, sizeof c->verdicts);
    c->has_last = last != NULL;
    if (last) c->last = *last;
    if (lock) {
        c->locked_round = c->valid_round = (int32_t)lock->round;
        memcpy(c->locked_hash, lock->block_hash, MN_HASH_LEN);
        memcpy(c->valid_hash, lock->block_hash, MN_HASH_LEN);
    }
    uint32_t round = max_round;
    c->round = round;
    /* Bring back what was signed in the restored round, so it is resent
     * as it was and counted in this node's own tallies. */
    if (lock) {
        /* the polka behind the lock, and this validator's own prevote in it */
        round_slot *ls = slot_get(c, lock->round);
        for (size_t i = 0; ls && i < count; i++) {
            const mn_cons_record *r = &records[i];
            if (r->height != height || r->round != lock->round || r->step != MN_SIGN_PREVOTE || !r->has_hash ||
                r->validator_index >= c->cfg.n || memcmp(r->block_hash, lock->block_hash, MN_HASH_LEN) != 0)
                continue;
            mn_cons_vote v = {.type = MN_CONS_PREVOTE, .has_hash = true, .height = height, .round = r->round,
                              .validator_index = r->validator_index};
            memcpy(v.block_hash, r->block_hash, MN_HASH_LEN);
            memcpy(v.sig, r->sig, MN_SIG_LEN);
            store_vote(c, ls, &v);
        }
    }
    /* Everything this validator signed in recent rounds goes back into the
     * slots: it is resent as it was (peers may still be waiting for it) and
     * counted in this node's own tallies. */
    round_slot *s = slot_get(c, round);
    uint32_t oldest = round > MN_CONS_ROUND_AHEAD ? round - MN_CONS_ROUND_AHEAD : 0;
    for (size_t i = 0; s && i < count; i++) {
        const mn_cons_record *r = &records[i];
        if (r->height != height || r->round < oldest || r->round > round || c->cfg.self < 0 ||
            r->validator_index != (uint32_t)c->cfg.self || r->step == MN_CONS_STEP_ROUND)
            continue;
        round_slot *rs = slot_get(c, r->round);
        if (!rs) continue;
        if (r->step == MN_SIGN_PROPOSAL) {
            mn_cons_proposal p = {.height = height, .round = round, .pol_round = r->pol_round,
                                  .proposer_index = (uint32_t)c->cfg.self};
            memcpy(p.block_hash, r->block_hash, MN_HASH_LEN);
            memcpy(p.sig, r->sig, MN_SIG_LEN);
            store_proposal(rs, &p);
        } else {
            mn_cons_vote v = {.type = r->step, .has_hash = r->has_hash, .height = height, .round = r->round,
                              .validator_index = (uint32_t)c->cfg.self};
            memcpy(v.block_hash, r->block_hash, MN_HASH_LEN);
            memcpy(v.sig, r->sig, MN_SIG_LEN);
            store_vote(c, rs, &v);
        }
    }
    c->round = round; /* already in the log: start_round persists nothing */
    start_round(c, round);
    if (last && last->round == round && last->step > STEP_PROPOSE) {
        c->step = last->step;
        /* re-send the restored votes now rather than at the first resend */
        for (int t = 0; s && t < 2; t++) {
            const vote_slot *vs = &s->votes[t][c->cfg.self];
            if (!vs->has) continue;
            mn_cons_action a = {.kind = MN_CONS_SEND_VOTE};
            a.u.vote = vs->v;
            push(c, &a);
        }
    }
    evaluate(c);
    return MN_OK;
}

void mn_cons_get_status(const mn_cons *c, mn_cons_status *out) {
    memset(out, 0, sizeof *out);
    if (!c) return;
    out->height = c->height;
    out->round = c->round;
    out->step = c->step;
    out->locked_round = c->locked_round;
    out->valid_round = c->valid_round;
    memcpy(out->locked_hash, c->locked_hash, MN_HASH_LEN);
    memcpy(out->valid_hash, c->valid_hash, MN_HASH_LEN);
}

int mn_cons_check_certificate(const char *chain_id, uint32_t n, const uint8_t (*pubkeys)[MN_PUBKEY_LEN],
                              uint64_t height, const uint8_t block_hash[MN_HASH_LEN],
                              const mn_cons_cert *cert, const mn_cons_crypto *crypto) {
    if (!chain_id || !pubkeys || !block_hash || !cert || !crypto || !crypto->sha256 || !crypto->verify)
        return MN_EINVAL;
    if (n == 0 || n > MN_VALIDATORS_MAX || cert->count > MN_VALIDATORS_MAX) return MN_EINVAL;
    if (cert->height != height || memcmp(cert->block_hash, block_hash, MN_HASH_LEN) != 0) return MN_EINVAL;
    mn_cons_vote v = {.type = MN_CONS_PRECOMMIT, .has_hash = true, .height = height, .round = cert->round};
    memcpy(v.block_hash, block_hash, MN_HASH_LEN);
    uint8_t digest[MN_HASH_LEN];
    if (mn_cons_vote_digest(crypto, chain_id, &v, digest) != MN_OK) return MN_EINVAL;
    bool seen[MN_VALIDATORS_MAX] = {false};
    uint32_t good = 0;
    for (uint32_t i = 0; i < cert->count; i++) {
        uint32_t idx = cert->sigs[i].validator_index;
        if (idx >= n || seen[idx]) return MN_EINVAL;
        seen[idx] = true;
        if (!crypto->verify(crypto->ctx, cert->sigs[i].sig, digest, pubkeys[idx])) return MN_ECRYPTO;
        good++;
    }
    return good >= mn_quorum(n) ? MN_OK : MN_EAGAIN;
}
