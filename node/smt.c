/* smt.c: sparse Merkle tree over the ledger state: batch updates, lookups
 * and proofs (definitions in smt.h). Nodes live at positions; an update
 * walks only the subtrees its keys touch, reading each touched node once. */
#include "smt.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

typedef struct smt_node {
    uint8_t type; /* 0 empty, 'L' leaf (a key, b value hash), 'I' internal (a left, b right) */
    uint8_t a[MN_HASH_LEN];
    uint8_t b[MN_HASH_LEN];
    uint8_t h[MN_HASH_LEN]; /* this node's hash */
    bool implicit;          /* a leaf with no stored entry (smt.h) */
    bool partial;           /* an implicit leaf of which only a[0..8) is known (b is not) */
    uint8_t hint;           /* internal: bit 0 (1) the left (right) child is an implicit leaf */
} smt_node;

typedef struct smt_ctx {
    const mn_smt_src *src;
    mn_kvmap *writes;         /* may be NULL for reads */
    const mn_smt_sink *sink;  /* instead of writes (mn_smt_update_to) */
    const mn_kvmap *reads;    /* overlay consulted before src */
    bool partial_ok;          /* an update: implicit leaves may come from src->leaf_prefix */
} smt_ctx;

#define PARTIAL_KEY_BYTES 8

/* SHA-256 through the incremental interface: for the many short inputs
 * here it avoids the per-call digest lookup of the one-shot call (4x faster). */
static void sha(uint8_t out[static MN_HASH_LEN], const void *data, size_t len) {
    mn_sha256_ctx c;
    mn_sha256_init(&c);
    mn_sha256_update(&c, data, len);
    mn_sha256_final(&c, out);
}

static const uint8_t zero32[MN_HASH_LEN];

static inline int key_bit(const uint8_t *k, unsigned d) { return (k[d >> 3] >> (7 - (d & 7))) & 1; }

static inline void set_bit(uint8_t *k, unsigned d, int v) {
    uint8_t m = (uint8_t)(1u << (7 - (d & 7)));
    if (v)
        k[d >> 3] |= m;
    else
        k[d >> 3] &= (uint8_t)~m;
}

size_t mn_smt_pos_key(uint8_t out[static MN_SMT_POS_KEY_MAX], unsigned depth,
                      const uint8_t key[static MN_HASH_LEN]) {
    assert(depth <= MN_SMT_DEPTH_MAX);
    out[0] = MN_SMT_PREFIX;
    out[1] = (uint8_t)(depth >> 8);
    out[2] = (uint8_t)depth;
    size_t nb = (depth + 7) / 8;
    memcpy(out + 3, key, nb);
    if (depth & 7) out[3 + nb - 1] &= (uint8_t)(0xFF << (8 - (depth & 7)));
    return 3 + nb;
}

bool mn_smt_pos_depth(const uint8_t *pos, size_t len, unsigned *depth) {
    if (len < 3 || pos[0] != MN_SMT_PREFIX) return false;
    unsigned d = ((unsigned)pos[1] << 8) | pos[2];
    if (d > MN_SMT_DEPTH_MAX || len != 3 + (d + 7) / 8) return false;
    *depth = d;
    return true;
}

static void inner_hash(uint8_t out[static MN_HASH_LEN], const uint8_t *l, const uint8_t *r) {
    uint8_t buf[1 + 2 * MN_HASH_LEN];
    buf[0] = 0x01;
    memcpy(buf + 1, l, MN_HASH_LEN);
    memcpy(buf + 1 + MN_HASH_LEN, r, MN_HASH_LEN);
    sha(out, buf, sizeof buf);
}

static void make_leaf(smt_node *n, const uint8_t *k, const uint8_t *vh, bool implicit) {
    n->type = 'L';
    n->implicit = implicit;
    n->partial = false;
    memcpy(n->a, k, MN_HASH_LEN);
    memcpy(n->b, vh, MN_HASH_LEN);
    mn_smt_leaf_hash(n->h, k, vh);
}

static void make_inner(smt_node *n, const smt_node *l, const smt_node *r) {
    n->type = 'I';
    n->implicit = false;
    n->partial = false;
    n->hint = (uint8_t)((l->implicit ? 1 : 0) | (r->implicit ? 2 : 0));
    memcpy(n->a, l->h, MN_HASH_LEN);
    memcpy(n->b, r->h, MN_HASH_LEN);
    inner_hash(n->h, n->a, n->b);
}

static void make_empty(smt_node *n) { memset(n, 0, sizeof *n); }

/* Stored type bytes of an internal node by its hint (smt.h). */
static const uint8_t inner_types[4] = {MN_SMT_INNER, MN_SMT_INNER_L, MN_SMT_INNER_R, MN_SMT_INNER_LR};

/* Reads the node at (depth, path) whose hash the parent records as want;
 * implicit: the parent says it is an implicit leaf. In an update, such a
 * leaf may come back partial (src->leaf_prefix); load_whole never does. */
static int load_as(const smt_ctx *c, unsigned depth, const uint8_t *path, const uint8_t *want, bool implicit,
                   bool partial_ok, smt_node *out) {
    if (memcmp(want, zero32, MN_HASH_LEN) == 0) {
        make_empty(out);
        return MN_OK;
    }
    uint8_t pk[MN_SMT_POS_KEY_MAX];
    size_t pl = mn_smt_pos_key(pk, depth, path);
    uint8_t raw[MN_SMT_NODE_LEN];
    const uint8_t *v = NULL;
    size_t vl = 0;
    int st = MN_KV_ABSENT;
    bool trusted = false;
    if (c->writes) st = mn_kv_get(c->writes, pk, pl, &v, &vl);
    if (st == MN_KV_ABSENT && c->reads) st = mn_kv_get(c->reads, pk, pl, &v, &vl);
    if (st == MN_KV_DELETED) return MN_ECORRUPT;
    if (st == MN_KV_ABSENT && implicit && partial_ok && c->src->leaf_prefix) {
        uint8_t prefix[PARTIAL_KEY_BYTES];
        if (c->src->leaf_prefix(c->src->ctx, pk, pl, prefix) == MN_OK) {
            memset(out, 0, sizeof *out);
            out->type = 'L';
            out->implicit = true;
            out->partial = true;
            memcpy(out->a, prefix, PARTIAL_KEY_BYTES);
            memcpy(out->h, want, MN_HASH_LEN);
            return MN_OK;
        }
    }
    if (st == MN_KV_VALUE) {
        if (vl != MN_SMT_NODE_LEN) return MN_ECORRUPT;
        memcpy(raw, v, MN_SMT_NODE_LEN);
    } else {
        /* An implicit leaf has no entry: asking for one first would cost a
         * failed lookup. */
        int rc = implicit && c->src->leaf ? c->src->leaf(c->src->ctx, pk, pl, raw)
                                          : c->src->get(c->src->ctx, pk, pl, raw);
        if (rc == MN_ENOTFOUND) return MN_ECORRUPT; /* the parent says it exists */
        if (rc != MN_OK && rc != MN_SMT_TRUSTED) return rc;
        trusted = rc == MN_SMT_TRUSTED;
    }
    out->type = raw[0];
    out->implicit = false;
    out->partial = false;
    out->hint = 0;
    if (out->type == MN_SMT_IMPLICIT && st != MN_KV_VALUE) { /* derived by the source, never in a write set */
        out->type = 'L';
        out->implicit = true;
    }
    for (uint8_t i = 1; i < 4; i++)
        if (out->type == inner_types[i]) {
            out->type = 'I';
            out->hint = i;
        }
    memcpy(out->a, raw + 1, MN_HASH_LEN);
    memcpy(out->b, raw + 1 + MN_HASH_LEN, MN_HASH_LEN);
    if (trusted && (out->type == 'L' || out->type == 'I')) {
        memcpy(out->h, want, MN_HASH_LEN);
        return MN_OK;
    }
    if (out->type == 'L')
        mn_smt_leaf_hash(out->h, out->a, out->b);
    else if (out->type == 'I')
        inner_hash(out->h, out->a, out->b);
    else
        return MN_ECORRUPT;
    if (memcmp(out->h, want, MN_HASH_LEN) != 0) return MN_ECORRUPT;
    return MN_OK;
}

static int load(const smt_ctx *c, unsigned depth, const uint8_t *path, const uint8_t *want, bool implicit,
                smt_node *out) {
    return load_as(c, depth, path, want, implicit, c->partial_ok, out);
}

static int load_whole(const smt_ctx *c, unsigned depth, const uint8_t *path, const uint8_t *want, bool implicit,
                      smt_node *out) {
    return load_as(c, depth, path, want, implicit, false, out);
}

static int del_node(smt_ctx *c, unsigned depth, const uint8_t *path);

/* load() for a child that only item it goes to: an implicit leaf the item
 * names (mn_smt_item.has_old) is rebuilt from the item, which saves the
 * source a read (for records, a seek in the store). */
static int load_child(const smt_ctx *c, unsigned depth, const uint8_t *path, const uint8_t *want, bool implicit,
                      const mn_smt_item *it, size_t n, smt_node *out) {
    if (implicit && n == 1 && it[0].has_old) {
        uint8_t h[MN_HASH_LEN];
        mn_smt_leaf_hash(h, it[0].key_hash, it[0].old_value_hash);
        if (memcmp(h, want, MN_HASH_LEN) == 0) {
            make_leaf(out, it[0].key_hash, it[0].old_value_hash, true);
            out->hint = 0;
            return MN_OK;
        }
    }
    return load(c, depth, path, want, implicit, out);
}

/* Has an entry of its own at its position. */
static bool stored(const smt_node *n) { return n->type == 'I' || (n->type == 'L' && !n->implicit); }

/* Writes n at its position, where old was: an implicit leaf is not
 * written, but takes the place of what was stored there. */
static int put_node(smt_ctx *c, unsigned depth, const uint8_t *path, const smt_node *old, const smt_node *n) {
    if (!stored(n)) return old && stored(old) ? del_node(c, depth, path) : MN_OK;
    assert(!n->partial);
    uint8_t pk[MN_SMT_POS_KEY_MAX];
    size_t pl = mn_smt_pos_key(pk, depth, path);
    uint8_t raw[MN_SMT_NODE_LEN];
    assert(n->type == 'L' || n->type == 'I');
    raw[0] = n->type == 'I' ? inner_types[n->hint & 3] : n->type;
    memcpy(raw + 1, n->a, MN_HASH_LEN);
    memcpy(raw + 1 + MN_HASH_LEN, n->b, MN_HASH_LEN);
    if (c->sink) return c->sink->put(c->sink->ctx, pk, pl, raw);
    return mn_kv_put(c->writes, pk, pl, raw, sizeof raw);
}

static int del_node(smt_ctx *c, unsigned depth, const uint8_t *path) {
    uint8_t pk[MN_SMT_POS_KEY_MAX];
    size_t pl = mn_smt_pos_key(pk, depth, path);
    if (c->sink) return c->sink->put(c->sink->ctx, pk, pl, NULL);
    return mn_kv_del(c->writes, pk, pl);
}

/* Index of the first item whose bit d is 1 (items share bits < d, sorted). */
static size_t split_at(const mn_smt_item *it, size_t n, unsigned d) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_bit(it[mid].key_hash, d))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Writes a child at depth d+1 unless it is unchanged; deletes it when empty. */
static int place_child(smt_ctx *c, unsigned d1, const uint8_t *path, const smt_node *old,
                       const smt_node *nw) {
    if (nw->type == 0) return stored(old) ? del_node(c, d1, path) : MN_OK;
    if (old->type == nw->type && memcmp(old->h, nw->h, MN_HASH_LEN) == 0) return MN_OK;
    return put_node(c, d1, path, old, nw);
}

/* Builds the subtree at depth d from the live items plus an optional extra
 * leaf (not among the items). Writes descendants, not position d itself. */
static int build(smt_ctx *c, unsigned d, const uint8_t *path, const mn_smt_item *it, size_t n,
                 const smt_node *extra, smt_node *out) {
    size_t live = extra ? 1 : 0;
    const mn_smt_item *one = NULL;
    for (size_t i = 0; i < n && live < 2; i++)
        if (!it[i].remove) {
            live++;
            one = &it[i];
        }
    if (live == 0) {
        make_empty(out);
        return MN_OK;
    }
    if (live == 1) {
        if (one)
            make_leaf(out, one->key_hash, one->value_hash, one->implicit);
        else
            *out = *extra;
        return MN_OK;
    }
    assert(d < MN_SMT_DEPTH_MAX); /* distinct keys part before bit 256 */
    size_t s = split_at(it, n, d);
    const smt_node *xl = NULL, *xr = NULL;
    if (extra) {
        if (key_bit(extra->a, d))
            xr = extra;
        else
            xl = extra;
    }
    uint8_t lp[MN_HASH_LEN], rp[MN_HASH_LEN];
    memcpy(lp, path, MN_HASH_LEN);
    memcpy(rp, path, MN_HASH_LEN);
    set_bit(lp, d, 0);
    set_bit(rp, d, 1);
    smt_node l, r, none;
    make_empty(&none);
    int rc = build(c, d + 1, lp, it, s, xl, &l);
    if (rc == MN_OK) rc = build(c, d + 1, rp, it + s, n - s, xr, &r);
    if (rc != MN_OK) return rc;
    /* Both sides non-empty, or one side holds at least two leaves: canonical. */
    if ((l.type == 0 && r.type == 'L') || (r.type == 0 && l.type == 'L') ||
        (l.type == 0 && r.type == 0)) {
        /* cannot happen: live >= 2 leaves below */
        assert(0);
        return MN_ECORRUPT;
    }
    if ((rc = place_child(c, d + 1, lp, &none, &l)) != MN_OK) return rc;
    if ((rc = place_child(c, d + 1, rp, &none, &r)) != MN_OK) return rc;
    make_inner(out, &l, &r);
    return MN_OK;
}

static int find_item(const mn_smt_item *it, size_t n, const uint8_t *key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(it[mid].key_hash, key, MN_HASH_LEN);
        if (cmp == 0) return 1;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Whether a key of it[0..n) starts with the 8 bytes of a partial leaf's key:
 * only then does the update need the rest of it. */
static bool shares_prefix(const mn_smt_item *it, size_t n, const uint8_t *prefix) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(it[i].key_hash, prefix, PARTIAL_KEY_BYTES) == 0) return true;
    return false;
}

/* Type of a child an update does not descend into: its hash (from the
 * parent) and whether it is an implicit leaf are all the parent's new hash
 * needs, so it is not read. Never written, never returned by upd. */
#define UNREAD 'U'

static int untouched(const uint8_t *want, bool implicit, smt_node *out) {
    if (memcmp(want, zero32, MN_HASH_LEN) == 0) {
        make_empty(out);
        return MN_OK;
    }
    out->type = UNREAD;
    out->implicit = implicit;
    out->partial = false;
    out->hint = 0;
    memcpy(out->h, want, MN_HASH_LEN);
    return MN_OK;
}

/* How many levels ahead of an update's descent a lone key's path is
 * prefetched: its slots, then (nearer) its entries. */
#define PREFETCH_SLOT_AHEAD 4
#define PREFETCH_ENTRY_AHEAD 2

/* Below depth d one key is left: its path is known, so the source can
 * fetch the nodes further down while this level is read. */
static void prefetch_path(const smt_ctx *c, unsigned d, const uint8_t *key) {
    static const unsigned ahead[2] = {PREFETCH_SLOT_AHEAD, PREFETCH_ENTRY_AHEAD};
    for (int stage = 0; stage < 2; stage++) {
        unsigned depth = d + ahead[stage];
        if (depth > MN_SMT_DEPTH_MAX) continue;
        uint8_t pk[MN_SMT_POS_KEY_MAX];
        size_t pl = mn_smt_pos_key(pk, depth, key);
        c->src->prefetch(c->src->ctx, pk, pl, stage);
    }
}

static int upd(smt_ctx *c, unsigned d, const uint8_t *path, const smt_node *old,
               const mn_smt_item *it, size_t n, smt_node *out) {
    if (n == 0) {
        *out = *old;
        return MN_OK;
    }
    if (old->type == 0) return build(c, d, path, it, n, NULL, out);
    if (old->type == 'L') {
        smt_node whole;
        if (old->partial && shares_prefix(it, n, old->a)) {
            int rc = load_whole(c, d, path, old->h, true, &whole);
            if (rc != MN_OK) return rc;
            old = &whole;
        }
        const smt_node *extra = find_item(it, n, old->a) ? NULL : old;
        return build(c, d, path, it, n, extra, out);
    }
    assert(old->type == 'I' && d < MN_SMT_DEPTH_MAX);
    if (n == 1 && c->src->prefetch) prefetch_path(c, d, it[0].key_hash);
    uint8_t lp[MN_HASH_LEN], rp[MN_HASH_LEN];
    memcpy(lp, path, MN_HASH_LEN);
    memcpy(rp, path, MN_HASH_LEN);
    set_bit(lp, d, 0);
    set_bit(rp, d, 1);
    size_t s = split_at(it, n, d);
    smt_node lo, ro, ln, rn;
    /* A side no item goes to keeps its hash and stays unread, unless the
     * other side empties and whether it can move up depends on its type. */
    int rc = s > 0 ? load_child(c, d + 1, lp, old->a, old->hint & 1, it, s, &lo)
                   : untouched(old->a, old->hint & 1, &lo);
    if (rc == MN_OK)
        rc = n - s > 0 ? load_child(c, d + 1, rp, old->b, old->hint & 2, it + s, n - s, &ro)
                       : untouched(old->b, old->hint & 2, &ro);
    if (rc == MN_OK) rc = upd(c, d + 1, lp, &lo, it, s, &ln);
    if (rc == MN_OK) rc = upd(c, d + 1, rp, &ro, it + s, n - s, &rn);
    if (rc == MN_OK && ln.type == 0 && rn.type == UNREAD) {
        rc = load(c, d + 1, rp, old->b, old->hint & 2, &ro);
        rn = ro;
    }
    if (rc == MN_OK && rn.type == 0 && ln.type == UNREAD) {
        rc = load(c, d + 1, lp, old->a, old->hint & 1, &lo);
        ln = lo;
    }
    if (rc != MN_OK) return rc;
    bool collapse = (ln.type == 0 && rn.type != 'I') || (rn.type == 0 && ln.type != 'I');
    if (collapse) {
        if (stored(&lo) && (rc = del_node(c, d + 1, lp)) != MN_OK) return rc;
        if (stored(&ro) && (rc = del_node(c, d + 1, rp)) != MN_OK) return rc;
        *out = ln.type ? ln : rn;
        return MN_OK;
    }
    if ((rc = place_child(c, d + 1, lp, &lo, &ln)) != MN_OK) return rc;
    if ((rc = place_child(c, d + 1, rp, &ro, &rn)) != MN_OK) return rc;
    make_inner(out, &ln, &rn);
    return MN_OK;
}

typedef struct { mn_smt_item item; size_t idx; } sort_ent;

static int sort_cmp(const void *x, const void *y) {
    const sort_ent *a = x, *b = y;
    int c = memcmp(a->item.key_hash, b->item.key_hash, MN_HASH_LEN);
    if (c) return c;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

/* Sorts items by key, a later item of a key replacing an earlier one;
 * *m gets how many are left. Items already strictly in key order (a
 * build from sorted records) are left as they are. */
static int sort_items(mn_smt_item *items, size_t n, size_t *m) {
    size_t i = 1;
    while (i < n && memcmp(items[i - 1].key_hash, items[i].key_hash, MN_HASH_LEN) < 0) i++;
    if (i >= n) {
        *m = n;
        return MN_OK;
    }
    sort_ent *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return MN_ENOMEM;
    for (i = 0; i < n; i++) {
        tmp[i].item = items[i];
        tmp[i].idx = i;
    }
    qsort(tmp, n, sizeof *tmp, sort_cmp);
    size_t k = 0;
    for (i = 0; i < n; i++) {
        if (i + 1 < n && memcmp(tmp[i].item.key_hash, tmp[i + 1].item.key_hash, MN_HASH_LEN) == 0)
            continue; /* a later write of the same key wins */
        items[k++] = tmp[i].item;
    }
    free(tmp);
    *m = k;
    return MN_OK;
}

static int update(smt_ctx *c, const uint8_t root_in[static MN_HASH_LEN], mn_smt_item *items, size_t n,
                  uint8_t root_out[static MN_HASH_LEN]) {
    size_t m = 0;
    int rc = sort_items(items, n, &m);
    if (rc != MN_OK) return rc;
    smt_node root, nr;
    rc = load(c, 0, zero32, root_in, false, &root);
    if (rc == MN_OK) rc = upd(c, 0, zero32, &root, items, m, &nr);
    if (rc != MN_OK) return rc;
    if (m > 0) {
        if (nr.type == 0) {
            if (stored(&root) && (rc = del_node(c, 0, zero32)) != MN_OK) return rc;
        } else if (!(root.type == nr.type && memcmp(root.h, nr.h, MN_HASH_LEN) == 0)) {
            if ((rc = put_node(c, 0, zero32, &root, &nr)) != MN_OK) return rc;
        }
    }
    memcpy(root_out, nr.h, MN_HASH_LEN);
    return MN_OK;
}

int mn_smt_update(const mn_smt_src *src, mn_kvmap *writes,
                  const uint8_t root_in[static MN_HASH_LEN], mn_smt_item *items, size_t n,
                  uint8_t root_out[static MN_HASH_LEN]) {
    smt_ctx c = {.src = src, .writes = writes, .sink = NULL, .reads = NULL, .partial_ok = true};
    return update(&c, root_in, items, n, root_out);
}

int mn_smt_update_to(const mn_smt_src *src, const mn_smt_sink *sink,
                     const uint8_t root_in[static MN_HASH_LEN], mn_smt_item *items, size_t n,
                     uint8_t root_out[static MN_HASH_LEN]) {
    smt_ctx c = {.src = src, .writes = NULL, .sink = sink, .reads = NULL, .partial_ok = true};
    return update(&c, root_in, items, n, root_out);
}

/* Walks from the root towards key; calls back nothing, fills the proof
 * pieces when p is given. Ends on the empty slot or the leaf where the key
 * would be. */
static int walk(const mn_smt_src *src, const mn_kvmap *writes, const uint8_t *root,
                const uint8_t *key, smt_node *end, unsigned *depth,
                uint8_t sib[][MN_HASH_LEN], uint8_t bitmap[MN_HASH_LEN], size_t *nsib) {
    smt_ctx c = {.src = src, .writes = NULL, .sink = NULL, .reads = writes};
    smt_node cur;
    int rc = load(&c, 0, key, root, false, &cur);
    unsigned d = 0;
    if (bitmap) memset(bitmap, 0, MN_HASH_LEN);
    if (nsib) *nsib = 0;
    while (rc == MN_OK && cur.type == 'I') {
        if (d >= MN_SMT_DEPTH_MAX) return MN_ECORRUPT;
        int bit = key_bit(key, d);
        const uint8_t *s = bit ? cur.a : cur.b;
        const uint8_t *child = bit ? cur.b : cur.a;
        if (sib) {
            if (memcmp(s, zero32, MN_HASH_LEN) == 0)
                set_bit(bitmap, d, 1);
            else
                memcpy(sib[(*nsib)++], s, MN_HASH_LEN);
        }
        uint8_t want[MN_HASH_LEN];
        memcpy(want, child, MN_HASH_LEN);
        bool implicit = cur.hint & (bit ? 2 : 1);
        d++;
        rc = load(&c, d, key, want, implicit, &cur);
    }
    if (rc != MN_OK) return rc;
    *end = cur;
    *depth = d;
    return MN_OK;
}

int mn_smt_get(const mn_smt_src *src, const mn_kvmap *writes,
               const uint8_t root[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
               uint8_t value_hash[MN_HASH_LEN]) {
    smt_node end;
    unsigned d;
    int rc = walk(src, writes, root, key_hash, &end, &d, NULL, NULL, NULL);
    if (rc != MN_OK) return rc;
    if (end.type != 'L' || memcmp(end.a, key_hash, MN_HASH_LEN) != 0) return MN_ENOTFOUND;
    if (value_hash) memcpy(value_hash, end.b, MN_HASH_LEN);
    return MN_OK;
}

static int dup_bytes(ProtobufCBinaryData *b, const uint8_t *p, size_t n) {
    b->data = malloc(n ? n : 1);
    if (!b->data) return MN_ENOMEM;
    memcpy(b->data, p, n);
    b->len = n;
    return MN_OK;
}

void mn_smt_proof_clear(Midnode__MerkleProof *p) {
    if (!p) return;
    free(p->key_hash.data);
    free(p->empty_bitmap.data);
    free(p->other_key_hash.data);
    free(p->other_value_hash.data);
    for (size_t i = 0; i < p->n_siblings; i++) free(p->siblings[i].data);
    free(p->siblings);
    midnode__merkle_proof__init(p);
}

int mn_smt_prove(const mn_smt_src *src, const mn_kvmap *writes,
                 const uint8_t root[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
                 Midnode__MerkleProof *out) {
    uint8_t(*sib)[MN_HASH_LEN] = malloc(MN_SMT_DEPTH_MAX * MN_HASH_LEN);
    if (!sib) return MN_ENOMEM;
    uint8_t bitmap[MN_HASH_LEN];
    size_t nsib = 0;
    smt_node end;
    unsigned d = 0;
    int rc = walk(src, writes, root, key_hash, &end, &d, sib, bitmap, &nsib);
    if (rc != MN_OK) {
        free(sib);
        return rc;
    }
    midnode__merkle_proof__init(out);
    out->depth = d;
    rc = dup_bytes(&out->key_hash, key_hash, MN_HASH_LEN);
    if (rc == MN_OK) rc = dup_bytes(&out->empty_bitmap, bitmap, MN_HASH_LEN);
    if (rc == MN_OK && nsib > 0) {
        out->siblings = calloc(nsib, sizeof(ProtobufCBinaryData));
        if (!out->siblings) rc = MN_ENOMEM;
        for (size_t i = 0; rc == MN_OK && i < nsib; i++) {
            rc = dup_bytes(&out->siblings[i], sib[i], MN_HASH_LEN);
            if (rc == MN_OK) out->n_siblings = i + 1;
        }
    }
    if (rc == MN_OK && end.type == 'L' && memcmp(end.a, key_hash, MN_HASH_LEN) != 0) {
        rc = dup_bytes(&out->other_key_hash, end.a, MN_HASH_LEN);
        if (rc == MN_OK) rc = dup_bytes(&out->other_value_hash, end.b, MN_HASH_LEN);
    }
    free(sib);
    if (rc != MN_OK) mn_smt_proof_clear(out);
    return rc;
}
