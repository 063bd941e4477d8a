/* crypto.c: SHA-256 (OpenSSL), secp256k1 keys and compact ECDSA, key files. */
#define _GNU_SOURCE
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <secp256k1.h>

static secp256k1_context *g_ctx;
static atomic_uint_fast64_t g_verify_count;

_Static_assert(sizeof(SHA256_CTX) <= sizeof(mn_sha256_ctx), "sha256 ctx fits");

int mn_crypto_init(void) {
    if (g_ctx) return MN_OK;
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!ctx) return MN_ECRYPTO;
    uint8_t seed[32];
    if (mn_random_bytes(seed, sizeof seed) != MN_OK) {
        secp256k1_context_destroy(ctx);
        return MN_EIO;
    }
    int ok = secp256k1_context_randomize(ctx, seed);
    mn_cleanse(seed, sizeof seed);
    if (!ok) {
        secp256k1_context_destroy(ctx);
        return MN_ECRYPTO;
    }
    g_ctx = ctx;
    return MN_OK;
}

/* The low-level SHA256_* calls are deprecated in OpenSSL 3 but remain the
 * fastest path for many small digests (no EVP allocation per hash). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void mn_sha256_init(mn_sha256_ctx *ctx) { SHA256_Init((SHA256_CTX *)ctx->opaque); }
void mn_sha256_update(mn_sha256_ctx *ctx, const void *data, size_t len) {
    SHA256_Update((SHA256_CTX *)ctx->opaque, data, len);
}
void mn_sha256_final(mn_sha256_ctx *ctx, uint8_t out[static MN_HASH_LEN]) {
    SHA256_Final(out, (SHA256_CTX *)ctx->opaque);
}
/* One-shot SHA256() goes through EVP and costs several times more per short
 * input than the context calls; Merkle hashing does millions of these. */
void mn_sha256(uint8_t out[static MN_HASH_LEN], const void *data, size_t len) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
}
#pragma GCC diagnostic pop

int mn_random_bytes(void *buf, size_t len) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return MN_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return MN_OK;
}

int mn_key_generate(uint8_t seckey[static MN_SECKEY_LEN]) {
    int rc = mn_crypto_init();
    if (rc != MN_OK) return rc;
    for (int tries = 0; tries < 64; tries++) {
        if (mn_random_bytes(seckey, MN_SECKEY_LEN) != MN_OK) return MN_EIO;
        if (secp256k1_ec_seckey_verify(g_ctx, seckey)) return MN_OK;
    }
    return MN_ECRYPTO;
}

int mn_key_pubkey(uint8_t pubkey[static MN_PUBKEY_LEN], const uint8_t seckey[static MN_SECKEY_LEN]) {
    int rc = mn_crypto_init();
    if (rc != MN_OK) return rc;
    secp256k1_pubkey pk;
    if (!secp256k1_ec_pubkey_create(g_ctx, &pk, seckey)) return MN_ECRYPTO;
    size_t len = MN_PUBKEY_LEN;
    if (!secp256k1_ec_pubkey_serialize(g_ctx, pubkey, &len, &pk, SECP256K1_EC_COMPRESSED) ||
        len != MN_PUBKEY_LEN)
        return MN_ECRYPTO;
    return MN_OK;
}

int mn_sign(uint8_t sig[static MN_SIG_LEN], const uint8_t digest[static MN_HASH_LEN],
            const uint8_t seckey[static MN_SECKEY_LEN]) {
    int rc = mn_crypto_init();
    if (rc != MN_OK) return rc;
    secp256k1_ecdsa_signature s;
    if (!secp256k1_ecdsa_sign(g_ctx, &s, digest, seckey, NULL, NULL)) return MN_ECRYPTO;
    if (!secp256k1_ecdsa_signature_serialize_compact(g_ctx, sig, &s)) return MN_ECRYPTO;
    return MN_OK;
}

/* Parsing a compressed key takes a field square root, several percent of a
 * verification; a node meets the same few dozen keys (members, validators)
 * over and over. Per thread, direct-mapped, keyed by all 33 bytes; only keys
 * that parsed are kept. */
#define PUBKEY_CACHE_SLOTS 64
typedef struct {
    bool used;
    uint8_t raw[MN_PUBKEY_LEN];
    secp256k1_pubkey pk;
} pubkey_entry;
static _Thread_local pubkey_entry t_pubkeys[PUBKEY_CACHE_SLOTS];

static bool pubkey_parse_cached(secp256k1_pubkey *out, const uint8_t pubkey[static MN_PUBKEY_LEN]) {
    pubkey_entry *e = &t_pubkeys[(pubkey[1] ^ pubkey[2] ^ pubkey[32]) % PUBKEY_CACHE_SLOTS];
    if (e->used && memcmp(e->raw, pubkey, MN_PUBKEY_LEN) == 0) {
        *out = e->pk;
        return true;
    }
    if (!secp256k1_ec_pubkey_parse(g_ctx, out, pubkey, MN_PUBKEY_LEN)) return false;
    e->used = true;
    memcpy(e->raw, pubkey, MN_PUBKEY_LEN);
    e->pk = *out;
    return true;
}

bool mn_verify(const uint8_t sig[static MN_SIG_LEN], const uint8_t digest[static MN_HASH_LEN],
               const uint8_t pubkey[static MN_PUBKEY_LEN]) {
    if (mn_crypto_init() != MN_OK) return false;
    atomic_fetch_add_explicit(&g_verify_count, 1, memory_order_relaxed);
    secp256k1_pubkey pk;
    secp256k1_ecdsa_signature s;
    if (!pubkey_parse_cached(&pk, pubkey)) return false;
    if (!secp256k1_ecdsa_signature_parse_compact(g_ctx, &s, sig)) return false;
    /* secp256k1_ecdsa_verify refuses high-S itself: malleated copies of a
     * signature never verify, so a tx hash cannot be changed by a relayer. */
    return secp256k1_ecdsa_verify(g_ctx, &s, digest, &pk) == 1;
}

uint64_t mn_verify_count(void) {
    return atomic_load_explicit(&g_verify_count, memory_order_relaxed);
}

void mn_cleanse(void *p, size_t len) { OPENSSL_cleanse(p, len); }

int mn_memcmp_ct(const void *a, const void *b, size_t len) { return CRYPTO_memcmp(a, b, len); }

char *mn_hex_encode(char *out, const uint8_t *in, size_t len) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int mn_hex_decode(uint8_t *out, size_t len, const char *hex) {
    if (!hex || strlen(hex) != 2 * len) return MN_EINVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return MN_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return MN_OK;
}

static int fsync_parent_dir(const char *path) {
    char copy[4096];
    if (strlen(path) >= sizeof copy) return MN_EINVAL;
    strcpy(copy, path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return MN_EIO;
    int rc = fsync(dfd) == 0 ? MN_OK : MN_EIO;
    close(dfd);
    return rc;
}

int mn_keyfile_write(const char *path, const uint8_t seckey[static MN_SECKEY_LEN], bool overwrite,
                     char *err, size_t err_len) {
    char text[2 * MN_SECKEY_LEN + 2];
    mn_hex_encode(text, seckey, MN_SECKEY_LEN);
    text[2 * MN_SECKEY_LEN] = '\n';
    text[2 * MN_SECKEY_LEN + 1] = '\0';
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create key file %s: %s", path, strerror(errno));
        mn_cleanse(text, sizeof text);
        return MN_EIO;
    }
    int rc = MN_OK;
    size_t want = 2 * MN_SECKEY_LEN + 1;
    if (fchmod(fd, 0600) != 0 || write(fd, text, want) != (ssize_t)want || fsync(fd) != 0) {
        snprintf(err, err_len, "cannot write key file %s: %s", path, strerror(errno));
        rc = MN_EIO;
    }
    mn_cleanse(text, sizeof text);
    if (close(fd) != 0 && rc == MN_OK) {
        snprintf(err, err_len, "cannot close key file %s: %s", path, strerror(errno));
        rc = MN_EIO;
    }
    if (rc == MN_OK && fsync_parent_dir(path) != MN_OK) {
        snprintf(err, err_len, "cannot sync the directory of key file %s", path);
        rc = MN_EIO;
    }
    return rc;
}

int mn_keyfile_read(const char *path, uint8_t seckey[static MN_SECKEY_LEN], char *err, size_t err_len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open key file %s: %s", path, strerror(errno));
        return MN_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, err_len, "cannot stat key file %s: %s", path, strerror(errno));
        close(fd);
        return MN_EIO;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, err_len,
                 "key file %s is accessible by group or others (mode %03o); refusing it: run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return MN_EPERM;
    }
    char text[2 * MN_SECKEY_LEN + 8];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, err_len, "cannot read key file %s: %s", path, strerror(errno));
        return MN_EIO;
    }
    text[n] = '\0';
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) text[--n] = '\0';
    int rc = mn_hex_decode(seckey, MN_SECKEY_LEN, text);
    mn_cleanse(text, sizeof text);
    if (rc != MN_OK) {
        snprintf(err, err_len, "key file %s does not hold 64 hex characters", path);
        return MN_EINVAL;
    }
    uint8_t pub[MN_PUBKEY_LEN];
    if (mn_key_pubkey(pub, seckey) != MN_OK) {
        mn_cleanse(seckey, MN_SECKEY_LEN);
        snprintf(err, err_len, "key file %s holds an invalid secp256k1 secret key", path);
        return MN_EINVAL;
    }
    return MN_OK;
}
