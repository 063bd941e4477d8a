/* net.h: authenticated peer links between midnode nodes (DESIGN.md section 8).
 *
 * A link is TCP on libuv carrying TLS 1.3 (node/tls.h) with mutual
 * authentication. Each side first sends the 8-byte cleartext preamble
 * "midnode1"; anything else is refused before any TLS work. After the
 * handshake the peer's key pin must be the pin configured for a known peer
 * (for an outbound link: the pin of the peer dialled); otherwise the link is
 * refused and the reason logged. Then frames flow both ways: a 4-byte
 * big-endian length, then that many bytes (a serialised PeerMessage; net does
 * not parse it). A length above the frame bound closes the link before
 * anything is allocated.
 *
 * Dialling: a peer with should_dial and a non-empty addr is dialled, and
 * redialled after a failure with exponential backoff (backoff_min_ms doubling
 * to backoff_max_ms, each delay drawn in [d/2, d] from mn_random_bytes). No
 * dial happens while the peer has a live link. Duplicate links: when a second
 * link to the same peer comes up, both ends keep the same one: if the two
 * links were dialled from different ends, the one dialled by the node whose
 * name sorts lower (strcmp) survives; if both were dialled from the same end,
 * the newer survives (the older is presumed half-open, and is closed). The
 * losing link of the first case is drained, not cut: neither end writes on it
 * any more, both read it to its end (its dialler shuts it down after its
 * queued writes), so frames already sent on it still arrive, possibly out of
 * order with frames on the surviving link.
 *
 * Names: the rule needs every node to call each other by the same names
 * (they come from genesis); the names are not authenticated, the pins are.
 *
 * Memory per link is bounded by the outbound queue bound plus one partial
 * inbound frame (frame_bytes_max), and only authenticated peers get as far
 * as sending frames; unauthenticated connections are bounded in number
 * (MN_NET_PENDING_MAX) and time (handshake_timeout_ms).
 *
 * Slow peers: each link's bytes waiting to be written are bounded by
 * out_queue_bytes_max; a send that would exceed it closes the link (logged as
 * peer_slow) instead of growing memory. The peer will redial or be redialled.
 *
 * Threading: single-threaded, on the loop given to mn_net_new. Callbacks run
 * on that loop; inside one it is safe to call mn_net_send, mn_net_broadcast,
 * mn_net_stop and mn_net_free (a link is freed only in its close callback).
 * on_peer_down may also fire from inside mn_net_send / mn_net_broadcast, when
 * the send closes a slow link.
 *
 * Addresses: numeric IPv4/IPv6 are used as they are; a host name is resolved
 * on every dial (uv_getaddrinfo, IPv4 preferred), so a restarted container
 * with a new address is found again.
 * The peer name passed to a callback stays valid until mn_net_free.
 *
 * Signals: mn_net_new sets SIGPIPE to ignored if it has the default action
 * (a reset connection must surface as a write error, not end the process).
 *
 * Shutdown: mn_net_stop closes every handle and fires no more callbacks;
 * mn_net_free stops (if needed) and releases the net once the close callbacks
 * have run, so run the loop (uv_run) after mn_net_free and before
 * uv_loop_close. */
#ifndef MN_NET_H
#define MN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "mn.h"
#include "tls.h"

#define MN_NET_PREAMBLE "midnode1"
#define MN_NET_PREAMBLE_LEN 8
#define MN_NET_NAME_MAX MN_MEMBER_ID_MAX  /* bytes of a peer name, without NUL */
#define MN_NET_ADDR_MAX 255               /* "host:port", without NUL */
#define MN_NET_PEERS_MAX (MN_VALIDATORS_MAX + 192) /* validators and observers */
#define MN_NET_PENDING_MAX 64             /* inbound links not yet authenticated */
#define MN_NET_OUT_QUEUE_BYTES_DEFAULT (64u * 1024 * 1024)
#define MN_NET_BACKOFF_MIN_MS_DEFAULT 100
#define MN_NET_BACKOFF_MAX_MS_DEFAULT 5000
#define MN_NET_HANDSHAKE_MS_DEFAULT 10000

_Static_assert(MN_NET_OUT_QUEUE_BYTES_DEFAULT > MN_PEER_FRAME_BYTES_MAX,
               "one largest frame fits in an empty queue");

typedef struct mn_net mn_net;

typedef struct mn_net_peer_config {
    char name[MN_NET_NAME_MAX + 1];
    char addr[MN_NET_ADDR_MAX + 1];   /* "host:port", "[v6]:port"; "" = only dials in */
    uint8_t pin[MN_TLS_PIN_LEN];
    bool should_dial;
} mn_net_peer_config;

typedef struct mn_net_callbacks {
    void *ctx;
    /* One whole frame; frame[0..len) is valid only during the call. May be NULL. */
    void (*on_message)(void *ctx, const char *peer, const uint8_t *frame, size_t len);
    /* The peer got its (first) live link / lost its last one. May be NULL. */
    void (*on_peer_up)(void *ctx, const char *peer);
    void (*on_peer_down)(void *ctx, const char *peer);
} mn_net_callbacks;

typedef struct mn_net_config {
    const char *name;                 /* own name, 1..MN_NET_NAME_MAX bytes */
    const char *listen_addr;          /* "host:port" (port 0 = any free); NULL or "" = no listener */
    EVP_PKEY *key;                    /* borrowed; net keeps its own references */
    X509 *cert;
    const mn_net_peer_config *peers;  /* copied; names unique, not own name */
    size_t peer_count;                /* <= MN_NET_PEERS_MAX */
    mn_net_callbacks cb;
    /* 0 selects the default for each of these. out_queue_bytes_max should
     * exceed the largest frame sent, or sending it always drops the link;
     * it is capped at 1 GiB and the backoffs at 10 minutes. */
    size_t out_queue_bytes_max;
    uint32_t frame_bytes_max;         /* <= MN_PEER_FRAME_BYTES_MAX */
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    uint32_t handshake_timeout_ms;
} mn_net_config;

typedef struct mn_net_stats {
    uint64_t bytes_in, bytes_out;     /* wire bytes (TLS records, preamble) */
    uint64_t frames_in, frames_out;
    uint64_t links_up;                /* links that became live */
    uint64_t refused;                 /* bad preamble, handshake failure, unknown or wrong pin, too many pending */
    uint64_t dropped_oversized;       /* links closed for a frame above the bound */
    uint64_t dropped_slow;            /* links closed for a full outbound queue */
    uint64_t dropped_duplicate;       /* links closed by the duplicate rule */
    uint64_t dials;                   /* outbound connection attempts */
    uint64_t links_open;              /* gauge: connections now open, in any state */
} mn_net_stats;

typedef struct mn_net_peer_info {
    char name[MN_NET_NAME_MAX + 1];
    char addr[MN_NET_ADDR_MAX + 1];
    bool up;
    bool outbound;                    /* the live link was dialled by us */
    size_t out_queue_bytes;           /* bytes waiting to be written on the live link */
    size_t links;                     /* connections to it: the live one, plus a duplicate draining */
} mn_net_peer_info;

/* Creates the net, starts listening and dialling. Returns MN_OK, MN_EINVAL
 * (bad config: names, addresses, bounds), MN_EIO (cannot listen), MN_ECRYPTO
 * or MN_ENOMEM, with a reason in err. On failure *out is NULL and any
 * handle already opened is closing: run the loop before uv_loop_close. */
int mn_net_new(mn_net **out, uv_loop_t *loop, const mn_net_config *cfg, char *err, size_t err_len) MN_WARN_UNUSED;

/* Port the listener is bound to (useful with port 0), or 0 without listener. */
uint16_t mn_net_listen_port(const mn_net *net);

/* Sets or changes a known peer's dial address ("" stops dialling it) and
 * dials it now if it should be dialled and has no live link.
 * Returns MN_OK, MN_ENOTFOUND or MN_EINVAL (address too long or unparsable). */
int mn_net_set_peer_addr(mn_net *net, const char *peer, const char *addr) MN_WARN_UNUSED;

/* Queues one frame to a peer. Returns MN_OK, MN_ENOTFOUND (unknown peer),
 * MN_ESTATE (no live link, or stopped), MN_ETOOBIG (len above the frame
 * bound), MN_EAGAIN (queue bound exceeded: the link was closed) or
 * MN_ECRYPTO. The bytes are copied (encrypted) before it returns. */
int mn_net_send(mn_net *net, const char *peer, const uint8_t *bytes, size_t len) MN_WARN_UNUSED;

/* Queues one frame to every peer with a live link. Returns how many peers it
 * was queued to (0..MN_NET_PEERS_MAX), or MN_ETOOBIG. */
int mn_net_broadcast(mn_net *net, const uint8_t *bytes, size_t len);

/* Writes out the frames queued so far (normally written once per loop
 * iteration, so that the frames of one iteration leave together): for a
 * frame that others wait on and that the caller would otherwise hold back
 * behind the rest of its work. No-op on a stopped net. */
void mn_net_flush(mn_net *net);

/* Number of peers with a live link. */
size_t mn_net_peer_count(const mn_net *net);

/* Fills out[0..cap) with the configured peers (live or not), in configuration
 * order; returns how many were written. */
size_t mn_net_peers(const mn_net *net, mn_net_peer_info *out, size_t cap);

/* Copies the counters. */
void mn_net_stats_get(const mn_net *net, mn_net_stats *out);

/* Closes the listener, every link and timer. No callback fires after it.
 * Idempotent. */
void mn_net_stop(mn_net *net);

/* True once every handle of a stopped net has finished closing. */
bool mn_net_closed(const mn_net *net);

/* Stops the net and frees it when its handles have closed (at once if they
 * already have). NULL-safe. The pointer is invalid afterwards. */
void mn_net_free(mn_net *net);

/* ---- frame decoder, separate so it can be fuzzed without sockets ---- */

/* Incremental decoder of length-prefixed frames. The length is checked
 * against frame_bytes_max before the frame buffer is allocated. */
typedef struct mn_frame_decoder {
    uint32_t frame_bytes_max;
    uint8_t hdr[4];
    size_t hdr_got;
    uint8_t *frame;   /* owned; NULL between frames */
    uint32_t frame_len;
    uint32_t frame_got;
} mn_frame_decoder;

typedef int (*mn_frame_fn)(void *ctx, const uint8_t *frame, size_t len);

void mn_frame_decoder_init(mn_frame_decoder *d, uint32_t frame_bytes_max);
void mn_frame_decoder_reset(mn_frame_decoder *d);  /* frees any partial frame */

/* Consumes data[0..len), calling fn for each complete frame. Returns MN_OK,
 * MN_ETOOBIG (a length above the bound: the stream is unusable),
 * MN_ENOMEM, or the first non-MN_OK value fn returned (decoding stops there;
 * *used, if not NULL, says how many bytes were consumed). */
int mn_frame_decode(mn_frame_decoder *d, const uint8_t *data, size_t len, mn_frame_fn fn, void *ctx,
                    size_t *used) MN_WARN_UNUSED;

#endif
