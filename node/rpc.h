/* rpc.h: the client RPC server: framed protobuf requests over TCP on libuv.
 *
 * Wire: each frame is a 4-byte big-endian length, then one serialised
 * RpcRequest (client to server) or RpcResponse (server to client), see
 * proto/midnode.proto. Requests are pipelined: a client may send many before
 * reading, and responses come back in whatever order the daemon answers,
 * matched by RpcRequest.id. A streaming call (WatchStatusChanges) answers
 * with responses whose `more` is true, ended by one with `more` false.
 *
 * Limits (all from mn_rpc_config, all enforced here, never by the handler):
 *  - a frame longer than frame_bytes_max is refused before anything is
 *    allocated for it: RPC_TOO_LARGE (id 0), then the connection is closed;
 *  - bytes that do not decode as an RpcRequest: RPC_BAD_REQUEST (id 0), then
 *    the connection is closed;
 *  - a connection beyond connections_max is accepted, answered with one
 *    RPC_OVERLOADED (id 0) and closed;
 *  - a request beyond inflight_max unanswered calls on its connection:
 *    RPC_OVERLOADED for that id; the connection stays open;
 *  - an unknown method: RPC_UNKNOWN_METHOD for that id (stays open); a
 *    request reusing an id still in flight: RPC_BAD_REQUEST (stays open);
 *  - a connection with no call in flight that sends nothing for
 *    idle_timeout_ms is closed;
 *  - a client that stops reading so that more than write_queue_bytes_max of
 *    responses wait is closed (one slow reader cannot hold the node's memory).
 * Errors on one connection never affect another.
 *
 * Calls. For every well-formed request the handler gets an mn_rpc_call. The
 * daemon answers now (inside the handler) or later (from any callback on the
 * same loop thread) with mn_rpc_reply, which ends the call, or sends stream
 * items with mn_rpc_stream first. A call is owned by this module; the daemon
 * holds a borrowed pointer that stays valid until (a) it calls mn_rpc_reply,
 * or (b) the call's cancel callback (mn_rpc_call_on_cancel) has returned.
 * When a connection closes with calls pending, each pending call's cancel
 * callback runs once and the call is then freed; a pending call without a
 * cancel callback is instead detached: it stays valid, mn_rpc_stream on it
 * returns MN_ESTATE, and mn_rpc_reply frees it without sending anything.
 * So a call pointer never dangles as long as the daemon either registers a
 * cancel callback or eventually replies.
 *
 * Threading: everything runs on the loop's thread; nothing here is
 * thread-safe except mn_rpc_get_stats' counters being plain reads. */
#ifndef MN_RPC_H
#define MN_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "mn.h"

/* Largest response frame the server sends and the client accepts: a block
 * response can be larger than any request (MN_BLOCK_BYTES_MAX plus its
 * certificate). */
#define MN_RPC_RESPONSE_BYTES_MAX MN_PEER_FRAME_BYTES_MAX
#define MN_RPC_CONNECTIONS_MAX 65536
#define MN_RPC_INFLIGHT_MAX 65536
#define MN_RPC_METHOD_MAX 32 /* bytes of a method name */

_Static_assert(MN_RPC_FRAME_BYTES_MAX <= MN_RPC_RESPONSE_BYTES_MAX, "responses may be as large as requests");

/* Method names of RpcRequest.method. */
#define MN_RPC_SUBMIT_TX "SubmitTx"
#define MN_RPC_GET_STATUS "GetStatus"
#define MN_RPC_GET_STATUS_BATCH "GetStatusBatch"
#define MN_RPC_GET_CHAIN_INFO "GetChainInfo"
#define MN_RPC_GET_SIGNER "GetSigner"
#define MN_RPC_GET_BLOCK "GetBlock"
#define MN_RPC_GET_TX "GetTx"
#define MN_RPC_WATCH_STATUS_CHANGES "WatchStatusChanges"

/* True when name is one of the methods above. */
bool mn_rpc_method_known(const char *name);

typedef struct mn_rpc_config {
    char host[64];                  /* listen address, e.g. "127.0.0.1" or "0.0.0.0" */
    uint16_t port;                  /* 0: an ephemeral port (read it with mn_rpc_port) */
    uint32_t frame_bytes_max;       /* 1 .. MN_RPC_FRAME_BYTES_MAX */
    uint32_t connections_max;       /* 1 .. MN_RPC_CONNECTIONS_MAX */
    uint32_t inflight_max;          /* per connection, 1 .. MN_RPC_INFLIGHT_MAX */
    uint32_t idle_timeout_ms;       /* 0: never */
    uint32_t write_queue_bytes_max; /* per connection; >= MN_RPC_RESPONSE_BYTES_MAX + 4 */
} mn_rpc_config;

/* Defaults: 127.0.0.1:26601, frame MN_RPC_FRAME_BYTES_MAX, 1024 connections,
 * 256 in flight, 60 s idle, 32 MiB write queue. Never fails. */
void mn_rpc_config_default(mn_rpc_config *cfg);

typedef struct mn_rpc mn_rpc;
typedef struct mn_rpc_call mn_rpc_call;

/* Called once per accepted request, on the loop thread. method is one of the
 * MN_RPC_* names (NUL-terminated, valid during the call only); payload[0..len)
 * is the request message, valid during the call only (copy what is needed
 * later). The handler must eventually end the call (see above). */
typedef void (*mn_rpc_handler)(void *ctx, mn_rpc_call *call, const char *method,
                               const uint8_t *payload, size_t len);

/* Called when the call's connection closes before the call ended. The call
 * is freed right after this returns; the callback must not reply to it. */
typedef void (*mn_rpc_cancel_fn)(void *arg, mn_rpc_call *call);

typedef struct mn_rpc_stats {
    uint64_t connections_accepted; /* including those refused for the limit */
    uint64_t connections_refused;  /* over connections_max */
    uint64_t connections_open;
    uint64_t requests;             /* frames decoded as requests */
    uint64_t responses;            /* response frames queued (stream items included) */
    uint64_t errors;               /* error responses sent by this module or with code != RPC_OK */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t calls_pending;        /* handed to the handler and not yet ended */
} mn_rpc_stats;

/* Starts listening. *out is the new server; loop must outlive it.
 * Returns MN_OK, MN_EINVAL (bad config; err says which field), MN_EIO (bind
 * or listen failed; err says why), MN_ENOMEM. */
int mn_rpc_new(mn_rpc **out, uv_loop_t *loop, const mn_rpc_config *cfg,
               mn_rpc_handler handler, void *ctx, char *err, size_t err_len) MN_WARN_UNUSED;

/* Optional: called for every whole request in one read from a connection,
 * before the first of them is handled, with the same method and payload
 * the handler will get: first for each of them with stage 0, then for each
 * with stage 1. It must have no effect a client could observe; it is there
 * so that a handler can start the memory loads of all the requests of a
 * read at once (a pipelining client sends many per read) instead of
 * meeting their misses one at a time. Requests that do not decode are not
 * shown. */
typedef void (*mn_rpc_peek_fn)(void *ctx, int stage, const char *method, const uint8_t *payload, size_t len);
void mn_rpc_set_peek(mn_rpc *srv, mn_rpc_peek_fn peek);

/* The port actually bound. */
uint16_t mn_rpc_port(const mn_rpc *srv);

void mn_rpc_get_stats(const mn_rpc *srv, mn_rpc_stats *out);

/* Stops listening, cancels every pending call (cancel callbacks run inside
 * this function), and closes every connection. The memory is released from
 * the close callbacks, so the caller keeps running the loop until it has no
 * more handles (uv_run returns). NULL-safe. Not to be called from inside a
 * handler or cancel callback. */
void mn_rpc_free(mn_rpc *srv);

/* Registers fn(arg, call) to run if the connection closes before the call ends. */
void mn_rpc_call_on_cancel(mn_rpc_call *call, mn_rpc_cancel_fn fn, void *arg);

/* The request id (for logs). */
uint64_t mn_rpc_call_id(const mn_rpc_call *call);

/* False once the connection of the call has closed (a detached call). */
bool mn_rpc_call_alive(const mn_rpc_call *call);

/* Sends the final response and frees the call; call is invalid afterwards,
 * whatever this returns. code is an RpcCode, tx_code a TxCode (0 unless
 * RPC_TX_REJECTED), message may be NULL, payload[0..len) the response
 * message (may be NULL with len 0). Returns MN_OK, MN_ESTATE (connection
 * already gone: nothing sent), MN_ETOOBIG (payload over the response
 * bound: RPC_INTERNAL was sent instead), MN_EIO (the write failed and the
 * connection is closing). */
int mn_rpc_reply(mn_rpc_call *call, int code, int tx_code, const char *message,
                 const uint8_t *payload, size_t len);

/* Sends one stream item (code RPC_OK, more = true); the call stays open.
 * Returns MN_OK; MN_ESTATE (connection gone or closing: nothing sent; stop
 * streaming; the call stays valid until its cancel callback runs or the
 * daemon replies); MN_ETOOBIG (item over the bound: not sent); MN_EAGAIN
 * (the client is not reading fast enough: this item was not sent, the
 * daemon decides whether to drop it or end the stream); MN_EIO / MN_ENOMEM
 * (the write failed: the connection closes on a later loop turn, the call
 * is cancelled then). Never runs a cancel callback itself. */
int mn_rpc_stream(mn_rpc_call *call, const uint8_t *payload, size_t len);

#endif
