/* bench_fast.c: the closed-loop status workloads driven from one thread with
 * one epoll loop over all connections, as redis-benchmark drives Redis.
 *
 * The thread-per-connection driver of bench_run.c spends as much CPU per
 * query as the node (a thread wake-up, a send and two receives per request,
 * protobuf-c on both sides), and on a shared 2-core machine that CPU is taken
 * from the node being measured. Here every request of a connection that can
 * go out is written in one write, every response that arrived is read in one
 * read, and the frames are encoded and decoded by hand (RpcRequest /
 * RpcResponse / GetStatusResponse, only the fields this needs; a response
 * that does not parse counts as an error).
 *
 * Request ids carry the slot they were sent from (id = seq << 10 | slot), so
 * an answer finds its send time without a search whatever the answer order. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "midnode.pb-c.h"

#define FAST_SLOT_BITS 10
_Static_assert(BENCH_DEPTH_MAX <= (1 << FAST_SLOT_BITS), "a slot index fits in the id's low bits");
#define FAST_RBUF_BYTES (256 * 1024)
#define FAST_REQ_BYTES 96 /* one framed request, proof flag included */

typedef struct fast_conn {
    int fd;
    uint64_t seq;
    uint32_t inflight;
    uint64_t *t0;  /* per slot: send time, 0 when free */
    uint64_t *ids; /* per slot: id in flight */
    uint8_t *rbuf;
    size_t rlen;
    uint8_t *obuf;
    size_t olen, ocap;
} fast_conn;

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
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

/* Reads a varint from [*p, end); false when truncated or over 10 bytes. */
static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Walks the fields of a message: calls back for varint and length-delimited
 * fields, skips fixed ones. False when the bytes are not a message. */
typedef struct pb_field {
    uint32_t num;
    uint64_t v;            /* varint */
    const uint8_t *data;   /* length-delimited */
    size_t len;
    bool is_bytes;
} pb_field;

static bool pb_next(const uint8_t **p, const uint8_t *end, pb_field *f) {
    uint64_t key;
    if (!get_varint(p, end, &key)) return false;
    f->num = (uint32_t)(key >> 3);
    f->is_bytes = false;
    switch (key & 7) {
    case 0: return get_varint(p, end, &f->v);
    case 1:
        if (end - *p < 8) return false;
        *p += 8;
        return true;
    case 2: {
        uint64_t len;
        if (!get_varint(p, end, &len) || len > (uint64_t)(end - *p)) return false;
        f->data = *p;
        f->len = (size_t)len;
        f->is_bytes = true;
        *p += len;
        return true;
    }
    case 5:
        if (end - *p < 4) return false;
        *p += 4;
        return true;
    default: return false;
    }
}

typedef struct fast_run {
    const bench_opts *o;
    bool with_proof;
    uint64_t rng;
    uint64_t end_us;
    bench_result *res;
} fast_run;

static int conn_open(fast_conn *c, const char *target, uint32_t depth, char *err, size_t err_len) {
    char host[256];
    uint16_t port;
    if (mn_client_parse_addr(host, sizeof host, &port, target) != MN_OK) {
        snprintf(err, err_len, "bad address %s", target);
        return MN_EINVAL;
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) {
        snprintf(err, err_len, "cannot resolve %s", host);
        return MN_EIO;
    }
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, err_len, "connect %s: %s", target, strerror(errno));
        freeaddrinfo(ai);
        if (c->fd >= 0) close(c->fd);
        c->fd = -1;
        return MN_EIO;
    }
    freeaddrinfo(ai);
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 30};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    c->t0 = calloc(depth, sizeof *c->t0);
    c->ids = calloc(depth, sizeof *c->ids);
    c->rbuf = malloc(FAST_RBUF_BYTES);
    c->ocap = (size_t)depth * FAST_REQ_BYTES;
    c->obuf = malloc(c->ocap);
    if (!c->t0 || !c->ids || !c->rbuf || !c->obuf) {
        snprintf(err, err_len, "out of memory");
        return MN_ENOMEM;
    }
    return MN_OK;
}

static void conn_close(fast_conn *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->t0);
    free(c->ids);
    free(c->rbuf);
    free(c->obuf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* Queues a request into every free slot. */
static void conn_fill(fast_run *fr, fast_conn *c, uint32_t depth, uint64_t now) {
    const bench_opts *o = fr->o;
    for (uint32_t s = 0; s < depth && c->inflight < depth; s++) {
        if (c->t0[s]) continue;
        uint8_t id[MN_ID_LEN];
        double u = (double)(rng_next(&fr->rng) >> 11) / 9007199254740992.0;
        if (o->count > 0 && u >= o->miss_ratio) bench_cred_id(id, o->seed, rng_next(&fr->rng) % o->count);
        else bench_cred_id(id, o->seed ^ 0x8000000000000000ull, rng_next(&fr->rng));
        uint64_t rid = (++c->seq << FAST_SLOT_BITS) | s;
        uint8_t *f = c->obuf + c->olen, *p = f + 4;
        *p++ = 0x08; /* RpcRequest.id */
        p += put_varint(p, rid);
        *p++ = 0x12; /* .method */
        *p++ = 9;
        memcpy(p, "GetStatus", 9);
        p += 9;
        *p++ = 0x1a; /* .payload: GetStatusRequest */
        *p++ = fr->with_proof ? 2 + MN_ID_LEN + 2 : 2 + MN_ID_LEN;
        *p++ = 0x0a;
        *p++ = MN_ID_LEN;
        memcpy(p, id, MN_ID_LEN);
        p += MN_ID_LEN;
        if (fr->with_proof) {
            *p++ = 0x10;
            *p++ = 1;
        }
        size_t len = (size_t)(p - f - 4);
        f[0] = 0;
        f[1] = 0;
        f[2] = (uint8_t)(len >> 8);
        f[3] = (uint8_t)len;
        c->olen += 4 + len;
        c->t0[s] = now ? now : 1;
        c->ids[s] = rid;
        c->inflight++;
    }
}

static int conn_write(fast_conn *c) {
    size_t off = 0;
    while (off < c->olen) {
        ssize_t n = send(c->fd, c->obuf + off, c->olen - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return MN_EIO; /* blocking socket with a send timeout */
    }
    c->olen = 0;
    return MN_OK;
}

/* One response frame; counts it. */
static void on_response(fast_run *fr, fast_conn *c, uint32_t depth, const uint8_t *b, size_t len, uint64_t now) {
    bench_result *res = fr->res;
    const uint8_t *p = b, *end = b + len;
    uint64_t id = 0, code = 0;
    const uint8_t *pl = NULL;
    size_t pl_len = 0;
    bool ok = true;
    pb_field f;
    while (p < end && (ok = pb_next(&p, end, &f))) {
        if (f.num == 1 && !f.is_bytes) id = f.v;
        else if (f.num == 2 && !f.is_bytes) code = f.v;
        else if (f.num == 4 && f.is_bytes) {
            pl = f.data;
            pl_len = f.len;
        }
    }
    uint32_t s = (uint32_t)(id & ((1u << FAST_SLOT_BITS) - 1));
    if (s >= depth || !c->t0[s] || c->ids[s] != id) {
        res->errors++;
        return;
    }
    uint64_t t0 = c->t0[s];
    c->t0[s] = 0;
    c->inflight--;
    uint64_t st = 0;
    bool have_proof = false;
    if (ok && code == MIDNODE__RPC_CODE__RPC_OK) {
        const uint8_t *q = pl, *qend = pl + pl_len;
        while (q && q < qend && (ok = pb_next(&q, qend, &f))) {
            if (f.num == 2 && !f.is_bytes) st = f.v;
            else if (f.num == 6 && f.is_bytes) have_proof = true;
        }
    } else if (ok && code == MIDNODE__RPC_CODE__RPC_NOT_FOUND) {
        st = 0;
    } else {
        ok = false;
    }
    if (ok && fr->with_proof && code == MIDNODE__RPC_CODE__RPC_OK && !have_proof) ok = false;
    if (!ok) {
        res->errors++;
        return;
    }
    if (st == MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN) res->misses++;
    else res->hits++;
    res->ops++;
    bench_hist_record(&res->lat, now > t0 ? now - t0 : 0);
}

/* Reads what is there and handles every whole frame. MN_OK, or MN_EIO when
 * the connection failed or sent a frame over the bound. */
static int conn_read(fast_run *fr, fast_conn *c, uint32_t depth) {
    for (;;) {
        size_t space = FAST_RBUF_BYTES - c->rlen;
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, space, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) return MN_EIO;
        c->rlen += (size_t)n;
        uint64_t now = now_us();
        size_t off = 0;
        while (c->rlen - off >= 4) {
            const uint8_t *h = c->rbuf + off;
            uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
            if (len + 4 > FAST_RBUF_BYTES) return MN_EIO;
            if (c->rlen - off < 4 + (size_t)len) break;
            on_response(fr, c, depth, h + 4, len, now);
            off += 4 + len;
        }
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
        if ((size_t)n < space) break; /* the socket is drained */
    }
    return MN_OK;
}

int bench_status_fast(const bench_opts *o, const char *target, bool with_proof, bench_result *res, char *err,
                      size_t err_len) {
    uint32_t nc = o->connections, depth = o->depth;
    fast_conn *cs = calloc(nc, sizeof *cs);
    if (!cs) return MN_ENOMEM;
    for (uint32_t i = 0; i < nc; i++) cs[i].fd = -1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int rc = ep < 0 ? MN_EIO : MN_OK;
    fast_run fr = {.o = o, .with_proof = with_proof, .res = res};
    fr.rng = now_us() ^ ((uint64_t)getpid() << 32);
    for (uint32_t i = 0; rc == MN_OK && i < nc; i++) {
        rc = conn_open(&cs[i], target, depth, err, err_len);
        if (rc != MN_OK) break;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0) {
            snprintf(err, err_len, "epoll_ctl: %s", strerror(errno));
            rc = MN_EIO;
        }
    }
    uint64_t start = now_us();
    fr.end_us = start + (uint64_t)(o->duration_s * 1e6);
    for (uint32_t i = 0; rc == MN_OK && i < nc; i++) {
        conn_fill(&fr, &cs[i], depth, start);
        if (conn_write(&cs[i]) != MN_OK) {
            snprintf(err, err_len, "send: %s", strerror(errno));
            rc = MN_EIO;
        }
    }
    bool sending = true;
    struct epoll_event evs[256];
    uint64_t last_progress = start;
    while (rc == MN_OK) {
        uint64_t now = now_us();
        if (sending && now >= fr.end_us) sending = false;
        if (!sending) {
            uint32_t busy = 0;
            for (uint32_t i = 0; i < nc; i++) busy += cs[i].inflight;
            if (busy == 0) break;
        }
        if (now - last_progress > (uint64_t)o->timeout_ms * 1000) {
            snprintf(err, err_len, "no answer for %u ms", o->timeout_ms);
            rc = MN_EIO;
            break;
        }
        int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), 100);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, err_len, "epoll_wait: %s", strerror(errno));
            rc = MN_EIO;
            break;
        }
        if (n > 0) last_progress = now_us();
        for (int k = 0; k < n && rc == MN_OK; k++) {
            fast_conn *c = &cs[evs[k].data.u32];
            if (conn_read(&fr, c, depth) != MN_OK) {
                snprintf(err, err_len, "connection %u failed or sent a bad frame", evs[k].data.u32);
                rc = MN_EIO;
                break;
            }
            if (sending) {
                conn_fill(&fr, c, depth, now_us());
                if (c->olen && conn_write(c) != MN_OK) {
                    snprintf(err, err_len, "send: %s", strerror(errno));
                    rc = MN_EIO;
                }
            }
        }
    }
    res->elapsed_s = (double)(now_us() - start) / 1e6;
    for (uint32_t i = 0; i < nc; i++) {
        res->errors += cs[i].inflight;
        conn_close(&cs[i]);
    }
    if (ep >= 0) close(ep);
    free(cs);
    return rc;
}
