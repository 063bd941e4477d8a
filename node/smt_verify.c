/* smt_verify.c: the pure half of the state tree: key and leaf hashes and
 * the proof check. Kept apart from smt.c so a verifier links this file and
 * crypto.c only (no LevelDB, no write sets). */
#include <string.h>

#include "crypto.h"
#include "smt.h"

/* SHA-256 through the incremental interface: for the many short inputs
 * here it avoids the per-call digest lookup of the one-shot call (4x faster). */
static void sha(uint8_t out[static MN_HASH_LEN], const void *data, size_t len) {
    mn_sha256_ctx c;
    mn_sha256_init(&c);
    mn_sha256_update(&c, data, len);
    mn_sha256_final(&c, out);
}

void mn_smt_key_credential(uint8_t out[static MN_HASH_LEN], const uint8_t id[static MN_ID_LEN]) {
    uint8_t buf[1 + MN_ID_LEN];
    buf[0] = 0x01;
    memcpy(buf + 1, id, MN_ID_LEN);
    sha(out, buf, sizeof buf);
}

void mn_smt_key_nonce(uint8_t out[static MN_HASH_LEN], const char *signer) {
    mn_sha256_ctx c;
    uint8_t tag = 0x02;
    mn_sha256_init(&c);
    mn_sha256_update(&c, &tag, 1);
    mn_sha256_update(&c, signer, strlen(signer));
    mn_sha256_final(&c, out);
}

void mn_smt_leaf_hash(uint8_t out[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
                      const uint8_t value_hash[static MN_HASH_LEN]) {
    uint8_t buf[1 + 2 * MN_HASH_LEN];
    buf[0] = 0x00;
    memcpy(buf + 1, key_hash, MN_HASH_LEN);
    memcpy(buf + 1 + MN_HASH_LEN, value_hash, MN_HASH_LEN);
    sha(out, buf, sizeof buf);
}

static int fail(const char **why, const char *reason, int code) {
    if (why) *why = reason;
    return code;
}

static int bit_of(const uint8_t *k, unsigned d) { return (k[d >> 3] >> (7 - (d & 7))) & 1; }

int mn_smt_verify(const uint8_t root[static MN_HASH_LEN], const uint8_t key_hash[static MN_HASH_LEN],
                  const uint8_t *value, size_t value_len, const Midnode__MerkleProof *p,
                  const char **why) {
    static const uint8_t zero[MN_HASH_LEN];
    if (why) *why = NULL;
    if (!p) return fail(why, "no proof", MN_EINVAL);
    if (p->key_hash.len != MN_HASH_LEN || memcmp(p->key_hash.data, key_hash, MN_HASH_LEN) != 0)
        return fail(why, "proof is for another key", MN_ECORRUPT);
    if (p->depth > MN_SMT_DEPTH_MAX) return fail(why, "proof depth over 256", MN_EINVAL);
    if (p->empty_bitmap.len != MN_HASH_LEN) return fail(why, "empty_bitmap not 32 bytes", MN_EINVAL);
    unsigned depth = p->depth;
    size_t empties = 0;
    for (unsigned i = 0; i < MN_SMT_DEPTH_MAX; i++) {
        if (!bit_of(p->empty_bitmap.data, i)) continue;
        if (i >= depth) return fail(why, "empty_bitmap marks a level below depth", MN_EINVAL);
        empties++;
    }
    if (p->n_siblings + empties != depth) return fail(why, "sibling count does not match depth", MN_EINVAL);
    for (size_t i = 0; i < p->n_siblings; i++)
        if (p->siblings[i].len != MN_HASH_LEN) return fail(why, "sibling not 32 bytes", MN_EINVAL);

    bool other = p->other_key_hash.len != 0 || p->other_value_hash.len != 0;
    uint8_t h[MN_HASH_LEN];
    bool bottom_leaf;
    if (value) {
        if (other) return fail(why, "inclusion proof names another leaf", MN_ECORRUPT);
        uint8_t vh[MN_HASH_LEN];
        sha(vh, value, value_len);
        mn_smt_leaf_hash(h, key_hash, vh);
        bottom_leaf = true;
    } else if (other) {
        if (p->other_key_hash.len != MN_HASH_LEN || p->other_value_hash.len != MN_HASH_LEN)
            return fail(why, "other leaf not 32+32 bytes", MN_EINVAL);
        const uint8_t *ok = p->other_key_hash.data;
        if (memcmp(ok, key_hash, MN_HASH_LEN) == 0)
            return fail(why, "absence proof shows the key itself", MN_ECORRUPT);
        for (unsigned i = 0; i < depth; i++)
            if (bit_of(ok, i) != bit_of(key_hash, i))
                return fail(why, "other leaf is not on the key's path", MN_ECORRUPT);
        mn_smt_leaf_hash(h, ok, p->other_value_hash.data);
        bottom_leaf = true;
    } else {
        memset(h, 0, sizeof h);
        bottom_leaf = false;
    }
    /* In a canonical tree a leaf or empty slot never has an empty sibling
     * (its parent would have collapsed), except the whole tree's root. */
    if (depth > 0 && bit_of(p->empty_bitmap.data, depth - 1))
        return fail(why, bottom_leaf ? "leaf beside an empty sibling (not canonical)"
                                     : "empty slot beside an empty sibling (not canonical)",
                    MN_ECORRUPT);
    size_t si = p->n_siblings;
    for (unsigned i = depth; i-- > 0;) {
        const uint8_t *s = zero;
        if (!bit_of(p->empty_bitmap.data, i)) s = p->siblings[--si].data;
        uint8_t buf[1 + 2 * MN_HASH_LEN];
        buf[0] = 0x01;
        if (bit_of(key_hash, i)) {
            memcpy(buf + 1, s, MN_HASH_LEN);
            memcpy(buf + 1 + MN_HASH_LEN, h, MN_HASH_LEN);
        } else {
            memcpy(buf + 1, h, MN_HASH_LEN);
            memcpy(buf + 1 + MN_HASH_LEN, s, MN_HASH_LEN);
        }
        sha(h, buf, sizeof buf);
    }
    if (memcmp(h, root, MN_HASH_LEN) != 0)
        return fail(why, value ? "root mismatch: record not in this state" : "root mismatch: absence not proven",
                    MN_ECORRUPT);
    return MN_OK;
}
