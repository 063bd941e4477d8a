/* sigcache.h: consensus signatures this process has already verified.
 *
 * A validator meets the same signature bytes several times: a proposal is
 * checked before its block is executed and again by the engine; a vote is
 * verified when it arrives and again inside the next block's last_commit
 * certificate. The cache remembers the exact (digest, public key, signature)
 * triples that verified (or that this process signed itself with its own
 * key), so a later check of the very same bytes costs a comparison instead
 * of a secp256k1 verification. Anything else is verified as usual.
 *
 * Direct-mapped, fixed size: an entry can only be evicted, never grow the
 * cache, so peers cannot make it use more memory. Not thread-safe: one owner
 * (the node's event loop). */
#ifndef MN_SIGCACHE_H
#define MN_SIGCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "mn.h"

typedef struct mn_sigcache mn_sigcache;

/* Returns a new empty cache, or NULL when memory runs out. */
mn_sigcache *mn_sigcache_new(void);
/* NULL-safe. */
void mn_sigcache_free(mn_sigcache *c);

/* True when sig is a valid signature of digest by pubkey: a cached triple,
 * else mn_verify (a success is then cached). c may be NULL (plain mn_verify). */
bool mn_sigcache_verify(mn_sigcache *c, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                        const uint8_t pubkey[MN_PUBKEY_LEN]);

/* Records a signature this process made itself (pubkey is its own key), so
 * that meeting it again, e.g. in a certificate, costs no verification.
 * c may be NULL (no-op). */
void mn_sigcache_add(mn_sigcache *c, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                     const uint8_t pubkey[MN_PUBKEY_LEN]);

/* Lookups answered from the cache (metrics and tests). */
uint64_t mn_sigcache_hits(const mn_sigcache *c);

#endif
