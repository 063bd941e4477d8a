/* tlskey.h: a node's transport (TLS) identity: an Ed25519 key in a PEM file
 * (mode 0600), its pin, and a self-signed certificate made in memory.
 *
 * Peers are authenticated by pin, not by certificate chain: the pin is
 * SHA-256 of the DER SubjectPublicKeyInfo, listed in genesis. Rotating the
 * certificate therefore never breaks a link (Fabric issues 4049, 3562).
 * EVP_PKEY and X509 are OpenSSL types; the caller owns what it receives and
 * frees it with EVP_PKEY_free / X509_free. */
#ifndef MN_TLSKEY_H
#define MN_TLSKEY_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mn.h"

/* A new Ed25519 key. Returns MN_OK or MN_ECRYPTO; *out is NULL on failure. */
int mn_tlskey_generate(EVP_PKEY **out) MN_WARN_UNUSED;

/* Writes key as unencrypted PKCS#8 PEM, mode 0600, atomically; refuses to
 * replace an existing file unless overwrite. Returns MN_OK, MN_EIO,
 * MN_ECRYPTO. */
int mn_tlskey_write(const char *path, EVP_PKEY *key, bool overwrite,
                    char *err, size_t err_len) MN_WARN_UNUSED;

/* Reads a PEM private key. Refuses (MN_EPERM) a file group or others may
 * access; MN_EIO when unreadable; MN_EINVAL when it holds no private key. */
int mn_tlskey_read(EVP_PKEY **out, const char *path, char *err, size_t err_len) MN_WARN_UNUSED;

/* SHA-256 of the DER SubjectPublicKeyInfo of key (private or public).
 * Returns MN_OK or MN_ECRYPTO. */
int mn_tlskey_pin(uint8_t pin[static MN_HASH_LEN], EVP_PKEY *key) MN_WARN_UNUSED;

/* A self-signed X.509 certificate for key with subject CN=common_name,
 * valid from one day ago for 100 years (validity is not what is checked:
 * the pin is). Returns MN_OK or MN_ECRYPTO. */
int mn_tlskey_self_signed(X509 **out, EVP_PKEY *key, const char *common_name) MN_WARN_UNUSED;

/* Pin of the public key in cert. Returns MN_OK or MN_ECRYPTO. */
int mn_tlskey_cert_pin(uint8_t pin[static MN_HASH_LEN], X509 *cert) MN_WARN_UNUSED;

#endif
