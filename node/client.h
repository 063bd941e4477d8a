/* client.h: blocking client of the RPC API (plain sockets, timeouts), and
 * transaction building. Used by midctl, midbench and the tests.
 *
 * One mn_client is one TCP connection; it is not thread-safe (one thread per
 * client). Every blocking operation is bounded by the client's timeout.
 * Responses larger than MN_RPC_RESPONSE_BYTES_MAX are refused (the frame
 * length is checked before anything is allocated).
 *
 * Ownership: protobuf messages returned through `**out` arguments are
 * unpacked by protobuf-c; the caller frees each with the matching
 * midnode__*__free_unpacked(msg, NULL). Byte buffers returned through
 * `uint8_t **` are malloc'd; the caller free()s them.
 *
 * Errors: MN_OK; MN_EIO for a transport failure or timeout (the connection is
 * then unusable: free it); MN_ECORRUPT for a response that does not decode;
 * MN_EINVAL for a bad argument. Typed helpers also return, when the server
 * answered with an error code, MN_EPERM (RPC_TX_REJECTED), MN_ENOTFOUND
 * (RPC_NOT_FOUND), MN_EAGAIN (RPC_OVERLOADED, RPC_UNAVAILABLE, RPC_TIMEOUT),
 * MN_ETOOBIG (RPC_TOO_LARGE), MN_EINVAL (RPC_BAD_REQUEST,
 * RPC_UNKNOWN_METHOD) or MN_ESTATE (anything else); the server's code,
 * tx_code and message are then in mn_client_last(). */
#ifndef MN_CLIENT_H
#define MN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "midnode.pb-c.h"
#include "mn.h"

#define MN_CLIENT_DEFAULT_NODE "127.0.0.1:26601"
#define MN_CLIENT_TIMEOUT_MS_DEFAULT 10000

typedef struct mn_client mn_client;

/* What the server said in the last response a typed helper read. code is an
 * RpcCode, or -1 when no response came (transport failure). */
typedef struct mn_client_result {
    int code;
    int tx_code;
    char message[256];
} mn_client_result;

/* Parses "host:port" (host may be a name, an IPv4 address or "[v6]").
 * Returns MN_OK or MN_EINVAL. host must hold host_len bytes. */
int mn_client_parse_addr(char *host, size_t host_len, uint16_t *port, const char *hostport) MN_WARN_UNUSED;

/* Connects, waiting at most timeout_ms (0: MN_CLIENT_TIMEOUT_MS_DEFAULT),
 * which also becomes the timeout of every later operation.
 * Returns MN_OK, MN_EINVAL (bad address), MN_EIO (err says why), MN_ENOMEM. */
int mn_client_connect(mn_client **out, const char *hostport, uint32_t timeout_ms,
                      char *err, size_t err_len) MN_WARN_UNUSED;

void mn_client_free(mn_client *c); /* NULL-safe */

void mn_client_set_timeout(mn_client *c, uint32_t timeout_ms);

/* The last server answer seen by a typed helper or mn_client_call. */
const mn_client_result *mn_client_last(const mn_client *c);

/* ---- raw, pipelined ---- */

/* Sends one request; *id receives the id used (ids count up from 1).
 * Returns MN_OK, MN_EINVAL (method name too long / payload over the frame
 * bound), MN_EIO. */
int mn_client_send(mn_client *c, uint64_t *id, const char *method,
                   const uint8_t *payload, size_t len) MN_WARN_UNUSED;

/* Queues one request without sending it (ids as mn_client_send); a batch
 * goes out in one write at mn_client_flush, at mn_client_recv, or when the
 * queue passes 256 KiB. For pipelined load. Returns as mn_client_send. */
int mn_client_queue(mn_client *c, uint64_t *id, const char *method,
                    const uint8_t *payload, size_t len) MN_WARN_UNUSED;

/* Sends every queued request. Returns MN_OK or MN_EIO. */
int mn_client_flush(mn_client *c) MN_WARN_UNUSED;

/* Sends raw bytes as they are (tests: garbage, hand-made frames). */
int mn_client_send_raw(mn_client *c, const void *data, size_t len) MN_WARN_UNUSED;

/* Flushes queued requests, then reads the next response frame, whatever its
 * id. Returns MN_OK,
 * MN_EIO (closed, timed out), MN_ETOOBIG (frame over the bound), MN_ECORRUPT. */
int mn_client_recv(mn_client *c, Midnode__RpcResponse **out) MN_WARN_UNUSED;

/* send + recv of that id (responses to other ids are an error here: use
 * send/recv for pipelining). Fills mn_client_last(). Returns as recv; a
 * non-OK RpcCode is NOT an error here: inspect (*out)->code. */
int mn_client_call(mn_client *c, const char *method, const uint8_t *payload, size_t len,
                   Midnode__RpcResponse **out) MN_WARN_UNUSED;

/* ---- typed helpers (errors: see the top of this file) ---- */

/* The tx hash is SHA-256 of tx: compute it locally (mn_client_build_tx
 * returns it) so that it is known even when this call fails. */
int mn_client_submit_tx(mn_client *c, const uint8_t *tx, size_t tx_len, bool wait_commit,
                        uint32_t timeout_ms, Midnode__SubmitTxResponse **out) MN_WARN_UNUSED;
int mn_client_get_status(mn_client *c, const uint8_t credential_id[static MN_ID_LEN],
                         bool with_proof, Midnode__GetStatusResponse **out) MN_WARN_UNUSED;
int mn_client_get_status_batch(mn_client *c, const uint8_t (*ids)[MN_ID_LEN], size_t count,
                               bool with_proof, Midnode__GetStatusBatchResponse **out) MN_WARN_UNUSED;
int mn_client_get_chain_info(mn_client *c, Midnode__GetChainInfoResponse **out) MN_WARN_UNUSED;
int mn_client_get_signer(mn_client *c, const char *signer, Midnode__GetSignerResponse **out) MN_WARN_UNUSED;
/* height 0: the latest block. */
int mn_client_get_block(mn_client *c, uint64_t height, Midnode__GetBlockResponse **out) MN_WARN_UNUSED;
int mn_client_get_tx(mn_client *c, const uint8_t tx_hash[static MN_HASH_LEN],
                     Midnode__GetTxResponse **out) MN_WARN_UNUSED;

/* Starts a watch from from_height (0: from now); *id is the stream's id. */
int mn_client_watch_start(mn_client *c, uint64_t from_height, uint64_t *id) MN_WARN_UNUSED;
/* Next change of the stream: MN_OK with *out set; MN_ENOTFOUND when the
 * server ended the stream normally; errors as the typed helpers. Responses
 * with other ids are skipped. */
int mn_client_watch_next(mn_client *c, uint64_t id, Midnode__StatusChange **out) MN_WARN_UNUSED;

/* ---- transactions ---- */

/* Builds a signed Tx: copies body (its oneof body is what counts; its
 * chain_id, signer and nonce are ignored), sets chain_id, signer and nonce,
 * serialises the TxPayload once and signs SHA-256 of exactly those bytes.
 * *tx (malloc'd) receives the serialised Tx, tx_hash its SHA-256 (may be
 * NULL). Returns MN_OK, MN_EINVAL (chain id or signer too long, no body),
 * MN_ETOOBIG (over MN_TX_BYTES_MAX; MN_TX_BATCH_BYTES_MAX for an ISSUE_BATCH), MN_ECRYPTO, MN_ENOMEM. */
int mn_client_build_tx(uint8_t **tx, size_t *tx_len, uint8_t *tx_hash, const char *chain_id,
                       const char *signer, uint64_t nonce, const Midnode__TxPayload *body,
                       const uint8_t seckey[static MN_SECKEY_LEN]) MN_WARN_UNUSED;

/* Maps an RpcCode to the MN_E* code documented above (RPC_OK -> MN_OK). */
int mn_client_code_to_err(int rpc_code);

/* Names: "RPC_OK", "TX_WRONG_NONCE", "ACTIVE", ... (static strings; "?" when unknown). */
const char *mn_rpc_code_name(int rpc_code);
const char *mn_tx_code_name(int tx_code); /* defined in ledger.c */
const char *mn_status_name(int status);

#endif
