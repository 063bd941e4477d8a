/* merkle.h: the binary Merkle root over a block's transaction hashes
 * (BlockHeader.tx_root), RFC 6962 style:
 *   leaf  = SHA256(0x00 || h)
 *   node  = SHA256(0x01 || left || right)
 *   empty list -> SHA256("")
 * For n > 1 the list is split at k, the largest power of two below n:
 *   MTH(h[0..n)) = node(MTH(h[0..k)), MTH(h[k..n))).
 * Pure: uses only mn_sha256. */
#ifndef MN_MERKLE_H
#define MN_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "mn.h"

/* Writes the root over n hashes (32 bytes each, contiguous) into out.
 * hashes may be NULL when n is 0. Never fails; recursion depth is log2(n). */
void mn_merkle_root(const uint8_t *hashes, size_t n, uint8_t out[static MN_HASH_LEN]);

#endif
