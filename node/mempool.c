/* mempool.c: pending transactions, indexed by hash, arrival and (signer, nonce).
 *
 * Three intrusive lists thread every entry: the arrival list (all entries,
 * oldest first), the gossip queue (entries not yet gossiped) and its
 * signer's nonce list (ascending nonce). The tx-hash index is an
 * open-addressing table sized once at twice txs_max, with backward-shift
 * deletion so it never fills with tombstones. Signers live in a small
 * chained table and are freed when their last entry leaves. */
#include "mempool.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct signer;

struct entry {
    struct entry *arr_prev, *arr_next;       /* arrival list */
    struct entry *gos_prev, *gos_next;       /* gossip queue, when queued */
    struct entry *non_prev, *non_next;       /* signer's nonce list */
    struct signer *signer;
    uint64_t nonce;
    uint8_t hash[MN_HASH_LEN];
    bool queued;                             /* in the gossip queue */
    size_t len;
    uint8_t tx[];
};

struct signer {
    struct signer *chain;                    /* bucket chain */
    struct entry *head, *tail;               /* ascending nonce */
    size_t count;
    /* Walk state of one mn_mempool_take call (valid when epoch matches). */
    uint64_t epoch;
    uint64_t expect;                         /* next nonce the walk may emit */
    struct entry *cursor;                    /* first entry not yet emitted */
    bool blocked;
    char id[MN_MEMBER_ID_MAX + 1];
};

struct mn_mempool {
    struct mn_mempool_config cfg;
    struct entry **slots;                    /* hash index, power of two */
    size_t slots_mask;
    struct signer **buckets;
    size_t buckets_mask;
    struct entry *arr_head, *arr_tail;
    struct entry *gos_head, *gos_tail;
    size_t count, bytes, signers;
    uint64_t epoch;
};

static size_t pow2_at_least(size_t n) {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

static size_t hash_slot(const struct mn_mempool *mp, const uint8_t *hash) {
    uint64_t k;
    memcpy(&k, hash, sizeof k); /* SHA-256 output: uniform bits */
    return (size_t)k & mp->slots_mask;
}

static size_t name_bucket(const struct mn_mempool *mp, const char *id) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return (size_t)h & mp->buckets_mask;
}

struct mn_mempool *mn_mempool_new(const struct mn_mempool_config *cfg, char *err, size_t err_len) {
    struct mn_mempool_config c = {0};
    if (cfg) c = *cfg;
    if (c.txs_max == 0) c.txs_max = MN_MEMPOOL_TXS_DEFAULT;
    if (c.bytes_max == 0) c.bytes_max = MN_MEMPOOL_BYTES_DEFAULT;
    if (c.per_signer_max == 0) c.per_signer_max = MN_MEMPOOL_PER_SIGNER_DEFAULT;
    if (c.txs_max > MN_MEMPOOL_TXS_LIMIT) {
        snprintf(err, err_len, "mempool txs_max %zu is over the limit %d", c.txs_max,
                 MN_MEMPOOL_TXS_LIMIT);
        return NULL;
    }
    if (c.per_signer_max > c.txs_max) c.per_signer_max = c.txs_max;
    struct mn_mempool *mp = calloc(1, sizeof *mp);
    if (!mp) goto oom;
    mp->cfg = c;
    size_t nslots = pow2_at_least(c.txs_max * 2);
    mp->slots = calloc(nslots, sizeof *mp->slots);
    size_t nbuckets = pow2_at_least(c.txs_max < 1024 ? c.txs_max : 1024);
    mp->buckets = calloc(nbuckets, sizeof *mp->buckets);
    if (!mp->slots || !mp->buckets) goto oom;
    mp->slots_mask = nslots - 1;
    mp->buckets_mask = nbuckets - 1;
    return mp;
oom:
    mn_mempool_free(mp);
    snprintf(err, err_len, "mempool: out of memory");
    return NULL;
}

void mn_mempool_free(struct mn_mempool *mp) {
    if (!mp) return;
    for (struct entry *e = mp->arr_head, *next; e; e = next) {
        next = e->arr_next;
        free(e);
    }
    if (mp->buckets) {
        for (size_t i = 0; i <= mp->buckets_mask; i++) {
            for (struct signer *s = mp->buckets[i], *next; s; s = next) {
                next = s->chain;
                free(s);
            }
        }
    }
    free(mp->buckets);
    free(mp->slots);
    free(mp);
}

/* Index of the slot holding hash, or of the empty slot where it would go. */
static size_t index_find(const struct mn_mempool *mp, const uint8_t *hash) {
    size_t i = hash_slot(mp, hash);
    for (;;) {
        const struct entry *e = mp->slots[i];
        if (!e || memcmp(e->hash, hash, MN_HASH_LEN) == 0) return i;
        i = (i + 1) & mp->slots_mask;
    }
}

static void index_delete(struct mn_mempool *mp, size_t i) {
    assert(mp->slots[i]);
    mp->slots[i] = NULL;
    /* Backward shift: pull later members of the probe run into the hole. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mp->slots_mask;
        struct entry *e = mp->slots[j];
        if (!e) return;
        size_t home = hash_slot(mp, e->hash);
        /* e may move to i when i lies cyclically in [home, j). */
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            mp->slots[i] = e;
            mp->slots[j] = NULL;
            i = j;
        }
    }
}

static struct signer *signer_find(const struct mn_mempool *mp, const char *id) {
    for (struct signer *s = mp->buckets[name_bucket(mp, id)]; s; s = s->chain) {
        if (strcmp(s->id, id) == 0) return s;
    }
    return NULL;
}

static void signer_drop(struct mn_mempool *mp, struct signer *s) {
    assert(s->count == 0 && !s->head && !s->tail);
    struct signer **pp = &mp->buckets[name_bucket(mp, s->id)];
    while (*pp != s) pp = &(*pp)->chain;
    *pp = s->chain;
    mp->signers--;
    free(s);
}

static void gossip_unlink(struct mn_mempool *mp, struct entry *e) {
    if (!e->queued) return;
    if (e->gos_prev) e->gos_prev->gos_next = e->gos_next; else mp->gos_head = e->gos_next;
    if (e->gos_next) e->gos_next->gos_prev = e->gos_prev; else mp->gos_tail = e->gos_prev;
    e->gos_prev = e->gos_next = NULL;
    e->queued = false;
}

/* Unlinks e from every list and the index, and frees it. */
static void entry_remove(struct mn_mempool *mp, size_t slot, struct entry *e) {
    assert(mp->slots[slot] == e);
    index_delete(mp, slot);
    if (e->arr_prev) e->arr_prev->arr_next = e->arr_next; else mp->arr_head = e->arr_next;
    if (e->arr_next) e->arr_next->arr_prev = e->arr_prev; else mp->arr_tail = e->arr_prev;
    gossip_unlink(mp, e);
    struct signer *s = e->signer;
    if (e->non_prev) e->non_prev->non_next = e->non_next; else s->head = e->non_next;
    if (e->non_next) e->non_next->non_prev = e->non_prev; else s->tail = e->non_prev;
    assert(s->count > 0 && mp->count > 0 && mp->bytes >= e->len);
    s->count--;
    mp->count--;
    mp->bytes -= e->len;
    free(e);
    if (s->count == 0) signer_drop(mp, s);
}

int mn_mempool_add(struct mn_mempool *mp, const uint8_t *tx, size_t len,
                   const uint8_t hash[static MN_HASH_LEN], const char *signer, uint64_t nonce) {
    if (!tx || len == 0 || nonce == 0 || !signer) return MN_EINVAL;
    size_t id_len = strnlen(signer, MN_MEMBER_ID_MAX + 1);
    if (id_len == 0 || id_len > MN_MEMBER_ID_MAX) return MN_EINVAL;
    if (len > MN_TX_BATCH_BYTES_MAX) return MN_ETOOBIG; /* the ledger's check bounds each kind */
    size_t slot = index_find(mp, hash);
    if (mp->slots[slot]) return MN_ESTATE;
    if (mp->count >= mp->cfg.txs_max || mp->cfg.bytes_max - mp->bytes < len) return MN_EAGAIN;

    struct signer *s = signer_find(mp, signer);
    /* Find the nonce-list predecessor, scanning back from the highest nonce
     * because clients normally submit in nonce order. */
    struct entry *after = NULL;
    if (s) {
        if (s->count >= mp->cfg.per_signer_max) return MN_EAGAIN;
        after = s->tail;
        while (after && after->nonce > nonce) after = after->non_prev;
        if (after && after->nonce == nonce) return MN_EPERM;
    }
    struct entry *e = calloc(1, sizeof *e + len);
    if (!e) return MN_ENOMEM;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            free(e);
            return MN_ENOMEM;
        }
        memcpy(s->id, signer, id_len + 1);
        size_t b = name_bucket(mp, s->id);
        s->chain = mp->buckets[b];
        mp->buckets[b] = s;
        mp->signers++;
    }
    memcpy(e->tx, tx, len);
    e->len = len;
    memcpy(e->hash, hash, MN_HASH_LEN);
    e->nonce = nonce;
    e->signer = s;

    mp->slots[slot] = e;
    e->arr_prev = mp->arr_tail;
    if (mp->arr_tail) mp->arr_tail->arr_next = e; else mp->arr_head = e;
    mp->arr_tail = e;
    e->gos_prev = mp->gos_tail;
    if (mp->gos_tail) mp->gos_tail->gos_next = e; else mp->gos_head = e;
    mp->gos_tail = e;
    e->queued = true;
    e->non_prev = after;
    e->non_next = after ? after->non_next : s->head;
    if (e->non_prev) e->non_prev->non_next = e; else s->head = e;
    if (e->non_next) e->non_next->non_prev = e; else s->tail = e;
    s->count++;
    mp->count++;
    mp->bytes += len;
    assert(mp->count <= mp->cfg.txs_max && mp->bytes <= mp->cfg.bytes_max);
    return MN_OK;
}

bool mn_mempool_contains(const struct mn_mempool *mp, const uint8_t hash[static MN_HASH_LEN]) {
    return mp->slots[index_find(mp, hash)] != NULL;
}

static void to_view(const struct entry *e, struct mn_mempool_tx *out) {
    out->tx = e->tx;
    out->len = e->len;
    out->hash = e->hash;
    out->signer = e->signer->id;
    out->nonce = e->nonce;
}

bool mn_mempool_get(const struct mn_mempool *mp, const uint8_t hash[static MN_HASH_LEN],
                    struct mn_mempool_tx *out) {
    const struct entry *e = mp->slots[index_find(mp, hash)];
    if (!e) return false;
    to_view(e, out);
    return true;
}

size_t mn_mempool_take(struct mn_mempool *mp, size_t max_txs, size_t max_bytes,
                       mn_mempool_nonce_fn nonce_fn, void *nonce_arg, mn_mempool_tx_fn fn, void *arg) {
    size_t taken = 0, bytes = 0;
    uint64_t epoch = ++mp->epoch;
    for (struct entry *e = mp->arr_head; e && taken < max_txs; e = e->arr_next) {
        struct signer *s = e->signer;
        if (s->epoch != epoch) {
            s->epoch = epoch;
            s->blocked = false;
            s->expect = nonce_fn ? nonce_fn(nonce_arg, s->id) + 1 : s->head->nonce;
            s->cursor = s->head;
            while (s->cursor && s->cursor->nonce < s->expect) s->cursor = s->cursor->non_next;
        }
        if (s->blocked || e->nonce < s->expect) continue; /* stale, or already emitted */
        /* Emit this signer's run up to e from its cursor; each entry is
         * passed once per walk. */
        struct entry *c = s->cursor;
        while (c && c->nonce <= e->nonce && taken < max_txs) {
            if (c->nonce != s->expect || c->len > max_bytes - bytes) {
                s->blocked = true; /* a gap or no room: later nonces would fail */
                break;
            }
            struct mn_mempool_tx view;
            to_view(c, &view);
            taken++;
            bytes += c->len;
            s->expect++;
            s->cursor = c = c->non_next;
            if (!fn(arg, &view)) return taken;
        }
    }
    return taken;
}

size_t mn_mempool_remove(struct mn_mempool *mp, const uint8_t (*hashes)[MN_HASH_LEN], size_t n) {
    size_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        size_t slot = index_find(mp, hashes[i]);
        if (mp->slots[slot]) {
            entry_remove(mp, slot, mp->slots[slot]);
            removed++;
        }
    }
    return removed;
}

size_t mn_mempool_remove_stale(struct mn_mempool *mp, mn_mempool_nonce_fn nonce_fn, void *arg) {
    size_t removed = 0;
    for (size_t b = 0; b <= mp->buckets_mask; b++) {
        struct signer *s = mp->buckets[b];
        while (s) {
            struct signer *next = s->chain; /* s may be freed below */
            uint64_t committed = nonce_fn(arg, s->id);
            bool gone = false;
            while (!gone && s->head && s->head->nonce <= committed) {
                gone = s->count == 1;
                entry_remove(mp, index_find(mp, s->head->hash), s->head);
                removed++;
            }
            s = next;
        }
    }
    return removed;
}

uint64_t mn_mempool_signer_next_nonce(const struct mn_mempool *mp, const char *signer,
                                      uint64_t committed) {
    uint64_t next = committed + 1;
    const struct signer *s = signer ? signer_find(mp, signer) : NULL;
    if (!s) return next;
    for (const struct entry *e = s->head; e; e = e->non_next) {
        if (e->nonce < next) continue;
        if (e->nonce != next) break;
        next++;
    }
    return next;
}

bool mn_mempool_gossip_next(struct mn_mempool *mp, struct mn_mempool_tx *out) {
    struct entry *e = mp->gos_head;
    if (!e) return false;
    gossip_unlink(mp, e);
    to_view(e, out);
    return true;
}

int mn_mempool_mark_gossiped(struct mn_mempool *mp, const uint8_t hash[static MN_HASH_LEN]) {
    struct entry *e = mp->slots[index_find(mp, hash)];
    if (!e) return MN_ENOTFOUND;
    gossip_unlink(mp, e);
    return MN_OK;
}

size_t mn_mempool_count(const struct mn_mempool *mp) { return mp->count; }
size_t mn_mempool_bytes(const struct mn_mempool *mp) { return mp->bytes; }
size_t mn_mempool_signers(const struct mn_mempool *mp) { return mp->signers; }
