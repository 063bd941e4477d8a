/* tls.h: TLS 1.3 with mutual authentication over memory BIOs, and key pins.
 *
 * The socket belongs to the caller (net.c drives it from libuv): ciphertext
 * read from the socket goes in with mn_tls_conn_feed, ciphertext to send
 * comes out with mn_tls_conn_take_out, plaintext goes through
 * mn_tls_conn_read / mn_tls_conn_write. Nothing here blocks or touches a
 * file descriptor.
 *
 * Identity is a pin: SHA-256 of the DER SubjectPublicKeyInfo of a
 * certificate's public key. Certificates are self-signed and carry no
 * authority; the handshake only proves that the peer holds the private key of
 * the certificate it showed (TLS 1.3 CertificateVerify). The caller compares
 * mn_tls_conn_peer_pin against its allow-list after the handshake, so a
 * rotated certificate over the same key keeps working (DESIGN.md section 10).
 *
 * Only TLS 1.3 is offered or accepted. Both sides must present a certificate;
 * a peer without one fails the handshake. Session tickets are off.
 *
 * Ownership: EVP_PKEY and X509 passed in are borrowed; the context takes its
 * own references. Every *_new has a NULL-safe *_free. */
#ifndef MN_TLS_H
#define MN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"

/* OpenSSL's own type names, declared so that users need no OpenSSL include. */
typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

#define MN_TLS_PIN_LEN 32

typedef struct mn_tls_ctx mn_tls_ctx;
typedef struct mn_tls_conn mn_tls_conn;

/* Builds a context that uses key + cert for both the client and the server
 * role. Returns MN_OK, MN_EINVAL (key does not match cert, NULL argument),
 * MN_ECRYPTO or MN_ENOMEM, with a reason in err. */
int mn_tls_ctx_new(mn_tls_ctx **out, EVP_PKEY *key, X509 *cert, char *err, size_t err_len) MN_WARN_UNUSED;
void mn_tls_ctx_free(mn_tls_ctx *ctx);

/* pin = SHA-256(DER SubjectPublicKeyInfo). Returns MN_OK or MN_ECRYPTO. */
int mn_tls_pin_of_key(uint8_t pin[static MN_TLS_PIN_LEN], EVP_PKEY *key) MN_WARN_UNUSED;
int mn_tls_pin_of_cert(uint8_t pin[static MN_TLS_PIN_LEN], X509 *cert) MN_WARN_UNUSED;

/* Makes a fresh Ed25519 key and a self-signed certificate for it (subject
 * CN=common_name, valid 100 years: pins, not dates, carry trust). For tests
 * and tools; the daemon loads its key from keys/tls.pem. The caller owns both
 * and frees them with mn_tls_key_free / mn_tls_cert_free.
 * Returns MN_OK, MN_EINVAL or MN_ECRYPTO. */
int mn_tls_selfsigned_new(EVP_PKEY **key, X509 **cert, const char *common_name) MN_WARN_UNUSED;
void mn_tls_key_free(EVP_PKEY *key);
void mn_tls_cert_free(X509 *cert);

/* One connection in the client (is_server false) or server role.
 * Returns MN_OK, MN_ENOMEM or MN_ECRYPTO. */
int mn_tls_conn_new(mn_tls_conn **out, mn_tls_ctx *ctx, bool is_server) MN_WARN_UNUSED;
void mn_tls_conn_free(mn_tls_conn *c);

/* Hands ciphertext received from the socket to TLS. Returns MN_OK or
 * MN_ENOMEM. Call mn_tls_conn_handshake or mn_tls_conn_read next. */
int mn_tls_conn_feed(mn_tls_conn *c, const uint8_t *data, size_t len) MN_WARN_UNUSED;

/* Advances the handshake with what has been fed. Returns MN_OK once it is
 * complete (also on later calls), MN_EAGAIN while it needs more input,
 * MN_ECRYPTO when it failed (reason in err, if err_len > 0). Output may be
 * waiting afterwards in either case: send mn_tls_conn_take_out's bytes. */
int mn_tls_conn_handshake(mn_tls_conn *c, char *err, size_t err_len) MN_WARN_UNUSED;
bool mn_tls_conn_established(const mn_tls_conn *c);

/* The peer's pin; valid once the handshake is complete. Returns MN_OK,
 * MN_ESTATE (no handshake yet) or MN_ECRYPTO. */
int mn_tls_conn_peer_pin(const mn_tls_conn *c, uint8_t pin[static MN_TLS_PIN_LEN]) MN_WARN_UNUSED;

/* Reads decrypted application bytes into buf[0..cap); *n gets the count.
 * Returns MN_OK (*n > 0), MN_EAGAIN (nothing available now), MN_EIO (peer
 * closed the TLS session) or MN_ECRYPTO (protocol error, a record that fails
 * its check). Only valid after the handshake. */
int mn_tls_conn_read(mn_tls_conn *c, uint8_t *buf, size_t cap, size_t *n) MN_WARN_UNUSED;

/* Encrypts data[0..len) into the outgoing buffer (never partial: the memory
 * BIO grows). Returns MN_OK, MN_ESTATE (no handshake yet) or MN_ECRYPTO. */
int mn_tls_conn_write(mn_tls_conn *c, const uint8_t *data, size_t len) MN_WARN_UNUSED;

/* Ciphertext waiting to be sent, in bytes. */
size_t mn_tls_conn_out_pending(const mn_tls_conn *c);

/* Moves up to cap bytes of waiting ciphertext into buf; *n gets the count
 * (0 when nothing waits). Returns MN_OK or MN_EIO. */
int mn_tls_conn_take_out(mn_tls_conn *c, uint8_t *buf, size_t cap, size_t *n) MN_WARN_UNUSED;

#endif
