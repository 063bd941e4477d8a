/* loop_thread.h: runs an mn_rpc server on a libuv loop in its own thread so
 * that a test can talk to it with the blocking client. Header-only, for the
 * unit tests. The handler runs on the loop thread; the test thread touches
 * handler state only through RPC calls, or after lt_stop has joined. */
#ifndef MN_TEST_LOOP_THREAD_H
#define MN_TEST_LOOP_THREAD_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "rpc.h"

typedef struct loop_thread {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    mn_rpc *srv;
    uint16_t port;
    char addr[64];
    void (*before_free)(void *ctx); /* on the loop thread, just before mn_rpc_free */
    void *ctx;
} loop_thread;

static void lt_on_stop(uv_async_t *a) {
    loop_thread *lt = a->data;
    if (lt->before_free) lt->before_free(lt->ctx);
    mn_rpc_free(lt->srv);
    uv_close((uv_handle_t *)&lt->stop, NULL);
}

static void *lt_main(void *arg) {
    loop_thread *lt = arg;
    uv_run(&lt->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Starts a server with cfg (port forced to 0), handler and peek (may be
 * NULL; set before the loop runs). Aborts on failure: a test cannot go on
 * without its server. */
static void lt_start_peek(loop_thread *lt, const mn_rpc_config *cfg_in, mn_rpc_handler handler,
                          mn_rpc_peek_fn peek, void *ctx) {
    memset(lt, 0, sizeof *lt);
    if (uv_loop_init(&lt->loop) != 0) abort();
    mn_rpc_config cfg = *cfg_in;
    cfg.port = 0;
    char err[256] = "";
    if (mn_rpc_new(&lt->srv, &lt->loop, &cfg, handler, ctx, err, sizeof err) != MN_OK) {
        fprintf(stderr, "mn_rpc_new: %s\n", err);
        abort();
    }
    if (peek) mn_rpc_set_peek(lt->srv, peek);
    lt->ctx = ctx;
    lt->port = mn_rpc_port(lt->srv);
    snprintf(lt->addr, sizeof lt->addr, "127.0.0.1:%u", lt->port);
    lt->stop.data = lt;
    if (uv_async_init(&lt->loop, &lt->stop, lt_on_stop) != 0) abort();
    if (pthread_create(&lt->thread, NULL, lt_main, lt) != 0) abort();
}

static void lt_start(loop_thread *lt, const mn_rpc_config *cfg_in, mn_rpc_handler handler, void *ctx) {
    lt_start_peek(lt, cfg_in, handler, NULL, ctx);
}

/* Stops the server, joins the thread, closes the loop. Returns uv_loop_close's
 * result (0 when every handle was closed). */
static int lt_stop(loop_thread *lt) {
    uv_async_send(&lt->stop);
    pthread_join(lt->thread, NULL);
    return uv_loop_close(&lt->loop);
}

#endif
