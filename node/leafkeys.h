/* leafkeys.h: the first 64 bits of every implicit leaf's key hash, for the
 * state tree held in memory (nodemap.h).
 *
 * An update that inserts a key where one implicit leaf sits (a credential's
 * record, smt.h) needs that leaf's key hash to tell where the two part;
 * the store can only find it with a seek through every LevelDB level, the
 * most expensive read of a block's execution. In a tree of random keys the
 * two part within 64 bits (they share 64 only with odds of n / 2^64), so
 * the first 64 bits, kept here, answer for the whole hash; an update whose
 * keys share all 64 with the leaf asks the store (smt.c).
 *
 * Kept as sorted arrays of 64-bit prefixes in 65,536 buckets by their top
 * 16 bits: 8 bytes a key plus a quarter for growth (10 MB at 1 M keys,
 * 500 MB at 50 M), an insert moves part of one bucket (760 keys at 50 M).
 *
 * Ownership: the set owns its memory. Not thread-safe. */
#ifndef MN_LEAFKEYS_H
#define MN_LEAFKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "mn.h"

typedef struct mn_leafkeys mn_leafkeys;

/* Returns a new empty set, or NULL when out of memory. */
mn_leafkeys *mn_leafkeys_new(void);
void mn_leafkeys_free(mn_leafkeys *k); /* NULL-safe */
/* Empties the set, keeping its memory for reuse. */
void mn_leafkeys_clear(mn_leafkeys *k);

/* Adds the first 8 bytes of key_hash (a prefix already there is kept once).
 * Returns MN_OK or MN_ENOMEM (the set is unchanged). */
int mn_leafkeys_add(mn_leafkeys *k, const uint8_t key_hash[static 8]) MN_WARN_UNUSED;

/* The smallest prefix in the set whose first `depth` bits (depth <= 64) are
 * those of path, into prefix. Returns MN_OK, or MN_ENOTFOUND (none, or
 * depth over 64). path holds at least ceil(depth / 8) bytes. */
int mn_leafkeys_find(const mn_leafkeys *k, unsigned depth, const uint8_t *path, uint8_t prefix[static 8]);

size_t mn_leafkeys_count(const mn_leafkeys *k);
/* Bytes of memory the set holds. */
size_t mn_leafkeys_bytes(const mn_leafkeys *k);

#endif
