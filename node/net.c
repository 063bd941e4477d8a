/* net.c: peer links on libuv: preamble, TLS 1.3 with pins, length-prefixed
 * frames, redial with backoff, the duplicate-link rule and the slow-peer
 * bound. The contract is in net.h. */
#include "net.h"

#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"

#define READ_CHUNK_BYTES (64 * 1024)
#define PLAIN_CHUNK_BYTES (16 * 1024)
#define TLS_RECORD_OVERHEAD_BYTES 32 /* header + tag + content type, rounded up */
#define SWEEP_MS_MAX 1000
#define MN_NET_BACKOFF_MS_LIMIT (10u * 60 * 1000)
#define MN_NET_OUT_QUEUE_BYTES_LIMIT ((size_t)1 << 30)

/* RETIRED: the losing duplicate. Nothing new is written on it, but it is read
 * to its end so that frames already sent on it are still delivered; the end
 * that dialled it shuts it down once its writes have drained. */
enum link_state { LINK_CONNECTING, LINK_HANDSHAKE, LINK_LIVE, LINK_RETIRED, LINK_CLOSING };

typedef struct mn_link mn_link;

typedef struct mn_peer {
    mn_net *net;
    mn_net_peer_config cfg;
    mn_link *live;     /* the one live link, or NULL */
    mn_link *dialing;  /* our outbound attempt in progress, or NULL */
    uv_timer_t redial;
    uint32_t backoff_ms;
} mn_peer;

struct mn_link {
    mn_net *net;
    mn_link *prev, *next;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai_req;
    uv_shutdown_t shutdown_req;
    bool shut;             /* shutdown requested: no more writes */
    bool dirty;            /* frames queued but not yet handed to the socket */
    size_t stage_len;
    uint8_t stage[PLAIN_CHUNK_BYTES]; /* small frames gathered into one TLS record */
    int refs;              /* the tcp handle, plus one while resolving */
    bool resolving;
    bool counted_pending;  /* inbound, counted in net->pending_inbound */
    enum link_state state;
    bool outbound;
    mn_peer *peer;         /* outbound: the target; inbound: known after the pin */
    mn_tls_conn *tls;
    uint8_t preamble[MN_NET_PREAMBLE_LEN];
    size_t preamble_got;
    mn_frame_decoder dec;
    uint64_t deadline_ms;  /* until live */
    uint64_t seq;          /* creation order, for the "newer wins" case */
    char remote[64];
};

struct mn_net {
    uv_loop_t *loop;
    char name[MN_NET_NAME_MAX + 1];
    mn_tls_ctx *tls;
    mn_net_callbacks cb;
    size_t out_queue_bytes_max;
    uint32_t frame_bytes_max;
    uint32_t backoff_min_ms, backoff_max_ms;
    uint32_t handshake_timeout_ms;

    uv_tcp_t listener;
    bool listener_init;
    uint16_t port;
    uv_timer_t sweep;
    bool sweep_init;
    /* Write out the frames queued during one loop iteration: the check phase
     * catches sends made by I/O callbacks, the prepare phase (before the
     * loop blocks) those made by timers, idle handles and close callbacks. */
    uv_check_t flusher;
    uv_prepare_t preflusher;
    bool flusher_init, preflusher_init;
    bool any_dirty;

    mn_peer *peers;
    size_t peer_count;
    size_t peer_timers_init;
    mn_link *links;
    size_t pending_inbound;
    uint64_t link_seq;

    size_t handles_open;  /* handles and requests whose callbacks are still due */
    bool stopped;
    bool free_requested;
    mn_net_stats stats;

    uint8_t rbuf[READ_CHUNK_BYTES];
    bool rbuf_busy;
    uint8_t pbuf[PLAIN_CHUNK_BYTES];
};

typedef struct write_req {
    uv_write_t req;
    mn_link *link;
    size_t len;
    uint8_t data[];
} write_req;

static void link_close(mn_link *l, const char *reason, bool refused);
static void link_process(mn_link *l);
static void peer_dial(mn_peer *p);
static void redial_cb(uv_timer_t *t);

/* ---------------- frame decoder ---------------- */

void mn_frame_decoder_init(mn_frame_decoder *d, uint32_t frame_bytes_max) {
    memset(d, 0, sizeof *d);
    d->frame_bytes_max = frame_bytes_max;
}

void mn_frame_decoder_reset(mn_frame_decoder *d) {
    free(d->frame);
    d->frame = NULL;
    d->hdr_got = 0;
    d->frame_len = 0;
    d->frame_got = 0;
}

int mn_frame_decode(mn_frame_decoder *d, const uint8_t *data, size_t len, mn_frame_fn fn, void *ctx,
                    size_t *used) {
    size_t off = 0;
    int rc = MN_OK;
    while (off < len) {
        if (d->hdr_got < 4) {
            size_t take = 4 - d->hdr_got;
            if (take > len - off) take = len - off;
            memcpy(d->hdr + d->hdr_got, data + off, take);
            d->hdr_got += take;
            off += take;
            if (d->hdr_got < 4) break;
            uint32_t n = (uint32_t)d->hdr[0] << 24 | (uint32_t)d->hdr[1] << 16 | (uint32_t)d->hdr[2] << 8 |
                         (uint32_t)d->hdr[3];
            if (n > d->frame_bytes_max) {
                rc = MN_ETOOBIG;
                break;
            }
            d->frame_len = n;
            d->frame_got = 0;
            assert(d->frame == NULL);
            if (n == 0 || len - off >= n) {
                /* Whole frame at hand: hand it over without copying. */
                d->hdr_got = 0;
                const uint8_t *f = n == 0 ? d->hdr : data + off;
                off += n;
                rc = fn(ctx, f, n);
                if (rc != MN_OK) break;
                continue;
            }
            d->frame = malloc(n);
            if (d->frame == NULL) {
                rc = MN_ENOMEM;
                break;
            }
        }
        size_t take = d->frame_len - d->frame_got;
        if (take > len - off) take = len - off;
        memcpy(d->frame + d->frame_got, data + off, take);
        d->frame_got += (uint32_t)take;
        off += take;
        if (d->frame_got == d->frame_len) {
            uint8_t *f = d->frame;
            uint32_t n = d->frame_len;
            d->frame = NULL;
            d->hdr_got = 0;
            rc = fn(ctx, f, n);
            free(f);
            if (rc != MN_OK) break;
        }
    }
    if (used != NULL) *used = off;
    return rc;
}

/* ---------------- helpers ---------------- */

static uint64_t now_ms(const mn_net *net) { return uv_now(net->loop); }

static void maybe_release(mn_net *net) {
    if (!net->free_requested || net->handles_open > 0) return;
    assert(net->links == NULL);
    mn_tls_ctx_free(net->tls);
    free(net->peers);
    free(net);
}

static void net_handle_gone(mn_net *net) {
    assert(net->handles_open > 0);
    net->handles_open--;
    maybe_release(net);
}

static void handle_closed(uv_handle_t *h) { net_handle_gone(h->data); }

static void peer_timer_closed(uv_handle_t *h) {
    mn_peer *p = h->data;
    net_handle_gone(p->net);
}

/* Splits "host:port" or "[v6]:port". Returns MN_OK or MN_EINVAL. */
static int split_addr(const char *addr, char *host, size_t host_cap, uint16_t *port) {
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr) return MN_EINVAL;
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']') return MN_EINVAL;
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_cap) return MN_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    const char *p = colon + 1;
    if (*p == '\0') return MN_EINVAL;
    unsigned long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return MN_EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535) return MN_EINVAL;
    }
    *port = (uint16_t)v;
    return MN_OK;
}

/* A numeric address into ss. Returns MN_OK, or MN_ENOTFOUND for a host name. */
static int literal_addr(const char *host, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return MN_OK;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return MN_OK;
    return MN_ENOTFOUND;
}

static void sockaddr_name(const struct sockaddr *sa, char *out, size_t cap) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (uv_ip4_name(in, ip, sizeof ip) != 0) snprintf(ip, sizeof ip, "?");
        port = ntohs(in->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (uv_ip6_name(in6, ip, sizeof ip) != 0) snprintf(ip, sizeof ip, "?");
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%d", ip, port);
    } else {
        snprintf(out, cap, "?");
    }
}

static const char *peer_label(const mn_link *l) { return l->peer != NULL ? l->peer->cfg.name : "-"; }

static uint32_t jitter_ms(uint32_t d) {
    uint32_t r = 0;
    if (d < 2 || mn_random_bytes(&r, sizeof r) != MN_OK) return d;
    return d / 2 + r % (d / 2 + 1);
}

/* ---------------- links ---------------- */

static mn_link *link_new(mn_net *net, bool outbound) {
    mn_link *l = calloc(1, sizeof *l);
    if (l == NULL) return NULL;
    if (uv_tcp_init(net->loop, &l->tcp) != 0) {
        free(l);
        return NULL;
    }
    l->net = net;
    l->tcp.data = l;
    l->refs = 1;
    l->outbound = outbound;
    l->state = LINK_CONNECTING;
    l->seq = ++net->link_seq;
    l->deadline_ms = now_ms(net) + net->handshake_timeout_ms;
    snprintf(l->remote, sizeof l->remote, "?");
    mn_frame_decoder_init(&l->dec, net->frame_bytes_max);
    l->next = net->links;
    if (net->links) net->links->prev = l;
    net->links = l;
    net->handles_open++;
    return l;
}

static void link_unref(mn_link *l) {
    mn_net *net = l->net;
    assert(l->refs > 0);
    assert(net->handles_open > 0);
    net->handles_open--;
    if (--l->refs > 0) return;
    if (l->prev)
        l->prev->next = l->next;
    else
        net->links = l->next;
    if (l->next) l->next->prev = l->prev;
    mn_tls_conn_free(l->tls);
    mn_frame_decoder_reset(&l->dec);
    free(l);
    maybe_release(net);
}

static void link_closed_cb(uv_handle_t *h) { link_unref(h->data); }

static void schedule_redial(mn_peer *p) {
    mn_net *net = p->net;
    if (net->stopped || !p->cfg.should_dial || p->cfg.addr[0] == '\0') return;
    if (p->live != NULL || p->dialing != NULL || uv_is_active((uv_handle_t *)&p->redial)) return;
    uint32_t d = jitter_ms(p->backoff_ms);
    uint32_t next = p->backoff_ms * 2;
    p->backoff_ms = next > net->backoff_max_ms ? net->backoff_max_ms : next;
    int r = uv_timer_start(&p->redial, redial_cb, d, 0);
    if (r != 0) LOG_ERROR("peer_redial_failed", "peer=%s error=\"%s\"", p->cfg.name, uv_strerror(r));
}

static void link_close(mn_link *l, const char *reason, bool refused) {
    if (l->state == LINK_CLOSING) return;
    mn_net *net = l->net;
    enum link_state was = l->state;
    l->state = LINK_CLOSING;
    if (refused) net->stats.refused++;
    if (!net->stopped) {
        if (refused)
            LOG_WARN("peer_refused", "peer=%s remote=%s dir=%s reason=\"%s\"", peer_label(l), l->remote,
                     l->outbound ? "out" : "in", reason);
        else
            LOG_INFO("peer_link_closed", "peer=%s remote=%s dir=%s reason=\"%s\"", peer_label(l), l->remote,
                     l->outbound ? "out" : "in", reason);
    }
    if (l->counted_pending) {
        l->counted_pending = false;
        assert(net->pending_inbound > 0);
        net->pending_inbound--;
    }
    if (l->resolving) (void)uv_cancel((uv_req_t *)&l->gai_req);
    uv_close((uv_handle_t *)&l->tcp, link_closed_cb);
    mn_peer *p = l->peer;
    if (p == NULL) return;
    if (p->dialing == l) p->dialing = NULL;
    if (p->live == l) {
        assert(was == LINK_LIVE);
        p->live = NULL;
        if (!net->stopped) {
            LOG_INFO("peer_down", "peer=%s", p->cfg.name);
            if (net->cb.on_peer_down) net->cb.on_peer_down(net->cb.ctx, p->cfg.name);
        }
    }
    if (!net->stopped && p->live == NULL) schedule_redial(p);
}

static void write_cb(uv_write_t *req, int status) {
    write_req *w = (write_req *)req;
    mn_link *l = w->link;
    free(w);
    if (status < 0 && status != UV_ECANCELED) link_close(l, uv_strerror(status), false);
}

static void raw_write(mn_link *l, const uint8_t *data, size_t len) {
    write_req *w = malloc(sizeof *w + len);
    if (w == NULL) {
        link_close(l, "out of memory", false);
        return;
    }
    w->link = l;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    int r = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, write_cb);
    if (r != 0) {
        free(w);
        link_close(l, uv_strerror(r), false);
        return;
    }
    l->net->stats.bytes_out += len;
}

/* Moves every waiting TLS record onto the socket as one write. */
/* Encrypts the gathered small frames as one record. Returns MN_OK or
 * MN_ECRYPTO (the link is then closed). */
static int link_seal(mn_link *l) {
    if (l->stage_len == 0) return MN_OK;
    size_t n = l->stage_len;
    l->stage_len = 0;
    if (l->shut) return MN_OK; /* a retired link writes nothing more */
    if (mn_tls_conn_write(l->tls, l->stage, n) != MN_OK) {
        link_close(l, "tls write failed", false);
        return MN_ECRYPTO;
    }
    return MN_OK;
}

static void link_flush(mn_link *l) {
    if (l->state == LINK_CLOSING || l->tls == NULL) return;
    if (link_seal(l) != MN_OK) return;
    size_t n = mn_tls_conn_out_pending(l->tls);
    if (n == 0) return;
    if (l->shut) {
        /* TLS 1.3 sends nothing we need after the handshake: drop it. */
        uint8_t sink[1024];
        size_t got;
        while (n > 0 && mn_tls_conn_take_out(l->tls, sink, sizeof sink, &got) == MN_OK && got > 0) n -= got;
        return;
    }
    write_req *w = malloc(sizeof *w + n);
    if (w == NULL) {
        link_close(l, "out of memory", false);
        return;
    }
    size_t got = 0;
    if (mn_tls_conn_take_out(l->tls, w->data, n, &got) != MN_OK || got != n) {
        free(w);
        link_close(l, "tls output", false);
        return;
    }
    w->link = l;
    w->len = n;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    int r = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, write_cb);
    if (r != 0) {
        free(w);
        link_close(l, uv_strerror(r), false);
        return;
    }
    l->net->stats.bytes_out += n;
}

static size_t link_queued(const mn_link *l) {
    size_t q = l->tcp.write_queue_size + l->stage_len;
    if (l->tls != NULL) q += mn_tls_conn_out_pending(l->tls);
    return q;
}

static int link_send_frame(mn_link *l, const uint8_t *bytes, size_t len) {
    mn_net *net = l->net;
    assert(l->state == LINK_LIVE);
    size_t wire = 4 + len + (len / PLAIN_CHUNK_BYTES + 1) * TLS_RECORD_OVERHEAD_BYTES;
    size_t queued = link_queued(l);
    if (queued + wire > net->out_queue_bytes_max) {
        net->stats.dropped_slow++;
        LOG_WARN("peer_slow", "peer=%s queued_bytes=%zu frame_bytes=%zu bound_bytes=%zu", peer_label(l), queued,
                 len, net->out_queue_bytes_max);
        link_close(l, "outbound queue bound exceeded", false);
        return MN_EAGAIN;
    }
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    if (l->stage_len + 4 + len > sizeof l->stage && link_seal(l) != MN_OK) return MN_ECRYPTO;
    memcpy(l->stage + l->stage_len, hdr, 4);
    l->stage_len += 4;
    size_t head = sizeof l->stage - l->stage_len;
    if (head > len) head = len;
    if (head > 0) memcpy(l->stage + l->stage_len, bytes, head);
    l->stage_len += head;
    if (head < len) {
        /* A large frame: its first record is full, the rest goes straight in. */
        if (link_seal(l) != MN_OK) return MN_ECRYPTO;
        if (mn_tls_conn_write(l->tls, bytes + head, len - head) != MN_OK) {
            link_close(l, "tls write failed", false);
            return MN_ECRYPTO;
        }
    }
    net->stats.frames_out++;
    /* Coalesce: the frames of one loop iteration leave in one write. */
    l->dirty = true;
    net->any_dirty = true;
    return MN_OK;
}

/* Picks which of two live links to one peer survives; both ends agree. */
static mn_link *duplicate_keeper(const mn_net *net, mn_link *old, mn_link *young) {
    if (old->outbound == young->outbound) return young;
    const char *peer = young->peer->cfg.name;
    bool self_lower = strcmp(net->name, peer) < 0;
    mn_link *ours = old->outbound ? old : young;
    mn_link *theirs = old->outbound ? young : old;
    return self_lower ? ours : theirs;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
    mn_link *l = req->data;
    if (status < 0 && status != UV_ECANCELED) link_close(l, uv_strerror(status), false);
}

static void link_authenticated(mn_link *l) {
    mn_net *net = l->net;
    uint8_t pin[MN_TLS_PIN_LEN];
    if (mn_tls_conn_peer_pin(l->tls, pin) != MN_OK) {
        link_close(l, "cannot read peer key", true);
        return;
    }
    char hex[2 * MN_TLS_PIN_LEN + 1];
    if (l->outbound) {
        if (mn_memcmp_ct(pin, l->peer->cfg.pin, MN_TLS_PIN_LEN) != 0) {
            char reason[128 + sizeof hex];
            snprintf(reason, sizeof reason, "pin %s is not the pin of the peer dialled",
                     mn_hex_encode(hex, pin, MN_TLS_PIN_LEN));
            link_close(l, reason, true);
            return;
        }
    } else {
        mn_peer *found = NULL;
        for (size_t i = 0; i < net->peer_count; i++)
            if (mn_memcmp_ct(pin, net->peers[i].cfg.pin, MN_TLS_PIN_LEN) == 0) found = &net->peers[i];
        if (found == NULL) {
            char reason[64 + sizeof hex];
            snprintf(reason, sizeof reason, "unknown pin %s", mn_hex_encode(hex, pin, MN_TLS_PIN_LEN));
            link_close(l, reason, true);
            return;
        }
        l->peer = found;
        if (l->counted_pending) {
            l->counted_pending = false;
            net->pending_inbound--;
        }
    }
    mn_peer *p = l->peer;
    if (p->dialing == l) p->dialing = NULL;
    l->state = LINK_LIVE;
    net->stats.links_up++;
    if (p->live == NULL) {
        p->live = l;
        p->backoff_ms = net->backoff_min_ms;
        (void)uv_timer_stop(&p->redial);
        LOG_INFO("peer_up", "peer=%s remote=%s dir=%s", p->cfg.name, l->remote, l->outbound ? "out" : "in");
        if (net->cb.on_peer_up) net->cb.on_peer_up(net->cb.ctx, p->cfg.name);
        return;
    }
    mn_link *old = p->live;
    mn_link *keep = duplicate_keeper(net, old, l);
    mn_link *lose = keep == l ? old : l;
    p->live = keep;
    net->stats.dropped_duplicate++;
    if (old->outbound == l->outbound) {
        link_close(lose, "superseded by a newer link", false);
        return;
    }
    LOG_DEBUG("peer_link_retired", "peer=%s dir=%s", p->cfg.name, lose->outbound ? "out" : "in");
    lose->state = LINK_RETIRED;
    lose->deadline_ms = now_ms(net) + net->handshake_timeout_ms;
    if (lose->outbound) {
        link_flush(lose);
        if (lose->state == LINK_CLOSING) return;
        lose->shut = true;
        lose->shutdown_req.data = lose;
        int r = uv_shutdown(&lose->shutdown_req, (uv_stream_t *)&lose->tcp, shutdown_cb);
        if (r != 0) link_close(lose, uv_strerror(r), false);
    }
}

static int deliver(void *ctx, const uint8_t *frame, size_t len) {
    mn_link *l = ctx;
    mn_net *net = l->net;
    net->stats.frames_in++;
    if (net->cb.on_message) net->cb.on_message(net->cb.ctx, l->peer->cfg.name, frame, len);
    /* The callback may have closed this link or stopped the net. */
    return (l->state == LINK_LIVE || l->state == LINK_RETIRED) && !net->stopped ? MN_OK : MN_ESTATE;
}

static void link_process(mn_link *l) {
    mn_net *net = l->net;
    if (l->state == LINK_HANDSHAKE) {
        char err[256] = "";
        int r = mn_tls_conn_handshake(l->tls, err, sizeof err);
        link_flush(l);
        if (l->state == LINK_CLOSING) return;
        if (r == MN_EAGAIN) return;
        if (r != MN_OK) {
            link_close(l, err[0] ? err : "tls handshake failed", true);
            return;
        }
        link_authenticated(l);
        if (l->state != LINK_LIVE && l->state != LINK_RETIRED) return;
    }
    while ((l->state == LINK_LIVE || l->state == LINK_RETIRED) && !net->stopped) {
        size_t n = 0;
        int r = mn_tls_conn_read(l->tls, net->pbuf, sizeof net->pbuf, &n);
        if (r == MN_EAGAIN) break;
        if (r == MN_EIO) {
            link_close(l, "peer ended the tls session", false);
            return;
        }
        if (r != MN_OK) {
            link_close(l, "tls record error", false);
            return;
        }
        int d = mn_frame_decode(&l->dec, net->pbuf, n, deliver, l, NULL);
        if (d == MN_ETOOBIG) {
            net->stats.dropped_oversized++;
            LOG_WARN("peer_frame_too_big", "peer=%s bound_bytes=%" PRIu32, peer_label(l), net->frame_bytes_max);
            link_close(l, "frame above the bound", false);
            return;
        }
        if (d == MN_ENOMEM) {
            link_close(l, "out of memory", false);
            return;
        }
    }
    link_flush(l);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    mn_link *l = h->data;
    mn_net *net = l->net;
    /* One read buffer per net: libuv calls read_cb right after alloc_cb. */
    if (net->rbuf_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    net->rbuf_busy = true;
    *buf = uv_buf_init((char *)net->rbuf, sizeof net->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    mn_link *l = s->data;
    mn_net *net = l->net;
    if (buf->base == (char *)net->rbuf) net->rbuf_busy = false;
    if (l->state == LINK_CLOSING) return;
    if (nread < 0) {
        const char *why = nread != UV_EOF           ? uv_strerror((int)nread)
                          : l->state == LINK_RETIRED ? "duplicate link drained"
                                                     : "peer closed the connection";
        link_close(l, why, l->state != LINK_LIVE && l->state != LINK_RETIRED && nread != UV_EOF);
        return;
    }
    if (nread == 0) return;
    net->stats.bytes_in += (uint64_t)nread;
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    if (l->preamble_got < MN_NET_PREAMBLE_LEN) {
        size_t take = MN_NET_PREAMBLE_LEN - l->preamble_got;
        if (take > len) take = len;
        memcpy(l->preamble + l->preamble_got, data, take);
        if (memcmp(l->preamble + l->preamble_got, &MN_NET_PREAMBLE[l->preamble_got], take) != 0) {
            link_close(l, "bad preamble", true);
            return;
        }
        l->preamble_got += take;
        data += take;
        len -= take;
    }
    if (len > 0 && mn_tls_conn_feed(l->tls, data, len) != MN_OK) {
        link_close(l, "out of memory", false);
        return;
    }
    link_process(l);
}

/* Both ends send the preamble, then TLS starts (the client's hello at once). */
static void link_start(mn_link *l) {
    mn_net *net = l->net;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sl) == 0)
        sockaddr_name((struct sockaddr *)&ss, l->remote, sizeof l->remote);
    (void)uv_tcp_nodelay(&l->tcp, 1);
    (void)uv_tcp_keepalive(&l->tcp, 1, 60);
    if (mn_tls_conn_new(&l->tls, net->tls, !l->outbound) != MN_OK) {
        link_close(l, "tls set-up failed", false);
        return;
    }
    if (l->outbound) mn_tls_conn_expect_pin(l->tls, l->peer->cfg.pin);
    l->state = LINK_HANDSHAKE;
    int r = uv_read_start((uv_stream_t *)&l->tcp, alloc_cb, read_cb);
    if (r != 0) {
        link_close(l, uv_strerror(r), false);
        return;
    }
    raw_write(l, (const uint8_t *)MN_NET_PREAMBLE, MN_NET_PREAMBLE_LEN);
    if (l->state == LINK_CLOSING) return;
    if (l->outbound) link_process(l);
}

static void connect_cb(uv_connect_t *req, int status) {
    mn_link *l = req->data;
    if (l->state == LINK_CLOSING) return;
    if (status < 0) {
        char reason[128];
        snprintf(reason, sizeof reason, "connect: %s", uv_strerror(status));
        link_close(l, reason, false);
        return;
    }
    link_start(l);
}

static void link_connect(mn_link *l, const struct sockaddr *sa) {
    sockaddr_name(sa, l->remote, sizeof l->remote);
    l->connect_req.data = l;
    int r = uv_tcp_connect(&l->connect_req, &l->tcp, sa, connect_cb);
    if (r != 0) link_close(l, uv_strerror(r), false);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    mn_link *l = req->data;
    l->resolving = false;
    if (l->state != LINK_CLOSING) {
        if (status < 0 || res == NULL) {
            char reason[128];
            snprintf(reason, sizeof reason, "resolve: %s", uv_strerror(status));
            link_close(l, reason, false);
        } else {
            /* Prefer IPv4: "localhost" often lists ::1 first while nodes listen on 127.0.0.1. */
            const struct addrinfo *pick = res;
            for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
                if (ai->ai_family == AF_INET) {
                    pick = ai;
                    break;
                }
            link_connect(l, pick->ai_addr);
        }
    }
    uv_freeaddrinfo(res);
    link_unref(l); /* the reference held for the resolver; handles_open too */
}

static void peer_dial(mn_peer *p) {
    mn_net *net = p->net;
    if (net->stopped || !p->cfg.should_dial || p->cfg.addr[0] == '\0') return;
    if (p->live != NULL || p->dialing != NULL) return;
    char host[MN_NET_ADDR_MAX + 1];
    uint16_t port = 0;
    if (split_addr(p->cfg.addr, host, sizeof host, &port) != MN_OK || port == 0) {
        LOG_WARN("peer_addr_bad", "peer=%s addr=%s", p->cfg.name, p->cfg.addr);
        return;
    }
    mn_link *l = link_new(net, true);
    if (l == NULL) {
        schedule_redial(p);
        return;
    }
    l->peer = p;
    p->dialing = l;
    net->stats.dials++;
    struct sockaddr_storage ss;
    if (literal_addr(host, port, &ss) == MN_OK) {
        link_connect(l, (struct sockaddr *)&ss);
        return;
    }
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    l->gai_req.data = l;
    l->refs++;
    net->handles_open++;
    l->resolving = true;
    int r = uv_getaddrinfo(net->loop, &l->gai_req, gai_cb, host, service, &hints);
    if (r != 0) {
        l->resolving = false;
        l->refs--;
        net->handles_open--;
        link_close(l, uv_strerror(r), false);
    }
}

static void redial_cb(uv_timer_t *t) { peer_dial(t->data); }

static void flush_dirty(mn_net *net) {
    if (!net->any_dirty) return;
    net->any_dirty = false;
    for (mn_link *l = net->links; l != NULL; l = l->next) {
        if (!l->dirty) continue;
        l->dirty = false;
        link_flush(l);
    }
}

static void flusher_cb(uv_check_t *c) { flush_dirty(c->data); }
static void preflusher_cb(uv_prepare_t *p) { flush_dirty(p->data); }

static void sweep_cb(uv_timer_t *t) {
    mn_net *net = t->data;
    uint64_t now = now_ms(net);
    mn_link *l = net->links;
    while (l != NULL) {
        mn_link *next = l->next;
        if ((l->state == LINK_CONNECTING || l->state == LINK_HANDSHAKE) && now >= l->deadline_ms)
            link_close(l, "handshake timeout", !l->outbound);
        else if (l->state == LINK_RETIRED && now >= l->deadline_ms)
            link_close(l, "duplicate link did not drain", false);
        l = next;
    }
}

static void connection_cb(uv_stream_t *server, int status) {
    mn_net *net = server->data;
    if (net->stopped) return;
    if (status < 0) {
        LOG_WARN("peer_accept_failed", "error=\"%s\"", uv_strerror(status));
        return;
    }
    mn_link *l = link_new(net, false);
    if (l == NULL) {
        LOG_ERROR("peer_accept_failed", "error=\"out of memory\"");
        return;
    }
    int r = uv_accept(server, (uv_stream_t *)&l->tcp);
    if (r != 0) {
        link_close(l, uv_strerror(r), false);
        return;
    }
    if (net->pending_inbound >= MN_NET_PENDING_MAX) {
        link_close(l, "too many unauthenticated connections", true);
        return;
    }
    l->counted_pending = true;
    net->pending_inbound++;
    link_start(l);
}

/* ---------------- public ---------------- */

static int setup_fail(char *err, size_t err_len, int code, const char *fmt, const char *a) {
    if (err != NULL && err_len > 0) snprintf(err, err_len, fmt, a);
    return code;
}

int mn_net_new(mn_net **out, uv_loop_t *loop, const mn_net_config *cfg, char *err, size_t err_len) {
    if (out == NULL) return MN_EINVAL;
    *out = NULL;
    if (loop == NULL || cfg == NULL) return setup_fail(err, err_len, MN_EINVAL, "net: %s", "no loop or config");
    if (cfg->name == NULL || cfg->name[0] == '\0' || strlen(cfg->name) > MN_NET_NAME_MAX)
        return setup_fail(err, err_len, MN_EINVAL, "net: own name %s", "missing or too long");
    if (cfg->peer_count > MN_NET_PEERS_MAX || (cfg->peer_count > 0 && cfg->peers == NULL))
        return setup_fail(err, err_len, MN_EINVAL, "net: %s", "too many peers");
    if (cfg->frame_bytes_max > MN_PEER_FRAME_BYTES_MAX)
        return setup_fail(err, err_len, MN_EINVAL, "net: %s", "frame_bytes_max above MN_PEER_FRAME_BYTES_MAX");
    for (size_t i = 0; i < cfg->peer_count; i++) {
        const mn_net_peer_config *pc = &cfg->peers[i];
        size_t nl = strnlen(pc->name, sizeof pc->name);
        if (nl == 0 || nl > MN_NET_NAME_MAX)
            return setup_fail(err, err_len, MN_EINVAL, "net: a peer has %s", "no valid name");
        if (strcmp(pc->name, cfg->name) == 0)
            return setup_fail(err, err_len, MN_EINVAL, "net: peer %s is this node", pc->name);
        if (strnlen(pc->addr, sizeof pc->addr) > MN_NET_ADDR_MAX)
            return setup_fail(err, err_len, MN_EINVAL, "net: peer %s address too long", pc->name);
        if (pc->addr[0] != '\0') {
            char host[MN_NET_ADDR_MAX + 1];
            uint16_t port;
            if (split_addr(pc->addr, host, sizeof host, &port) != MN_OK || port == 0)
                return setup_fail(err, err_len, MN_EINVAL, "net: peer %s address is not host:port", pc->name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->peers[j].name, pc->name) == 0)
                return setup_fail(err, err_len, MN_EINVAL, "net: peer %s listed twice", pc->name);
            if (memcmp(cfg->peers[j].pin, pc->pin, MN_TLS_PIN_LEN) == 0)
                return setup_fail(err, err_len, MN_EINVAL, "net: peer %s shares its pin with another", pc->name);
        }
    }
    /* libuv writes with write(2): a peer that resets its connection would
     * otherwise kill the process with SIGPIPE. Keep a handler someone set. */
    struct sigaction sa_old;
    if (sigaction(SIGPIPE, NULL, &sa_old) == 0 && sa_old.sa_handler == SIG_DFL) {
        struct sigaction sa_ign;
        memset(&sa_ign, 0, sizeof sa_ign);
        sa_ign.sa_handler = SIG_IGN;
        sigemptyset(&sa_ign.sa_mask);
        if (sigaction(SIGPIPE, &sa_ign, NULL) != 0)
            return setup_fail(err, err_len, MN_EIO, "net: %s", "cannot ignore SIGPIPE");
    }
    mn_net *net = calloc(1, sizeof *net);
    if (net == NULL) return setup_fail(err, err_len, MN_ENOMEM, "net: %s", "out of memory");
    net->loop = loop;
    snprintf(net->name, sizeof net->name, "%s", cfg->name);
    net->cb = cfg->cb;
    net->out_queue_bytes_max = cfg->out_queue_bytes_max ? cfg->out_queue_bytes_max : MN_NET_OUT_QUEUE_BYTES_DEFAULT;
    net->frame_bytes_max = cfg->frame_bytes_max ? cfg->frame_bytes_max : MN_PEER_FRAME_BYTES_MAX;
    net->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : MN_NET_BACKOFF_MIN_MS_DEFAULT;
    net->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : MN_NET_BACKOFF_MAX_MS_DEFAULT;
    /* Bounds keep the doubling and the uv_buf_t length (unsigned int) from overflowing. */
    if (net->backoff_min_ms > MN_NET_BACKOFF_MS_LIMIT) net->backoff_min_ms = MN_NET_BACKOFF_MS_LIMIT;
    if (net->backoff_max_ms > MN_NET_BACKOFF_MS_LIMIT) net->backoff_max_ms = MN_NET_BACKOFF_MS_LIMIT;
    if (net->backoff_max_ms < net->backoff_min_ms) net->backoff_max_ms = net->backoff_min_ms;
    if (net->out_queue_bytes_max > MN_NET_OUT_QUEUE_BYTES_LIMIT) net->out_queue_bytes_max = MN_NET_OUT_QUEUE_BYTES_LIMIT;
    net->handshake_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : MN_NET_HANDSHAKE_MS_DEFAULT;
    int rc = mn_tls_ctx_new(&net->tls, cfg->key, cfg->cert, err, err_len);
    if (rc != MN_OK) {
        free(net);
        return rc;
    }
    if (cfg->peer_count > 0) {
        net->peers = calloc(cfg->peer_count, sizeof *net->peers);
        if (net->peers == NULL) {
            mn_tls_ctx_free(net->tls);
            free(net);
            return setup_fail(err, err_len, MN_ENOMEM, "net: %s", "out of memory");
        }
    }
    net->peer_count = cfg->peer_count;
    /* From here on handles exist: failures go through mn_net_free. */
    for (size_t i = 0; i < cfg->peer_count; i++) {
        mn_peer *p = &net->peers[i];
        p->net = net;
        p->cfg = cfg->peers[i];
        p->cfg.name[MN_NET_NAME_MAX] = '\0';
        p->cfg.addr[MN_NET_ADDR_MAX] = '\0';
        p->backoff_ms = net->backoff_min_ms;
        if (uv_timer_init(loop, &p->redial) != 0) {
            rc = setup_fail(err, err_len, MN_EIO, "net: %s", "timer init failed");
            goto fail;
        }
        p->redial.data = p;
        net->peer_timers_init++;
        net->handles_open++;
    }
    if (uv_timer_init(loop, &net->sweep) != 0) {
        rc = setup_fail(err, err_len, MN_EIO, "net: %s", "timer init failed");
        goto fail;
    }
    net->sweep.data = net;
    net->sweep_init = true;
    net->handles_open++;
    uint64_t sweep_ms = net->handshake_timeout_ms / 2;
    if (sweep_ms > SWEEP_MS_MAX) sweep_ms = SWEEP_MS_MAX;
    if (sweep_ms == 0) sweep_ms = 1;
    if (uv_timer_start(&net->sweep, sweep_cb, sweep_ms, sweep_ms) != 0) {
        rc = setup_fail(err, err_len, MN_EIO, "net: %s", "timer start failed");
        goto fail;
    }
    if (uv_check_init(loop, &net->flusher) != 0) {
        rc = setup_fail(err, err_len, MN_EIO, "net: %s", "check init failed");
        goto fail;
    }
    net->flusher.data = net;
    net->flusher_init = true;
    net->handles_open++;
    if (uv_check_start(&net->flusher, flusher_cb) != 0) {
        rc = setup_fail(err, err_len, MN_EIO, "net: %s", "check start failed");
        goto fail;
    }
    uv_unref((uv_handle_t *)&net->flusher); /* it alone must not keep the loop running */
    if (uv_prepare_init(loop, &net->preflusher) != 0) {
        rc = setup_fail(err, err_len, MN_EIO, "net: %s", "prepare init failed");
        goto fail;
    }
    net->preflusher.data = net;
    net->preflusher_init = true;
    net->handles_open++;
    if (uv_prepare_start(&net->preflusher, preflusher_cb) != 0) {
        rc = setup_fail(err, err_len, MN_EIO, "net: %s", "prepare start failed");
        goto fail;
    }
    uv_unref((uv_handle_t *)&net->preflusher);
    if (cfg->listen_addr != NULL && cfg->listen_addr[0] != '\0') {
        char host[MN_NET_ADDR_MAX + 1];
        uint16_t port = 0;
        if (split_addr(cfg->listen_addr, host, sizeof host, &port) != MN_OK) {
            rc = setup_fail(err, err_len, MN_EINVAL, "net: listen address %s is not host:port", cfg->listen_addr);
            goto fail;
        }
        struct sockaddr_storage ss;
        if (literal_addr(host, port, &ss) != MN_OK) {
            /* Set-up may block: resolve a listen host name synchronously. */
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof hints);
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            hints.ai_flags = AI_PASSIVE;
            if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL || res->ai_addrlen > sizeof ss) {
                if (res) freeaddrinfo(res);
                rc = setup_fail(err, err_len, MN_EINVAL, "net: cannot resolve listen host %s", host);
                goto fail;
            }
            memcpy(&ss, res->ai_addr, res->ai_addrlen);
            freeaddrinfo(res);
            if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons(port);
            else
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        }
        if (uv_tcp_init(loop, &net->listener) != 0) {
            rc = setup_fail(err, err_len, MN_EIO, "net: %s", "tcp init failed");
            goto fail;
        }
        net->listener.data = net;
        net->listener_init = true;
        net->handles_open++;
        int r = uv_tcp_bind(&net->listener, (struct sockaddr *)&ss, 0);
        if (r == 0) r = uv_listen((uv_stream_t *)&net->listener, 128, connection_cb);
        if (r != 0) {
            if (err != NULL && err_len > 0)
                snprintf(err, err_len, "net: cannot listen on %s: %s", cfg->listen_addr, uv_strerror(r));
            rc = MN_EIO;
            goto fail;
        }
        struct sockaddr_storage bound;
        int bl = sizeof bound;
        if (uv_tcp_getsockname(&net->listener, (struct sockaddr *)&bound, &bl) == 0)
            net->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                         : ((struct sockaddr_in6 *)&bound)->sin6_port);
        LOG_INFO("net_listening", "node=%s addr=%s port=%u", net->name, cfg->listen_addr, (unsigned)net->port);
    }
    for (size_t i = 0; i < net->peer_count; i++) peer_dial(&net->peers[i]);
    *out = net;
    return MN_OK;
fail:
    mn_net_free(net);
    return rc;
}

uint16_t mn_net_listen_port(const mn_net *net) { return net->port; }

static mn_peer *peer_find(mn_net *net, const char *name) {
    if (name == NULL) return NULL;
    for (size_t i = 0; i < net->peer_count; i++)
        if (strcmp(net->peers[i].cfg.name, name) == 0) return &net->peers[i];
    return NULL;
}

int mn_net_set_peer_addr(mn_net *net, const char *peer, const char *addr) {
    mn_peer *p = peer_find(net, peer);
    if (p == NULL) return MN_ENOTFOUND;
    if (addr == NULL) addr = "";
    if (strlen(addr) > MN_NET_ADDR_MAX) return MN_EINVAL;
    if (addr[0] != '\0') {
        char host[MN_NET_ADDR_MAX + 1];
        uint16_t port;
        if (split_addr(addr, host, sizeof host, &port) != MN_OK || port == 0) return MN_EINVAL;
    }
    snprintf(p->cfg.addr, sizeof p->cfg.addr, "%s", addr);
    if (!net->stopped && p->live == NULL && p->dialing == NULL) {
        (void)uv_timer_stop(&p->redial);
        p->backoff_ms = net->backoff_min_ms;
        peer_dial(p);
    }
    return MN_OK;
}

int mn_net_send(mn_net *net, const char *peer, const uint8_t *bytes, size_t len) {
    if (len > net->frame_bytes_max) return MN_ETOOBIG;
    if (len > 0 && bytes == NULL) return MN_EINVAL;
    mn_peer *p = peer_find(net, peer);
    if (p == NULL) return MN_ENOTFOUND;
    if (net->stopped || p->live == NULL) return MN_ESTATE;
    return link_send_frame(p->live, bytes, len);
}

int mn_net_broadcast(mn_net *net, const uint8_t *bytes, size_t len) {
    if (len > net->frame_bytes_max) return MN_ETOOBIG;
    if (len > 0 && bytes == NULL) return MN_EINVAL;
    int sent = 0;
    for (size_t i = 0; i < net->peer_count && !net->stopped; i++) {
        mn_peer *p = &net->peers[i];
        if (p->live != NULL && link_send_frame(p->live, bytes, len) == MN_OK) sent++;
    }
    return sent;
}

void mn_net_flush(mn_net *net) {
    if (net != NULL && !net->stopped) flush_dirty(net);
}

size_t mn_net_peer_count(const mn_net *net) {
    size_t n = 0;
    for (size_t i = 0; i < net->peer_count; i++)
        if (net->peers[i].live != NULL) n++;
    return n;
}

size_t mn_net_peers(const mn_net *net, mn_net_peer_info *out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < net->peer_count && n < cap; i++, n++) {
        const mn_peer *p = &net->peers[i];
        mn_net_peer_info *o = &out[n];
        memset(o, 0, sizeof *o);
        memcpy(o->name, p->cfg.name, sizeof o->name);
        memcpy(o->addr, p->cfg.addr, sizeof o->addr);
        o->up = p->live != NULL;
        o->outbound = p->live != NULL && p->live->outbound;
        o->out_queue_bytes = p->live != NULL ? link_queued(p->live) : 0;
        for (const mn_link *l = net->links; l != NULL; l = l->next)
            if (l->peer == p && (l->state == LINK_LIVE || l->state == LINK_RETIRED)) o->links++;
    }
    return n;
}

void mn_net_stats_get(const mn_net *net, mn_net_stats *out) {
    *out = net->stats;
    out->links_open = 0;
    for (const mn_link *l = net->links; l != NULL; l = l->next)
        if (l->state != LINK_CLOSING) out->links_open++;
}

void mn_net_stop(mn_net *net) {
    if (net == NULL || net->stopped) return;
    net->stopped = true;
    if (net->listener_init) uv_close((uv_handle_t *)&net->listener, handle_closed);
    if (net->sweep_init) uv_close((uv_handle_t *)&net->sweep, handle_closed);
    if (net->flusher_init) uv_close((uv_handle_t *)&net->flusher, handle_closed);
    if (net->preflusher_init) uv_close((uv_handle_t *)&net->preflusher, handle_closed);
    for (size_t i = 0; i < net->peer_timers_init; i++) uv_close((uv_handle_t *)&net->peers[i].redial, peer_timer_closed);
    for (mn_link *l = net->links; l != NULL; l = l->next) link_close(l, "stopping", false);
}

bool mn_net_closed(const mn_net *net) { return net->stopped && net->handles_open == 0; }

void mn_net_free(mn_net *net) {
    if (net == NULL) return;
    mn_net_stop(net);
    net->free_requested = true;
    maybe_release(net);
}
