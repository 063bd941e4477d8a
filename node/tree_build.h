/* tree_build.h: builds the committed state tree in memory from a store.
 *
 * The store keeps no tree nodes: the tree is a function of the records and
 * nonces it holds (smt.h), so the ledger keeps the tree in memory and builds
 * it here when it opens a store, and a snapshot import builds it here to
 * check the certified root. Records are inserted in their stored key_hash
 * order, in chunks that never split a run of records sharing their first
 * stored key_hash bytes, and the nonces after them: an implicit leaf the
 * update meets is then always the one record under its position among
 * those already inserted, which is what the store derives (smt.h).
 *
 * Ownership: the store is borrowed; tree is the caller's map, which
 * receives every node on top of what it holds (pass an empty map). */
#ifndef MN_TREE_BUILD_H
#define MN_TREE_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "nodemap.h"
#include "mn.h"
#include "store.h"

typedef struct mn_tree_build_stats {
    uint64_t records, nonces; /* leaves inserted */
    uint64_t nodes;           /* entries the map holds afterwards */
} mn_tree_build_stats;

/* Builds the tree of every record and nonce of s into tree and its root
 * into root (32 zero bytes for an empty state). stats may be NULL.
 * Returns MN_OK, MN_ENOMEM, MN_EIO, MN_ECORRUPT (a record or nonce of the
 * wrong shape). The root is not compared with the store's: callers do. */
int mn_tree_build(mn_store *s, mn_nodemap *tree, uint8_t root[static MN_HASH_LEN],
                  mn_tree_build_stats *stats) MN_WARN_UNUSED;

#endif
