/* snapshot.h: a certified state snapshot a new node can start from.
 *
 * Export writes the committed state at the store's height: that block (its
 * header holds the state root) and its commit certificate, then every
 * credential record, signer nonce, device index and holder index. Import
 * into an empty store trusts nothing in the file but the genesis: the
 * certificate must carry a quorum of the genesis validators' precommits
 * for the block, the state tree is rebuilt from the records and nonces and
 * its root must equal the header's state_root, and the device and holder
 * indexes (not covered by the root) must agree with the records. Only then
 * does the store take the height, so a failed import leaves a store of
 * height 0 that the caller discards (its partial writes are not usable).
 * The store keeps records in key-hash order, so the tree is built by one
 * scan of them (tree_build.h).
 *
 * File: "MNSNAP01", u32 block length, Block, u32 certificate length,
 * CommitCertificate, then entries (u8 family 'r' 'n' 'd' 'h', u16 key
 * length, key with its family byte, u32 value length, value), a 0 byte,
 * u64 entry count and SHA-256 of everything before it. Integers big-endian.
 *
 * Ownership: both functions borrow their arguments. Errors: MN_OK or a
 * negative MN_E*, with the reason in err. */
#ifndef MN_SNAPSHOT_H
#define MN_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "genesis.h"
#include "mn.h"
#include "nodemap.h"
#include "store.h"

#define MN_SNAPSHOT_CERT_BYTES_MAX 65536
#define MN_SNAPSHOT_VALUE_MAX 4096

typedef struct mn_snapshot_info {
    uint64_t height;
    uint8_t state_root[MN_HASH_LEN];
    uint64_t records, nonces, devices, holders;
    uint64_t bytes;
    /* Import only: milliseconds spent loading the entries into the store,
     * rebuilding the state tree, and checking the indexes. */
    uint64_t load_ms, tree_ms, index_ms;
    uint64_t tree_nodes; /* import: nodes of the rebuilt state tree */
} mn_snapshot_info;

/* Writes the state at the store's committed height to path (created or
 * truncated; written to path.tmp and renamed when complete). info may be
 * NULL. Returns MN_OK, MN_ENOTFOUND (nothing committed, or no certificate
 * for that height yet), MN_EIO, MN_ECORRUPT, MN_ENOMEM. */
int mn_snapshot_export(mn_store *s, const char *path, mn_snapshot_info *info, char *err,
                       size_t err_len) MN_WARN_UNUSED;

/* Imports path into s, which must be empty (height 0), verifying it against
 * g as described above. info may be NULL. Returns MN_OK; MN_ESTATE (store
 * not empty); MN_EIO; MN_ECORRUPT (malformed or truncated file, checksum,
 * an entry out of bounds, indexes that disagree with the records);
 * MN_ECRYPTO (certificate not valid for the genesis, or the rebuilt root
 * differs from the header's); MN_ENOMEM. */
int mn_snapshot_import(mn_store *s, const mn_genesis *g, const char *path, mn_snapshot_info *info,
                       char *err, size_t err_len) MN_WARN_UNUSED;

/* mn_snapshot_import that also hands over the state tree it rebuilt (the
 * caller owns *tree_out and frees it with mn_nodemap_free; NULL on
 * failure), so that a node importing at start does not build it again
 * (mn_ledger_open_with_tree). Same returns. */
int mn_snapshot_import_tree(mn_store *s, const mn_genesis *g, const char *path, mn_snapshot_info *info,
                            mn_nodemap **tree_out, char *err, size_t err_len) MN_WARN_UNUSED;

#endif
