/* smt.h: the sparse Merkle tree over the ledger state (256-bit keys).
 *
 * Definitions (shared with every verifier):
 *   key_hash of a credential   = SHA256(0x01 || credential_id)
 *   key_hash of a signer nonce = SHA256(0x02 || signer id bytes)
 *   leaf     = SHA256(0x00 || key_hash || SHA256(value))
 *   internal = SHA256(0x01 || left || right)
 *   empty subtree = 32 zero bytes
 *   a subtree holding exactly one leaf is represented by that leaf's hash.
 * Key bits are read MSB first: bit d of the key chooses the child at depth d
 * (0 = left). The tree is canonical: it depends only on the set of
 * (key_hash, value) pairs, never on the order of updates.
 *
 * Storage: each non-empty node is stored under its position (depth, first
 * `depth` bits of the path), see mn_smt_pos_key, as 65 bytes:
 *   'L' key_hash value_hash    for a leaf
 *   'I' left_hash right_hash   for an internal node ('i', 'j', 'k' when its
 *                              left, right, both children are implicit leaves)
 * except implicit leaves (mn_smt_item.implicit): those are not written, as
 * the source can derive them from the state itself (the store keeps the
 * records ordered by key_hash, and the one leaf of a subtree is the one
 * record whose key_hash starts with the subtree's path); the source then
 * returns them with type 'l'. A position holds a stored entry exactly when
 * the tree has an internal node or an explicit leaf there.
 * Reads go first to a write set (mn_kvmap, which also receives every write
 * of an update) and then to a caller-supplied source (the store). smt.c
 * does not depend on LevelDB. The key and leaf hashes and mn_smt_verify are
 * in smt_verify.c, which needs only mn_sha256 (crypto.c): a verifier links
 * smt_verify.o and crypto.o and nothing else of the node. */
#ifndef MN_SMT_H
#define MN_SMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmap.h"
#include "midnode.pb-c.h"
#include "mn.h"

#define MN_SMT_DEPTH_MAX 256
#define MN_SMT_NODE_LEN 65
#define MN_SMT_POS_KEY_MAX (1 + 2 + 32)
#define MN_SMT_PREFIX 's' /* first byte of every position key */

#define MN_SMT_INNER 'I'
#define MN_SMT_INNER_L 'i'
#define MN_SMT_INNER_R 'j'
#define MN_SMT_INNER_LR 'k'
#define MN_SMT_IMPLICIT 'l' /* type of a leaf the source derived */

/* Source of committed nodes. get fills node[65] for pos_key (an internal
 * node or leaf as stored, or type 'l' for an implicit leaf it derived) and returns
 * MN_OK, MN_ENOTFOUND (no node stored there) or MN_EIO; or MN_SMT_TRUSTED
 * when the node comes from memory this process computed itself (then its
 * hash is not re-checked against the parent's). Nodes read from storage
 * must be returned with MN_OK so that they are checked. */
#define MN_SMT_TRUSTED 1
typedef struct mn_smt_src {
    int (*get)(void *ctx, const uint8_t *pos_key, size_t pos_len,
               uint8_t node[static MN_SMT_NODE_LEN]);
    void *ctx;
    /* Optional (NULL: get is used): derives the implicit leaf at pos_key
     * without looking for a stored node first; same returns as get.
     * Implicit leaves are read from the source only, so their values
     * must be in the source before they are read (committed). */
    int (*leaf)(void *ctx, const uint8_t *pos_key, size_t pos_len,
                uint8_t node[static MN_SMT_NODE_LEN]);
    /* Optional (NULL: none): a hint that pos_key will be read soon, in two
     * stages (0 then 1, some time apart; see mn_nodemap_prefetch). */
    void (*prefetch)(void *ctx, const uint8_t *pos_key, size_t pos_len, int stage);
    /* Optional (NULL: none): the first 8 bytes of the key hash of the
     * implicit leaf at pos_key, from memory this process computed (trusted
     * like MN_SMT_TRUSTED). Returns MN_OK, or MN_ENOTFOUND when it does not
     * know (then leaf, or get, is asked). Only updates ask: moving a leaf
     * down needs no more of it unless a key of the update shares those 64
     * bits with it, and then the update asks leaf for the whole of it. */
    int (*leaf_prefix)(void *ctx, const uint8_t *pos_key, size_t pos_len, uint8_t prefix[static 8]);
} mn_smt_src;

/* One change of a batch. value_hash is SHA256(value); remove deletes the
 * key. implicit: the leaf is not written (the source derives it, see above;
 * only for keys whose value the source can find by key_hash). */
typedef struct mn_smt_item {
    uint8_t key_hash[MN_HASH_LEN];
    uint8_t value_hash[MN_HASH_LEN];
    bool remove;
    bool implicit;
    /* Optional: the key's value hash in the tree being updated, when the
     * caller knows it (has_old). An implicit leaf whose hash its parent
     * records as leaf(key_hash, old_value_hash) is then not read from the
     * source: the hash match proves it is that leaf. A wrong guess costs
     * only the read. */
    bool has_old;
    uint8_t old_value_hash[MN_HASH_LEN];
} mn_smt_item;

/* Position key of (depth, first depth bits of key): 's', u16 BE depth, then
 * ceil(depth/8) bytes of the key with the bits past depth cleared.
 * out holds at least MN_SMT_POS_KEY_MAX bytes. Returns its length. */
size_t mn_smt_pos_key(uint8_t out[static MN_SMT_POS_KEY_MAX], unsigned depth,
                      const uint8_t key[static MN_HASH_LEN]);
/* The depth of a position key, into *depth. Returns false for anything
 * mn_smt_pos_key does not make (wrong prefix, depth over 256, or a length
 * that does not match the depth). */
bool mn_smt_pos_depth(const uint8_t *pos, size_t len, unsigned *depth);

/* Key hashes of the two kinds of state entry. */
void mn_smt_key_credential(uint8_t out[static MN_HASH_LEN], const uint8_t id[static MN_ID_LEN]);
void mn_smt_key_nonce(uint8_t out[static MN_HASH_LEN], const char *signer);

/* Leaf hash of (key_hash, value_hash). */
void mn_smt_leaf_hash(uint8_t out[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
                      const uint8_t value_hash[static MN_HASH_LEN]);

/* Applies n items (any order; when a key repeats, the last item wins) to
 * the tree whose root is root_in. New and deleted nodes go into writes;
 * nodes are read from writes, then src. items is reordered (sorted).
 * Returns MN_OK with the new root in root_out, MN_EIO, MN_ECORRUPT (a
 * stored node does not hash to what its parent says), MN_ENOMEM. */
int mn_smt_update(const mn_smt_src *src, mn_kvmap *writes,
                  const uint8_t root_in[static MN_HASH_LEN], mn_smt_item *items, size_t n,
                  uint8_t root_out[static MN_HASH_LEN]) MN_WARN_UNUSED;

/* Where mn_smt_update_to puts each new node (node NULL: the node at
 * pos_key is deleted). Returns MN_OK or an error that ends the update. */
typedef struct mn_smt_sink {
    int (*put)(void *ctx, const uint8_t *pos_key, size_t pos_len, const uint8_t *node);
    void *ctx;
} mn_smt_sink;

/* mn_smt_update with the new and deleted nodes handed to sink as they are
 * made instead of collected. An update reads each position before it
 * writes it and never reads it again, so the sink may write straight into
 * what src reads (building a tree in memory without a write set). Same
 * returns as mn_smt_update, and the sink's errors. */
int mn_smt_update_to(const mn_smt_src *src, const mn_smt_sink *sink,
                     const uint8_t root_in[static MN_HASH_LEN], mn_smt_item *items, size_t n,
                     uint8_t root_out[static MN_HASH_LEN]) MN_WARN_UNUSED;

/* Looks key_hash up. Returns MN_OK with *value_hash filled (may be NULL),
 * MN_ENOTFOUND, MN_EIO, MN_ECORRUPT. writes may be NULL. */
int mn_smt_get(const mn_smt_src *src, const mn_kvmap *writes,
               const uint8_t root[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
               uint8_t value_hash[MN_HASH_LEN]) MN_WARN_UNUSED;

/* Builds the proof of key_hash (inclusion or absence) against root into
 * *out, which the caller initialises with midnode__merkle_proof__init and
 * releases with mn_smt_proof_clear. writes may be NULL.
 * Returns MN_OK, MN_EIO, MN_ECORRUPT, MN_ENOMEM. */
int mn_smt_prove(const mn_smt_src *src, const mn_kvmap *writes,
                 const uint8_t root[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
                 Midnode__MerkleProof *out) MN_WARN_UNUSED;

/* Frees what mn_smt_prove allocated inside p (not p itself) and
 * re-initialises it. NULL-safe. */
void mn_smt_proof_clear(Midnode__MerkleProof *p);

/* Checks a proof, using only SHA-256. value is the leaf value (serialised
 * record or 8-byte nonce) for an inclusion proof, or NULL to check absence.
 * Returns MN_OK when the proof shows exactly that against root; otherwise
 * MN_ECORRUPT (or MN_EINVAL for a malformed proof), and when why is not
 * NULL a static string naming the reason ("key_hash differs", "root
 * mismatch", ...). Pure; never allocates. */
int mn_smt_verify(const uint8_t root[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
                  const uint8_t *value, size_t value_len, const Midnode__MerkleProof *proof,
                  const char **why) MN_WARN_UNUSED;

#endif
