/* signbytes.h: the exact bytes a validator signs for a proposal or a vote.
 *
 * Pure (no hashing, no I/O): the digest signed is SHA-256 of these bytes,
 * computed by whoever holds a hash function. Layout, all integers big-endian:
 *
 *   "midnode/sign/v1"      15 bytes, no NUL
 *   u8  chain_id length,  chain_id bytes (at most 64)
 *   u8  kind              1 proposal, 2 prevote, 3 precommit
 *   u64 height
 *   u32 round
 *   u8  block hash length (0 for a nil vote, else 32), block hash
 *   i32 pol_round          proposals only (-1 when none)
 *
 * Binding chain id, height, round, kind and block hash means a signature can
 * never be replayed on another chain, height, round or step. */
#ifndef MN_SIGNBYTES_H
#define MN_SIGNBYTES_H

#include <stddef.h>
#include <stdint.h>

enum mn_sign_kind { MN_SIGN_PROPOSAL = 1, MN_SIGN_PREVOTE = 2, MN_SIGN_PRECOMMIT = 3 };

#define MN_SIGNBYTES_MAX (15 + 1 + 64 + 1 + 8 + 4 + 1 + 32 + 4)

/* Writes the sign bytes into out (at least MN_SIGNBYTES_MAX bytes).
 * block_hash may be NULL only when hash_len is 0; hash_len is 0 or 32.
 * Returns the number of bytes written, or 0 when an argument is out of range
 * (chain id longer than 64, hash_len not 0 or 32, kind unknown). */
size_t mn_sign_bytes(uint8_t out[static MN_SIGNBYTES_MAX], const char *chain_id, int kind,
                     uint64_t height, uint32_t round, const uint8_t *block_hash, size_t hash_len,
                     int32_t pol_round);

/* Votes needed for a quorum among n validators of equal power: more than
 * two thirds, floor(2n/3)+1 (2f+1 when n = 3f+1). */
static inline uint32_t mn_quorum(uint32_t n) { return (2 * n) / 3 + 1; }

#endif
