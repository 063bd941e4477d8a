/* test_http.c: the operator endpoint on a real socket (port 0), and the probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "metrics.h"

struct fixture {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct mn_http *http;
    struct mn_metrics *metrics;
    struct mn_counter *hits;
    int healthy; /* read by the loop thread */
    char addr[32];
};

static bool health(void *arg, char *reason, size_t reason_len) {
    struct fixture *f = arg;
    if (__atomic_load_n(&f->healthy, __ATOMIC_SEQ_CST)) return true;
    snprintf(reason, reason_len, "syncing height=%d", 7);
    return false;
}

static char *status(void *arg) {
    (void)arg;
    return strdup("{\"height\":7}");
}

static void on_stop(uv_async_t *a) {
    struct fixture *f = a->data;
    mn_http_stop(f->http);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
    struct fixture *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->metrics = mn_metrics_new();
    f->hits = mn_metrics_counter(f->metrics, "mn_test_hits_total", "Hits.", NULL);
    mn_counter_add(f->hits, 5);
    f->healthy = 1;
    struct mn_http_config cfg = {.listen = "127.0.0.1:0", .metrics = f->metrics, .health = health,
                                 .health_arg = f, .status = status};
    char err[256] = "";
    f->http = mn_http_start(&f->loop, &cfg, err, sizeof err);
    if (!f->http) print_message("start: %s\n", err);
    assert_non_null(f->http);
    assert_true(mn_http_port(f->http) != 0);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%u", (unsigned)mn_http_port(f->http));
    assert_int_equal(uv_async_init(&f->loop, &f->stop, on_stop), 0);
    f->stop.data = f;
    assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    assert_int_equal(uv_async_send(&f->stop), 0);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    /* Every handle the server opened has closed: the loop closes cleanly. */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    mn_metrics_free(f->metrics);
    free(f);
    return 0;
}

static int get(struct fixture *f, const char *path, char *body, size_t body_len) {
    int code = 0;
    int rc = mn_http_probe(f->addr, path, 5000, &code, body, body_len);
    if (rc != MN_OK) print_message("probe %s: %s\n", path, mn_strerror(rc));
    assert_int_equal(rc, MN_OK);
    return code;
}

/* Sends raw bytes and returns the status code of the answer (0 if none). */
static int raw(struct fixture *f, const void *req, size_t len, char *resp, size_t resp_len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(mn_http_port(f->http))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    /* The server may answer and stop reading before we finish sending. */
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    if (len == 0) shutdown(fd, SHUT_WR); /* connect and leave */
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, resp + got, resp_len - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
        if (got == resp_len - 1) break;
    }
    resp[got] = 0;
    close(fd);
    int code = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &code) != 1) return 0;
    return code;
}

static void metrics_are_served(void **state) {
    struct fixture *f = *state;
    char body[4096];
    assert_int_equal(get(f, "/metrics", body, sizeof body), 200);
    assert_string_equal(body, "# HELP mn_test_hits_total Hits.\n# TYPE mn_test_hits_total counter\n"
                              "mn_test_hits_total 5\n");
    char resp[4096];
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(raw(f, req, sizeof req - 1, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_non_null(strstr(resp, "Connection: close\r\n"));
    char cl[64];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(resp, cl));
}

static void healthz_follows_the_callback(void **state) {
    struct fixture *f = *state;
    char body[256];
    assert_int_equal(get(f, "/healthz", body, sizeof body), 200);
    assert_string_equal(body, "ok\n");
    __atomic_store_n(&f->healthy, 0, __ATOMIC_SEQ_CST);
    assert_int_equal(get(f, "/healthz", body, sizeof body), 503);
    assert_string_equal(body, "unhealthy: syncing height=7\n");
    __atomic_store_n(&f->healthy, 1, __ATOMIC_SEQ_CST);
    assert_int_equal(get(f, "/healthz?verbose=1", body, sizeof body), 200);
}

static void status_and_unknown_paths(void **state) {
    struct fixture *f = *state;
    char body[256];
    assert_int_equal(get(f, "/status", body, sizeof body), 200);
    assert_string_equal(body, "{\"height\":7}");
    assert_int_equal(get(f, "/nope", body, sizeof body), 404);
    assert_int_equal(get(f, "/metricsx", body, sizeof body), 404);
    assert_int_equal(get(f, "/", NULL, 0), 404);
    char resp[1024];
    const char post[] = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(raw(f, post, sizeof post - 1, resp, sizeof resp), 405);
    const char head[] = "HEAD /healthz HTTP/1.0\r\n\r\n";
    assert_int_equal(raw(f, head, sizeof head - 1, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "Content-Length: 3\r\n"));
    assert_null(strstr(resp, "\r\n\r\nok")); /* HEAD has no body */
}

static void oversize_request_gets_431(void **state) {
    struct fixture *f = *state;
    size_t len = MN_HTTP_HEAD_MAX + 4000;
    char *req = malloc(len);
    assert_non_null(req);
    memcpy(req, "GET /metrics HTTP/1.1\r\nX-Fill: ", 31);
    memset(req + 31, 'a', len - 31);
    char resp[1024];
    assert_int_equal(raw(f, req, len, resp, sizeof resp), 431);
    /* Exactly at the limit without an end of head is refused too. */
    assert_int_equal(raw(f, req, MN_HTTP_HEAD_MAX, resp, sizeof resp), 431);
    free(req);
    /* And the server is still fine. */
    assert_int_equal(get(f, "/healthz", NULL, 0), 200);
}

static void garbage_gets_400(void **state) {
    struct fixture *f = *state;
    char resp[1024];
    const char *bad[] = {
        "\x01\x02\x03garbage\r\n\r\n",
        "GET /metrics HTTP/9.9\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics\r\n\r\n",
        "G(T /metrics HTTP/1.1\r\n\r\n",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = raw(f, bad[i], strlen(bad[i]), resp, sizeof resp);
        if (code != 400) print_message("request %zu got %d\n", i, code);
        assert_int_equal(code, 400);
    }
    const char nul[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";
    assert_int_equal(raw(f, nul, sizeof nul - 1, resp, sizeof resp), 400);
    /* A client that connects and leaves, or sends half a request and leaves. */
    assert_int_equal(raw(f, "", 0, resp, sizeof resp), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(mn_http_port(f->http))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(send(fd, "GET /met", 8, MSG_NOSIGNAL), 8);
    close(fd);
    assert_int_equal(get(f, "/healthz", NULL, 0), 200);
}

static void stop_with_an_idle_client_is_clean(void **state) {
    struct fixture *f = *state;
    /* Left open across teardown: stop must close it and the loop must end. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(mn_http_port(f->http))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(get(f, "/healthz", NULL, 0), 200);
    assert_int_equal(teardown(state), 0);
    char c;
    struct timeval tv = {.tv_sec = 5};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_true(recv(fd, &c, 1, 0) <= 0); /* closed by the server */
    close(fd);
    assert_int_equal(setup(state), 0); /* for the group's teardown */
}

static int connect_idle(struct fixture *f) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(mn_http_port(f->http))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void connections_are_bounded(void **state) {
    struct fixture *f = *state;
    int fds[MN_HTTP_CLIENTS_MAX];
    for (int i = 0; i < MN_HTTP_CLIENTS_MAX; i++) fds[i] = connect_idle(f);
    /* Each idle client holds a slot; one more is closed unanswered. The
     * slots fill asynchronously, so poll with a deadline. */
    int code = 0, rc = MN_OK;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        rc = mn_http_probe(f->addr, "/healthz", 2000, &code, NULL, 0);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (rc == MN_OK && t.tv_sec - t0.tv_sec < 5);
    assert_int_equal(rc, MN_EIO);
    for (int i = 0; i < MN_HTTP_CLIENTS_MAX; i++) close(fds[i]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        rc = mn_http_probe(f->addr, "/healthz", 2000, &code, NULL, 0);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (rc != MN_OK && t.tv_sec - t0.tv_sec < 5);
    assert_int_equal(rc, MN_OK);
    assert_int_equal(code, 200);
}

static void probe_reports_errors(void **state) {
    (void)state;
    int code = 0;
    assert_int_equal(mn_http_probe("nohostport", "/healthz", 1000, &code, NULL, 0), MN_EINVAL);
    assert_int_equal(mn_http_probe("127.0.0.1:1", "healthz", 1000, &code, NULL, 0), MN_EINVAL);
    assert_int_equal(mn_http_probe("127.0.0.1:1", "/a b", 1000, &code, NULL, 0), MN_EINVAL);
    assert_int_equal(mn_http_probe("127.0.0.1:99999", "/", 1000, &code, NULL, 0), MN_EINVAL);
    /* A listener that never accepts: the deadline ends the probe. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mn_http_probe(addr, "/healthz", 300, &code, NULL, 0), MN_EAGAIN);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 250 && ms < 3000);
    close(lfd);
    /* Now nothing listens on that port. */
    assert_int_equal(mn_http_probe(addr, "/healthz", 1000, &code, NULL, 0), MN_EIO);
}

static void bad_listen_address_is_refused(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[256] = "";
    struct mn_http_config cfg = {.listen = "localhost"};
    assert_null(mn_http_start(&loop, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "localhost"));
    cfg.listen = "example.org:80";
    assert_null(mn_http_start(&loop, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "not an IP"));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(metrics_are_served, setup, teardown),
        cmocka_unit_test_setup_teardown(healthz_follows_the_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(status_and_unknown_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(oversize_request_gets_431, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_gets_400, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_with_an_idle_client_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(connections_are_bounded, setup, teardown),
        cmocka_unit_test(probe_reports_errors),
        cmocka_unit_test(bad_listen_address_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
