/* test_rpc.c: the RPC server against a scripted fake handler: pipelining,
 * out-of-order replies, streaming, cancel on disconnect, every limit,
 * garbage, oversize frames, idle timeout, clean stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"
#include "loop_thread.h"
#include "midnode.pb-c.h"
#include "rpc.h"

/* The fake handler's script, by method:
 *  GetChainInfo     echo the payload at once
 *  GetTx            hold (with a cancel callback)
 *  GetStatus        hold without a cancel callback (detaches on disconnect)
 *  GetBlock         release every held call, newest first, each echoing its
 *                   own payload, then answer "released N" (and the rc of each
 *                   detached reply as "estate=K")
 *  WatchStatusChanges from_height N > 0: N StatusChange items then the end;
 *                   0: one item, then hold the stream (cancel callback)
 *  GetSigner        "pending=P cancels=C conns=O requests=R errors=E"
 *  SubmitTx         reply with a payload of payload-length (as decimal text) bytes
 *  GetStatusBatch   not handled here: replies RPC_INTERNAL */
#define HELD_MAX 64

typedef struct held {
    mn_rpc_call *call;
    uint8_t payload[64];
    size_t len;
    bool has_cancel;
} held;

#define PEEKS_MAX 256

typedef struct fake {
    mn_rpc *srv;
    held held[HELD_MAX];
    size_t held_count;
    uint64_t cancels;
    /* What the peek callback saw (tests that set it): stage and payload. */
    struct { int stage; char text[16]; } peeks[PEEKS_MAX];
    size_t peek_count;
    size_t peeks_before_first_answer; /* SIZE_MAX until GetChainInfo is handled */
} fake;

static fake g_fake;

static void on_cancel(void *arg, mn_rpc_call *call) {
    fake *f = arg;
    for (size_t i = 0; i < f->held_count; i++) {
        if (f->held[i].call == call) {
            f->held[i] = f->held[--f->held_count];
            break;
        }
    }
    f->cancels++;
}

static void hold(fake *f, mn_rpc_call *call, const uint8_t *p, size_t len, bool with_cancel) {
    if (f->held_count == HELD_MAX || len > sizeof f->held[0].payload) {
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_INTERNAL, 0, "fake: cannot hold", NULL, 0);
        return;
    }
    held *h = &f->held[f->held_count++];
    h->call = call;
    if (len) memcpy(h->payload, p, len);
    h->len = len;
    h->has_cancel = with_cancel;
    if (with_cancel) mn_rpc_call_on_cancel(call, on_cancel, f);
}

static void fake_handler(void *ctx, mn_rpc_call *call, const char *method, const uint8_t *p, size_t len) {
    fake *f = ctx;
    char text[160];
    if (strcmp(method, MN_RPC_GET_CHAIN_INFO) == 0) {
        if (f->peeks_before_first_answer == SIZE_MAX) f->peeks_before_first_answer = f->peek_count;
        (void)mn_rpc_reply(call, 0, 0, NULL, p, len);
    } else if (strcmp(method, MN_RPC_GET_TX) == 0) {
        hold(f, call, p, len, true);
    } else if (strcmp(method, MN_RPC_GET_STATUS) == 0) {
        hold(f, call, p, len, false);
    } else if (strcmp(method, MN_RPC_GET_BLOCK) == 0) {
        size_t n = f->held_count, estate = 0;
        while (f->held_count > 0) {
            held h = f->held[--f->held_count];
            if (mn_rpc_reply(h.call, 0, 0, NULL, h.payload, h.len) == MN_ESTATE) estate++;
        }
        snprintf(text, sizeof text, "released %zu estate=%zu", n, estate);
        (void)mn_rpc_reply(call, 0, 0, text, NULL, 0);
    } else if (strcmp(method, MN_RPC_WATCH_STATUS_CHANGES) == 0) {
        Midnode__WatchStatusChangesRequest *req = midnode__watch_status_changes_request__unpack(NULL, len, p);
        if (!req) {
            (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, 0, "bad watch", NULL, 0);
            return;
        }
        uint64_t n = req->from_height ? req->from_height : 1;
        for (uint64_t i = 1; i <= n; i++) {
            Midnode__StatusChange sc = MIDNODE__STATUS_CHANGE__INIT;
            sc.height = i;
            sc.kind = (char *)"issue";
            sc.status = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
            uint8_t buf[64];
            size_t sz = midnode__status_change__pack(&sc, buf);
            if (mn_rpc_stream(call, buf, sz) != MN_OK) break; /* the test sees the short stream */
        }
        if (req->from_height) (void)mn_rpc_reply(call, 0, 0, NULL, NULL, 0);
        else hold(f, call, NULL, 0, true);
        midnode__watch_status_changes_request__free_unpacked(req, NULL);
    } else if (strcmp(method, MN_RPC_GET_SIGNER) == 0) {
        mn_rpc_stats st;
        mn_rpc_get_stats(f->srv, &st);
        snprintf(text, sizeof text, "pending=%llu cancels=%llu conns=%llu requests=%llu errors=%llu refused=%llu",
                 (unsigned long long)st.calls_pending - 1 /* this call */, (unsigned long long)f->cancels,
                 (unsigned long long)st.connections_open, (unsigned long long)st.requests,
                 (unsigned long long)st.errors, (unsigned long long)st.connections_refused);
        (void)mn_rpc_reply(call, 0, 0, text, NULL, 0);
    } else if (strcmp(method, MN_RPC_SUBMIT_TX) == 0) {
        char num[32];
        size_t l = len < sizeof num - 1 ? len : sizeof num - 1;
        memcpy(num, p, l);
        num[l] = 0;
        size_t want = strtoull(num, NULL, 10);
        uint8_t *big = calloc(want ? want : 1, 1);
        assert_non_null(big);
        int rc = mn_rpc_reply(call, 0, 0, NULL, big, want);
        snprintf(text, sizeof text, "%d", rc);
        free(big);
    } else {
        (void)mn_rpc_reply(call, MIDNODE__RPC_CODE__RPC_INTERNAL, 0, "fake: not scripted", NULL, 0);
    }
}

/* Held calls left at the end belong to connections that are about to be
 * closed by mn_rpc_free (cancel) or are detached (must be replied to). */
static void fake_before_free(void *ctx) {
    fake *f = ctx;
    for (size_t i = 0; i < f->held_count;) {
        if (!f->held[i].has_cancel) {
            (void)mn_rpc_reply(f->held[i].call, 0, 0, NULL, NULL, 0);
            f->held[i] = f->held[--f->held_count];
        } else {
            i++;
        }
    }
}

static loop_thread g_lt;

static mn_rpc_config test_config(void) {
    mn_rpc_config cfg;
    mn_rpc_config_default(&cfg);
    cfg.inflight_max = 1024;
    cfg.idle_timeout_ms = 0;
    return cfg;
}

static bool g_running;

static void start(const mn_rpc_config *cfg) {
    if (g_running) (void)lt_stop(&g_lt); /* a failed test left its server behind */
    g_running = true;
    memset(&g_fake, 0, sizeof g_fake);
    lt_start(&g_lt, cfg, fake_handler, &g_fake);
    g_fake.srv = g_lt.srv;
    g_lt.before_free = fake_before_free;
}

static void stop(void) {
    g_running = false;
    assert_int_equal(lt_stop(&g_lt), 0);
    assert_int_equal(g_fake.held_count, 0);
}

static mn_client *conn(uint32_t timeout_ms) {
    mn_client *c = NULL;
    char err[256] = "";
    int rc = mn_client_connect(&c, g_lt.addr, timeout_ms, err, sizeof err);
    if (rc != MN_OK) fprintf(stderr, "connect: %s\n", err);
    assert_int_equal(rc, MN_OK);
    return c;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The stats line of the fake (GetSigner) on a fresh connection. */
static void server_stats(char *out, size_t out_len) {
    mn_client *c = conn(2000);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(c, MN_RPC_GET_SIGNER, NULL, 0, &r), MN_OK);
    snprintf(out, out_len, "%s", r->message);
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client_free(c);
}

static unsigned long long stat_field(const char *line, const char *key) {
    const char *p = strstr(line, key);
    assert_non_null(p);
    return strtoull(p + strlen(key) + 1, NULL, 10);
}

/* Polls the fake's stats until key == want (with a deadline). */
static void wait_stat(const char *key, unsigned long long want) {
    int64_t deadline = mono_ms() + 5000;
    char line[256];
    for (;;) {
        server_stats(line, sizeof line);
        if (stat_field(line, key) == want) return;
        if (mono_ms() > deadline) fail_msg("stat %s never became %llu: %s", key, want, line);
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void expect_response(mn_client *c, uint64_t id, int code, bool more) {
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_recv(c, &r), MN_OK);
    if (r->id != id || (int)r->code != code || r->more != more)
        fail_msg("got id=%llu code=%s more=%d (%s), want id=%llu code=%s more=%d", (unsigned long long)r->id,
                 mn_rpc_code_name((int)r->code), r->more, r->message, (unsigned long long)id,
                 mn_rpc_code_name(code), more);
    midnode__rpc_response__free_unpacked(r, NULL);
}

static void expect_closed(mn_client *c) {
    Midnode__RpcResponse *r = NULL;
    int rc = mn_client_recv(c, &r);
    if (r) fail_msg("expected a closed connection, got id=%llu code=%s", (unsigned long long)r->id,
                    mn_rpc_code_name((int)r->code));
    assert_int_equal(rc, MN_EIO);
    assert_non_null(strstr(mn_client_last(c)->message, "closed"));
}

static void echo_ok(void) {
    mn_client *c = conn(2000);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(c, MN_RPC_GET_CHAIN_INFO, (const uint8_t *)"ping", 4, &r), MN_OK);
    assert_int_equal(r->code, 0);
    assert_memory_equal(r->payload.data, "ping", 4);
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client_free(c);
}

/* ---------------------------------------------------------------- tests */

static void echo_returns_payload_and_id(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(c, MN_RPC_GET_CHAIN_INFO, (const uint8_t *)"hello", 5, &r), MN_OK);
    assert_int_equal(r->id, 1);
    assert_int_equal(r->code, MIDNODE__RPC_CODE__RPC_OK);
    assert_false(r->more);
    assert_int_equal(r->payload.len, 5);
    assert_memory_equal(r->payload.data, "hello", 5);
    midnode__rpc_response__free_unpacked(r, NULL);
    /* Empty payload, then a large one spanning many reads. */
    assert_int_equal(mn_client_call(c, MN_RPC_GET_CHAIN_INFO, NULL, 0, &r), MN_OK);
    assert_int_equal(r->id, 2);
    assert_int_equal(r->payload.len, 0);
    midnode__rpc_response__free_unpacked(r, NULL);
    size_t big_len = 300 * 1000;
    uint8_t *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++) big[i] = (uint8_t)(i * 7);
    assert_int_equal(mn_client_call(c, MN_RPC_GET_CHAIN_INFO, big, big_len, &r), MN_OK);
    assert_int_equal(r->payload.len, big_len);
    assert_memory_equal(r->payload.data, big, big_len);
    midnode__rpc_response__free_unpacked(r, NULL);
    free(big);
    mn_client_free(c);
    stop();
}

static void frame_sent_one_byte_at_a_time_is_decoded(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    Midnode__RpcRequest req = MIDNODE__RPC_REQUEST__INIT;
    req.id = 77;
    req.method = (char *)MN_RPC_GET_CHAIN_INFO;
    req.payload.data = (uint8_t *)"xyz";
    req.payload.len = 3;
    uint8_t buf[64];
    size_t n = midnode__rpc_request__pack(&req, buf + 4);
    buf[0] = buf[1] = buf[2] = 0;
    buf[3] = (uint8_t)n;
    for (size_t i = 0; i < n + 4; i++) assert_int_equal(mn_client_send_raw(c, buf + i, 1), MN_OK);
    /* Two frames in one write. */
    uint8_t two[128];
    memcpy(two, buf, n + 4);
    memcpy(two + n + 4, buf, n + 4);
    two[n + 4 + 4 + 1] = 78; /* second frame's id (field 1 varint) */
    assert_int_equal(mn_client_send_raw(c, two, 2 * (n + 4)), MN_OK);
    expect_response(c, 77, 0, false);
    expect_response(c, 77, 0, false);
    expect_response(c, 78, 0, false);
    mn_client_free(c);
    stop();
}

/* The server reads the usual encoding in place and anything else through
 * protobuf-c: both must give the same request. */
static void send_frame(mn_client *c, const uint8_t *body, size_t n) {
    uint8_t hdr[4] = {0, 0, (uint8_t)(n >> 8), (uint8_t)n};
    assert_int_equal(mn_client_send_raw(c, hdr, 4), MN_OK);
    assert_int_equal(mn_client_send_raw(c, body, n), MN_OK);
}

static void unusual_request_encodings_read_like_protobuf(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    /* Fields in reverse order. */
    static const uint8_t rev[] = {0x1a, 2, 'h', 'i', 0x12, 12, 'G', 'e', 't', 'C', 'h', 'a', 'i', 'n',
                                  'I', 'n', 'f', 'o', 0x08, 5};
    send_frame(c, rev, sizeof rev);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_recv(c, &r), MN_OK);
    assert_int_equal(r->id, 5);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->payload.len, 2);
    assert_memory_equal(r->payload.data, "hi", 2);
    midnode__rpc_response__free_unpacked(r, NULL);
    /* An unknown field and a repeated id (the last one counts). */
    static const uint8_t odd[] = {0x08, 6, 0x48, 1, 0x12, 12, 'G', 'e', 't', 'C', 'h', 'a', 'i', 'n',
                                  'I', 'n', 'f', 'o', 0x08, 7};
    send_frame(c, odd, sizeof odd);
    expect_response(c, 7, 0, false);
    /* A method name over the bound is unknown, whatever its prefix. */
    uint8_t lng[64] = {0x08, 8, 0x12, 40};
    for (int i = 0; i < 40; i++) lng[4 + i] = (uint8_t)"GetChainInfo"[i % 12];
    send_frame(c, lng, 44);
    expect_response(c, 8, MIDNODE__RPC_CODE__RPC_UNKNOWN_METHOD, false);
    /* A truncated field is not a request. */
    static const uint8_t cut[] = {0x08, 9, 0x12, 30, 'G'};
    send_frame(c, cut, sizeof cut);
    expect_response(c, 0, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, false);
    mn_client_free(c);
    stop();
}

/* Queues n GetChainInfo requests (echoed by the fake) with payloads
 * "<prefix><i>", ids 1..n, and sends them in one write. */
static void send_numbered(mn_client *c, const char *prefix, int n) {
    for (int i = 0; i < n; i++) {
        char p[32];
        int l = snprintf(p, sizeof p, "%s%d", prefix, i);
        uint64_t id;
        assert_int_equal(mn_client_queue(c, &id, MN_RPC_GET_CHAIN_INFO, (uint8_t *)p, (size_t)l), MN_OK);
        assert_int_equal(id, (uint64_t)i + 1);
    }
    assert_int_equal(mn_client_flush(c), MN_OK);
}

/* Receives n answers, each echoing the payload its id was sent with. */
static void recv_numbered(mn_client *c, const char *prefix, int n) {
    for (int i = 0; i < n; i++) {
        Midnode__RpcResponse *r = NULL;
        assert_int_equal(mn_client_recv(c, &r), MN_OK);
        char p[32];
        int l = snprintf(p, sizeof p, "%s%d", prefix, (int)r->id - 1);
        assert_int_equal(r->payload.len, (size_t)l);
        assert_memory_equal(r->payload.data, p, (size_t)l);
        midnode__rpc_response__free_unpacked(r, NULL);
    }
}

static void fake_peek(void *ctx, int stage, const char *method, const uint8_t *p, size_t len) {
    fake *f = ctx;
    if (f->peek_count == PEEKS_MAX || strcmp(method, MN_RPC_GET_CHAIN_INFO) != 0 || len >= 16) return;
    f->peeks[f->peek_count].stage = stage;
    memcpy(f->peeks[f->peek_count].text, p, len);
    f->peeks[f->peek_count].text[len] = 0;
    f->peek_count++;
}

/* Requests that arrive together are shown to the peek callback, each twice
 * (stage 0 for all, then stage 1 for all), before the first is handled; a
 * frame cut by the read's end is not shown; every request is still
 * answered as without a peek. */
static void peek_sees_a_reads_requests_before_they_are_handled(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    if (g_running) (void)lt_stop(&g_lt);
    g_running = true;
    memset(&g_fake, 0, sizeof g_fake);
    g_fake.peeks_before_first_answer = SIZE_MAX;
    lt_start_peek(&g_lt, &cfg, fake_handler, fake_peek, &g_fake);
    g_fake.srv = g_lt.srv;
    g_lt.before_free = fake_before_free;
    mn_client *c = conn(5000);
    enum { N = 5 };
    send_numbered(c, "peek-", N); /* one write: one read on loopback */
    recv_numbered(c, "peek-", N);
    mn_client_free(c);
    stop(); /* joins the loop thread: g_fake is ours to read */
    assert_int_equal(g_fake.peek_count, 2 * N);
    assert_int_equal(g_fake.peeks_before_first_answer, 2 * N);
    for (int i = 0; i < 2 * N; i++) {
        char want[16];
        snprintf(want, sizeof want, "peek-%d", i % N);
        assert_int_equal(g_fake.peeks[i].stage, i / N);
        assert_string_equal(g_fake.peeks[i].text, want);
    }
}

static void pipelined_requests_all_answered_by_id(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(5000);
    enum { N = 2000 };
    send_numbered(c, "", N);
    recv_numbered(c, "", N);
    mn_client_free(c);
    stop();
}

static void held_calls_answer_out_of_order(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        uint8_t p = (uint8_t)('a' + i);
        assert_int_equal(mn_client_send(c, &ids[i], MN_RPC_GET_TX, &p, 1), MN_OK);
    }
    uint64_t rel;
    assert_int_equal(mn_client_send(c, &rel, MN_RPC_GET_BLOCK, NULL, 0), MN_OK);
    for (int i = 2; i >= 0; i--) {
        Midnode__RpcResponse *r = NULL;
        assert_int_equal(mn_client_recv(c, &r), MN_OK);
        assert_int_equal(r->id, ids[i]);
        assert_int_equal(r->payload.len, 1);
        assert_int_equal(r->payload.data[0], 'a' + i);
        midnode__rpc_response__free_unpacked(r, NULL);
    }
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_recv(c, &r), MN_OK);
    assert_int_equal(r->id, rel);
    assert_string_equal(r->message, "released 3 estate=0");
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client_free(c);
    stop();
}

static void stream_items_then_end(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    uint64_t id;
    assert_int_equal(mn_client_watch_start(c, 5, &id), MN_OK);
    for (uint64_t h = 1; h <= 5; h++) {
        Midnode__StatusChange *sc = NULL;
        assert_int_equal(mn_client_watch_next(c, id, &sc), MN_OK);
        assert_int_equal(sc->height, h);
        assert_string_equal(sc->kind, "issue");
        midnode__status_change__free_unpacked(sc, NULL);
    }
    Midnode__StatusChange *sc = NULL;
    assert_int_equal(mn_client_watch_next(c, id, &sc), MN_ENOTFOUND);
    assert_null(sc);
    echo_ok();
    mn_client_free(c);
    stop();
}

static void disconnect_cancels_pending_calls_and_streams(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    uint64_t id;
    assert_int_equal(mn_client_watch_start(c, 0, &id), MN_OK); /* held stream */
    Midnode__StatusChange *sc = NULL;
    assert_int_equal(mn_client_watch_next(c, id, &sc), MN_OK);
    midnode__status_change__free_unpacked(sc, NULL);
    uint8_t p = 1;
    assert_int_equal(mn_client_send(c, &id, MN_RPC_GET_TX, &p, 1), MN_OK);
    assert_int_equal(mn_client_send(c, &id, MN_RPC_GET_TX, &p, 1), MN_OK);
    wait_stat("pending", 3);
    mn_client_free(c);
    wait_stat("cancels", 3);
    wait_stat("pending", 0);
    stop();
}

static void detached_call_reply_is_safe(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    uint64_t id;
    uint8_t p = 9;
    assert_int_equal(mn_client_send(c, &id, MN_RPC_GET_STATUS, &p, 1), MN_OK); /* held, no cancel */
    wait_stat("pending", 1);
    mn_client_free(c);
    wait_stat("conns", 1); /* only the stats connection itself */
    wait_stat("pending", 0);
    mn_client *d = conn(2000);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(d, MN_RPC_GET_BLOCK, NULL, 0, &r), MN_OK);
    assert_string_equal(r->message, "released 1 estate=1");
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client_free(d);
    stop();
}

static void inflight_limit_answers_overloaded(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    cfg.inflight_max = 4;
    start(&cfg);
    mn_client *c = conn(2000);
    uint64_t id;
    uint8_t p = 1;
    for (int i = 0; i < 4; i++) assert_int_equal(mn_client_send(c, &id, MN_RPC_GET_TX, &p, 1), MN_OK);
    assert_int_equal(mn_client_send(c, &id, MN_RPC_GET_TX, &p, 1), MN_OK);
    expect_response(c, 5, MIDNODE__RPC_CODE__RPC_OVERLOADED, false);
    /* A request reusing an id still in flight is refused, the rest go on. */
    Midnode__RpcRequest req = MIDNODE__RPC_REQUEST__INIT;
    req.id = 2;
    req.method = (char *)MN_RPC_GET_CHAIN_INFO;
    uint8_t buf[64];
    size_t n = midnode__rpc_request__pack(&req, buf + 4);
    buf[0] = buf[1] = buf[2] = 0;
    buf[3] = (uint8_t)n;
    assert_int_equal(mn_client_send_raw(c, buf, n + 4), MN_OK);
    expect_response(c, 2, MIDNODE__RPC_CODE__RPC_OVERLOADED, false); /* still full: limit checked first */
    /* Released from another connection, the four answer; then there is room. */
    mn_client *d = conn(2000);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(d, MN_RPC_GET_BLOCK, NULL, 0, &r), MN_OK);
    assert_string_equal(r->message, "released 4 estate=0");
    midnode__rpc_response__free_unpacked(r, NULL);
    for (uint64_t i = 4; i >= 1; i--) expect_response(c, i, 0, false);
    for (int i = 0; i < 2; i++) assert_int_equal(mn_client_send(c, &id, MN_RPC_GET_TX, &p, 1), MN_OK);
    assert_int_equal(mn_client_send_raw(c, buf, n + 4), MN_OK); /* id 2 is free again: echo */
    req.id = 6; /* id 6 is held: duplicate */
    n = midnode__rpc_request__pack(&req, buf + 4);
    buf[3] = (uint8_t)n;
    assert_int_equal(mn_client_send_raw(c, buf, n + 4), MN_OK);
    expect_response(c, 2, 0, false);
    expect_response(c, 6, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, false);
    assert_int_equal(mn_client_call(d, MN_RPC_GET_BLOCK, NULL, 0, &r), MN_OK);
    midnode__rpc_response__free_unpacked(r, NULL);
    expect_response(c, 7, 0, false);
    expect_response(c, 6, 0, false);
    mn_client_free(c);
    mn_client_free(d);
    stop();
}

static void unknown_method_is_refused_and_connection_survives(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(2000);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(c, "DropAllTables", NULL, 0, &r), MN_OK);
    assert_int_equal(r->code, MIDNODE__RPC_CODE__RPC_UNKNOWN_METHOD);
    assert_non_null(strstr(r->message, "DropAllTables"));
    midnode__rpc_response__free_unpacked(r, NULL);
    assert_int_equal(mn_client_call(c, "", NULL, 0, &r), MN_OK);
    assert_int_equal(r->code, MIDNODE__RPC_CODE__RPC_UNKNOWN_METHOD);
    midnode__rpc_response__free_unpacked(r, NULL);
    assert_int_equal(mn_client_call(c, MN_RPC_GET_CHAIN_INFO, (const uint8_t *)"ok", 2, &r), MN_OK);
    assert_int_equal(r->code, 0);
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client_free(c);
    stop();
}

static void garbage_gets_bad_request_then_close(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    static const uint8_t garbage[][12] = {
        {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff},      /* truncated varint */
        {0, 0, 0, 3, 0x12, 0x7f, 'a'},                  /* string longer than the frame */
        {0, 0, 0, 2, 0x07, 0x00},                       /* wire type 7 */
    };
    static const size_t lens[] = {9, 7, 6};
    for (size_t i = 0; i < 3; i++) {
        mn_client *c = conn(2000);
        assert_int_equal(mn_client_send_raw(c, garbage[i], lens[i]), MN_OK);
        expect_response(c, 0, MIDNODE__RPC_CODE__RPC_BAD_REQUEST, false);
        expect_closed(c);
        mn_client_free(c);
    }
    echo_ok();
    char line[256];
    server_stats(line, sizeof line);
    assert_true(stat_field(line, "errors") >= 3);
    stop();
}

static void oversize_frame_refused_before_allocation(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    cfg.frame_bytes_max = 1024;
    start(&cfg);
    static const uint8_t hdrs[][4] = {{0, 0, 4, 1}, {0xff, 0xff, 0xff, 0xff}, {0x7f, 0, 0, 0}};
    for (size_t i = 0; i < 3; i++) {
        mn_client *c = conn(2000);
        assert_int_equal(mn_client_send_raw(c, hdrs[i], 4), MN_OK);
        Midnode__RpcResponse *r = NULL;
        assert_int_equal(mn_client_recv(c, &r), MN_OK);
        assert_int_equal(r->code, MIDNODE__RPC_CODE__RPC_TOO_LARGE);
        assert_non_null(strstr(r->message, "1024"));
        midnode__rpc_response__free_unpacked(r, NULL);
        expect_closed(c);
        mn_client_free(c);
    }
    /* Exactly at the limit is fine. */
    mn_client *c = conn(2000);
    uint8_t payload[1024] = {0};
    size_t plen = 1024 - 2 - strlen(MN_RPC_GET_CHAIN_INFO) - 2 - 2 - 2; /* id, method, payload tags/lengths */
    Midnode__RpcRequest req = MIDNODE__RPC_REQUEST__INIT;
    req.id = 1;
    req.method = (char *)MN_RPC_GET_CHAIN_INFO;
    req.payload.data = payload;
    req.payload.len = plen;
    while (midnode__rpc_request__get_packed_size(&req) > 1024) req.payload.len--;
    while (midnode__rpc_request__get_packed_size(&req) < 1024) req.payload.len++;
    assert_int_equal(midnode__rpc_request__get_packed_size(&req), 1024);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(c, MN_RPC_GET_CHAIN_INFO, payload, req.payload.len, &r), MN_OK);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->payload.len, req.payload.len);
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client_free(c);
    echo_ok();
    stop();
}

static void connection_limit_refuses_extra_connections(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    cfg.connections_max = 2;
    start(&cfg);
    mn_client *a = conn(2000), *b = conn(2000);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(a, MN_RPC_GET_CHAIN_INFO, NULL, 0, &r), MN_OK);
    midnode__rpc_response__free_unpacked(r, NULL);
    assert_int_equal(mn_client_call(b, MN_RPC_GET_CHAIN_INFO, NULL, 0, &r), MN_OK);
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client *x = conn(2000);
    expect_response(x, 0, MIDNODE__RPC_CODE__RPC_OVERLOADED, false);
    expect_closed(x);
    mn_client_free(x);
    /* The two admitted ones still work. */
    assert_int_equal(mn_client_call(a, MN_RPC_GET_CHAIN_INFO, NULL, 0, &r), MN_OK);
    assert_int_equal(r->code, 0);
    midnode__rpc_response__free_unpacked(r, NULL);
    /* Once one leaves, a newcomer gets in (the close is asynchronous: poll). */
    mn_client_free(b);
    int64_t deadline = mono_ms() + 5000;
    for (;;) {
        mn_client *y = conn(2000);
        int rc = mn_client_call(y, MN_RPC_GET_SIGNER, NULL, 0, &r);
        assert_int_equal(rc, MN_OK);
        int code = (int)r->code;
        if (code == 0) assert_true(stat_field(r->message, "refused") >= 1); /* retries may add more */
        midnode__rpc_response__free_unpacked(r, NULL);
        mn_client_free(y);
        if (code == 0) break;
        assert_int_equal(code, MIDNODE__RPC_CODE__RPC_OVERLOADED);
        if (mono_ms() > deadline) fail_msg("no room after a connection closed");
    }
    mn_client_free(a);
    stop();
}

static void idle_connection_is_closed_but_busy_one_is_not(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    cfg.idle_timeout_ms = 150;
    start(&cfg);
    int64_t t0 = mono_ms();
    mn_client *c = conn(5000);
    expect_closed(c);
    int64_t waited = mono_ms() - t0;
    assert_true(waited >= 140);
    mn_client_free(c);
    /* A connection with a call in flight is not idle. */
    mn_client *d = conn(400);
    uint64_t id;
    uint8_t p = 5;
    assert_int_equal(mn_client_send(d, &id, MN_RPC_GET_TX, &p, 1), MN_OK);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_recv(d, &r), MN_EIO); /* nothing for 400 ms, still open */
    assert_non_null(strstr(mn_client_last(d)->message, "timed out"));
    mn_client_free(d); /* the client gave up; the server cancels the call */
    wait_stat("cancels", 1);
    stop();
}

static void oversize_response_becomes_internal_error(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(10000);
    Midnode__RpcResponse *r = NULL;
    char num[32];
    int l = snprintf(num, sizeof num, "%d", MN_RPC_RESPONSE_BYTES_MAX + 1);
    assert_int_equal(mn_client_call(c, MN_RPC_SUBMIT_TX, (uint8_t *)num, (size_t)l, &r), MN_OK);
    assert_int_equal(r->code, MIDNODE__RPC_CODE__RPC_INTERNAL);
    midnode__rpc_response__free_unpacked(r, NULL);
    /* Just under the bound arrives whole (larger than the client's buffer). */
    l = snprintf(num, sizeof num, "%d", 2 * 1000 * 1000);
    assert_int_equal(mn_client_call(c, MN_RPC_SUBMIT_TX, (uint8_t *)num, (size_t)l, &r), MN_OK);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->payload.len, 2 * 1000 * 1000);
    midnode__rpc_response__free_unpacked(r, NULL);
    mn_client_free(c);
    stop();
}

/* A client that asks for far more than it reads is cut off once its queued
 * answers pass write_queue_bytes_max; the server goes on serving others. */
static void slow_reader_is_disconnected(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    cfg.write_queue_bytes_max = MN_RPC_RESPONSE_BYTES_MAX + 4;
    start(&cfg);
    mn_client *c = conn(5000);
    enum { ASKS = 16 };
    for (int i = 0; i < ASKS; i++) {
        uint64_t id;
        assert_int_equal(mn_client_queue(c, &id, MN_RPC_SUBMIT_TX, (const uint8_t *)"4000000", 7), MN_OK);
    }
    assert_int_equal(mn_client_flush(c), MN_OK);
    wait_stat("conns", 1); /* only the stats connection is left */
    int got = 0;
    for (;;) {
        Midnode__RpcResponse *r = NULL;
        if (mn_client_recv(c, &r) != MN_OK) break;
        midnode__rpc_response__free_unpacked(r, NULL);
        got++;
    }
    assert_true(got < ASKS);
    mn_client_free(c);
    echo_ok();
    stop();
}

/* Answers that overflow the socket's buffer (the client sends everything
 * before it reads) go out partly at once and partly through libuv's queue;
 * each still arrives whole and in order. */
static void answers_beyond_the_socket_buffer_arrive_whole_in_order(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    cfg.write_queue_bytes_max = 64u << 20;
    start(&cfg);
    mn_client *c = conn(10000);
    enum { N = 160 }; /* about 16 MB of answers: more than loopback buffers hold */
    static uint8_t buf[200000];
    for (int i = 0; i < N; i++) {
        size_t n = 1 + (size_t)i * 4099 % sizeof buf;
        for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)(i * 31 + k);
        uint64_t id;
        assert_int_equal(mn_client_queue(c, &id, MN_RPC_GET_CHAIN_INFO, buf, n), MN_OK);
        assert_int_equal(id, (uint64_t)i + 1);
    }
    assert_int_equal(mn_client_flush(c), MN_OK);
    for (int i = 0; i < N; i++) {
        Midnode__RpcResponse *r = NULL;
        assert_int_equal(mn_client_recv(c, &r), MN_OK);
        assert_int_equal(r->id, (uint64_t)i + 1);
        size_t n = 1 + (size_t)i * 4099 % sizeof buf;
        assert_int_equal(r->payload.len, n);
        for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)(i * 31 + k);
        assert_memory_equal(r->payload.data, buf, n);
        midnode__rpc_response__free_unpacked(r, NULL);
    }
    mn_client_free(c);
    echo_ok();
    stop();
}

static void stop_with_open_connections_and_pending_calls(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *a = conn(2000), *b = conn(2000);
    uint64_t id;
    uint8_t p = 1;
    assert_int_equal(mn_client_send(a, &id, MN_RPC_GET_TX, &p, 1), MN_OK);
    assert_int_equal(mn_client_send(b, &id, MN_RPC_GET_STATUS, &p, 1), MN_OK);
    assert_int_equal(mn_client_watch_start(b, 0, &id), MN_OK);
    wait_stat("pending", 3);
    stop(); /* loop closes with every handle closed; held calls all gone */
    assert_int_equal(g_fake.cancels, 2);
    expect_closed(a);
    mn_client_free(a);
    mn_client_free(b);
}

static void bad_config_is_refused_with_a_message(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    mn_rpc_config cfg = test_config();
    mn_rpc *srv = NULL;
    char err[256] = "";
    cfg.frame_bytes_max = MN_RPC_FRAME_BYTES_MAX + 1;
    assert_int_equal(mn_rpc_new(&srv, &loop, &cfg, fake_handler, NULL, err, sizeof err), MN_EINVAL);
    assert_non_null(strstr(err, "frame_bytes_max"));
    cfg = test_config();
    cfg.inflight_max = 0;
    assert_int_equal(mn_rpc_new(&srv, &loop, &cfg, fake_handler, NULL, err, sizeof err), MN_EINVAL);
    assert_non_null(strstr(err, "inflight_max"));
    cfg = test_config();
    snprintf(cfg.host, sizeof cfg.host, "not-an-address.invalid");
    assert_int_not_equal(mn_rpc_new(&srv, &loop, &cfg, fake_handler, NULL, err, sizeof err), MN_OK);
    assert_non_null(strstr(err, "not-an-address"));
    /* A port in use. */
    cfg = test_config();
    cfg.port = 0;
    mn_rpc *first = NULL;
    assert_int_equal(mn_rpc_new(&first, &loop, &cfg, fake_handler, NULL, err, sizeof err), MN_OK);
    cfg.port = mn_rpc_port(first);
    assert_int_equal(mn_rpc_new(&srv, &loop, &cfg, fake_handler, NULL, err, sizeof err), MN_EIO);
    assert_non_null(strstr(err, "cannot listen"));
    assert_null(srv);
    mn_rpc_free(first);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(mn_rpc_method_known("SubmitTx"));
    assert_false(mn_rpc_method_known("submittx"));
    assert_false(mn_rpc_method_known(NULL));
}

/* Measures echo throughput with a pipelined client (printed, not asserted
 * beyond "it all arrived": machines differ). */
static void pipelined_echo_throughput(void **state) {
    (void)state;
    mn_rpc_config cfg = test_config();
    start(&cfg);
    mn_client *c = conn(10000);
    enum { N = 100000, DEPTH = 256 };
    uint8_t payload[40] = {0};
    int64_t t0 = mono_ms();
    int sent = 0, got = 0;
    while (got < N) {
        while (sent < N && sent - got < DEPTH) {
            uint64_t id;
            assert_int_equal(mn_client_queue(c, &id, MN_RPC_GET_CHAIN_INFO, payload, sizeof payload), MN_OK);
            assert_int_equal(id, (uint64_t)sent + 1);
            sent++;
        }
        Midnode__RpcResponse *r = NULL;
        assert_int_equal(mn_client_recv(c, &r), MN_OK);
        assert_int_equal(r->code, 0);
        midnode__rpc_response__free_unpacked(r, NULL);
        got++;
    }
    int64_t ms = mono_ms() - t0;
    printf("# rpc echo: %d requests in %lld ms = %.0f req/s (depth %d, one connection)\n", N, (long long)ms,
           ms > 0 ? N * 1000.0 / (double)ms : 0.0, DEPTH);
    mn_client_free(c);
    stop();
}

int main(void) {
    mn_log_threshold = MN_LOG_ERROR; /* the servers' INFO lines are noise here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_returns_payload_and_id),
        cmocka_unit_test(frame_sent_one_byte_at_a_time_is_decoded),
        cmocka_unit_test(unusual_request_encodings_read_like_protobuf),
        cmocka_unit_test(pipelined_requests_all_answered_by_id),
        cmocka_unit_test(peek_sees_a_reads_requests_before_they_are_handled),
        cmocka_unit_test(held_calls_answer_out_of_order),
        cmocka_unit_test(stream_items_then_end),
        cmocka_unit_test(disconnect_cancels_pending_calls_and_streams),
        cmocka_unit_test(detached_call_reply_is_safe),
        cmocka_unit_test(inflight_limit_answers_overloaded),
        cmocka_unit_test(unknown_method_is_refused_and_connection_survives),
        cmocka_unit_test(garbage_gets_bad_request_then_close),
        cmocka_unit_test(oversize_frame_refused_before_allocation),
        cmocka_unit_test(connection_limit_refuses_extra_connections),
        cmocka_unit_test(idle_connection_is_closed_but_busy_one_is_not),
        cmocka_unit_test(oversize_response_becomes_internal_error),
        cmocka_unit_test(slow_reader_is_disconnected),
        cmocka_unit_test(answers_beyond_the_socket_buffer_arrive_whole_in_order),
        cmocka_unit_test(stop_with_open_connections_and_pending_calls),
        cmocka_unit_test(bad_config_is_refused_with_a_message),
        cmocka_unit_test(pipelined_echo_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
