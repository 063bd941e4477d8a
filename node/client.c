/* client.c: blocking RPC client over a non-blocking socket and poll(), so
 * that every wait has a deadline; and signed transaction building. */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto.h"
#include "rpc.h"

#define CLIENT_RBUF_BYTES (64 * 1024)

struct mn_client {
    int fd;
    uint32_t timeout_ms;
    uint64_t next_id;
    bool broken;
    mn_client_result last;
    uint8_t *obuf; /* queued requests (mn_client_queue), sent by flush */
    size_t olen, ocap;
    size_t rstart, rend;
    uint8_t rbuf[CLIENT_RBUF_BYTES];
};

int mn_client_parse_addr(char *host, size_t host_len, uint16_t *port, const char *hostport) {
    if (!hostport || !host || host_len == 0) return MN_EINVAL;
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport) return MN_EINVAL;
    const char *h = hostport;
    size_t hl = (size_t)(colon - hostport);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') return MN_EINVAL;
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return MN_EINVAL; /* bare IPv6 needs brackets */
    }
    if (hl + 1 > host_len) return MN_EINVAL;
    const char *p = colon + 1;
    if (*p == 0 || strlen(p) > 5) return MN_EINVAL;
    unsigned long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return MN_EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535) return MN_EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)v;
    return MN_OK;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - mn_mono_ms();
        if (left <= 0) return MN_EIO;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (rc > 0) return MN_OK;
        if (rc < 0 && errno != EINTR) return MN_EIO;
    }
}

int mn_client_connect(mn_client **out, const char *hostport, uint32_t timeout_ms, char *err, size_t err_len) {
    *out = NULL;
    char host[256];
    uint16_t port = 0;
    if (mn_client_parse_addr(host, sizeof host, &port, hostport) != MN_OK) {
        if (err && err_len) snprintf(err, err_len, "bad address \"%s\": expected HOST:PORT", hostport ? hostport : "");
        return MN_EINVAL;
    }
    if (timeout_ms == 0) timeout_ms = MN_CLIENT_TIMEOUT_MS_DEFAULT;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char ports[8];
    snprintf(ports, sizeof ports, "%u", port);
    int grc = getaddrinfo(host, ports, &hints, &res);
    if (grc != 0 || !res) {
        if (err && err_len) snprintf(err, err_len, "cannot resolve %s: %s", host, gai_strerror(grc));
        return MN_EIO;
    }
    int64_t deadline = mn_mono_ms() + timeout_ms;
    int fd = -1;
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == MN_OK) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) break;
            last_errno = soerr ? soerr : errno;
        } else {
            last_errno = errno == EINPROGRESS ? ETIMEDOUT : errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (err && err_len) snprintf(err, err_len, "cannot connect to %s: %s", hostport, strerror(last_errno));
        return MN_EIO;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    mn_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        if (err && err_len) snprintf(err, err_len, "out of memory");
        return MN_ENOMEM;
    }
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    c->next_id = 1;
    c->last.code = -1;
    *out = c;
    return MN_OK;
}

void mn_client_free(mn_client *c) {
    if (!c) return;
    close(c->fd);
    free(c->obuf);
    free(c);
}

void mn_client_set_timeout(mn_client *c, uint32_t timeout_ms) {
    c->timeout_ms = timeout_ms ? timeout_ms : MN_CLIENT_TIMEOUT_MS_DEFAULT;
}

const mn_client_result *mn_client_last(const mn_client *c) { return &c->last; }

static void set_last_transport(mn_client *c, const char *msg) {
    c->last.code = -1;
    c->last.tx_code = 0;
    snprintf(c->last.message, sizeof c->last.message, "%s", msg);
}

int mn_client_send_raw(mn_client *c, const void *data, size_t len) {
    if (c->broken) return MN_EIO;
    const uint8_t *p = data;
    int64_t deadline = mn_mono_ms() + c->timeout_ms;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(c->fd, POLLOUT, deadline) == MN_OK)
            continue;
        c->broken = true;
        set_last_transport(c, n < 0 && errno != EAGAIN ? strerror(errno) : "send timed out");
        return MN_EIO;
    }
    return MN_OK;
}

/* Largest batch of queued requests before mn_client_queue flushes by itself. */
#define CLIENT_QUEUE_BYTES_MAX (256 * 1024)

int mn_client_flush(mn_client *c) {
    if (c->olen == 0) return c->broken ? MN_EIO : MN_OK;
    int rc = mn_client_send_raw(c, c->obuf, c->olen);
    c->olen = 0;
    return rc;
}

int mn_client_queue(mn_client *c, uint64_t *id, const char *method, const uint8_t *payload, size_t len) {
    if (!method || strlen(method) > MN_RPC_METHOD_MAX || (len && !payload)) return MN_EINVAL;
    if (c->broken) return MN_EIO;
    Midnode__RpcRequest r = MIDNODE__RPC_REQUEST__INIT;
    r.id = c->next_id;
    r.method = (char *)method;
    r.payload.data = (uint8_t *)payload;
    r.payload.len = len;
    size_t size = midnode__rpc_request__get_packed_size(&r);
    if (size > MN_RPC_FRAME_BYTES_MAX) return MN_EINVAL;
    if (c->olen > 0 && c->olen + 4 + size > CLIENT_QUEUE_BYTES_MAX) {
        int rc = mn_client_flush(c);
        if (rc != MN_OK) return rc;
    }
    if (c->olen + 4 + size > c->ocap) {
        size_t cap = c->ocap ? c->ocap : 4096;
        while (cap < c->olen + 4 + size) cap *= 2;
        uint8_t *grown = realloc(c->obuf, cap);
        if (!grown) return MN_ENOMEM;
        c->obuf = grown;
        c->ocap = cap;
    }
    uint8_t *f = c->obuf + c->olen;
    f[0] = (uint8_t)(size >> 24);
    f[1] = (uint8_t)(size >> 16);
    f[2] = (uint8_t)(size >> 8);
    f[3] = (uint8_t)size;
    midnode__rpc_request__pack(&r, f + 4);
    c->olen += 4 + size;
    c->next_id++;
    if (id) *id = r.id;
    return MN_OK;
}

int mn_client_send(mn_client *c, uint64_t *id, const char *method, const uint8_t *payload, size_t len) {
    int rc = mn_client_queue(c, id, method, payload, len);
    if (rc != MN_OK) return rc;
    return mn_client_flush(c);
}

/* Makes at least `need` bytes available in rbuf (need <= CLIENT_RBUF_BYTES). */
static int fill(mn_client *c, size_t need, int64_t deadline) {
    if (c->rend - c->rstart >= need) return MN_OK;
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    while (c->rend < need) {
        ssize_t n = recv(c->fd, c->rbuf + c->rend, sizeof c->rbuf - c->rend, 0);
        if (n > 0) {
            c->rend += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c->fd, POLLIN, deadline) == MN_OK) continue;
            set_last_transport(c, "timed out waiting for the node");
        } else {
            set_last_transport(c, n == 0 ? "connection closed by the node" : strerror(errno));
        }
        c->broken = true;
        return MN_EIO;
    }
    return MN_OK;
}

int mn_client_recv(mn_client *c, Midnode__RpcResponse **out) {
    *out = NULL;
    int rc = mn_client_flush(c); /* never wait for answers to unsent requests */
    if (rc != MN_OK) return rc;
    int64_t deadline = mn_mono_ms() + c->timeout_ms;
    rc = fill(c, 4, deadline);
    if (rc != MN_OK) return rc;
    const uint8_t *h = c->rbuf + c->rstart;
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (len > MN_RPC_RESPONSE_BYTES_MAX) {
        c->broken = true;
        set_last_transport(c, "response frame over the size limit");
        return MN_ETOOBIG;
    }
    Midnode__RpcResponse *r = NULL;
    if (len + 4 <= sizeof c->rbuf) {
        rc = fill(c, len + 4, deadline);
        if (rc != MN_OK) return rc;
        r = midnode__rpc_response__unpack(NULL, len, c->rbuf + c->rstart + 4);
        c->rstart += len + 4;
    } else {
        uint8_t *body = malloc(len);
        if (!body) return MN_ENOMEM;
        c->rstart += 4;
        size_t have = c->rend - c->rstart;
        memcpy(body, c->rbuf + c->rstart, have);
        c->rstart = c->rend = 0;
        while (have < len) {
            ssize_t n = recv(c->fd, body + have, len - have, 0);
            if (n > 0) {
                have += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(c->fd, POLLIN, deadline) == MN_OK)
                continue;
            free(body);
            c->broken = true;
            set_last_transport(c, n == 0 ? "connection closed by the node" : "timed out waiting for the node");
            return MN_EIO;
        }
        r = midnode__rpc_response__unpack(NULL, len, body);
        free(body);
    }
    if (!r) {
        c->broken = true;
        set_last_transport(c, "response does not decode");
        return MN_ECORRUPT;
    }
    *out = r;
    return MN_OK;
}

static void set_last(mn_client *c, const Midnode__RpcResponse *r) {
    c->last.code = (int)r->code;
    c->last.tx_code = (int)r->tx_code;
    snprintf(c->last.message, sizeof c->last.message, "%s", r->message ? r->message : "");
}

int mn_client_call(mn_client *c, const char *method, const uint8_t *payload, size_t len,
                   Midnode__RpcResponse **out) {
    *out = NULL;
    uint64_t id = 0;
    int rc = mn_client_send(c, &id, method, payload, len);
    if (rc != MN_OK) return rc;
    Midnode__RpcResponse *r = NULL;
    rc = mn_client_recv(c, &r);
    if (rc != MN_OK) return rc;
    set_last(c, r);
    if (r->id != id && r->id != 0) {
        midnode__rpc_response__free_unpacked(r, NULL);
        set_last_transport(c, "response to another request");
        return MN_ECORRUPT;
    }
    *out = r;
    return MN_OK;
}

int mn_client_code_to_err(int rpc_code) {
    switch (rpc_code) {
    case MIDNODE__RPC_CODE__RPC_OK: return MN_OK;
    case MIDNODE__RPC_CODE__RPC_TX_REJECTED: return MN_EPERM;
    case MIDNODE__RPC_CODE__RPC_NOT_FOUND: return MN_ENOTFOUND;
    case MIDNODE__RPC_CODE__RPC_OVERLOADED:
    case MIDNODE__RPC_CODE__RPC_UNAVAILABLE:
    case MIDNODE__RPC_CODE__RPC_TIMEOUT: return MN_EAGAIN;
    case MIDNODE__RPC_CODE__RPC_TOO_LARGE: return MN_ETOOBIG;
    case MIDNODE__RPC_CODE__RPC_BAD_REQUEST:
    case MIDNODE__RPC_CODE__RPC_UNKNOWN_METHOD: return MN_EINVAL;
    default: return MN_ESTATE;
    }
}

/* One typed call: packs req with the given descriptor-specific functions,
 * checks the code, unpacks the payload with unpack. */
typedef void *(*unpack_fn)(ProtobufCAllocator *, size_t, const uint8_t *);

static int typed_call(mn_client *c, const char *method, const ProtobufCMessage *req, unpack_fn unpack,
                      void **out) {
    *out = NULL;
    size_t size = protobuf_c_message_get_packed_size(req);
    if (size > MN_RPC_FRAME_BYTES_MAX) return MN_EINVAL;
    uint8_t small[256];
    uint8_t *buf = size <= sizeof small ? small : malloc(size);
    if (!buf) return MN_ENOMEM;
    protobuf_c_message_pack(req, buf);
    Midnode__RpcResponse *r = NULL;
    int rc = mn_client_call(c, method, buf, size, &r);
    if (buf != small) free(buf);
    if (rc != MN_OK) return rc;
    rc = mn_client_code_to_err((int)r->code);
    if (rc == MN_OK) {
        *out = unpack(NULL, r->payload.len, r->payload.data);
        if (!*out) {
            set_last_transport(c, "response payload does not decode");
            rc = MN_ECORRUPT;
        }
    }
    midnode__rpc_response__free_unpacked(r, NULL);
    return rc;
}

#define TYPED(c, method, req, name, out) \
    typed_call((c), (method), &(req).base, (unpack_fn)midnode__##name##__unpack, (void **)(out))

int mn_client_submit_tx(mn_client *c, const uint8_t *tx, size_t tx_len, bool wait_commit, uint32_t timeout_ms,
                        Midnode__SubmitTxResponse **out) {
    if (!tx || tx_len == 0) return MN_EINVAL;
    Midnode__SubmitTxRequest req = MIDNODE__SUBMIT_TX_REQUEST__INIT;
    req.tx.data = (uint8_t *)tx;
    req.tx.len = tx_len;
    req.wait_commit = wait_commit;
    req.timeout_ms = timeout_ms;
    return TYPED(c, MN_RPC_SUBMIT_TX, req, submit_tx_response, out);
}

int mn_client_get_status(mn_client *c, const uint8_t credential_id[static MN_ID_LEN], bool with_proof,
                         Midnode__GetStatusResponse **out) {
    Midnode__GetStatusRequest req = MIDNODE__GET_STATUS_REQUEST__INIT;
    req.credential_id.data = (uint8_t *)credential_id;
    req.credential_id.len = MN_ID_LEN;
    req.with_proof = with_proof;
    return TYPED(c, MN_RPC_GET_STATUS, req, get_status_response, out);
}

int mn_client_get_status_batch(mn_client *c, const uint8_t (*ids)[MN_ID_LEN], size_t count, bool with_proof,
                               Midnode__GetStatusBatchResponse **out) {
    *out = NULL;
    if (count > MN_STATUS_BATCH_MAX || (count && !ids)) return MN_EINVAL;
    ProtobufCBinaryData *bins = calloc(count ? count : 1, sizeof *bins);
    if (!bins) return MN_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        bins[i].data = (uint8_t *)ids[i];
        bins[i].len = MN_ID_LEN;
    }
    Midnode__GetStatusBatchRequest req = MIDNODE__GET_STATUS_BATCH_REQUEST__INIT;
    req.n_credential_ids = count;
    req.credential_ids = bins;
    req.with_proof = with_proof;
    int rc = TYPED(c, MN_RPC_GET_STATUS_BATCH, req, get_status_batch_response, out);
    free(bins);
    return rc;
}

int mn_client_get_chain_info(mn_client *c, Midnode__GetChainInfoResponse **out) {
    Midnode__GetChainInfoRequest req = MIDNODE__GET_CHAIN_INFO_REQUEST__INIT;
    return TYPED(c, MN_RPC_GET_CHAIN_INFO, req, get_chain_info_response, out);
}

int mn_client_get_signer(mn_client *c, const char *signer, Midnode__GetSignerResponse **out) {
    *out = NULL;
    if (!signer || strlen(signer) > MN_MEMBER_ID_MAX) return MN_EINVAL;
    Midnode__GetSignerRequest req = MIDNODE__GET_SIGNER_REQUEST__INIT;
    req.signer = (char *)signer;
    return TYPED(c, MN_RPC_GET_SIGNER, req, get_signer_response, out);
}

int mn_client_get_block(mn_client *c, uint64_t height, Midnode__GetBlockResponse **out) {
    Midnode__GetBlockRequest req = MIDNODE__GET_BLOCK_REQUEST__INIT;
    req.height = height;
    return TYPED(c, MN_RPC_GET_BLOCK, req, get_block_response, out);
}

int mn_client_get_tx(mn_client *c, const uint8_t tx_hash[static MN_HASH_LEN], Midnode__GetTxResponse **out) {
    Midnode__GetTxRequest req = MIDNODE__GET_TX_REQUEST__INIT;
    req.tx_hash.data = (uint8_t *)tx_hash;
    req.tx_hash.len = MN_HASH_LEN;
    return TYPED(c, MN_RPC_GET_TX, req, get_tx_response, out);
}

int mn_client_watch_start(mn_client *c, uint64_t from_height, uint64_t *id) {
    Midnode__WatchStatusChangesRequest req = MIDNODE__WATCH_STATUS_CHANGES_REQUEST__INIT;
    req.from_height = from_height;
    uint8_t buf[32];
    size_t size = midnode__watch_status_changes_request__pack(&req, buf);
    return mn_client_send(c, id, MN_RPC_WATCH_STATUS_CHANGES, buf, size);
}

int mn_client_watch_next(mn_client *c, uint64_t id, Midnode__StatusChange **out) {
    *out = NULL;
    for (;;) {
        Midnode__RpcResponse *r = NULL;
        int rc = mn_client_recv(c, &r);
        if (rc != MN_OK) return rc;
        if (r->id != id && r->id != 0) {
            midnode__rpc_response__free_unpacked(r, NULL);
            continue;
        }
        set_last(c, r);
        rc = mn_client_code_to_err((int)r->code);
        if (rc == MN_OK && !r->more) rc = MN_ENOTFOUND;
        if (rc == MN_OK) {
            *out = midnode__status_change__unpack(NULL, r->payload.len, r->payload.data);
            if (!*out) {
                set_last_transport(c, "stream item does not decode");
                rc = MN_ECORRUPT;
            }
        }
        midnode__rpc_response__free_unpacked(r, NULL);
        return rc;
    }
}

int mn_client_build_tx(uint8_t **tx, size_t *tx_len, uint8_t *tx_hash, const char *chain_id, const char *signer,
                       uint64_t nonce, const Midnode__TxPayload *body, const uint8_t seckey[static MN_SECKEY_LEN]) {
    *tx = NULL;
    *tx_len = 0;
    if (!chain_id || !signer || !body || strlen(chain_id) > MN_CHAIN_ID_MAX || strlen(signer) > MN_MEMBER_ID_MAX ||
        body->body_case == MIDNODE__TX_PAYLOAD__BODY__NOT_SET)
        return MN_EINVAL;
    Midnode__TxPayload p = *body;
    p.chain_id = (char *)chain_id;
    p.signer = (char *)signer;
    p.nonce = nonce;
    size_t psize = midnode__tx_payload__get_packed_size(&p);
    size_t limit = body->body_case == MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH ? MN_TX_BATCH_BYTES_MAX : MN_TX_BYTES_MAX;
    if (psize > limit) return MN_ETOOBIG;
    uint8_t *pbuf = malloc(psize ? psize : 1);
    if (!pbuf) return MN_ENOMEM;
    midnode__tx_payload__pack(&p, pbuf);
    uint8_t digest[MN_HASH_LEN], sig[MN_SIG_LEN];
    mn_sha256(digest, pbuf, psize);
    if (mn_sign(sig, digest, seckey) != MN_OK) {
        free(pbuf);
        return MN_ECRYPTO;
    }
    Midnode__Tx t = MIDNODE__TX__INIT;
    t.payload.data = pbuf;
    t.payload.len = psize;
    t.signature.data = sig;
    t.signature.len = MN_SIG_LEN;
    size_t tsize = midnode__tx__get_packed_size(&t);
    uint8_t *out = tsize > limit ? NULL : malloc(tsize);
    if (!out) {
        free(pbuf);
        return tsize > limit ? MN_ETOOBIG : MN_ENOMEM;
    }
    midnode__tx__pack(&t, out);
    free(pbuf);
    if (tx_hash) mn_sha256(tx_hash, out, tsize);
    *tx = out;
    *tx_len = tsize;
    return MN_OK;
}

const char *mn_rpc_code_name(int rpc_code) {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&midnode__rpc_code__descriptor, rpc_code);
    return v ? v->name : "?";
}

const char *mn_status_name(int status) {
    switch (status) {
    case MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN: return "UNKNOWN";
    case MIDNODE__CREDENTIAL_STATUS__ACTIVE: return "ACTIVE";
    case MIDNODE__CREDENTIAL_STATUS__SUSPENDED: return "SUSPENDED";
    case MIDNODE__CREDENTIAL_STATUS__REVOKED: return "REVOKED";
    case MIDNODE__CREDENTIAL_STATUS__SUPERSEDED: return "SUPERSEDED";
    case MIDNODE__CREDENTIAL_STATUS__EXPIRED: return "EXPIRED";
    default: return "?";
    }
}
