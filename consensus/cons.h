/* cons.h: Tendermint BFT consensus (Buchman, Kwon, Milosevic 2018,
 * Algorithm 1) as a pure, deterministic state machine.
 *
 * The engine does no I/O, reads no clock, draws no randomness and allocates
 * only in mn_cons_new (sized by the validator count). Hashing, signing and
 * verifying go through an injected function table, so a simulator can drive
 * thousands of seeded runs.
 *
 * Driving it (one thread; the engine is not thread-safe):
 *   1. mn_cons_new(cfg), then mn_cons_start(c, height, vote-log records).
 *   2. Feed inputs: mn_cons_on_proposal / on_vote / on_timeout /
 *      block_verdict / propose_block / skip_to.
 *   3. After EVERY input, drain mn_cons_next_action() until it returns false
 *      and execute the actions IN ORDER. A PERSIST action must be durable
 *      (synced) before any later action of the queue is executed: that is
 *      what keeps a validator from double-signing across a crash.
 *
 * Values are block hashes. The daemon owns the blocks: when a proposal
 * arrives it stores the block by hash and the engine asks for a verdict
 * (NEED_VERDICT) before it prevotes for it or commits it. The daemon must
 * keep every block it was asked about until the height commits, and every
 * block this validator proposed or voted for (the engine may re-propose its
 * locked/valid value, including after a restart).
 *
 * Votes and proposals are signed over SHA-256(mn_sign_bytes(...)), see
 * signbytes.h. A commit certificate is quorum precommits over
 * mn_sign_bytes(chain_id, MN_SIGN_PRECOMMIT, height, round, hash, 32, -1).
 *
 * Vote log: the PERSIST records are (a) every message this validator signed,
 * (b) the prevotes of others forming the polka behind a lock, persisted just
 * before the precommit that takes the lock, and (c) MN_CONS_STEP_ROUND
 * markers for every round entered after round 0. The daemon keeps every
 * record of the latest height it holds records for (older heights may be
 * pruned once committed) and hands them all back to mn_cons_start, which
 *  - never signs a (height, round, step) at or below the last signed one,
 *    unless it is that very message (its stored signature is reused);
 *  - restores the lock (and valid value) from the highest-round non-nil
 *    precommit, with its polka, so the validator can still justify it;
 *  - resumes in the highest round entered, resending its recent votes,
 *    so peers that moved on counting on them are not left a vote short.
 *
 * Where this differs from the paper's Algorithm 1, and why:
 *  - Line 49 also waits for this node's own verdict that the block is valid
 *    (the daemon must execute it before it can apply it anyway).
 *  - Leaving a round early (line 47 timeout or line 55 catch-up) before
 *    precommitting casts the missing nil prevote/precommit first. Nil votes
 *    are always safe, and peers still in that round may be one vote short of
 *    their own timeout after this node's received messages died in a crash.
 *  - An equivocating validator is counted for each value it signed (one
 *    conflicting vote is kept beside the first, preferring one that backs a
 *    proposal, the lock or the valid value). Quorums still intersect in a
 *    correct validator, and a node that saw the other vote first can still
 *    count a polka relayed to it.
 *  - The paper assumes reliable gossip; here the RESEND timer rebroadcasts
 *    the current and previous round's votes, the proposals and polka of the
 *    current and valid rounds, and this node's own votes of every round.
 *
 * Bounds: at most MN_CONS_ROUND_SLOTS rounds of one height are remembered
 * (the lowest are evicted, never the current, locked or valid round);
 * messages for rounds beyond round + MN_CONS_ROUND_AHEAD are dropped;
 * messages for height + 1 are buffered (MN_CONS_FUTURE_PER_VALIDATOR per
 * sender); anything further ahead is refused with MN_EAGAIN, a hint that
 * the node is behind and should sync (then call mn_cons_skip_to). */
#ifndef MN_CONS_H
#define MN_CONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"
#include "signbytes.h"

#define MN_CONS_ROUND_SLOTS 16
#define MN_CONS_ROUND_AHEAD 8
#define MN_CONS_FUTURE_PER_VALIDATOR 8
#define MN_CONS_ACTIONS_MAX 2048

_Static_assert(MN_CONS_ROUND_AHEAD + 4 <= MN_CONS_ROUND_SLOTS, "future rounds fit beside current/locked/valid");

/* Injected crypto. ctx is passed back unchanged; the engine never frees it.
 * sign uses this node's consensus secret key, which the caller holds;
 * returns MN_OK or a negative code (the engine then signs nothing).
 * verify returns true only for a valid signature of pubkey over digest. */
typedef struct mn_cons_crypto {
    void *ctx;
    void (*sha256)(void *ctx, uint8_t out[MN_HASH_LEN], const uint8_t *data, size_t len);
    int (*sign)(void *ctx, uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN]);
    bool (*verify)(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                   const uint8_t pubkey[MN_PUBKEY_LEN]);
} mn_cons_crypto;

/* Deliberately broken behaviour, for the simulator's "can it fail" checks
 * only. Production code passes 0. */
enum mn_cons_test_flag {
    MN_CONS_TEST_SKIP_LOCK = 1u << 0,    /* prevote ignoring the lock */
    MN_CONS_TEST_QUORUM_2F = 1u << 1,    /* quorum of 2f instead of 2f+1 */
    MN_CONS_TEST_NO_SIG_CHECK = 1u << 2, /* accept any signature */
};

typedef struct mn_cons_config {
    char chain_id[MN_CHAIN_ID_MAX + 1];
    uint32_t n;                               /* validators, 1..MN_VALIDATORS_MAX */
    uint8_t pubkeys[MN_VALIDATORS_MAX][MN_PUBKEY_LEN];
    int32_t self;                             /* own validator index, -1: observer (signs nothing) */
    mn_cons_crypto crypto;
    /* timeout of round r = base + r * delta */
    uint32_t timeout_propose_ms, timeout_prevote_ms, timeout_precommit_ms, timeout_delta_ms;
    uint32_t resend_ms;                       /* rebroadcast period (liveness under loss) */
    uint32_t test_flags;                      /* MN_CONS_TEST_*; 0 outside tests */
} mn_cons_config;

enum mn_cons_vote_type { MN_CONS_PREVOTE = MN_SIGN_PREVOTE, MN_CONS_PRECOMMIT = MN_SIGN_PRECOMMIT };

typedef struct mn_cons_vote {
    uint8_t type;                     /* MN_CONS_PREVOTE or MN_CONS_PRECOMMIT */
    bool has_hash;                    /* false: nil vote */
    uint64_t height;
    uint32_t round;
    uint8_t block_hash[MN_HASH_LEN];  /* meaningful when has_hash */
    uint32_t validator_index;
    uint8_t sig[MN_SIG_LEN];
} mn_cons_vote;

typedef struct mn_cons_proposal {
    uint64_t height;
    uint32_t round;
    int32_t pol_round;                /* -1: none */
    uint8_t block_hash[MN_HASH_LEN];
    uint32_t proposer_index;
    uint8_t sig[MN_SIG_LEN];
} mn_cons_proposal;

#define MN_CONS_STEP_ROUND 0

/* One signed message of the vote log (proto SignedRecord). */
typedef struct mn_cons_record {
    uint64_t height;
    uint32_t round;
    uint8_t step;                     /* MN_SIGN_PROPOSAL, _PREVOTE, _PRECOMMIT, or
                                         MN_CONS_STEP_ROUND: entered `round` (no signature) */
    bool has_hash;
    uint8_t block_hash[MN_HASH_LEN];
    int32_t pol_round;                /* proposals; -1 otherwise */
    uint32_t validator_index;
    uint8_t sig[MN_SIG_LEN];
} mn_cons_record;

typedef struct mn_cons_commit_sig {
    uint32_t validator_index;
    uint8_t sig[MN_SIG_LEN];
} mn_cons_commit_sig;

/* proto CommitCertificate. */
typedef struct mn_cons_cert {
    uint64_t height;
    uint32_t round;
    uint8_t block_hash[MN_HASH_LEN];
    uint32_t count;
    mn_cons_commit_sig sigs[MN_VALIDATORS_MAX];
} mn_cons_cert;

enum mn_cons_timer {
    MN_CONS_TIMEOUT_PROPOSE = 1,
    MN_CONS_TIMEOUT_PREVOTE = 2,
    MN_CONS_TIMEOUT_PRECOMMIT = 3,
    MN_CONS_TIMEOUT_RESEND = 4, /* rebroadcast what this node holds for the round */
};

enum mn_cons_action_kind {
    MN_CONS_PERSIST = 1,      /* u.record: make durable before executing the next action */
    MN_CONS_SEND_PROPOSAL,    /* u.proposal: broadcast to validators, attaching the block by hash */
    MN_CONS_SEND_VOTE,        /* u.vote: broadcast */
    MN_CONS_SET_TIMER,        /* u.timer: call on_timeout(kind, height, round) after ms */
    MN_CONS_NEED_BLOCK,       /* u.need (no hash): build a block, then mn_cons_propose_block */
    MN_CONS_NEED_VERDICT,     /* u.need: execute the block, then mn_cons_block_verdict */
    MN_CONS_COMMIT,           /* u.commit: block decided; cert points into the engine */
    MN_CONS_EVIDENCE,         /* u.evidence: two conflicting signed votes of one validator */
};

typedef struct mn_cons_action {
    int kind;
    union {
        mn_cons_record record;
        mn_cons_proposal proposal;
        mn_cons_vote vote;
        struct { int kind; uint64_t height; uint32_t round; uint32_t ms; } timer;
        struct { uint64_t height; uint32_t round; uint8_t block_hash[MN_HASH_LEN]; } need;
        /* cert stays valid until the next input call on this engine */
        struct { uint64_t height; uint32_t round; uint8_t block_hash[MN_HASH_LEN]; const mn_cons_cert *cert; } commit;
        struct { mn_cons_vote first, second; } evidence;
    } u;
} mn_cons_action;

typedef struct mn_cons mn_cons;

/* Read-only view of the engine's position (for logs, metrics, tests). */
typedef struct mn_cons_status {
    uint64_t height;
    uint32_t round;
    uint8_t step;                 /* 1 propose, 2 prevote, 3 precommit */
    int32_t locked_round;         /* -1: not locked */
    uint8_t locked_hash[MN_HASH_LEN];
    int32_t valid_round;          /* -1: none */
    uint8_t valid_hash[MN_HASH_LEN];
} mn_cons_status;

/* Creates an engine; cfg is copied. Returns NULL when cfg is invalid (n out
 * of range, self >= n, a crypto function missing) or memory runs out. */
mn_cons *mn_cons_new(const mn_cons_config *cfg) MN_WARN_UNUSED;
/* NULL-safe. */
void mn_cons_free(mn_cons *c);

/* Starts (or restarts) consensus at height (>= 1, the first not yet
 * committed). records: the vote log (may be NULL when count is 0); records
 * of lower heights are ignored. Returns MN_OK, MN_EINVAL (height 0, bad
 * record), or MN_ESTATE (a record of a height above `height`: the store is
 * behind the vote log). Queues the first round's actions. */
int mn_cons_start(mn_cons *c, uint64_t height, const mn_cons_record *records, size_t count) MN_WARN_UNUSED;

/* Inputs. Each returns MN_OK when the message was used or buffered, or:
 * MN_EINVAL malformed (unknown validator, wrong proposer, bad type),
 * MN_ECRYPTO bad signature, MN_ESTATE stale (lower height/round evicted,
 * duplicate), MN_EAGAIN from a height beyond height + 1 (sync, then
 * mn_cons_skip_to). Bad input never changes the state. */
int mn_cons_on_proposal(mn_cons *c, const mn_cons_proposal *p);
int mn_cons_on_vote(mn_cons *c, const mn_cons_vote *v);
/* A timer set by SET_TIMER expired. Stale timers are ignored (MN_OK). */
int mn_cons_on_timeout(mn_cons *c, int kind, uint64_t height, uint32_t round);
/* The daemon's verdict on a block it was asked about (NEED_VERDICT). */
int mn_cons_block_verdict(mn_cons *c, uint64_t height, const uint8_t block_hash[MN_HASH_LEN], bool valid);
/* The block the daemon built after NEED_BLOCK(height, round); it is taken as
 * valid. MN_ESTATE when that round has passed. */
int mn_cons_propose_block(mn_cons *c, uint64_t height, uint32_t round, const uint8_t block_hash[MN_HASH_LEN]);
/* The daemon committed heights up to height-1 through sync (certificates
 * checked); continue at `height`. MN_ESTATE when height is not above the
 * current one. */
int mn_cons_skip_to(mn_cons *c, uint64_t height);

/* Pops the next action into *out. Returns false when the queue is empty. */
bool mn_cons_next_action(mn_cons *c, mn_cons_action *out);

void mn_cons_get_status(const mn_cons *c, mn_cons_status *out);

/* Round-robin proposer of (height, round) among n validators. */
uint32_t mn_cons_proposer(uint64_t height, uint32_t round, uint32_t n);

/* Checks a commit certificate against the validator set: MN_OK when it holds
 * >= mn_quorum(n) valid precommit signatures of distinct known validators for
 * (chain_id, height, block_hash). MN_EINVAL: wrong height or hash, n out of
 * range, an unknown validator index or a duplicate index; MN_ECRYPTO: a bad
 * signature; MN_EAGAIN: fewer than a quorum. */
int mn_cons_check_certificate(const char *chain_id, uint32_t n, const uint8_t (*pubkeys)[MN_PUBKEY_LEN],
                              uint64_t height, const uint8_t block_hash[MN_HASH_LEN],
                              const mn_cons_cert *cert, const mn_cons_crypto *crypto) MN_WARN_UNUSED;

/* Digest signed for a vote / a proposal (SHA-256 of mn_sign_bytes), through
 * the crypto table. Return MN_OK or MN_EINVAL (chain id too long). */
int mn_cons_vote_digest(const mn_cons_crypto *crypto, const char *chain_id, const mn_cons_vote *v,
                        uint8_t out[MN_HASH_LEN]);
int mn_cons_proposal_digest(const mn_cons_crypto *crypto, const char *chain_id, const mn_cons_proposal *p,
                            uint8_t out[MN_HASH_LEN]);

#endif
