/* ledger.h: execution of credential transactions (DESIGN.md sections 4, 5).
 *
 * The ledger turns signed transactions into credential records and signer
 * nonces, deterministically: the same blocks applied to two empty stores give
 * byte-identical records and the same state root.
 *
 * Rules:
 *   ISSUE            signer is an issuer allowed the type; credential_id new;
 *                    carrier a member with the carrier role; a live
 *                    credential with the same holder_ref and type becomes
 *                    SUPERSEDED in the same transaction; at most
 *                    MN_DEVICE_LIVE_MAX not-final credentials per device
 *                    (credentials already expired at the block time do not count).
 *                    A credential issued onto a device whose carrier has it
 *                    reported lost (some not-final credential of that carrier
 *                    there is loss-suspended) starts SUSPENDED (loss_suspended).
 *   ISSUE_BATCH      signer is an issuer; 1..MN_BATCH_ITEMS_MAX items, each
 *                    under exactly the ISSUE rules, applied in order (a
 *                    later item sees the earlier ones: a repeated id is
 *                    refused, a repeated holder+type supersedes); any item
 *                    refused refuses the whole transaction, with a message
 *                    "item N: <reason>" and that item's code.
 *   REVOKE           by the credential's issuer; ACTIVE or SUSPENDED -> REVOKED (final).
 *   SUSPEND/RESUME   by the credential's issuer; sets / clears issuer_suspended.
 *   REPORT_LOSS      by a carrier; sets loss_suspended on every not-final
 *                    credential of that device whose carrier is the signer.
 *   REPORT_RECOVERY  by a carrier; clears its own loss suspension only.
 *   status = SUSPENDED while loss_suspended || issuer_suspended, else ACTIVE
 *   (for records not final). EXPIRED is derived on read, never stored.
 * Every transaction: size <= MN_TX_BYTES_MAX (an ISSUE_BATCH:
 * MN_TX_BATCH_BYTES_MAX), chain id matches, signer is a
 * genesis member with a transaction key, signature over SHA-256 of the exact
 * payload bytes, nonce exactly last committed + 1 (counting earlier
 * transactions of the same block).
 *
 * Ownership: mn_ledger_open borrows the store and the genesis (both must
 * outlive the ledger). An mn_exec borrows the ledger; several may exist for
 * one height (competing proposals); only one can be committed, after which
 * the others refuse to commit (MN_ESTATE) and must be freed. While open,
 * the ledger lends the store its in-memory tree (mn_store_set_tree), so
 * that commits tell shared key-hash prefixes without seeking; freeing any
 * ledger takes it back (with two ledgers on one store, the one opened last
 * answers until then).
 * Single-threaded: call from one thread. Every block must be committed
 * through mn_exec_commit (the ledger caches the top of the committed tree). */
#ifndef MN_LEDGER_H
#define MN_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "genesis.h"
#include "midnode.pb-c.h"
#include "mn.h"
#include "nodemap.h"
#include "store.h"

#define MN_DEVICE_LIVE_MAX 32
#define MN_TX_MSG_MAX 160 /* a good size for the msg buffers below */

typedef struct mn_ledger mn_ledger;
typedef struct mn_exec mn_exec;

/* Opens the ledger over a store: reads its height and state root and
 * builds the state tree in memory from its records and nonces (the store
 * keeps no tree nodes; tree_build.h), which takes about a second per
 * million credentials. Returns MN_OK, MN_ENOMEM, MN_EIO, or MN_ECORRUPT
 * when the records do not hash to the stored state root. */
int mn_ledger_open(mn_ledger **out, mn_store *store, const mn_genesis *genesis) MN_WARN_UNUSED;

/* mn_ledger_open taking tree, the store's state tree whose root is the
 * 32 bytes at root (as a snapshot import rebuilt it:
 * mn_snapshot_import_tree), instead of building it again when that is the
 * store's root. Takes ownership of tree, also on failure; tree NULL (root
 * then unused) is mn_ledger_open. Same returns. */
int mn_ledger_open_with_tree(mn_ledger **out, mn_store *store, const mn_genesis *genesis, mn_nodemap *tree,
                             const uint8_t *root) MN_WARN_UNUSED;
void mn_ledger_free(mn_ledger *l); /* NULL-safe; does not close the store */

typedef struct mn_tx_info {
    uint8_t hash[MN_HASH_LEN]; /* SHA-256 of the serialised Tx */
    char signer[MN_MEMBER_ID_MAX + 1];
    uint64_t nonce;
    int kind; /* Midnode__TxPayload__BodyCase */
} mn_tx_info;

/* Mempool admission: every check that does not depend on other pending
 * transactions: size, decoding, chain id, signer, signature, role (and
 * for ISSUE the type), nonce greater than the last committed one.
 * Returns a Midnode__TxCode (MIDNODE__TX_CODE__TX_OK when admissible);
 * msg (may be NULL) receives a human reason. info may be NULL; it is
 * filled whenever the Tx decodes (hash always when len is in bounds). */
int mn_ledger_check_tx(mn_ledger *l, const uint8_t *tx, size_t len, mn_tx_info *info, char *msg,
                       size_t msg_len);

/* Last committed height and its state root. */
uint64_t mn_ledger_height(const mn_ledger *l);
void mn_ledger_root(const mn_ledger *l, uint8_t out[static MN_HASH_LEN]);

/* Committed record of a credential. Returns MN_OK (*out to free with
 * midnode__credential_record__free_unpacked(*out, NULL)), MN_ENOTFOUND,
 * MN_EIO, MN_ECORRUPT. */
int mn_ledger_get_record(mn_ledger *l, const uint8_t id[static MN_ID_LEN],
                         Midnode__CredentialRecord **out) MN_WARN_UNUSED;

/* Slots of the committed-record read cache (four-way set-associative,
 * filled by reads and by the blocks this ledger commits): 256 bytes each in
 * an anonymous mapping whose pages are only backed once touched (512 MB
 * when all are, by default), so about 96% of a million credentials stay in
 * memory. Twice as many slots as credentials keep nearly all of them. */
#define MN_LEDGER_REC_CACHE_SLOTS (1u << 21)
#define MN_LEDGER_REC_CACHE_SLOTS_MIN (1u << 10)
#define MN_LEDGER_REC_CACHE_SLOTS_MAX (1u << 28) /* 64 GB */

/* Sizes the read cache before its first use: bytes / 256 slots, rounded
 * down to a power of two. Returns MN_OK, MN_EINVAL (fewer than
 * MN_LEDGER_REC_CACHE_SLOTS_MIN or more than ..._MAX slots), MN_ESTATE (the
 * cache exists already). */
int mn_ledger_set_read_cache_bytes(mn_ledger *l, uint64_t bytes) MN_WARN_UNUSED;
size_t mn_ledger_read_cache_slots(const mn_ledger *l);
/* The read cache, when made after this call, gets its memory from a
 * worker thread as it starts (prefault.h) instead of a page at a time as
 * reads fill it. For a serving node; a short-lived ledger need not. */
void mn_ledger_prefault_read_cache(mn_ledger *l);

/* The committed record of a credential through a read cache (see ledger.c):
 * *bytes and *len its serialised form, borrowed: valid until the next call into
 * this ledger (the cache may evict it), never to be freed; *status its
 * effective status at time_ms (mn_ledger_effective_status). Not thread-safe,
 * like the rest of the ledger. Returns MN_OK, MN_ENOTFOUND (NULL, 0,
 * STATUS_UNKNOWN), MN_EIO, MN_ECORRUPT, MN_ENOMEM. */

int mn_ledger_get_record_cached(mn_ledger *l, const uint8_t id[static MN_ID_LEN], int64_t time_ms,
                                const uint8_t **bytes, size_t *len,
                                Midnode__CredentialStatus *status) MN_WARN_UNUSED;

/* Starts loading the cache lines a read of id will touch, changing
 * nothing: a caller about to serve several reads calls this with stage 0
 * for all of them (the bucket's tags), then with stage 1 for all of them
 * (the matching slot, found from the tags), so their memory misses
 * overlap instead of coming one after another. */
void mn_ledger_prefetch_record(const mn_ledger *l, const uint8_t id[static MN_ID_LEN], int stage);

/* Start-up work of the read cache, in steps a loop can interleave with
 * queries: reads at most max records of the store into free slots of the
 * cache and into a filter of the ids that have a record. Once the filter
 * holds every record under the current root, an id it has never seen is
 * answered MN_ENOTFOUND without a store read. A ledger whose state was
 * empty when its cache was made, and that committed every block since,
 * needs no scan; a root moved by anything else (a snapshot import, another
 * process) starts the scan over. Returns 1 while there is more to read, 0
 * when the filter is complete (or there is no filter: out of memory), or
 * MN_EIO, MN_ECORRUPT, MN_ENOMEM. */
int mn_ledger_warm(mn_ledger *l, size_t max) MN_WARN_UNUSED;

typedef struct mn_read_cache_stats {
    uint64_t store_reads;  /* reads of mn_ledger_get_record_cached that went to the store */
    uint64_t absent_known; /* reads answered absent by the id filter */
    uint64_t index_absent_known; /* holder and device index reads of execution
                                    answered absent by their filters */
    uint64_t warmed;       /* records read by the warm-up scan */
    bool ids_complete;     /* the filter holds every record's id */
    bool warm_pending;     /* mn_ledger_warm has records left to read */
} mn_read_cache_stats;
void mn_ledger_read_cache_stats(const mn_ledger *l, mn_read_cache_stats *out);

/* The serialised MerkleProof of a credential (present or absent) against
 * mn_ledger_root, as mn_ledger_prove makes and checks it, through a cache
 * stamped like the record cache. *merkle is borrowed like the record bytes
 * above. Returns MN_OK, MN_EIO, MN_ECORRUPT, MN_ENOMEM. */
int mn_ledger_prove_cached(mn_ledger *l, const uint8_t id[static MN_ID_LEN], const uint8_t **merkle,
                           size_t *merkle_len) MN_WARN_UNUSED;

/* Status a verifier should see at time_ms: EXPIRED when ACTIVE or SUSPENDED
 * and expires_at != 0 and time_ms/1000 >= expires_at; else the stored one. */
Midnode__CredentialStatus mn_ledger_effective_status(const Midnode__CredentialRecord *r,
                                                     int64_t time_ms);

/* Last committed nonce of signer (0 when it never signed). MN_OK or MN_EIO. */
int mn_ledger_get_nonce(mn_ledger *l, const char *signer, uint64_t *nonce) MN_WARN_UNUSED;

/* Proof of a credential's committed state: *record and *record_len the
 * serialised record (malloc'd, caller frees; NULL/0 when absent) and the
 * Merkle path in *proof (caller initialised with midnode__merkle_proof__init,
 * released with mn_smt_proof_clear), against mn_ledger_root at *height.
 * Returns MN_OK (present or absent), MN_EIO, MN_ECORRUPT, MN_ENOMEM. */
int mn_ledger_prove(mn_ledger *l, const uint8_t id[static MN_ID_LEN], uint8_t **record,
                    size_t *record_len, Midnode__MerkleProof *proof, uint64_t *height) MN_WARN_UNUSED;

/* The whole status proof of a credential at the last committed block:
 * credential_id, record (or none), Merkle path, that block's serialised
 * header and its commit certificate (NULL when the store has none yet).
 * Checks that the header's state_root is the committed root.
 * Returns MN_OK with *out (free with mn_ledger_status_proof_free),
 * MN_ENOTFOUND (nothing committed yet), MN_EIO, MN_ECORRUPT, MN_ENOMEM. */
int mn_ledger_status_proof(mn_ledger *l, const uint8_t id[static MN_ID_LEN],
                           Midnode__StatusProof **out) MN_WARN_UNUSED;
void mn_ledger_status_proof_free(Midnode__StatusProof *p); /* NULL-safe */

/* ---- execution of one block */

/* One change of a credential's status, for WatchStatusChanges. */
typedef struct mn_status_change {
    uint64_t height;
    int64_t time_ms;
    uint8_t tx_hash[MN_HASH_LEN];
    uint8_t credential_id[MN_ID_LEN];
    Midnode__CredentialStatus status;
    Midnode__CredentialStatus previous;
    char signer[MN_MEMBER_ID_MAX + 1];
    const char *kind; /* static: "issue", "revoke", "suspend", "resume",
                         "report_loss", "report_recovery", "supersede" */
} mn_status_change;

/* Starts executing block `height` (must be mn_ledger_height()+1) with
 * header time time_ms on top of committed state. Returns NULL when out of
 * memory, the height is wrong, or the store's state moved under the ledger
 * and its tree cannot be rebuilt. */
mn_exec *mn_exec_begin(mn_ledger *l, uint64_t height, int64_t time_ms);

/* Applies one serialised Tx. Returns a Midnode__TxCode; on refusal the
 * overlay is unchanged and msg names the reason. Every call, accepted or
 * not, takes the next transaction index of the block. After
 * mn_exec_finish, returns TX_MALFORMED. An I/O error of the store is
 * reported as MIDNODE__TX_CODE__TX_MALFORMED with msg "store error", and
 * mn_exec_failed() becomes true (the block cannot be committed). */
int mn_exec_apply_tx(mn_exec *e, const uint8_t *tx, size_t len, char *msg, size_t msg_len);

/* The same, with flags. MN_EXEC_SIG_CHECKED: the caller has already seen
 * mn_ledger_check_tx accept these exact bytes (same tx hash, e.g. mempool
 * admission), so the signature is not verified again; every other check
 * runs. Saves one secp256k1 verification (~0.1 ms) per transaction. */
#define MN_EXEC_SIG_CHECKED 1u
int mn_exec_apply_tx_opts(mn_exec *e, const uint8_t *tx, size_t len, unsigned flags, char *msg,
                          size_t msg_len);

/* Info of the last transaction passed to mn_exec_apply_tx (hash always,
 * the rest when it decoded). */
const mn_tx_info *mn_exec_last_info(const mn_exec *e);

bool mn_exec_failed(const mn_exec *e);
uint32_t mn_exec_tx_count(const mn_exec *e); /* transactions passed so far */
uint32_t mn_exec_ok_count(const mn_exec *e); /* accepted so far */

/* Computes the state root after the applied transactions (idempotent).
 * Returns MN_OK, MN_EIO, MN_ECORRUPT, MN_ENOMEM, MN_ESTATE (failed exec). */
int mn_exec_finish(mn_exec *e, uint8_t state_root[static MN_HASH_LEN]) MN_WARN_UNUSED;

/* Status changes made so far (valid until mn_exec_free). */
const mn_status_change *mn_exec_changes(const mn_exec *e, size_t *n);

/* Commits: writes the block bytes, its certificate (serialised
 * CommitCertificate; may be NULL/0), every state change, the tx index,
 * the status-change log and the new height in one synced batch. Calls
 * mn_exec_finish if needed. Returns MN_OK, MN_ESTATE (another block of
 * this height already committed, or the exec failed), MN_EIO. */
int mn_exec_commit(mn_exec *e, const uint8_t *block, size_t block_len, const uint8_t *cert,
                   size_t cert_len) MN_WARN_UNUSED;

void mn_exec_free(mn_exec *e); /* NULL-safe */

/* Names of the TxCode values ("TX_OK", "TX_WRONG_NONCE", ...). */
const char *mn_tx_code_name(int code);

#endif
