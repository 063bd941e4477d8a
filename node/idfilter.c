/* idfilter.c: blocked Bloom filter over ids (idfilter.h). */
#include "idfilter.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LINE_WORDS 8u /* 64 bytes */
#define BIT_INDEX_BITS 9u /* 512 bits per line */

struct mn_idfilter {
    uint64_t *words; /* lines * LINE_WORDS, mmap'd: untouched lines cost no memory */
    size_t bytes;
    uint64_t line_mask;
    uint64_t added;
};

_Static_assert(MN_IDFILTER_PROBES * BIT_INDEX_BITS <= 64, "the probes fit one hash");

mn_idfilter *mn_idfilter_new(unsigned lines_log2) {
    if (lines_log2 < 1 || lines_log2 > 26) return NULL;
    mn_idfilter *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->bytes = ((size_t)1 << lines_log2) * LINE_WORDS * sizeof(uint64_t);
    void *m = mmap(NULL, f->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        free(f);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(m, f->bytes, MADV_HUGEPAGE); /* a hint: random lines then miss the TLB less */
#endif
    f->words = m;
    f->line_mask = ((uint64_t)1 << lines_log2) - 1;
    return f;
}

void mn_idfilter_free(mn_idfilter *f) {
    if (!f) return;
    if (f->words) munmap(f->words, f->bytes);
    free(f);
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* All 32 bytes count: ids a client chooses with a shared prefix do not
 * pile into one line. */
static uint64_t id_mix(const uint8_t id[static MN_ID_LEN]) {
    uint64_t w[4];
    memcpy(w, id, sizeof w);
    return mix(w[0] ^ mix(w[1] ^ mix(w[2] ^ mix(w[3]))));
}

void mn_idfilter_add(mn_idfilter *f, const uint8_t id[static MN_ID_LEN]) {
    uint64_t h = id_mix(id);
    uint64_t *line = f->words + (h & f->line_mask) * LINE_WORDS;
    h = mix(h); /* the probes: bits independent of the line's */
    for (unsigned i = 0; i < MN_IDFILTER_PROBES; i++, h >>= BIT_INDEX_BITS) {
        unsigned bit = (unsigned)(h & ((1u << BIT_INDEX_BITS) - 1));
        line[bit >> 6] |= (uint64_t)1 << (bit & 63);
    }
    f->added++;
}

bool mn_idfilter_may_hold(const mn_idfilter *f, const uint8_t id[static MN_ID_LEN]) {
    uint64_t h = id_mix(id);
    const uint64_t *line = f->words + (h & f->line_mask) * LINE_WORDS;
    h = mix(h);
    for (unsigned i = 0; i < MN_IDFILTER_PROBES; i++, h >>= BIT_INDEX_BITS) {
        unsigned bit = (unsigned)(h & ((1u << BIT_INDEX_BITS) - 1));
        if (!(line[bit >> 6] & ((uint64_t)1 << (bit & 63)))) return false;
    }
    return true;
}

void mn_idfilter_clear(mn_idfilter *f) {
    /* Dropping the pages zeroes them without touching each one. */
    if (madvise(f->words, f->bytes, MADV_DONTNEED) != 0) memset(f->words, 0, f->bytes);
    f->added = 0;
}

uint64_t mn_idfilter_added(const mn_idfilter *f) { return f->added; }
