/* ledger.c: executes credential transactions over an overlay of committed
 * state, computes the state root and commits a block in one batch (rules in
 * ledger.h, DESIGN.md sections 4 and 5). */
#include "ledger.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "crypto.h"
#include "idfilter.h"
#include "kvmap.h"
#include "nodemap.h"
#include "prefault.h"
#include "smt.h"
#include "tree_build.h"

#define REC_BYTES_MAX 1024
#define REPORT_REF_MAX 64
#define CHANGES_PER_TX_MAX (MN_DEVICE_LIVE_MAX + 1)

struct mn_ledger {
    mn_store *store;
    const mn_genesis *g;
    mn_smt_src src;
    /* The committed state tree, every node of it (the store keeps none),
     * built from the store's records when the ledger opens (tree_build.h)
     * and followed by every commit; tree_root is the root it stands for.
     * An implicit leaf is never in it: the store derives those. */
    mn_nodemap *tree;
    uint8_t tree_root[MN_HASH_LEN];
    struct rec_cache *rc; /* read path: see mn_ledger_get_record_cached; NULL until first use */
    size_t rec_slots;     /* its size when it is made */
    bool rec_prefault;    /* its memory populated by a worker (prefault.h) */
    /* While mn_ledger_prove walks to a record it has read: that record is
     * the implicit leaf at the end of the walk, so no seek is needed. */
    const uint8_t *prove_rec;
    size_t prove_rec_len;
    uint8_t prove_kh[MN_HASH_LEN];
};

typedef struct tx_loc {
    uint8_t hash[MN_HASH_LEN];
    uint32_t index;
} tx_loc;

struct mn_exec {
    mn_ledger *l;
    uint64_t height;
    int64_t time_ms;
    uint8_t base_root[MN_HASH_LEN];
    mn_kvmap *ov;  /* the block's accepted changes (then tree nodes and logs) */
    mn_kvmap *txw; /* the changes of the transaction being applied */
    mn_status_change *changes;
    size_t n_changes, cap_changes;
    uint32_t tx_count, ok_count;
    bool finished, failed, committed;
    uint8_t root[MN_HASH_LEN];
    /* First 8 key-hash bytes of the records the tree may not know yet (no
     * cached old value): the commit records them as implicit leaves. */
    uint8_t (*new_leaves)[8];
    size_t n_new_leaves;
    mn_tx_info last;
};

/* A credential record in plain C form. */
typedef struct rec {
    uint8_t id[MN_ID_LEN];
    uint32_t type;
    uint8_t holder[MN_ID_LEN];
    uint8_t device[MN_ID_LEN];
    char carrier[MN_MEMBER_ID_MAX + 1];
    char issuer[MN_MEMBER_ID_MAX + 1];
    int64_t not_before, expires_at;
    int status;
    bool loss, issuer_susp;
    char reason[MN_REASON_MAX + 1];
    uint64_t issued_height, updated_height;
    uint8_t issued_tx[MN_HASH_LEN], updated_tx[MN_HASH_LEN];
    bool has_superseded;
    uint8_t superseded_by[MN_ID_LEN];
} rec;

/* A decoded, checked transaction. */
typedef struct txp {
    Midnode__Tx *tx;
    Midnode__TxPayload *p;
    const mn_member *signer;
} txp;

enum { ST_UNKNOWN = MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN,
       ST_ACTIVE = MIDNODE__CREDENTIAL_STATUS__ACTIVE,
       ST_SUSPENDED = MIDNODE__CREDENTIAL_STATUS__SUSPENDED,
       ST_REVOKED = MIDNODE__CREDENTIAL_STATUS__REVOKED,
       ST_SUPERSEDED = MIDNODE__CREDENTIAL_STATUS__SUPERSEDED,
       ST_EXPIRED = MIDNODE__CREDENTIAL_STATUS__EXPIRED };

enum { TX_OK = MIDNODE__TX_CODE__TX_OK, TX_MALFORMED = MIDNODE__TX_CODE__TX_MALFORMED,
       TX_BAD_SIG = MIDNODE__TX_CODE__TX_BAD_SIGNATURE,
       TX_UNKNOWN_SIGNER = MIDNODE__TX_CODE__TX_UNKNOWN_SIGNER,
       TX_ROLE = MIDNODE__TX_CODE__TX_ROLE_NOT_ALLOWED,
       TX_NONCE = MIDNODE__TX_CODE__TX_WRONG_NONCE,
       TX_UNKNOWN_CRED = MIDNODE__TX_CODE__TX_UNKNOWN_CREDENTIAL,
       TX_EXISTS = MIDNODE__TX_CODE__TX_CREDENTIAL_EXISTS,
       TX_NOT_YOURS = MIDNODE__TX_CODE__TX_NOT_YOUR_SUBSCRIBER,
       TX_TRANSITION = MIDNODE__TX_CODE__TX_INVALID_TRANSITION,
       TX_TOO_LARGE = MIDNODE__TX_CODE__TX_TOO_LARGE,
       TX_WRONG_CHAIN = MIDNODE__TX_CODE__TX_WRONG_CHAIN };

/* Internal result for store failures, never returned to callers as is. */
#define TX_IO_ERROR (-1)

/* SHA-256 through the incremental interface: for the many short inputs
 * here it avoids the per-call digest lookup of the one-shot call (4x faster). */
static void sha(uint8_t out[static MN_HASH_LEN], const void *data, size_t len) {
    mn_sha256_ctx c;
    mn_sha256_init(&c);
    mn_sha256_update(&c, data, len);
    mn_sha256_final(&c, out);
}

static int refuse(char *msg, size_t len, int code, const char *fmt, ...) MN_PRINTF(4, 5);
static int refuse(char *msg, size_t len, int code, const char *fmt, ...) {
    if (msg && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *mn_tx_code_name(int code) {
    static const char *names[] = {"TX_OK", "TX_MALFORMED", "TX_BAD_SIGNATURE", "TX_UNKNOWN_SIGNER",
                                  "TX_ROLE_NOT_ALLOWED", "TX_WRONG_NONCE", "TX_UNKNOWN_CREDENTIAL",
                                  "TX_CREDENTIAL_EXISTS", "TX_NOT_YOUR_SUBSCRIBER",
                                  "TX_INVALID_TRANSITION", "TX_TOO_LARGE", "TX_WRONG_CHAIN",
                                  "TX_MEMPOOL_FULL", "TX_DUPLICATE"};
    if (code < 0 || (size_t)code >= sizeof names / sizeof names[0]) return "TX_UNKNOWN_CODE";
    return names[code];
}

static const mn_member *member_lookup(const mn_genesis *g, const char *id) {
    for (size_t i = 0; i < g->member_count && i < MN_MEMBERS_MAX; i++)
        if (strcmp(g->members[i].id, id) == 0) return &g->members[i];
    return NULL;
}

/* Local copy of the type names: genesis.c owns mn_cred_type_name, but the
 * ledger must not depend on the genesis loader. */
static const char *type_name(unsigned type) {
    static const char *names[] = {"unspecified", "resident", "driver", "veteran", "foreigner", "overseas"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

/* ---------------------------------------------------------------- records */

static size_t rec_pack(const rec *r, uint8_t *out, size_t cap) {
    Midnode__CredentialRecord m = MIDNODE__CREDENTIAL_RECORD__INIT;
    m.credential_id = (ProtobufCBinaryData){MN_ID_LEN, (uint8_t *)r->id};
    m.type = (Midnode__CredentialType)r->type;
    m.holder_ref = (ProtobufCBinaryData){MN_ID_LEN, (uint8_t *)r->holder};
    m.device_ref = (ProtobufCBinaryData){MN_ID_LEN, (uint8_t *)r->device};
    m.carrier = (char *)r->carrier;
    m.issuer = (char *)r->issuer;
    m.not_before = r->not_before;
    m.expires_at = r->expires_at;
    m.status = (Midnode__CredentialStatus)r->status;
    m.loss_suspended = r->loss;
    m.issuer_suspended = r->issuer_susp;
    m.revoke_reason = (char *)r->reason;
    m.issued_height = r->issued_height;
    m.issued_tx = (ProtobufCBinaryData){MN_HASH_LEN, (uint8_t *)r->issued_tx};
    m.updated_height = r->updated_height;
    m.updated_tx = (ProtobufCBinaryData){MN_HASH_LEN, (uint8_t *)r->updated_tx};
    if (r->has_superseded) m.superseded_by = (ProtobufCBinaryData){MN_ID_LEN, (uint8_t *)r->superseded_by};
    size_t n = midnode__credential_record__get_packed_size(&m);
    if (n > cap) return 0;
    return midnode__credential_record__pack(&m, out);
}

static bool copy_id(uint8_t *dst, ProtobufCBinaryData b) {
    if (b.len != MN_ID_LEN) return false;
    memcpy(dst, b.data, MN_ID_LEN);
    return true;
}

static bool copy_str(char *dst, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n >= cap) return false;
    memcpy(dst, s, n + 1);
    return true;
}

static int rec_unpack(rec *r, const uint8_t *buf, size_t len) {
    Midnode__CredentialRecord *m = midnode__credential_record__unpack(NULL, len, buf);
    if (!m) return MN_ECORRUPT;
    memset(r, 0, sizeof *r);
    bool ok = copy_id(r->id, m->credential_id) && copy_id(r->holder, m->holder_ref) &&
              copy_id(r->device, m->device_ref) &&
              copy_str(r->carrier, sizeof r->carrier, m->carrier) &&
              copy_str(r->issuer, sizeof r->issuer, m->issuer) &&
              copy_str(r->reason, sizeof r->reason, m->revoke_reason) &&
              m->issued_tx.len == MN_HASH_LEN && m->updated_tx.len == MN_HASH_LEN;
    if (ok) {
        r->type = (uint32_t)m->type;
        r->not_before = m->not_before;
        r->expires_at = m->expires_at;
        r->status = m->status;
        r->loss = m->loss_suspended;
        r->issuer_susp = m->issuer_suspended;
        r->issued_height = m->issued_height;
        r->updated_height = m->updated_height;
        memcpy(r->issued_tx, m->issued_tx.data, MN_HASH_LEN);
        memcpy(r->updated_tx, m->updated_tx.data, MN_HASH_LEN);
        if (m->superseded_by.len) {
            ok = copy_id(r->superseded_by, m->superseded_by);
            r->has_superseded = true;
        }
    }
    midnode__credential_record__free_unpacked(m, NULL);
    return ok ? MN_OK : MN_ECORRUPT;
}

static bool is_final(int status) { return status == ST_REVOKED || status == ST_SUPERSEDED; }

static bool expired_at(int64_t expires_at, int64_t time_ms) {
    return expires_at != 0 && time_ms / 1000 >= expires_at;
}

Midnode__CredentialStatus mn_ledger_effective_status(const Midnode__CredentialRecord *r,
                                                     int64_t time_ms) {
    if (!r) return MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN;
    if (((int)r->status == ST_ACTIVE || (int)r->status == ST_SUSPENDED) && expired_at(r->expires_at, time_ms))
        return MIDNODE__CREDENTIAL_STATUS__EXPIRED;
    return r->status;
}

/* ---------------------------------------------------------------- ledger */

/* Tree nodes of the committed state: the in-memory tree, which this
 * process computed (so no node needs a re-check), and for a position it
 * does not hold, the implicit leaf the store derives there, if any (which
 * the tree checks against its parent). */
static int ledger_smt_get(void *ctx, const uint8_t *pos, size_t len, uint8_t node[static MN_SMT_NODE_LEN]) {
    mn_ledger *l = ctx;
    if (mn_nodemap_get(l->tree, pos, len, node)) return MN_SMT_TRUSTED;
    return mn_store_smt_leaf(l->store, pos, len, node);
}

/* For the store's commit (mn_store_set_tree): whether the committed tree
 * holds a node at pos, when the in-memory tree is the committed one. */
static int ledger_tree_has(void *ctx, const uint8_t *pos, size_t len) {
    mn_ledger *l = ctx;
    uint8_t cur[MN_HASH_LEN], node[MN_SMT_NODE_LEN];
    mn_store_root(l->store, cur);
    if (memcmp(cur, l->tree_root, MN_HASH_LEN) != 0) return -1;
    return mn_nodemap_get(l->tree, pos, len, node) ? 1 : 0;
}

static void ledger_smt_prefetch(void *ctx, const uint8_t *pos, size_t len, int stage) {
    mn_ledger *l = ctx;
    mn_nodemap_prefetch(l->tree, pos, len, stage);
}

/* Implicit leaves are never in the tree map (no entry is written for them).
 * The one record under a position whose path the proven record's key hash
 * starts with is that record (the tree checks its hash either way). */
static int ledger_smt_leaf(void *ctx, const uint8_t *pos, size_t len, uint8_t node[static MN_SMT_NODE_LEN]) {
    mn_ledger *l = ctx;
    unsigned depth;
    if (l->prove_rec && mn_smt_pos_depth(pos, len, &depth)) {
        uint8_t pk[MN_SMT_POS_KEY_MAX];
        if (mn_smt_pos_key(pk, depth, l->prove_kh) == len && memcmp(pk, pos, len) == 0) {
            node[0] = MN_SMT_IMPLICIT;
            memcpy(node + 1, l->prove_kh, MN_HASH_LEN);
            sha(node + 1 + MN_HASH_LEN, l->prove_rec, l->prove_rec_len);
            return MN_OK;
        }
    }
    return mn_store_smt_leaf(l->store, pos, len, node);
}

/* The implicit leaves' key prefixes the in-memory tree keeps beside its
 * nodes (nodemap.h): an issuance that lands on another credential's leaf
 * learns where the two part without a seek of the store. */
static int ledger_smt_leaf_prefix(void *ctx, const uint8_t *pos, size_t len, uint8_t prefix[static 8]) {
    mn_ledger *l = ctx;
    return mn_nodemap_leaf_find(l->tree, pos, len, prefix);
}

/* Empties the in-memory tree and stamps it with a root no state has, so
 * that the next use rebuilds it from the store (tree_sync). */
static void tree_forget(mn_ledger *l) {
    mn_nodemap_clear(l->tree);
    memset(l->tree_root, 0xFF, MN_HASH_LEN);
}

#define TREE_APPLY_AHEAD 8

/* After a commit: the in-memory tree follows the committed one (its nodes,
 * and the key prefixes of its implicit leaves, new_leaves among them). A map
 * that cannot take them is rebuilt from the store at next use. */
static void tree_apply(mn_ledger *l, const mn_kvmap *ov, const uint8_t (*new_leaves)[8], size_t n_new_leaves,
                       const uint8_t root[static MN_HASH_LEN]) {
    size_t n = mn_kv_count(ov);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        /* Each put misses on its slot and then on its entry: ask for the
         * slot of a later entry and the entry of a nearer one meanwhile. */
        for (int stage = 0; stage < 2; stage++) {
            size_t ahead = i + (stage ? TREE_APPLY_AHEAD / 2 : TREE_APPLY_AHEAD);
            if (ahead >= n) continue;
            mn_kv_entry(ov, ahead, &k, &kl, &v, &vl);
            if (k[0] == MN_SMT_PREFIX) mn_nodemap_prefetch(l->tree, k, kl, stage);
        }
        mn_kv_entry(ov, i, &k, &kl, &v, &vl);
        if (k[0] != MN_SMT_PREFIX) continue;
        int rc = !v ? mn_nodemap_del(l->tree, k, kl)
                    : vl == MN_SMT_NODE_LEN ? mn_nodemap_put(l->tree, k, kl, v) : MN_EINVAL;
        if (rc != MN_OK) {
            tree_forget(l);
            return;
        }
    }
    for (size_t i = 0; i < n_new_leaves; i++) /* records are never deleted */
        if (mn_nodemap_leaf_add(l->tree, new_leaves[i]) != MN_OK) {
            tree_forget(l);
            return;
        }
    memcpy(l->tree_root, root, MN_HASH_LEN);
}

/* Makes the in-memory tree the store's current one: a no-op unless the
 * store's root moved without this ledger (another writer of the store, or
 * a failed update of the map), then a rebuild. Returns MN_OK, MN_ENOMEM,
 * MN_EIO, MN_ECORRUPT (the records do not hash to the stored root). */
static int tree_sync(mn_ledger *l) {
    uint8_t root[MN_HASH_LEN];
    mn_store_root(l->store, root);
    if (memcmp(root, l->tree_root, MN_HASH_LEN) == 0) return MN_OK;
    mn_nodemap_clear(l->tree);
    uint8_t built[MN_HASH_LEN];
    int rc = mn_tree_build(l->store, l->tree, built, NULL);
    if (rc == MN_OK && memcmp(built, root, MN_HASH_LEN) != 0) rc = MN_ECORRUPT;
    if (rc != MN_OK) {
        tree_forget(l);
        return rc;
    }
    memcpy(l->tree_root, root, MN_HASH_LEN);
    return MN_OK;
}

int mn_ledger_open(mn_ledger **out, mn_store *store, const mn_genesis *genesis) {
    return mn_ledger_open_with_tree(out, store, genesis, NULL, NULL);
}

int mn_ledger_open_with_tree(mn_ledger **out, mn_store *store, const mn_genesis *genesis, mn_nodemap *tree,
                             const uint8_t *root) {
    *out = NULL;
    mn_ledger *l = calloc(1, sizeof *l);
    if (!l) {
        mn_nodemap_free(tree);
        return MN_ENOMEM;
    }
    l->tree = tree ? tree : mn_nodemap_new();
    if (!l->tree) {
        free(l);
        return MN_ENOMEM;
    }
    if (tree) /* tree_sync keeps it when root is the store's, else rebuilds it */
        memcpy(l->tree_root, root, MN_HASH_LEN);
    else
        tree_forget(l);
    l->store = store;
    l->g = genesis;
    l->rec_slots = MN_LEDGER_REC_CACHE_SLOTS;
    l->src.get = ledger_smt_get;
    l->src.leaf = ledger_smt_leaf;
    l->src.prefetch = ledger_smt_prefetch;
    l->src.leaf_prefix = ledger_smt_leaf_prefix;
    l->src.ctx = l;
    int rc = tree_sync(l);
    if (rc != MN_OK) {
        mn_ledger_free(l);
        return rc;
    }
    mn_store_set_tree(store, ledger_tree_has, l);
    *out = l;
    return MN_OK;
}

static void rec_cache_free(struct rec_cache *rc);

void mn_ledger_free(mn_ledger *l) {
    if (!l) return;
    if (l->store) mn_store_set_tree(l->store, NULL, NULL);
    mn_nodemap_free(l->tree);
    rec_cache_free(l->rc);
    free(l);
}

uint64_t mn_ledger_height(const mn_ledger *l) { return mn_store_height(l->store); }

void mn_ledger_root(const mn_ledger *l, uint8_t out[static MN_HASH_LEN]) { mn_store_root(l->store, out); }

int mn_ledger_get_record(mn_ledger *l, const uint8_t id[static MN_ID_LEN],
                         Midnode__CredentialRecord **out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mn_store_get_record(l->store, id, &buf, &len);
    if (rc != MN_OK) return rc;
    *out = midnode__credential_record__unpack(NULL, len, buf);
    free(buf);
    return *out ? MN_OK : MN_ECORRUPT;
}

int mn_ledger_get_nonce(mn_ledger *l, const char *signer, uint64_t *nonce) {
    return mn_store_get_nonce(l->store, signer, nonce);
}

/* The Merkle proof of id's committed record (bytes, len; NULL when absent)
 * under the store's root, checked against the pair before it is handed out:
 * a proof that does not verify means the store is inconsistent
 * (MN_ECORRUPT). Fills *proof (mn_smt_proof_clear) on MN_OK only. */
static int prove_pair(mn_ledger *l, const uint8_t id[static MN_ID_LEN], const uint8_t *record, size_t len,
                      Midnode__MerkleProof *proof) {
    uint8_t root[MN_HASH_LEN], kh[MN_HASH_LEN];
    int rc = tree_sync(l);
    if (rc != MN_OK) return rc;
    mn_store_root(l->store, root);
    mn_smt_key_credential(kh, id);
    if (record) {
        l->prove_rec = record;
        l->prove_rec_len = len;
        memcpy(l->prove_kh, kh, MN_HASH_LEN);
    }
    rc = mn_smt_prove(&l->src, NULL, root, kh, proof);
    l->prove_rec = NULL;
    if (rc == MN_OK) {
        const char *why = NULL;
        if (mn_smt_verify(root, kh, record, record ? len : 0, proof, &why) != MN_OK) {
            mn_smt_proof_clear(proof);
            rc = MN_ECORRUPT;
        }
    }
    return rc;
}

int mn_ledger_prove(mn_ledger *l, const uint8_t id[static MN_ID_LEN], uint8_t **record,
                    size_t *record_len, Midnode__MerkleProof *proof, uint64_t *height) {
    *height = mn_store_height(l->store);
    *record = NULL;
    *record_len = 0;
    int rc = mn_store_get_record(l->store, id, record, record_len);
    if (rc == MN_ENOTFOUND)
        rc = MN_OK;
    else if (rc != MN_OK)
        return rc;
    rc = prove_pair(l, id, *record, *record_len, proof);
    if (rc != MN_OK) {
        free(*record);
        *record = NULL;
        *record_len = 0;
    }
    return rc;
}

void mn_ledger_status_proof_free(Midnode__StatusProof *p) {
    if (!p) return;
    free(p->credential_id.data);
    free(p->record.data);
    if (p->merkle) {
        mn_smt_proof_clear(p->merkle);
        free(p->merkle);
    }
    free(p->header.data);
    if (p->commit) midnode__commit_certificate__free_unpacked(p->commit, NULL);
    free(p);
}

int mn_ledger_status_proof(mn_ledger *l, const uint8_t id[static MN_ID_LEN],
                           Midnode__StatusProof **out) {
    *out = NULL;
    uint64_t height = mn_store_height(l->store);
    if (height == 0) return MN_ENOTFOUND;
    Midnode__StatusProof *p = calloc(1, sizeof *p);
    Midnode__MerkleProof *mp = calloc(1, sizeof *mp);
    if (!p || !mp) {
        free(p);
        free(mp);
        return MN_ENOMEM;
    }
    midnode__status_proof__init(p);
    midnode__merkle_proof__init(mp);
    p->merkle = mp;
    int rc = MN_OK;
    p->credential_id.data = malloc(MN_ID_LEN);
    if (!p->credential_id.data) rc = MN_ENOMEM;
    if (rc == MN_OK) {
        memcpy(p->credential_id.data, id, MN_ID_LEN);
        p->credential_id.len = MN_ID_LEN;
        uint64_t h2 = 0;
        rc = mn_ledger_prove(l, id, &p->record.data, &p->record.len, mp, &h2);
        if (rc == MN_OK && h2 != height) rc = MN_ECORRUPT;
    }
    uint8_t *blk = NULL, *cert = NULL;
    size_t blk_len = 0, cert_len = 0;
    if (rc == MN_OK) rc = mn_store_get_block(l->store, height, &blk, &blk_len);
    if (rc == MN_ENOTFOUND) rc = MN_ECORRUPT; /* the height says it is there */
    if (rc == MN_OK) {
        Midnode__Block *b = midnode__block__unpack(NULL, blk_len, blk);
        Midnode__BlockHeader *hd = b ? midnode__block_header__unpack(NULL, b->header.len, b->header.data) : NULL;
        uint8_t root[MN_HASH_LEN];
        mn_store_root(l->store, root);
        if (!hd || hd->height != height || hd->state_root.len != MN_HASH_LEN ||
            memcmp(hd->state_root.data, root, MN_HASH_LEN) != 0) {
            rc = MN_ECORRUPT;
        } else {
            p->header.data = malloc(b->header.len ? b->header.len : 1);
            if (!p->header.data) {
                rc = MN_ENOMEM;
            } else {
                memcpy(p->header.data, b->header.data, b->header.len);
                p->header.len = b->header.len;
            }
        }
        if (hd) midnode__block_header__free_unpacked(hd, NULL);
        if (b) midnode__block__free_unpacked(b, NULL);
    }
    if (rc == MN_OK) {
        int crc = mn_store_get_cert(l->store, height, &cert, &cert_len);
        if (crc == MN_OK) {
            p->commit = midnode__commit_certificate__unpack(NULL, cert_len, cert);
            if (!p->commit) rc = MN_ECORRUPT;
        } else if (crc != MN_ENOTFOUND) {
            rc = crc;
        }
    }
    free(blk);
    free(cert);
    if (rc != MN_OK) {
        mn_ledger_status_proof_free(p);
        return rc;
    }
    *out = p;
    return MN_OK;
}

/* ---------------------------------------------------------------- decoding */

static void txp_free(txp *t) {
    if (t->p) midnode__tx_payload__free_unpacked(t->p, NULL);
    if (t->tx) midnode__tx__free_unpacked(t->tx, NULL);
    memset(t, 0, sizeof *t);
}

static bool id_ok(ProtobufCBinaryData b) { return b.len == MN_ID_LEN; }

/* The checks of one issuance that need only its bytes and the genesis. */
static int check_issue_shape(const mn_genesis *g, const Midnode__IssueBody *b, char *msg, size_t msg_len) {
    if (!id_ok(b->credential_id) || !id_ok(b->holder_ref) || !id_ok(b->device_ref))
        return refuse(msg, msg_len, TX_MALFORMED, "credential_id, holder_ref and device_ref must be 32 bytes");
    if ((int)b->type < MN_CRED_TYPE_MIN || (int)b->type > MN_CRED_TYPE_MAX)
        return refuse(msg, msg_len, TX_MALFORMED, "unknown credential type %d", (int)b->type);
    if (b->not_before < 0 || b->expires_at < 0 || (b->expires_at != 0 && b->expires_at <= b->not_before))
        return refuse(msg, msg_len, TX_MALFORMED, "expires_at must be 0 or after not_before");
    const mn_member *c = strlen(b->carrier) <= MN_MEMBER_ID_MAX ? member_lookup(g, b->carrier) : NULL;
    if (!c || !(c->roles & MN_ROLE_CARRIER))
        return refuse(msg, msg_len, TX_MALFORMED, "carrier \"%.32s\" is not a carrier member", b->carrier);
    return TX_OK;
}

static int check_issue_type(const mn_member *m, const Midnode__IssueBody *b, char *msg, size_t msg_len) {
    if (!(m->cred_types & (1u << b->type)))
        return refuse(msg, msg_len, TX_ROLE, "%s may not issue %s credentials", m->id, type_name(b->type));
    return TX_OK;
}

/* Prefixes an item's refusal with its index, so the submitter can find it. */
static int refuse_item(char *msg, size_t msg_len, int code, size_t index, const char *why) {
    return refuse(msg, msg_len, code, "item %zu: %s", index, why);
}

/* An ISSUE_BATCH: a bounded number of items, each shaped like an ISSUE and
 * of a type the signer may issue (checked after the role, as for ISSUE). */
static int check_batch_shape(const mn_genesis *g, const Midnode__IssueBatchBody *b, char *msg, size_t msg_len) {
    if (b->n_items == 0) return refuse(msg, msg_len, TX_MALFORMED, "issue batch has no items");
    if (b->n_items > MN_BATCH_ITEMS_MAX)
        return refuse(msg, msg_len, TX_TOO_LARGE, "issue batch of %zu items, the limit is %d", b->n_items,
                      MN_BATCH_ITEMS_MAX);
    for (size_t i = 0; i < b->n_items; i++) {
        char why[MN_TX_MSG_MAX];
        int code = check_issue_shape(g, b->items[i], why, sizeof why);
        if (code != TX_OK) return refuse_item(msg, msg_len, code, i, why);
    }
    return TX_OK;
}

/* Checks everything that depends only on the bytes and the genesis. */
static int decode_tx(const mn_genesis *g, const uint8_t *bytes, size_t len, bool verify_sig,
                     mn_tx_info *info, txp *t, char *msg, size_t msg_len) {
    memset(t, 0, sizeof *t);
    if (info) memset(info, 0, sizeof *info);
    /* Only an ISSUE_BATCH may exceed MN_TX_BYTES_MAX; anything larger that
     * does not decode as one is refused for its size. */
    bool big = len > MN_TX_BYTES_MAX;
    if (len > MN_TX_BATCH_BYTES_MAX)
        return refuse(msg, msg_len, TX_TOO_LARGE, "transaction is %zu bytes, the limit is %d", len,
                      MN_TX_BATCH_BYTES_MAX);
#define TOO_BIG()                                                                                  \
    refuse(msg, msg_len, TX_TOO_LARGE, "transaction is %zu bytes, the limit is %d (%d for ISSUE_BATCH)", len, \
           MN_TX_BYTES_MAX, MN_TX_BATCH_BYTES_MAX)
    if (info) sha(info->hash, bytes, len);
    t->tx = midnode__tx__unpack(NULL, len, bytes);
    if (!t->tx) return big ? TOO_BIG() : refuse(msg, msg_len, TX_MALFORMED, "transaction does not decode");
    if (t->tx->signature.len != MN_SIG_LEN)
        return refuse(msg, msg_len, TX_MALFORMED, "signature must be %d bytes", MN_SIG_LEN);
    t->p = midnode__tx_payload__unpack(NULL, t->tx->payload.len, t->tx->payload.data);
    if (!t->p) return big ? TOO_BIG() : refuse(msg, msg_len, TX_MALFORMED, "payload does not decode");
    Midnode__TxPayload *p = t->p;
    if (big && p->body_case != MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH) return TOO_BIG();
#undef TOO_BIG
    if (info) {
        snprintf(info->signer, sizeof info->signer, "%s", p->signer);
        info->nonce = p->nonce;
        info->kind = (int)p->body_case;
    }
    if (strcmp(p->chain_id, g->chain_id) != 0)
        return refuse(msg, msg_len, TX_WRONG_CHAIN, "chain id \"%.64s\" is not this chain (%s)",
                      p->chain_id, g->chain_id);
    const mn_member *m = strlen(p->signer) <= MN_MEMBER_ID_MAX ? member_lookup(g, p->signer) : NULL;
    if (!m || !m->has_tx_key)
        return refuse(msg, msg_len, TX_UNKNOWN_SIGNER, "signer \"%.32s\" is not a member with a transaction key",
                      p->signer);
    t->signer = m;
    uint8_t digest[MN_HASH_LEN];
    sha(digest, t->tx->payload.data, t->tx->payload.len);
    if (verify_sig && !mn_verify(t->tx->signature.data, digest, m->tx_pubkey))
        return refuse(msg, msg_len, TX_BAD_SIG, "signature does not verify with %s's transaction key", m->id);
    if (p->nonce == 0) return refuse(msg, msg_len, TX_NONCE, "nonce 0 is never valid (the first is 1)");
    bool issuer_op = false, carrier_op = false;
    switch (p->body_case) {
    case MIDNODE__TX_PAYLOAD__BODY_ISSUE: {
        issuer_op = true;
        int code = check_issue_shape(g, p->issue, msg, msg_len);
        if (code != TX_OK) return code;
        break;
    }
    case MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH: {
        issuer_op = true;
        int code = check_batch_shape(g, p->issue_batch, msg, msg_len);
        if (code != TX_OK) return code;
        break;
    }
    case MIDNODE__TX_PAYLOAD__BODY_REVOKE:
        issuer_op = true;
        if (!id_ok(p->revoke->credential_id))
            return refuse(msg, msg_len, TX_MALFORMED, "credential_id must be 32 bytes");
        if (strlen(p->revoke->reason) > MN_REASON_MAX)
            return refuse(msg, msg_len, TX_MALFORMED, "revoke reason over %d bytes", MN_REASON_MAX);
        break;
    case MIDNODE__TX_PAYLOAD__BODY_SUSPEND:
        issuer_op = true;
        if (!id_ok(p->suspend->credential_id))
            return refuse(msg, msg_len, TX_MALFORMED, "credential_id must be 32 bytes");
        break;
    case MIDNODE__TX_PAYLOAD__BODY_RESUME:
        issuer_op = true;
        if (!id_ok(p->resume->credential_id))
            return refuse(msg, msg_len, TX_MALFORMED, "credential_id must be 32 bytes");
        break;
    case MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS:
        carrier_op = true;
        if (!id_ok(p->report_loss->device_ref))
            return refuse(msg, msg_len, TX_MALFORMED, "device_ref must be 32 bytes");
        if (p->report_loss->report_ref.len > REPORT_REF_MAX)
            return refuse(msg, msg_len, TX_MALFORMED, "report_ref over %d bytes", REPORT_REF_MAX);
        break;
    case MIDNODE__TX_PAYLOAD__BODY_REPORT_RECOVERY:
        carrier_op = true;
        if (!id_ok(p->report_recovery->device_ref))
            return refuse(msg, msg_len, TX_MALFORMED, "device_ref must be 32 bytes");
        break;
    default:
        return refuse(msg, msg_len, TX_MALFORMED, "transaction has no body");
    }
    if (issuer_op && !(m->roles & MN_ROLE_ISSUER))
        return refuse(msg, msg_len, TX_ROLE, "%s is not an issuer", m->id);
    if (carrier_op && !(m->roles & MN_ROLE_CARRIER))
        return refuse(msg, msg_len, TX_ROLE, "%s is not a carrier", m->id);
    if (p->body_case == MIDNODE__TX_PAYLOAD__BODY_ISSUE) return check_issue_type(m, p->issue, msg, msg_len);
    if (p->body_case == MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH) {
        for (size_t i = 0; i < p->issue_batch->n_items; i++) {
            char why[MN_TX_MSG_MAX];
            int code = check_issue_type(m, p->issue_batch->items[i], why, sizeof why);
            if (code != TX_OK) return refuse_item(msg, msg_len, code, i, why);
        }
    }
    return TX_OK;
}

int mn_ledger_check_tx(mn_ledger *l, const uint8_t *tx, size_t len, mn_tx_info *info, char *msg,
                       size_t msg_len) {
    txp t;
    if (msg && msg_len) msg[0] = '\0';
    int code = decode_tx(l->g, tx, len, true, info, &t, msg, msg_len);
    if (code == TX_OK) {
        uint64_t last = 0;
        if (mn_store_get_nonce(l->store, t.signer->id, &last) != MN_OK)
            code = refuse(msg, msg_len, TX_MALFORMED, "store error reading the nonce");
        else if (t.p->nonce <= last)
            code = refuse(msg, msg_len, TX_NONCE, "nonce %llu already used (last committed %llu)",
                          (unsigned long long)t.p->nonce, (unsigned long long)last);
    }
    txp_free(&t);
    return code;
}

/* ---------------------------------------------------------------- execution */

mn_exec *mn_exec_begin(mn_ledger *l, uint64_t height, int64_t time_ms) {
    if (height != mn_store_height(l->store) + 1 || tree_sync(l) != MN_OK) return NULL;
    mn_exec *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->l = l;
    e->height = height;
    e->time_ms = time_ms;
    mn_store_root(l->store, e->base_root);
    e->ov = mn_kv_new();
    e->txw = mn_kv_new();
    if (!e->ov || !e->txw) {
        mn_exec_free(e);
        return NULL;
    }
    return e;
}

void mn_exec_free(mn_exec *e) {
    if (!e) return;
    mn_kv_free(e->ov);
    mn_kv_free(e->txw);
    free(e->changes);
    free(e->new_leaves);
    free(e);
}

bool mn_exec_failed(const mn_exec *e) { return e->failed; }
uint32_t mn_exec_tx_count(const mn_exec *e) { return e->tx_count; }
uint32_t mn_exec_ok_count(const mn_exec *e) { return e->ok_count; }
const mn_tx_info *mn_exec_last_info(const mn_exec *e) { return &e->last; }

const mn_status_change *mn_exec_changes(const mn_exec *e, size_t *n) {
    *n = e->n_changes;
    return e->changes;
}

/* Reads key through the transaction, the block, then the store.
 * Returns MN_OK with *out (malloc'd), MN_ENOTFOUND, MN_EIO, MN_ENOMEM. */
/* What this execution wrote to key so far: the transaction's own writes,
 * then the block's. MN_KV_ABSENT means the committed state decides. */
static int ex_written(const mn_exec *e, const uint8_t *key, size_t kl, const uint8_t **v, size_t *vl) {
    int st = mn_kv_get(e->txw, key, kl, v, vl);
    return st == MN_KV_ABSENT ? mn_kv_get(e->ov, key, kl, v, vl) : st;
}

static bool index_surely_absent(mn_ledger *l, const uint8_t *key, size_t kl);

static int ex_read(mn_exec *e, const uint8_t *key, size_t kl, uint8_t **out, size_t *len) {
    const uint8_t *v = NULL;
    size_t vl = 0;
    int st = ex_written(e, key, kl, &v, &vl);
    if (st == MN_KV_DELETED) return MN_ENOTFOUND;
    if (st == MN_KV_VALUE) {
        *out = malloc(vl ? vl : 1);
        if (!*out) return MN_ENOMEM;
        if (vl) memcpy(*out, v, vl);
        *len = vl;
        return MN_OK;
    }
    if (index_surely_absent(e->l, key, kl)) return MN_ENOTFOUND;
    return mn_store_get(e->l->store, key, kl, out, len);
}

static int committed_rec(mn_ledger *l, const uint8_t id[static MN_ID_LEN], rec *r);

/* Reads a record; MN_OK, MN_ENOTFOUND, or an error. */
static int ex_get_rec(mn_exec *e, const uint8_t *id, rec *r) {
    uint8_t k[MN_STORE_KEY_MAX];
    size_t kl = mn_store_key_record(k, id);
    const uint8_t *v = NULL;
    size_t vl = 0;
    int st = ex_written(e, k, kl, &v, &vl);
    if (st == MN_KV_DELETED) return MN_ENOTFOUND;
    if (st == MN_KV_VALUE) return rec_unpack(r, v, vl);
    return committed_rec(e->l, id, r);
}

static int ex_put_rec(mn_exec *e, const rec *r) {
    uint8_t k[MN_STORE_KEY_MAX], buf[REC_BYTES_MAX];
    size_t kl = mn_store_key_record(k, r->id);
    size_t n = rec_pack(r, buf, sizeof buf);
    if (n == 0) return MN_ETOOBIG;
    return mn_kv_put(e->txw, k, kl, buf, n);
}

/* The not-final credential ids of a device (at most MN_DEVICE_LIVE_MAX). */
typedef struct devlist {
    size_t n;
    uint8_t ids[MN_DEVICE_LIVE_MAX][MN_ID_LEN];
} devlist;

static int ex_get_dev(mn_exec *e, const uint8_t *device, devlist *d) {
    uint8_t k[MN_STORE_KEY_MAX];
    size_t kl = mn_store_key_device(k, device);
    uint8_t *buf = NULL;
    size_t len = 0;
    d->n = 0;
    int rc = ex_read(e, k, kl, &buf, &len);
    if (rc == MN_ENOTFOUND) return MN_OK;
    if (rc != MN_OK) return rc;
    if (len % MN_ID_LEN != 0 || len / MN_ID_LEN > MN_DEVICE_LIVE_MAX) {
        free(buf);
        return MN_ECORRUPT;
    }
    d->n = len / MN_ID_LEN;
    memcpy(d->ids, buf, len);
    free(buf);
    return MN_OK;
}

static int ex_put_dev(mn_exec *e, const uint8_t *device, const devlist *d) {
    uint8_t k[MN_STORE_KEY_MAX];
    size_t kl = mn_store_key_device(k, device);
    if (d->n == 0) return mn_kv_del(e->txw, k, kl);
    return mn_kv_put(e->txw, k, kl, d->ids, d->n * MN_ID_LEN);
}

static void dev_remove(devlist *d, const uint8_t *id) {
    for (size_t i = 0; i < d->n; i++)
        if (memcmp(d->ids[i], id, MN_ID_LEN) == 0) {
            memmove(d->ids[i], d->ids[i + 1], (d->n - i - 1) * MN_ID_LEN);
            d->n--;
            return;
        }
}

static int ex_dev_remove(mn_exec *e, const uint8_t *device, const uint8_t *id) {
    devlist d;
    int rc = ex_get_dev(e, device, &d);
    if (rc != MN_OK) return rc;
    dev_remove(&d, id);
    return ex_put_dev(e, device, &d);
}

/* Drops the holder index entry when it still names id. */
static int ex_holder_release(mn_exec *e, const rec *r) {
    uint8_t k[MN_STORE_KEY_MAX];
    size_t kl = mn_store_key_holder(k, r->holder, r->type);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = ex_read(e, k, kl, &buf, &len);
    if (rc == MN_ENOTFOUND) return MN_OK;
    if (rc != MN_OK) return rc;
    bool same = len == MN_ID_LEN && memcmp(buf, r->id, MN_ID_LEN) == 0;
    free(buf);
    return same ? mn_kv_del(e->txw, k, kl) : MN_OK;
}

static int add_change(mn_exec *e, const uint8_t *tx_hash, const rec *r, int prev, const char *signer,
                      const char *kind) {
    if (e->n_changes == e->cap_changes) {
        size_t nc = e->cap_changes ? e->cap_changes * 2 : 64;
        mn_status_change *n = realloc(e->changes, nc * sizeof *n);
        if (!n) return MN_ENOMEM;
        e->changes = n;
        e->cap_changes = nc;
    }
    mn_status_change *c = &e->changes[e->n_changes++];
    memset(c, 0, sizeof *c);
    c->height = e->height;
    c->time_ms = e->time_ms;
    memcpy(c->tx_hash, tx_hash, MN_HASH_LEN);
    memcpy(c->credential_id, r->id, MN_ID_LEN);
    c->status = (Midnode__CredentialStatus)r->status;
    c->previous = (Midnode__CredentialStatus)prev;
    snprintf(c->signer, sizeof c->signer, "%s", signer);
    c->kind = kind;
    return MN_OK;
}

static void touch(mn_exec *e, rec *r, const uint8_t *tx_hash) {
    r->updated_height = e->height;
    memcpy(r->updated_tx, tx_hash, MN_HASH_LEN);
}

static int status_of(const rec *r) { return (r->loss || r->issuer_susp) ? ST_SUSPENDED : ST_ACTIVE; }

/* Each rule returns a TxCode, or TX_IO_ERROR when the store failed. */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((expr) != MN_OK) return TX_IO_ERROR;                                                   \
    } while (0)

static int exec_issue(mn_exec *e, const txp *t, const Midnode__IssueBody *b, const uint8_t *h, char *msg,
                      size_t ml) {
    const char *signer = t->signer->id;
    rec old, r;
    int rc = ex_get_rec(e, b->credential_id.data, &old);
    if (rc == MN_OK) return refuse(msg, ml, TX_EXISTS, "credential already exists");
    if (rc != MN_ENOTFOUND) return TX_IO_ERROR;

    /* One live credential per holder and type: the new copy supersedes it. */
    uint8_t hk[MN_STORE_KEY_MAX];
    size_t hkl = mn_store_key_holder(hk, b->holder_ref.data, (uint32_t)b->type);
    uint8_t *live = NULL;
    size_t live_len = 0;
    rc = ex_read(e, hk, hkl, &live, &live_len);
    if (rc == MN_OK) {
        int rc2 = live_len == MN_ID_LEN ? ex_get_rec(e, live, &old) : MN_ECORRUPT;
        free(live);
        if (rc2 != MN_OK) return TX_IO_ERROR;
        if (!is_final(old.status)) {
            int prev = old.status;
            old.status = ST_SUPERSEDED;
            old.has_superseded = true;
            memcpy(old.superseded_by, b->credential_id.data, MN_ID_LEN);
            touch(e, &old, h);
            TRY(ex_put_rec(e, &old));
            TRY(ex_dev_remove(e, old.device, old.id));
            TRY(add_change(e, h, &old, prev, signer, "supersede"));
        }
    } else if (rc != MN_ENOTFOUND) {
        return TX_IO_ERROR;
    }

    devlist d;
    TRY(ex_get_dev(e, b->device_ref.data, &d));
    if (d.n >= MN_DEVICE_LIVE_MAX) {
        /* Expired credentials no longer need a place on the phone. */
        devlist keep = {0};
        for (size_t i = 0; i < d.n; i++) {
            rec x;
            TRY(ex_get_rec(e, d.ids[i], &x));
            if (!is_final(x.status) && !expired_at(x.expires_at, e->time_ms))
                memcpy(keep.ids[keep.n++], d.ids[i], MN_ID_LEN);
        }
        d = keep;
        if (d.n >= MN_DEVICE_LIVE_MAX)
            return refuse(msg, ml, TX_TOO_LARGE, "device already holds %d live credentials",
                          MN_DEVICE_LIVE_MAX);
    }
    /* A phone its carrier reported lost stays locked: a credential issued
     * onto it starts loss-suspended until that carrier's recovery report. */
    bool lost = false;
    for (size_t i = 0; i < d.n && !lost; i++) {
        rec x;
        TRY(ex_get_rec(e, d.ids[i], &x));
        lost = x.loss && !is_final(x.status) && strcmp(x.carrier, b->carrier) == 0;
    }
    memcpy(d.ids[d.n++], b->credential_id.data, MN_ID_LEN);
    TRY(ex_put_dev(e, b->device_ref.data, &d));

    memset(&r, 0, sizeof r);
    memcpy(r.id, b->credential_id.data, MN_ID_LEN);
    r.type = (uint32_t)b->type;
    memcpy(r.holder, b->holder_ref.data, MN_ID_LEN);
    memcpy(r.device, b->device_ref.data, MN_ID_LEN);
    snprintf(r.carrier, sizeof r.carrier, "%s", b->carrier);
    snprintf(r.issuer, sizeof r.issuer, "%s", signer);
    r.not_before = b->not_before;
    r.expires_at = b->expires_at;
    r.loss = lost;
    r.status = status_of(&r);
    r.issued_height = e->height;
    memcpy(r.issued_tx, h, MN_HASH_LEN);
    touch(e, &r, h);
    TRY(ex_put_rec(e, &r));
    TRY(mn_kv_put(e->txw, hk, hkl, r.id, MN_ID_LEN));
    TRY(add_change(e, h, &r, ST_UNKNOWN, signer, "issue"));
    return TX_OK;
}

/* ISSUE_BATCH: the items in order, each seeing the ones before it (they
 * share the transaction's write set), so a duplicate id inside the batch
 * is refused and a later item may supersede an earlier one. The caller
 * drops the write set and the changes on refusal: all or nothing. */
static int exec_issue_batch(mn_exec *e, const txp *t, const uint8_t *h, char *msg, size_t ml) {
    const Midnode__IssueBatchBody *b = t->p->issue_batch;
    for (size_t i = 0; i < b->n_items; i++) {
        char why[MN_TX_MSG_MAX];
        why[0] = '\0';
        int code = exec_issue(e, t, b->items[i], h, why, sizeof why);
        if (code == TX_IO_ERROR) return code;
        if (code != TX_OK) return refuse_item(msg, ml, code, i, why);
    }
    return TX_OK;
}

/* REVOKE, SUSPEND, RESUME: by the credential's own issuer, not final. */
static int exec_issuer_op(mn_exec *e, const txp *t, const uint8_t *h, char *msg, size_t ml) {
    const Midnode__TxPayload *p = t->p;
    const char *signer = t->signer->id;
    const ProtobufCBinaryData *id = p->body_case == MIDNODE__TX_PAYLOAD__BODY_REVOKE ? &p->revoke->credential_id
                                    : p->body_case == MIDNODE__TX_PAYLOAD__BODY_SUSPEND
                                        ? &p->suspend->credential_id
                                        : &p->resume->credential_id;
    rec r;
    int rc = ex_get_rec(e, id->data, &r);
    if (rc == MN_ENOTFOUND) return refuse(msg, ml, TX_UNKNOWN_CRED, "no such credential");
    if (rc != MN_OK) return TX_IO_ERROR;
    if (strcmp(r.issuer, signer) != 0)
        return refuse(msg, ml, TX_ROLE, "credential was issued by %s, not %s", r.issuer, signer);
    if (is_final(r.status))
        return refuse(msg, ml, TX_TRANSITION, "credential is %s (final)",
                      r.status == ST_REVOKED ? "REVOKED" : "SUPERSEDED");
    int prev = r.status;
    const char *kind;
    switch (p->body_case) {
    case MIDNODE__TX_PAYLOAD__BODY_REVOKE:
        r.status = ST_REVOKED;
        snprintf(r.reason, sizeof r.reason, "%s", p->revoke->reason);
        TRY(ex_dev_remove(e, r.device, r.id));
        TRY(ex_holder_release(e, &r));
        kind = "revoke";
        break;
    case MIDNODE__TX_PAYLOAD__BODY_SUSPEND:
        if (r.issuer_susp) return refuse(msg, ml, TX_TRANSITION, "credential is already suspended by its issuer");
        r.issuer_susp = true;
        r.status = status_of(&r);
        kind = "suspend";
        break;
    default:
        if (!r.issuer_susp) return refuse(msg, ml, TX_TRANSITION, "credential is not suspended by its issuer");
        r.issuer_susp = false;
        r.status = status_of(&r);
        kind = "resume";
        break;
    }
    touch(e, &r, h);
    TRY(ex_put_rec(e, &r));
    TRY(add_change(e, h, &r, prev, signer, kind));
    return TX_OK;
}

/* REPORT_LOSS / REPORT_RECOVERY: only the signer's own subscribers. */
static int exec_carrier_op(mn_exec *e, const txp *t, const uint8_t *h, char *msg, size_t ml) {
    bool loss = t->p->body_case == MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS;
    const uint8_t *device = loss ? t->p->report_loss->device_ref.data : t->p->report_recovery->device_ref.data;
    const char *signer = t->signer->id;
    devlist d;
    TRY(ex_get_dev(e, device, &d));
    size_t mine = 0, changed = 0;
    for (size_t i = 0; i < d.n; i++) {
        rec r;
        TRY(ex_get_rec(e, d.ids[i], &r));
        if (strcmp(r.carrier, signer) != 0 || is_final(r.status)) continue;
        mine++;
        if (r.loss == loss) continue;
        int prev = r.status;
        r.loss = loss;
        r.status = status_of(&r);
        touch(e, &r, h);
        TRY(ex_put_rec(e, &r));
        TRY(add_change(e, h, &r, prev, signer, loss ? "report_loss" : "report_recovery"));
        changed++;
    }
    if (mine == 0)
        return refuse(msg, ml, TX_NOT_YOURS, "device has no live credential of %s's subscribers", signer);
    if (changed == 0)
        return refuse(msg, ml, TX_TRANSITION, loss ? "device is already reported lost"
                                                   : "device is not reported lost");
    return TX_OK;
}

int mn_exec_apply_tx(mn_exec *e, const uint8_t *tx, size_t len, char *msg, size_t msg_len) {
    return mn_exec_apply_tx_opts(e, tx, len, 0, msg, msg_len);
}

int mn_exec_apply_tx_opts(mn_exec *e, const uint8_t *tx, size_t len, unsigned flags, char *msg,
                          size_t msg_len) {
    if (msg && msg_len) msg[0] = '\0';
    uint32_t index = e->tx_count++;
    if (e->finished || e->failed) {
        memset(&e->last, 0, sizeof e->last);
        return refuse(msg, msg_len, TX_MALFORMED, "block execution already finished or failed");
    }
    txp t;
    int code = decode_tx(e->l->g, tx, len, !(flags & MN_EXEC_SIG_CHECKED), &e->last, &t, msg, msg_len);
    size_t changes_before = e->n_changes;
    mn_kv_clear(e->txw);
    if (code == TX_OK) {
        uint8_t nk[MN_STORE_KEY_MAX];
        size_t nkl = mn_store_key_nonce(nk, t.signer->id);
        uint64_t last = 0;
        uint8_t *buf = NULL;
        size_t blen = 0;
        int rc = ex_read(e, nk, nkl, &buf, &blen);
        if (rc == MN_OK && blen == 8)
            last = mn_get_u64be(buf);
        else if (rc != MN_ENOTFOUND)
            code = TX_IO_ERROR;
        free(buf);
        if (code == TX_OK && t.p->nonce != last + 1)
            code = refuse(msg, msg_len, TX_NONCE, "nonce %llu, expected %llu",
                          (unsigned long long)t.p->nonce, (unsigned long long)(last + 1));
        if (code == TX_OK) {
            const uint8_t *h = e->last.hash;
            switch (t.p->body_case) {
            case MIDNODE__TX_PAYLOAD__BODY_ISSUE: code = exec_issue(e, &t, t.p->issue, h, msg, msg_len); break;
            case MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH: code = exec_issue_batch(e, &t, h, msg, msg_len); break;
            case MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS:
            case MIDNODE__TX_PAYLOAD__BODY_REPORT_RECOVERY: code = exec_carrier_op(e, &t, h, msg, msg_len); break;
            default: code = exec_issuer_op(e, &t, h, msg, msg_len); break;
            }
        }
        if (code == TX_OK) {
            uint8_t v[8], tk[MN_STORE_KEY_MAX], loc[MN_STORE_TX_LOC_MAX];
            mn_put_u64be(v, t.p->nonce);
            size_t tkl = mn_store_key_tx(tk, e->last.hash);
            size_t ll = mn_store_tx_location(loc, e->height, index);
            if (mn_kv_put(e->txw, nk, nkl, v, 8) != MN_OK || mn_kv_put(e->txw, tk, tkl, loc, ll) != MN_OK ||
                mn_kv_merge(e->ov, e->txw) != MN_OK)
                code = TX_IO_ERROR;
        }
    }
    txp_free(&t);
    mn_kv_clear(e->txw);
    if (code == TX_IO_ERROR) {
        e->failed = true;
        code = refuse(msg, msg_len, TX_MALFORMED, "store error");
    }
    if (code != TX_OK) {
        e->n_changes = changes_before;
        return code;
    }
    e->ok_count++;
    return TX_OK;
}

static void rec_cache_follow(mn_ledger *l, const mn_kvmap *ov, const uint8_t old_root[static MN_HASH_LEN],
                             const uint8_t new_root[static MN_HASH_LEN]);
static struct rec_cache *rec_cache_at(mn_ledger *l, const uint8_t root[static MN_HASH_LEN]);
static bool cached_value_hash(struct rec_cache *rc, const uint8_t id[static MN_ID_LEN], uint8_t out[static MN_HASH_LEN]);

int mn_exec_finish(mn_exec *e, uint8_t state_root[static MN_HASH_LEN]) {
    if (e->failed) return MN_ESTATE;
    if (e->finished) {
        memcpy(state_root, e->root, MN_HASH_LEN);
        return MN_OK;
    }
    size_t n = mn_kv_count(e->ov), m = 0;
    mn_smt_item *items = malloc((n ? n : 1) * sizeof *items);
    if (!items) return MN_ENOMEM;
    struct rec_cache *rc_base = rec_cache_at(e->l, e->base_root);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        mn_kv_entry(e->ov, i, &k, &kl, &v, &vl);
        if (!v) continue; /* records and nonces are never deleted */
        items[m].implicit = false;
        items[m].has_old = false;
        if (k[0] == 'r' && kl == 1 + MN_ID_LEN) {
            mn_smt_key_credential(items[m].key_hash, k + 1);
            items[m].implicit = true; /* the store finds the record by key_hash */
            /* The record's leaf as it is, from memory: the tree update then
             * need not seek the store for it. */
            items[m].has_old = rc_base && cached_value_hash(rc_base, k + 1, items[m].old_value_hash);
        } else if (k[0] == 'n' && kl >= 2 && kl <= 1 + MN_MEMBER_ID_MAX) {
            char signer[MN_MEMBER_ID_MAX + 1];
            memcpy(signer, k + 1, kl - 1);
            signer[kl - 1] = '\0';
            mn_smt_key_nonce(items[m].key_hash, signer);
        } else {
            continue;
        }
        sha(items[m].value_hash, v, vl);
        items[m].remove = false;
        m++;
    }
    e->new_leaves = malloc((m ? m : 1) * sizeof *e->new_leaves);
    if (!e->new_leaves) {
        free(items);
        return MN_ENOMEM;
    }
    e->n_new_leaves = 0;
    for (size_t i = 0; i < m; i++)
        if (items[i].implicit && !items[i].has_old) memcpy(e->new_leaves[e->n_new_leaves++], items[i].key_hash, 8);
    int rc = mn_smt_update(&e->l->src, e->ov, e->base_root, items, m, e->root);
    free(items);
    if (rc != MN_OK) {
        e->failed = true;
        return rc;
    }
    e->finished = true;
    memcpy(state_root, e->root, MN_HASH_LEN);
    return MN_OK;
}

int mn_exec_commit(mn_exec *e, const uint8_t *block, size_t block_len, const uint8_t *cert,
                   size_t cert_len) {
    if (e->failed || e->committed || mn_store_height(e->l->store) + 1 != e->height) return MN_ESTATE;
    uint8_t root[MN_HASH_LEN];
    int rc = mn_exec_finish(e, root);
    if (rc != MN_OK) return rc;
    uint8_t cur[MN_HASH_LEN];
    mn_store_root(e->l->store, cur);
    if (memcmp(cur, e->base_root, MN_HASH_LEN) != 0) return MN_ESTATE;
    for (size_t i = 0; i < e->n_changes; i++) {
        const mn_status_change *c = &e->changes[i];
        Midnode__StatusChange sc = MIDNODE__STATUS_CHANGE__INIT;
        sc.height = c->height;
        sc.time_ms = c->time_ms;
        sc.tx_hash = (ProtobufCBinaryData){MN_HASH_LEN, (uint8_t *)c->tx_hash};
        sc.credential_id = (ProtobufCBinaryData){MN_ID_LEN, (uint8_t *)c->credential_id};
        sc.status = c->status;
        sc.previous = c->previous;
        sc.signer = (char *)c->signer;
        sc.kind = (char *)c->kind;
        uint8_t buf[256], k[MN_STORE_KEY_MAX];
        size_t need = midnode__status_change__get_packed_size(&sc);
        assert(need <= sizeof buf);
        size_t bl = midnode__status_change__pack(&sc, buf);
        size_t kl = mn_store_key_change(k, e->height, (uint32_t)i);
        if (mn_kv_put(e->ov, k, kl, buf, bl) != MN_OK) return MN_ENOMEM;
    }
    rc = mn_store_commit(e->l->store, e->height, block, block_len, cert, cert_len, e->ov, e->root);
    if (rc == MN_OK) {
        e->committed = true;
        tree_apply(e->l, e->ov, (const uint8_t(*)[8])e->new_leaves, e->n_new_leaves, e->root);
        rec_cache_follow(e->l, e->ov, e->base_root, e->root);
    }
    return rc;
}

/* ---------------------------------------------------------------- read cache
 *
 * GetStatus is the hot read: one LevelDB lookup (a memtable or block search
 * of a few microseconds) and an unpack per query. This cache keeps, per
 * credential id, the committed record's bytes and its stored status and
 * expiry (all the effective status needs). It is set-associative
 * (REC_WAYS slots per bucket; an id only ever lands in its own bucket, so
 * ids a client picks cannot grow it) and stamped with the state root it was
 * filled under: the record bytes are the tree's leaf values, so while the
 * root is unchanged every entry is exact. A block this ledger commits
 * writes the records it changed through to the cache (rec_cache_follow), so
 * a node that built its state by committing blocks answers from memory
 * without having been asked first; any other change of the store's root (a
 * snapshot import, another process) makes every older entry a miss at the
 * next read, by the root check alone. */

/* Entries live inline in one mapping backed by huge pages where the kernel
 * allows: a query then touches a few cache lines of one bucket and no
 * pointer, and random buckets do not miss the TLB (on a virtual machine a
 * TLB miss costs as much as the lookup). Records over REC_INLINE_MAX are
 * served from the store every time. */
#define REC_SLOT_BYTES 256
#define REC_HEADER_BYTES 16
#define REC_INLINE_MAX (REC_SLOT_BYTES - REC_HEADER_BYTES)
/* A serialised record starts with its id (field 1, 32 bytes), which is what
 * a slot is matched on; an absence keeps the same prefix with len 0. */
#define REC_ID_PREFIX 2
#define REC_ID_END (REC_ID_PREFIX + MN_ID_LEN)
/* Four ways keep about 80% of a million records written into a million
 * slots (a direct-mapped cache keeps 63%). A bucket's generations and
 * fingerprints sit together in one small array, so a lookup reads one cache
 * line of tags and then only the slot that matches. */
#define REC_WAYS 4u

struct rec_tags {
    uint32_t gen[REC_WAYS]; /* 0: empty; another than the cache's: stale */
    uint32_t fp[REC_WAYS];  /* id_hash bits above the bucket's */
};

struct rec_entry {
    uint16_t len;
    uint8_t found;
    uint8_t status; /* stored status of the record */
    uint32_t pad;
    int64_t expires_at;
    uint8_t bytes[REC_INLINE_MAX]; /* starts 0x0a 0x20 id, found or not */
};
_Static_assert(sizeof(struct rec_entry) == REC_SLOT_BYTES, "slot layout");
_Static_assert(offsetof(struct rec_entry, bytes) == REC_HEADER_BYTES, "slot header");

/* Whether a record's bytes (or an absence: NULL) can be kept in a slot. */
static bool rec_fits(const uint8_t id[static MN_ID_LEN], const uint8_t *bytes, size_t len) {
    if (!bytes) return true;
    return len >= REC_ID_END && len <= REC_INLINE_MAX && bytes[0] == 0x0a && bytes[1] == MN_ID_LEN &&
           memcmp(bytes + REC_ID_PREFIX, id, MN_ID_LEN) == 0;
}

/* Serialised Merkle proofs, same stamping; mapped on the first proof asked. */
#define PROOF_SLOT_BYTES 1024
#define PROOF_INLINE_MAX (PROOF_SLOT_BYTES - 40)
#define PROOF_SLOTS (1u << 15)

struct proof_entry {
    uint8_t id[MN_ID_LEN];
    uint32_t gen; /* 0: empty */
    uint16_t len;
    uint8_t absent; /* an absence proof */
    uint8_t pad;
    uint8_t bytes[PROOF_INLINE_MAX];
};
_Static_assert(sizeof(struct proof_entry) == PROOF_SLOT_BYTES, "proof slot layout");
#define PROOF_MAP_BYTES ((size_t)PROOF_SLOTS * PROOF_SLOT_BYTES)

struct rec_cache {
    uint8_t root[MN_HASH_LEN];
    mn_prefault *prefault; /* populating slot, or NULL */
    uint32_t gen;  /* record entries of another generation are stale */
    uint32_t pgen; /* the same for proof entries */
    uint32_t victim; /* rotates the way evicted from a full bucket */
    uint64_t misses; /* record reads that went to the store */
    size_t buckets;         /* a power of two; REC_WAYS slots each */
    struct rec_entry *slot; /* buckets * REC_WAYS, mmap'd */
    struct rec_tags *tags;  /* buckets, mmap'd */
    uint8_t *big;           /* the last record too large for a slot (owned) */
    struct proof_entry *pslot; /* PROOF_SLOTS, mmap'd; NULL until a proof is asked */
    uint8_t *pbig;             /* the last proof too large for a slot (owned) */
    /* Every id with a record under root was added to ids when ids_complete:
     * then an id the filter has never seen is answered absent without a
     * store read. Commits this ledger makes add their records; the records
     * already in the store are added by the warm-up scan (mn_ledger_warm),
     * which any other change of the root starts over. NULL: no filter. */
    mn_idfilter *ids;
    /* The same for the holder and device index entries ('h', 'd'): each
     * names a record with that holder or device, so the holders and
     * devices of every record (the warm-up scan), and the entries this
     * ledger's commits wrote, are all there can be. An issuance to a new
     * holder on a new phone then reads neither index from the store.
     * NULL: no filter (out of memory, or a record the scan could not
     * decode). */
    mn_idfilter *holders, *devices;
    bool ids_complete;
    mn_store_cursor warm; /* where the warm-up scan resumes */
    uint64_t warmed;      /* records the scan has read */
    uint64_t absent_known; /* reads the filter answered */
    uint64_t index_absent_known; /* index reads of execution the filters answered */
};

_Static_assert((MN_LEDGER_REC_CACHE_SLOTS & (MN_LEDGER_REC_CACHE_SLOTS - 1)) == 0, "slots: a power of two");
_Static_assert(MN_LEDGER_REC_CACHE_SLOTS % REC_WAYS == 0, "whole buckets");

static size_t rec_map_bytes(const struct rec_cache *rc) { return rc->buckets * REC_WAYS * REC_SLOT_BYTES; }
static size_t rec_tag_bytes(const struct rec_cache *rc) { return rc->buckets * sizeof(struct rec_tags); }

static void rec_cache_free(struct rec_cache *rc) {
    if (!rc) return;
    mn_prefault_stop(rc->prefault); /* before its pages go */
    if (rc->slot) munmap(rc->slot, rec_map_bytes(rc));
    if (rc->tags) munmap(rc->tags, rec_tag_bytes(rc));
    if (rc->pslot) munmap(rc->pslot, PROOF_MAP_BYTES);
    free(rc->big);
    free(rc->pbig);
    mn_idfilter_free(rc->ids);
    mn_idfilter_free(rc->holders);
    mn_idfilter_free(rc->devices);
    free(rc);
}

static void *map_slots(size_t bytes) {
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(m, bytes, MADV_HUGEPAGE); /* a hint: 4 KiB pages work too */
#endif
    return m;
}

static unsigned log2_of(size_t pow2) {
    unsigned k = 0;
    while (((size_t)1 << k) < pow2) k++;
    return k;
}

/* A new, empty cache of `slots` slots (a power of two, at least REC_WAYS)
 * stamped with root; NULL when out of memory. */
static struct rec_cache *rec_cache_new(const uint8_t root[static MN_HASH_LEN], size_t slots, bool prefault) {
    assert(slots >= REC_WAYS && (slots & (slots - 1)) == 0);
    struct rec_cache *rc = calloc(1, sizeof *rc);
    if (!rc) return NULL;
    rc->buckets = slots / REC_WAYS;
    rc->slot = map_slots(rec_map_bytes(rc));
    rc->tags = map_slots(rec_tag_bytes(rc));
    if (!rc->slot || !rc->tags) {
        rec_cache_free(rc);
        return NULL;
    }
    if (prefault) rc->prefault = mn_prefault_start(rc->slot, rec_map_bytes(rc));
    rc->gen = 1;
    rc->pgen = 1;
    memcpy(rc->root, root, MN_HASH_LEN);
    /* One 64-byte filter line per bucket (four ids at full load): about
     * 2e-7 false positives while the state fits the cache, and still a
     * filter at ten times that. Without the filter (out of memory) the
     * cache still works: absences go to the store. */
    unsigned lines = log2_of(rc->buckets);
    lines = lines < 10 ? 10 : lines > 26 ? 26 : lines;
    rc->ids = mn_idfilter_new(lines);
    if (rc->ids) {
        rc->holders = mn_idfilter_new(lines);
        rc->devices = mn_idfilter_new(lines);
    }
    static const uint8_t empty_root[MN_HASH_LEN];
    rc->ids_complete = rc->ids && memcmp(root, empty_root, MN_HASH_LEN) == 0; /* an empty state */
    return rc;
}

/* The root moved in a way this cache did not follow: the filter may lack
 * records, so the warm-up scan starts over (what it holds stays: extra ids
 * only cost a store read). */
static void ids_rescan(struct rec_cache *rc) {
    rc->ids_complete = false;
    mn_store_cursor_reset(&rc->warm);
}

static uint64_t id_hash(const uint8_t id[static MN_ID_LEN]) {
    uint64_t x;
    memcpy(&x, id, sizeof x);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return x;
}

/* Where id may be: its bucket's tags and first slot, and its fingerprint. */
typedef struct rec_where {
    struct rec_tags *t;
    struct rec_entry *b;
    uint32_t fp;
} rec_where;

static rec_where rec_locate(struct rec_cache *rc, const uint8_t id[static MN_ID_LEN]) {
    uint64_t h = id_hash(id);
    size_t bucket = (size_t)(h & (rc->buckets - 1));
    return (rec_where){&rc->tags[bucket], &rc->slot[bucket * REC_WAYS], (uint32_t)(h >> 32)};
}

/* id's current way in its bucket, or -1. */
static int rec_way(const struct rec_cache *rc, const rec_where *at, const uint8_t id[static MN_ID_LEN]) {
    for (unsigned w = 0; w < REC_WAYS; w++)
        if (at->t->gen[w] == rc->gen && at->t->fp[w] == at->fp && memcmp(at->b[w].bytes + REC_ID_PREFIX, id, MN_ID_LEN) == 0)
            return (int)w;
    return -1;
}

/* id's current entry, or NULL. */
static struct rec_entry *rec_find(struct rec_cache *rc, const uint8_t id[static MN_ID_LEN]) {
    rec_where at = rec_locate(rc, id);
    int w = rec_way(rc, &at, id);
    return w < 0 ? NULL : &at.b[w];
}

/* Drops id's entry, if any. */
static void rec_drop(struct rec_cache *rc, const uint8_t id[static MN_ID_LEN]) {
    rec_where at = rec_locate(rc, id);
    int w = rec_way(rc, &at, id);
    if (w >= 0) at.t->gen[w] = 0;
}

/* The way to fill for id: its own, else a free or stale one, else (when
 * evict) a current one in rotation. -1 when the bucket is full of current
 * entries and !evict. */
static int rec_place(struct rec_cache *rc, const rec_where *at, const uint8_t id[static MN_ID_LEN], bool evict) {
    int own = rec_way(rc, at, id);
    if (own >= 0) return own;
    for (unsigned w = 0; w < REC_WAYS; w++)
        if (at->t->gen[w] != rc->gen) return (int)w;
    return evict ? (int)(rc->victim++ % REC_WAYS) : -1;
}

/* Fills way w of id's bucket with id's record (r and its serialised bytes,
 * or absent when r is NULL); the bytes fit a slot. Returns the entry. */
static struct rec_entry *rec_fill(struct rec_cache *rc, const rec_where *at, int w,
                                  const uint8_t id[static MN_ID_LEN], const Midnode__CredentialRecord *r,
                                  const uint8_t *bytes, size_t len) {
    assert(rec_fits(id, r ? bytes : NULL, len) && w >= 0 && (unsigned)w < REC_WAYS);
    struct rec_entry *e = &at->b[w];
    at->t->gen[w] = rc->gen;
    at->t->fp[w] = at->fp;
    e->found = r != NULL;
    e->status = r ? (uint8_t)r->status : 0;
    e->expires_at = r ? r->expires_at : 0;
    e->len = (uint16_t)len;
    if (r) {
        memcpy(e->bytes, bytes, len);
    } else {
        e->bytes[0] = 0x0a;
        e->bytes[1] = MN_ID_LEN;
        memcpy(e->bytes + REC_ID_PREFIX, id, MN_ID_LEN);
    }
    return e;
}

/* Fills way w with the record bytes of id (they fit a slot), decoding the
 * status and expiry from them. false, leaving the way alone, when they do
 * not decode (the read path reports such a record). */
static bool rec_keep(struct rec_cache *rc, const rec_where *at, int w, const uint8_t id[static MN_ID_LEN],
                     const uint8_t *bytes, size_t len) {
    Midnode__CredentialRecord *r = midnode__credential_record__unpack(NULL, len, bytes);
    if (!r) return false;
    (void)rec_fill(rc, at, w, id, r, bytes, len);
    midnode__credential_record__free_unpacked(r, NULL);
    return true;
}

static void proofs_stale(struct rec_cache *rc) {
    if (++rc->pgen == 0) {
        if (rc->pslot) memset(rc->pslot, 0, PROOF_MAP_BYTES);
        rc->pgen = 1;
    }
}

/* Adds a holder or device index key (store.h) to its filter. */
static void index_filters_add(struct rec_cache *rc, const uint8_t *k, size_t kl) {
    if (kl == 2 + MN_ID_LEN && k[0] == 'h' && rc->holders) mn_idfilter_add(rc->holders, k + 1);
    if (kl == 1 + MN_ID_LEN && k[0] == 'd' && rc->devices) mn_idfilter_add(rc->devices, k + 1);
}

/* The cache, created on first use and re-stamped when the root moved.
 * NULL when out of memory. */
static struct rec_cache *rec_cache_sync(mn_ledger *l) {
    uint8_t root[MN_HASH_LEN];
    mn_store_root(l->store, root);
    if (!l->rc) {
        l->rc = rec_cache_new(root, l->rec_slots, l->rec_prefault);
        return l->rc;
    }
    struct rec_cache *rc = l->rc;
    if (memcmp(root, rc->root, MN_HASH_LEN) != 0) {
        memcpy(rc->root, root, MN_HASH_LEN);
        if (++rc->gen == 0) { /* wrapped: forget everything rather than trust an old stamp */
            memset(rc->tags, 0, rec_tag_bytes(rc));
            rc->gen = 1;
        }
        proofs_stale(rc);
        ids_rescan(rc);
    }
    return rc;
}

/* After this ledger committed a block that moved the root from old_root:
 * every proof is stale (each path's upper siblings changed), and the records
 * the block wrote are written through, so the cache stays exact under
 * new_root and a node that built its state by committing answers from
 * memory. A record that does not fit a slot, or does not decode, is dropped
 * instead. When the cache was stamped with another root it is left alone,
 * and the root check of the next read resets it. */
static void rec_cache_follow(mn_ledger *l, const mn_kvmap *ov, const uint8_t old_root[static MN_HASH_LEN],
                             const uint8_t new_root[static MN_HASH_LEN]) {
    if (!l->rc) l->rc = rec_cache_new(old_root, l->rec_slots, l->rec_prefault); /* out of memory: no cache, reads go to the store */
    struct rec_cache *rc = l->rc;
    if (!rc || memcmp(rc->root, old_root, MN_HASH_LEN) != 0 || memcmp(old_root, new_root, MN_HASH_LEN) == 0)
        return;
    size_t n = mn_kv_count(ov);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        size_t kl, vl;
        mn_kv_entry(ov, i, &k, &kl, &v, &vl);
        if (v) index_filters_add(rc, k, kl);
        if (kl != 1 + MN_ID_LEN || k[0] != 'r') continue;
        const uint8_t *id = k + 1;
        if (v && rc->ids) mn_idfilter_add(rc->ids, id);
        if (v && rec_fits(id, v, vl)) {
            rec_where at = rec_locate(rc, id);
            if (rec_keep(rc, &at, rec_place(rc, &at, id, true), id, v, vl)) continue;
        }
        rec_drop(rc, id);
    }
    memcpy(rc->root, new_root, MN_HASH_LEN);
    proofs_stale(rc);
}

/* The committed record of id for execution: from the read cache when it
 * holds the id, or knows it was never issued (every new issuance's
 * existence check), else from the store. Nothing is filled or counted:
 * the cache stays the status path's. MN_OK, MN_ENOTFOUND, or an error. */
static int committed_rec(mn_ledger *l, const uint8_t id[static MN_ID_LEN], rec *r) {
    struct rec_cache *rc = rec_cache_sync(l);
    if (rc) {
        const struct rec_entry *e = rec_find(rc, id);
        if (e) return e->found ? rec_unpack(r, e->bytes, e->len) : MN_ENOTFOUND;
        if (rc->ids_complete && !mn_idfilter_may_hold(rc->ids, id)) return MN_ENOTFOUND;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int st = mn_store_get_record(l->store, id, &buf, &len);
    if (st != MN_OK) return st;
    st = rec_unpack(r, buf, len);
    free(buf);
    return st;
}

/* The read cache when it holds the records under root, else NULL. */
static struct rec_cache *rec_cache_at(mn_ledger *l, const uint8_t root[static MN_HASH_LEN]) {
    struct rec_cache *rc = rec_cache_sync(l);
    return rc && memcmp(rc->root, root, MN_HASH_LEN) == 0 ? rc : NULL;
}

/* The value hash of id's record when the read cache (rec_cache_at) holds it
 * (a block's records were mostly just read through it); false otherwise. */
static bool cached_value_hash(struct rec_cache *rc, const uint8_t id[static MN_ID_LEN], uint8_t out[static MN_HASH_LEN]) {
    const struct rec_entry *e = rec_find(rc, id);
    if (!e || !e->found) return false;
    sha(out, e->bytes, e->len);
    return true;
}

/* Whether the committed state surely has no holder or device index entry
 * under key (see holders, devices): then execution need not read it. */
static bool index_surely_absent(mn_ledger *l, const uint8_t *key, size_t kl) {
    struct rec_cache *rc = rec_cache_sync(l);
    if (!rc || !rc->ids_complete) return false;
    bool absent = false;
    if (kl == 2 + MN_ID_LEN && key[0] == 'h' && rc->holders) absent = !mn_idfilter_may_hold(rc->holders, key + 1);
    if (kl == 1 + MN_ID_LEN && key[0] == 'd' && rc->devices) absent = !mn_idfilter_may_hold(rc->devices, key + 1);
    if (absent) rc->index_absent_known++;
    return absent;
}

int mn_ledger_set_read_cache_bytes(mn_ledger *l, uint64_t bytes) {
    if (l->rc) return MN_ESTATE;
    uint64_t slots = bytes / REC_SLOT_BYTES;
    if (slots < MN_LEDGER_REC_CACHE_SLOTS_MIN || slots > MN_LEDGER_REC_CACHE_SLOTS_MAX) return MN_EINVAL;
    size_t pow2 = MN_LEDGER_REC_CACHE_SLOTS_MIN;
    while (pow2 * 2 <= slots) pow2 *= 2;
    l->rec_slots = pow2;
    return MN_OK;
}

size_t mn_ledger_read_cache_slots(const mn_ledger *l) { return l->rec_slots; }

void mn_ledger_prefault_read_cache(mn_ledger *l) { l->rec_prefault = true; }

void mn_ledger_prefetch_record(const mn_ledger *l, const uint8_t id[static MN_ID_LEN], int stage) {
    if (!l->rc) return;
    rec_where at = rec_locate(l->rc, id);
    if (stage == 0) {
        __builtin_prefetch(at.t, 0, 1);
        return;
    }
    /* The tags asked for in stage 0 name the one way worth loading (a
     * fingerprint match); its record spans the slot's first lines. */
    for (unsigned w = 0; w < REC_WAYS; w++)
        if (at.t->gen[w] == l->rc->gen && at.t->fp[w] == at.fp) {
            const char *slot = (const char *)&at.b[w];
            for (unsigned off = 0; off < REC_SLOT_BYTES; off += 64) __builtin_prefetch(slot + off, 0, 1);
            return;
        }
}

/* One record of the warm-up scan, read under the cache's root: into the
 * filter, and into a free way of its bucket (the scan never evicts what
 * queries or commits put there). */
static int warm_one(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *v, size_t vl) {
    struct rec_cache *rc = ctx;
    assert(key_len == 1 + MN_ID_LEN);
    (void)key_len;
    const uint8_t *id = key + 1;
    rc->warmed++;
    if (rc->ids) mn_idfilter_add(rc->ids, id);
    if (rc->holders || rc->devices) {
        rec r;
        if (rec_unpack(&r, v, vl) == MN_OK) {
            if (rc->holders) mn_idfilter_add(rc->holders, r.holder);
            if (rc->devices) mn_idfilter_add(rc->devices, r.device);
        } else { /* its index entries are unknown: the filters cannot say "absent" */
            mn_idfilter_free(rc->holders);
            mn_idfilter_free(rc->devices);
            rc->holders = rc->devices = NULL;
        }
    }
    rec_where at = rec_locate(rc, id);
    if (!rec_fits(id, v, vl) || rec_way(rc, &at, id) >= 0) return 0; /* already there: exact */
    int w = rec_place(rc, &at, id, false);
    if (w >= 0) (void)rec_keep(rc, &at, w, id, v, vl);
    return 0;
}

int mn_ledger_warm(mn_ledger *l, size_t max) {
    struct rec_cache *rc = rec_cache_sync(l);
    if (!rc) return MN_ENOMEM;
    if (rc->ids_complete || !rc->ids) return 0;
    bool done = false;
    int st = mn_store_scan_records(l->store, &rc->warm, max, warm_one, rc, &done);
    if (st != MN_OK) return st;
    if (done) rc->ids_complete = true;
    return done ? 0 : 1;
}

void mn_ledger_read_cache_stats(const mn_ledger *l, mn_read_cache_stats *out) {
    memset(out, 0, sizeof *out);
    if (!l->rc) return;
    out->store_reads = l->rc->misses;
    out->absent_known = l->rc->absent_known;
    out->index_absent_known = l->rc->index_absent_known;
    out->warmed = l->rc->warmed;
    out->ids_complete = l->rc->ids_complete;
    out->warm_pending = l->rc->ids && !l->rc->ids_complete;
}

int mn_ledger_get_record_cached(mn_ledger *l, const uint8_t id[static MN_ID_LEN], int64_t time_ms,
                                const uint8_t **bytes, size_t *len, Midnode__CredentialStatus *status) {
    *bytes = NULL;
    *len = 0;
    *status = MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN;
    struct rec_cache *rc = rec_cache_sync(l);
    if (!rc) return MN_ENOMEM;
    rec_where at = rec_locate(rc, id);
    int w = rec_way(rc, &at, id);
    struct rec_entry *e = w < 0 ? NULL : &at.b[w];
    if (!e && rc->ids_complete && !mn_idfilter_may_hold(rc->ids, id)) {
        rc->absent_known++; /* never issued: no store read */
        return MN_ENOTFOUND;
    }
    if (!e) {
        rc->misses++;
        uint8_t *buf = NULL;
        size_t blen = 0;
        int src = mn_store_get_record(l->store, id, &buf, &blen);
        if (src != MN_OK && src != MN_ENOTFOUND) return src;
        Midnode__CredentialRecord *r = NULL;
        if (src == MN_OK) {
            r = midnode__credential_record__unpack(NULL, blen, buf);
            if (!r) {
                free(buf);
                return MN_ECORRUPT;
            }
        }
        /* Never-issued ids (mistyped, probing) only take a free slot: they
         * do not evict a record. */
        w = rec_fits(id, buf, blen) ? rec_place(rc, &at, id, r != NULL) : -1;
        if (w < 0) { /* not kept: answer from the copy just read */
            Midnode__CredentialStatus st = mn_ledger_effective_status(r, time_ms);
            if (r) midnode__credential_record__free_unpacked(r, NULL);
            free(rc->big);
            rc->big = buf; /* kept until the next uncached read, so the borrow holds */
            *bytes = buf;
            *len = blen;
            *status = st;
            return r ? MN_OK : MN_ENOTFOUND;
        }
        e = rec_fill(rc, &at, w, id, r, buf, blen);
        if (r) midnode__credential_record__free_unpacked(r, NULL);
        free(buf);
    }
    if (!e->found) return MN_ENOTFOUND;
    Midnode__CredentialRecord tmp = MIDNODE__CREDENTIAL_RECORD__INIT;
    tmp.status = (Midnode__CredentialStatus)e->status;
    tmp.expires_at = e->expires_at;
    *bytes = e->bytes;
    *len = e->len;
    *status = mn_ledger_effective_status(&tmp, time_ms);
    return MN_OK;
}

int mn_ledger_prove_cached(mn_ledger *l, const uint8_t id[static MN_ID_LEN], const uint8_t **merkle,
                           size_t *merkle_len) {
    *merkle = NULL;
    *merkle_len = 0;
    struct rec_cache *rc = rec_cache_sync(l);
    if (!rc) return MN_ENOMEM;
    if (!rc->pslot) {
        rc->pslot = map_slots(PROOF_MAP_BYTES);
        if (!rc->pslot) return MN_ENOMEM;
    }
    struct proof_entry *e = &rc->pslot[id_hash(id) & (PROOF_SLOTS - 1)];
    if (e->gen == rc->pgen && memcmp(e->id, id, MN_ID_LEN) == 0) {
        *merkle = e->bytes;
        *merkle_len = e->len;
        return MN_OK;
    }
    Midnode__MerkleProof mp;
    midnode__merkle_proof__init(&mp);
    bool absent;
    int rc2;
    const struct rec_entry *re = rec_find(rc, id);
    if (re) { /* the record (or its absence) under this root, without a store read */
        absent = !re->found;
        rc2 = prove_pair(l, id, re->found ? re->bytes : NULL, re->len, &mp);
    } else {
        uint8_t *rbytes = NULL;
        size_t rbytes_len = 0;
        uint64_t h = 0;
        rc2 = mn_ledger_prove(l, id, &rbytes, &rbytes_len, &mp, &h);
        absent = rbytes == NULL;
        free(rbytes);
    }
    if (rc2 != MN_OK) return rc2;
    size_t n = midnode__merkle_proof__get_packed_size(&mp);
    uint8_t *dst;
    /* Absence proofs of never-issued ids do not evict a record's proof. */
    bool keep = n <= PROOF_INLINE_MAX && !(absent && e->gen == rc->pgen && !e->absent);
    if (keep) {
        dst = e->bytes;
    } else {
        dst = malloc(n);
        if (!dst) {
            mn_smt_proof_clear(&mp);
            return MN_ENOMEM;
        }
        free(rc->pbig);
        rc->pbig = dst; /* kept until the next oversized proof, so the borrow holds */
    }
    size_t packed = midnode__merkle_proof__pack(&mp, dst);
    assert(packed == n);
    (void)packed;
    mn_smt_proof_clear(&mp);
    if (dst == e->bytes) {
        memcpy(e->id, id, MN_ID_LEN);
        e->gen = rc->pgen;
        e->len = (uint16_t)n;
        e->absent = absent;
    }
    *merkle = dst;
    *merkle_len = n;
    return MN_OK;
}
