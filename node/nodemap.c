/* nodemap.c: position key -> tree node, inline entries behind a tagged
 * open-addressed slot array (see nodemap.h). */
#include "nodemap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_LOG2 16
#define CHUNK_ENTRIES (1u << CHUNK_LOG2)
#define SLOTS_MIN 1024

typedef struct nm_entry {
    uint8_t key_len;
    uint8_t key[MN_SMT_POS_KEY_MAX];
    uint8_t node[MN_SMT_NODE_LEN]; /* node[0] == 0: no node (deleted) */
    uint8_t pad[3];
} nm_entry;
_Static_assert(sizeof(nm_entry) == 104, "entry layout");

typedef struct nm_slot {
    uint32_t tag; /* high half of the key's hash */
    uint32_t ref; /* 0: empty; else entry number + 1 */
} nm_slot;

struct mn_nodemap {
    nm_entry **chunks;
    size_t nchunks, chunk_cap;
    size_t entries; /* entries used (live or deleted) */
    size_t live;    /* entries holding a node */
    nm_slot *slots;
    size_t slot_cap; /* power of two, at least twice the entries */
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

static nm_entry *entry_at(const mn_nodemap *m, uint32_t ref) {
    size_t i = ref - 1;
    return &m->chunks[i >> CHUNK_LOG2][i & (CHUNK_ENTRIES - 1)];
}

mn_nodemap *mn_nodemap_new(void) { return calloc(1, sizeof(mn_nodemap)); }

void mn_nodemap_clear(mn_nodemap *m) {
    if (!m) return;
    m->entries = 0;
    m->live = 0;
    if (m->slots) memset(m->slots, 0, m->slot_cap * sizeof *m->slots);
}

void mn_nodemap_free(mn_nodemap *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nchunks; i++) free(m->chunks[i]);
    free(m->chunks);
    free(m->slots);
    free(m);
}

/* The slot holding key, or the empty slot where it would go. */
static nm_slot *find(const mn_nodemap *m, const uint8_t *key, size_t len, uint64_t h) {
    size_t mask = m->slot_cap - 1;
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        nm_slot *s = &m->slots[i];
        if (s->ref == 0) return s;
        if (s->tag == tag) {
            const nm_entry *e = entry_at(m, s->ref);
            if (e->key_len == len && memcmp(e->key, key, len) == 0) return s;
        }
    }
}

static int grow_slots_to(mn_nodemap *m, size_t cap) {
    assert(cap >= SLOTS_MIN && (cap & (cap - 1)) == 0 && cap > m->slot_cap);
    nm_slot *ns = calloc(cap, sizeof *ns);
    if (!ns) return MN_ENOMEM;
    for (size_t i = 0; i < m->entries; i++) {
        const nm_entry *e = &m->chunks[i >> CHUNK_LOG2][i & (CHUNK_ENTRIES - 1)];
        uint64_t h = key_hash(e->key, e->key_len);
        size_t j = h & (cap - 1);
        while (ns[j].ref != 0) j = (j + 1) & (cap - 1);
        ns[j].tag = (uint32_t)(h >> 32);
        ns[j].ref = (uint32_t)(i + 1);
    }
    free(m->slots);
    m->slots = ns;
    m->slot_cap = cap;
    return MN_OK;
}

static int grow_slots(mn_nodemap *m) { return grow_slots_to(m, m->slot_cap ? m->slot_cap * 2 : SLOTS_MIN); }

int mn_nodemap_reserve(mn_nodemap *m, size_t entries) {
    if (entries >= UINT32_MAX - 1) return MN_ENOMEM;
    size_t cap = m->slot_cap ? m->slot_cap : SLOTS_MIN;
    while (cap < entries * 2) cap *= 2;
    return cap > m->slot_cap ? grow_slots_to(m, cap) : MN_OK;
}

/* Room for one more entry: a chunk for it and slots at most half full. */
static int reserve(mn_nodemap *m) {
    if (m->entries >= UINT32_MAX - 1) return MN_ENOMEM;
    if ((m->entries >> CHUNK_LOG2) >= m->nchunks) {
        if (m->nchunks == m->chunk_cap) {
            size_t cap = m->chunk_cap ? m->chunk_cap * 2 : 16;
            nm_entry **nc = realloc(m->chunks, cap * sizeof *nc);
            if (!nc) return MN_ENOMEM;
            m->chunks = nc;
            m->chunk_cap = cap;
        }
        nm_entry *c = malloc(CHUNK_ENTRIES * sizeof *c);
        if (!c) return MN_ENOMEM;
        m->chunks[m->nchunks++] = c;
    }
    if ((m->entries + 1) * 2 > m->slot_cap) return grow_slots(m);
    return MN_OK;
}

static bool key_ok(const uint8_t *pos, size_t len) { return pos && len > 0 && len <= MN_SMT_POS_KEY_MAX; }

int mn_nodemap_put(mn_nodemap *m, const uint8_t *pos, size_t len, const uint8_t node[static MN_SMT_NODE_LEN]) {
    if (!key_ok(pos, len) || node[0] == 0) return MN_EINVAL;
    uint64_t h = key_hash(pos, len);
    size_t cap = m->slot_cap;
    nm_slot *s = cap ? find(m, pos, len, h) : NULL;
    if (s && s->ref != 0) {
        nm_entry *e = entry_at(m, s->ref);
        if (e->node[0] == 0) m->live++;
        memcpy(e->node, node, MN_SMT_NODE_LEN);
        return MN_OK;
    }
    int rc = reserve(m);
    if (rc != MN_OK) return rc;
    if (m->slot_cap != cap) s = find(m, pos, len, h); /* the slots moved */
    assert(s->ref == 0);
    size_t i = m->entries++;
    nm_entry *e = &m->chunks[i >> CHUNK_LOG2][i & (CHUNK_ENTRIES - 1)];
    e->key_len = (uint8_t)len;
    memcpy(e->key, pos, len);
    memcpy(e->node, node, MN_SMT_NODE_LEN);
    s->tag = (uint32_t)(h >> 32);
    s->ref = (uint32_t)(i + 1);
    m->live++;
    return MN_OK;
}

int mn_nodemap_del(mn_nodemap *m, const uint8_t *pos, size_t len) {
    if (!key_ok(pos, len)) return MN_EINVAL;
    if (!m->slot_cap) return MN_OK;
    nm_slot *s = find(m, pos, len, key_hash(pos, len));
    if (s->ref != 0) {
        nm_entry *e = entry_at(m, s->ref);
        if (e->node[0] != 0) m->live--;
        e->node[0] = 0;
    }
    return MN_OK;
}

bool mn_nodemap_get(const mn_nodemap *m, const uint8_t *pos, size_t len, uint8_t node[static MN_SMT_NODE_LEN]) {
    if (!m->slot_cap || !key_ok(pos, len)) return false;
    const nm_slot *s = find(m, pos, len, key_hash(pos, len));
    if (s->ref == 0) return false;
    const nm_entry *e = entry_at(m, s->ref);
    if (e->node[0] == 0) return false;
    memcpy(node, e->node, MN_SMT_NODE_LEN);
    return true;
}

void mn_nodemap_prefetch(const mn_nodemap *m, const uint8_t *pos, size_t len, int stage) {
    if (!m->slot_cap || !key_ok(pos, len)) return;
    uint64_t h = key_hash(pos, len);
    const nm_slot *s = &m->slots[h & (m->slot_cap - 1)];
    if (stage == 0) {
        __builtin_prefetch(s);
        return;
    }
    if (s->ref == 0 || s->tag != (uint32_t)(h >> 32)) return;
    const char *e = (const char *)entry_at(m, s->ref);
    __builtin_prefetch(e);
    __builtin_prefetch(e + sizeof(nm_entry) - 1); /* an entry may straddle two lines */
}

size_t mn_nodemap_count(const mn_nodemap *m) { return m->live; }

size_t mn_nodemap_bytes(const mn_nodemap *m) {
    return sizeof *m + m->nchunks * CHUNK_ENTRIES * sizeof(nm_entry) + m->chunk_cap * sizeof(nm_entry *) +
           m->slot_cap * sizeof(nm_slot);
}
