/* rpc.c: the client RPC server: frame decoding, limits, call lifetimes.
 *
 * Each connection owns two libuv handles (its socket and one timer) and is
 * freed only when both close callbacks have run. The timer does three jobs:
 * the idle timeout, the linger after a refusal (close once the error has been
 * written, or after MN_RPC_LINGER_MS), and deferred closes requested from
 * inside mn_rpc_reply / mn_rpc_stream, so that cancel callbacks never run
 * re-entrantly inside a call the daemon made.
 *
 * Responses are coalesced: mn_rpc_reply / mn_rpc_stream append the frame to
 * the connection's output buffer and a prepare and a check handle flush every
 * dirty connection with one write each, once per loop turn (before the loop
 * blocks, and after the I/O callbacks that produced the answers). A burst of
 * pipelined requests thus costs one write system call, not one per answer. */
#include "rpc.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "midnode.pb-c.h"

#define MN_RPC_READ_BUF_BYTES (64 * 1024)
#define MN_RPC_LINGER_MS 2000
#define MN_RPC_BACKLOG 511
/* Connections over the limit still get a one-frame refusal, up to this many
 * at a time; beyond that they are closed without a word. */
#define MN_RPC_REFUSING_MAX 64

typedef struct rpc_conn rpc_conn;

struct mn_rpc_call {
    rpc_conn *conn; /* NULL once detached */
    uint64_t id;
    mn_rpc_cancel_fn cancel;
    void *cancel_arg;
    mn_rpc_call *prev, *next;
};

struct rpc_conn {
    mn_rpc *srv;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles_open;
    rpc_conn *prev, *next;
    bool closing;      /* uv_close issued */
    bool close_soon;   /* a deferred close is scheduled on the timer */
    bool draining;     /* refused: finish writing, shut down, discard input */
    bool shutdown_sent;
    bool refused;      /* over connections_max */
    uint32_t writes_pending;
    /* responses queued but not yet handed to libuv */
    uint8_t *out;
    size_t out_len, out_cap;
    bool dirty;
    rpc_conn *dirty_prev, *dirty_next;
    /* frame being read */
    uint8_t hdr[4];
    uint32_t hdr_have;
    uint8_t *body;
    uint32_t body_len;
    uint32_t body_have;
    /* calls handed to the handler and not yet ended */
    mn_rpc_call *calls;
    uint32_t inflight;
};

struct mn_rpc {
    uv_loop_t *loop;
    mn_rpc_config cfg;
    mn_rpc_handler handler;
    mn_rpc_peek_fn peek; /* may be NULL */
    void *ctx;
    uv_tcp_t listener;
    bool listener_open;
    int flushers_open; /* prepare + check handles not yet closed */
    uv_prepare_t prepare;
    uv_check_t check;
    rpc_conn *dirty; /* connections with queued output */
    bool closing;
    uint16_t port;
    rpc_conn *conns;
    uint32_t conn_count;
    uint32_t refusing;
    mn_rpc_stats stats;
    uint8_t rbuf[MN_RPC_READ_BUF_BYTES]; /* shared: every read is consumed in its callback */
};

typedef struct rpc_write {
    uv_write_t req;
    rpc_conn *conn;
    uint8_t *data;
} rpc_write;

static const char *const k_methods[] = {
    MN_RPC_SUBMIT_TX, MN_RPC_GET_STATUS, MN_RPC_GET_STATUS_BATCH, MN_RPC_GET_CHAIN_INFO,
    MN_RPC_GET_SIGNER, MN_RPC_GET_BLOCK, MN_RPC_GET_TX, MN_RPC_WATCH_STATUS_CHANGES,
};

bool mn_rpc_method_known(const char *name) {
    if (!name) return false;
    for (size_t i = 0; i < sizeof k_methods / sizeof k_methods[0]; i++)
        if (strcmp(name, k_methods[i]) == 0) return true;
    return false;
}

void mn_rpc_config_default(mn_rpc_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
    cfg->port = 26601;
    cfg->frame_bytes_max = MN_RPC_FRAME_BYTES_MAX;
    cfg->connections_max = 1024;
    cfg->inflight_max = 256;
    cfg->idle_timeout_ms = 60000;
    cfg->write_queue_bytes_max = 32u * 1024 * 1024;
}

static void set_err(char *err, size_t err_len, const char *fmt, const char *a, long b) {
    if (err && err_len) snprintf(err, err_len, fmt, a, b);
}

/* ---------------------------------------------------------------- lifetime */

static void srv_maybe_free(mn_rpc *srv) {
    if (srv->closing && !srv->listener_open && srv->flushers_open == 0 && srv->conns == NULL) free(srv);
}

static void conn_unlink_call(rpc_conn *c, mn_rpc_call *call) {
    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    call->prev = call->next = NULL;
    assert(c->inflight > 0); /* every listed call was counted */
    c->inflight--;
    c->srv->stats.calls_pending--;
}

static void on_conn_handle_closed(uv_handle_t *h) {
    rpc_conn *c = h->data;
    if (--c->handles_open > 0) return;
    mn_rpc *srv = c->srv;
    if (c->prev) c->prev->next = c->next;
    else srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->conn_count--;
    if (c->refused) srv->refusing--;
    srv->stats.connections_open = srv->conn_count;
    free(c->body);
    free(c);
    srv_maybe_free(srv);
}

static void conn_undirty(rpc_conn *c) {
    if (!c->dirty) return;
    if (c->dirty_prev) c->dirty_prev->dirty_next = c->dirty_next;
    else c->srv->dirty = c->dirty_next;
    if (c->dirty_next) c->dirty_next->dirty_prev = c->dirty_prev;
    c->dirty_prev = c->dirty_next = NULL;
    c->dirty = false;
}

static void conn_mark_dirty(rpc_conn *c) {
    if (c->dirty) return;
    c->dirty = true;
    c->dirty_prev = NULL;
    c->dirty_next = c->srv->dirty;
    if (c->srv->dirty) c->srv->dirty->dirty_prev = c;
    c->srv->dirty = c;
}

/* Closes now: cancels pending calls (their callbacks run here), then the
 * handles. Only called from libuv callbacks or mn_rpc_free, never from
 * inside a function the daemon called. */
static void conn_close(rpc_conn *c) {
    if (c->closing) return;
    c->closing = true;
    while (c->calls) {
        mn_rpc_call *call = c->calls;
        conn_unlink_call(c, call);
        if (call->cancel) {
            call->cancel(call->cancel_arg, call);
            free(call);
        } else {
            call->conn = NULL; /* detached: freed by the daemon's mn_rpc_reply */
        }
    }
    free(c->body);
    c->body = NULL;
    conn_undirty(c);
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t);

static void conn_close_soon(rpc_conn *c) {
    if (c->closing || c->close_soon) return;
    c->close_soon = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void conn_touch(rpc_conn *c) {
    if (c->closing || c->close_soon || c->draining) return;
    if (c->srv->cfg.idle_timeout_ms) uv_timer_start(&c->timer, on_timer, c->srv->cfg.idle_timeout_ms, 0);
}

static void on_timer(uv_timer_t *t) {
    rpc_conn *c = t->data;
    if (c->close_soon || c->draining) {
        conn_close(c);
        return;
    }
    if (c->inflight > 0 || c->writes_pending > 0 || c->out_len > 0) {
        conn_touch(c); /* a watch or a slow answer is not idleness */
        return;
    }
    LOG_DEBUG("rpc_idle_close", "idle_ms=%u", c->srv->cfg.idle_timeout_ms);
    conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    free(req);
}

/* After a refusal: once the error frame is out, shut down our side and keep
 * discarding input until EOF (closing with unread input would reset the
 * connection and could destroy the error frame before the client reads it). */
static void conn_drain_progress(rpc_conn *c) {
    if (c->closing || !c->draining || c->writes_pending > 0 || c->out_len > 0 || c->shutdown_sent) return;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
        return;
    }
    c->shutdown_sent = true;
}

static void conn_start_drain(rpc_conn *c) {
    if (c->closing || c->draining) return;
    c->draining = true;
    free(c->body);
    c->body = NULL;
    uv_timer_start(&c->timer, on_timer, MN_RPC_LINGER_MS, 0);
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *req, int status) {
    rpc_write *w = (rpc_write *)req;
    rpc_conn *c = w->conn;
    free(w->data);
    free(w);
    c->writes_pending--;
    if (c->closing) return;
    if (status < 0) {
        LOG_DEBUG("rpc_write_failed", "err=%s", uv_strerror(status));
        conn_close(c);
        return;
    }
    conn_drain_progress(c);
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

/* Queues one response frame. Never closes synchronously (see conn_close).
 * Returns MN_OK, MN_ESTATE (closing), MN_ETOOBIG (response over the bound,
 * nothing queued), MN_EIO (queue over its bound or write failed: a close is
 * scheduled), MN_ENOMEM (a close is scheduled). */
static int conn_send(rpc_conn *c, uint64_t id, int code, int tx_code, const char *message,
                     const uint8_t *payload, size_t len, bool more) {
    if (c->closing || c->close_soon) return MN_ESTATE;
    /* RpcResponse is written field by field (proto3: fields at their
     * default are left out, as protobuf-c does): a status answer is a few
     * dozen bytes and packing it through protobuf-c cost as much as building
     * it. Enums are int32: a negative one takes ten bytes. */
    size_t mlen = message ? strlen(message) : 0;
    if (!payload) len = 0;
    size_t size = id ? 1 + varint_len(id) : 0;
    if (code) size += 1 + varint_len((uint64_t)(int64_t)code);
    if (mlen) size += 1 + varint_len(mlen) + mlen;
    if (len) size += 1 + varint_len(len) + len;
    if (more) size += 2;
    if (tx_code) size += 1 + varint_len((uint64_t)(int64_t)tx_code);
    if (size > MN_RPC_RESPONSE_BYTES_MAX) return MN_ETOOBIG;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->out_len;
    if (queued + size + 4 > c->srv->cfg.write_queue_bytes_max) {
        LOG_WARN("rpc_slow_reader", "queued_bytes=%zu", queued);
        conn_close_soon(c);
        return MN_EIO;
    }
    if (c->out_len + 4 + size > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + 4 + size) cap *= 2;
        uint8_t *grown = realloc(c->out, cap);
        if (!grown) {
            conn_close_soon(c);
            return MN_ENOMEM;
        }
        c->out = grown;
        c->out_cap = cap;
    }
    uint8_t *f = c->out + c->out_len;
    f[0] = (uint8_t)(size >> 24);
    f[1] = (uint8_t)(size >> 16);
    f[2] = (uint8_t)(size >> 8);
    f[3] = (uint8_t)size;
    uint8_t *p = f + 4;
    if (id) {
        *p++ = 0x08;
        p += put_varint(p, id);
    }
    if (code) {
        *p++ = 0x10;
        p += put_varint(p, (uint64_t)(int64_t)code);
    }
    if (mlen) {
        *p++ = 0x1a;
        p += put_varint(p, mlen);
        memcpy(p, message, mlen);
        p += mlen;
    }
    if (len) {
        *p++ = 0x22;
        p += put_varint(p, len);
        memcpy(p, payload, len);
        p += len;
    }
    if (more) {
        *p++ = 0x28;
        *p++ = 1;
    }
    if (tx_code) {
        *p++ = 0x30;
        p += put_varint(p, (uint64_t)(int64_t)tx_code);
    }
    assert((size_t)(p - f - 4) == size);
    c->out_len += 4 + size;
    conn_mark_dirty(c);
    mn_rpc_stats *st = &c->srv->stats;
    st->responses++;
    st->bytes_out += 4 + size;
    if (code != 0) st->errors++;
    return MN_OK;
}

#define RPC_OUT_KEEP_BYTES (64u << 10)

/* Hands the queued output to the socket. Runs only from the prepare/check
 * callbacks, so it may close the connection directly. When nothing is
 * queued in libuv the bytes go straight out with uv_try_write, keeping the
 * buffer for the next answers: a completed uv_write would cost an
 * allocation, a callback and (libuv re-arms the socket's epoll entry when
 * its write queue drains) an epoll_ctl per flush, which on the
 * one-request-per-connection status path was a tenth of the node's time. */
static void conn_flush(rpc_conn *c) {
    conn_undirty(c);
    if (c->closing || c->out_len == 0) return;
    size_t sent = 0;
    if (c->writes_pending == 0) {
        uv_buf_t all = uv_buf_init((char *)c->out, (unsigned)c->out_len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &all, 1);
        if (n < 0 && n != UV_EAGAIN) {
            LOG_DEBUG("rpc_write_failed", "err=%s", uv_strerror(n));
            conn_close(c);
            return;
        }
        sent = n > 0 ? (size_t)n : 0;
        if (sent == c->out_len) {
            c->out_len = 0;
            if (c->out_cap > RPC_OUT_KEEP_BYTES) { /* after a large answer: do not hold it per connection */
                free(c->out);
                c->out = NULL;
                c->out_cap = 0;
            }
            conn_drain_progress(c);
            return;
        }
    }
    /* The rest waits in libuv's queue: the whole buffer is handed over,
     * or what the socket left of it is copied to one of its own. */
    rpc_write *w = malloc(sizeof *w);
    uint8_t *rest = sent == 0 ? c->out : malloc(c->out_len - sent);
    if (!w || !rest) {
        free(w);
        if (rest != c->out) free(rest);
        conn_close(c);
        return;
    }
    size_t rest_len = c->out_len - sent;
    if (sent == 0) {
        c->out = NULL;
        c->out_cap = 0;
    } else {
        memcpy(rest, c->out + sent, rest_len);
    }
    c->out_len = 0;
    w->conn = c;
    w->data = rest;
    uv_buf_t buf = uv_buf_init((char *)rest, (unsigned)rest_len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc != 0) {
        free(w->data);
        free(w);
        LOG_DEBUG("rpc_write_failed", "err=%s", uv_strerror(rc));
        conn_close(c);
        return;
    }
    c->writes_pending++;
}

static void flush_all(mn_rpc *srv) {
    while (srv->dirty) conn_flush(srv->dirty);
}

static void on_prepare(uv_prepare_t *h) { flush_all(h->data); }
static void on_check(uv_check_t *h) { flush_all(h->data); }

/* An error this module answers itself. */
static void conn_error(rpc_conn *c, uint64_t id, int code, const char *message) {
    (void)conn_send(c, id, code, 0, message, NULL, 0, false);
}

/* ---------------------------------------------------------------- reading */

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* The request fields a call needs, decoded in place. */
typedef struct rpc_req {
    uint64_t id;
    char method[MN_RPC_METHOD_MAX + 1];
    const uint8_t *payload;
    size_t payload_len;
} rpc_req;

/* Reads the plain form every client sends: fields 1 (id), 2 (method, at
 * most MN_RPC_METHOD_MAX bytes, no NUL) and 3 (payload), each at most once,
 * nothing else. False for anything else, which then goes through protobuf-c
 * (so the two readings never disagree on what they both accept). */
static bool fast_decode(const uint8_t *data, size_t len, rpc_req *r) {
    const uint8_t *p = data, *end = data + len;
    unsigned seen = 0;
    r->id = 0;
    r->method[0] = 0;
    r->payload = NULL;
    r->payload_len = 0;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t v;
        if (key == 0x08 && !(seen & 1)) {
            if (!get_varint(&p, end, &v)) return false;
            r->id = v;
            seen |= 1;
        } else if ((key == 0x12 && !(seen & 2)) || (key == 0x1a && !(seen & 4))) {
            if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p)) return false;
            if (key == 0x12) {
                if (v > MN_RPC_METHOD_MAX || memchr(p, 0, (size_t)v)) return false;
                memcpy(r->method, p, (size_t)v);
                r->method[v] = 0;
                seen |= 2;
            } else {
                r->payload = p;
                r->payload_len = (size_t)v;
                seen |= 4;
            }
            p += v;
        } else {
            return false;
        }
    }
    return true;
}

static void handle_frame(rpc_conn *c, const uint8_t *data, size_t len) {
    mn_rpc *srv = c->srv;
    rpc_req rq;
    Midnode__RpcRequest *req = NULL;
    if (!fast_decode(data, len, &rq)) {
        req = midnode__rpc_request__unpack(NULL, len, data);
        if (!req) {
            LOG_DEBUG("rpc_bad_frame", "len=%zu", len);
            conn_error(c, 0, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, "frame does not decode as RpcRequest");
            conn_start_drain(c);
            return;
        }
        rq.id = req->id;
        /* an over-long name is unknown anyway; keep enough of it for the message */
        snprintf(rq.method, sizeof rq.method, "%s", req->method ? req->method : "");
        rq.payload = req->payload.data;
        rq.payload_len = req->payload.len;
    }
    srv->stats.requests++;
    char msg[96];
    if (!mn_rpc_method_known(rq.method) || (req && req->method && strlen(req->method) > MN_RPC_METHOD_MAX)) {
        snprintf(msg, sizeof msg, "unknown method \"%.*s\"", MN_RPC_METHOD_MAX, rq.method);
        conn_error(c, rq.id, MIDNODE__RPC_CODE__RPC_UNKNOWN_METHOD, msg);
        goto out;
    }
    if (c->inflight >= srv->cfg.inflight_max) {
        snprintf(msg, sizeof msg, "more than %u requests in flight", srv->cfg.inflight_max);
        conn_error(c, rq.id, MIDNODE__RPC_CODE__RPC_OVERLOADED, msg);
        goto out;
    }
    for (mn_rpc_call *p = c->calls; p; p = p->next) {
        if (p->id == rq.id) {
            snprintf(msg, sizeof msg, "request id %llu already in flight", (unsigned long long)rq.id);
            conn_error(c, rq.id, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, msg);
            goto out;
        }
    }
    mn_rpc_call *call = calloc(1, sizeof *call);
    if (!call) {
        conn_error(c, rq.id, MIDNODE__RPC_CODE__RPC_INTERNAL, "out of memory");
        goto out;
    }
    call->conn = c;
    call->id = rq.id;
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    c->inflight++;
    srv->stats.calls_pending++;
    srv->handler(srv->ctx, call, rq.method, rq.payload, rq.payload_len);
out:
    if (req) midnode__rpc_request__free_unpacked(req, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    rpc_conn *c = h->data;
    *buf = uv_buf_init((char *)c->srv->rbuf, sizeof c->srv->rbuf);
}

static uint32_t be32(const uint8_t b[4]) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool conn_reading(const rpc_conn *c) {
    return !c->closing && !c->close_soon && !c->draining;
}

void mn_rpc_set_peek(mn_rpc *srv, mn_rpc_peek_fn peek) { srv->peek = peek; }

/* Shows the peek callback the whole requests at the start of a read, up to
 * a bound (enough to cover a pipelining client's burst). */
#define PEEK_FRAMES_MAX 64
static void peek_frames(const rpc_conn *c, const uint8_t *start, size_t total) {
    const mn_rpc *srv = c->srv;
    for (int stage = 0; stage < 2; stage++) {
        const uint8_t *p = start;
        size_t n = total;
        for (int i = 0; i < PEEK_FRAMES_MAX && n >= 4; i++) {
            uint32_t len = be32(p);
            if (len > srv->cfg.frame_bytes_max || len > n - 4) break;
            rpc_req rq;
            if (fast_decode(p + 4, len, &rq)) srv->peek(srv->ctx, stage, rq.method, rq.payload, rq.payload_len);
            p += 4 + (size_t)len;
            n -= 4 + (size_t)len;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    rpc_conn *c = s->data;
    if (nread < 0) {
        if (nread != UV_EOF) LOG_DEBUG("rpc_read_failed", "err=%s", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing) return;
    c->srv->stats.bytes_in += (uint64_t)nread;
    if (!conn_reading(c)) return; /* draining after a refusal: discard */
    conn_touch(c);
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (c->srv->peek && !c->body && c->hdr_have == 0 && n > 4) peek_frames(c, p, n);
    while (n > 0 && conn_reading(c)) {
        if (!c->body) {
            if (c->hdr_have < 4) {
                size_t take = 4 - c->hdr_have < n ? 4 - c->hdr_have : n;
                memcpy(c->hdr + c->hdr_have, p, take);
                c->hdr_have += (uint32_t)take;
                p += take;
                n -= take;
                if (c->hdr_have < 4) break;
            }
            uint32_t len = be32(c->hdr);
            if (len > c->srv->cfg.frame_bytes_max) {
                char msg[96];
                snprintf(msg, sizeof msg, "frame of %u bytes is over the limit of %u", len,
                         c->srv->cfg.frame_bytes_max);
                LOG_DEBUG("rpc_frame_too_large", "len=%u", len);
                conn_error(c, 0, MIDNODE__RPC_CODE__RPC_TOO_LARGE, msg);
                conn_start_drain(c);
                break;
            }
            if (n >= len) { /* whole frame in this read: no copy */
                c->hdr_have = 0;
                handle_frame(c, p, len);
                p += len;
                n -= len;
                continue;
            }
            c->body = malloc(len);
            if (!c->body) {
                conn_error(c, 0, MIDNODE__RPC_CODE__RPC_INTERNAL, "out of memory");
                conn_start_drain(c);
                break;
            }
            c->body_len = len;
            c->body_have = 0;
        }
        size_t take = c->body_len - c->body_have < n ? c->body_len - c->body_have : n;
        memcpy(c->body + c->body_have, p, take);
        c->body_have += (uint32_t)take;
        p += take;
        n -= take;
        if (c->body_have == c->body_len) {
            uint8_t *body = c->body;
            c->body = NULL;
            c->hdr_have = 0;
            handle_frame(c, body, c->body_len);
            free(body);
        }
    }
    if (c->draining) conn_drain_progress(c);
}

/* ---------------------------------------------------------------- accepting */

static void on_connection(uv_stream_t *server, int status) {
    mn_rpc *srv = server->data;
    if (status < 0) {
        LOG_WARN("rpc_accept_failed", "err=%s", uv_strerror(status));
        return;
    }
    rpc_conn *c = calloc(1, sizeof *c);
    if (!c) {
        LOG_ERROR("rpc_accept_failed", "err=out_of_memory");
        /* Leave it in the backlog; the kernel bounds that. */
        return;
    }
    c->srv = srv;
    c->tcp.data = c;
    c->timer.data = c;
    if (uv_tcp_init(srv->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->handles_open = 1;
    int rc = uv_timer_init(srv->loop, &c->timer);
    if (rc == 0) c->handles_open = 2;
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    srv->conn_count++;
    srv->stats.connections_open = srv->conn_count;
    if (rc != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
        return;
    }
    srv->stats.connections_accepted++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (uv_tcp_nodelay(&c->tcp, 1) != 0) LOG_DEBUG("rpc_nodelay_failed", "%s", "");
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    if (srv->conn_count - srv->refusing > srv->cfg.connections_max) {
        srv->stats.connections_refused++;
        if (srv->refusing >= MN_RPC_REFUSING_MAX) {
            conn_close(c);
            return;
        }
        c->refused = true;
        srv->refusing++;
        LOG_WARN("rpc_connection_refused", "open=%u max=%u", srv->conn_count - srv->refusing,
                 srv->cfg.connections_max);
        conn_error(c, 0, MIDNODE__RPC_CODE__RPC_OVERLOADED, "too many connections");
        conn_start_drain(c);
        conn_drain_progress(c);
        return;
    }
    conn_touch(c);
}

/* ---------------------------------------------------------------- public */

static int check_config(const mn_rpc_config *cfg, char *err, size_t err_len) {
    if (cfg->frame_bytes_max < 1 || cfg->frame_bytes_max > MN_RPC_FRAME_BYTES_MAX) {
        set_err(err, err_len, "rpc: %s %ld out of range", "frame_bytes_max", (long)cfg->frame_bytes_max);
        return MN_EINVAL;
    }
    if (cfg->connections_max < 1 || cfg->connections_max > MN_RPC_CONNECTIONS_MAX) {
        set_err(err, err_len, "rpc: %s %ld out of range", "connections_max", (long)cfg->connections_max);
        return MN_EINVAL;
    }
    if (cfg->inflight_max < 1 || cfg->inflight_max > MN_RPC_INFLIGHT_MAX) {
        set_err(err, err_len, "rpc: %s %ld out of range", "inflight_max", (long)cfg->inflight_max);
        return MN_EINVAL;
    }
    if (cfg->write_queue_bytes_max < MN_RPC_RESPONSE_BYTES_MAX + 4) {
        set_err(err, err_len, "rpc: %s %ld too small", "write_queue_bytes_max", (long)cfg->write_queue_bytes_max);
        return MN_EINVAL;
    }
    if (memchr(cfg->host, 0, sizeof cfg->host) == NULL || cfg->host[0] == 0) {
        set_err(err, err_len, "rpc: %s%ld: empty or unterminated", "host", 0);
        return MN_EINVAL;
    }
    return MN_OK;
}

/* Binds with plain sockets first so that every failure is reported here,
 * synchronously, with no libuv handle to tear down. */
static int bind_listen(int *fd_out, uint16_t *port_out, const mn_rpc_config *cfg, char *err, size_t err_len) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof port, "%u", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0 || !res) {
        if (err && err_len) snprintf(err, err_len, "rpc: cannot resolve %s: %s", cfg->host, gai_strerror(rc));
        return MN_EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (err && err_len) snprintf(err, err_len, "rpc: socket: %s", strerror(errno));
        freeaddrinfo(res);
        return MN_EIO;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, MN_RPC_BACKLOG) != 0) {
        if (err && err_len) snprintf(err, err_len, "rpc: cannot listen on %s:%u: %s", cfg->host, cfg->port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return MN_EIO;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        if (err && err_len) snprintf(err, err_len, "rpc: getsockname: %s", strerror(errno));
        close(fd);
        return MN_EIO;
    }
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return MN_OK;
}

static void on_listener_closed(uv_handle_t *h) {
    mn_rpc *srv = h->data;
    srv->listener_open = false;
    srv_maybe_free(srv);
}

int mn_rpc_new(mn_rpc **out, uv_loop_t *loop, const mn_rpc_config *cfg, mn_rpc_handler handler, void *ctx,
               char *err, size_t err_len) {
    *out = NULL;
    if (!loop || !cfg || !handler) {
        set_err(err, err_len, "rpc: %s%ld", "missing loop, config or handler", 0);
        return MN_EINVAL;
    }
    int rc = check_config(cfg, err, err_len);
    if (rc != MN_OK) return rc;
    mn_rpc *srv = calloc(1, sizeof *srv);
    if (!srv) {
        set_err(err, err_len, "rpc: %s%ld", "out of memory", 0);
        return MN_ENOMEM;
    }
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->handler = handler;
    srv->ctx = ctx;
    int fd = -1;
    rc = bind_listen(&fd, &srv->port, cfg, err, err_len);
    if (rc != MN_OK) {
        free(srv);
        return rc;
    }
    if (uv_tcp_init(loop, &srv->listener) != 0) {
        close(fd);
        free(srv);
        set_err(err, err_len, "rpc: %s%ld", "uv_tcp_init failed", 0);
        return MN_EIO;
    }
    srv->listener.data = srv;
    srv->listener_open = true;
    int urc = uv_tcp_open(&srv->listener, fd);
    if (urc == 0) urc = uv_listen((uv_stream_t *)&srv->listener, MN_RPC_BACKLOG, on_connection);
    if (urc != 0) {
        if (err && err_len) snprintf(err, err_len, "rpc: listen: %s", uv_strerror(urc));
        srv->closing = true;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed); /* frees srv (and fd) when the loop runs */
        return MN_EIO;
    }
    /* Never fail past this point: both handles init without error on Linux,
     * and are unreferenced so that they alone do not keep the loop alive. */
    srv->prepare.data = srv;
    srv->check.data = srv;
    if (uv_prepare_init(loop, &srv->prepare) == 0) {
        srv->flushers_open++;
        (void)uv_prepare_start(&srv->prepare, on_prepare);
        uv_unref((uv_handle_t *)&srv->prepare);
    }
    if (uv_check_init(loop, &srv->check) == 0) {
        srv->flushers_open++;
        (void)uv_check_start(&srv->check, on_check);
        uv_unref((uv_handle_t *)&srv->check);
    }
    if (srv->flushers_open != 2) abort(); /* cannot happen on Linux; no answer could ever be sent */
    LOG_INFO("rpc_listening", "host=%s port=%u", cfg->host, srv->port);
    *out = srv;
    return MN_OK;
}

uint16_t mn_rpc_port(const mn_rpc *srv) { return srv->port; }

void mn_rpc_get_stats(const mn_rpc *srv, mn_rpc_stats *out) { *out = srv->stats; }

static void on_flusher_closed(uv_handle_t *h) {
    mn_rpc *srv = h->data;
    srv->flushers_open--;
    srv_maybe_free(srv);
}

void mn_rpc_free(mn_rpc *srv) {
    if (!srv || srv->closing) return;
    srv->closing = true;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    for (rpc_conn *c = srv->conns; c; c = c->next) conn_close(c);
    uv_close((uv_handle_t *)&srv->prepare, on_flusher_closed);
    uv_close((uv_handle_t *)&srv->check, on_flusher_closed);
}

void mn_rpc_call_on_cancel(mn_rpc_call *call, mn_rpc_cancel_fn fn, void *arg) {
    call->cancel = fn;
    call->cancel_arg = arg;
}

uint64_t mn_rpc_call_id(const mn_rpc_call *call) { return call->id; }

bool mn_rpc_call_alive(const mn_rpc_call *call) {
    return call->conn != NULL && !call->conn->closing && !call->conn->close_soon;
}

int mn_rpc_reply(mn_rpc_call *call, int code, int tx_code, const char *message, const uint8_t *payload,
                 size_t len) {
    rpc_conn *c = call->conn;
    if (!c) {
        free(call);
        return MN_ESTATE;
    }
    conn_unlink_call(c, call);
    uint64_t id = call->id;
    free(call);
    int rc = conn_send(c, id, code, tx_code, message, payload, len, false);
    if (rc == MN_ETOOBIG) {
        LOG_WARN("rpc_response_too_large", "len=%zu", len);
        (void)conn_send(c, id, MIDNODE__RPC_CODE__RPC_INTERNAL, 0, "response too large", NULL, 0, false);
    }
    return rc;
}

int mn_rpc_stream(mn_rpc_call *call, const uint8_t *payload, size_t len) {
    rpc_conn *c = call->conn;
    if (!c || c->closing || c->close_soon || c->draining) return MN_ESTATE;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->out_len;
    if (queued + len + 64 > c->srv->cfg.write_queue_bytes_max / 2) return MN_EAGAIN;
    return conn_send(c, call->id, MIDNODE__RPC_CODE__RPC_OK, 0, NULL, payload, len, true);
}
