/* mempool.h: transactions that passed their arrival checks and wait for a block.
 *
 * The node checks a transaction (decode, chain id, signer known, role,
 * signature, nonce > committed nonce) BEFORE mn_mempool_add; only checked
 * transactions enter, so "in the mempool" also means "signature verified"
 * (mn_mempool_contains lets block execution skip a second verification).
 *
 * Entries are keyed by tx hash (SHA-256 of the serialised Tx), kept in
 * arrival order, and per signer in nonce order. A proposer takes a candidate
 * list in arrival order where each signer's transactions come out in nonce
 * order and only as an unbroken run from that signer's committed nonce + 1,
 * since a gap would make every later nonce fail execution.
 *
 * Bounds: txs_max entries, bytes_max tx bytes, per_signer_max entries per
 * signer; memory is O(txs_max) (the hash index is allocated once at new).
 * Costs: add/contains/remove O(1) expected plus the insertion into the
 * signer's nonce list, which is O(1) when nonces arrive in order and at most
 * O(per_signer_max) otherwise; take O(entries visited).
 *
 * Ownership: the mempool copies tx bytes and signer ids; pointers it hands
 * out (to callbacks or from gossip_next) stay valid until the next call that
 * mutates the mempool; callbacks must not modify the mempool. Single-threaded:
 * call from the node's loop thread. */
#ifndef MN_MEMPOOL_H
#define MN_MEMPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"

#define MN_MEMPOOL_TXS_DEFAULT 20000
#define MN_MEMPOOL_BYTES_DEFAULT (64u * 1024 * 1024)
#define MN_MEMPOOL_PER_SIGNER_DEFAULT 5000
#define MN_MEMPOOL_TXS_LIMIT 1000000 /* largest txs_max accepted */

_Static_assert(MN_MEMPOOL_TXS_DEFAULT <= MN_MEMPOOL_TXS_LIMIT, "default within limit");

struct mn_mempool_config {
    size_t txs_max;        /* 0: MN_MEMPOOL_TXS_DEFAULT */
    size_t bytes_max;      /* 0: MN_MEMPOOL_BYTES_DEFAULT */
    size_t per_signer_max; /* 0: MN_MEMPOOL_PER_SIGNER_DEFAULT */
};

/* A pending transaction as seen through callbacks and gossip_next. */
struct mn_mempool_tx {
    const uint8_t *tx; /* serialised Tx */
    size_t len;
    const uint8_t *hash; /* MN_HASH_LEN bytes */
    const char *signer;  /* NUL-terminated member id */
    uint64_t nonce;
};

struct mn_mempool;

/* Creates an empty mempool. cfg may be NULL (defaults).
 * Returns NULL when a bound is over MN_MEMPOOL_TXS_LIMIT or allocation fails,
 * with the reason in err. */
struct mn_mempool *mn_mempool_new(const struct mn_mempool_config *cfg, char *err, size_t err_len);

/* Frees the mempool and every entry. NULL-safe. */
void mn_mempool_free(struct mn_mempool *mp);

/* Adds a checked transaction. signer is a NUL-terminated member id of at
 * most MN_MEMBER_ID_MAX bytes.
 * Returns MN_OK; MN_ESTATE when the same tx hash is pending (TX_DUPLICATE);
 * MN_EPERM when another tx of this signer with this nonce is pending
 * (TX_BAD_NONCE: the first one seen wins); MN_EAGAIN when the pool, its
 * bytes or this signer's share is full (TX_MEMPOOL_FULL); MN_ETOOBIG when
 * len > MN_TX_BATCH_BYTES_MAX; MN_EINVAL on len 0, nonce 0 or a bad signer id;
 * MN_ENOMEM. Nothing changes on failure. */
int mn_mempool_add(struct mn_mempool *mp, const uint8_t *tx, size_t len,
                   const uint8_t hash[static MN_HASH_LEN], const char *signer,
                   uint64_t nonce) MN_WARN_UNUSED;

/* True when a tx with this hash is pending. */
bool mn_mempool_contains(const struct mn_mempool *mp, const uint8_t hash[static MN_HASH_LEN]);

/* Fills *out with the pending tx of this hash (GetTx of a tx not yet
 * committed). Returns false when none is pending. */
bool mn_mempool_get(const struct mn_mempool *mp, const uint8_t hash[static MN_HASH_LEN],
                    struct mn_mempool_tx *out);

/* Looks up a signer's last committed nonce (0 when it has none). */
typedef uint64_t (*mn_mempool_nonce_fn)(void *arg, const char *signer);

/* Receives one candidate; returns false to stop the walk. */
typedef bool (*mn_mempool_tx_fn)(void *arg, const struct mn_mempool_tx *tx);

/* Walks block candidates without removing them: arrival order, each
 * signer's txs in nonce order (a tx whose lower nonces arrived later pulls
 * them in first), only unbroken runs from committed + 1 (committed from
 * nonce_fn; when nonce_fn is NULL a signer's run starts at its lowest
 * pending nonce). Stops after max_txs candidates or before max_bytes would
 * be exceeded (a tx that does not fit ends its signer's run; others go on).
 * Returns the number of candidates handed to fn. */
size_t mn_mempool_take(struct mn_mempool *mp, size_t max_txs, size_t max_bytes,
                       mn_mempool_nonce_fn nonce_fn, void *nonce_arg,
                       mn_mempool_tx_fn fn, void *arg);

/* Removes the txs with these hashes (those not pending are ignored), e.g.
 * after their block committed. Returns the number removed. */
size_t mn_mempool_remove(struct mn_mempool *mp, const uint8_t (*hashes)[MN_HASH_LEN], size_t n);

/* Drops every tx whose nonce <= its signer's committed nonce (they can
 * never execute now). Returns the number removed. */
size_t mn_mempool_remove_stale(struct mn_mempool *mp, mn_mempool_nonce_fn nonce_fn, void *arg);

/* The next nonce a client of this signer should use: committed + 1, moved
 * past every pending tx that continues the unbroken run (GetSigner.next_nonce). */
uint64_t mn_mempool_signer_next_nonce(const struct mn_mempool *mp, const char *signer,
                                      uint64_t committed);

/* Next pending tx not yet gossiped, in arrival order, now marked gossiped;
 * false when none. *out is valid until the next mutating call other than
 * gossip_next and mark_gossiped (they only unlink from the gossip order), so
 * a batch of gossip_next results can be sent without copying. */
bool mn_mempool_gossip_next(struct mn_mempool *mp, struct mn_mempool_tx *out);

/* Marks a tx as gossiped (e.g. it came from a peer that already has it).
 * Returns MN_OK or MN_ENOTFOUND. */
int mn_mempool_mark_gossiped(struct mn_mempool *mp, const uint8_t hash[static MN_HASH_LEN]);

/* Pending entries, their tx bytes, and the number of distinct signers. */
size_t mn_mempool_count(const struct mn_mempool *mp);
size_t mn_mempool_bytes(const struct mn_mempool *mp);
size_t mn_mempool_signers(const struct mn_mempool *mp);

#endif
