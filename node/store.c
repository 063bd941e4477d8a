/* store.c: the LevelDB-backed store (see store.h for the key layout). The
 * only file that includes leveldb/c.h. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <leveldb/c.h>

#include "crypto.h"
#include "log.h"
#include "midnode.pb-c.h"
#include "smt.h"

#define TXC_SLOTS 65536 /* 3 MB; see struct tx_cached */
/* LevelDB's table cache holds this many open tables (max_open_files). Its
 * default of 1,000 covers 2 GB of 2 MB tables, about 5 M credentials: past
 * that, random reads (status misses, the tree's implicit leaves, index
 * entries) reopen a table (its file, footer, index and filter blocks) for
 * one key. With the cache a tenth of the tables, a state of 3 M served
 * status misses 8x slower. 65,536 tables is 128 GB of state, several times
 * a 50 M-credential state (about 18 GB); an open table costs its index and
 * filter blocks, about 2% of its bytes. */
#define STORE_OPEN_TABLES 65536
#define NONCE_SLOTS 256 /* a power of two */

struct mn_store {
    leveldb_t *db;    /* state, indexes, metadata, vote log, evidence */
    leveldb_t *chain; /* blocks, certificates, status-change logs (is_chain_family) */
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts;
    leveldb_writeoptions_t *wsync;
    uint64_t height;
    uint8_t root[MN_HASH_LEN];
    uint64_t vote_seq;
    uint64_t ev_seq;
    /* Reused for implicit tree leaves (one seek each); reads the state as
     * of its creation, so every write drops it (drop_iter). */
    leveldb_iterator_t *rit;
    uint64_t leaf_seeks; /* mn_store_leaf_seeks */
    /* Bytes of key hash naming an id in index values (see "index values");
     * 0 in a store of format 5, which keeps whole ids there. */
    size_t ix_prefix;
    /* The committed tree, when the ledger keeps it (mn_store_set_tree). */
    mn_store_tree_has_fn tree_has;
    void *tree_ctx;
    /* Hashes of batch transactions read from 'X' entries (REC_IN_TX),
     * direct-mapped by height and index: the records of a batch name the
     * same few. A 50 M-credential state migrated in batches of 1,000 has
     * 50,000 of them, so a read of any record mostly finds its
     * transaction's hash here instead of reading a second key. */
    struct tx_cached {
        uint64_t height;
        uint32_t index;
        bool valid;
        uint8_t hash[MN_HASH_LEN];
    } txc[TXC_SLOTS];
    /* Committed nonces of recent signers, direct-mapped by key. Admission
     * reads the signer's nonce for every transaction, and the signers are a
     * few carriers and authorities: a LevelDB read each was most of a
     * validator's reads. Every commit writes its new values through
     * (nonce_note); an import clears it. */
    struct nonce_cached {
        bool valid;
        uint8_t key_len;
        uint8_t key[1 + MN_MEMBER_ID_MAX];
        uint64_t nonce;
    } ncache[NONCE_SLOTS];
};

/* Families keyed by height, written once per block and never rewritten:
 * kept in a LevelDB of their own (DATA_DIR/chain) so that their tables,
 * each covering a run of heights, move down its levels without being
 * merged again, where mixed with the state's randomly keyed entries every
 * compaction rewrote them. */
static bool is_chain_family(uint8_t fam) { return fam == 'B' || fam == 'C' || fam == 'W'; }

static leveldb_t *db_of(const mn_store *s, uint8_t fam) { return is_chain_family(fam) ? s->chain : s->db; }

static void drop_iter(mn_store *s) {
    if (s->rit) leveldb_iter_destroy(s->rit);
    s->rit = NULL;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static bool rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Writes v as a varint at out (at most 10 bytes); returns its length. */
static size_t put_varint(uint8_t *out, uint64_t v) {
    size_t n = 0;
    do {
        out[n] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
        n++;
    } while (v);
    return n;
}

static uint32_t get_u32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Records are stored under 'r' kh[0..8) id, kh being the tree's key
 * hash of the id (SHA256(0x01 || id)), rather than 'r' id, so that they are
 * in tree order and the one record under a subtree is found by a seek: the
 * tree's leaves of records need no entries of their own (smt.h, implicit
 * leaves). The key holds the id, so the value leaves out the record's
 * first field (0x0a 0x20 id, as rec_pack writes it); a value that does not
 * begin so is kept whole behind a 0x00 byte (never a protobuf tag).
 * Callers name records 'r' id with whole values (mn_store_key_record);
 * the getters, writers and scans map both here. */
#define REC_KH 8
#define REC_KEY_LEN (1 + REC_KH + MN_ID_LEN)

/* A record's stored key past its 'r': key-hash prefix, then id. */
typedef uint8_t rec_key[REC_KH + MN_ID_LEN];

/* The first of keys[lo..hi) (sorted) at or after prefix (plen bytes). */
static size_t rec_key_lower_bound(const rec_key *keys, size_t lo, size_t hi, const uint8_t *prefix, size_t plen) {
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(keys[mid], prefix, plen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
#define REC_WHOLE 0x00

static bool is_rec_key(const uint8_t *key, size_t kl) { return kl == 1 + MN_ID_LEN && key[0] == 'r'; }

/* The stored key of key (buf, REC_KEY_LEN long, for a record; else key
 * itself); *kl is updated. */
static const uint8_t *phys_key(const uint8_t *key, size_t *kl, uint8_t buf[static REC_KEY_LEN]) {
    if (!is_rec_key(key, *kl)) return key;
    uint8_t kh[MN_HASH_LEN];
    mn_smt_key_credential(kh, key + 1);
    buf[0] = 'r';
    memcpy(buf + 1, kh, REC_KH);
    memcpy(buf + 1 + REC_KH, key + 1, MN_ID_LEN);
    *kl = REC_KEY_LEN;
    return buf;
}

/* A record never changed since its issuance repeats its issued_height
 * and issued_tx (fields 13, 14) as updated_height and updated_tx (15, 16):
 * 37 of its ~190 bytes. Such a value is stored as REC_AS_ISSUED followed
 * by the record without its first field and without fields 15 and 16,
 * which a read puts back byte for byte after field 14. 0x01 is no protobuf
 * tag (field 0), as REC_WHOLE is not. */
#define REC_AS_ISSUED 0x01
#define TAG_TYPE 0x10          /* field 2, varint */
#define TAG_HOLDER_REF 0x1a    /* field 3, bytes */
#define TAG_DEVICE_REF 0x22    /* field 4, bytes */
#define TAG_ISSUED_HEIGHT 0x68 /* field 13, varint */
#define TAG_ISSUED_TX 0x72     /* field 14, bytes */
#define TAG_UPDATED_HEIGHT 0x78 /* field 15, varint */
static const uint8_t TAG_UPDATED_TX[2] = {0x82, 0x01}; /* field 16, bytes */

/* Where fields 13 and 14 lie in the protobuf fields b[0..n): the varint of
 * 13 at *h (*hl bytes), the 32 bytes of 14 at *tx, field 14 ending at *end.
 * False when they are not there as rec_pack writes them, or b does not
 * parse as fields of varint and length-delimited types. */
static bool find_issued(const uint8_t *b, size_t n, size_t *h, size_t *hl, size_t *tx, size_t *end) {
    bool have_h = false;
    size_t i = 0;
    while (i < n) {
        uint64_t tag = 0;
        unsigned shift = 0;
        size_t t0 = i;
        do {
            if (i >= n || shift > 28) return false;
            tag |= (uint64_t)(b[i] & 0x7f) << shift;
            shift += 7;
        } while (b[i++] & 0x80);
        size_t v0 = i;
        uint64_t len = 0;
        shift = 0;
        do {
            if (i >= n || shift > 63) return false;
            len |= (uint64_t)(b[i] & 0x7f) << shift;
            shift += 7;
        } while (b[i++] & 0x80);
        if ((tag & 7) == 0) {
            if (i - t0 == 1 + (i - v0) && b[t0] == TAG_ISSUED_HEIGHT) {
                *h = v0;
                *hl = i - v0;
                have_h = true;
            }
        } else if ((tag & 7) == 2) {
            if (len > n - i) return false;
            if (b[t0] == TAG_ISSUED_TX && v0 == t0 + 1 && len == MN_HASH_LEN) {
                *tx = i;
                *end = i + MN_HASH_LEN;
                return have_h;
            }
            i += (size_t)len;
        } else {
            return false;
        }
    }
    return false;
}

/* Bytes of fields 15 and 16 as they repeat 13 and 14. */
static size_t as_issued_len(size_t hl) { return 1 + hl + sizeof TAG_UPDATED_TX + 1 + MN_HASH_LEN; }

/* A record issued by a transaction that issued others in the same block
 * (a batch) names that transaction by its index in the block instead of
 * by its hash, which an 'X' height index entry then holds once for all of
 * them (tx_refs below): REC_IN_TX, the varint index, then the record as
 * REC_AS_ISSUED keeps it but without field 14, which a read puts back
 * after field 13 (with fields 15 and 16 after it): 33 bytes fewer per
 * record of a batch. 0x02 is no protobuf tag (field 0). */
#define REC_IN_TX 0x02

static bool is_rec_form(uint8_t b) { return b == REC_WHOLE || b == REC_AS_ISSUED || b == REC_IN_TX; }

/* The transactions of the block being committed, by hash, with how many
 * of its records each issued: a record names its transaction by index
 * when that transaction issued two or more (the 'X' entry is written for
 * those that are named so). */
typedef struct tx_ref {
    uint8_t hash[MN_HASH_LEN];
    uint32_t index;
    uint32_t refs;
    bool named; /* some record names it by index: its 'X' entry is written */
} tx_ref;
typedef struct tx_refs {
    uint64_t height;
    tx_ref *tx;
    size_t n;
} tx_refs;

static int tx_ref_cmp(const void *a, const void *b) { return memcmp(a, b, MN_HASH_LEN); }

static tx_ref *tx_ref_find(const tx_refs *t, const uint8_t hash[static MN_HASH_LEN]) {
    return t && t->n ? bsearch(hash, t->tx, t->n, sizeof *t->tx, tx_ref_cmp) : NULL;
}

/* Walks the protobuf fields b[0..n) (varint and length-delimited ones)
 * to the first with the one-byte tag `tag`: its value at *v, *vl bytes
 * long (a varint's bytes, or a length-delimited field's contents). False
 * when it is absent or b does not parse so far. */
static bool find_tag(const uint8_t *b, size_t n, uint8_t tag, size_t *v, size_t *vl) {
    const uint8_t *p = b, *end = b + n;
    while (p < end) {
        const uint8_t *t0 = p;
        uint64_t t = 0, x = 0;
        if (!rd_varint(&p, end, &t)) return false;
        const uint8_t *v0 = p;
        if (!rd_varint(&p, end, &x)) return false;
        if ((t & 7) == 2) {
            if (x > (uint64_t)(end - p)) return false;
            if (p - t0 == 1 + (p - v0) && *t0 == tag) {
                *v = (size_t)(p - b);
                *vl = (size_t)x;
                return true;
            }
            p += x;
        } else if ((t & 7) == 0) {
            if (v0 - t0 == 1 && *t0 == tag) {
                *v = (size_t)(v0 - b);
                *vl = (size_t)(p - v0);
                return true;
            }
        } else {
            return false;
        }
    }
    return false;
}

/* The protobuf fields of a stored record value past its form's header
 * (*b, *n; the whole value in the tail form), and for REC_IN_TX the
 * transaction index (*index, else untouched). False when a REC_IN_TX
 * header does not parse. */
static bool rec_body(const uint8_t *sv, size_t svl, const uint8_t **b, size_t *n, uint64_t *index) {
    const uint8_t *p = sv, *end = sv + svl;
    if (svl > 0 && (sv[0] == REC_WHOLE || sv[0] == REC_AS_ISSUED)) {
        p++;
    } else if (svl > 0 && sv[0] == REC_IN_TX) {
        p++;
        if (!rd_varint(&p, end, index)) return false;
    }
    *b = p;
    *n = (size_t)(end - p);
    return true;
}

/* The issued height and transaction index a REC_IN_TX value names; false
 * when it does not parse. */
static bool in_tx_ref(const uint8_t *sv, size_t svl, uint64_t *height, uint64_t *index) {
    const uint8_t *b;
    size_t n, h, hl;
    if (svl < 1 || sv[0] != REC_IN_TX || !rec_body(sv, svl, &b, &n, index)) return false;
    if (!find_tag(b, n, TAG_ISSUED_HEIGHT, &h, &hl)) return false;
    const uint8_t *q = b + h;
    return rd_varint(&q, b + n, height);
}

/* The stored value of record bytes v of id: a tail of v, or *tmp
 * (malloc'd, the caller frees). txs (may be NULL) are the transactions of
 * the block being committed. Returns MN_OK or MN_ENOMEM. */
static int rec_put_value(const uint8_t *id, const uint8_t *v, size_t vl, tx_refs *txs, const uint8_t **out,
                         size_t *ol, uint8_t **tmp) {
    *tmp = NULL;
    if (vl >= 2 + MN_ID_LEN && v[0] == 0x0a && v[1] == MN_ID_LEN && memcmp(v + 2, id, MN_ID_LEN) == 0 &&
        (vl == 2 + MN_ID_LEN || !is_rec_form(v[2 + MN_ID_LEN]))) {
        const uint8_t *b = v + 2 + MN_ID_LEN;
        size_t n = vl - 2 - MN_ID_LEN, h, hl, tx, end;
        if (find_issued(b, n, &h, &hl, &tx, &end) && n - end >= as_issued_len(hl) && b[end] == TAG_UPDATED_HEIGHT &&
            memcmp(b + end + 1, b + h, hl) == 0 &&
            memcmp(b + end + 1 + hl, TAG_UPDATED_TX, sizeof TAG_UPDATED_TX) == 0 &&
            b[end + 1 + hl + sizeof TAG_UPDATED_TX] == MN_HASH_LEN &&
            memcmp(b + end + 1 + hl + sizeof TAG_UPDATED_TX + 1, b + tx, MN_HASH_LEN) == 0) {
            size_t skip = as_issued_len(hl);
            tx_ref *r = tx_ref_find(txs, b + tx);
            const uint8_t *hp = b + h;
            uint64_t issued = 0;
            if (r && r->refs >= 2 && h + hl == tx - 2 && rd_varint(&hp, b + h + hl, &issued) &&
                issued == txs->height) {
                /* fields up to 13, then those after 16 */
                if (!(*tmp = malloc(1 + 5 + n - skip))) return MN_ENOMEM;
                uint8_t *o = *tmp;
                *o++ = REC_IN_TX;
                o += put_varint(o, r->index);
                memcpy(o, b, tx - 2);
                o += tx - 2;
                memcpy(o, b + end + skip, n - end - skip);
                o += n - end - skip;
                r->named = true;
                *out = *tmp;
                *ol = (size_t)(o - *tmp);
                return MN_OK;
            }
            if (!(*tmp = malloc(1 + n - skip))) return MN_ENOMEM;
            (*tmp)[0] = REC_AS_ISSUED;
            memcpy(*tmp + 1, b, end);
            memcpy(*tmp + 1 + end, b + end + skip, n - end - skip);
            *out = *tmp;
            *ol = 1 + n - skip;
            return MN_OK;
        }
        *out = b;
        *ol = n;
        return MN_OK;
    }
    if (!(*tmp = malloc(vl + 1))) return MN_ENOMEM;
    (*tmp)[0] = REC_WHOLE;
    if (vl) memcpy(*tmp + 1, v, vl);
    *out = *tmp;
    *ol = vl + 1;
    return MN_OK;
}

/* Record bytes back from a stored value sv of id: their length, and when
 * out is not NULL the bytes (out holds that length). tx_hash is the hash
 * a REC_IN_TX value's transaction has (rec_tx_hash; NULL for the other
 * forms). A REC_AS_ISSUED or REC_IN_TX value that does not parse comes
 * back without the fields it left out, which the tree's hash of it then
 * refuses. */
static size_t rec_get_value(const uint8_t *id, const uint8_t *sv, size_t svl, const uint8_t *tx_hash,
                            uint8_t *out) {
    if (svl > 0 && sv[0] == REC_WHOLE) {
        if (out) memcpy(out, sv + 1, svl - 1);
        return svl - 1;
    }
    size_t h = 0, hl = 0, tx = 0, end = 0;
    bool as_issued = svl > 0 && sv[0] == REC_AS_ISSUED, in_tx = false;
    if (as_issued) {
        sv++;
        svl--;
        as_issued = find_issued(sv, svl, &h, &hl, &tx, &end);
    } else if (svl > 0 && sv[0] == REC_IN_TX) {
        uint64_t index;
        if (rec_body(sv, svl, &sv, &svl, &index)) {
            in_tx = tx_hash && find_tag(sv, svl, TAG_ISSUED_HEIGHT, &h, &hl);
            end = h + hl; /* field 14 goes here */
        }
    }
    size_t extra = as_issued ? as_issued_len(hl) : in_tx ? 2 + MN_HASH_LEN + as_issued_len(hl) : 0;
    if (out) {
        out[0] = 0x0a;
        out[1] = MN_ID_LEN;
        memcpy(out + 2, id, MN_ID_LEN);
        uint8_t *o = out + 2 + MN_ID_LEN;
        if (!as_issued && !in_tx) {
            if (svl) memcpy(o, sv, svl);
        } else {
            const uint8_t *txh = in_tx ? tx_hash : sv + tx;
            memcpy(o, sv, end);
            o += end;
            if (in_tx) {
                *o++ = TAG_ISSUED_TX;
                *o++ = MN_HASH_LEN;
                memcpy(o, txh, MN_HASH_LEN);
                o += MN_HASH_LEN;
            }
            *o++ = TAG_UPDATED_HEIGHT;
            memcpy(o, sv + h, hl);
            o += hl;
            memcpy(o, TAG_UPDATED_TX, sizeof TAG_UPDATED_TX);
            o += sizeof TAG_UPDATED_TX;
            *o++ = MN_HASH_LEN;
            memcpy(o, txh, MN_HASH_LEN);
            o += MN_HASH_LEN;
            memcpy(o, sv + end, svl - end);
        }
    }
    return 2 + MN_ID_LEN + svl + extra;
}

static const char K_HEIGHT[] = "Mheight";
static const char K_ROOT[] = "Mroot";
/* Layout version: 2 since records are keyed by key_hash and their tree
 * leaves are implicit, 3 since no tree node is stored, 4 since blocks,
 * certificates and status-change logs are in DATA_DIR/chain, 5 since
 * records never changed leave out their repeated fields (REC_AS_ISSUED),
 * 6 since index values name ids by key-hash prefix (its value is then
 * 6 and the prefix's length) and records of a batch their transaction by
 * index (REC_IN_TX). A store of another version is refused, not
 * misread; a store of version 4 is relabelled 5 (every value it holds
 * reads the same), and one of version 5 stays 5, keeping whole ids in
 * its index values and its records' transaction hashes. */
static const char K_FORMAT[] = "Mformat";
#define STORE_FORMAT 6
#define STORE_FORMAT_WHOLE_IDS 5
#define STORE_FORMAT_UPGRADABLE 4
#define IX_PREFIX_DEFAULT REC_KH


size_t mn_store_key_record(uint8_t *out, const uint8_t id[static MN_ID_LEN]) {
    out[0] = 'r';
    memcpy(out + 1, id, MN_ID_LEN);
    return 1 + MN_ID_LEN;
}

size_t mn_store_key_nonce(uint8_t *out, const char *signer) {
    size_t n = strnlen(signer, MN_MEMBER_ID_MAX);
    out[0] = 'n';
    memcpy(out + 1, signer, n);
    return 1 + n;
}

size_t mn_store_key_device(uint8_t *out, const uint8_t device_ref[static MN_ID_LEN]) {
    out[0] = 'd';
    memcpy(out + 1, device_ref, MN_ID_LEN);
    return 1 + MN_ID_LEN;
}

size_t mn_store_key_holder(uint8_t *out, const uint8_t holder_ref[static MN_ID_LEN], uint32_t type) {
    out[0] = 'h';
    memcpy(out + 1, holder_ref, MN_ID_LEN);
    out[1 + MN_ID_LEN] = (uint8_t)type;
    return 2 + MN_ID_LEN;
}

size_t mn_store_key_tx(uint8_t *out, const uint8_t tx_hash[static MN_HASH_LEN]) {
    out[0] = 'T';
    memcpy(out + 1, tx_hash, MN_HASH_LEN);
    return 1 + MN_HASH_LEN;
}

size_t mn_store_key_change(uint8_t *out, uint64_t height, uint32_t seq) {
    out[0] = 'W';
    mn_put_u64be(out + 1, height);
    put_u32(out + 9, seq);
    return 13;
}

static size_t key_height(uint8_t *out, char fam, uint64_t h) {
    out[0] = (uint8_t)fam;
    mn_put_u64be(out + 1, h);
    return 9;
}

/* Destroys an iterator after a scan: MN_OK, or MN_EIO (logged) when the
 * scan stopped on a read error rather than at its end. */
static int iter_close(leveldb_iterator_t *it) {
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    if (!err) return MN_OK;
    LOG_ERROR("store_iter_failed", "err=%s", err);
    leveldb_free(err);
    return MN_EIO;
}

/* The stored value of a stored key (leveldb_free it). MN_OK, MN_ENOTFOUND, MN_EIO. */
static int raw_get(mn_store *s, const uint8_t *key, size_t kl, char **v, size_t *vl) {
    char *err = NULL;
    *v = kl ? leveldb_get(db_of(s, key[0]), s->ropts, (const char *)key, kl, vl, &err) : NULL;
    if (err) {
        LOG_ERROR("store_get_failed", "err=%s", err);
        leveldb_free(err);
        return MN_EIO;
    }
    return *v ? MN_OK : MN_ENOTFOUND;
}

/* ---- 'X' height u32 index: the hash of that transaction of that block,
 * written for the batch transactions records name by index (REC_IN_TX). */
static size_t key_tx_at(uint8_t *out, uint64_t height, uint32_t index) {
    out[0] = 'X';
    mn_put_u64be(out + 1, height);
    put_u32(out + 9, index);
    return 13;
}

/* The hash of transaction index of block height. MN_OK, MN_ECORRUPT (no
 * such entry), MN_EIO. */
static int tx_hash_at(mn_store *s, uint64_t height, uint64_t index, uint8_t out[static MN_HASH_LEN]) {
    if (index > UINT32_MAX) return MN_ECORRUPT;
    struct tx_cached *c = &s->txc[(height * 2654435761u + index) % TXC_SLOTS];
    if (c->valid && c->height == height && c->index == index) {
        memcpy(out, c->hash, MN_HASH_LEN);
        return MN_OK;
    }
    uint8_t k[16];
    size_t kl = key_tx_at(k, height, (uint32_t)index);
    char *v = NULL;
    size_t vl = 0;
    int rc = raw_get(s, k, kl, &v, &vl);
    if (rc == MN_ENOTFOUND || (rc == MN_OK && vl != MN_HASH_LEN)) {
        LOG_ERROR("store_tx_hash_missing", "height=%llu index=%llu", (unsigned long long)height,
                  (unsigned long long)index);
        rc = MN_ECORRUPT;
    }
    if (rc == MN_OK) {
        memcpy(out, v, MN_HASH_LEN);
        c->height = height;
        c->index = (uint32_t)index;
        memcpy(c->hash, v, MN_HASH_LEN);
        c->valid = true;
    }
    leveldb_free(v);
    return rc;
}

/* *txh: NULL, or for a REC_IN_TX value the hash of its transaction (in
 * buf), for rec_get_value. MN_OK, MN_ECORRUPT, MN_EIO. */
static int rec_tx_hash(mn_store *s, const uint8_t *sv, size_t svl, uint8_t buf[static MN_HASH_LEN],
                       const uint8_t **txh) {
    *txh = NULL;
    if (svl == 0 || sv[0] != REC_IN_TX) return MN_OK;
    uint64_t height, index;
    if (!in_tx_ref(sv, svl, &height, &index)) return MN_ECORRUPT;
    int rc = tx_hash_at(s, height, index, buf);
    if (rc == MN_OK) *txh = buf;
    return rc;
}

/* SHA-256 of the record bytes of a stored value. MN_OK, MN_ENOMEM,
 * MN_ECORRUPT, MN_EIO. */
static int rec_hash(mn_store *s, uint8_t out[static MN_HASH_LEN], const uint8_t *id, const uint8_t *sv, size_t svl) {
    uint8_t small[1024], txb[MN_HASH_LEN];
    const uint8_t *txh;
    int rc = rec_tx_hash(s, sv, svl, txb, &txh);
    if (rc != MN_OK) return rc;
    size_t n = rec_get_value(id, sv, svl, txh, NULL);
    uint8_t *buf = n <= sizeof small ? small : malloc(n);
    if (!buf) return MN_ENOMEM;
    rec_get_value(id, sv, svl, txh, buf);
    mn_sha256_ctx c; /* the incremental interface: no digest lookup per call */
    mn_sha256_init(&c);
    mn_sha256_update(&c, buf, n);
    mn_sha256_final(&c, out);
    if (buf != small) free(buf);
    return MN_OK;
}

/* ---------------------------------------------------------------- index values
 *
 * A holder entry ('h' holder type) names one credential id and a device
 * entry ('d' device) a list of them. In a store of format 6 an id in
 * these values is written as the first ix_prefix bytes (8 unless a test
 * set fewer) of its key hash, the prefix its record is stored under, and
 * read back as the one record under that prefix whose holder and type
 * (for 'h') or device (for 'd') are the entry's: 24 bytes instead of 32
 * per id. That record is unique because an id is shortened only when no
 * other record (stored, or in the same write) shares its prefix: a record
 * written later under the same prefix either has another holder, type or
 * device, which a read tells apart, or is an issuance onto the same
 * holder and type or device, which rewrites that entry (and checks the
 * ids again). Holder, type and device of a record never change.
 * Encoding: 'h' is the prefix, or the 32-byte id when not unique; 'd' is
 * u8 f, f u8 positions (ascending) of the ids kept whole, then the ids in
 * order, each a prefix or, at those positions, 32 bytes. A read that
 * finds no such record, or more than one, is MN_ECORRUPT. A store of
 * format 5 keeps whole ids (ix_prefix 0). */
#define IX_LIST_MAX 255

static bool is_holder_key(const uint8_t *k, size_t kl) { return kl == 2 + MN_ID_LEN && k[0] == 'h'; }
static bool is_device_key(const uint8_t *k, size_t kl) { return kl == 1 + MN_ID_LEN && k[0] == 'd'; }

/* Type, holder and device of a stored record value (NULL when absent;
 * type 0 when absent, as protobuf leaves it out). False when the value
 * does not parse. */
typedef struct rec_ident {
    uint64_t type;
    const uint8_t *holder, *device;
} rec_ident;

static bool rec_ident_of(const uint8_t *sv, size_t svl, rec_ident *o) {
    memset(o, 0, sizeof *o);
    const uint8_t *b;
    size_t n, v, vl;
    uint64_t index;
    if (!rec_body(sv, svl, &b, &n, &index)) return false;
    if (find_tag(b, n, TAG_TYPE, &v, &vl)) {
        const uint8_t *q = b + v;
        if (!rd_varint(&q, b + n, &o->type)) return false;
    }
    if (find_tag(b, n, TAG_HOLDER_REF, &v, &vl) && vl == MN_ID_LEN) o->holder = b + v;
    if (find_tag(b, n, TAG_DEVICE_REF, &v, &vl) && vl == MN_ID_LEN) o->device = b + v;
    return true;
}

static bool ident_matches(const rec_ident *r, const uint8_t *key, size_t kl) {
    if (is_holder_key(key, kl))
        return r->holder && memcmp(r->holder, key + 1, MN_ID_LEN) == 0 && r->type == key[1 + MN_ID_LEN];
    return r->device && memcmp(r->device, key + 1, MN_ID_LEN) == 0;
}

/* Seeks s->rit to the first record under 'r' prefix (plen bytes of key
 * hash); the caller walks on while iter_under says so. */
static void seek_prefix(mn_store *s, const uint8_t *prefix, size_t plen) {
    uint8_t start[1 + REC_KH];
    start[0] = 'r';
    memcpy(start + 1, prefix, plen);
    if (!s->rit) s->rit = leveldb_create_iterator(s->db, s->ropts);
    leveldb_iter_seek(s->rit, (const char *)start, 1 + plen);
}

/* The record key at s->rit when it lies under prefix, else NULL. */
static const uint8_t *iter_under(mn_store *s, const uint8_t *prefix, size_t plen) {
    if (!leveldb_iter_valid(s->rit)) return NULL;
    size_t kl = 0;
    const uint8_t *k = (const uint8_t *)leveldb_iter_key(s->rit, &kl);
    if (kl != REC_KEY_LEN || k[0] != 'r' || memcmp(k + 1, prefix, plen) != 0) return NULL;
    return k;
}

static int iter_status(mn_store *s) {
    char *err = NULL;
    leveldb_iter_get_error(s->rit, &err);
    if (!err) return MN_OK;
    LOG_ERROR("store_iter_failed", "err=%s", err);
    leveldb_free(err);
    drop_iter(s);
    return MN_EIO;
}

/* The id an index entry's prefix names (see above). MN_OK, MN_ECORRUPT, MN_EIO. */
static int ix_resolve(mn_store *s, const uint8_t *key, size_t kl, const uint8_t *prefix, uint8_t id[static MN_ID_LEN]) {
    size_t plen = s->ix_prefix, found = 0;
    const uint8_t *k;
    for (seek_prefix(s, prefix, plen); (k = iter_under(s, prefix, plen)) != NULL; leveldb_iter_next(s->rit)) {
        size_t vl = 0;
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(s->rit, &vl);
        rec_ident r;
        if (!rec_ident_of(v, vl, &r) || !ident_matches(&r, key, kl)) continue;
        if (found++) break;
        memcpy(id, k + 1 + REC_KH, MN_ID_LEN);
    }
    int rc = iter_status(s);
    if (rc != MN_OK) return rc;
    if (found != 1) {
        LOG_ERROR("store_index_unresolved", "family=%c records=%zu", key[0], found);
        return MN_ECORRUPT;
    }
    return MN_OK;
}

/* The ids of a stored index value, as callers see them (32 bytes each),
 * into *out (malloc'd, the caller frees). MN_OK, MN_ECORRUPT, MN_ENOMEM, MN_EIO. */
typedef struct rec_keys rec_keys;
static const uint8_t *rec_keys_only(const rec_keys *rk, const uint8_t *prefix, size_t plen);

static int ix_decode(mn_store *s, const rec_keys *rk, const uint8_t *key, size_t kl, const uint8_t *sv, size_t svl,
                     uint8_t **out, size_t *out_len) {
    size_t plen = s->ix_prefix, n, f = 0;
    const uint8_t *pos = NULL, *p;
    if (is_holder_key(key, kl)) {
        if (svl != MN_ID_LEN && svl != plen) return MN_ECORRUPT;
        n = 1;
        p = sv;
        static const uint8_t first = 0;
        if (svl == MN_ID_LEN) {
            pos = &first;
            f = 1;
        }
    } else {
        if (svl < 1 || (f = sv[0]) > svl - 1) return MN_ECORRUPT;
        pos = sv + 1;
        p = sv + 1 + f;
        size_t rest = svl - 1 - f;
        if (rest < f * MN_ID_LEN || (rest - f * MN_ID_LEN) % plen != 0) return MN_ECORRUPT;
        n = f + (rest - f * MN_ID_LEN) / plen;
        if (n == 0 || n > IX_LIST_MAX) return MN_ECORRUPT;
        for (size_t i = 0; i < f; i++)
            if (pos[i] >= n || (i > 0 && pos[i] <= pos[i - 1])) return MN_ECORRUPT;
    }
    uint8_t *ids = malloc(n * MN_ID_LEN);
    if (!ids) return MN_ENOMEM;
    int rc = MN_OK;
    for (size_t i = 0, w = 0; i < n && rc == MN_OK; i++) {
        bool whole = w < f && pos[w] == i;
        if (whole) {
            memcpy(ids + i * MN_ID_LEN, p, MN_ID_LEN);
            p += MN_ID_LEN;
            w++;
        } else {
            const uint8_t *only = rk ? rec_keys_only(rk, p, plen) : NULL;
            if (only)
                memcpy(ids + i * MN_ID_LEN, only, MN_ID_LEN);
            else
                rc = ix_resolve(s, key, kl, p, ids + i * MN_ID_LEN);
            p += plen;
        }
    }
    if (rc != MN_OK) {
        free(ids);
        return rc;
    }
    *out = ids;
    *out_len = n * MN_ID_LEN;
    return MN_OK;
}

/* What ix_unique asks of one write: its tree nodes, when it carries them
 * and the store knows the committed tree (a node at depth 8 x prefix on a
 * key's path is there exactly when two keys share that prefix: smt.h);
 * else its records, by key-hash prefix, beside a seek in the store. */
typedef struct ix_write {
    bool whole;              /* keep every id whole (a snapshot's import) */
    bool tree;               /* changes carry tree nodes and the store knows the tree */
    const mn_kvmap *changes; /* the write */
    rec_key *recs;           /* its records, sorted, once a seek needs them */
    size_t n;
    bool recs_made;
} ix_write;

static int rec_key_cmp(const void *a, const void *b) { return memcmp(a, b, sizeof(rec_key)); }

static void ix_write_init(mn_store *s, ix_write *w, const mn_kvmap *changes) {
    memset(w, 0, sizeof *w);
    w->changes = changes;
    size_t total = mn_kv_count(changes);
    for (size_t i = 0; s->ix_prefix && s->tree_has && i < total && !w->tree; i++) {
        const uint8_t *key, *val;
        size_t kl, vl;
        mn_kv_entry(changes, i, &key, &kl, &val, &vl);
        w->tree = kl > 0 && key[0] == MN_SMT_PREFIX;
    }
}

/* The write's records as stored keys, sorted (once). MN_OK or MN_ENOMEM. */
static int ix_write_recs(ix_write *w) {
    if (w->recs_made) return MN_OK;
    size_t total = mn_kv_count(w->changes), n = 0;
    for (size_t i = 0; i < total; i++) {
        const uint8_t *key, *val;
        size_t kl, vl;
        mn_kv_entry(w->changes, i, &key, &kl, &val, &vl);
        n += is_rec_key(key, kl);
    }
    if (n && !(w->recs = malloc(n * sizeof *w->recs))) return MN_ENOMEM;
    for (size_t i = 0; i < total; i++) {
        const uint8_t *key, *val;
        size_t kl, vl;
        mn_kv_entry(w->changes, i, &key, &kl, &val, &vl);
        if (!is_rec_key(key, kl)) continue;
        uint8_t kh[MN_HASH_LEN];
        mn_smt_key_credential(kh, key + 1);
        memcpy(w->recs[w->n], kh, REC_KH);
        memcpy(w->recs[w->n] + REC_KH, key + 1, MN_ID_LEN);
        w->n++;
    }
    if (w->n) qsort(w->recs, w->n, sizeof *w->recs, rec_key_cmp);
    w->recs_made = true;
    return MN_OK;
}

static void ix_write_free(ix_write *w) { free(w->recs); }

/* Whether id may be written as its prefix: no other record shares it,
 * in the write or in the store. MN_OK or MN_EIO. */
static int ix_unique(mn_store *s, ix_write *w, const uint8_t id[static MN_ID_LEN], uint8_t kh[static MN_HASH_LEN],
                     bool *unique) {
    size_t plen = s->ix_prefix;
    mn_smt_key_credential(kh, id);
    *unique = true;
    if (w->tree) {
        uint8_t pos[MN_SMT_POS_KEY_MAX];
        size_t pl = mn_smt_pos_key(pos, (unsigned)(8 * plen), kh);
        const uint8_t *v;
        size_t vl;
        int st = mn_kv_get(w->changes, pos, pl, &v, &vl);
        int in_tree = st == MN_KV_VALUE ? 1 : st == MN_KV_DELETED ? 0 : s->tree_has(s->tree_ctx, pos, pl);
        if (in_tree >= 0) {
            *unique = !in_tree;
            return MN_OK;
        }
    }
    int rc = ix_write_recs(w);
    if (rc != MN_OK) return rc;
    for (size_t i = rec_key_lower_bound(w->recs, 0, w->n, kh, plen);
         i < w->n && memcmp(w->recs[i], kh, plen) == 0 && *unique; i++)
        *unique = memcmp(w->recs[i] + REC_KH, id, MN_ID_LEN) == 0;
    const uint8_t *k;
    for (seek_prefix(s, kh, plen); *unique && (k = iter_under(s, kh, plen)) != NULL; leveldb_iter_next(s->rit))
        *unique = memcmp(k + 1 + REC_KH, id, MN_ID_LEN) == 0;
    return iter_status(s);
}

/* The stored form of an index value of ids (vl a multiple of 32, at most
 * IX_LIST_MAX of them; one for 'h'), into *out (malloc'd, the caller
 * frees). MN_OK, MN_EINVAL (not such a value), MN_ENOMEM, MN_EIO. */
static int ix_encode(mn_store *s, ix_write *w, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                     uint8_t **out, size_t *out_len) {
    size_t n = vl / MN_ID_LEN, plen = s->ix_prefix;
    bool holder = is_holder_key(key, kl);
    if (vl % MN_ID_LEN != 0 || n == 0 || n > IX_LIST_MAX || (holder && n != 1)) return MN_EINVAL;
    uint8_t *o = malloc(1 + n + vl);
    if (!o) return MN_ENOMEM;
    uint8_t *ids = o + (holder ? 0 : 1 + n); /* positions go before the ids; moved down below */
    size_t f = 0, len = 0;
    uint8_t pos[IX_LIST_MAX];
    for (size_t i = 0; i < n; i++) {
        uint8_t kh[MN_HASH_LEN];
        bool unique = false;
        int rc = w->whole ? MN_OK : ix_unique(s, w, val + i * MN_ID_LEN, kh, &unique);
        if (rc != MN_OK) {
            free(o);
            return rc;
        }
        if (unique) {
            memcpy(ids + len, kh, plen);
            len += plen;
        } else {
            memcpy(ids + len, val + i * MN_ID_LEN, MN_ID_LEN);
            len += MN_ID_LEN;
            pos[f++] = (uint8_t)i;
        }
    }
    if (!holder) {
        o[0] = (uint8_t)f;
        memcpy(o + 1, pos, f);
        memmove(o + 1 + f, ids, len);
        len += 1 + f;
    }
    *out = o;
    *out_len = len;
    return MN_OK;
}

/* A stored value as callers name and see it: records live under their
 * physical key with the id left out of the value (see is_rec_key), and
 * index values may name ids by prefix (see "index values"). */
typedef struct stored_value {
    uint8_t pk[REC_KEY_LEN];
    bool rec;
    char *v; /* LevelDB's copy, freed with leveldb_free */
    size_t vl;
    uint8_t *ids; /* an index value's ids, malloc'd (v is then NULL) */
    size_t len;   /* of the value as callers see it */
    uint8_t tx[MN_HASH_LEN];
    const uint8_t *txh; /* a REC_IN_TX record's transaction hash (in tx), else NULL */
} stored_value;

static int stored_get(mn_store *s, const void *key, size_t key_len, stored_value *sv) {
    size_t pkl = key_len;
    const uint8_t *k = phys_key(key, &pkl, sv->pk);
    sv->v = NULL;
    sv->vl = 0;
    sv->ids = NULL;
    int rc = raw_get(s, k, pkl, &sv->v, &sv->vl);
    if (rc != MN_OK) return rc;
    sv->rec = k == sv->pk;
    if (s->ix_prefix && (is_holder_key(key, key_len) || is_device_key(key, key_len))) {
        rc = ix_decode(s, NULL, key, key_len, (const uint8_t *)sv->v, sv->vl, &sv->ids, &sv->len);
        leveldb_free(sv->v);
        sv->v = NULL;
        return rc;
    }
    sv->txh = NULL;
    if (sv->rec && (rc = rec_tx_hash(s, (const uint8_t *)sv->v, sv->vl, sv->tx, &sv->txh)) != MN_OK) {
        leveldb_free(sv->v);
        sv->v = NULL;
        return rc;
    }
    sv->len = sv->rec ? rec_get_value(sv->pk + 1 + REC_KH, (const uint8_t *)sv->v, sv->vl, sv->txh, NULL) : sv->vl;
    return MN_OK;
}

static void stored_free(stored_value *sv) {
    leveldb_free(sv->v);
    free(sv->ids);
}

/* Writes the caller's view of sv (sv->len bytes) into out and frees sv. */
static void stored_take(stored_value *sv, uint8_t *out) {
    if (sv->ids)
        memcpy(out, sv->ids, sv->len);
    else if (sv->rec)
        rec_get_value(sv->pk + 1 + REC_KH, (const uint8_t *)sv->v, sv->vl, sv->txh, out);
    else if (sv->vl)
        memcpy(out, sv->v, sv->vl);
    stored_free(sv);
}

int mn_store_get(mn_store *s, const void *key, size_t key_len, uint8_t **out, size_t *out_len) {
    stored_value sv;
    int rc = stored_get(s, key, key_len, &sv);
    if (rc != MN_OK) return rc;
    uint8_t *copy = malloc(sv.len ? sv.len : 1);
    if (!copy) {
        stored_free(&sv);
        return MN_ENOMEM;
    }
    stored_take(&sv, copy);
    *out = copy;
    *out_len = sv.len;
    return MN_OK;
}

int mn_store_get_buf(mn_store *s, const void *key, size_t key_len, uint8_t *buf, size_t cap,
                     size_t *out_len) {
    stored_value sv;
    int rc = stored_get(s, key, key_len, &sv);
    if (rc != MN_OK) return rc;
    if (out_len) *out_len = sv.len;
    if (sv.len > cap) {
        stored_free(&sv);
        return MN_ETOOBIG;
    }
    stored_take(&sv, buf);
    return MN_OK;
}

/* Whether the first nbits of a and b agree (b's bits past nbits are 0). */
static bool bits_equal(const uint8_t *a, const uint8_t *b, unsigned nbits) {
    if (memcmp(a, b, nbits / 8) != 0) return false;
    if (!(nbits & 7)) return true;
    uint8_t m = (uint8_t)(0xFF << (8 - (nbits & 7)));
    return (a[nbits / 8] & m) == (b[nbits / 8] & m);
}

/* The implicit leaf at a position: the record whose key_hash starts with
 * the position's path (the subtree there holds exactly one key). Records
 * are in key_hash order by their first REC_KH bytes; past that depth the
 * few records sharing them are told apart by their whole key hash. */
static int implicit_leaf(mn_store *s, const uint8_t *pos, size_t pos_len, uint8_t node[static 65]) {
    unsigned depth;
    if (!mn_smt_pos_depth(pos, pos_len, &depth)) return MN_ENOTFOUND;
    size_t nb = (depth + 7) / 8;
    if (!s->rit) s->rit = leveldb_create_iterator(s->db, s->ropts);
    uint8_t start[1 + REC_KH];
    size_t sb = nb < REC_KH ? nb : REC_KH;
    unsigned prefix_bits = depth < 8 * REC_KH ? depth : 8 * REC_KH;
    start[0] = 'r';
    memcpy(start + 1, pos + 3, sb);
    int rc = MN_ENOTFOUND;
    s->leaf_seeks++;
    for (leveldb_iter_seek(s->rit, (const char *)start, 1 + sb); leveldb_iter_valid(s->rit);
         leveldb_iter_next(s->rit)) {
        size_t kl = 0, vl = 0;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(s->rit, &kl);
        if (kl != REC_KEY_LEN || k[0] != 'r' || !bits_equal(k + 1, pos + 3, prefix_bits)) break;
        uint8_t kh[MN_HASH_LEN];
        mn_smt_key_credential(kh, k + 1 + REC_KH);
        if (!bits_equal(kh, pos + 3, depth)) continue;
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(s->rit, &vl);
        node[0] = MN_SMT_IMPLICIT;
        memcpy(node + 1, kh, MN_HASH_LEN);
        rc = rec_hash(s, node + 1 + MN_HASH_LEN, k + 1 + REC_KH, v, vl);
        break;
    }
    char *err = NULL;
    leveldb_iter_get_error(s->rit, &err);
    if (err) {
        LOG_ERROR("store_iter_failed", "err=%s", err);
        leveldb_free(err);
        drop_iter(s);
        return MN_EIO;
    }
    return rc;
}

int mn_store_smt_leaf(void *store, const uint8_t *pos_key, size_t pos_len, uint8_t node[static 65]) {
    return implicit_leaf(store, pos_key, pos_len, node);
}

uint64_t mn_store_leaf_seeks(const mn_store *s) { return s->leaf_seeks; }


/* Last key of family fam ('V' or 'E'), reading its trailing u64 sequence. */
static uint64_t last_seq(mn_store *s, char fam, size_t key_len) {
    leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
    char next = (char)(fam + 1);
    leveldb_iter_seek(it, &next, 1);
    if (leveldb_iter_valid(it))
        leveldb_iter_prev(it);
    else
        leveldb_iter_seek_to_last(it);
    uint64_t seq = 0;
    if (leveldb_iter_valid(it)) {
        size_t kl = 0;
        const char *k = leveldb_iter_key(it, &kl);
        if (kl == key_len && k[0] == fam) seq = mn_get_u64be((const uint8_t *)k + key_len - 8);
    }
    leveldb_iter_destroy(it);
    return seq;
}

static int put_synced(mn_store *s, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, const char *event);

static int write_batch(mn_store *s, leveldb_t *db, leveldb_writebatch_t *b);

/* Deletes chain entries above the committed height: a block whose chain
 * entries were written when the state's write did not happen (mn_store_commit). */
static int drop_chain_above(mn_store *s) {
    static const char fams[] = {'B', 'C', 'W'};
    leveldb_writebatch_t *b = leveldb_writebatch_create();
    size_t dropped = 0;
    int rc = MN_OK;
    for (size_t f = 0; f < sizeof fams && rc == MN_OK; f++) {
        uint8_t start[16];
        size_t sl = key_height(start, fams[f], s->height + 1);
        leveldb_iterator_t *it = leveldb_create_iterator(s->chain, s->ropts);
        for (leveldb_iter_seek(it, (const char *)start, sl); leveldb_iter_valid(it); leveldb_iter_next(it)) {
            size_t kl = 0;
            const char *k = leveldb_iter_key(it, &kl);
            if (kl == 0 || k[0] != fams[f]) break;
            leveldb_writebatch_delete(b, k, kl);
            dropped++;
        }
        rc = iter_close(it);
    }
    if (rc == MN_OK && dropped > 0) {
        LOG_WARN("store_uncommitted_block_dropped", "height=%llu entries=%zu", (unsigned long long)s->height + 1,
                 dropped);
        rc = write_batch(s, s->chain, b);
    }
    leveldb_writebatch_destroy(b);
    return rc;
}

/* Opens (creating) the LevelDB at path with the store's options; NULL with
 * err filled when it cannot. */
static leveldb_t *open_db(mn_store *s, const char *path, char *err, size_t err_len) {
    char *lerr = NULL;
    leveldb_t *db = leveldb_open(s->opts, path, &lerr);
    if (lerr || !db) {
        snprintf(err, err_len, "store: cannot open %s: %s", path, lerr ? lerr : "unknown error");
        leveldb_free(lerr);
        if (db) leveldb_close(db);
        return NULL;
    }
    return db;
}

/* LevelDB compacts in one background thread per process, created by the
 * first call that schedules work, and a new thread inherits its creator's
 * nice value (Linux keeps one per thread). The process's first database is
 * therefore opened, and that thread started, from a helper thread that has
 * lowered its own priority: compactions take the CPU the event loop leaves
 * instead of contending with a block's commit or a status query (on a
 * shared machine every validator flushes its memtable at about the same
 * height). They cannot fall behind without bound: LevelDB slows, then
 * stops, writes while level 0 holds too many tables. */
static atomic_bool compaction_thread_started;

struct niced_open {
    mn_store *s;
    const char *path;
    char *err;
    size_t err_len;
    leveldb_t *db;
};

static void *niced_open_main(void *arg) {
    struct niced_open *o = arg;
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, 0);
    if ((nice_now == -1 && errno != 0) || setpriority(PRIO_PROCESS, 0, nice_now + MN_STORE_COMPACTION_NICE) != 0)
        LOG_WARN("compaction_priority_unchanged", "errno=%d", errno);
    o->db = open_db(o->s, o->path, o->err, o->err_len);
    if (o->db) {
        /* A manual compaction of a range past every key writes nothing,
         * but flushing the (empty) memtable schedules background work,
         * which starts the thread here. */
        static const char past_all[9] = {'\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff'};
        leveldb_compact_range(o->db, past_all, sizeof past_all, past_all, sizeof past_all);
    }
    return NULL;
}

/* open_db, from a lowered-priority helper thread for the process's first
 * database (see above); any failure to do so falls back to a plain open. */
static leveldb_t *open_first_db(mn_store *s, const char *path, char *err, size_t err_len) {
    if (atomic_exchange(&compaction_thread_started, true)) return open_db(s, path, err, err_len);
    struct niced_open o = {.s = s, .path = path, .err = err, .err_len = err_len};
    pthread_t t;
    int rc = pthread_create(&t, NULL, niced_open_main, &o);
    if (rc != 0) {
        LOG_WARN("compaction_priority_unchanged", "pthread_create=%d", rc);
        return open_db(s, path, err, err_len);
    }
    rc = pthread_join(t, NULL);
    assert(rc == 0);
    (void)rc;
    if (!o.db) atomic_store(&compaction_thread_started, false); /* the next open tries again */
    return o.db;
}

/* LevelDB maps the first 1,000 tables and reads the rest through file
 * descriptors, keeping open at most a fifth of RLIMIT_NOFILE of them and
 * opening the others for each read. Raising the soft limit to the hard one
 * (as a server does at start) keeps a large state's tables open. Failure
 * only costs speed, so it is logged, not returned. */
static void raise_open_files_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        LOG_WARN("open_files_limit_unknown", "errno=%d", errno);
        return;
    }
    if (rl.rlim_cur >= rl.rlim_max) return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        LOG_WARN("open_files_limit_not_raised", "soft=%llu hard=%llu errno=%d", (unsigned long long)was,
                 (unsigned long long)rl.rlim_max, errno);
        return;
    }
    LOG_DEBUG("open_files_limit_raised", "from=%llu to=%llu", (unsigned long long)was,
              (unsigned long long)rl.rlim_max);
}

int mn_store_open(mn_store **out, const char *dir, char *err, size_t err_len) {
    *out = NULL;
    if (mkdir(dir, 0700) != 0) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, err_len, "store: cannot create directory %s", dir);
            return MN_EIO;
        }
    }
    mn_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "store: out of memory");
        return MN_ENOMEM;
    }
    s->opts = leveldb_options_create();
    s->cache = leveldb_cache_create_lru(64u << 20);
    s->filter = leveldb_filterpolicy_create_bloom(10);
    leveldb_options_set_create_if_missing(s->opts, 1);
    leveldb_options_set_cache(s->opts, s->cache);
    leveldb_options_set_filter_policy(s->opts, s->filter);
    leveldb_options_set_write_buffer_size(s->opts, 32u << 20);
    /* Keys and values are mostly hashes, ids and signatures: Snappy saved
     * 9% of the bytes (a record's repeated tx hash) and cost a validator 6%
     * of its CPU, compressing and decompressing every compaction. Tables
     * written before stay readable. */
    leveldb_options_set_compression(s->opts, leveldb_no_compression);
    leveldb_options_set_paranoid_checks(s->opts, 1);
    leveldb_options_set_max_open_files(s->opts, STORE_OPEN_TABLES);
    raise_open_files_limit();
    s->ropts = leveldb_readoptions_create();
    s->wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(s->wsync, 1);
    s->db = open_first_db(s, dir, err, err_len);
    if (!s->db) {
        mn_store_close(s);
        return MN_EIO;
    }
    uint8_t buf[MN_HASH_LEN];
    size_t n = 0;
    int rc = mn_store_get_buf(s, K_HEIGHT, strlen(K_HEIGHT), buf, sizeof buf, &n);
    if (rc == MN_OK && n == 8) {
        s->height = mn_get_u64be(buf);
        rc = mn_store_get_buf(s, K_ROOT, strlen(K_ROOT), s->root, MN_HASH_LEN, &n);
        if (rc != MN_OK || n != MN_HASH_LEN) rc = MN_ECORRUPT;
    } else if (rc == MN_OK || rc == MN_ETOOBIG) {
        rc = MN_ECORRUPT;
    } else if (rc == MN_ENOTFOUND) {
        rc = MN_OK;
    }
    if (rc != MN_OK) {
        snprintf(err, err_len, "store: %s: metadata unreadable (%s)", dir, mn_strerror(rc));
        mn_store_close(s);
        return rc == MN_EIO ? MN_EIO : MN_ECORRUPT;
    }
    uint8_t fb[8];
    rc = mn_store_get_buf(s, K_FORMAT, strlen(K_FORMAT), fb, sizeof fb, &n);
    if (rc == MN_OK && n == 2 && fb[0] == STORE_FORMAT && fb[1] >= 1 && fb[1] <= REC_KH) {
        s->ix_prefix = fb[1];
    } else if (rc == MN_OK && n == 1 && fb[0] == STORE_FORMAT_WHOLE_IDS) {
        s->ix_prefix = 0;
    } else if (rc == MN_OK && n == 1 && fb[0] == STORE_FORMAT_UPGRADABLE) {
        fb[0] = STORE_FORMAT_WHOLE_IDS;
        rc = put_synced(s, (const uint8_t *)K_FORMAT, strlen(K_FORMAT), fb, 1, "store_write_failed");
        if (rc == MN_OK)
            LOG_INFO("store_format_upgraded", "dir=%s from=%d to=%d", dir, STORE_FORMAT_UPGRADABLE,
                     STORE_FORMAT_WHOLE_IDS);
    } else if (rc == MN_ENOTFOUND && s->height == 0) {
        fb[0] = STORE_FORMAT;
        fb[1] = IX_PREFIX_DEFAULT;
        rc = put_synced(s, (const uint8_t *)K_FORMAT, strlen(K_FORMAT), fb, 2, "store_write_failed");
        s->ix_prefix = IX_PREFIX_DEFAULT;
    } else if (rc != MN_EIO) {
        snprintf(err, err_len, "store: %s was written by another version of midnode (store formats %d to %d "
                 "are read): start from a new data directory (snapshot import or catch-up)", dir,
                 STORE_FORMAT_UPGRADABLE, STORE_FORMAT);
        mn_store_close(s);
        return MN_ECORRUPT;
    }
    if (rc != MN_OK) {
        snprintf(err, err_len, "store: %s: metadata unreadable (%s)", dir, mn_strerror(rc));
        mn_store_close(s);
        return MN_EIO;
    }
    char chain_dir[4096];
    if (snprintf(chain_dir, sizeof chain_dir, "%s/chain", dir) >= (int)sizeof chain_dir) {
        snprintf(err, err_len, "store: data directory path too long");
        mn_store_close(s);
        return MN_EINVAL;
    }
    s->chain = open_db(s, chain_dir, err, err_len);
    if (!s->chain) {
        mn_store_close(s);
        return MN_EIO;
    }
    if ((rc = drop_chain_above(s)) != MN_OK) {
        snprintf(err, err_len, "store: %s: cannot clear entries above height %llu (%s)", chain_dir,
                 (unsigned long long)s->height, mn_strerror(rc));
        mn_store_close(s);
        return rc;
    }
    s->vote_seq = last_seq(s, 'V', 17);
    s->ev_seq = last_seq(s, 'E', 9);
    *out = s;
    return MN_OK;
}

void mn_store_close(mn_store *s) {
    if (!s) return;
    drop_iter(s);
    if (s->chain) leveldb_close(s->chain);
    if (s->db) leveldb_close(s->db);
    if (s->opts) leveldb_options_destroy(s->opts);
    if (s->cache) leveldb_cache_destroy(s->cache);
    if (s->filter) leveldb_filterpolicy_destroy(s->filter);
    if (s->ropts) leveldb_readoptions_destroy(s->ropts);
    if (s->wsync) leveldb_writeoptions_destroy(s->wsync);
    free(s);
}

uint64_t mn_store_height(const mn_store *s) { return s->height; }

void mn_store_root(const mn_store *s, uint8_t out[static MN_HASH_LEN]) {
    memcpy(out, s->root, MN_HASH_LEN);
}

void mn_store_set_tree(mn_store *s, mn_store_tree_has_fn fn, void *ctx) {
    s->tree_has = fn;
    s->tree_ctx = fn ? ctx : NULL;
}

int mn_store_set_index_prefix(mn_store *s, unsigned bytes) {
    if (bytes < 1 || bytes > REC_KH) return MN_EINVAL;
    if (s->height != 0 || s->ix_prefix == 0) return MN_ESTATE;
    for (const char *fam = "hd"; *fam; fam++) {
        if (!s->rit) s->rit = leveldb_create_iterator(s->db, s->ropts);
        leveldb_iter_seek(s->rit, fam, 1);
        size_t kl = 0;
        bool any = leveldb_iter_valid(s->rit) && (leveldb_iter_key(s->rit, &kl))[0] == *fam;
        int rc = iter_status(s);
        if (rc != MN_OK) return rc;
        if (any) return MN_ESTATE;
    }
    uint8_t fb[2] = {STORE_FORMAT, (uint8_t)bytes};
    int rc = put_synced(s, (const uint8_t *)K_FORMAT, strlen(K_FORMAT), fb, 2, "store_write_failed");
    if (rc == MN_OK) s->ix_prefix = bytes;
    return rc;
}

static int write_batch(mn_store *s, leveldb_t *db, leveldb_writebatch_t *b) {
    char *err = NULL;
    drop_iter(s);
    leveldb_write(db, s->wsync, b, &err);
    if (err) {
        LOG_ERROR("store_write_failed", "err=%s", err);
        leveldb_free(err);
        return MN_EIO;
    }
    return MN_OK;
}

/* The transactions of block `height` from its 'T' entries among changes,
 * and how many records of changes each issued. MN_OK or MN_ENOMEM. */
static int tx_refs_init(tx_refs *t, uint64_t height, const mn_kvmap *changes) {
    memset(t, 0, sizeof *t);
    t->height = height;
    size_t total = mn_kv_count(changes), n = 0;
    for (size_t i = 0; i < total; i++) {
        const uint8_t *key, *val;
        size_t kl, vl;
        mn_kv_entry(changes, i, &key, &kl, &val, &vl);
        n += kl == 1 + MN_HASH_LEN && key[0] == 'T' && val;
    }
    if (n == 0) return MN_OK;
    if (!(t->tx = calloc(n, sizeof *t->tx))) return MN_ENOMEM;
    for (size_t i = 0; i < total; i++) {
        const uint8_t *key, *val;
        size_t kl, vl;
        mn_kv_entry(changes, i, &key, &kl, &val, &vl);
        if (kl != 1 + MN_HASH_LEN || key[0] != 'T' || !val) continue;
        const uint8_t *p = val, *end = val + vl;
        uint64_t h, index;
        if (!rd_varint(&p, end, &h) || !rd_varint(&p, end, &index) || h != height || index > UINT32_MAX) continue;
        memcpy(t->tx[t->n].hash, key + 1, MN_HASH_LEN);
        t->tx[t->n].index = (uint32_t)index;
        t->n++;
    }
    qsort(t->tx, t->n, sizeof *t->tx, tx_ref_cmp);
    for (size_t i = 0; t->n && i < total; i++) {
        const uint8_t *key, *val;
        size_t kl, vl, h, hl, tx, end;
        mn_kv_entry(changes, i, &key, &kl, &val, &vl);
        if (!is_rec_key(key, kl) || !val || vl < 2 + MN_ID_LEN) continue;
        tx_ref *r;
        if (find_issued(val + 2 + MN_ID_LEN, vl - 2 - MN_ID_LEN, &h, &hl, &tx, &end) &&
            (r = tx_ref_find(t, val + 2 + MN_ID_LEN + tx)) != NULL)
            r->refs++;
    }
    return MN_OK;
}

/* The 'X' entries of the transactions records name by index. */
static void tx_refs_put_named(const tx_refs *t, leveldb_writebatch_t *b) {
    for (size_t i = 0; i < t->n; i++) {
        if (!t->tx[i].named) continue;
        uint8_t k[16];
        size_t kl = key_tx_at(k, t->height, t->tx[i].index);
        leveldb_writebatch_put(b, (const char *)k, kl, (const char *)t->tx[i].hash, MN_HASH_LEN);
    }
}

/* Adds a put (val) or a delete (val NULL) of a caller's key to b, in the
 * stored form (w: the records of the same write). Returns MN_OK,
 * MN_ENOMEM, MN_EINVAL (an index value that is not ids), MN_EIO. */
/* batch_put with the stored key k (pkl bytes) of key already at hand. */
static int batch_put_at(mn_store *s, ix_write *w, tx_refs *txs, leveldb_writebatch_t *b, const uint8_t *key,
                        size_t kl, const uint8_t *k, size_t pkl, const uint8_t *val, size_t vl) {
    if (!val) {
        leveldb_writebatch_delete(b, (const char *)k, pkl);
        return MN_OK;
    }
    const uint8_t *sv = val;
    size_t svl = vl;
    uint8_t *tmp = NULL;
    if (is_rec_key(key, kl) && rec_put_value(key + 1, val, vl, txs, &sv, &svl, &tmp) != MN_OK) return MN_ENOMEM;
    if (s->ix_prefix && (is_holder_key(key, kl) || is_device_key(key, kl))) {
        int rc = ix_encode(s, w, key, kl, val, vl, &tmp, &svl);
        if (rc != MN_OK) return rc;
        sv = tmp;
    }
    leveldb_writebatch_put(b, (const char *)k, pkl, (const char *)sv, svl);
    free(tmp);
    return MN_OK;
}

static int batch_put(mn_store *s, ix_write *w, tx_refs *txs, leveldb_writebatch_t *b, const uint8_t *key,
                     size_t kl, const uint8_t *val, size_t vl) {
    uint8_t pk[REC_KEY_LEN];
    size_t pkl = kl;
    const uint8_t *k = phys_key(key, &pkl, pk);
    return batch_put_at(s, w, txs, b, key, kl, k, pkl, val, vl);
}

/* ---------------------------------------------------------------- status-change log
 *
 * The ledger hands each commit its StatusChanges as 'W' height seq entries
 * (serialised StatusChange). They are stored as one entry per block,
 * 'W' height, which says once what the changes of a block share (height,
 * time, the transaction hashes, signer and kind strings), and names a
 * transaction by its index in the block when its hash is the hash of that
 * transaction of the stored block (the hash is then recomputed on read).
 * Encoding (varints unless said):
 *   u8 version, time_ms, n_tx, n_tx x (u8 0 + 32-byte hash | u8 1 + index
 *   in the block), n_str, n_str x (len, bytes), n, n x (tx, id, status,
 *   previous, signer str, kind str)
 * where id is, in version 1, the 32-byte credential_id; in version 2 a
 * varint r, followed by the 32-byte id when r is 0, and else naming the 32
 * bytes at offset r-1 of that transaction's bytes in the stored block
 * (an issuance carries the ids it issues: a batch's change log then costs
 * a few bytes per credential instead of 37). Version 1 entries, written
 * before, still read.
 * A block whose changes do not fit this (or would not read back as the
 * same bytes, checked when writing) keeps the per-change entries. Reads
 * return the serialised StatusChange either way. */

#define WLOG_VERSION_IDS 1
#define WLOG_VERSION 2

typedef struct wbuf { uint8_t *p; size_t n, cap; bool oom; } wbuf;

static void wb_put(wbuf *w, const void *d, size_t n) {
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        while (nc < w->n + n) nc *= 2;
        uint8_t *p = realloc(w->p, nc);
        if (!p) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = nc;
    }
    memcpy(w->p + w->n, d, n);
    w->n += n;
}

static void wb_varint(wbuf *w, uint64_t v) {
    uint8_t b[10];
    wb_put(w, b, put_varint(b, v));
}

static bool rd_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **out, size_t n) {
    if ((size_t)(end - *p) < n) return false;
    *out = *p;
    *p += n;
    return true;
}

/* A block's transactions: their bytes (pointing into the unpacked block)
 * and hashes. n is 0 when the bytes are not a Block or it has none. */
typedef struct block_txs {
    Midnode__Block *block;
    size_t n;
    uint8_t (*hash)[MN_HASH_LEN];
} block_txs;

/* Returns MN_OK (also for bytes that are no Block) or MN_ENOMEM. */
static int block_txs_load(block_txs *t, const uint8_t *block, size_t len) {
    memset(t, 0, sizeof *t);
    t->block = block ? midnode__block__unpack(NULL, len, block) : NULL;
    if (!t->block || t->block->n_txs == 0) return MN_OK;
    t->hash = malloc(t->block->n_txs * MN_HASH_LEN);
    if (!t->hash) return MN_ENOMEM;
    for (size_t i = 0; i < t->block->n_txs; i++) mn_sha256(t->hash[i], t->block->txs[i].data, t->block->txs[i].len);
    t->n = t->block->n_txs;
    return MN_OK;
}

static void block_txs_free(block_txs *t) {
    if (t->block) midnode__block__free_unpacked(t->block, NULL);
    free(t->hash);
    memset(t, 0, sizeof *t);
}

typedef int (*wlog_cb)(void *ctx, const uint8_t *change, size_t len);

/* Calls cb with each change of a block entry, serialised. bt: the block's
 * transactions, needed when the entry refers to them. Returns MN_OK (also
 * when cb stopped it), MN_ECORRUPT, MN_ENOMEM, or what cb returned when
 * negative. *stopped tells whether cb returned non-zero. */
static int wlog_decode(uint64_t height, const uint8_t *v, size_t vl, const block_txs *bt, size_t skip, wlog_cb cb,
                       void *ctx, bool *stopped, size_t *calls) {
    const uint8_t *p = v, *end = v + vl;
    uint64_t ver, time_ms, n_tx, n_str, n;
    *stopped = false;
    if (!rd_varint(&p, end, &ver) || (ver != WLOG_VERSION && ver != WLOG_VERSION_IDS) ||
        !rd_varint(&p, end, &time_ms) || !rd_varint(&p, end, &n_tx) || n_tx > vl)
        return MN_ECORRUPT;
    const uint8_t **tx = calloc(n_tx ? n_tx : 1, sizeof *tx);
    const ProtobufCBinaryData **tx_bytes = calloc(n_tx ? n_tx : 1, sizeof *tx_bytes);
    int rc = tx && tx_bytes ? MN_OK : MN_ENOMEM;
    for (uint64_t i = 0; i < n_tx && rc == MN_OK; i++) {
        const uint8_t *kind;
        uint64_t idx;
        if (!rd_bytes(&p, end, &kind, 1)) {
            rc = MN_ECORRUPT;
        } else if (kind[0] == 0) {
            rc = rd_bytes(&p, end, &tx[i], MN_HASH_LEN) ? MN_OK : MN_ECORRUPT;
        } else if (kind[0] == 1 && rd_varint(&p, end, &idx) && idx < bt->n) {
            tx[i] = bt->hash[idx];
            tx_bytes[i] = &bt->block->txs[idx];
        } else {
            rc = MN_ECORRUPT;
        }
    }
    char **str = NULL;
    if (rc == MN_OK && (!rd_varint(&p, end, &n_str) || n_str > vl)) rc = MN_ECORRUPT;
    if (rc == MN_OK && !(str = calloc(n_str ? n_str : 1, sizeof *str))) rc = MN_ENOMEM;
    for (uint64_t i = 0; rc == MN_OK && i < n_str; i++) {
        uint64_t l;
        const uint8_t *b;
        if (!rd_varint(&p, end, &l) || !rd_bytes(&p, end, &b, (size_t)l) || memchr(b, 0, (size_t)l)) {
            rc = MN_ECORRUPT;
        } else if (!(str[i] = malloc((size_t)l + 1))) {
            rc = MN_ENOMEM;
        } else {
            memcpy(str[i], b, (size_t)l);
            str[i][l] = '\0';
        }
    }
    if (rc == MN_OK && !rd_varint(&p, end, &n)) rc = MN_ECORRUPT;
    for (uint64_t i = 0; rc == MN_OK && i < n && !*stopped; i++) {
        uint64_t t, ref = 0, st, prev, sg, kd;
        const uint8_t *id = NULL;
        bool ok = rd_varint(&p, end, &t) && t < n_tx;
        if (ok && ver == WLOG_VERSION) ok = rd_varint(&p, end, &ref);
        if (ok && ref == 0) {
            ok = rd_bytes(&p, end, &id, MN_ID_LEN);
        } else if (ok) { /* the id inside the transaction's own bytes */
            const ProtobufCBinaryData *b = tx_bytes[t];
            ok = b && ref - 1 <= b->len && b->len - (ref - 1) >= MN_ID_LEN;
            if (ok) id = b->data + (ref - 1);
        }
        if (!ok || !rd_varint(&p, end, &st) || !rd_varint(&p, end, &prev) || !rd_varint(&p, end, &sg) ||
            sg >= n_str || !rd_varint(&p, end, &kd) || kd >= n_str) {
            rc = MN_ECORRUPT;
            break;
        }
        if (i < skip) continue;
        Midnode__StatusChange sc = MIDNODE__STATUS_CHANGE__INIT;
        sc.height = height;
        sc.time_ms = (int64_t)time_ms;
        sc.tx_hash = (ProtobufCBinaryData){MN_HASH_LEN, (uint8_t *)tx[t]};
        sc.credential_id = (ProtobufCBinaryData){MN_ID_LEN, (uint8_t *)id};
        sc.status = (Midnode__CredentialStatus)st;
        sc.previous = (Midnode__CredentialStatus)prev;
        sc.signer = str[sg];
        sc.kind = str[kd];
        uint8_t buf[512];
        if (midnode__status_change__get_packed_size(&sc) > sizeof buf) {
            rc = MN_ECORRUPT;
            break;
        }
        size_t bl = midnode__status_change__pack(&sc, buf);
        int r = cb(ctx, buf, bl);
        if (calls) (*calls)++;
        if (r < 0) rc = r;
        if (r) *stopped = true;
    }
    if (rc == MN_OK && !*stopped && p != end) rc = MN_ECORRUPT;
    if (str)
        for (uint64_t i = 0; i < n_str; i++) free(str[i]);
    free(str);
    free(tx);
    free(tx_bytes);
    return rc;
}

typedef struct { const uint8_t **vals; const size_t *lens; size_t i; bool same; } wlog_check;

static int wlog_compare(void *ctx, const uint8_t *change, size_t len) {
    wlog_check *c = ctx;
    if (len != c->lens[c->i] || memcmp(change, c->vals[c->i], len) != 0) {
        c->same = false;
        return 1;
    }
    c->i++;
    return 0;
}

static size_t str_index(const char **tab, size_t *n, const char *s) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(tab[i], s) == 0) return i;
    tab[*n] = s;
    return (*n)++;
}

/* Offset of the 32 bytes id in d[0..len), looked for from `from` on and
 * then from the start; SIZE_MAX when absent. */
static size_t find_id(const uint8_t *d, size_t len, size_t from, const uint8_t *id) {
    if (len < MN_ID_LEN) return SIZE_MAX;
    size_t last = len - MN_ID_LEN;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = pass ? 0 : from; i <= last; i++) {
            const uint8_t *q = memchr(d + i, id[0], last - i + 1);
            if (!q) break;
            i = (size_t)(q - d);
            if (memcmp(q, id, MN_ID_LEN) == 0) return i;
        }
        if (from == 0) break;
    }
    return SIZE_MAX;
}

/* Encodes the changes of one block (vals[i] is change i) into out (malloc'd).
 * Returns MN_OK, MN_EINVAL (not representable: keep them as they are), MN_ENOMEM. */
static int wlog_encode(uint64_t height, const uint8_t *block, size_t block_len, const uint8_t **vals, const size_t *lens,
                       size_t n, uint8_t **out, size_t *out_len) {
    Midnode__StatusChange **sc = calloc(n, sizeof *sc);
    const char **strs = calloc(2 * n, sizeof *strs);
    size_t *txi = calloc(n, sizeof *txi);
    size_t *tab_block = calloc(n, sizeof *tab_block); /* table entry -> index in the block, SIZE_MAX: by hash */
    size_t nstr = 0, ntab = 0;
    block_txs bt;
    int rc = block_txs_load(&bt, block, block_len);
    wbuf tab = {0}, body = {0}, w = {0};
    if (rc == MN_OK && !(sc && strs && txi && tab_block)) rc = MN_ENOMEM;
    for (size_t i = 0; rc == MN_OK && i < n; i++) {
        sc[i] = midnode__status_change__unpack(NULL, lens[i], vals[i]);
        if (!sc[i] || sc[i]->height != height || sc[i]->tx_hash.len != MN_HASH_LEN ||
            sc[i]->credential_id.len != MN_ID_LEN || sc[i]->time_ms != sc[0]->time_ms || !sc[i]->signer || !sc[i]->kind)
            rc = MN_EINVAL;
    }
    /* Changes come in transaction order: a hash repeats its predecessor's
     * (items of one transaction) or is found further on in the block. */
    size_t cursor = 0;
    for (size_t i = 0; rc == MN_OK && i < n; i++) {
        const uint8_t *h = sc[i]->tx_hash.data;
        if (i > 0 && memcmp(h, sc[i - 1]->tx_hash.data, MN_HASH_LEN) == 0) {
            txi[i] = txi[i - 1];
            continue;
        }
        size_t k = cursor;
        while (k < bt.n && memcmp(bt.hash[k], h, MN_HASH_LEN) != 0) k++;
        if (k < bt.n) {
            uint8_t one = 1;
            wb_put(&tab, &one, 1);
            wb_varint(&tab, k);
            cursor = k;
            tab_block[ntab] = k;
        } else {
            uint8_t zero = 0;
            wb_put(&tab, &zero, 1);
            wb_put(&tab, h, MN_HASH_LEN);
            tab_block[ntab] = SIZE_MAX;
        }
        txi[i] = ntab++;
    }
    /* Ids in a transaction's bytes follow in the order of its changes: each
     * search starts after the previous find in the same transaction. */
    size_t id_from = 0;
    for (size_t i = 0; rc == MN_OK && i < n; i++) {
        const uint8_t *id = sc[i]->credential_id.data;
        size_t k = tab_block[txi[i]];
        if (i > 0 && txi[i] != txi[i - 1]) id_from = 0;
        size_t at = k == SIZE_MAX ? SIZE_MAX : find_id(bt.block->txs[k].data, bt.block->txs[k].len, id_from, id);
        wb_varint(&body, txi[i]);
        if (at == SIZE_MAX) {
            wb_varint(&body, 0);
            wb_put(&body, id, MN_ID_LEN);
        } else {
            wb_varint(&body, (uint64_t)at + 1);
            id_from = at + MN_ID_LEN;
        }
        wb_varint(&body, (uint64_t)sc[i]->status);
        wb_varint(&body, (uint64_t)sc[i]->previous);
        wb_varint(&body, str_index(strs, &nstr, sc[i]->signer));
        wb_varint(&body, str_index(strs, &nstr, sc[i]->kind));
    }
    if (rc == MN_OK) {
        uint8_t ver = WLOG_VERSION;
        wb_put(&w, &ver, 1);
        wb_varint(&w, (uint64_t)sc[0]->time_ms);
        wb_varint(&w, ntab);
        wb_put(&w, tab.p, tab.n);
        wb_varint(&w, nstr);
        for (size_t i = 0; i < nstr; i++) {
            size_t l = strlen(strs[i]);
            wb_varint(&w, l);
            wb_put(&w, strs[i], l);
        }
        wb_varint(&w, n);
        wb_put(&w, body.p, body.n);
        if (w.oom || tab.oom || body.oom) rc = MN_ENOMEM;
    }
    if (rc == MN_OK) { /* what a reader will get back must be these exact bytes */
        wlog_check c = {vals, lens, 0, true};
        bool stopped = false;
        int d = wlog_decode(height, w.p, w.n, &bt, 0, wlog_compare, &c, &stopped, NULL);
        if (d == MN_ENOMEM) rc = d;
        else if (d != MN_OK || !c.same || c.i != n) rc = MN_EINVAL;
    }
    for (size_t i = 0; sc && i < n; i++)
        if (sc[i]) midnode__status_change__free_unpacked(sc[i], NULL);
    free(sc);
    free(strs);
    free(txi);
    free(tab_block);
    block_txs_free(&bt);
    free(tab.p);
    free(body.p);
    if (rc != MN_OK) {
        free(w.p);
        return rc;
    }
    *out = w.p;
    *out_len = w.n;
    return MN_OK;
}

/* The changes of block `height` among a commit's entries, if they are the
 * per-change entries seq 0..n-1: encoded into one entry (put into b), and
 * *skip set so the commit leaves them out. Any failure keeps them as they are. */
static void wlog_put(leveldb_writebatch_t *b, uint64_t height, const uint8_t *block, size_t block_len,
                     const mn_kvmap *changes, bool **skip) {
    size_t total = mn_kv_count(changes), n = 0;
    *skip = NULL;
    for (size_t i = 0; i < total; i++) {
        const uint8_t *key, *val;
        size_t kl, vl;
        mn_kv_entry(changes, i, &key, &kl, &val, &vl);
        if (kl == 13 && key[0] == 'W') n++;
    }
    if (n == 0) return;
    const uint8_t **vals = calloc(n, sizeof *vals);
    size_t *lens = calloc(n, sizeof *lens);
    bool *sk = calloc(total, sizeof *sk);
    bool ok = vals && lens && sk;
    size_t m = 0;
    for (size_t i = 0; ok && i < total; i++) {
        const uint8_t *key, *val;
        size_t kl, vl;
        mn_kv_entry(changes, i, &key, &kl, &val, &vl);
        if (kl != 13 || key[0] != 'W') continue;
        ok = val && mn_get_u64be(key + 1) == height && get_u32(key + 9) == m;
        vals[m] = val;
        lens[m] = vl;
        sk[i] = true;
        m++;
    }
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (ok && wlog_encode(height, block, block_len, vals, lens, n, &enc, &enc_len) == MN_OK) {
        uint8_t k[16];
        size_t kl = key_height(k, 'W', height);
        leveldb_writebatch_put(b, (const char *)k, kl, (const char *)enc, enc_len);
        *skip = sk;
        sk = NULL;
    }
    free(enc);
    free(vals);
    free(lens);
    free(sk);
}

/* A block and its certificate (cert may be NULL) into a chain batch. */
static void chain_put_block(leveldb_writebatch_t *cb, uint64_t height, const uint8_t *block, size_t block_len,
                            const uint8_t *cert, size_t cert_len) {
    uint8_t k[16];
    size_t kl = key_height(k, 'B', height);
    leveldb_writebatch_put(cb, (const char *)k, kl, (const char *)block, block_len);
    if (cert && cert_len) {
        kl = key_height(k, 'C', height);
        leveldb_writebatch_put(cb, (const char *)k, kl, (const char *)cert, cert_len);
    }
}

/* Writes a block's chain batch, then its state batch with the new height
 * and root, both synced, and destroys both batches. The state's height,
 * written second, is what says the block committed: chain entries above it
 * (a crash between the two writes) are never read and are deleted at open
 * (drop_chain_above). */
static int write_block(mn_store *s, leveldb_writebatch_t *cb, leveldb_writebatch_t *b, uint64_t height,
                       const uint8_t state_root[static MN_HASH_LEN]) {
    uint8_t hb[8];
    mn_put_u64be(hb, height);
    leveldb_writebatch_put(b, K_HEIGHT, strlen(K_HEIGHT), (const char *)hb, 8);
    leveldb_writebatch_put(b, K_ROOT, strlen(K_ROOT), (const char *)state_root, MN_HASH_LEN);
    int rc = write_batch(s, s->chain, cb);
    if (rc == MN_OK) rc = write_batch(s, s->db, b);
    leveldb_writebatch_destroy(cb);
    leveldb_writebatch_destroy(b);
    if (rc != MN_OK) return rc;
    s->height = height;
    memcpy(s->root, state_root, MN_HASH_LEN);
    return MN_OK;
}

static struct nonce_cached *nonce_slot(mn_store *s, const uint8_t *key, size_t key_len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < key_len; i++) h = (h ^ key[i]) * 16777619u;
    return &s->ncache[h & (NONCE_SLOTS - 1)];
}

static struct nonce_cached *nonce_cached(mn_store *s, const uint8_t *key, size_t key_len) {
    struct nonce_cached *c = nonce_slot(s, key, key_len);
    return c->valid && c->key_len == key_len && memcmp(c->key, key, key_len) == 0 ? c : NULL;
}

/* Records that the committed nonce under key is now val (8 bytes); any
 * other value, or a deletion, leaves the next read to the store. */
static void nonce_note(mn_store *s, const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len) {
    if (key_len > sizeof s->ncache[0].key) return;
    struct nonce_cached *c = nonce_slot(s, key, key_len);
    if (val == NULL || val_len != 8) {
        if (c->valid && c->key_len == key_len && memcmp(c->key, key, key_len) == 0) c->valid = false;
        return;
    }
    c->valid = true;
    c->key_len = (uint8_t)key_len;
    memcpy(c->key, key, key_len);
    c->nonce = mn_get_u64be(val);
}

/* One entry of a commit with its stored key: a record's is built here
 * (rec_key), any other key is the change's own. */
typedef struct put_order {
    uint64_t head;      /* the stored key's first 8 bytes, big-endian, zero-padded */
    const uint8_t *key; /* the change's key */
    const uint8_t *val; /* its value, NULL for a deletion */
    size_t key_len, val_len;
    size_t phys_len;
    uint8_t rec_key[REC_KEY_LEN];
} put_order;

static const uint8_t *put_order_phys(const put_order *o) { return is_rec_key(o->key, o->key_len) ? o->rec_key : o->key; }

/* The heads alone order almost every pair (a record's key starts with its
 * key hash), which spares the sort a memcmp call per comparison. */
static int put_order_cmp(const void *x, const void *y) {
    const put_order *a = x, *b = y;
    if (a->head != b->head) return a->head < b->head ? -1 : 1;
    size_t n = a->phys_len < b->phys_len ? a->phys_len : b->phys_len;
    int c = memcmp(put_order_phys(a), put_order_phys(b), n);
    if (c) return c;
    return (a->phys_len > b->phys_len) - (a->phys_len < b->phys_len);
}

int mn_store_commit(mn_store *s, uint64_t height, const uint8_t *block, size_t block_len,
                    const uint8_t *cert, size_t cert_len, const mn_kvmap *changes,
                    const uint8_t state_root[static MN_HASH_LEN]) {
    if (height != s->height + 1) return MN_ESTATE;
    leveldb_writebatch_t *cb = leveldb_writebatch_create(), *b = leveldb_writebatch_create();
    chain_put_block(cb, height, block, block_len, cert, cert_len);
    bool *skip = NULL;
    wlog_put(cb, height, block, block_len, changes, &skip);
    size_t n = mn_kv_count(changes);
    ix_write w;
    tx_refs txs;
    ix_write_init(s, &w, changes);
    /* a store of format 5 keeps the values that format reads */
    int rc = s->ix_prefix ? tx_refs_init(&txs, height, changes) : (memset(&txs, 0, sizeof txs), MN_OK);
    /* In key order: LevelDB puts each entry into its memtable, a skip
     * list, with a descent from the top; entries in order share the upper
     * part of their paths, which is then still in the cache. Tree nodes
     * (most of a block's changes) and the changes the status-change log
     * holds are left out before the sort, which then orders only what is
     * written, and each entry keeps its value at hand: the put loop then
     * reads no kvmap entry out of order. */
    put_order *order = n ? malloc(n * sizeof *order) : NULL;
    size_t *nonces = n ? malloc(n * sizeof *nonces) : NULL;
    size_t m = 0, n_nonces = 0;
    if (n && (!order || !nonces)) rc = MN_ENOMEM;
    for (size_t i = 0; i < n && rc == MN_OK; i++) {
        put_order *o = &order[m];
        mn_kv_entry(changes, i, &o->key, &o->key_len, &o->val, &o->val_len);
        assert(o->key[0] != 'M' && o->key[0] != 'B' && o->key[0] != 'C');
        if (o->key[0] == MN_SMT_PREFIX) continue; /* the tree lives in the ledger's memory */
        if (o->key[0] == 'n') nonces[n_nonces++] = i;
        if (skip && skip[i]) continue;
        o->phys_len = o->key_len;
        const uint8_t *phys = phys_key(o->key, &o->phys_len, o->rec_key);
        uint8_t head[8] = {0};
        memcpy(head, phys, o->phys_len < sizeof head ? o->phys_len : sizeof head);
        o->head = mn_get_u64be(head);
        m++;
    }
    if (rc == MN_OK && m > 1) qsort(order, m, sizeof *order, put_order_cmp);
    for (size_t j = 0; j < m && rc == MN_OK; j++) {
        const put_order *o = &order[j];
        rc = batch_put_at(s, &w, &txs, is_chain_family(o->key[0]) ? cb : b, o->key, o->key_len, put_order_phys(o),
                          o->phys_len, o->val, o->val_len);
    }
    if (rc == MN_OK) tx_refs_put_named(&txs, b);
    free(order);
    free(skip);
    ix_write_free(&w);
    free(txs.tx);
    if (rc != MN_OK) {
        free(nonces);
        leveldb_writebatch_destroy(cb);
        leveldb_writebatch_destroy(b);
        return rc;
    }
    rc = write_block(s, cb, b, height, state_root);
    if (rc == MN_OK) {
        for (size_t j = 0; j < n_nonces; j++) {
            const uint8_t *key, *val;
            size_t key_len, val_len;
            mn_kv_entry(changes, nonces[j], &key, &key_len, &val, &val_len);
            nonce_note(s, key, key_len, val, val_len);
        }
    }
    free(nonces);
    return rc;
}

int mn_store_write(mn_store *s, const mn_kvmap *changes) {
    if (s->height != 0) return MN_ESTATE;
    leveldb_writebatch_t *b = leveldb_writebatch_create();
    size_t n = mn_kv_count(changes);
    /* Ids stay whole: telling which may go by prefix would cost a seek
     * each without the tree, which is built after the import; the entries
     * the node rewrites later go by prefix. */
    ix_write w = {.whole = true, .changes = changes};
    int rc = MN_OK;
    for (size_t i = 0; i < n && rc == MN_OK; i++) {
        const uint8_t *key, *val;
        size_t key_len, val_len;
        mn_kv_entry(changes, i, &key, &key_len, &val, &val_len);
        if (key_len == 0 || key[0] == 'M' || is_chain_family(key[0])) {
            rc = MN_EINVAL;
            break;
        }
        if (key[0] == MN_SMT_PREFIX) continue;
        rc = batch_put(s, &w, NULL, b, key, key_len, val, val_len);
    }
    ix_write_free(&w);
    if (rc == MN_OK) {
        /* Unsynced: mn_store_install's synced write makes it all durable,
         * and a crash before that leaves a store of height 0 to discard. */
        leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
        char *err = NULL;
        drop_iter(s);
        leveldb_write(s->db, wo, b, &err);
        leveldb_writeoptions_destroy(wo);
        memset(s->ncache, 0, sizeof s->ncache); /* nonces may have come with the entries */
        if (err) {
            LOG_ERROR("store_write_failed", "err=%s", err);
            leveldb_free(err);
            rc = MN_EIO;
        }
    }
    leveldb_writebatch_destroy(b);
    return rc;
}

int mn_store_install(mn_store *s, uint64_t height, const uint8_t *block, size_t block_len, const uint8_t *cert,
                     size_t cert_len, const uint8_t state_root[static MN_HASH_LEN]) {
    if (s->height != 0) return MN_ESTATE;
    if (height == 0) return MN_EINVAL;
    leveldb_writebatch_t *cb = leveldb_writebatch_create(), *b = leveldb_writebatch_create();
    chain_put_block(cb, height, block, block_len, cert, cert_len);
    return write_block(s, cb, b, height, state_root);
}

int mn_store_put_cert(mn_store *s, uint64_t height, const uint8_t *cert, size_t cert_len) {
    if (height == 0 || height > s->height) return MN_EINVAL;
    uint8_t k[16];
    size_t kl = key_height(k, 'C', height);
    char *err = NULL;
    drop_iter(s);
    leveldb_put(s->chain, s->wsync, (const char *)k, kl, (const char *)cert, cert_len, &err);
    if (err) {
        LOG_ERROR("store_write_failed", "err=%s", err);
        leveldb_free(err);
        return MN_EIO;
    }
    return MN_OK;
}

int mn_store_get_block(mn_store *s, uint64_t height, uint8_t **out, size_t *len) {
    if (height > s->height) return MN_ENOTFOUND; /* see mn_store_commit */
    uint8_t k[16];
    size_t kl = key_height(k, 'B', height);
    return mn_store_get(s, k, kl, out, len);
}

int mn_store_get_cert(mn_store *s, uint64_t height, uint8_t **out, size_t *len) {
    if (height > s->height) return MN_ENOTFOUND;
    uint8_t k[16];
    size_t kl = key_height(k, 'C', height);
    return mn_store_get(s, k, kl, out, len);
}

/* Varints: one such entry per transaction, so its bytes count. */
size_t mn_store_tx_location(uint8_t *out, uint64_t height, uint32_t index) {
    size_t n = put_varint(out, height);
    return n + put_varint(out + n, index);
}

int mn_store_get_tx_location(mn_store *s, const uint8_t tx_hash[static MN_HASH_LEN],
                             uint64_t *height, uint32_t *index) {
    uint8_t k[MN_STORE_KEY_MAX], v[MN_STORE_TX_LOC_MAX];
    size_t kl = mn_store_key_tx(k, tx_hash), n = 0;
    int rc = mn_store_get_buf(s, k, kl, v, sizeof v, &n);
    if (rc == MN_ETOOBIG) return MN_ECORRUPT;
    if (rc != MN_OK) return rc;
    const uint8_t *p = v, *end = v + n;
    uint64_t h, i;
    if (!rd_varint(&p, end, &h) || !rd_varint(&p, end, &i) || p != end || i > UINT32_MAX) return MN_ECORRUPT;
    *height = h;
    *index = (uint32_t)i;
    return MN_OK;
}

int mn_store_get_record(mn_store *s, const uint8_t id[static MN_ID_LEN], uint8_t **out,
                        size_t *len) {
    uint8_t k[MN_STORE_KEY_MAX];
    size_t kl = mn_store_key_record(k, id);
    return mn_store_get(s, k, kl, out, len);
}

int mn_store_get_nonce(mn_store *s, const char *signer, uint64_t *nonce) {
    uint8_t k[MN_STORE_KEY_MAX], v[8];
    size_t kl = mn_store_key_nonce(k, signer), n = 0;
    const struct nonce_cached *c = nonce_cached(s, k, kl);
    if (c) {
        *nonce = c->nonce;
        return MN_OK;
    }
    int rc = mn_store_get_buf(s, k, kl, v, sizeof v, &n);
    if (rc == MN_ENOTFOUND) {
        memset(v, 0, sizeof v); /* never signed: remembered as nonce 0 */
        n = 8;
    } else if (rc == MN_ETOOBIG || (rc == MN_OK && n != 8)) {
        return MN_ECORRUPT;
    } else if (rc != MN_OK) {
        return rc;
    }
    nonce_note(s, k, kl, v, n);
    *nonce = mn_get_u64be(v);
    return MN_OK;
}

/* Iterates keys of family fam from start; cb gets key and value. */
typedef int (*iter_cb)(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);

static int iterate(mn_store *s, const uint8_t *start, size_t start_len, char fam, size_t max,
                   iter_cb cb, void *ctx) {
    leveldb_iterator_t *it = leveldb_create_iterator(db_of(s, (uint8_t)fam), s->ropts);
    size_t count = 0;
    for (leveldb_iter_seek(it, (const char *)start, start_len); leveldb_iter_valid(it) && count < max;
         leveldb_iter_next(it)) {
        size_t kl = 0, vl = 0;
        const char *k = leveldb_iter_key(it, &kl);
        if (kl == 0 || k[0] != fam) break;
        const char *v = leveldb_iter_value(it, &vl);
        count++;
        if (cb(ctx, (const uint8_t *)k, kl, (const uint8_t *)v, vl)) break;
    }
    if (iter_close(it) != MN_OK) return MN_EIO;
    return MN_OK;
}

typedef struct { mn_store *s; mn_store_kv_cb cb; void *ctx; int rc; } rec_scan;

/* Hands records out as the callers name them: 'r' id, whole bytes. */
static int rec_adapter(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    rec_scan *r = ctx;
    if (kl != REC_KEY_LEN) {
        r->rc = MN_ECORRUPT;
        return 1;
    }
    const uint8_t *id = k + 1 + REC_KH;
    uint8_t lk[1 + MN_ID_LEN], small[1024];
    lk[0] = 'r';
    memcpy(lk + 1, id, MN_ID_LEN);
    uint8_t txb[MN_HASH_LEN];
    const uint8_t *txh;
    if ((r->rc = rec_tx_hash(r->s, v, vl, txb, &txh)) != MN_OK) return 1;
    size_t n = rec_get_value(id, v, vl, txh, NULL);
    uint8_t *buf = n <= sizeof small ? small : malloc(n);
    if (!buf) {
        r->rc = MN_ENOMEM;
        return 1;
    }
    rec_get_value(id, v, vl, txh, buf);
    int stop = r->cb(r->ctx, lk, sizeof lk, buf, n);
    if (buf != small) free(buf);
    return stop;
}

/* The stored keys of every record (key-hash prefix and id), in their
 * order, which is the key hashes' order: a scan of an index family
 * resolves its ids here by a binary search instead of a seek each (a 10 M
 * snapshot export spent 90 s on those seeks). An id whose prefix one
 * record alone holds is that record's; its holder, type or device are not
 * read again here (the snapshot import checks the indexes against the
 * records), and a prefix several records hold is resolved in the store. */
struct rec_keys {
    rec_key *k;
    size_t n, cap;
    bool oom;
    /* first[b]: the first key whose prefix's first two bytes are b or
     * more (key hashes are uniform: a search then stays in a few pages) */
    size_t first[65537];
};

static unsigned rec_keys_bucket(const uint8_t *prefix, size_t plen) {
    return plen >= 2 ? ((unsigned)prefix[0] << 8) | prefix[1] : (unsigned)prefix[0] << 8;
}

static void rec_keys_index(rec_keys *rk) {
    size_t i = 0;
    for (unsigned b = 0; b < 65536; b++) {
        while (i < rk->n && rec_keys_bucket(rk->k[i], 2) < b) i++;
        rk->first[b] = i;
    }
    rk->first[65536] = rk->n;
}

static int rec_keys_add(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    (void)v;
    (void)vl;
    rec_keys *rk = ctx;
    if (kl != REC_KEY_LEN) return 0; /* not a record key: resolved in the store */
    if (rk->n == rk->cap) {
        size_t nc = rk->cap ? rk->cap * 2 : 1u << 16;
        void *m = realloc(rk->k, nc * sizeof *rk->k);
        if (!m) {
            rk->oom = true;
            return 1;
        }
        rk->k = m;
        rk->cap = nc;
    }
    memcpy(rk->k[rk->n++], k + 1, REC_KH + MN_ID_LEN);
    return 0;
}

static const uint8_t *rec_keys_only(const rec_keys *rk, const uint8_t *prefix, size_t plen) {
    unsigned b = rec_keys_bucket(prefix, plen);
    size_t hi = plen >= 2 ? rk->first[b + 1] : rk->first[b + 256];
    size_t lo = rec_key_lower_bound(rk->k, rk->first[b], hi, prefix, plen);
    if (lo == rk->n || memcmp(rk->k[lo], prefix, plen) != 0) return NULL;
    if (lo + 1 < rk->n && memcmp(rk->k[lo + 1], prefix, plen) == 0) return NULL;
    return rk->k[lo] + REC_KH;
}

/* The record keys, read once for the first index value that names an id
 * by prefix (an imported store names every id whole and needs none).
 * NULL when out of memory: ids are then resolved in the store. */
typedef struct {
    mn_store *s;
    rec_keys *rk;
    bool rk_read;
    mn_store_kv_cb cb;
    void *ctx;
    int rc;
} ix_scan;

static bool ix_all_whole(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    if (is_holder_key(k, kl)) return vl == MN_ID_LEN;
    return vl >= 1 && vl == 1 + (size_t)v[0] + (size_t)v[0] * MN_ID_LEN;
}

static const rec_keys *ix_rec_keys(ix_scan *x) {
    if (x->rk_read) return x->rk;
    x->rk_read = true;
    rec_keys *rk = calloc(1, sizeof *rk);
    uint8_t r = 'r';
    if (!rk || iterate(x->s, &r, 1, 'r', (size_t)-1, rec_keys_add, rk) != MN_OK || rk->oom) {
        if (rk) free(rk->k);
        free(rk);
        return NULL;
    }
    rec_keys_index(rk);
    x->rk = rk;
    return rk;
}

/* Hands index entries out with their ids whole. */
static int ix_adapter(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    ix_scan *x = ctx;
    if (!is_holder_key(k, kl) && !is_device_key(k, kl)) {
        x->rc = MN_ECORRUPT;
        return 1;
    }
    uint8_t *ids = NULL;
    size_t n = 0;
    const rec_keys *rk = ix_all_whole(k, kl, v, vl) ? NULL : ix_rec_keys(x);
    if ((x->rc = ix_decode(x->s, rk, k, kl, v, vl, &ids, &n)) != MN_OK) return 1;
    int stop = x->cb(x->ctx, k, kl, ids, n);
    free(ids);
    return stop;
}

int mn_store_scan(mn_store *s, char fam, mn_store_kv_cb cb, void *ctx) {
    uint8_t start = (uint8_t)fam;
    if (s->ix_prefix && (fam == 'h' || fam == 'd')) {
        ix_scan x = {s, NULL, false, cb, ctx, MN_OK};
        int rc = iterate(s, &start, 1, fam, (size_t)-1, ix_adapter, &x);
        if (x.rk) free(x.rk->k);
        free(x.rk);
        return rc != MN_OK ? rc : x.rc;
    }
    if (fam != 'r') return iterate(s, &start, 1, fam, (size_t)-1, cb, ctx);
    rec_scan r = {s, cb, ctx, MN_OK};
    int rc = iterate(s, &start, 1, fam, (size_t)-1, rec_adapter, &r);
    return rc != MN_OK ? rc : r.rc;
}

typedef struct {
    rec_scan rec;
    mn_store_cursor *cursor;
    size_t left;
    bool looked;  /* the first key seen: the cursor's own one is skipped */
    bool stopped; /* stopped before the family's end */
} cursor_scan;

static int cursor_adapter(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    cursor_scan *c = ctx;
    if (!c->looked) {
        c->looked = true;
        if (c->cursor->len == kl && memcmp(c->cursor->key, k, kl) == 0) return 0;
    }
    if (c->left == 0 || kl > sizeof c->cursor->key) {
        if (c->left != 0) c->rec.rc = MN_ECORRUPT;
        c->stopped = true;
        return 1;
    }
    memcpy(c->cursor->key, k, kl);
    c->cursor->len = kl;
    c->left--;
    if (rec_adapter(&c->rec, k, kl, v, vl)) c->stopped = true;
    return c->stopped;
}

int mn_store_scan_records(mn_store *s, mn_store_cursor *cursor, size_t max, mn_store_kv_cb cb, void *ctx,
                          bool *done) {
    *done = false;
    cursor_scan c = {.rec = {s, cb, ctx, MN_OK}, .cursor = cursor, .left = max};
    uint8_t first = 'r';
    int rc = cursor->len ? iterate(s, cursor->key, cursor->len, 'r', (size_t)-1, cursor_adapter, &c)
                         : iterate(s, &first, 1, 'r', (size_t)-1, cursor_adapter, &c);
    if (rc != MN_OK) return rc;
    if (c.rec.rc != MN_OK) return c.rec.rc;
    *done = !c.stopped;
    return MN_OK;
}

typedef struct {
    mn_store_change_cb cb;
    void *ctx;
    uint64_t height;
    size_t left; /* changes still wanted */
} change_ctx;

static int change_one(void *ctx, const uint8_t *change, size_t len) {
    change_ctx *c = ctx;
    c->left--;
    return c->cb(c->ctx, c->height, change, len) || c->left == 0;
}

int mn_store_status_changes(mn_store *s, uint64_t from_height, size_t max, mn_store_change_cb cb,
                            void *ctx) {
    uint8_t start[16];
    size_t sl = key_height(start, 'W', from_height);
    change_ctx c = {cb, ctx, 0, max};
    int rc = MN_OK;
    bool stop = max == 0;
    leveldb_iterator_t *it = leveldb_create_iterator(s->chain, s->ropts);
    for (leveldb_iter_seek(it, (const char *)start, sl); !stop && leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kl = 0, vl = 0;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &kl);
        if (kl < 9 || k[0] != 'W' || mn_get_u64be(k + 1) > s->height) break;
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
        if (kl == 13) { /* a change stored on its own */
            c.height = mn_get_u64be(k + 1);
            stop = change_one(&c, v, vl);
        } else if (kl == 9) { /* a block's changes (see above) */
            c.height = mn_get_u64be(k + 1);
            uint8_t *blk = NULL;
            size_t blk_len = 0;
            rc = mn_store_get_block(s, c.height, &blk, &blk_len);
            if (rc == MN_ENOTFOUND) rc = MN_OK; /* then the entry names no transaction by index */
            block_txs bt = {0};
            if (rc == MN_OK) rc = block_txs_load(&bt, blk, blk_len);
            if (rc == MN_OK) rc = wlog_decode(c.height, v, vl, &bt, 0, change_one, &c, &stop, NULL);
            block_txs_free(&bt);
            free(blk);
            if (rc != MN_OK) break;
        }
    }
    if (iter_close(it) != MN_OK) return MN_EIO;
    if (rc == MN_ECORRUPT) LOG_ERROR("store_changes_corrupt", "height=%llu", (unsigned long long)c.height);
    return rc;
}

typedef struct { mn_store_blob_cb cb; void *ctx; } blob_ctx;

static int blob_adapter(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    (void)k;
    (void)kl;
    blob_ctx *c = ctx;
    return c->cb(c->ctx, v, vl);
}

/* One key written with a synced write: durable when this returns. */
static int put_synced(mn_store *s, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, const char *event) {
    char *err = NULL;
    drop_iter(s);
    leveldb_put(s->db, s->wsync, (const char *)k, kl, (const char *)v, vl, &err);
    if (err) {
        LOG_ERROR(event, "err=%s", err);
        leveldb_free(err);
        return MN_EIO;
    }
    return MN_OK;
}

int mn_store_votelog_put(mn_store *s, uint64_t height, const uint8_t *entry, size_t len) {
    mn_store_votelog_entry e = {.height = height, .data = entry, .len = len};
    return mn_store_votelog_append(s, &e, 1);
}

int mn_store_votelog_append(mn_store *s, const mn_store_votelog_entry *entries, size_t count) {
    if (count == 0) return MN_EINVAL;
    /* (leveldb_put is itself a batch of one: no cheaper path for one entry) */
    leveldb_writebatch_t *b = leveldb_writebatch_create();
    for (size_t i = 0; i < count; i++) {
        uint8_t k[17];
        k[0] = 'V';
        mn_put_u64be(k + 1, entries[i].height);
        mn_put_u64be(k + 9, s->vote_seq + 1 + i);
        leveldb_writebatch_put(b, (const char *)k, sizeof k, (const char *)entries[i].data, entries[i].len);
    }
    int rc = write_batch(s, s->db, b);
    leveldb_writebatch_destroy(b);
    if (rc == MN_OK) s->vote_seq += count;
    return rc;
}

int mn_store_votelog_list(mn_store *s, mn_store_blob_cb cb, void *ctx) {
    uint8_t k[1] = {'V'};
    blob_ctx c = {cb, ctx};
    return iterate(s, k, 1, 'V', SIZE_MAX, blob_adapter, &c);
}

typedef struct { leveldb_writebatch_t *b; uint64_t below; size_t n; } prune_ctx;

static int prune_adapter(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    (void)v;
    (void)vl;
    prune_ctx *p = ctx;
    if (kl != 17 || mn_get_u64be(k + 1) >= p->below) return 1;
    leveldb_writebatch_delete(p->b, (const char *)k, kl);
    p->n++;
    return 0;
}

int mn_store_votelog_prune(mn_store *s, uint64_t height) {
    uint8_t k[1] = {'V'};
    prune_ctx p = {leveldb_writebatch_create(), height, 0};
    int rc = iterate(s, k, 1, 'V', SIZE_MAX, prune_adapter, &p);
    if (rc == MN_OK && p.n > 0) rc = write_batch(s, s->db, p.b);
    leveldb_writebatch_destroy(p.b);
    return rc;
}

int mn_store_evidence_put(mn_store *s, const uint8_t *ev, size_t len) {
    uint8_t k[9];
    size_t kl = key_height(k, 'E', s->ev_seq + 1);
    int rc = put_synced(s, k, kl, ev, len, "evidence_write_failed");
    if (rc == MN_OK) s->ev_seq++;
    return rc;
}

int mn_store_evidence_list(mn_store *s, mn_store_blob_cb cb, void *ctx) {
    uint8_t k[1] = {'E'};
    blob_ctx c = {cb, ctx};
    return iterate(s, k, 1, 'E', SIZE_MAX, blob_adapter, &c);
}

uint64_t mn_store_approx_bytes(mn_store *s) {
    drop_iter(s); /* it would keep the tables compaction replaces */
    const char *start = "\x00";
    const char *limit = "\xff\xff";
    size_t sl = 1, ll = 2;
    uint64_t size = 0, chain = 0;
    leveldb_compact_range(s->db, NULL, 0, NULL, 0);
    leveldb_approximate_sizes(s->db, 1, &start, &sl, &limit, &ll, &size);
    leveldb_compact_range(s->chain, NULL, 0, NULL, 0);
    leveldb_approximate_sizes(s->chain, 1, &start, &sl, &limit, &ll, &chain);
    return size + chain;
}

static int db_stats(mn_store *s, leveldb_t *db, mn_store_fam_stat out[static 256]) {
    leveldb_iterator_t *it = leveldb_create_iterator(db, s->ropts);
    bool seen[256] = {false};
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kl = 0, vl = 0;
        const char *k = leveldb_iter_key(it, &kl);
        (void)leveldb_iter_value(it, &vl);
        uint8_t fam = kl ? (uint8_t)k[0] : 0;
        mn_store_fam_stat *f = &out[fam];
        seen[fam] = true;
        f->entries++;
        f->key_bytes += kl;
        f->value_bytes += vl;
    }
    if (iter_close(it) != MN_OK) return MN_EIO;
    for (int b = 0; b < 256; b++) {
        if (!seen[b]) continue;
        char lo[1] = {(char)b}, hi[2] = {(char)b, (char)0xff};
        const char *start = lo, *limit = hi;
        size_t sl = 1, ll = 2;
        uint64_t bytes = 0;
        /* [b, b 0xff) misses keys starting b 0xff; they are rare enough for an estimate */
        leveldb_approximate_sizes(db, 1, &start, &sl, &limit, &ll, &bytes);
        out[b].table_bytes += bytes;
    }
    return MN_OK;
}

int mn_store_stats(mn_store *s, mn_store_fam_stat out[static 256]) {
    memset(out, 0, 256 * sizeof *out);
    int rc = db_stats(s, s->db, out);
    return rc == MN_OK ? db_stats(s, s->chain, out) : rc;
}

int mn_store_compact(mn_store *s) {
    drop_iter(s); /* it would keep the tables compaction replaces */
    leveldb_compact_range(s->db, NULL, 0, NULL, 0);
    leveldb_compact_range(s->chain, NULL, 0, NULL, 0);
    return MN_OK;
}
