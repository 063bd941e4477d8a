/* cert.c: the trusted validator set and the commit certificate check.
 * Part of the verifier library: no jansson, no LevelDB, no libuv. */
#include "cert.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "signbytes.h"

void mn_validators_hash(uint8_t out[static MN_HASH_LEN], const uint8_t (*keys)[MN_PUBKEY_LEN], uint32_t n) {
    mn_sha256_ctx ctx;
    mn_sha256_init(&ctx);
    for (uint32_t i = 0; i < n; i++) mn_sha256_update(&ctx, keys[i], MN_PUBKEY_LEN);
    mn_sha256_final(&ctx, out);
}

int mn_valset_init(mn_valset *vs, const char *chain_id, const uint8_t (*keys)[MN_PUBKEY_LEN], uint32_t n) {
    memset(vs, 0, sizeof *vs);
    size_t cl = strlen(chain_id);
    if (n == 0 || n > MN_VALIDATORS_MAX || cl == 0 || cl > MN_CHAIN_ID_MAX) return MN_EINVAL;
    memcpy(vs->chain_id, chain_id, cl + 1);
    vs->count = n;
    memcpy(vs->keys, keys, (size_t)n * MN_PUBKEY_LEN);
    mn_validators_hash(vs->hash, (const uint8_t(*)[MN_PUBKEY_LEN])vs->keys, n);
    return MN_OK;
}

int mn_valset_from_genesis(mn_valset *vs, const mn_genesis *g) {
    uint8_t keys[MN_VALIDATORS_MAX][MN_PUBKEY_LEN];
    if (g->validator_count == 0 || g->validator_count > MN_VALIDATORS_MAX) return MN_EINVAL;
    for (uint32_t i = 0; i < g->validator_count; i++) {
        uint16_t m = g->validator_members[i];
        if (m >= g->member_count) return MN_EINVAL;
        memcpy(keys[i], g->members[m].consensus_pubkey, MN_PUBKEY_LEN);
    }
    return mn_valset_init(vs, g->chain_id, (const uint8_t(*)[MN_PUBKEY_LEN])keys, g->validator_count);
}

static bool plain_verify(void *ctx, const uint8_t sig[MN_SIG_LEN], const uint8_t digest[MN_HASH_LEN],
                         const uint8_t pubkey[MN_PUBKEY_LEN]) {
    (void)ctx;
    return mn_verify(sig, digest, pubkey);
}

int mn_cert_check_valset(const mn_valset *vs, uint64_t height, const uint8_t block_hash[static MN_HASH_LEN],
                         const Midnode__CommitCertificate *c, char *err, size_t err_len) {
    return mn_cert_check_valset_with(vs, height, block_hash, c, plain_verify, NULL, err, err_len);
}

int mn_cert_check_valset_with(const mn_valset *vs, uint64_t height, const uint8_t block_hash[static MN_HASH_LEN],
                              const Midnode__CommitCertificate *c, mn_cert_verify_fn verify, void *ctx, char *err,
                              size_t err_len) {
    if (!c) {
        snprintf(err, err_len, "no commit certificate");
        return MN_EINVAL;
    }
    if (c->block_hash.len != MN_HASH_LEN) {
        snprintf(err, err_len, "certificate block_hash is %zu bytes, not 32", c->block_hash.len);
        return MN_EINVAL;
    }
    if (c->height != height) {
        snprintf(err, err_len, "certificate is for height %llu, not %llu", (unsigned long long)c->height,
                 (unsigned long long)height);
        return MN_ECRYPTO;
    }
    if (memcmp(c->block_hash.data, block_hash, MN_HASH_LEN) != 0) {
        snprintf(err, err_len, "certificate is for another block at height %llu", (unsigned long long)height);
        return MN_ECRYPTO;
    }
    uint32_t need = mn_quorum(vs->count);
    if (c->n_sigs > vs->count) {
        snprintf(err, err_len, "certificate holds %zu signatures for %u validators", c->n_sigs, vs->count);
        return MN_ECRYPTO;
    }
    if (c->n_sigs < need) {
        snprintf(err, err_len, "certificate holds %zu signatures; a quorum of %u validators is %u", c->n_sigs,
                 vs->count, need);
        return MN_ECRYPTO;
    }
    uint8_t sb[MN_SIGNBYTES_MAX];
    size_t sb_len = mn_sign_bytes(sb, vs->chain_id, MN_SIGN_PRECOMMIT, height, c->round, block_hash,
                                  MN_HASH_LEN, -1);
    if (sb_len == 0) {
        snprintf(err, err_len, "cannot form precommit sign bytes");
        return MN_EINVAL;
    }
    uint8_t digest[MN_HASH_LEN];
    mn_sha256(digest, sb, sb_len);
    uint64_t seen = 0; /* bit per validator index; MN_VALIDATORS_MAX <= 64 */
    _Static_assert(MN_VALIDATORS_MAX <= 64, "one bit per validator");
    uint32_t good = 0;
    for (size_t i = 0; i < c->n_sigs; i++) {
        const Midnode__CommitSig *s = c->sigs[i];
        if (!s) {
            snprintf(err, err_len, "certificate signature %zu is missing", i);
            return MN_EINVAL;
        }
        if (s->validator_index >= vs->count) {
            snprintf(err, err_len, "certificate signature %zu names unknown validator %u (of %u)", i,
                     s->validator_index, vs->count);
            return MN_ECRYPTO;
        }
        uint64_t bit = 1ull << s->validator_index;
        if (seen & bit) {
            snprintf(err, err_len, "certificate holds two signatures of validator %u", s->validator_index);
            return MN_ECRYPTO;
        }
        seen |= bit;
        if (s->signature.len != MN_SIG_LEN) {
            snprintf(err, err_len, "certificate signature %zu is %zu bytes, not 64", i, s->signature.len);
            return MN_EINVAL;
        }
        if (!verify(ctx, s->signature.data, digest, vs->keys[s->validator_index])) {
            snprintf(err, err_len, "certificate signature of validator %u does not verify", s->validator_index);
            return MN_ECRYPTO;
        }
        good++;
    }
    if (good < need) {
        snprintf(err, err_len, "certificate holds %u valid signatures; quorum is %u", good, need);
        return MN_ECRYPTO;
    }
    return MN_OK;
}

int mn_cert_check(const mn_genesis *g, uint64_t height, const uint8_t block_hash[static MN_HASH_LEN],
                  const Midnode__CommitCertificate *c, char *err, size_t err_len) {
    mn_valset vs;
    if (mn_valset_from_genesis(&vs, g) != MN_OK) {
        snprintf(err, err_len, "genesis has no valid validator set");
        return MN_EINVAL;
    }
    return mn_cert_check_valset(&vs, height, block_hash, c, err, err_len);
}
