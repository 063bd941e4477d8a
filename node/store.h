/* store.h: durable state on LevelDB. The only file that includes leveldb/c.h.
 *
 * Key layout (first byte is the family; integers big-endian):
 *   'M' name                  metadata: "height" (u64), "root" (32-byte state root),
 *                             "format" (u8 layout version, written on creation;
 *                             in version 6 followed by u8 index prefix length)
 *   'B' u64 height            serialised Block
 *   'C' u64 height            serialised CommitCertificate of that block
 *   'T' tx_hash[32]           varint height, varint index in the block (mn_store_tx_location)
 *   'r' credential_id[32]     serialised CredentialRecord; stored under
 *                             'r' key_hash[0..8) credential_id, in the tree's
 *                             order (smt.h, implicit leaves), without the id
 *                             field in the value (see store.c); the functions
 *                             here take and give 'r' credential_id and whole
 *                             records
 *                             (a record of a batch names its issuing
 *                             transaction by index in the block, through
 *                             'X', instead of by hash)
 *   'X' u64 height u32 index  hash of that transaction of that block, for
 *                             the batch transactions records name so
 *   'n' signer id bytes       u64 last committed nonce
 *   'd' device_ref[32]        credential ids (32 bytes each) not final on that device
 *   'h' holder_ref[32] u8 type  credential id of the live credential
 *                             (in both, an id is stored as its record's 8-byte
 *                             key-hash prefix when no other record shares it,
 *                             and read back whole: see store.c, index values;
 *                             a value that is not such ids is MN_EINVAL)
 *   'W' u64 height u32 seq    serialised StatusChange, as the ledger writes them;
 *                             stored as one 'W' u64 height entry per block
 *                             (see store.c) that reads back as the same bytes
 *   'V' u64 height u64 seq    vote log entry (opaque bytes)
 *   'E' u64 seq               evidence (opaque bytes)
 *
 * Tree nodes (keys of family 's', smt.h) handed to mn_store_commit or
 * mn_store_write are not stored: the tree is a function of the records and
 * nonces, kept in the ledger's memory (tree_build.h), so a block writes a
 * handful of entries per transaction instead of a path of nodes each.
 *
 * B, C and W (keyed by height, written once) live in a second LevelDB,
 * DATA_DIR/chain, where their tables are not merged again with the state's
 * randomly keyed entries; the rest in DATA_DIR itself.
 *
 * A block commits in two synced WriteBatches (mn_store_commit): first its
 * block, certificate and status changes into the chain database, then every
 * state change with the new height, so after a crash the store holds the
 * whole block or none of it; mn_store_height tells which, and chain entries
 * above it are never read and are deleted at open.
 *
 * Ownership: mn_store_open returns a store the caller closes with
 * mn_store_close. Getters returning `uint8_t **out` hand over a malloc'd
 * buffer the caller frees with free(). The store is safe to use from one
 * thread at a time (LevelDB itself is thread-safe; the counters here are not). */
#ifndef MN_STORE_H
#define MN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmap.h"
#include "mn.h"

typedef struct mn_store mn_store;

/* How much nicer than the thread that first opens a store LevelDB's
 * compaction thread runs (store.c, open_first_db). */
#define MN_STORE_COMPACTION_NICE 10

/* Opens (creating if missing) the LevelDB database in dir. The process's
 * first open also starts LevelDB's compaction thread at a lower priority.
 * Returns MN_OK, MN_EIO (message in err: locked by another process,
 * unreadable, ...), MN_ECORRUPT (metadata does not parse, or the store
 * was written with another key layout). */
int mn_store_open(mn_store **out, const char *dir, char *err, size_t err_len) MN_WARN_UNUSED;
void mn_store_close(mn_store *s); /* NULL-safe */

/* The committed state's tree where its keeper holds it (the ledger's
 * memory): has returns 1 when the tree holds a node (internal, or explicit
 * leaf) at position pos_key (mn_smt_pos_key), 0 when not, and -1 when it
 * cannot tell (its tree is not the store's committed one). A commit whose
 * changes carry the tree's writes then tells from the tree whether an id
 * shares its key-hash prefix with another record (store.c, index values)
 * instead of seeking in the store; the ids its index values name must be
 * records of the state it commits. ctx is borrowed; a NULL has clears it. */
typedef int (*mn_store_tree_has_fn)(void *ctx, const uint8_t *pos_key, size_t pos_len);
void mn_store_set_tree(mn_store *s, mn_store_tree_has_fn has, void *ctx);

/* For tests: index values name an id by `bytes` (1 to 8) bytes of its key
 * hash instead of 8, so that records sharing a prefix, and the whole ids
 * kept for them, are common. Only on a store of height 0 holding no
 * index entry. Returns MN_OK, MN_EINVAL (bytes out of range), MN_ESTATE
 * (not such a store, or one of format 5), MN_EIO. */
int mn_store_set_index_prefix(mn_store *s, unsigned bytes) MN_WARN_UNUSED;

/* Last completely committed height (0 for an empty store). */
uint64_t mn_store_height(const mn_store *s);
/* State root after the last committed block (32 zero bytes when empty). */
void mn_store_root(const mn_store *s, uint8_t out[static MN_HASH_LEN]);

/* Commits block `height` (must be mn_store_height()+1) in one synced batch:
 * the block bytes, its certificate (cert may be NULL, cert_len 0), every
 * entry of changes (values and deletions, keys as laid out above; tree
 * nodes are left out), the new
 * height and state root. Returns MN_OK, MN_ESTATE (wrong height), MN_EIO. */
int mn_store_commit(mn_store *s, uint64_t height, const uint8_t *block, size_t block_len,
                    const uint8_t *cert, size_t cert_len, const mn_kvmap *changes,
                    const uint8_t state_root[static MN_HASH_LEN]) MN_WARN_UNUSED;

/* ---- snapshot import (node/snapshot.h): only on an empty store (height 0) */

/* Writes every entry of changes (not metadata, blocks or certificates) in
 * one unsynced batch, leaving the height at 0 (index values keep their
 * ids whole here). Returns MN_OK, MN_ESTATE
 * (height not 0), MN_EINVAL (a key of family M, B or C), MN_EIO. */
int mn_store_write(mn_store *s, const mn_kvmap *changes) MN_WARN_UNUSED;

/* Makes the store start at `height`: block, its certificate and the state
 * root, in one synced batch (which also makes the earlier mn_store_write
 * batches durable). Returns MN_OK, MN_ESTATE (height not 0), MN_EINVAL
 * (height 0), MN_EIO. */
int mn_store_install(mn_store *s, uint64_t height, const uint8_t *block, size_t block_len,
                     const uint8_t *cert, size_t cert_len,
                     const uint8_t state_root[static MN_HASH_LEN]) MN_WARN_UNUSED;

/* Calls cb with every key and value of family fam (one key byte, e.g.
 * 'r') in key order; cb returns nonzero to stop (not an error). Records
 * come as 'r' credential_id with their whole bytes, in key_hash order.
 * Returns MN_OK, MN_EIO, MN_ECORRUPT (a record key of the wrong shape),
 * MN_ENOMEM. */
typedef int (*mn_store_kv_cb)(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *val,
                              size_t val_len);
int mn_store_scan(mn_store *s, char fam, mn_store_kv_cb cb, void *ctx) MN_WARN_UNUSED;

/* A place in the records' order to resume a scan from; zero it (or
 * mn_store_cursor_reset) to start at the first record. */
typedef struct mn_store_cursor {
    uint8_t key[64]; /* stored key of the last record handed out */
    size_t len;      /* 0: nothing handed out yet */
} mn_store_cursor;
static inline void mn_store_cursor_reset(mn_store_cursor *c) { c->len = 0; }

/* Hands cb at most max records (as mn_store_scan does) that come after
 * *cursor in key_hash order, and moves *cursor past them. Records written
 * after the cursor passed their place are not seen by later calls; records
 * already handed out are not handed out again. *done is true when no record
 * was left after the cursor (the scan ended). Returns MN_OK, MN_EIO,
 * MN_ECORRUPT, MN_ENOMEM. */
int mn_store_scan_records(mn_store *s, mn_store_cursor *cursor, size_t max, mn_store_kv_cb cb, void *ctx,
                          bool *done) MN_WARN_UNUSED;

/* Stores (synced) a certificate learned after the block committed, e.g. a
 * later, larger one. Returns MN_OK, MN_EINVAL (height not committed), MN_EIO. */
int mn_store_put_cert(mn_store *s, uint64_t height, const uint8_t *cert,
                      size_t cert_len) MN_WARN_UNUSED;

/* Raw read of any key. Returns MN_OK (*out malloc'd, caller frees),
 * MN_ENOTFOUND, MN_EIO. */
int mn_store_get(mn_store *s, const void *key, size_t key_len, uint8_t **out,
                 size_t *out_len) MN_WARN_UNUSED;
/* Raw read into a caller buffer of cap bytes. Returns MN_OK, MN_ENOTFOUND,
 * MN_ETOOBIG (value longer than cap), MN_EIO. */
int mn_store_get_buf(mn_store *s, const void *key, size_t key_len, uint8_t *buf, size_t cap,
                     size_t *out_len) MN_WARN_UNUSED;

/* The implicit leaf (type 'l') at pos_key, derived from the one record
 * whose key_hash starts with that position's path (ctx is the store); an
 * mn_smt_src get or leaf function. The store keeps no other tree node. */
int mn_store_smt_leaf(void *store, const uint8_t *pos_key, size_t pos_len, uint8_t node[static 65]);
/* Seeks mn_store_smt_leaf made since the store was opened. */
uint64_t mn_store_leaf_seeks(const mn_store *s);

/* ---- key builders (out holds at least MN_STORE_KEY_MAX bytes; return the length) */
#define MN_STORE_KEY_MAX 64
size_t mn_store_key_record(uint8_t *out, const uint8_t id[static MN_ID_LEN]);
size_t mn_store_key_nonce(uint8_t *out, const char *signer);
size_t mn_store_key_device(uint8_t *out, const uint8_t device_ref[static MN_ID_LEN]);
size_t mn_store_key_holder(uint8_t *out, const uint8_t holder_ref[static MN_ID_LEN], uint32_t type);
size_t mn_store_key_tx(uint8_t *out, const uint8_t tx_hash[static MN_HASH_LEN]);
size_t mn_store_key_change(uint8_t *out, uint64_t height, uint32_t seq);
/* The value of a 'T' entry (out holds MN_STORE_TX_LOC_MAX bytes; returns the length). */
#define MN_STORE_TX_LOC_MAX 15
size_t mn_store_tx_location(uint8_t *out, uint64_t height, uint32_t index);

/* ---- typed getters (MN_OK, MN_ENOTFOUND, MN_EIO; buffers caller-freed) */
int mn_store_get_block(mn_store *s, uint64_t height, uint8_t **out, size_t *len) MN_WARN_UNUSED;
int mn_store_get_cert(mn_store *s, uint64_t height, uint8_t **out, size_t *len) MN_WARN_UNUSED;
int mn_store_get_tx_location(mn_store *s, const uint8_t tx_hash[static MN_HASH_LEN],
                             uint64_t *height, uint32_t *index) MN_WARN_UNUSED;
int mn_store_get_record(mn_store *s, const uint8_t id[static MN_ID_LEN], uint8_t **out,
                        size_t *len) MN_WARN_UNUSED;
/* Last committed nonce of signer; 0 (and MN_OK) when it never signed. */
int mn_store_get_nonce(mn_store *s, const char *signer, uint64_t *nonce) MN_WARN_UNUSED;

/* Calls cb for every stored StatusChange (serialised) from from_height on,
 * in height order, at most max of them; stops early when cb returns
 * non-zero. Returns MN_OK, MN_EIO, MN_ECORRUPT (an entry does not decode)
 * or MN_ENOMEM. */
typedef int (*mn_store_change_cb)(void *ctx, uint64_t height, const uint8_t *change, size_t len);
int mn_store_status_changes(mn_store *s, uint64_t from_height, size_t max, mn_store_change_cb cb,
                            void *ctx) MN_WARN_UNUSED;

/* ---- vote log: what this validator signed, durable before it is sent */

/* Appends an entry (synced: durable when this returns). Returns MN_OK, MN_EIO. */
int mn_store_votelog_put(mn_store *s, uint64_t height, const uint8_t *entry,
                         size_t len) MN_WARN_UNUSED;
/* Appends count entries, in order, in one synced write: every one of them is
 * durable when this returns MN_OK, and none is after MN_EIO (a crash during
 * the call leaves all or none). The entries' bytes stay the caller's. A
 * polka and the precommit it justifies were three or four synced writes in a
 * row on a validator's critical path; together they are one. Returns MN_OK,
 * MN_EIO, MN_EINVAL (count 0). */
typedef struct mn_store_votelog_entry {
    uint64_t height;
    const uint8_t *data;
    size_t len;
} mn_store_votelog_entry;
int mn_store_votelog_append(mn_store *s, const mn_store_votelog_entry *entries, size_t count) MN_WARN_UNUSED;
/* Calls cb for every entry in append order (stops when cb returns non-zero). */
typedef int (*mn_store_blob_cb)(void *ctx, const uint8_t *data, size_t len);
int mn_store_votelog_list(mn_store *s, mn_store_blob_cb cb, void *ctx) MN_WARN_UNUSED;
/* Deletes every entry of a height below `height`. Returns MN_OK, MN_EIO. */
int mn_store_votelog_prune(mn_store *s, uint64_t height) MN_WARN_UNUSED;

/* ---- evidence of equivocation */
int mn_store_evidence_put(mn_store *s, const uint8_t *ev, size_t len) MN_WARN_UNUSED;
int mn_store_evidence_list(mn_store *s, mn_store_blob_cb cb, void *ctx) MN_WARN_UNUSED;

/* Bytes LevelDB reports for the whole key range (approximate, for benchmarks). */
uint64_t mn_store_approx_bytes(mn_store *s);

/* ---- space accounting (benchmarks and operators) */

/* Live entries of one key family as stored (encoded values, not what the
 * getters return). */
typedef struct mn_store_fam_stat {
    uint64_t entries, key_bytes, value_bytes;
    uint64_t table_bytes; /* LevelDB's estimate of the family's bytes in its tables */
} mn_store_fam_stat;
/* Fills out[b] for every first key byte b (zeroes for absent families)
 * with one pass over the database. table_bytes counts only what is in
 * table files (compressed), not the write-ahead log. Returns MN_OK or MN_EIO. */
int mn_store_stats(mn_store *s, mn_store_fam_stat out[static 256]) MN_WARN_UNUSED;
/* Compacts the whole key range now (blocks until done): drops overwritten
 * and deleted entries and empties the write-ahead log into tables.
 * Returns MN_OK. */
int mn_store_compact(mn_store *s) MN_WARN_UNUSED;

#endif
