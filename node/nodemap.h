/* nodemap.h: the in-memory table of a sparse Merkle tree's nodes.
 *
 * Maps a position key (smt.h, at most MN_SMT_POS_KEY_MAX bytes) to its
 * 65-byte node. It holds the whole committed state tree (ledger.c), a
 * node per credential and more, so it is built for size and for lookups
 * that miss the CPU caches: entries sit inline (key and node: 77 bytes for
 * a position down to depth 64, which is nearly every node of a tree of
 * random keys, 101 below) in chunks that never move, and the open-addressed
 * slot array (at most 60% full) keeps 32 bits
 * of each key's hash beside the entry number, so a lookup reads the slot
 * and, on a tag match, the one entry (where a general map reads an entry
 * and its separately allocated key per probe).
 *
 * Growing: the slot array doubles past 60% full, and the old one is
 * copied into the new a few slots per put, so a put costs a bounded time at
 * any size; mn_nodemap_reserve sizes it at once.
 *
 * Beside the nodes, the map keeps the first 64 bits of each implicit
 * leaf's key hash (leafkeys.h): those leaves have no node of their own.
 *
 * Ownership: the map owns its memory and copies what is put. Not thread-safe. */
#ifndef MN_NODEMAP_H
#define MN_NODEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"
#include "smt.h"

typedef struct mn_nodemap mn_nodemap;

/* Returns a new empty map, or NULL when out of memory. */
mn_nodemap *mn_nodemap_new(void);
void mn_nodemap_free(mn_nodemap *m); /* NULL-safe */
/* Empties the map, keeping its memory for reuse. */
void mn_nodemap_clear(mn_nodemap *m);

/* Makes room for `entries` nodes in all, so that filling the map to
 * that size never rehashes it (a build whose size is known). Returns
 * MN_OK or MN_ENOMEM (the map is unchanged). */
int mn_nodemap_reserve(mn_nodemap *m, size_t entries);

/* Sets pos's node (a copy of MN_SMT_NODE_LEN bytes). Returns MN_OK,
 * MN_EINVAL (pos empty or longer than MN_SMT_POS_KEY_MAX, or a node whose
 * first byte is 0), MN_ENOMEM (the map is unchanged). */
int mn_nodemap_put(mn_nodemap *m, const uint8_t *pos, size_t len,
                   const uint8_t node[static MN_SMT_NODE_LEN]) MN_WARN_UNUSED;
/* Removes pos's node (its entry is kept for a later put). Returns MN_OK,
 * or MN_EINVAL for a key put could not hold. */
int mn_nodemap_del(mn_nodemap *m, const uint8_t *pos, size_t len) MN_WARN_UNUSED;
/* Copies pos's node into node and returns true, or returns false. */
bool mn_nodemap_get(const mn_nodemap *m, const uint8_t *pos, size_t len, uint8_t node[static MN_SMT_NODE_LEN]);

/* Records an implicit leaf of the tree by its key hash (its first 8 bytes
 * are kept). Returns MN_OK or MN_ENOMEM (the map is unchanged). */
int mn_nodemap_leaf_add(mn_nodemap *m, const uint8_t key_hash[static 8]) MN_WARN_UNUSED;
/* The first 8 bytes of the key hash of the recorded implicit leaf whose
 * key starts with the path of pos (a position key, smt.h, of depth <= 64),
 * into prefix. Returns MN_OK or MN_ENOTFOUND (none recorded, or a deeper
 * or malformed pos). */
int mn_nodemap_leaf_find(const mn_nodemap *m, const uint8_t *pos, size_t len, uint8_t prefix[static 8]);
size_t mn_nodemap_leaf_count(const mn_nodemap *m);

/* Hints that pos will be looked up soon: stage 0 fetches its slot into the
 * CPU caches, stage 1 (once the slot has had time to arrive) the entry the
 * slot names. Changes nothing; any pos is accepted. */
void mn_nodemap_prefetch(const mn_nodemap *m, const uint8_t *pos, size_t len, int stage);

/* True while a doubling of the slot array is being copied, a few slots
 * per put (so that no put waits for the whole copy). For tests. */
bool mn_nodemap_growing(const mn_nodemap *m);

/* Positions holding a node. */
size_t mn_nodemap_count(const mn_nodemap *m);
/* Bytes of memory the map holds. */
size_t mn_nodemap_bytes(const mn_nodemap *m);

#endif
