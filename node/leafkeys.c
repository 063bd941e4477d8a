/* leafkeys.c: 64-bit key-hash prefixes in sorted buckets (see leafkeys.h). */
#include "leafkeys.h"

#include <stdlib.h>
#include <string.h>

#define BUCKET_BITS 16
#define BUCKETS (1u << BUCKET_BITS)
#define BUCKET_MAX 0x7fffffffu

typedef struct lk_bucket {
    uint64_t *v; /* sorted, distinct */
    uint32_t n, cap;
} lk_bucket;

struct mn_leafkeys {
    lk_bucket *b; /* BUCKETS of them, made by the first add */
    size_t count;
};

mn_leafkeys *mn_leafkeys_new(void) { return calloc(1, sizeof(mn_leafkeys)); }

void mn_leafkeys_clear(mn_leafkeys *k) {
    if (!k || !k->b) return;
    for (size_t i = 0; i < BUCKETS; i++) k->b[i].n = 0;
    k->count = 0;
}

void mn_leafkeys_free(mn_leafkeys *k) {
    if (!k) return;
    if (k->b)
        for (size_t i = 0; i < BUCKETS; i++) free(k->b[i].v);
    free(k->b);
    free(k);
}

static uint64_t be64(const uint8_t *p) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | p[i];
    return x;
}

/* Index of the first value >= x in b. */
static uint32_t lower_bound(const lk_bucket *b, uint64_t x) {
    uint32_t lo = 0, hi = b->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int mn_leafkeys_add(mn_leafkeys *k, const uint8_t key_hash[static 8]) {
    if (!k->b && !(k->b = calloc(BUCKETS, sizeof *k->b))) return MN_ENOMEM;
    uint64_t x = be64(key_hash);
    lk_bucket *b = &k->b[x >> (64 - BUCKET_BITS)];
    uint32_t i = lower_bound(b, x);
    if (i < b->n && b->v[i] == x) return MN_OK;
    if (b->n == b->cap) {
        if (b->cap >= BUCKET_MAX - 8) return MN_ENOMEM;
        /* A quarter more: buckets fill evenly, so they grow by small steps. */
        uint32_t cap = b->cap + b->cap / 4 + 4;
        uint64_t *nv = realloc(b->v, (size_t)cap * sizeof *nv);
        if (!nv) return MN_ENOMEM;
        b->v = nv;
        b->cap = cap;
    }
    memmove(b->v + i + 1, b->v + i, (size_t)(b->n - i) * sizeof *b->v);
    b->v[i] = x;
    b->n++;
    k->count++;
    return MN_OK;
}

int mn_leafkeys_find(const mn_leafkeys *k, unsigned depth, const uint8_t *path, uint8_t prefix[static 8]) {
    if (depth > 64 || !k->b || k->count == 0) return MN_ENOTFOUND;
    uint8_t p8[8] = {0};
    memcpy(p8, path, (depth + 7) / 8);
    uint64_t span = depth == 0 ? UINT64_MAX : depth == 64 ? 0 : UINT64_MAX >> depth;
    uint64_t lo = be64(p8) & ~span, hi = lo | span;
    /* Below depth 16 the range covers several buckets: the first non-empty
     * one from lo on holds the answer, if any. */
    for (uint64_t bi = lo >> (64 - BUCKET_BITS); bi <= hi >> (64 - BUCKET_BITS); bi++) {
        const lk_bucket *b = &k->b[bi];
        uint32_t i = lower_bound(b, lo);
        if (i == b->n) continue;
        if (b->v[i] > hi) return MN_ENOTFOUND;
        for (int j = 0; j < 8; j++) prefix[j] = (uint8_t)(b->v[i] >> (56 - 8 * j));
        return MN_OK;
    }
    return MN_ENOTFOUND;
}

size_t mn_leafkeys_count(const mn_leafkeys *k) { return k->count; }

size_t mn_leafkeys_bytes(const mn_leafkeys *k) {
    size_t bytes = sizeof *k;
    if (k->b) {
        bytes += BUCKETS * sizeof *k->b;
        for (size_t i = 0; i < BUCKETS; i++) bytes += (size_t)k->b[i].cap * sizeof(uint64_t);
    }
    return bytes;
}
