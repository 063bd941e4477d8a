/* tlskey.c: a node's Ed25519 transport key, its pin and a self-signed
 * certificate, through OpenSSL's EVP interface. */
#include "tlskey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "fileio.h"

#define TLSKEY_FILE_MAX 16384

int mn_tlskey_generate(EVP_PKEY **out) {
    *out = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (!ctx) return MN_ECRYPTO;
    EVP_PKEY *key = NULL;
    int ok = EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &key) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(key);
        return MN_ECRYPTO;
    }
    *out = key;
    return MN_OK;
}

int mn_tlskey_write(const char *path, EVP_PKEY *key, bool overwrite, char *err, size_t err_len) {
    if (!overwrite && mn_path_exists(path)) {
        snprintf(err, err_len, "%s already exists; refusing to replace a key", path);
        return MN_EIO;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) {
        snprintf(err, err_len, "out of memory writing %s", path);
        return MN_ECRYPTO;
    }
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        snprintf(err, err_len, "cannot encode TLS key for %s", path);
        return MN_ECRYPTO;
    }
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    int rc = len > 0 ? mn_file_write_atomic(path, data, (size_t)len, 0600, err, err_len) : MN_ECRYPTO;
    if (len > 0) OPENSSL_cleanse(data, (size_t)len);
    BIO_free(bio);
    if (len <= 0) snprintf(err, err_len, "cannot encode TLS key for %s", path);
    return rc;
}

int mn_tlskey_read(EVP_PKEY **out, const char *path, char *err, size_t err_len) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open TLS key file %s: %s", path, strerror(errno));
        return MN_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, err_len, "cannot stat TLS key file %s: %s", path, strerror(errno));
        close(fd);
        return MN_EIO;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, err_len,
                 "TLS key file %s is accessible by group or others (mode %03o); refusing it: run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return MN_EPERM;
    }
    if (st.st_size <= 0 || st.st_size > TLSKEY_FILE_MAX) {
        snprintf(err, err_len, "TLS key file %s: size %lld is not that of a PEM key", path, (long long)st.st_size);
        close(fd);
        return MN_EINVAL;
    }
    char buf[TLSKEY_FILE_MAX];
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    BIO *bio = BIO_new_mem_buf(buf, (int)n);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(buf, sizeof buf);
    if (!key) {
        snprintf(err, err_len, "TLS key file %s holds no PEM private key", path);
        return MN_EINVAL;
    }
    *out = key;
    return MN_OK;
}

int mn_tlskey_pin(uint8_t pin[static MN_HASH_LEN], EVP_PKEY *key) {
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0 || !der) return MN_ECRYPTO;
    mn_sha256(pin, der, (size_t)len);
    OPENSSL_free(der);
    return MN_OK;
}

int mn_tlskey_self_signed(X509 **out, EVP_PKEY *key, const char *common_name) {
    *out = NULL;
    X509 *x = X509_new();
    if (!x) return MN_ECRYPTO;
    uint8_t serial[8];
    X509_NAME *name = NULL;
    bool ok = X509_set_version(x, 2) == 1 && mn_random_bytes(serial, sizeof serial) == MN_OK;
    if (ok) {
        serial[0] &= 0x7f; /* positive */
        ASN1_INTEGER *sn = X509_get_serialNumber(x);
        BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
        ok = bn && BN_to_ASN1_INTEGER(bn, sn) != NULL;
        BN_free(bn);
    }
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -86400L) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), 36500, 0, NULL) != NULL && X509_set_pubkey(x, key) == 1;
    if (ok) {
        name = X509_get_subject_name(x);
        ok = name && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1,
                                                -1, 0) == 1 &&
             X509_set_issuer_name(x, name) == 1;
    }
    /* Ed25519 signs with no separate digest. */
    ok = ok && X509_sign(x, key, EVP_PKEY_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return MN_ECRYPTO;
    }
    *out = x;
    return MN_OK;
}

int mn_tlskey_cert_pin(uint8_t pin[static MN_HASH_LEN], X509 *cert) {
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (!pub) return MN_ECRYPTO;
    return mn_tlskey_pin(pin, pub);
}
