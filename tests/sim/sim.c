/* sim.c: the deterministic consensus simulator (see sim.h). One event queue
 * ordered by (simulated time, sequence number) drives everything; the only
 * source of randomness is the seeded PRNG. */
#include "sim.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cons.h"
#include "crypto.h"

#define MAX_HEIGHTS (1u << 20)
#define ECHO_MEMORY 512

/* ------------------------------------------------------------ PRNG */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint32_t rng_below(uint64_t *s, uint32_t n) { return n ? (uint32_t)(rng_next(s) % n) : 0; }
static bool rng_chance(uint64_t *s, double p) { return (double)(rng_next(s) >> 11) * 0x1.0p-53 < p; }

/* ------------------------------------------------------------ types */

enum ev_type { EV_DELIVER = 1, EV_TIMER, EV_VERDICT, EV_BUILD, EV_CRASH, EV_RESTART, EV_PARTITION, EV_HEAL_LINKS,
               EV_BYZ_NOISE };
enum msg_kind { MSG_VOTE = 1, MSG_PROPOSAL, MSG_SYNC_REQ, MSG_SYNC_RESP };

typedef struct {
    int kind;
    uint32_t from;
    mn_cons_vote vote;
    mn_cons_proposal proposal;
    uint64_t sync_height;   /* request: height wanted; response: height carried */
    uint64_t peer_height;   /* response: the peer's last committed height */
} sim_msg;

typedef struct {
    uint64_t time_ms, seq;
    int type;
    uint32_t node;
    uint64_t epoch;        /* node incarnation the event belongs to */
    int timer_kind;
    uint64_t height;
    uint32_t round;
    uint8_t hash[MN_HASH_LEN];
    sim_msg msg;
} sim_event;

typedef struct {
    uint64_t time_ms, seq;
    uint32_t slot;
} sim_key;

typedef struct {
    uint8_t hash[MN_HASH_LEN];
    uint64_t height;
    bool valid, proposed;
} sim_block;

typedef struct {
    bool has;
    uint8_t hash[MN_HASH_LEN];
} sim_commit;

typedef struct sim sim;

typedef struct {
    sim *s;
    uint32_t index;
} sim_crypto_ctx;

typedef struct {
    mn_cons *eng;
    bool up, byz;
    uint64_t epoch;
    uint64_t committed;          /* last committed height */
    mn_cons_record *log;         /* durable vote log (every record ever persisted) */
    size_t nlog, caplog;
    uint64_t sync_until_ms[MN_VALIDATORS_MAX]; /* per peer: no new sync request before this */
    uint8_t secret[MN_HASH_LEN];
    sim_crypto_ctx cctx;
    uint64_t echoed[ECHO_MEMORY];
    uint8_t group;               /* partition side */
} sim_node;

struct sim {
    sim_params p;
    sim_result *r;
    uint64_t rng;
    uint64_t now_ms, seq;
    sim_key *heap;
    sim_event *pool;
    uint32_t *free_list;
    size_t nheap, capheap, nfree;
    sim_node nodes[MN_VALIDATORS_MAX];
    uint8_t pubkeys[MN_VALIDATORS_MAX][MN_PUBKEY_LEN];
    sim_commit *canon;           /* [height]: the block the first honest committer committed */
    mn_cons_cert *certs;         /* [height]: certificate of the first honest commit */
    size_t capcerts;
    uint32_t *block_index;       /* open addressing over blocks, capacity 2 * capblocks */
    sim_block *blocks;
    size_t nblocks, capblocks;
    uint64_t block_counter;
    /* fault mix of this seed */
    double loss, dup, crash_rate;
    uint32_t delay_max_ms;
    bool healed, partitioned;
    uint32_t nbyz;
    bool failed;
    char chain_id[32];
};

/* ------------------------------------------------------------ failure */

static void fail(sim *s, const char *fmt, ...) MN_PRINTF(2, 3);
static void fail(sim *s, const char *fmt, ...) {
    if (s->failed) return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(s->r->reason, sizeof s->r->reason, "t=%" PRIu64 "ms: ", s->now_ms);
    if (k > 0 && (size_t)k < sizeof s->r->reason) vsnprintf(s->r->reason + k, sizeof s->r->reason - (size_t)k, fmt, ap);
    va_end(ap);
}

static void trace(sim *s, const char *fmt, ...) MN_PRINTF(2, 3);
static void trace(sim *s, const char *fmt, ...) {
    if (!s->p.verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%6" PRIu64 "] ", s->now_ms);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static char *hex8(char out[17], const uint8_t *h) { return mn_hex_encode(out, h, 8); }

/* ------------------------------------------------------------ crypto */

static void c_sha256(void *ctx, uint8_t out[MN_HASH_LEN], const uint8_t *data, size_t len) {
    (void)ctx;
    mn_sha256(out, data, len);
}

static void tag(const uint8_t secret[MN_HASH_LEN], const uint8_t digest[MN_HASH_LEN], uint8_t sig[MN_SIG_LEN]) {
    uint8_t buf[2 * MN_HASH_LEN];
    memcpy(buf, secret, MN_HASH_LEN);
    memcpy(buf + MN_HASH_LEN, digest, MN_HASH_LEN);
    mn_sha256(sig, buf, sizeof buf);
    memcpy(sig + MN_HASH_LEN, sig, MN_HASH_LEN);
    sig[MN_HASH_LEN] ^= 0x5a;
}

static int c_sign(void *ctx, uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN]) {
    sim_crypto_ctx *cc = ctx;
    tag(cc->s->nodes[cc->index].secret, digest, sig);
    return MN_OK;
}

static bool c_verify(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                     const uint8_t pubkey[MN_PUBKEY_LEN]) {
    sim_crypto_ctx *cc = ctx;
    sim *s = cc->s;
    uint32_t idx = pubkey[1];
    if (pubkey[0] != 0x02 || idx >= s->p.n || memcmp(pubkey, s->pubkeys[idx], MN_PUBKEY_LEN) != 0) return false;
    uint8_t want[MN_SIG_LEN];
    tag(s->nodes[idx].secret, digest, want);
    return memcmp(want, sig, MN_SIG_LEN) == 0;
}

static mn_cons_crypto crypto_of(sim *s, uint32_t i) {
    s->nodes[i].cctx.s = s;
    s->nodes[i].cctx.index = i;
    mn_cons_crypto c = {.ctx = &s->nodes[i].cctx, .sha256 = c_sha256, .sign = c_sign, .verify = c_verify};
    return c;
}

static void sign_vote_as(sim *s, uint32_t i, mn_cons_vote *v) {
    mn_cons_crypto c = crypto_of(s, i);
    uint8_t d[MN_HASH_LEN];
    if (mn_cons_vote_digest(&c, s->chain_id, v, d) == MN_OK) tag(s->nodes[i].secret, d, v->sig);
}

static void sign_proposal_as(sim *s, uint32_t i, mn_cons_proposal *p) {
    mn_cons_crypto c = crypto_of(s, i);
    uint8_t d[MN_HASH_LEN];
    if (mn_cons_proposal_digest(&c, s->chain_id, p, d) == MN_OK) tag(s->nodes[i].secret, d, p->sig);
}

/* ------------------------------------------------------------ event heap */

/* The heap orders small keys; events themselves sit in a pool with a free
 * list, so sifting never copies a whole message. */
static bool key_before(const sim_key *a, const sim_key *b) {
    return a->time_ms != b->time_ms ? a->time_ms < b->time_ms : a->seq < b->seq;
}

static void schedule(sim *s, sim_event *e, uint64_t delay_ms) {
    if (s->nheap == s->capheap) {
        size_t cap = s->capheap ? s->capheap * 2 : 1024;
        sim_key *h = realloc(s->heap, cap * sizeof *h);
        sim_event *pool = realloc(s->pool, cap * sizeof *pool);
        uint32_t *fl = realloc(s->free_list, cap * sizeof *fl);
        if (!h || !pool || !fl) abort();
        for (size_t i = s->capheap; i < cap; i++) fl[s->nfree++] = (uint32_t)(cap - 1 - (i - s->capheap));
        s->heap = h;
        s->pool = pool;
        s->free_list = fl;
        s->capheap = cap;
    }
    e->time_ms = s->now_ms + delay_ms;
    e->seq = s->seq++;
    assert(s->nfree > 0);
    uint32_t slot = s->free_list[--s->nfree];
    s->pool[slot] = *e;
    sim_key k = {.time_ms = e->time_ms, .seq = e->seq, .slot = slot};
    size_t i = s->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!key_before(&k, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = k;
}

static bool pop(sim *s, sim_event *out) {
    if (s->nheap == 0) return false;
    uint32_t slot = s->heap[0].slot;
    *out = s->pool[slot];
    s->free_list[s->nfree++] = slot;
    sim_key last = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const sim_key *best = &last;
        if (l < s->nheap && key_before(&s->heap[l], best)) { m = l; best = &s->heap[l]; }
        if (r < s->nheap && key_before(&s->heap[r], best)) { m = r; }
        if (m == i) break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->nheap > 0) s->heap[i] = last;
    return true;
}

/* ------------------------------------------------------------ blocks */

static size_t block_slot(const uint8_t hash[MN_HASH_LEN], size_t cap) {
    uint64_t x;
    memcpy(&x, hash, 8);
    return (size_t)(x & (cap - 1));
}

static sim_block *block_find(sim *s, const uint8_t hash[MN_HASH_LEN]) {
    if (!s->capblocks) return NULL;
    size_t cap = 2 * s->capblocks;
    for (size_t k = block_slot(hash, cap);; k = (k + 1) & (cap - 1)) {
        uint32_t v = s->block_index[k];
        if (v == 0) return NULL;
        if (memcmp(s->blocks[v - 1].hash, hash, MN_HASH_LEN) == 0) return &s->blocks[v - 1];
    }
}

static void block_index_add(sim *s, size_t i) {
    size_t cap = 2 * s->capblocks;
    size_t k = block_slot(s->blocks[i].hash, cap);
    while (s->block_index[k]) k = (k + 1) & (cap - 1);
    s->block_index[k] = (uint32_t)i + 1;
}

static sim_block *block_new(sim *s, uint64_t height, bool valid, bool proposed, uint8_t out[MN_HASH_LEN]) {
    if (s->nblocks == s->capblocks) {
        size_t cap = s->capblocks ? s->capblocks * 2 : 256;
        sim_block *b = realloc(s->blocks, cap * sizeof *b);
        uint32_t *ix = calloc(2 * cap, sizeof *ix);
        if (!b || !ix) abort();
        free(s->block_index);
        s->blocks = b;
        s->block_index = ix;
        s->capblocks = cap;
        for (size_t i = 0; i < s->nblocks; i++) block_index_add(s, i);
    }
    uint8_t seedbuf[24];
    uint64_t k = ++s->block_counter;
    memcpy(seedbuf, &s->p.seed, 8);
    memcpy(seedbuf + 8, &k, 8);
    memcpy(seedbuf + 16, &height, 8);
    sim_block *b = &s->blocks[s->nblocks];
    mn_sha256(b->hash, seedbuf, sizeof seedbuf);
    b->height = height;
    b->valid = valid;
    b->proposed = proposed;
    block_index_add(s, s->nblocks);
    s->nblocks++;
    memcpy(out, b->hash, MN_HASH_LEN);
    return b;
}

/* ------------------------------------------------------------ network */

static bool link_up(sim *s, uint32_t a, uint32_t b) {
    return !s->partitioned || s->nodes[a].group == s->nodes[b].group;
}

static uint32_t delay(sim *s) { return 1 + rng_below(&s->rng, s->healed ? 20 : s->delay_max_ms); }

static void send_to(sim *s, uint32_t from, uint32_t to, const sim_msg *m) {
    if (from == to) return;
    if (!s->healed && (!link_up(s, from, to) || rng_chance(&s->rng, s->loss))) return;
    int copies = (!s->healed && rng_chance(&s->rng, s->dup)) ? 2 : 1;
    for (int k = 0; k < copies; k++) {
        sim_event e = {.type = EV_DELIVER, .node = to, .msg = *m};
        e.msg.from = from;
        schedule(s, &e, delay(s));
    }
}

static void broadcast(sim *s, uint32_t from, const sim_msg *m) {
    for (uint32_t j = 0; j < s->p.n; j++) send_to(s, from, j, m);
}

/* ------------------------------------------------------------ Byzantine behaviour */

static void random_hash_of_height(sim *s, uint64_t height, uint8_t out[MN_HASH_LEN]) {
    /* a block proposed at this height if there is one, else an unknown hash */
    for (int tries = 0; tries < 8 && s->nblocks > 0; tries++) {
        const sim_block *b = &s->blocks[s->nblocks - 1 - rng_below(&s->rng, (uint32_t)(s->nblocks < 32 ? s->nblocks : 32))];
        if (b->height == height) {
            memcpy(out, b->hash, MN_HASH_LEN);
            return;
        }
    }
    for (int i = 0; i < MN_HASH_LEN; i += 8) {
        uint64_t x = rng_next(&s->rng);
        memcpy(out + i, &x, 8);
    }
}

/* A Byzantine vote goes to each peer as chosen by the dice: the honest
 * vote, an opposite vote (equivocation), both, or nothing. */
static void byz_send_vote(sim *s, uint32_t b, const mn_cons_vote *v) {
    for (uint32_t j = 0; j < s->p.n; j++) {
        if (j == b) continue;
        uint32_t d = rng_below(&s->rng, 10);
        sim_msg m = {.kind = MSG_VOTE, .vote = *v};
        if (d < 4) {
            send_to(s, b, j, &m);
            continue;
        }
        if (d == 9) continue;
        mn_cons_vote alt = *v;
        if (alt.has_hash && rng_chance(&s->rng, 0.3)) {
            alt.has_hash = false;
            memset(alt.block_hash, 0, MN_HASH_LEN);
        } else {
            alt.has_hash = true;
            random_hash_of_height(s, v->height, alt.block_hash);
        }
        sign_vote_as(s, b, &alt);
        sim_msg m2 = {.kind = MSG_VOTE, .vote = alt};
        send_to(s, b, j, &m2);
        if (d >= 7) send_to(s, b, j, &m);
    }
}

static void byz_send_proposal(sim *s, uint32_t b, const mn_cons_proposal *p) {
    /* a second proposal for the same round: a valid or invalid other block,
     * or a hash with no block behind it */
    mn_cons_proposal alt = *p;
    uint32_t d = rng_below(&s->rng, 3);
    if (d == 2) random_hash_of_height(s, p->height + 1000000, alt.block_hash); /* unknown */
    else block_new(s, p->height, d == 0, true, alt.block_hash);
    sign_proposal_as(s, b, &alt);
    for (uint32_t j = 0; j < s->p.n; j++) {
        if (j == b) continue;
        sim_msg m = {.kind = MSG_PROPOSAL, .proposal = rng_chance(&s->rng, 0.5) ? *p : alt};
        send_to(s, b, j, &m);
    }
}

/* Echo: vote for every value an honest validator voted for. This is what
 * turns a broken quorum or lock rule into two conflicting commits. */
static void byz_echo(sim *s, uint32_t b, const mn_cons_vote *seen) {
    uint64_t key = seen->height * 1000003u + seen->round * 31u + seen->type;
    if (seen->has_hash) {
        uint64_t x;
        memcpy(&x, seen->block_hash, 8);
        key ^= x;
    }
    sim_node *nb = &s->nodes[b];
    for (int i = 0; i < ECHO_MEMORY; i++)
        if (nb->echoed[i] == key) return;
    nb->echoed[rng_below(&s->rng, ECHO_MEMORY)] = key;
    mn_cons_vote v = *seen;
    v.validator_index = b;
    sign_vote_as(s, b, &v);
    sim_msg m = {.kind = MSG_VOTE, .vote = v};
    if (v.type == MN_CONS_PRECOMMIT && rng_chance(&s->rng, 0.6)) {
        /* completing a commit for one victim only: the others stay locked
         * (or, with a broken lock rule, do not) and move on */
        send_to(s, b, rng_below(&s->rng, s->p.n), &m);
        return;
    }
    broadcast(s, b, &m);
}

/* Garbage and forgeries: malformed indexes, wrong heights, bad signatures,
 * and a forged quorum of precommits with a forged proposal for a fresh
 * block, sent to one victim: only signature checks stop it. */
static void byz_noise(sim *s, uint32_t b) {
    mn_cons_status st;
    mn_cons_get_status(s->nodes[b].eng, &st);
    uint32_t victim = rng_below(&s->rng, s->p.n);
    for (int k = 0; k < 4; k++) {
        sim_msg m = {.kind = rng_chance(&s->rng, 0.5) ? MSG_VOTE : MSG_PROPOSAL};
        m.vote.type = (uint8_t)rng_below(&s->rng, 5);
        m.vote.has_hash = rng_chance(&s->rng, 0.5);
        m.vote.height = st.height + rng_below(&s->rng, 3) - 1;
        m.vote.round = rng_below(&s->rng, 4) ? st.round : (uint32_t)rng_next(&s->rng);
        m.vote.validator_index = rng_below(&s->rng, s->p.n + 3);
        random_hash_of_height(s, st.height, m.vote.block_hash);
        for (int i = 0; i < MN_SIG_LEN; i++) m.vote.sig[i] = (uint8_t)rng_next(&s->rng);
        m.proposal.height = m.vote.height;
        m.proposal.round = m.vote.round;
        m.proposal.pol_round = (int32_t)rng_below(&s->rng, 3) - 2;
        m.proposal.proposer_index = rng_chance(&s->rng, 0.5) ? mn_cons_proposer(st.height, st.round, s->p.n)
                                                               : m.vote.validator_index;
        memcpy(m.proposal.block_hash, m.vote.block_hash, MN_HASH_LEN);
        memcpy(m.proposal.sig, m.vote.sig, MN_SIG_LEN);
        send_to(s, b, victim, &m);
    }
    if (victim == b || s->nodes[victim].byz) return;
    uint8_t h[MN_HASH_LEN];
    block_new(s, st.height, true, false, h);
    sim_msg pm = {.kind = MSG_PROPOSAL};
    pm.proposal.height = st.height;
    pm.proposal.round = st.round;
    pm.proposal.pol_round = -1;
    pm.proposal.proposer_index = mn_cons_proposer(st.height, st.round, s->p.n);
    memcpy(pm.proposal.block_hash, h, MN_HASH_LEN);
    memset(pm.proposal.sig, 0xab, MN_SIG_LEN);
    send_to(s, b, victim, &pm);
    for (uint32_t i = 0; i < s->p.n; i++) {
        for (int t = 0; t < 2; t++) {
            sim_msg vm = {.kind = MSG_VOTE};
            vm.vote.type = t ? MN_CONS_PRECOMMIT : MN_CONS_PREVOTE;
            vm.vote.has_hash = true;
            vm.vote.height = st.height;
            vm.vote.round = st.round;
            vm.vote.validator_index = i;
            memcpy(vm.vote.block_hash, h, MN_HASH_LEN);
            if (i == b) sign_vote_as(s, b, &vm.vote);
            else memset(vm.vote.sig, 0xcd, MN_SIG_LEN);
            send_to(s, b, victim, &vm);
        }
    }
}

/* ------------------------------------------------------------ node life */

static uint32_t flags_of(int variant) {
    switch (variant) {
    case SIM_VARIANT_SKIP_LOCK: return MN_CONS_TEST_SKIP_LOCK;
    case SIM_VARIANT_QUORUM_2F: return MN_CONS_TEST_QUORUM_2F;
    case SIM_VARIANT_NO_SIG_CHECK: return MN_CONS_TEST_NO_SIG_CHECK;
    default: return 0;
    }
}

static void drain(sim *s, uint32_t i);

static void node_boot(sim *s, uint32_t i) {
    sim_node *nd = &s->nodes[i];
    mn_cons_config cfg = {.n = s->p.n, .self = (int32_t)i, .crypto = crypto_of(s, i),
                          .timeout_propose_ms = 300, .timeout_prevote_ms = 100, .timeout_precommit_ms = 100,
                          .timeout_delta_ms = 50, .resend_ms = 800,
                          .test_flags = nd->byz ? 0 : flags_of(s->p.variant)};
    snprintf(cfg.chain_id, sizeof cfg.chain_id, "%s", s->chain_id);
    memcpy(cfg.pubkeys, s->pubkeys, sizeof s->pubkeys[0] * s->p.n);
    nd->eng = mn_cons_new(&cfg);
    if (!nd->eng) {
        fail(s, "mn_cons_new failed for node %u", i);
        return;
    }
    nd->up = true;
    nd->epoch++;
    bool forget = s->p.variant == SIM_VARIANT_FORGET_VOTE_LOG && !nd->byz;
    int rc = mn_cons_start(nd->eng, nd->committed + 1, forget ? NULL : nd->log, forget ? 0 : nd->nlog);
    if (rc != MN_OK) {
        fail(s, "mn_cons_start node %u: %s", i, mn_strerror(rc));
        return;
    }
    drain(s, i);
}

static void node_crash(sim *s, uint32_t i) {
    sim_node *nd = &s->nodes[i];
    mn_cons_free(nd->eng);
    nd->eng = NULL;
    nd->up = false;
    nd->epoch++;
    s->r->crashes++;
    trace(s, "node %u crashes at height %" PRIu64, i, nd->committed + 1);
}

/* ------------------------------------------------------------ checks */

static void record_commit(sim *s, uint32_t i, uint64_t h, const uint8_t hash[MN_HASH_LEN], const mn_cons_cert *cert) {
    sim_node *nd = &s->nodes[i];
    char hx[17];
    trace(s, "node %u commits h=%" PRIu64 " %s", i, h, hex8(hx, hash));
    if (h != nd->committed + 1) fail(s, "node %u committed height %" PRIu64 " after %" PRIu64, i, h, nd->committed);
    if (h >= MAX_HEIGHTS) {
        fail(s, "height bound of the simulator reached");
        return;
    }
    nd->committed = h;
    if (nd->byz) return;
    mn_cons_crypto c = crypto_of(s, i);
    int rc = mn_cons_check_certificate(s->chain_id, s->p.n, (const uint8_t(*)[MN_PUBKEY_LEN])s->pubkeys, h, hash,
                                       cert, &c);
    if (rc != MN_OK && !(s->p.variant == SIM_VARIANT_QUORUM_2F || s->p.variant == SIM_VARIANT_NO_SIG_CHECK))
        fail(s, "node %u committed h=%" PRIu64 " with a certificate that fails: %s", i, h, mn_strerror(rc));
    const sim_block *b = block_find(s, hash);
    if (!b || !b->proposed) fail(s, "node %u committed h=%" PRIu64 " a block never proposed", i, h);
    else if (!b->valid) fail(s, "node %u committed h=%" PRIu64 " a block judged invalid", i, h);
    else if (b->height != h) fail(s, "node %u committed at h=%" PRIu64 " a block built for h=%" PRIu64, i, h, b->height);
    if (h >= s->capcerts) {
        size_t cap = s->capcerts ? s->capcerts * 2 : 64;
        while (cap <= h) cap *= 2;
        mn_cons_cert *cs = realloc(s->certs, cap * sizeof *cs);
        sim_commit *cn = realloc(s->canon, cap * sizeof *cn);
        if (!cs || !cn) abort();
        memset(cn + s->capcerts, 0, (cap - s->capcerts) * sizeof *cn);
        s->certs = cs;
        s->canon = cn;
        s->capcerts = cap;
    }
    if (!s->canon[h].has) {
        s->canon[h].has = true;
        memcpy(s->canon[h].hash, hash, MN_HASH_LEN);
        s->certs[h] = *cert;
    } else if (memcmp(s->canon[h].hash, hash, MN_HASH_LEN) != 0) {
        char a[17], bb[17];
        fail(s, "agreement: node %u committed %s at h=%" PRIu64 ", another honest node %s", i, hex8(a, hash), h,
             hex8(bb, s->canon[h].hash));
    }
}

static bool record_conflicts(const mn_cons_record *a, const mn_cons_record *b) {
    if (a->height != b->height || a->round != b->round || a->step != b->step) return false;
    if (a->has_hash != b->has_hash) return true;
    if (a->has_hash && memcmp(a->block_hash, b->block_hash, MN_HASH_LEN) != 0) return true;
    return a->step == MN_SIGN_PROPOSAL && a->pol_round != b->pol_round;
}

static void persist(sim *s, uint32_t i, const mn_cons_record *r) {
    sim_node *nd = &s->nodes[i];
    if (!nd->byz) {
        for (size_t k = nd->nlog; k-- > 0;) {
            if (nd->log[k].height < r->height) break;
            if (nd->log[k].validator_index == i && r->validator_index == i && record_conflicts(&nd->log[k], r)) {
                fail(s, "honest node %u double-signed h=%" PRIu64 " r=%u step=%u", i, r->height, r->round, r->step);
                break;
            }
        }
    }
    if (nd->nlog == nd->caplog) {
        size_t cap = nd->caplog ? nd->caplog * 2 : 64;
        mn_cons_record *l = realloc(nd->log, cap * sizeof *l);
        if (!l) abort();
        nd->log = l;
        nd->caplog = cap;
    }
    nd->log[nd->nlog++] = *r;
}

static void check_evidence(sim *s, uint32_t i, const mn_cons_vote *a, const mn_cons_vote *b) {
    s->r->evidence++;
    if (s->nodes[i].byz) return;
    mn_cons_crypto c = crypto_of(s, i);
    uint8_t da[MN_HASH_LEN], db[MN_HASH_LEN];
    uint32_t who = a->validator_index;
    if (who >= s->p.n || b->validator_index != who || mn_cons_vote_digest(&c, s->chain_id, a, da) != MN_OK ||
        mn_cons_vote_digest(&c, s->chain_id, b, db) != MN_OK) {
        fail(s, "node %u reported malformed evidence", i);
        return;
    }
    bool signed_ok = c_verify(&s->nodes[i].cctx, a->sig, da, s->pubkeys[who]) &&
                     c_verify(&s->nodes[i].cctx, b->sig, db, s->pubkeys[who]);
    if (!signed_ok && s->p.variant != SIM_VARIANT_NO_SIG_CHECK) fail(s, "node %u reported evidence with bad signatures", i);
    if (!s->nodes[who].byz) fail(s, "node %u reported evidence against honest validator %u", i, who);
}

/* ------------------------------------------------------------ actions */

static void drain(sim *s, uint32_t i) {
    sim_node *nd = &s->nodes[i];
    mn_cons_action a;
    while (nd->eng && mn_cons_next_action(nd->eng, &a)) {
        switch (a.kind) {
        case MN_CONS_PERSIST:
            persist(s, i, &a.u.record);
            break;
        case MN_CONS_SEND_VOTE: {
            /* the vote log holds our own vote before it leaves */
            if (a.u.vote.validator_index == i && !nd->byz) {
                bool found = false;
                for (size_t k = nd->nlog; k-- > 0 && !found;) {
                    const mn_cons_record *r = &nd->log[k];
                    if (r->height < a.u.vote.height) break;
                    found = r->validator_index == i && r->height == a.u.vote.height && r->round == a.u.vote.round && r->step == a.u.vote.type;
                }
                if (!found && s->p.variant != SIM_VARIANT_FORGET_VOTE_LOG)
                    fail(s, "node %u sent a vote that was not persisted first", i);
            }
            if (a.u.vote.validator_index == i) {
                char hx[17] = "nil";
                if (a.u.vote.has_hash) hex8(hx, a.u.vote.block_hash);
                trace(s, "node %u %s h=%" PRIu64 " r=%u %s", i, a.u.vote.type == MN_CONS_PREVOTE ? "prevote" : "precommit",
                      a.u.vote.height, a.u.vote.round, hx);
            }
            if (nd->byz && a.u.vote.validator_index == i) byz_send_vote(s, i, &a.u.vote);
            else {
                sim_msg m = {.kind = MSG_VOTE, .vote = a.u.vote};
                broadcast(s, i, &m);
            }
            break;
        }
        case MN_CONS_SEND_PROPOSAL: {
            if (a.u.proposal.proposer_index == i) {
                char hx[17];
                trace(s, "node %u proposes h=%" PRIu64 " r=%u pol=%d %s", i, a.u.proposal.height, a.u.proposal.round,
                      a.u.proposal.pol_round, hex8(hx, a.u.proposal.block_hash));
            }
            if (nd->byz && a.u.proposal.proposer_index == i) byz_send_proposal(s, i, &a.u.proposal);
            else {
                sim_msg m = {.kind = MSG_PROPOSAL, .proposal = a.u.proposal};
                broadcast(s, i, &m);
            }
            break;
        }
        case MN_CONS_SET_TIMER: {
            sim_event e = {.type = EV_TIMER, .node = i, .epoch = nd->epoch, .timer_kind = a.u.timer.kind,
                           .height = a.u.timer.height, .round = a.u.timer.round};
            schedule(s, &e, a.u.timer.ms);
            break;
        }
        case MN_CONS_NEED_BLOCK: {
            sim_event e = {.type = EV_BUILD, .node = i, .epoch = nd->epoch, .height = a.u.need.height,
                           .round = a.u.need.round};
            schedule(s, &e, 1 + rng_below(&s->rng, 5));
            break;
        }
        case MN_CONS_NEED_VERDICT: {
            sim_event e = {.type = EV_VERDICT, .node = i, .epoch = nd->epoch, .height = a.u.need.height};
            memcpy(e.hash, a.u.need.block_hash, MN_HASH_LEN);
            schedule(s, &e, 1 + rng_below(&s->rng, 5));
            break;
        }
        case MN_CONS_COMMIT:
            record_commit(s, i, a.u.commit.height, a.u.commit.block_hash, a.u.commit.cert);
            break;
        case MN_CONS_EVIDENCE:
            check_evidence(s, i, &a.u.evidence.first, &a.u.evidence.second);
            break;
        default:
            fail(s, "unknown action %d", a.kind);
        }
    }
}

/* ------------------------------------------------------------ events */

static void want_sync(sim *s, uint32_t i, uint32_t from) {
    sim_node *nd = &s->nodes[i];
    /* per peer, so a Byzantine peer that never answers cannot starve it */
    if (s->now_ms < nd->sync_until_ms[from]) return;
    nd->sync_until_ms[from] = s->now_ms + 200;
    trace(s, "node %u asks node %u for h=%" PRIu64, i, from, nd->committed + 1);
    sim_msg m = {.kind = MSG_SYNC_REQ, .sync_height = nd->committed + 1};
    send_to(s, i, from, &m);
}

static void deliver(sim *s, const sim_event *e) {
    uint32_t i = e->node;
    sim_node *nd = &s->nodes[i];
    if (!nd->up) return;
    const sim_msg *m = &e->msg;
    s->r->messages++;
    uint64_t msg_height = 0;
    int rc = MN_OK;
    switch (m->kind) {
    case MSG_VOTE:
        msg_height = m->vote.height;
        rc = mn_cons_on_vote(nd->eng, &m->vote);
        if (nd->byz && rc == MN_OK && m->vote.validator_index != i && !s->nodes[m->vote.validator_index].byz)
            byz_echo(s, i, &m->vote);
        break;
    case MSG_PROPOSAL:
        msg_height = m->proposal.height;
        rc = mn_cons_on_proposal(nd->eng, &m->proposal);
        if (s->p.verbose && m->proposal.pol_round >= 0 && !nd->byz) {
            char hx[17];
            trace(s, "node %u got proposal h=%" PRIu64 " r=%u pol=%d %s from %u: %s", i, m->proposal.height,
                  m->proposal.round, m->proposal.pol_round, hex8(hx, m->proposal.block_hash), m->from, mn_strerror(rc));
        }
        break;
    case MSG_SYNC_REQ: {
        if (nd->byz) return;
        uint64_t h = m->sync_height;
        if (h == 0 || h > nd->committed || h >= s->capcerts || !s->canon[h].has) return;
        sim_msg r = {.kind = MSG_SYNC_RESP, .sync_height = h, .peer_height = nd->committed};
        send_to(s, i, m->from, &r);
        return;
    }
    case MSG_SYNC_RESP: {
        uint64_t h = m->sync_height;
        if (h != nd->committed + 1) return;
        /* the certificate is checked as a syncing daemon would */
        mn_cons_crypto c = crypto_of(s, i);
        if (mn_cons_check_certificate(s->chain_id, s->p.n, (const uint8_t(*)[MN_PUBKEY_LEN])s->pubkeys, h,
                                      s->canon[h].hash, &s->certs[h], &c) != MN_OK) {
            fail(s, "sync: certificate of h=%" PRIu64 " fails", h);
            return;
        }
        s->r->syncs++;
        record_commit(s, i, h, s->canon[h].hash, &s->certs[h]);
        if (mn_cons_skip_to(nd->eng, h + 1) != MN_OK) fail(s, "skip_to refused");
        drain(s, i);
        if (m->peer_height > h) {
            nd->sync_until_ms[m->from] = 0;
            want_sync(s, i, m->from);
        }
        return;
    }
    default:
        return;
    }
    drain(s, i);
    if (rc == MN_EAGAIN || (rc == MN_OK && msg_height > nd->committed + 1)) want_sync(s, i, m->from);
}

static void partition(sim *s) {
    s->partitioned = true;
    s->r->partitions++;
    for (uint32_t i = 0; i < s->p.n; i++) s->nodes[i].group = (uint8_t)rng_below(&s->rng, 2);
    trace(s, "partition");
    sim_event e = {.type = EV_HEAL_LINKS};
    schedule(s, &e, 200 + rng_below(&s->rng, 3000));
}

static void heal(sim *s) {
    s->healed = true;
    s->partitioned = false;
    for (uint32_t i = 0; i < s->p.n; i++)
        if (!s->nodes[i].up) node_boot(s, i);
    trace(s, "heal");
}

static void handle(sim *s, const sim_event *e) {
    sim_node *nd = &s->nodes[e->node];
    switch (e->type) {
    case EV_DELIVER:
        deliver(s, e);
        break;
    case EV_TIMER:
        if (!nd->up || e->epoch != nd->epoch) return;
        if (mn_cons_on_timeout(nd->eng, e->timer_kind, e->height, e->round) != MN_OK) fail(s, "timer refused");
        drain(s, e->node);
        break;
    case EV_VERDICT: {
        if (!nd->up || e->epoch != nd->epoch) return;
        const sim_block *b = block_find(s, e->hash);
        bool valid = b && b->valid && b->height == e->height;
        (void)mn_cons_block_verdict(nd->eng, e->height, e->hash, valid);
        drain(s, e->node);
        break;
    }
    case EV_BUILD: {
        if (!nd->up || e->epoch != nd->epoch) return;
        uint8_t h[MN_HASH_LEN];
        block_new(s, e->height, true, true, h);
        (void)mn_cons_propose_block(nd->eng, e->height, e->round, h);
        drain(s, e->node);
        break;
    }
    case EV_CRASH: {
        if (s->healed) return;
        uint32_t i = rng_below(&s->rng, s->p.n);
        if (s->nodes[i].up && !s->nodes[i].byz) {
            node_crash(s, i);
            sim_event r = {.type = EV_RESTART, .node = i};
            schedule(s, &r, 20 + rng_below(&s->rng, 1500));
        }
        sim_event next = {.type = EV_CRASH};
        schedule(s, &next, 100 + rng_below(&s->rng, (uint32_t)(4000 / s->crash_rate)));
        break;
    }
    case EV_RESTART:
        if (!nd->up) {
            trace(s, "node %u restarts", e->node);
            node_boot(s, e->node);
        }
        break;
    case EV_PARTITION:
        if (s->healed) return;
        if (!s->partitioned) partition(s);
        {
            sim_event next = {.type = EV_PARTITION};
            schedule(s, &next, 1000 + rng_below(&s->rng, 8000));
        }
        break;
    case EV_HEAL_LINKS:
        s->partitioned = false;
        break;
    case EV_BYZ_NOISE:
        if (nd->up && nd->eng) byz_noise(s, e->node);
        {
            sim_event next = {.type = EV_BYZ_NOISE, .node = e->node};
            schedule(s, &next, 50 + rng_below(&s->rng, 400));
        }
        break;
    default:
        fail(s, "unknown event %d", e->type);
    }
}

/* ------------------------------------------------------------ run */

static uint64_t min_honest_height(const sim *s) {
    uint64_t m = UINT64_MAX;
    for (uint32_t i = 0; i < s->p.n; i++)
        if (!s->nodes[i].byz && s->nodes[i].committed < m) m = s->nodes[i].committed;
    return m == UINT64_MAX ? 0 : m;
}

bool sim_run(const sim_params *params, sim_result *result) {
    memset(result, 0, sizeof *result);
    sim *s = calloc(1, sizeof *s);
    if (!s || params->n == 0 || params->n > MN_VALIDATORS_MAX) {
        free(s);
        snprintf(result->reason, sizeof result->reason, "bad parameters");
        return false;
    }
    s->p = *params;
    if (s->p.steps == 0) s->p.steps = SIM_STEPS_DEFAULT;
    s->r = result;
    s->rng = params->seed * 0x2545F4914F6CDD1Dull + 1;
    snprintf(s->chain_id, sizeof s->chain_id, "sim-%" PRIu64, params->seed);
    uint32_t maxf = (params->n - 1) / 3;
    s->nbyz = params->byzantine < 0 ? maxf : (uint32_t)params->byzantine;
    if (s->nbyz > params->n) s->nbyz = params->n;

    /* this seed's fault mix */
    static const double losses[] = {0, 0.02, 0.1, 0.25};
    s->loss = losses[rng_below(&s->rng, 4)];
    s->dup = rng_chance(&s->rng, 0.5) ? 0.05 : 0;
    s->delay_max_ms = 5 + rng_below(&s->rng, 250);
    s->crash_rate = 0.5 + rng_below(&s->rng, 4);

    /* Byzantine validators: a random choice of nbyz */
    for (uint32_t k = 0; k < s->nbyz;) {
        uint32_t i = rng_below(&s->rng, params->n);
        if (!s->nodes[i].byz) {
            s->nodes[i].byz = true;
            k++;
        }
    }
    for (uint32_t i = 0; i < params->n; i++) {
        uint8_t sb[16];
        memcpy(sb, &params->seed, 8);
        memcpy(sb + 8, &i, 4);
        memset(sb + 12, 0x77, 4);
        mn_sha256(s->nodes[i].secret, sb, sizeof sb);
        s->pubkeys[i][0] = 0x02;
        s->pubkeys[i][1] = (uint8_t)i;
        memcpy(s->pubkeys[i] + 2, s->nodes[i].secret, MN_PUBKEY_LEN - 2);
        s->pubkeys[i][2] ^= 0xff; /* the public key is not the secret */
    }
    for (uint32_t i = 0; i < params->n && !s->failed; i++) node_boot(s, i);
    sim_event e = {.type = EV_CRASH};
    schedule(s, &e, 200 + rng_below(&s->rng, 2000));
    e.type = EV_PARTITION;
    schedule(s, &e, 500 + rng_below(&s->rng, 3000));
    for (uint32_t i = 0; i < params->n; i++) {
        if (!s->nodes[i].byz) continue;
        sim_event b = {.type = EV_BYZ_NOISE, .node = i};
        schedule(s, &b, 100 + rng_below(&s->rng, 300));
    }

    uint64_t target = 0, deadline = 0;
    while (!s->failed) {
        if (!s->healed && result->events >= s->p.steps) {
            heal(s);
            target = 0;
            for (uint32_t i = 0; i < params->n; i++)
                if (!s->nodes[i].byz && s->nodes[i].committed > target) target = s->nodes[i].committed;
            target += 2;
            deadline = s->now_ms + SIM_LIVENESS_MS;
        }
        if (s->healed && min_honest_height(s) >= target) break;
        sim_event ev;
        if (!pop(s, &ev)) {
            fail(s, "event queue ran dry");
            break;
        }
        s->now_ms = ev.time_ms;
        if (s->healed && s->now_ms > deadline) {
            for (uint32_t i = 0; i < params->n; i++) {
                mn_cons_status st;
                mn_cons_get_status(s->nodes[i].eng, &st);
                trace(s, "node %u%s committed=%" PRIu64 " h=%" PRIu64 " r=%u step=%u locked=%d valid=%d", i,
                      s->nodes[i].byz ? " (byz)" : "", s->nodes[i].committed, st.height, st.round, st.step,
                      st.locked_round, st.valid_round);
            }
            fail(s, "liveness: honest nodes at height %" PRIu64 " did not reach %" PRIu64 " within %d ms of heal",
                 min_honest_height(s), target, SIM_LIVENESS_MS);
            break;
        }
        handle(s, &ev);
        result->events++;
    }
    result->ok = !s->failed;
    result->min_height = min_honest_height(s);
    for (uint32_t i = 0; i < params->n; i++)
        if (!s->nodes[i].byz && s->nodes[i].committed > result->max_height) result->max_height = s->nodes[i].committed;
    result->sim_ms = s->now_ms;
    for (uint32_t i = 0; i < params->n; i++) {
        mn_cons_free(s->nodes[i].eng);
        free(s->nodes[i].log);
    }
    free(s->heap);
    free(s->pool);
    free(s->free_list);
    free(s->blocks);
    free(s->block_index);
    free(s->certs);
    free(s->canon);
    free(s);
    return result->ok;
}

static const char *const variant_names[SIM_VARIANT_COUNT] = {"none", "skip-lock", "quorum-2f", "forget-vote-log",
                                                             "no-sig-check"};

int sim_variant_parse(const char *name) {
    for (int i = 0; i < SIM_VARIANT_COUNT; i++)
        if (strcmp(name, variant_names[i]) == 0) return i;
    return -1;
}

const char *sim_variant_name(int variant) {
    return variant >= 0 && variant < SIM_VARIANT_COUNT ? variant_names[variant] : "?";
}

const char *sim_replay_command(const sim_params *p) {
    static char buf[256];
    int k = snprintf(buf, sizeof buf, "build/bin/midsim --n %u --seeds 1 --first-seed %" PRIu64, p->n, p->seed);
    if (k < 0 || (size_t)k >= sizeof buf) return buf;
    if (p->byzantine >= 0) k += snprintf(buf + k, sizeof buf - (size_t)k, " --byzantine %d", p->byzantine);
    if (p->steps) k += snprintf(buf + k, sizeof buf - (size_t)k, " --steps %u", p->steps);
    if (p->variant) snprintf(buf + (size_t)k, sizeof buf - (size_t)k, " --variant %s", sim_variant_name(p->variant));
    return buf;
}
