/* crypto.h: hashing, secp256k1 keys and signatures, key files, hex.
 *
 * The only module that includes libsecp256k1 or OpenSSL's crypto headers
 * (TLS lives in node/tls.c). Signatures are 64-byte compact ECDSA, low-S,
 * over a 32-byte digest; public keys are 33-byte compressed.
 * The signing context is randomised once at start-up (side-channel blinding).
 * Secret keys are wiped with OPENSSL_cleanse when freed by this module. */
#ifndef MN_CRYPTO_H
#define MN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"

/* Prepares the process-wide secp256k1 context (idempotent, not thread-safe
 * on first call). Returns MN_OK or MN_ECRYPTO. Every other function calls it
 * implicitly; call it explicitly at start-up to fail early. */
int mn_crypto_init(void) MN_WARN_UNUSED;

/* SHA-256 of data[0..len). Never fails. */
void mn_sha256(uint8_t out[static MN_HASH_LEN], const void *data, size_t len);

/* Incremental SHA-256 over several parts. */
typedef struct { uint8_t opaque[128]; } mn_sha256_ctx;
void mn_sha256_init(mn_sha256_ctx *ctx);
void mn_sha256_update(mn_sha256_ctx *ctx, const void *data, size_t len);
void mn_sha256_final(mn_sha256_ctx *ctx, uint8_t out[static MN_HASH_LEN]);

/* Fills buf with len bytes from the OS random source (getrandom).
 * Returns MN_OK or MN_EIO. */
int mn_random_bytes(void *buf, size_t len) MN_WARN_UNUSED;

/* Makes a new secret key from the OS random source.
 * Returns MN_OK, MN_EIO (no randomness) or MN_ECRYPTO. */
int mn_key_generate(uint8_t seckey[static MN_SECKEY_LEN]) MN_WARN_UNUSED;

/* Derives the compressed public key. Returns MN_OK or MN_ECRYPTO (invalid key). */
int mn_key_pubkey(uint8_t pubkey[static MN_PUBKEY_LEN],
                  const uint8_t seckey[static MN_SECKEY_LEN]) MN_WARN_UNUSED;

/* Signs a 32-byte digest. Returns MN_OK or MN_ECRYPTO. */
int mn_sign(uint8_t sig[static MN_SIG_LEN], const uint8_t digest[static MN_HASH_LEN],
            const uint8_t seckey[static MN_SECKEY_LEN]) MN_WARN_UNUSED;

/* Verifies a compact signature over digest. Returns true only when the
 * public key parses, the signature parses, is low-S, and verifies. */
bool mn_verify(const uint8_t sig[static MN_SIG_LEN], const uint8_t digest[static MN_HASH_LEN],
               const uint8_t pubkey[static MN_PUBKEY_LEN]);

/* Number of successful+failed mn_verify calls in this process (metrics). */
uint64_t mn_verify_count(void);

/* Writes a secret key file as 64 hex characters and a newline, mode 0600,
 * created exclusively unless overwrite; file and directory fsynced.
 * Returns MN_OK, MN_EIO (message in err). */
int mn_keyfile_write(const char *path, const uint8_t seckey[static MN_SECKEY_LEN],
                     bool overwrite, char *err, size_t err_len) MN_WARN_UNUSED;

/* Reads a secret key file. Refuses (MN_EPERM) a file that group or others
 * may read or write; MN_EIO when unreadable; MN_EINVAL when not 64 hex
 * characters of a valid key. The message names the path and the problem. */
int mn_keyfile_read(const char *path, uint8_t seckey[static MN_SECKEY_LEN],
                    char *err, size_t err_len) MN_WARN_UNUSED;

/* Wipes a secret. */
void mn_cleanse(void *p, size_t len);

/* Constant-time comparison: 0 when equal. */
int mn_memcmp_ct(const void *a, const void *b, size_t len);

/* Lower-case hex of len bytes into out (must hold 2*len+1). Returns out. */
char *mn_hex_encode(char *out, const uint8_t *in, size_t len);

/* Parses exactly 2*len hex characters (either case) of a NUL-terminated
 * string. Returns MN_OK or MN_EINVAL. */
int mn_hex_decode(uint8_t *out, size_t len, const char *hex) MN_WARN_UNUSED;

#endif
