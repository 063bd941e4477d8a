/* kvmap.c: insertion-ordered hash map of byte strings, the write set of an
 * execution overlay (see kvmap.h). Open addressing over an index table that
 * points into an entry array, so iteration follows first-insertion order.
 * Keys and values are carved from chunks the map owns and frees together: a
 * block's write set has tens of thousands of small entries, and a malloc
 * and a free for each took a tenth of a validator's execution time. */
#include "kvmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv_entry {
    uint8_t *key;
    uint8_t *val; /* NULL: deletion; else room */
    uint8_t *room; /* val_room bytes a later value of the key may reuse */
    uint32_t key_len;
    uint32_t val_len;
    uint32_t val_room;
    uint64_t hash;
} kv_entry;

/* Bytes of a chunk; a value over a quarter of it gets a chunk of its own. */
#define KV_CHUNK_BYTES (64u * 1024)

typedef struct kv_chunk {
    struct kv_chunk *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
} kv_chunk;

struct mn_kvmap {
    kv_entry *entries;
    size_t count, cap;
    uint32_t *index; /* 0 empty, else entry number + 1 */
    size_t index_cap; /* power of two */
    kv_chunk *chunks; /* the first is the one being carved */
};

/* n bytes from the map's chunks (8-byte aligned), or NULL. */
static uint8_t *kv_alloc(mn_kvmap *m, size_t n) {
    n = (n + 7) & ~(size_t)7;
    kv_chunk *c = m->chunks;
    if (c && c->cap - c->used >= n) {
        uint8_t *p = (uint8_t *)c->data + c->used;
        c->used += n;
        return p;
    }
    bool own = n > KV_CHUNK_BYTES / 4;
    size_t cap = own ? n : KV_CHUNK_BYTES;
    kv_chunk *nc = malloc(sizeof *nc + cap);
    if (!nc) return NULL;
    nc->cap = cap;
    nc->used = n;
    if (own && c) { /* behind the current chunk, whose room stays in use */
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        m->chunks = nc;
    }
    return (uint8_t *)nc->data;
}

/* Frees every chunk but the current one when it is a regular chunk, which
 * is kept, emptied, for the next entries (a write set is cleared per tx). */
static void kv_release(mn_kvmap *m, bool keep_one) {
    kv_chunk *c = m->chunks, *keep = NULL;
    if (keep_one && c && c->cap == KV_CHUNK_BYTES) {
        keep = c;
        c = c->next;
        keep->next = NULL;
        keep->used = 0;
    }
    while (c) {
        kv_chunk *next = c->next;
        free(c);
        c = next;
    }
    m->chunks = keep;
}

static uint64_t kv_hash(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    /* Finalizer (from MurmurHash3) so the low bits used as the slot mix well. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

mn_kvmap *mn_kv_new(void) { return calloc(1, sizeof(mn_kvmap)); }

void mn_kv_clear(mn_kvmap *m) {
    if (!m) return;
    kv_release(m, true);
    m->count = 0;
    if (m->index) memset(m->index, 0, m->index_cap * sizeof(uint32_t));
}

void mn_kv_free(mn_kvmap *m) {
    if (!m) return;
    kv_release(m, false);
    free(m->entries);
    free(m->index);
    free(m);
}

static long kv_find(const mn_kvmap *m, const uint8_t *key, size_t key_len, uint64_t h,
                    size_t *slot) {
    if (m->index_cap == 0) return -1;
    size_t mask = m->index_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = m->index[i];
        if (v == 0) {
            if (slot) *slot = i;
            return -1;
        }
        const kv_entry *e = &m->entries[v - 1];
        if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
            if (slot) *slot = i;
            return (long)(v - 1);
        }
    }
}

static int kv_grow(mn_kvmap *m) {
    if (m->count + 1 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        kv_entry *ne = realloc(m->entries, ncap * sizeof(kv_entry));
        if (!ne) return MN_ENOMEM;
        m->entries = ne;
        m->cap = ncap;
    }
    if ((m->count + 1) * 2 > m->index_cap) {
        size_t ncap = m->index_cap ? m->index_cap * 2 : 128;
        if (ncap > UINT32_MAX) return MN_ENOMEM;
        uint32_t *ni = calloc(ncap, sizeof(uint32_t));
        if (!ni) return MN_ENOMEM;
        for (size_t i = 0; i < m->count; i++) {
            size_t j = m->entries[i].hash & (ncap - 1);
            while (ni[j] != 0) j = (j + 1) & (ncap - 1);
            ni[j] = (uint32_t)(i + 1);
        }
        free(m->index);
        m->index = ni;
        m->index_cap = ncap;
    }
    return MN_OK;
}

static int kv_set(mn_kvmap *m, const void *key, size_t key_len, const void *val, size_t val_len,
                  bool is_del) {
    if (key_len == 0 || key_len > MN_KV_KEY_MAX || val_len > MN_KV_VALUE_MAX) return MN_ETOOBIG;
    uint64_t h = kv_hash(key, key_len);
    long at = kv_find(m, key, key_len, h, NULL);
    if (at >= 0) {
        kv_entry *e = &m->entries[at];
        if (is_del) {
            e->val = NULL; /* its room stays for a later value */
        } else {
            if (val_len > e->val_room) {
                uint8_t *nv = kv_alloc(m, val_len);
                if (!nv) return MN_ENOMEM;
                e->room = nv;
                e->val_room = (uint32_t)val_len;
            }
            if (val_len) memmove(e->room, val, val_len);
            e->val = e->room;
        }
        e->val_len = is_del ? 0 : (uint32_t)val_len;
        return MN_OK;
    }
    if (kv_grow(m) != MN_OK) return MN_ENOMEM;
    /* key and value together, the value 8-byte aligned after the key */
    size_t key_room = (key_len + 7) & ~(size_t)7;
    uint8_t *nk = kv_alloc(m, key_room + val_len);
    if (!nk) return MN_ENOMEM;
    memcpy(nk, key, key_len);
    uint8_t *room = nk + key_room;
    if (val_len) memcpy(room, val, val_len);
    size_t slot = 0;
    at = kv_find(m, key, key_len, h, &slot);
    assert(at < 0);
    kv_entry *e = &m->entries[m->count];
    e->key = nk;
    e->key_len = (uint32_t)key_len;
    e->val = is_del ? NULL : room;
    e->room = room;
    e->val_len = (uint32_t)val_len;
    e->val_room = (uint32_t)val_len;
    e->hash = h;
    m->count++;
    m->index[slot] = (uint32_t)m->count;
    return MN_OK;
}

int mn_kv_put(mn_kvmap *m, const void *key, size_t key_len, const void *val, size_t val_len) {
    return kv_set(m, key, key_len, val, val_len, false);
}

int mn_kv_del(mn_kvmap *m, const void *key, size_t key_len) {
    return kv_set(m, key, key_len, NULL, 0, true);
}

int mn_kv_get(const mn_kvmap *m, const void *key, size_t key_len, const uint8_t **val,
              size_t *val_len) {
    if (!m || key_len == 0 || key_len > MN_KV_KEY_MAX) return MN_KV_ABSENT;
    long at = kv_find(m, key, key_len, kv_hash(key, key_len), NULL);
    if (at < 0) return MN_KV_ABSENT;
    const kv_entry *e = &m->entries[at];
    if (!e->val) return MN_KV_DELETED;
    if (val) *val = e->val;
    if (val_len) *val_len = e->val_len;
    return MN_KV_VALUE;
}

size_t mn_kv_count(const mn_kvmap *m) { return m ? m->count : 0; }

void mn_kv_entry(const mn_kvmap *m, size_t i, const uint8_t **key, size_t *key_len,
                 const uint8_t **val, size_t *val_len) {
    assert(i < m->count);
    const kv_entry *e = &m->entries[i];
    *key = e->key;
    *key_len = e->key_len;
    *val = e->val;
    *val_len = e->val_len;
}

int mn_kv_merge(mn_kvmap *dst, const mn_kvmap *src) {
    for (size_t i = 0; i < src->count; i++) {
        const kv_entry *e = &src->entries[i];
        int rc = e->val ? mn_kv_put(dst, e->key, e->key_len, e->val, e->val_len)
                        : mn_kv_del(dst, e->key, e->key_len);
        if (rc != MN_OK) return rc;
    }
    return MN_OK;
}
