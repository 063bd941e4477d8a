/* sigcache.c: see sigcache.h. */
#include "sigcache.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"

/* A block's consensus traffic is a few dozen signatures; 512 slots keep
 * several heights' worth even with collisions. */
#define SIGCACHE_SLOTS 512

typedef struct {
    bool used;
    uint8_t digest[MN_HASH_LEN];
    uint8_t pubkey[MN_PUBKEY_LEN];
    uint8_t sig[MN_SIG_LEN];
} sig_entry;

struct mn_sigcache {
    sig_entry slot[SIGCACHE_SLOTS];
    uint64_t hits;
};

mn_sigcache *mn_sigcache_new(void) { return calloc(1, sizeof(mn_sigcache)); }

void mn_sigcache_free(mn_sigcache *c) { free(c); }

/* The signature's r half is uniform for honest signers; mixing in the digest
 * keeps a peer that replays one r from pinning a single slot. */
static sig_entry *slot_of(mn_sigcache *c, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN]) {
    uint32_t h = ((uint32_t)sig[0] << 8 | sig[1]) ^ ((uint32_t)digest[0] << 8 | digest[1]) ^ sig[33];
    return &c->slot[h % SIGCACHE_SLOTS];
}

static void put(sig_entry *e, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                const uint8_t pubkey[MN_PUBKEY_LEN]) {
    e->used = true;
    memcpy(e->digest, digest, MN_HASH_LEN);
    memcpy(e->pubkey, pubkey, MN_PUBKEY_LEN);
    memcpy(e->sig, sig, MN_SIG_LEN);
}

bool mn_sigcache_verify(mn_sigcache *c, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                        const uint8_t pubkey[MN_PUBKEY_LEN]) {
    if (!c) return mn_verify(sig, digest, pubkey);
    sig_entry *e = slot_of(c, sig, digest);
    /* Every byte that the verification covered must match. */
    if (e->used && memcmp(e->sig, sig, MN_SIG_LEN) == 0 && memcmp(e->digest, digest, MN_HASH_LEN) == 0 &&
        memcmp(e->pubkey, pubkey, MN_PUBKEY_LEN) == 0) {
        c->hits++;
        return true;
    }
    if (!mn_verify(sig, digest, pubkey)) return false;
    put(e, sig, digest, pubkey);
    return true;
}

void mn_sigcache_add(mn_sigcache *c, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                     const uint8_t pubkey[MN_PUBKEY_LEN]) {
    if (c) put(slot_of(c, sig, digest), sig, digest, pubkey);
}

uint64_t mn_sigcache_hits(const mn_sigcache *c) { return c ? c->hits : 0; }
