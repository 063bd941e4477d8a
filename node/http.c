/* http.c: the operator HTTP endpoint on libuv, and the blocking probe client.
 *
 * One request per connection. A client moves READING -> (response written)
 * -> DRAINING (FIN sent, further input discarded so the peer sees our
 * answer rather than a reset) -> closed. Every client has a TCP handle and
 * an idle timer; it is freed when both close callbacks have run. The server
 * is freed when its listener and its last client have closed. */
#include "http.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"
#include "metrics.h"

#define DRAIN_MS 1000

enum client_state { C_READING, C_WRITING, C_DRAINING, C_CLOSING };

struct client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t sd;
    struct mn_http *srv;
    struct client *prev, *next;
    enum client_state state;
    int open_handles;
    char *resp;
    size_t head_len;
    char head[MN_HTTP_HEAD_MAX + 1];
    char rbuf[4096];
};

struct mn_http {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct mn_http_config cfg;
    struct client *clients;
    size_t nclients;
    uint16_t port;
    uint64_t requests;
    bool stopping;
    bool listener_closed;
};

/* ---- server teardown ---- */

static void server_maybe_free(struct mn_http *h) {
    if (h->stopping && h->listener_closed && h->nclients == 0) free(h);
}

static void on_client_handle_closed(uv_handle_t *handle) {
    struct client *c = handle->data;
    assert(c->open_handles > 0);
    if (--c->open_handles > 0) return;
    struct mn_http *h = c->srv;
    if (c->prev) c->prev->next = c->next; else h->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    h->nclients--;
    free(c->resp);
    free(c);
    server_maybe_free(h);
}

static void client_close(struct client *c) {
    if (c->state == C_CLOSING) return;
    c->state = C_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
}

static void on_idle(uv_timer_t *t) { client_close(t->data); }

/* ---- responses ---- */

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    struct client *c = req->data;
    if (c->state != C_DRAINING) return;
    /* Nothing more to say; wait briefly for the peer's FIN, then close. */
    if (uv_timer_start(&c->timer, on_idle, DRAIN_MS, 0) != 0) client_close(c);
}

static void on_written(uv_write_t *req, int status) {
    struct client *c = req->data;
    free(c->resp);
    c->resp = NULL;
    if (c->state != C_WRITING) return; /* closed meanwhile (stop) */
    if (status < 0) {
        client_close(c);
        return;
    }
    c->state = C_DRAINING;
    c->sd.data = c;
    if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0) client_close(c);
}

static const char *reason_phrase(int code) {
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Sends the response and takes ownership of body (malloc'd or NULL). */
static void respond(struct client *c, int code, const char *ctype, char *body, bool head_only) {
    c->srv->requests++;
    size_t blen = body ? strlen(body) : 0;
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     code, reason_phrase(code), ctype, blen);
    assert(n > 0 && (size_t)n < sizeof hdr);
    size_t total = (size_t)n + (head_only ? 0 : blen);
    c->resp = malloc(total);
    if (!c->resp) {
        free(body);
        client_close(c);
        return;
    }
    memcpy(c->resp, hdr, (size_t)n);
    if (!head_only && blen) memcpy(c->resp + n, body, blen);
    free(body);
    uv_buf_t buf = uv_buf_init(c->resp, (unsigned)total);
    c->state = C_WRITING;
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
        free(c->resp);
        c->resp = NULL;
        client_close(c);
    }
}

static void respond_text(struct client *c, int code, const char *text, bool head_only) {
    char *body = strdup(text);
    respond(c, code, "text/plain; charset=utf-8", body, head_only);
}

static bool is_tchar(char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void handle_request(struct client *c) {
    struct mn_http *h = c->srv;
    c->head[c->head_len] = 0;
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    const char *p = c->head, *eol = strstr(p, "\r\n");
    if (!eol) eol = strchr(p, '\n');
    if (!eol) {
        respond_text(c, 400, "bad request\n", false);
        return;
    }
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    bool ok = sp1 && sp2 && sp1 > p && sp2 > sp1 + 1 && sp1[1] == '/' && eol - sp2 - 1 == 8 &&
              (memcmp(sp2 + 1, "HTTP/1.1", 8) == 0 || memcmp(sp2 + 1, "HTTP/1.0", 8) == 0);
    for (const char *q = p; ok && q < sp1; q++) ok = is_tchar(*q);
    for (const char *q = sp1 + 1; ok && q < sp2; q++) ok = (unsigned char)*q > 0x20 && *q != 0x7f;
    if (!ok || memchr(c->head, 0, c->head_len)) {
        respond_text(c, 400, "bad request\n", false);
        return;
    }
    size_t mlen = (size_t)(sp1 - p);
    bool is_get = mlen == 3 && memcmp(p, "GET", 3) == 0;
    bool is_head = mlen == 4 && memcmp(p, "HEAD", 4) == 0;
    if (!is_get && !is_head) {
        respond_text(c, 405, "only GET\n", false);
        return;
    }
    const char *path = sp1 + 1;
    size_t plen = (size_t)(sp2 - path);
    const char *qm = memchr(path, '?', plen);
    if (qm) plen = (size_t)(qm - path);
#define PATH_IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, plen) == 0)
    if (PATH_IS("/metrics") && h->cfg.metrics) {
        char *text = mn_metrics_render(h->cfg.metrics, NULL);
        if (!text) respond_text(c, 500, "out of memory\n", is_head);
        else respond(c, 200, MN_METRICS_CONTENT_TYPE, text, is_head);
    } else if (PATH_IS("/healthz")) {
        char reason[MN_HTTP_REASON_MAX] = "";
        bool healthy = h->cfg.health ? h->cfg.health(h->cfg.health_arg, reason, sizeof reason) : true;
        reason[sizeof reason - 1] = 0;
        if (healthy) {
            respond_text(c, 200, "ok\n", is_head);
        } else {
            char body[MN_HTTP_REASON_MAX + 32];
            snprintf(body, sizeof body, "unhealthy: %s\n", reason[0] ? reason : "unknown");
            respond_text(c, 503, body, is_head);
        }
    } else if (PATH_IS("/status") && h->cfg.status) {
        char *json = h->cfg.status(h->cfg.status_arg);
        if (json && strlen(json) > MN_HTTP_BODY_MAX) {
            free(json);
            json = NULL;
        }
        if (!json) respond_text(c, 500, "status unavailable\n", is_head);
        else respond(c, 200, "application/json", json, is_head);
    } else {
        respond_text(c, 404, "not found\n", is_head);
    }
#undef PATH_IS
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct client *c = handle->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static bool head_complete(const struct client *c) {
    /* Bare LF line ends are tolerated, as most servers do. */
    for (size_t i = 1; i < c->head_len; i++) {
        if (c->head[i] != '\n') continue;
        if (c->head[i - 1] == '\n') return true;
        if (i >= 3 && c->head[i - 1] == '\r' && c->head[i - 2] == '\n' && c->head[i - 3] == '\r') return true;
    }
    return false;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    struct client *c = stream->data;
    if (nread == 0) return;
    if (nread < 0) {
        /* EOF or error: with a complete head we have answered already; an
         * unfinished request is abandoned. */
        if (c->state != C_WRITING) client_close(c);
        return;
    }
    if (c->state != C_READING) return; /* draining or writing: discard */
    size_t n = (size_t)nread;
    if (n > MN_HTTP_HEAD_MAX - c->head_len) {
        respond_text(c, 431, "request header too large\n", false);
        return;
    }
    memcpy(c->head + c->head_len, c->rbuf, n);
    c->head_len += n;
    if (head_complete(c)) handle_request(c);
    else if (c->head_len == MN_HTTP_HEAD_MAX) respond_text(c, 431, "request header too large\n", false);
}

static void on_connection(uv_stream_t *listener, int status) {
    struct mn_http *h = listener->data;
    if (status < 0 || h->stopping) return;
    struct client *c = calloc(1, sizeof *c);
    if (!c) return; /* out of memory: the connection waits until a later accept */
    c->srv = h;
    if (uv_tcp_init(h->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->open_handles = 1;
    c->next = h->clients;
    if (h->clients) h->clients->prev = c;
    h->clients = c;
    h->nclients++;
    if (uv_timer_init(h->loop, &c->timer) != 0) {
        c->state = C_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
        return;
    }
    c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || h->nclients > MN_HTTP_CLIENTS_MAX ||
        uv_timer_start(&c->timer, on_idle, MN_HTTP_IDLE_MS, 0) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        client_close(c);
    }
}

/* ---- lifecycle ---- */

/* Splits "host:port" or "[v6]:port". Returns MN_OK or MN_EINVAL. */
static int split_hostport(const char *hp, char *host, size_t host_len, char *port, size_t port_len) {
    if (!hp) return MN_EINVAL;
    const char *colon, *hs, *he;
    if (hp[0] == '[') {
        he = strchr(hp, ']');
        if (!he || he[1] != ':') return MN_EINVAL;
        hs = hp + 1;
        colon = he + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon) return MN_EINVAL;
        hs = hp;
        he = colon;
    }
    size_t hl = (size_t)(he - hs), pl = strlen(colon + 1);
    if (hl == 0 || hl >= host_len || pl == 0 || pl >= port_len) return MN_EINVAL;
    for (const char *q = colon + 1; *q; q++)
        if (*q < '0' || *q > '9') return MN_EINVAL;
    if (atol(colon + 1) > 65535) return MN_EINVAL;
    memcpy(host, hs, hl);
    host[hl] = 0;
    memcpy(port, colon + 1, pl + 1);
    return MN_OK;
}

static void on_listener_closed(uv_handle_t *handle) {
    struct mn_http *h = handle->data;
    h->listener_closed = true;
    server_maybe_free(h);
}

struct mn_http *mn_http_start(uv_loop_t *loop, const struct mn_http_config *cfg, char *err, size_t err_len) {
    char host[256], port[8];
    if (!loop || !cfg || split_hostport(cfg->listen, host, sizeof host, port, sizeof port) != MN_OK) {
        snprintf(err, err_len, "http: bad listen address \"%s\" (want host:port)",
                 cfg && cfg->listen ? cfg->listen : "");
        return NULL;
    }
    struct sockaddr_storage ss;
    int p = atoi(port);
    if (uv_ip4_addr(host, p, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, p, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, err_len, "http: listen host \"%s\" is not an IP address", host);
        return NULL;
    }
    struct mn_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, err_len, "http: out of memory");
        return NULL;
    }
    h->loop = loop;
    h->cfg = *cfg;
    h->cfg.listen = NULL; /* not kept: the caller's string */
    int rc = uv_tcp_init(loop, &h->listener);
    if (rc != 0) {
        snprintf(err, err_len, "http: tcp init: %s", uv_strerror(rc));
        free(h);
        return NULL;
    }
    h->listener.data = h;
    rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&h->listener, 128, on_connection);
    if (rc != 0) {
        snprintf(err, err_len, "http: listen on %s: %s", cfg->listen, uv_strerror(rc));
        h->stopping = true;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    rc = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &blen);
    if (rc != 0) {
        snprintf(err, err_len, "http: getsockname: %s", uv_strerror(rc));
        h->stopping = true;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        return NULL;
    }
    h->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    LOG_INFO("http_listening", "addr=%s port=%u", host, (unsigned)h->port);
    return h;
}

uint16_t mn_http_port(const struct mn_http *h) { return h->port; }
uint64_t mn_http_requests(const struct mn_http *h) { return h->requests; }

void mn_http_stop(struct mn_http *h) {
    if (!h || h->stopping) return;
    h->stopping = true;
    for (struct client *c = h->clients; c; c = c->next) client_close(c);
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
}

/* ---- blocking probe ---- */

/* Waits for events on fd until the deadline. Returns MN_OK, MN_EAGAIN or MN_EIO. */
static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - mn_mono_ms();
        if (left <= 0) return MN_EAGAIN;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0) return MN_OK;
        if (rc == 0) return MN_EAGAIN;
        if (errno != EINTR) return MN_EIO;
    }
}

static int probe_connect(const char *host, const char *port, int64_t deadline) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return MN_EIO;
    int fd = -1, result = MN_EIO;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            rc = wait_fd(fd, POLLOUT, deadline);
            if (rc == MN_EAGAIN) result = MN_EAGAIN;
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (rc == MN_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) rc = 0;
            else rc = -1;
        }
        if (rc != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : result;
}

int mn_http_probe(const char *hostport, const char *path, int timeout_ms, int *status_code, char *body,
                  size_t body_len) {
    char host[256], port[8];
    if (split_hostport(hostport, host, sizeof host, port, sizeof port) != MN_OK || !path || path[0] != '/' ||
        strlen(path) > 1024 || timeout_ms <= 0 || !status_code)
        return MN_EINVAL;
    for (const char *q = path; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) return MN_EINVAL;
    if (body && body_len) body[0] = 0;
    int64_t deadline = mn_mono_ms() + timeout_ms;
    int fd = probe_connect(host, port, deadline);
    if (fd < 0) return fd;
    char req[1400];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: midctl\r\nConnection: close\r\n\r\n",
                     path, hostport);
    int rc = MN_OK;
    for (size_t off = 0; rc == MN_OK && off < (size_t)n;) {
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w > 0) off += (size_t)w;
        else if (w < 0 && (errno == EAGAIN || errno == EINTR)) rc = wait_fd(fd, POLLOUT, deadline);
        else rc = MN_EIO;
    }
    /* Keep the head and as much body as the caller wants; read to EOF. */
    size_t cap = MN_HTTP_HEAD_MAX + (body ? body_len : 0) + 1, len = 0;
    char *resp = malloc(cap);
    if (!resp) rc = MN_ENOMEM;
    while (rc == MN_OK) {
        char tmp[4096];
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) rc = wait_fd(fd, POLLIN, deadline);
            else rc = MN_EIO;
            continue;
        }
        size_t take = (size_t)r < cap - 1 - len ? (size_t)r : cap - 1 - len;
        memcpy(resp + len, tmp, take);
        len += take;
        if (len == cap - 1) break; /* all we keep */
    }
    close(fd);
    if (rc == MN_OK) {
        resp[len] = 0;
        int code = 0;
        char sp = 0;
        if (len < 12 || memcmp(resp, "HTTP/1.", 7) != 0 || sscanf(resp + 8, "%c%3d", &sp, &code) != 2 || sp != ' ' ||
            code < 100 || code > 599) {
            rc = MN_EIO;
        } else {
            *status_code = code;
            const char *b = strstr(resp, "\r\n\r\n");
            if (body && body_len && b) {
                snprintf(body, body_len, "%s", b + 4);
            }
        }
    }
    free(resp);
    return rc;
}
