/* cert.h: the validator set a verifier trusts, and the check of a commit
 * certificate against it.
 *
 * Part of the verifier library: depends only on crypto.c, consensus/
 * signbytes.c and protobuf-c (it reads mn_genesis fields but calls nothing
 * in genesis.c, so it links without jansson). */
#ifndef MN_CERT_H
#define MN_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "genesis.h"
#include "midnode.pb-c.h"
#include "mn.h"

typedef struct mn_valset {
    char chain_id[MN_CHAIN_ID_MAX + 1];
    uint32_t count;                                 /* 1..MN_VALIDATORS_MAX */
    uint8_t keys[MN_VALIDATORS_MAX][MN_PUBKEY_LEN]; /* consensus keys by validator index */
    uint8_t hash[MN_HASH_LEN];                      /* validators_hash of these keys */
} mn_valset;

/* validators_hash: SHA-256 over the n 33-byte consensus keys in order. */
void mn_validators_hash(uint8_t out[static MN_HASH_LEN], const uint8_t (*keys)[MN_PUBKEY_LEN], uint32_t n);

/* The validator set of genesis g. Returns MN_OK or MN_EINVAL (no validators). */
int mn_valset_from_genesis(mn_valset *vs, const mn_genesis *g) MN_WARN_UNUSED;

/* A validator set from chain id and keys (for verifiers that hold no
 * genesis file). Returns MN_OK or MN_EINVAL (n out of range, chain id
 * too long). */
int mn_valset_init(mn_valset *vs, const char *chain_id, const uint8_t (*keys)[MN_PUBKEY_LEN],
                   uint32_t n) MN_WARN_UNUSED;

/* Checks that c certifies block_hash at height: c's height and block hash
 * match, and at least mn_quorum(n) distinct known validators signed the
 * precommit sign bytes (chain id, height, c->round, block_hash). Duplicate
 * or unknown validator indexes and bad signatures refuse the certificate
 * outright (an honest node never sends them).
 * Returns MN_OK, MN_EINVAL (malformed: wrong lengths), MN_ECRYPTO
 * (wrong height/hash, bad or too few signatures); err says which. */
int mn_cert_check_valset(const mn_valset *vs, uint64_t height, const uint8_t block_hash[static MN_HASH_LEN],
                         const Midnode__CommitCertificate *c, char *err, size_t err_len) MN_WARN_UNUSED;

/* The same check with the signature test supplied by the caller: verify
 * returns true only for a signature that verifies (a node passes a cache of
 * signatures it has already verified; see node/sigcache.h). */
typedef bool (*mn_cert_verify_fn)(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                                  const uint8_t pubkey[MN_PUBKEY_LEN]);
int mn_cert_check_valset_with(const mn_valset *vs, uint64_t height, const uint8_t block_hash[static MN_HASH_LEN],
                              const Midnode__CommitCertificate *c, mn_cert_verify_fn verify, void *ctx, char *err,
                              size_t err_len) MN_WARN_UNUSED;

/* The same against genesis g's validators. */
int mn_cert_check(const mn_genesis *g, uint64_t height, const uint8_t block_hash[static MN_HASH_LEN],
                  const Midnode__CommitCertificate *c, char *err, size_t err_len) MN_WARN_UNUSED;

#endif
