/* net_bench.c: frames per second between two nodes over loopback TLS.
 * Both nodes run on one loop in one thread, so the figure includes the
 * sender's and the receiver's work on one core. Usage: net_bench [FRAMES] [BYTES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

#include "log.h"
#include "net.h"
#include "tls.h"

typedef struct bench {
    mn_net *a, *b;
    uint64_t want, sent, got;
    size_t frame_len;
    uint8_t *frame;
    uv_idle_t idle;
    uint64_t t0_ns, t1_ns;
} bench;

static void on_msg(void *ctx, const char *peer, const uint8_t *frame, size_t len) {
    (void)peer;
    (void)frame;
    bench *b = ctx;
    if (len != b->frame_len) abort();
    if (++b->got == b->want) {
        b->t1_ns = uv_hrtime();
        uv_stop(uv_handle_get_loop((uv_handle_t *)&b->idle));
    }
}

static void pump(uv_idle_t *h) {
    bench *b = h->data;
    if (mn_net_peer_count(b->a) == 0) return;
    if (b->t0_ns == 0) b->t0_ns = uv_hrtime();
    for (int i = 0; i < 1000 && b->sent < b->want; i++) {
        mn_net_peer_info info;
        if (mn_net_peers(b->a, &info, 1) != 1 || info.out_queue_bytes > 4u * 1024 * 1024) break;
        if (mn_net_send(b->a, "bravo", b->frame, b->frame_len) != MN_OK) break;
        b->sent++;
    }
}

int main(int argc, char **argv) {
    bench B = {0};
    B.want = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    B.frame_len = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
    B.frame = calloc(1, B.frame_len ? B.frame_len : 1);
    mn_log_threshold = MN_LOG_WARN;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return 1;
    EVP_PKEY *ka, *kb;
    X509 *ca, *cb;
    if (mn_tls_selfsigned_new(&ka, &ca, "alpha") || mn_tls_selfsigned_new(&kb, &cb, "bravo")) return 1;
    mn_net_peer_config pa = {.should_dial = true}, pb = {0};
    snprintf(pa.name, sizeof pa.name, "bravo");
    snprintf(pb.name, sizeof pb.name, "alpha");
    if (mn_tls_pin_of_key(pa.pin, kb) || mn_tls_pin_of_key(pb.pin, ka)) return 1;
    char err[256];
    mn_net_config cfgb = {.name = "bravo", .listen_addr = "127.0.0.1:0", .key = kb, .cert = cb, .peers = &pb,
                          .peer_count = 1, .cb = {.ctx = &B, .on_message = on_msg}};
    if (mn_net_new(&B.b, &loop, &cfgb, err, sizeof err) != MN_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(pa.addr, sizeof pa.addr, "127.0.0.1:%u", (unsigned)mn_net_listen_port(B.b));
    mn_net_config cfga = {.name = "alpha", .key = ka, .cert = ca, .peers = &pa, .peer_count = 1};
    if (mn_net_new(&B.a, &loop, &cfga, err, sizeof err) != MN_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uv_idle_init(&loop, &B.idle);
    B.idle.data = &B;
    uv_idle_start(&B.idle, pump);
    uv_run(&loop, UV_RUN_DEFAULT);
    double s = (double)(B.t1_ns - B.t0_ns) / 1e9;
    /* CPU time too: on a shared machine wall time mostly measures the queue
     * for a core. It includes the set-up handshake (small). */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    mn_net_stats st;
    mn_net_stats_get(B.a, &st);
    printf("frames=%llu frame_bytes=%zu seconds=%.3f frames_per_s=%.0f MB_per_s=%.1f cpu_seconds=%.3f "
           "frames_per_cpu_s=%.0f wire_bytes=%llu\n",
           (unsigned long long)B.want, B.frame_len, s, (double)B.want / s, (double)B.want * (double)B.frame_len / s / 1e6,
           cpu, (double)B.want / cpu, (unsigned long long)st.bytes_out);
    uv_close((uv_handle_t *)&B.idle, NULL);
    mn_net_free(B.a);
    mn_net_free(B.b);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    mn_tls_key_free(ka);
    mn_tls_key_free(kb);
    mn_tls_cert_free(ca);
    mn_tls_cert_free(cb);
    free(B.frame);
    return rc == 0 ? 0 : 1;
}
