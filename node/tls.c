/* tls.c: TLS 1.3 mutual authentication over memory BIOs, and SPKI pins.
 * The only file besides crypto.c that includes OpenSSL; see tls.h. */
#include "tls.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "crypto.h"

struct mn_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct mn_tls_conn {
    SSL *ssl;
    BIO *rbio; /* ciphertext from the socket; owned by ssl */
    BIO *wbio; /* ciphertext to the socket; owned by ssl */
    bool established;
};

static void set_err(char *err, size_t err_len, const char *what) {
    if (err == NULL || err_len == 0) return;
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        char buf[160];
        ERR_error_string_n(e, buf, sizeof buf);
        snprintf(err, err_len, "%s: %s", what, buf);
    } else {
        snprintf(err, err_len, "%s", what);
    }
}

/* Certificates are self-signed and the trust decision is the pin, taken
 * after the handshake; the chain check would only reject every peer. The
 * handshake still proves possession of the certificate's key. */
static int verify_accept_any(int preverify_ok, X509_STORE_CTX *store) {
    (void)preverify_ok;
    (void)store;
    return 1;
}

int mn_tls_ctx_new(mn_tls_ctx **out, EVP_PKEY *key, X509 *cert, char *err, size_t err_len) {
    if (out == NULL) return MN_EINVAL;
    *out = NULL;
    if (key == NULL || cert == NULL) {
        set_err(err, err_len, "tls: key and certificate are required");
        return MN_EINVAL;
    }
    ERR_clear_error();
    mn_tls_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) return MN_ENOMEM;
    c->ssl_ctx = SSL_CTX_new(TLS_method());
    if (c->ssl_ctx == NULL) {
        set_err(err, err_len, "tls: SSL_CTX_new");
        free(c);
        return MN_ECRYPTO;
    }
    SSL_CTX *s = c->ssl_ctx;
    int rc = MN_ECRYPTO;
    if (X509_check_private_key(cert, key) != 1) {
        set_err(err, err_len, "tls: private key does not match the certificate");
        rc = MN_EINVAL;
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) != 1) {
        set_err(err, err_len, "tls: cannot restrict to TLS 1.3");
        goto fail;
    }
    if (SSL_CTX_use_certificate(s, cert) != 1) {
        set_err(err, err_len, "tls: certificate rejected");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey(s, key) != 1) {
        set_err(err, err_len, "tls: private key rejected");
        goto fail;
    }
    if (SSL_CTX_check_private_key(s) != 1) {
        set_err(err, err_len, "tls: private key does not match the certificate");
        rc = MN_EINVAL;
        goto fail;
    }
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_accept_any);
    if (SSL_CTX_set_num_tickets(s, 0) != 1) {
        set_err(err, err_len, "tls: cannot disable session tickets");
        goto fail;
    }
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    /* Memory BIOs never return short writes, but keep the partial-write
     * mode so a write is reported whole or as an error. */
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    *out = c;
    return MN_OK;
fail:
    SSL_CTX_free(c->ssl_ctx);
    free(c);
    return rc;
}

void mn_tls_ctx_free(mn_tls_ctx *ctx) {
    if (ctx == NULL) return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

int mn_tls_pin_of_key(uint8_t pin[static MN_TLS_PIN_LEN], EVP_PKEY *key) {
    if (key == NULL) return MN_ECRYPTO;
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0 || der == NULL) return MN_ECRYPTO;
    mn_sha256(pin, der, (size_t)len);
    OPENSSL_free(der);
    return MN_OK;
}

int mn_tls_pin_of_cert(uint8_t pin[static MN_TLS_PIN_LEN], X509 *cert) {
    if (cert == NULL) return MN_ECRYPTO;
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    if (pk == NULL) return MN_ECRYPTO;
    return mn_tls_pin_of_key(pin, pk);
}

int mn_tls_selfsigned_new(EVP_PKEY **key, X509 **cert, const char *common_name) {
    if (key == NULL || cert == NULL || common_name == NULL || common_name[0] == '\0') return MN_EINVAL;
    *key = NULL;
    *cert = NULL;
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (kc == NULL) return MN_ECRYPTO;
    if (EVP_PKEY_keygen_init(kc) != 1 || EVP_PKEY_keygen(kc, &k) != 1) {
        EVP_PKEY_CTX_free(kc);
        return MN_ECRYPTO;
    }
    EVP_PKEY_CTX_free(kc);
    x = X509_new();
    if (x == NULL) goto fail;
    uint8_t serial[8];
    if (mn_random_bytes(serial, sizeof serial) != MN_OK) goto fail;
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (bn == NULL) goto fail;
    int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    if (!ok) goto fail;
    if (X509_set_version(x, 2) != 1) goto fail;
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL) goto fail;
    if (X509_gmtime_adj(X509_getm_notAfter(x), 100L * 365 * 24 * 3600) == NULL) goto fail;
    if (X509_set_pubkey(x, k) != 1) goto fail;
    X509_NAME *nm = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0) != 1)
        goto fail;
    if (X509_set_issuer_name(x, nm) != 1) goto fail;
    /* Ed25519 signs the message itself: no digest. */
    if (X509_sign(x, k, NULL) <= 0) goto fail;
    *key = k;
    *cert = x;
    return MN_OK;
fail:
    X509_free(x);
    EVP_PKEY_free(k);
    return MN_ECRYPTO;
}

void mn_tls_key_free(EVP_PKEY *key) { EVP_PKEY_free(key); }
void mn_tls_cert_free(X509 *cert) { X509_free(cert); }

int mn_tls_conn_new(mn_tls_conn **out, mn_tls_ctx *ctx, bool is_server) {
    if (out == NULL || ctx == NULL) return MN_EINVAL;
    *out = NULL;
    mn_tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL) return MN_ENOMEM;
    c->ssl = SSL_new(ctx->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        return MN_ECRYPTO;
    }
    /* An empty memory BIO means "try again", not end of file. */
    BIO_set_mem_eof_return(c->rbio, -1);
    BIO_set_mem_eof_return(c->wbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    if (is_server)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    *out = c;
    return MN_OK;
}

void mn_tls_conn_free(mn_tls_conn *c) {
    if (c == NULL) return;
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
}

int mn_tls_conn_feed(mn_tls_conn *c, const uint8_t *data, size_t len) {
    assert(c != NULL);
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        int w = BIO_write(c->rbio, data, chunk);
        if (w <= 0) return MN_ENOMEM;
        data += w;
        len -= (size_t)w;
    }
    return MN_OK;
}

int mn_tls_conn_handshake(mn_tls_conn *c, char *err, size_t err_len) {
    assert(c != NULL);
    if (c->established) return MN_OK;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        if (SSL_version(c->ssl) != TLS1_3_VERSION) {
            set_err(err, err_len, "tls: negotiated a version other than 1.3");
            return MN_ECRYPTO;
        }
        X509 *peer = SSL_get0_peer_certificate(c->ssl);
        if (peer == NULL) {
            set_err(err, err_len, "tls: peer sent no certificate");
            return MN_ECRYPTO;
        }
        c->established = true;
        return MN_OK;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return MN_EAGAIN;
    set_err(err, err_len, "tls: handshake failed");
    ERR_clear_error();
    return MN_ECRYPTO;
}

bool mn_tls_conn_established(const mn_tls_conn *c) { return c != NULL && c->established; }

int mn_tls_conn_peer_pin(const mn_tls_conn *c, uint8_t pin[static MN_TLS_PIN_LEN]) {
    assert(c != NULL);
    if (!c->established) return MN_ESTATE;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL) return MN_ECRYPTO;
    return mn_tls_pin_of_cert(pin, peer);
}

int mn_tls_conn_read(mn_tls_conn *c, uint8_t *buf, size_t cap, size_t *n) {
    assert(c != NULL && buf != NULL && n != NULL);
    *n = 0;
    if (!c->established) return MN_ESTATE;
    if (cap == 0) return MN_EAGAIN;
    ERR_clear_error();
    size_t got = 0;
    int r = SSL_read_ex(c->ssl, buf, cap, &got);
    if (r == 1) {
        *n = got;
        return MN_OK;
    }
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return MN_EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN) return MN_EIO;
    return MN_ECRYPTO;
}

int mn_tls_conn_write(mn_tls_conn *c, const uint8_t *data, size_t len) {
    assert(c != NULL);
    if (!c->established) return MN_ESTATE;
    ERR_clear_error();
    while (len > 0) {
        size_t done = 0;
        if (SSL_write_ex(c->ssl, data, len, &done) != 1 || done == 0) {
            ERR_clear_error();
            return MN_ECRYPTO;
        }
        data += done;
        len -= done;
    }
    return MN_OK;
}

size_t mn_tls_conn_out_pending(const mn_tls_conn *c) {
    assert(c != NULL);
    return BIO_ctrl_pending(c->wbio);
}

int mn_tls_conn_take_out(mn_tls_conn *c, uint8_t *buf, size_t cap, size_t *n) {
    assert(c != NULL && n != NULL);
    *n = 0;
    if (cap == 0 || BIO_ctrl_pending(c->wbio) == 0) return MN_OK;
    size_t got = 0;
    if (BIO_read_ex(c->wbio, buf, cap, &got) != 1) return MN_EIO;
    *n = got;
    return MN_OK;
}
