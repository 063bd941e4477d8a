/* signbytes.c: the canonical byte layout validators sign (see signbytes.h). */
#include "signbytes.h"

#include <string.h>

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

size_t mn_sign_bytes(uint8_t out[static MN_SIGNBYTES_MAX], const char *chain_id, int kind,
                     uint64_t height, uint32_t round, const uint8_t *block_hash, size_t hash_len,
                     int32_t pol_round) {
    static const char tag[15] = {'m', 'i', 'd', 'n', 'o', 'd', 'e', '/', 's', 'i', 'g', 'n', '/', 'v', '1'};
    size_t chain_len = chain_id ? strlen(chain_id) : 0;
    if (chain_len > 64) return 0;
    if (hash_len != 0 && hash_len != 32) return 0;
    if (hash_len != 0 && !block_hash) return 0;
    if (kind != MN_SIGN_PROPOSAL && kind != MN_SIGN_PREVOTE && kind != MN_SIGN_PRECOMMIT) return 0;
    uint8_t *p = out;
    memcpy(p, tag, sizeof tag);
    p += sizeof tag;
    *p++ = (uint8_t)chain_len;
    if (chain_len) memcpy(p, chain_id, chain_len);
    p += chain_len;
    *p++ = (uint8_t)kind;
    p = put_be(p, height, 8);
    p = put_be(p, round, 4);
    *p++ = (uint8_t)hash_len;
    if (hash_len) memcpy(p, block_hash, hash_len);
    p += hash_len;
    if (kind == MN_SIGN_PROPOSAL) p = put_be(p, (uint32_t)pol_round, 4);
    return (size_t)(p - out);
}
