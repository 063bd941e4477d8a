/* ctl_keys.c: keygen, pubkey, and the operator's health probe. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "ctl.h"
#include "ctl_json.h"

/* Parses "--NAME VALUE" as the only option of a one-option command. */
static int one_option(int argc, char **argv, const char *name, const char **val) {
    const struct option opts[] = {{name, required_argument, 0, 'o'}, {0, 0, 0, 0}};
    *val = NULL;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'o') return mn_ctl_usage("%s: unknown option or missing value: %s", argv[0], argv[optind - 1]);
        *val = optarg;
    }
    if (optind < argc) return mn_ctl_usage("%s: unexpected argument \"%s\"", argv[0], argv[optind]);
    if (!*val) return mn_ctl_usage("%s: --%s is required", argv[0], name);
    return MN_CTL_EXIT_OK;
}

int mn_ctl_keygen(int argc, char **argv) {
    const char *out;
    int rc = one_option(argc, argv, "out", &out);
    if (rc != MN_CTL_EXIT_OK) return rc;
    uint8_t sk[MN_SECKEY_LEN], pk[MN_PUBKEY_LEN];
    if (mn_key_generate(sk) != MN_OK || mn_key_pubkey(pk, sk) != MN_OK) {
        mn_cleanse(sk, sizeof sk);
        return mn_ctl_fail("ECRYPTO", "cannot generate a key");
    }
    char err[512] = "";
    rc = mn_keyfile_write(out, sk, false, err, sizeof err);
    mn_cleanse(sk, sizeof sk);
    if (rc != MN_OK) return mn_ctl_fail(mn_strerror(rc), "%s", err);
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(out));
    json_object_set_new(o, "pubkey", mn_ctl_hex(pk, sizeof pk));
    return mn_ctl_emit(o);
}

int mn_ctl_pubkey(int argc, char **argv) {
    const char *path;
    int rc = one_option(argc, argv, "key", &path);
    if (rc != MN_CTL_EXIT_OK) return rc;
    uint8_t sk[MN_SECKEY_LEN], pk[MN_PUBKEY_LEN];
    char err[512] = "";
    rc = mn_keyfile_read(path, sk, err, sizeof err);
    if (rc != MN_OK) return mn_ctl_fail(mn_strerror(rc), "%s", err);
    rc = mn_key_pubkey(pk, sk);
    mn_cleanse(sk, sizeof sk);
    if (rc != MN_OK) return mn_ctl_fail("ECRYPTO", "%s: not a valid secret key", path);
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "pubkey", mn_ctl_hex(pk, sizeof pk));
    return mn_ctl_emit(o);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GET /healthz over plain HTTP/1.0; the whole answer is read (bounded). */
int mn_ctl_health(int argc, char **argv) {
    const char *addr;
    int rc = one_option(argc, argv, "http", &addr);
    if (rc != MN_CTL_EXIT_OK) return rc;
    char host[256];
    uint16_t port;
    if (mn_client_parse_addr(host, sizeof host, &port, addr) != MN_OK)
        return mn_ctl_usage("--http: expected HOST:PORT, got \"%s\"", addr);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char ports[8];
    snprintf(ports, sizeof ports, "%u", port);
    if (getaddrinfo(host, ports, &hints, &res) != 0 || !res)
        return mn_ctl_fail("UNAVAILABLE", "cannot resolve %s", host);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int64_t deadline = mono_ms() + mn_ctl.timeout_ms;
    bool ok = fd >= 0;
    if (ok && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        ok = false;
        if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            ok = poll(&pfd, 1, (int)(deadline - mono_ms())) == 1 &&
                 getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0;
        }
    }
    freeaddrinfo(res);
    if (!ok) {
        if (fd >= 0) close(fd);
        return mn_ctl_fail("UNAVAILABLE", "cannot connect to %s", addr);
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", addr);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return mn_ctl_fail("UNAVAILABLE", "cannot send to %s", addr);
    }
    char buf[4096];
    size_t have = 0;
    for (;;) {
        int64_t left = deadline - mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) != 1) {
            close(fd);
            return mn_ctl_fail("TIMEOUT", "no answer from %s", addr);
        }
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) break;
        have += (size_t)r;
        if (have == sizeof buf - 1) break;
    }
    close(fd);
    buf[have] = 0;
    int status = 0;
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1)
        return mn_ctl_fail("BAD_RESPONSE", "%s did not answer HTTP", addr);
    char *body = strstr(buf, "\r\n\r\n");
    body = body ? body + 4 : (char *)"";
    size_t bl = strlen(body);
    while (bl > 0 && (body[bl - 1] == '\n' || body[bl - 1] == '\r')) body[--bl] = 0;
    if (status != 200) return mn_ctl_fail("UNHEALTHY", "%s: /healthz answered %d: %s", addr, status, body);
    json_t *o = json_object();
    json_object_set_new(o, "healthy", json_true());
    json_object_set_new(o, "http_status", json_integer(status));
    json_object_set_new(o, "body", json_string(body));
    return mn_ctl_emit(o);
}
