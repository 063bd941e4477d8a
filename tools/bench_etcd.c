/* bench_etcd.c: `midbench etcd-put`, the comparison driver for etcd: puts
 * through etcd's HTTP/JSON gateway (POST /v3/kv/put, HTTP/1.1 keep-alive),
 * one request in flight per connection, closed loop or fixed rate, measured
 * with the same histogram as midbench's own workloads. The gateway costs
 * etcd some JSON work that its gRPC clients would not pay. --node must be a
 * numeric IPv4 address and port (the bench starts etcd on 127.0.0.1). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"

typedef struct etcd_worker {
    const bench_opts *o;
    uint32_t index;
    uint64_t end_us;
    pthread_t th;
    bench_histogram lat;
    uint64_t ops, errors;
    int fatal;
} etcd_worker;

static uint64_t etcd_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int etcd_connect(const char *hostport) {
    char host[BENCH_ADDR_MAX];
    uint16_t port;
    if (mn_client_parse_addr(host, sizeof host, &port, hostport) != MN_OK) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {30, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64(char *out, const uint8_t *in, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = B64[v >> 18 & 63];
        out[o++] = B64[v >> 12 & 63];
        out[o++] = i + 1 < n ? B64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = '\0';
}

/* One put; returns 0 on HTTP 200. */
static int etcd_put(int fd, const char *host, uint64_t key_i, char *buf, size_t cap) {
    uint8_t key[MN_ID_LEN], val[128];
    bench_cred_id(key, 0xe7cd, key_i);
    memset(val, 0x5a, sizeof val); /* about the size of a CredentialRecord */
    char k64[64], v64[200], body[320];
    b64(k64, key, sizeof key);
    b64(v64, val, sizeof val);
    int bl = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
    int n = snprintf(buf, cap,
                     "POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     host, bl, body);
    if (n <= 0 || (size_t)n >= cap) return -1;
    if (write(fd, buf, (size_t)n) != n) return -1;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0) return -1;
        got += (size_t)r;
        buf[got] = '\0';
        char *hdr_end = strstr(buf, "\r\n\r\n");
        if (!hdr_end) {
            if (got >= cap - 1) return -1;
            continue;
        }
        char *cl = strstr(buf, "Content-Length:");
        if (!cl) cl = strstr(buf, "content-length:");
        if (!cl) return -1;
        size_t need = (size_t)(hdr_end + 4 - buf) + (size_t)strtoul(cl + 15, NULL, 10);
        if (need >= cap) return -1;
        if (got >= need) return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
    }
}

static void *etcd_main(void *arg) {
    etcd_worker *w = arg;
    const bench_opts *o = w->o;
    int fd = etcd_connect(o->node);
    if (fd < 0) {
        w->fatal = MN_EIO;
        return NULL;
    }
    char buf[4096];
    double interval_us = o->rate > 0 ? 1e6 * o->connections / o->rate : 0;
    uint64_t next = etcd_now_us() + (uint64_t)(interval_us * w->index / o->connections);
    uint64_t i = (uint64_t)w->index << 32;
    for (;;) {
        uint64_t now = etcd_now_us();
        if (now >= w->end_us) break;
        uint64_t t0 = now;
        if (o->rate > 0) {
            if (now < next) {
                struct timespec ts = {0, (long)(next - now) * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
            t0 = next;
            next += (uint64_t)interval_us;
        }
        if (etcd_put(fd, o->node, i++, buf, sizeof buf) != 0) {
            w->errors++;
            close(fd);
            fd = etcd_connect(o->node);
            if (fd < 0) {
                w->fatal = MN_EIO;
                return NULL;
            }
            continue;
        }
        uint64_t t = etcd_now_us();
        w->ops++;
        bench_hist_record(&w->lat, t - t0);
    }
    close(fd);
    return NULL;
}

int bench_run_etcd(const bench_opts *o, bench_result *res, char *err, size_t err_len) {
    memset(res, 0, sizeof *res);
    bench_hist_init(&res->lat);
    bench_hist_init(&res->prop);
    res->workload = "etcd-put";
    etcd_worker *ws = calloc(o->connections, sizeof *ws);
    if (!ws) return MN_ENOMEM;
    uint64_t t_start = etcd_now_us();
    uint32_t started = 0;
    int rc = MN_OK;
    for (uint32_t i = 0; i < o->connections; i++) {
        ws[i].o = o;
        ws[i].index = i;
        ws[i].end_us = t_start + (uint64_t)(o->duration_s * 1e6);
        bench_hist_init(&ws[i].lat);
        if (pthread_create(&ws[i].th, NULL, etcd_main, &ws[i]) != 0) break;
        started++;
    }
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(ws[i].th, NULL);
        if (ws[i].fatal && rc == MN_OK) {
            rc = ws[i].fatal;
            snprintf(err, err_len, "etcd at %s: connection failed", o->node);
        }
        bench_hist_merge(&res->lat, &ws[i].lat);
        res->ops += ws[i].ops;
        res->errors += ws[i].errors;
    }
    if (started < o->connections && rc == MN_OK) {
        rc = MN_ENOMEM;
        snprintf(err, err_len, "cannot start threads");
    }
    res->elapsed_s = (double)(etcd_now_us() - t_start) / 1e6;
    free(ws);
    return rc;
}
