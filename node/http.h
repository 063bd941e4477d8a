/* http.h: the operator HTTP endpoint (GET /metrics, /healthz, /status) on
 * the node's libuv loop, and a small blocking probe client for midctl.
 *
 * The server speaks just enough HTTP/1.1 for Prometheus, load balancers and
 * curl: one GET (or HEAD) per connection, answered with Connection: close.
 * Requests whose head exceeds MN_HTTP_HEAD_MAX get 431, malformed ones 400,
 * other methods 405, other paths 404; a client that sends nothing for
 * MN_HTTP_IDLE_MS is dropped; at most MN_HTTP_CLIENTS_MAX connections are
 * open at once (more are closed on accept). A client is freed only in its
 * uv_close callback.
 *
 * Ownership: the server copies its config; callbacks run on the loop thread
 * and own nothing they are given. Strings they return are malloc'd and freed
 * by the server. */
#ifndef MN_HTTP_H
#define MN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"

#define MN_HTTP_HEAD_MAX 8192
#define MN_HTTP_CLIENTS_MAX 64
#define MN_HTTP_IDLE_MS 5000
#define MN_HTTP_REASON_MAX 256
#define MN_HTTP_BODY_MAX (4 * 1024 * 1024) /* largest response body (metrics, status) */

struct mn_metrics;
struct mn_http;
typedef struct uv_loop_s uv_loop_t;

/* Fills reason (NUL-terminated, may stay "") and returns true when healthy. */
typedef bool (*mn_http_health_fn)(void *arg, char *reason, size_t reason_len);

/* Returns a malloc'd NUL-terminated JSON document, or NULL (answered 500). */
typedef char *(*mn_http_status_fn)(void *arg);

struct mn_http_config {
    const char *listen;          /* "host:port"; port 0 picks a free port */
    struct mn_metrics *metrics;  /* rendered at /metrics; NULL: 404 there */
    mn_http_health_fn health;    /* NULL: always healthy */
    void *health_arg;
    mn_http_status_fn status;    /* NULL: /status answers 404 */
    void *status_arg;
};

/* Binds and starts listening on loop. listen must be a numeric IPv4 or
 * [IPv6] address with a port. Returns NULL on failure (bad address, bind or
 * listen failure, no memory) with the reason in err; after a bind failure a
 * handle is still closing, so run the loop before uv_loop_close. */
struct mn_http *mn_http_start(uv_loop_t *loop, const struct mn_http_config *cfg, char *err,
                              size_t err_len);

/* The bound port (useful after asking for port 0). */
uint16_t mn_http_port(const struct mn_http *h);

/* Requests answered so far, by any status (for tests and metrics). */
uint64_t mn_http_requests(const struct mn_http *h);

/* Stops accepting, closes every client and frees the server once all its
 * handles have closed (the loop must keep running for that). NULL-safe.
 * After the call h must not be used. */
void mn_http_stop(struct mn_http *h);

/* Blocking GET of http://hostport/path with a total deadline of timeout_ms.
 * On MN_OK *status_code holds the response status, and body (when not NULL)
 * the start of the response body, NUL-terminated and truncated to body_len.
 * Returns MN_OK, MN_EINVAL (bad address or path), MN_EIO (connect, send or
 * receive failed, or malformed response) or MN_EAGAIN (deadline passed). */
int mn_http_probe(const char *hostport, const char *path, int timeout_ms, int *status_code,
                  char *body, size_t body_len) MN_WARN_UNUSED;

#endif
