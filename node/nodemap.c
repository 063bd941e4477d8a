/* nodemap.c: position key -> tree node, inline entries behind a tagged
 * open-addressed slot array (see nodemap.h). */
#include "nodemap.h"

#include "leafkeys.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_LOG2 16
#define CHUNK_ENTRIES (1u << CHUNK_LOG2)
#define SLOTS_MIN 1024

/* Slots grow past this share of entries (tenths). At 0.6 a miss, the
 * common case of a tree update (an implicit leaf), probes about four
 * slots, mostly in one cache line; at 0.7 the commits of a 1 M state
 * (a 69% full table) cost 5% more CPU. At 50 M credentials (72 M nodes)
 * the table is 1 GB, where a half-full rule made it 2. */
#define LOAD_TENTHS 6

/* An entry is its key's length, the key and the node, packed (bytes only,
 * so any offset is aligned). A position down to depth 64 has a key of at
 * most 11 bytes ('s', u16 depth, 8 path bytes): in a tree of n random
 * keys nearly every node is shallower than 2 log2 n, so those sit in the
 * short pool at 77 bytes; deeper ones take the long pool's 101. */
#define SHORT_KEY_MAX 11
#define SHORT_ENTRY (1 + SHORT_KEY_MAX + MN_SMT_NODE_LEN)
#define LONG_ENTRY (1 + MN_SMT_POS_KEY_MAX + MN_SMT_NODE_LEN)
#define REF_LONG 0x80000000u /* a slot's ref names a long entry */
#define POOL_MAX (REF_LONG - 2u)

typedef struct nm_pool {
    uint8_t **chunks;
    size_t nchunks, chunk_cap;
    size_t entries; /* entries used (live or deleted) */
    size_t entry_size, key_max;
} nm_pool;

typedef struct nm_slot {
    uint32_t tag; /* high half of the key's hash */
    uint32_t ref; /* 0: empty; else (entry number + 1) | REF_LONG for the long pool */
} nm_slot;

/* Growing the slot array moves every entry's slot; done at once, at 72 M
 * nodes that held the node's loop for seconds. The array is doubled
 * instead into a new one, and the old one, left as it was (so its probe
 * sequences stay valid), is read after the new one until every one of
 * its slots, MIGRATE_STEP per put, has been copied over. A key is in
 * exactly one of the two until it is copied, then in both. */
#define MIGRATE_STEP 16

struct mn_nodemap {
    nm_pool pools[2]; /* short, long */
    size_t live;      /* entries holding a node */
    nm_slot *slots;
    size_t slot_cap; /* power of two, entries at most LOAD_TENTHS/10 of it */
    nm_slot *old;    /* the array being copied into slots, or NULL */
    size_t old_cap, old_next; /* its size; its first slot not yet copied */
    mn_leafkeys *leaves;      /* made by the first mn_nodemap_leaf_add */
};

/* Position keys end in key-hash bits (SHA-256 output), so a multiply-xor
 * mix of their 8-byte words spreads them well. */
static uint64_t key_hash(const uint8_t *k, size_t len) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = 0;
        memcpy(&w, k + i, len - i < 8 ? len - i : 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    h *= 0x94d049bb133111ebull;
    h ^= h >> 29;
    return h;
}

static uint8_t *pool_entry(const nm_pool *p, size_t i) {
    return p->chunks[i >> CHUNK_LOG2] + (i & (CHUNK_ENTRIES - 1)) * p->entry_size;
}

/* The entry a slot's ref names: [0] key length, [1..] key, then the node
 * at entry_node(). */
static uint8_t *entry_at(const mn_nodemap *m, uint32_t ref) {
    const nm_pool *p = &m->pools[(ref & REF_LONG) != 0];
    return pool_entry(p, (ref & ~REF_LONG) - 1);
}

static uint8_t *entry_node(uint8_t *e, uint32_t ref) {
    return e + 1 + ((ref & REF_LONG) ? MN_SMT_POS_KEY_MAX : SHORT_KEY_MAX);
}

static size_t entries_used(const mn_nodemap *m) { return m->pools[0].entries + m->pools[1].entries; }

mn_nodemap *mn_nodemap_new(void) {
    mn_nodemap *m = calloc(1, sizeof(mn_nodemap));
    if (!m) return NULL;
    m->pools[0].entry_size = SHORT_ENTRY;
    m->pools[0].key_max = SHORT_KEY_MAX;
    m->pools[1].entry_size = LONG_ENTRY;
    m->pools[1].key_max = MN_SMT_POS_KEY_MAX;
    return m;
}

void mn_nodemap_clear(mn_nodemap *m) {
    if (!m) return;
    m->pools[0].entries = m->pools[1].entries = 0;
    m->live = 0;
    mn_leafkeys_clear(m->leaves);
    free(m->old);
    m->old = NULL;
    if (m->slots) memset(m->slots, 0, m->slot_cap * sizeof *m->slots);
}

void mn_nodemap_free(mn_nodemap *m) {
    if (!m) return;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < m->pools[k].nchunks; i++) free(m->pools[k].chunks[i]);
        free(m->pools[k].chunks);
    }
    free(m->slots);
    free(m->old);
    mn_leafkeys_free(m->leaves);
    free(m);
}

/* The slot of slots[cap] holding key, or the empty slot where it would go. */
static nm_slot *find_in(const mn_nodemap *m, nm_slot *slots, size_t cap, const uint8_t *key, size_t len,
                        uint64_t h) {
    size_t mask = cap - 1;
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        nm_slot *s = &slots[i];
        if (s->ref == 0) return s;
        if (s->tag == tag) {
            const uint8_t *e = entry_at(m, s->ref);
            if (e[0] == len && memcmp(e + 1, key, len) == 0) return s;
        }
    }
}

/* The ref of key's entry, or 0. */
static uint32_t lookup(const mn_nodemap *m, const uint8_t *key, size_t len, uint64_t h) {
    uint32_t ref = find_in(m, m->slots, m->slot_cap, key, len, h)->ref;
    if (ref == 0 && m->old) ref = find_in(m, m->old, m->old_cap, key, len, h)->ref;
    return ref;
}

/* Puts ref, whose key is in neither array, into slots[cap]. */
static void place(nm_slot *slots, size_t cap, uint64_t h, uint32_t ref) {
    size_t j = h & (cap - 1);
    while (slots[j].ref != 0) j = (j + 1) & (cap - 1);
    slots[j].tag = (uint32_t)(h >> 32);
    slots[j].ref = ref;
}

/* Copies up to n of the old array's slots into the new one; frees the old
 * one once all are. */
static void migrate(mn_nodemap *m, size_t n) {
    if (!m->old) return;
    size_t end = m->old_next + n < m->old_cap ? m->old_next + n : m->old_cap;
    for (size_t i = m->old_next; i < end; i++) {
        uint32_t ref = m->old[i].ref;
        if (ref == 0) continue;
        const uint8_t *e = entry_at(m, ref);
        place(m->slots, m->slot_cap, key_hash(e + 1, e[0]), ref);
    }
    m->old_next = end;
    if (end == m->old_cap) {
        free(m->old);
        m->old = NULL;
    }
}

static bool fits(size_t entries, size_t cap) { return entries * 10 <= cap * LOAD_TENTHS; }

/* Rebuilds the slots at size cap at once (a reserve: no caller waits). */
static int grow_slots_to(mn_nodemap *m, size_t cap) {
    assert(cap >= SLOTS_MIN && (cap & (cap - 1)) == 0 && cap > m->slot_cap);
    nm_slot *ns = calloc(cap, sizeof *ns);
    if (!ns) return MN_ENOMEM;
    for (int k = 0; k < 2; k++) {
        const nm_pool *p = &m->pools[k];
        for (size_t i = 0; i < p->entries; i++) {
            const uint8_t *e = pool_entry(p, i);
            place(ns, cap, key_hash(e + 1, e[0]), (uint32_t)(i + 1) | (k ? REF_LONG : 0));
        }
    }
    free(m->slots);
    free(m->old);
    m->old = NULL;
    m->slots = ns;
    m->slot_cap = cap;
    return MN_OK;
}

/* Doubles the slots, the copy spread over the puts that follow. */
static int start_growing(mn_nodemap *m) {
    if (!m->slot_cap) return grow_slots_to(m, SLOTS_MIN);
    migrate(m, SIZE_MAX); /* the previous doubling's rest, if any (the puts since have copied it all) */
    nm_slot *ns = calloc(m->slot_cap * 2, sizeof *ns);
    if (!ns) return MN_ENOMEM;
    m->old = m->slots;
    m->old_cap = m->slot_cap;
    m->old_next = 0;
    m->slots = ns;
    m->slot_cap *= 2;
    return MN_OK;
}

int mn_nodemap_reserve(mn_nodemap *m, size_t entries) {
    if (entries >= POOL_MAX) return MN_ENOMEM;
    size_t cap = m->slot_cap ? m->slot_cap : SLOTS_MIN;
    while (!fits(entries, cap)) cap *= 2;
    return cap > m->slot_cap ? grow_slots_to(m, cap) : MN_OK;
}

bool mn_nodemap_growing(const mn_nodemap *m) { return m->old != NULL; }

/* Room for one more entry in pool p: a chunk for it and slots to spare. */
static int reserve(mn_nodemap *m, nm_pool *p) {
    if (p->entries >= POOL_MAX) return MN_ENOMEM;
    if ((p->entries >> CHUNK_LOG2) >= p->nchunks) {
        if (p->nchunks == p->chunk_cap) {
            size_t cap = p->chunk_cap ? p->chunk_cap * 2 : 16;
            uint8_t **nc = realloc(p->chunks, cap * sizeof *nc);
            if (!nc) return MN_ENOMEM;
            p->chunks = nc;
            p->chunk_cap = cap;
        }
        uint8_t *c = malloc((size_t)CHUNK_ENTRIES * p->entry_size);
        if (!c) return MN_ENOMEM;
        p->chunks[p->nchunks++] = c;
    }
    if (!fits(entries_used(m) + 1, m->slot_cap)) return start_growing(m);
    return MN_OK;
}

static bool key_ok(const uint8_t *pos, size_t len) { return pos && len > 0 && len <= MN_SMT_POS_KEY_MAX; }

int mn_nodemap_put(mn_nodemap *m, const uint8_t *pos, size_t len, const uint8_t node[static MN_SMT_NODE_LEN]) {
    if (!key_ok(pos, len) || node[0] == 0) return MN_EINVAL;
    uint64_t h = key_hash(pos, len);
    uint32_t ref = m->slot_cap ? lookup(m, pos, len, h) : 0;
    if (ref != 0) {
        uint8_t *n = entry_node(entry_at(m, ref), ref);
        if (n[0] == 0) m->live++;
        memcpy(n, node, MN_SMT_NODE_LEN);
        migrate(m, MIGRATE_STEP);
        return MN_OK;
    }
    bool is_long = len > SHORT_KEY_MAX;
    nm_pool *p = &m->pools[is_long];
    int rc = reserve(m, p);
    if (rc != MN_OK) return rc;
    size_t i = p->entries++;
    ref = (uint32_t)(i + 1) | (is_long ? REF_LONG : 0);
    uint8_t *e = pool_entry(p, i);
    e[0] = (uint8_t)len;
    memcpy(e + 1, pos, len);
    memcpy(entry_node(e, ref), node, MN_SMT_NODE_LEN);
    place(m->slots, m->slot_cap, h, ref); /* in neither array (lookup): the new one takes it */
    m->live++;
    migrate(m, MIGRATE_STEP);
    return MN_OK;
}

int mn_nodemap_del(mn_nodemap *m, const uint8_t *pos, size_t len) {
    if (!key_ok(pos, len)) return MN_EINVAL;
    if (!m->slot_cap) return MN_OK;
    uint32_t ref = lookup(m, pos, len, key_hash(pos, len));
    if (ref != 0) {
        uint8_t *n = entry_node(entry_at(m, ref), ref);
        if (n[0] != 0) m->live--;
        n[0] = 0;
    }
    return MN_OK;
}

bool mn_nodemap_get(const mn_nodemap *m, const uint8_t *pos, size_t len, uint8_t node[static MN_SMT_NODE_LEN]) {
    if (!m->slot_cap || !key_ok(pos, len)) return false;
    uint32_t ref = lookup(m, pos, len, key_hash(pos, len));
    if (ref == 0) return false;
    const uint8_t *n = entry_node(entry_at(m, ref), ref);
    if (n[0] == 0) return false;
    memcpy(node, n, MN_SMT_NODE_LEN);
    return true;
}

void mn_nodemap_prefetch(const mn_nodemap *m, const uint8_t *pos, size_t len, int stage) {
    if (!m->slot_cap || !key_ok(pos, len)) return;
    uint64_t h = key_hash(pos, len);
    const nm_slot *s = &m->slots[h & (m->slot_cap - 1)];
    const nm_slot *o = m->old ? &m->old[h & (m->old_cap - 1)] : NULL;
    if (stage == 0) {
        __builtin_prefetch(s);
        if (o) __builtin_prefetch(o);
        return;
    }
    if ((s->ref == 0 || s->tag != (uint32_t)(h >> 32)) && o) s = o;
    if (s->ref == 0 || s->tag != (uint32_t)(h >> 32)) return;
    const uint8_t *e = entry_at(m, s->ref);
    __builtin_prefetch(e);
    __builtin_prefetch(e + m->pools[(s->ref & REF_LONG) != 0].entry_size - 1); /* it may straddle two lines */
}

int mn_nodemap_leaf_add(mn_nodemap *m, const uint8_t key_hash[static 8]) {
    if (!m->leaves && !(m->leaves = mn_leafkeys_new())) return MN_ENOMEM;
    return mn_leafkeys_add(m->leaves, key_hash);
}

int mn_nodemap_leaf_find(const mn_nodemap *m, const uint8_t *pos, size_t len, uint8_t prefix[static 8]) {
    unsigned depth;
    if (!m->leaves || !mn_smt_pos_depth(pos, len, &depth)) return MN_ENOTFOUND;
    return mn_leafkeys_find(m->leaves, depth, pos + 3, prefix);
}

size_t mn_nodemap_leaf_count(const mn_nodemap *m) { return m->leaves ? mn_leafkeys_count(m->leaves) : 0; }

size_t mn_nodemap_count(const mn_nodemap *m) { return m->live; }

size_t mn_nodemap_bytes(const mn_nodemap *m) {
    size_t b = sizeof *m + (m->slot_cap + (m->old ? m->old_cap : 0)) * sizeof(nm_slot);
    for (int k = 0; k < 2; k++)
        b += m->pools[k].nchunks * CHUNK_ENTRIES * m->pools[k].entry_size + m->pools[k].chunk_cap * sizeof(uint8_t *);
    if (m->leaves) b += mn_leafkeys_bytes(m->leaves);
    return b;
}
