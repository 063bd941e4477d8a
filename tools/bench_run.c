/* bench_run.c: midbench's workloads. One thread per connection keeps its
 * requests in flight with mn_client_send / mn_client_recv; each thread has
 * its own histogram and counters, summed when the threads are joined. The
 * propagation workload adds one thread per node that follows the node's
 * stream of status changes. */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "crypto.h"

#define SETUP_DEPTH 32
#define DRAIN_S_MAX 60

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_us(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
    nanosleep(&ts, NULL);
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void derive(uint8_t out[static MN_ID_LEN], const char *tag, uint64_t ns, uint64_t i) {
    uint8_t buf[64];
    size_t tl = strlen(tag);
    assert(tl + 16 <= sizeof buf);
    memcpy(buf, tag, tl);
    for (int k = 0; k < 8; k++) {
        buf[tl + k] = (uint8_t)(ns >> (56 - 8 * k));
        buf[tl + 8 + k] = (uint8_t)(i >> (56 - 8 * k));
    }
    mn_sha256(out, buf, tl + 16);
}

void bench_cred_id(uint8_t out[static MN_ID_LEN], uint64_t ns, uint64_t i) { derive(out, "midbench-cred", ns, i); }
void bench_device_id(uint8_t out[static MN_ID_LEN], uint64_t ns, uint64_t i) { derive(out, "midbench-dev", ns, i); }
void bench_holder_id(uint8_t out[static MN_ID_LEN], uint64_t ns, uint64_t i) { derive(out, "midbench-holder", ns, i); }

/* ---- shared state of one run ---- */

/* K_LOSS: tracked loss reports (propagation); K_MIX: the submit phase's
 * issuances mixed with K_REPORT / K_REVOKE of credentials issued earlier. */
enum { K_STATUS = 1, K_ISSUE, K_LOSS, K_MIX, K_REPORT, K_REVOKE };
#define RING_CAP 65536
enum { REC_IDLE = 0, REC_PENDING, REC_DONE, REC_FAILED };

typedef struct loss_rec {
    uint64_t t_submit_us;
    uint64_t seen_mask;
    int state;
} loss_rec;

/* One phase: what the workers send and how. */
typedef struct phase {
    int kind;           /* K_STATUS, K_ISSUE; K_LOSS = issue/loss mix */
    bool with_proof;
    bool wait_commit;
    uint32_t connections, depth;
    double rate;        /* 0: closed loop */
    uint64_t end_us;    /* 0: until the index limit is reached */
} phase;

typedef struct run {
    const bench_opts *o;
    bench_testnet *tn;
    const char *target;
    phase ph;
    uint64_t ns;                 /* namespace of issued credentials */
    _Atomic uint64_t next_index; /* issuances claim indices here */
    uint64_t index_limit;
    _Atomic uint64_t next_loss;  /* propagation: loss reports claim setup indices */
    uint64_t loss_limit;
    _Atomic bool stop;
    pthread_mutex_t mu;          /* guards recs and prop */
    loss_rec *recs;
    bench_histogram prop;
    uint64_t propagated;
    uint64_t all_mask;
    _Atomic uint64_t first_error_logged;
    /* submit: issuances signed before the timed window (see presign) */
    uint8_t **pre_req;
    size_t *pre_len;
    uint64_t pre_count;
    pthread_mutex_t ring_mu;     /* committed issuances not yet revoked or reported */
    uint64_t ring[RING_CAP];
    size_t ring_head, ring_count;
} run;

static void ring_push(run *r, uint64_t idx) {
    pthread_mutex_lock(&r->ring_mu);
    if (r->ring_count < RING_CAP) {
        r->ring[(r->ring_head + r->ring_count) % RING_CAP] = idx;
        r->ring_count++;
    }
    pthread_mutex_unlock(&r->ring_mu);
}

static bool ring_pop(run *r, uint64_t *idx) {
    pthread_mutex_lock(&r->ring_mu);
    bool ok = r->ring_count > 0;
    if (ok) {
        *idx = r->ring[r->ring_head];
        r->ring_head = (r->ring_head + 1) % RING_CAP;
        r->ring_count--;
    }
    pthread_mutex_unlock(&r->ring_mu);
    return ok;
}

typedef struct slot {
    bool used;
    uint64_t id;
    uint64_t t0_us;
    int kind;
    uint64_t idx;
    uint8_t *req; /* SubmitTxRequest bytes, kept for a resubmission */
    size_t req_len;
} slot;

typedef struct worker {
    run *r;
    uint32_t index;
    pthread_t th;
    uint64_t rng;
    slot *slots;
    uint32_t inflight;
    bench_histogram lat;
    uint64_t ops, errors, retries, hits, misses, issued, losses, revokes;
    uint64_t last_us;
    int fatal;
    char err[256];
} worker;

static void log_error(run *r, const char *what, const char *msg) {
    uint64_t n = atomic_fetch_add(&r->first_error_logged, 1);
    if (n < 5) fprintf(stderr, "midbench: %s: %s\n", what, msg);
}

/* ---- building requests ---- */

static void loss_failed(run *r, uint64_t idx) {
    pthread_mutex_lock(&r->mu);
    r->recs[idx].state = REC_FAILED;
    pthread_mutex_unlock(&r->mu);
}


/* Fills s with a SubmitTxRequest carrying tx (freed here, whatever happens). */
static int slot_set_submit(run *r, slot *s, uint8_t *tx, size_t tx_len, int kind, uint64_t idx) {
    Midnode__SubmitTxRequest req = MIDNODE__SUBMIT_TX_REQUEST__INIT;
    req.tx = (ProtobufCBinaryData){tx_len, tx};
    req.wait_commit = r->ph.wait_commit;
    req.timeout_ms = r->o->timeout_ms;
    size_t len = midnode__submit_tx_request__get_packed_size(&req);
    s->req = malloc(len);
    if (!s->req) {
        free(tx);
        return MN_ENOMEM;
    }
    s->req_len = midnode__submit_tx_request__pack(&req, s->req);
    free(tx);
    s->kind = kind;
    s->idx = idx;
    return MN_OK;
}

/* preload --batch: transaction number `batch` carries the issuances
 * batch*B .. batch*B+B-1 (capped at --count), signed once by one issuer,
 * each item as make_submit would issue it alone (types of that issuer). */
static int make_batch_submit(run *r, worker *w, slot *s, uint64_t batch) {
    bench_testnet *tn = r->tn;
    uint64_t first = batch * r->o->batch, n = r->o->batch;
    if (first + n > r->o->count) n = r->o->count - first;
    bench_signer *signer = &tn->signers[tn->issuers[batch % tn->issuer_count]];
    Midnode__IssueBody *bodies = calloc(n, sizeof *bodies);
    Midnode__IssueBody **items = calloc(n, sizeof(Midnode__IssueBody *));
    uint8_t(*ids)[3][MN_ID_LEN] = calloc(n, sizeof *ids);
    int rc = bodies && items && ids ? MN_OK : MN_ENOMEM;
    for (uint64_t i = 0; rc == MN_OK && i < n; i++) {
        uint64_t idx = first + i;
        Midnode__IssueBody *b = &bodies[i];
        midnode__issue_body__init(b);
        bench_cred_id(ids[i][0], r->ns, idx);
        bench_holder_id(ids[i][1], r->ns, idx);
        bench_device_id(ids[i][2], r->ns, idx);
        b->credential_id = (ProtobufCBinaryData){MN_ID_LEN, ids[i][0]};
        b->holder_ref = (ProtobufCBinaryData){MN_ID_LEN, ids[i][1]};
        b->device_ref = (ProtobufCBinaryData){MN_ID_LEN, ids[i][2]};
        b->type = (Midnode__CredentialType)signer->cred_type;
        b->carrier = (char *)tn->signers[tn->carriers[idx % tn->carrier_count]].id;
        items[i] = b;
    }
    uint8_t *tx = NULL;
    size_t tx_len = 0;
    if (rc == MN_OK) {
        Midnode__TxPayload body = MIDNODE__TX_PAYLOAD__INIT;
        Midnode__IssueBatchBody bb = MIDNODE__ISSUE_BATCH_BODY__INIT;
        bb.n_items = n;
        bb.items = items;
        body.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH;
        body.issue_batch = &bb;
        uint64_t nonce = atomic_fetch_add(&signer->next_nonce, 1);
        rc = mn_client_build_tx(&tx, &tx_len, NULL, tn->chain_id, signer->id, nonce, &body, signer->seckey);
        if (rc != MN_OK) snprintf(w->err, sizeof w->err, "build batch tx: %s", mn_strerror(rc));
    }
    free(bodies);
    free(items);
    free(ids);
    if (rc != MN_OK) return rc;
    return slot_set_submit(r, s, tx, tx_len, K_ISSUE, batch);
}

/* nonce: UINT64_MAX to take the signer's next one now. */
static int make_submit(run *r, worker *w, slot *s, int kind, uint64_t idx, uint64_t nonce) {
    if (kind == K_ISSUE && r->o->batch > 1 && r->o->workload == BENCH_PRELOAD) return make_batch_submit(r, w, s, idx);
    bench_testnet *tn = r->tn;
    Midnode__TxPayload body = MIDNODE__TX_PAYLOAD__INIT;
    Midnode__IssueBody ib = MIDNODE__ISSUE_BODY__INIT;
    Midnode__ReportLossBody lb = MIDNODE__REPORT_LOSS_BODY__INIT;
    Midnode__RevokeBody rb = MIDNODE__REVOKE_BODY__INIT;
    uint8_t cred[MN_ID_LEN], dev[MN_ID_LEN], holder[MN_ID_LEN], ref[MN_ID_LEN];
    bench_device_id(dev, r->ns, idx);
    const bench_signer *carrier = &tn->signers[tn->carriers[idx % tn->carrier_count]];
    bench_signer *signer;
    if (kind == K_ISSUE) {
        signer = &tn->signers[tn->issuers[idx % tn->issuer_count]];
        bench_cred_id(cred, r->ns, idx);
        bench_holder_id(holder, r->ns, idx);
        ib.credential_id = (ProtobufCBinaryData){MN_ID_LEN, cred};
        ib.type = (Midnode__CredentialType)signer->cred_type;
        ib.holder_ref = (ProtobufCBinaryData){MN_ID_LEN, holder};
        ib.device_ref = (ProtobufCBinaryData){MN_ID_LEN, dev};
        ib.carrier = (char *)carrier->id;
        body.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE;
        body.issue = &ib;
    } else if (kind == K_REVOKE) {
        signer = &tn->signers[tn->issuers[idx % tn->issuer_count]];
        bench_cred_id(cred, r->ns, idx);
        rb.credential_id = (ProtobufCBinaryData){MN_ID_LEN, cred};
        rb.reason = "midbench";
        body.body_case = MIDNODE__TX_PAYLOAD__BODY_REVOKE;
        body.revoke = &rb;
    } else {
        signer = (bench_signer *)carrier;
        derive(ref, "midbench-report", r->ns, idx);
        lb.device_ref = (ProtobufCBinaryData){MN_ID_LEN, dev};
        lb.report_ref = (ProtobufCBinaryData){MN_ID_LEN, ref};
        body.body_case = MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS;
        body.report_loss = &lb;
    }
    if (nonce == UINT64_MAX) nonce = atomic_fetch_add(&signer->next_nonce, 1);
    uint8_t *tx = NULL;
    size_t tx_len = 0;
    int rc = mn_client_build_tx(&tx, &tx_len, NULL, tn->chain_id, signer->id, nonce, &body, signer->seckey);
    if (rc != MN_OK) {
        snprintf(w->err, sizeof w->err, "build tx: %s", mn_strerror(rc));
        return rc;
    }
    return slot_set_submit(r, s, tx, tx_len, kind, idx);
}

static void slot_clear(slot *s) {
    free(s->req);
    memset(s, 0, sizeof *s);
}

/* Sends one new request into a free slot. Returns MN_OK, MN_ENOTFOUND when
 * there is nothing left to send (index limit reached), or an error. */
static int send_new(worker *w, mn_client *c, uint64_t t0) {
    run *r = w->r;
    slot *s = NULL;
    for (uint32_t i = 0; i < r->ph.depth; i++)
        if (!w->slots[i].used) {
            s = &w->slots[i];
            break;
        }
    assert(s);
    int rc;
    const char *method;
    uint8_t sbuf[128];
    const uint8_t *payload;
    size_t len;
    if (r->ph.kind == K_STATUS) {
        uint8_t id[MN_ID_LEN];
        const bench_opts *o = r->o;
        uint64_t x = rng_next(&w->rng);
        double u = (double)(x >> 11) / 9007199254740992.0;
        if (o->count > 0 && u >= o->miss_ratio) {
            bench_cred_id(id, o->seed, rng_next(&w->rng) % o->count);
        } else {
            bench_cred_id(id, o->seed ^ 0x8000000000000000ull, rng_next(&w->rng));
        }
        Midnode__GetStatusRequest req = MIDNODE__GET_STATUS_REQUEST__INIT;
        req.credential_id = (ProtobufCBinaryData){MN_ID_LEN, id};
        req.with_proof = r->ph.with_proof;
        assert(midnode__get_status_request__get_packed_size(&req) <= sizeof sbuf);
        len = midnode__get_status_request__pack(&req, sbuf);
        payload = sbuf;
        method = "GetStatus";
        s->kind = K_STATUS;
    } else {
        int kind = K_ISSUE;
        uint64_t idx = 0;
        if (r->ph.kind == K_LOSS) {
            uint64_t x = rng_next(&w->rng);
            double u = (double)(x >> 11) / 9007199254740992.0;
            if (u < r->o->loss_share) {
                idx = atomic_fetch_add(&r->next_loss, 1);
                if (idx < r->loss_limit) kind = K_LOSS;
            }
        } else if (r->ph.kind == K_MIX) {
            uint64_t x = rng_next(&w->rng);
            double u = (double)(x >> 11) / 9007199254740992.0;
            int want = u < r->o->revoke_share                      ? K_REVOKE
                       : u < r->o->revoke_share + r->o->loss_share ? K_REPORT
                                                                   : K_ISSUE;
            if (want != K_ISSUE && ring_pop(r, &idx)) kind = want;
        }
        if (kind == K_ISSUE) {
            idx = atomic_fetch_add(&r->next_index, 1);
            if (idx >= r->index_limit) return MN_ENOTFOUND;
        }
        if (kind == K_ISSUE && idx < r->pre_count && r->pre_req[idx]) {
            s->req = r->pre_req[idx]; /* the slot owns it from here */
            s->req_len = r->pre_len[idx];
            r->pre_req[idx] = NULL;
            s->kind = K_ISSUE;
            s->idx = idx;
            rc = MN_OK;
        } else {
            rc = make_submit(r, w, s, kind, idx, UINT64_MAX);
        }
        if (rc != MN_OK) return rc;
        payload = s->req;
        len = s->req_len;
        method = "SubmitTx";
    }
    uint64_t id;
    if (s->kind == K_LOSS) {
        /* Pending before it is sent: a watcher may see it commit before
         * this thread runs again. */
        pthread_mutex_lock(&r->mu);
        r->recs[s->idx].t_submit_us = now_us();
        r->recs[s->idx].state = REC_PENDING;
        pthread_mutex_unlock(&r->mu);
    }
    rc = mn_client_send(c, &id, method, payload, len);
    if (rc != MN_OK) {
        if (s->kind == K_LOSS) loss_failed(r, s->idx);
        slot_clear(s);
        snprintf(w->err, sizeof w->err, "send: %s", mn_strerror(rc));
        return rc;
    }
    if (s->kind == K_LOSS) {
        w->losses++;
    } else if (s->kind == K_ISSUE) {
        w->issued++;
    } else if (s->kind == K_REPORT) {
        w->losses++;
    } else if (s->kind == K_REVOKE) {
        w->revokes++;
    }
    s->used = true;
    s->id = id;
    s->t0_us = t0;
    w->inflight++;
    return MN_OK;
}

static int recv_one(worker *w, mn_client *c) {
    run *r = w->r;
    Midnode__RpcResponse *resp = NULL;
    int rc = mn_client_recv(c, &resp);
    if (rc != MN_OK) {
        snprintf(w->err, sizeof w->err, "recv: %s", mn_strerror(rc));
        return rc;
    }
    slot *s = NULL;
    for (uint32_t i = 0; i < r->ph.depth; i++)
        if (w->slots[i].used && w->slots[i].id == resp->id) {
            s = &w->slots[i];
            break;
        }
    if (!s) {
        midnode__rpc_response__free_unpacked(resp, NULL);
        snprintf(w->err, sizeof w->err, "response to unknown id %llu", (unsigned long long)resp->id);
        return MN_ECORRUPT;
    }
    uint64_t t = now_us();
    w->last_us = t;
    int code = resp->code;
    bool busy = code == MIDNODE__RPC_CODE__RPC_OVERLOADED || code == MIDNODE__RPC_CODE__RPC_UNAVAILABLE ||
                (code == MIDNODE__RPC_CODE__RPC_TX_REJECTED && resp->tx_code == MIDNODE__TX_CODE__TX_MEMPOOL_FULL);
    if (busy && s->kind != K_STATUS) {
        /* Same bytes again, so the nonce sequence has no hole. */
        midnode__rpc_response__free_unpacked(resp, NULL);
        w->retries++;
        sleep_us(2000);
        uint64_t id;
        rc = mn_client_send(c, &id, "SubmitTx", s->req, s->req_len);
        if (rc != MN_OK) {
            snprintf(w->err, sizeof w->err, "send: %s", mn_strerror(rc));
            return rc;
        }
        s->id = id;
        return MN_OK;
    }
    bool ok = code == MIDNODE__RPC_CODE__RPC_OK ||
              (code == MIDNODE__RPC_CODE__RPC_TX_REJECTED && resp->tx_code == MIDNODE__TX_CODE__TX_DUPLICATE);
    if (s->kind == K_STATUS && code == MIDNODE__RPC_CODE__RPC_NOT_FOUND) {
        w->misses++;
        ok = true;
    } else if (s->kind == K_STATUS && ok) {
        Midnode__GetStatusResponse *st =
            midnode__get_status_response__unpack(NULL, resp->payload.len, resp->payload.data);
        if (!st) {
            ok = false;
        } else {
            if (st->status == MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN) w->misses++;
            else w->hits++;
            if (r->ph.with_proof && !st->proof) ok = false;
            midnode__get_status_response__free_unpacked(st, NULL);
        }
    }
    if (ok) {
        w->ops++;
        if (s->kind == K_ISSUE && r->ph.kind == K_MIX) ring_push(r, s->idx);
        bench_hist_record(&w->lat, t > s->t0_us ? t - s->t0_us : 0);
    } else {
        w->errors++;
        char what[64];
        snprintf(what, sizeof what, "%s %s", mn_rpc_code_name(code), mn_tx_code_name(resp->tx_code));
        log_error(r, what, resp->message ? resp->message : "");
        if (s->kind == K_LOSS) loss_failed(r, s->idx);
    }
    midnode__rpc_response__free_unpacked(resp, NULL);
    slot_clear(s);
    w->inflight--;
    return MN_OK;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    run *r = w->r;
    const phase *ph = &r->ph;
    mn_client *c = NULL;
    char cerr[200];
    int rc = mn_client_connect(&c, r->target, r->o->timeout_ms, cerr, sizeof cerr);
    if (rc != MN_OK) {
        snprintf(w->err, sizeof w->err, "connect %s: %s", r->target, cerr);
        w->fatal = rc;
        return NULL;
    }
    /* Fixed rate: this thread's share, first sends spread over one interval. */
    double interval_us = ph->rate > 0 ? 1e6 * ph->connections / ph->rate : 0;
    uint64_t next_us = now_us() + (uint64_t)(interval_us * w->index / ph->connections);
    bool sending = true;
    for (;;) {
        uint64_t now = now_us();
        if (sending && (atomic_load(&r->stop) || (ph->end_us && now >= ph->end_us))) sending = false;
        if (!sending && w->inflight == 0) break;
        if (sending && w->inflight < ph->depth) {
            uint64_t t0 = now;
            if (ph->rate > 0) {
                if (now < next_us) {
                    if (w->inflight > 0) goto receive;
                    uint64_t wait = next_us - now;
                    sleep_us(wait > 100000 ? 100000 : wait);
                    continue;
                }
                t0 = next_us;
                next_us += (uint64_t)interval_us;
            }
            rc = send_new(w, c, t0);
            if (rc == MN_ENOTFOUND) {
                sending = false;
                continue;
            }
            if (rc != MN_OK) {
                w->fatal = rc;
                break;
            }
            continue;
        }
    receive:
        rc = recv_one(w, c);
        if (rc != MN_OK) {
            w->fatal = rc;
            break;
        }
    }
    for (uint32_t i = 0; i < ph->depth; i++)
        if (w->slots[i].used) {
            if (w->slots[i].kind == K_LOSS) loss_failed(r, w->slots[i].idx);
            w->errors++;
            slot_clear(&w->slots[i]);
        }
    mn_client_free(c);
    return NULL;
}

/* Runs one phase with fresh workers and adds their figures to res. */
static int run_phase(run *r, bench_result *res, bool count_it, char *err, size_t err_len) {
    const phase *ph = &r->ph;
    worker *ws = calloc(ph->connections, sizeof *ws);
    if (!ws) return MN_ENOMEM;
    int rc = MN_OK;
    uint32_t started = 0;
    uint64_t seed = now_us() ^ ((uint64_t)getpid() << 32);
    for (uint32_t i = 0; i < ph->connections; i++) {
        worker *w = &ws[i];
        w->r = r;
        w->index = i;
        w->rng = seed + i * 0x1000193ull;
        bench_hist_init(&w->lat);
        w->slots = calloc(ph->depth, sizeof *w->slots);
        if (!w->slots || pthread_create(&w->th, NULL, worker_main, w) != 0) {
            free(w->slots);
            w->slots = NULL;
            snprintf(err, err_len, "cannot start thread %u", i);
            rc = MN_ENOMEM;
            atomic_store(&r->stop, true);
            break;
        }
        started++;
    }
    for (uint32_t i = 0; i < started; i++) {
        worker *w = &ws[i];
        pthread_join(w->th, NULL);
        if (w->fatal && rc == MN_OK) {
            rc = w->fatal;
            snprintf(err, err_len, "%s", w->err);
        }
        if (count_it) {
            bench_hist_merge(&res->lat, &w->lat);
            res->ops += w->ops;
            res->errors += w->errors;
            res->hits += w->hits;
            res->misses += w->misses;
            res->loss_reports += w->losses;
            res->issued += w->issued;
            res->revocations += w->revokes;
        } else {
            res->errors += w->errors;
        }
        res->retries += w->retries;
        free(w->slots);
    }
    free(ws);
    return rc;
}

/* ---- propagation watchers ----
 *
 * One thread per node follows the node's WatchStatusChanges stream, which
 * the node pushes as each block commits (after which a read answers with
 * the new status). A loss report counts as propagated when every node has
 * streamed its SUSPENDED change; read_back then reads each one from every
 * node. Polling each node for the pending ids instead cost the nodes most
 * of a core at 2,500 tx/s, which the measurement then measured. */

#define WATCH_IDLE_TIMEOUT_MS 1000

/* Open-addressed map of the tracked credential ids to their indices. */
typedef struct loss_index {
    uint8_t (*ids)[MN_ID_LEN];
    uint64_t *slots; /* index + 1; 0 = empty */
    size_t mask;
} loss_index;

static uint64_t id_key(const uint8_t *id) {
    uint64_t k;
    memcpy(&k, id, sizeof k);
    return k;
}

static int loss_index_build(loss_index *li, uint64_t ns, uint64_t count) {
    size_t cap = 16;
    while (cap < count * 2) cap *= 2;
    li->ids = malloc((count ? count : 1) * MN_ID_LEN);
    li->slots = calloc(cap, sizeof *li->slots);
    li->mask = cap - 1;
    if (!li->ids || !li->slots) return MN_ENOMEM;
    for (uint64_t i = 0; i < count; i++) {
        bench_cred_id(li->ids[i], ns, i);
        size_t k = (size_t)id_key(li->ids[i]) & li->mask;
        while (li->slots[k]) k = (k + 1) & li->mask;
        li->slots[k] = i + 1;
    }
    return MN_OK;
}

static bool loss_index_find(const loss_index *li, const uint8_t *id, uint64_t *idx) {
    for (size_t k = (size_t)id_key(id) & li->mask; li->slots[k]; k = (k + 1) & li->mask) {
        uint64_t i = li->slots[k] - 1;
        if (memcmp(li->ids[i], id, MN_ID_LEN) == 0) {
            *idx = i;
            return true;
        }
    }
    return false;
}

static void loss_index_free(loss_index *li) {
    free(li->ids);
    free(li->slots);
}

typedef struct watcher {
    run *r;
    const loss_index *li;
    const char *addr;
    uint32_t bit;
    uint64_t from_height; /* first height to stream */
    mn_client *c;
    uint64_t stream;
    pthread_t th;
    int fatal;
    char err[256];
} watcher;

/* (Re)opens the stream at w->from_height. */
static int watcher_open(watcher *w) {
    char cerr[200];
    mn_client_free(w->c);
    w->c = NULL;
    int rc = mn_client_connect(&w->c, w->addr, w->r->o->timeout_ms, cerr, sizeof cerr);
    if (rc != MN_OK) {
        snprintf(w->err, sizeof w->err, "connect %s: %s", w->addr, cerr);
        return rc;
    }
    if (w->from_height == 0) {
        Midnode__GetChainInfoResponse *info = NULL;
        rc = mn_client_get_chain_info(w->c, &info);
        if (rc != MN_OK) {
            snprintf(w->err, sizeof w->err, "GetChainInfo on %s: %s", w->addr, mn_strerror(rc));
            return rc;
        }
        w->from_height = info->height + 1;
        midnode__get_chain_info_response__free_unpacked(info, NULL);
    }
    /* An idle stream (no change for a while) times the client out; the
     * thread then reopens it where it was, or ends when the run stops. */
    mn_client_set_timeout(w->c, WATCH_IDLE_TIMEOUT_MS);
    rc = mn_client_watch_start(w->c, w->from_height, &w->stream);
    if (rc != MN_OK) snprintf(w->err, sizeof w->err, "WatchStatusChanges on %s: %s", w->addr, mn_strerror(rc));
    return rc;
}

static void *watcher_main(void *arg) {
    watcher *w = arg;
    run *r = w->r;
    while (!atomic_load(&r->stop)) {
        Midnode__StatusChange *ch = NULL;
        int rc = mn_client_watch_next(w->c, w->stream, &ch);
        if (rc != MN_OK) {
            if (atomic_load(&r->stop)) break;
            if (rc == MN_EIO || rc == MN_ENOTFOUND) {
                rc = watcher_open(w);
                if (rc == MN_OK) continue;
            } else {
                snprintf(w->err, sizeof w->err, "watch on %s: %s", w->addr, mn_strerror(rc));
            }
            w->fatal = rc;
            break;
        }
        uint64_t t = now_us();
        uint64_t idx;
        if (ch->height >= w->from_height) w->from_height = ch->height; /* a reopen repeats this block */
        if (ch->status == MIDNODE__CREDENTIAL_STATUS__SUSPENDED && ch->credential_id.len == MN_ID_LEN &&
            loss_index_find(w->li, ch->credential_id.data, &idx) && idx < r->loss_limit) {
            pthread_mutex_lock(&r->mu);
            loss_rec *rec = &r->recs[idx];
            if (rec->state == REC_PENDING) {
                rec->seen_mask |= 1ull << w->bit;
                if (rec->seen_mask == r->all_mask) {
                    rec->state = REC_DONE;
                    bench_hist_record(&r->prop, t > rec->t_submit_us ? t - rec->t_submit_us : 0);
                    r->propagated++;
                }
            }
            pthread_mutex_unlock(&r->mu);
        }
        midnode__status_change__free_unpacked(ch, NULL);
    }
    return NULL;
}

/* Reads every propagated loss report back from the node at addr; each must
 * read SUSPENDED. Counts the reads in *checked and the others in *wrong.
 * Returns MN_OK, MN_ESTATE (some were wrong) or a client error. */
static int read_back(run *r, const loss_index *li, const char *addr, uint64_t *checked, uint64_t *wrong, char *err,
                     size_t err_len) {
    mn_client *c = NULL;
    char cerr[200];
    int rc = mn_client_connect(&c, addr, r->o->timeout_ms, cerr, sizeof cerr);
    if (rc != MN_OK) {
        snprintf(err, err_len, "connect %s: %s", addr, cerr);
        return rc;
    }
    uint8_t(*ids)[MN_ID_LEN] = malloc(MN_STATUS_BATCH_MAX * MN_ID_LEN);
    if (!ids) rc = MN_ENOMEM;
    uint64_t i = 0;
    while (rc == MN_OK && i < r->loss_limit) {
        size_t n = 0;
        for (; i < r->loss_limit && n < MN_STATUS_BATCH_MAX; i++)
            if (r->recs[i].state == REC_DONE) memcpy(ids[n++], li->ids[i], MN_ID_LEN);
        if (n == 0) break;
        Midnode__GetStatusBatchResponse *b = NULL;
        rc = mn_client_get_status_batch(c, (const uint8_t(*)[MN_ID_LEN])ids, n, false, &b);
        if (rc != MN_OK) {
            snprintf(err, err_len, "GetStatusBatch on %s: %s", addr, mn_strerror(rc));
            break;
        }
        for (size_t k = 0; k < n; k++)
            if (k >= b->n_statuses || b->statuses[k]->status != MIDNODE__CREDENTIAL_STATUS__SUSPENDED ||
                b->statuses[k]->credential_id.len != MN_ID_LEN ||
                memcmp(b->statuses[k]->credential_id.data, ids[k], MN_ID_LEN) != 0)
                (*wrong)++;
        *checked += n;
        midnode__get_status_batch_response__free_unpacked(b, NULL);
    }
    free(ids);
    mn_client_free(c);
    if (rc == MN_OK && *wrong) {
        snprintf(err, err_len, "%llu propagated loss reports do not read SUSPENDED on %s", (unsigned long long)*wrong,
                 addr);
        rc = MN_ESTATE;
    }
    return rc;
}

static bool losses_settled(run *r) {
    pthread_mutex_lock(&r->mu);
    uint64_t limit = atomic_load(&r->next_loss);
    if (limit > r->loss_limit) limit = r->loss_limit;
    bool settled = true;
    for (uint64_t i = 0; i < limit && settled; i++)
        if (r->recs[i].state == REC_PENDING) settled = false;
    pthread_mutex_unlock(&r->mu);
    return settled;
}

/* ---- set-up ---- */

/* ---- signing before the timed window ----
 *
 * The etcd driver sends unsigned puts; midbench's own signing (tens of
 * microseconds per tx) would otherwise take CPU from the validators on the
 * same machine inside the measured window. Issuance `idx` is signed here with
 * the nonce it would have got when sent (nonces are handed out in index
 * order, as workers claim indices in order), so the requests are the same
 * bytes as on-the-fly ones. Indices past the pool are signed when sent. */
#define PRESIGN_PER_S 6000
#define PRESIGN_MAX 200000
#define PRESIGN_THREADS 2

typedef struct presign_job {
    run *r;
    uint64_t *nonces;
    uint64_t from, step;
    int rc;
    worker w; /* scratch for error text */
} presign_job;

static void *presign_main(void *arg) {
    presign_job *j = arg;
    run *r = j->r;
    for (uint64_t idx = j->from; idx < r->pre_count && j->rc == MN_OK; idx += j->step) {
        slot s;
        memset(&s, 0, sizeof s);
        j->rc = make_submit(r, &j->w, &s, K_ISSUE, idx, j->nonces[idx]);
        r->pre_req[idx] = s.req;
        r->pre_len[idx] = s.req_len;
    }
    return NULL;
}

static int presign(run *r, uint64_t count, char *err, size_t err_len) {
    bench_testnet *tn = r->tn;
    r->pre_req = calloc(count, sizeof *r->pre_req);
    r->pre_len = calloc(count, sizeof *r->pre_len);
    uint64_t *nonces = calloc(count, sizeof *nonces);
    if (!r->pre_req || !r->pre_len || !nonces) {
        free(nonces);
        snprintf(err, err_len, "presign: out of memory");
        return MN_ENOMEM;
    }
    for (uint64_t idx = 0; idx < count; idx++) {
        bench_signer *signer = &tn->signers[tn->issuers[idx % tn->issuer_count]];
        nonces[idx] = atomic_fetch_add(&signer->next_nonce, 1);
    }
    r->pre_count = count;
    presign_job jobs[PRESIGN_THREADS];
    pthread_t th[PRESIGN_THREADS];
    int started = 0, rc = MN_OK;
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < PRESIGN_THREADS; i++) {
        jobs[i] = (presign_job){.r = r, .nonces = nonces, .from = (uint64_t)i, .step = PRESIGN_THREADS};
        if (pthread_create(&th[i], NULL, presign_main, &jobs[i]) != 0) {
            rc = MN_ENOMEM;
            snprintf(err, err_len, "presign: cannot start a thread");
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc != MN_OK && rc == MN_OK) {
            rc = jobs[i].rc;
            snprintf(err, err_len, "presign: %s", jobs[i].w.err);
        }
    }
    free(nonces);
    if (started < PRESIGN_THREADS) r->pre_count = 0; /* nonces taken but not all signed: do not use the pool */
    return rc;
}

static void presign_free(run *r) {
    for (uint64_t i = 0; i < r->pre_count; i++) free(r->pre_req[i]);
    free(r->pre_req);
    free(r->pre_len);
    r->pre_req = NULL;
    r->pre_len = NULL;
    r->pre_count = 0;
}

static int load_nonces(run *r, char *err, size_t err_len) {
    mn_client *c = NULL;
    char cerr[200];
    int rc = mn_client_connect(&c, r->target, r->o->timeout_ms, cerr, sizeof cerr);
    if (rc != MN_OK) {
        snprintf(err, err_len, "connect %s: %s", r->target, cerr);
        return rc;
    }
    for (size_t i = 0; i < r->tn->signer_count && rc == MN_OK; i++) {
        bench_signer *s = &r->tn->signers[i];
        Midnode__GetSignerResponse *g = NULL;
        rc = mn_client_get_signer(c, s->id, &g);
        if (rc != MN_OK) {
            snprintf(err, err_len, "GetSigner %s: %s (%s)", s->id, mn_strerror(rc), mn_client_last(c)->message);
            break;
        }
        atomic_store(&s->next_nonce, g->next_nonce ? g->next_nonce : g->last_nonce + 1);
        midnode__get_signer_response__free_unpacked(g, NULL);
    }
    mn_client_free(c);
    return rc;
}

int bench_run(const bench_opts *o, bench_result *res, char *err, size_t err_len) {
    memset(res, 0, sizeof *res);
    bench_hist_init(&res->lat);
    bench_hist_init(&res->prop);
    res->workload = bench_workload_name(o->workload);
    static bench_testnet tn; /* large; one run per process */
    run *r = calloc(1, sizeof *r);
    if (!r) return MN_ENOMEM;
    r->o = o;
    r->index_limit = UINT64_MAX;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->ring_mu, NULL);
    bench_hist_init(&r->prop);
    int rc = MN_OK;
    if (o->testnet[0]) {
        rc = bench_testnet_load(&tn, o->testnet, err, err_len);
        if (rc != MN_OK) goto out;
        r->tn = &tn;
    }
    r->target = o->node[0] ? o->node : r->tn ? tn.nodes[0] : MN_CLIENT_DEFAULT_NODE;
    r->ns = now_us() ^ ((uint64_t)getpid() << 40) ^ 0x6d69646265ull;
    if (r->tn) {
        rc = load_nonces(r, err, err_len);
        if (rc != MN_OK) goto out;
    }
    phase *ph = &r->ph;
    ph->connections = o->connections;
    ph->depth = o->depth;
    ph->rate = o->rate;
    uint64_t t_start = now_us();
    switch (o->workload) {
    case BENCH_STATUS:
    case BENCH_STATUS_PROOF:
        ph->kind = K_STATUS;
        ph->with_proof = o->workload == BENCH_STATUS_PROOF;
        ph->end_us = t_start + (uint64_t)(o->duration_s * 1e6);
        if (o->rate > 0) rc = run_phase(r, res, true, err, err_len);
        else rc = bench_status_fast(o, r->target, ph->with_proof, res, err, err_len);
        break;
    case BENCH_SUBMIT:
        ph->kind = o->loss_share > 0 || o->revoke_share > 0 ? K_MIX : K_ISSUE;
        ph->wait_commit = true;
        if (ph->kind == K_ISSUE && r->tn) {
            double want = o->duration_s * PRESIGN_PER_S;
            rc = presign(r, want > PRESIGN_MAX ? PRESIGN_MAX : (uint64_t)want, err, err_len);
            if (rc != MN_OK) break;
        }
        t_start = now_us(); /* the timed window starts after signing */
        ph->end_us = t_start + (uint64_t)(o->duration_s * 1e6);
        rc = run_phase(r, res, true, err, err_len);
        break;
    case BENCH_PRELOAD:
        ph->kind = K_ISSUE;
        ph->wait_commit = true;
        r->ns = o->seed;
        r->index_limit = o->batch > 1 ? (o->count + o->batch - 1) / o->batch : o->count;
        rc = run_phase(r, res, true, err, err_len);
        if (o->batch > 1) {
            /* Every batch but perhaps the last is full; a refused one is an error. */
            uint64_t c = res->ops * o->batch;
            res->credentials = res->errors == 0 ? o->count : c < o->count ? c : o->count;
        }
        break;
    case BENCH_PROPAGATION: {
        /* Set-up: the credentials whose devices will be reported lost. */
        uint64_t need = (uint64_t)(o->rate * o->duration_s * o->loss_share * 1.2) + 16;
        r->recs = calloc(need, sizeof *r->recs);
        if (!r->recs) {
            rc = MN_ENOMEM;
            break;
        }
        r->loss_limit = need;
        r->index_limit = need;
        ph->kind = K_ISSUE;
        ph->wait_commit = true;
        ph->rate = 0;
        ph->depth = SETUP_DEPTH;
        ph->end_us = 0;
        rc = run_phase(r, res, false, err, err_len);
        if (rc != MN_OK) break;
        if (res->errors) {
            snprintf(err, err_len, "set-up issuance failed (%llu errors)", (unsigned long long)res->errors);
            rc = MN_ESTATE;
            break;
        }
        r->index_limit = UINT64_MAX;
        size_t np = o->node_count ? o->node_count : tn.node_count;
        if (np > 64) np = 64;
        r->all_mask = np == 64 ? UINT64_MAX : (1ull << np) - 1;
        loss_index li;
        memset(&li, 0, sizeof li);
        watcher ws[64];
        memset(ws, 0, sizeof ws);
        size_t started = 0;
        rc = loss_index_build(&li, r->ns, r->loss_limit);
        if (rc != MN_OK) snprintf(err, err_len, "out of memory");
        /* Streams open (at the next height) before the first loss report. */
        for (size_t i = 0; rc == MN_OK && i < np; i++) {
            ws[i] = (watcher){.r = r, .li = &li, .addr = o->node_count ? o->nodes[i] : tn.nodes[i], .bit = (uint32_t)i};
            rc = watcher_open(&ws[i]);
            if (rc != MN_OK) snprintf(err, err_len, "%s", ws[i].err);
        }
        for (size_t i = 0; rc == MN_OK && i < np; i++) {
            if (pthread_create(&ws[i].th, NULL, watcher_main, &ws[i]) != 0) {
                snprintf(err, err_len, "cannot start the watchers");
                rc = MN_ENOMEM;
                break;
            }
            started++;
        }
        if (rc == MN_OK) {
            ph->kind = K_LOSS;
            ph->wait_commit = false;
            ph->rate = o->rate;
            ph->depth = o->depth;
            t_start = now_us();
            ph->end_us = t_start + (uint64_t)(o->duration_s * 1e6);
            rc = run_phase(r, res, true, err, err_len);
            uint64_t deadline = now_us() + DRAIN_S_MAX * 1000000ull;
            while (rc == MN_OK && !losses_settled(r) && now_us() < deadline) sleep_us(10000);
        }
        atomic_store(&r->stop, true);
        for (size_t i = 0; i < started; i++) {
            pthread_join(ws[i].th, NULL);
            if (ws[i].fatal && rc == MN_OK) {
                rc = ws[i].fatal;
                snprintf(err, err_len, "%s", ws[i].err);
            }
        }
        for (size_t i = 0; i < np; i++) mn_client_free(ws[i].c);
        for (size_t i = 0; rc == MN_OK && i < np; i++) {
            uint64_t wrong = 0, checked = 0;
            rc = read_back(r, &li, ws[i].addr, &checked, &wrong, err, err_len);
            res->read_back += checked - wrong;
        }
        loss_index_free(&li);
        res->prop = r->prop;
        res->propagated = r->propagated;
        res->nodes = np;
        /* A loss report never seen everywhere is an error of the run. */
        res->errors += res->loss_reports > res->propagated ? res->loss_reports - res->propagated : 0;
        break;
    }
    case BENCH_ETCD_PUT:
        snprintf(err, err_len, "etcd-put runs through bench_run_etcd");
        rc = MN_EINVAL;
        break;
    }
    res->elapsed_s = (double)(now_us() - t_start) / 1e6;
out:
    presign_free(r);
    free(r->recs);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->ring_mu);
    free(r);
    if (o->testnet[0]) bench_testnet_free(&tn);
    return rc;
}

/* ---- output ---- */

static double ms(double us) { return us / 1000.0; }

void bench_print(FILE *f, const bench_opts *o, const bench_result *r, bool json) {
    double tput = r->elapsed_s > 0 ? (double)r->ops / r->elapsed_s : 0;
    const bench_histogram *h = &r->lat;
    if (json) {
        fprintf(f,
                "{\"workload\": \"%s\", \"mode\": \"%s\", \"connections\": %u, \"depth\": %u, \"rate\": %.1f, "
                "\"elapsed_s\": %.3f, \"ops\": %llu, \"errors\": %llu, \"retries\": %llu, \"throughput\": %.1f, "
                "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"mean_ms\": %.3f",
                r->workload, o->rate > 0 ? "rate" : "closed", o->connections, o->depth, o->rate, r->elapsed_s,
                (unsigned long long)r->ops, (unsigned long long)r->errors, (unsigned long long)r->retries, tput,
                ms(bench_hist_quantile(h, 0.5)), ms(bench_hist_quantile(h, 0.9)), ms(bench_hist_quantile(h, 0.99)),
                ms((double)(h->count ? h->max : 0)), ms(bench_hist_mean(h)));
        if (o->workload == BENCH_STATUS || o->workload == BENCH_STATUS_PROOF)
            fprintf(f, ", \"hits\": %llu, \"misses\": %llu", (unsigned long long)r->hits,
                    (unsigned long long)r->misses);
        if (o->workload == BENCH_SUBMIT || o->workload == BENCH_PRELOAD)
            fprintf(f, ", \"issued\": %llu, \"loss_reports\": %llu, \"revocations\": %llu",
                    (unsigned long long)r->issued, (unsigned long long)r->loss_reports,
                    (unsigned long long)r->revocations);
        if (o->workload == BENCH_PRELOAD && o->batch > 1)
            fprintf(f, ", \"batch\": %u, \"credentials\": %llu, \"credentials_per_s\": %.1f", o->batch,
                    (unsigned long long)r->credentials, r->elapsed_s > 0 ? (double)r->credentials / r->elapsed_s : 0);
        if (o->workload == BENCH_PROPAGATION) {
            const bench_histogram *p = &r->prop;
            fprintf(f,
                    ", \"issued\": %llu, \"loss_reports\": %llu, \"propagated\": %llu, \"nodes\": %zu, "
                    "\"propagation_p50_ms\": %.3f, \"propagation_p90_ms\": %.3f, \"propagation_p99_ms\": %.3f, "
                    "\"propagation_max_ms\": %.3f, \"read_back\": %llu",
                    (unsigned long long)r->issued, (unsigned long long)r->loss_reports,
                    (unsigned long long)r->propagated, r->nodes, ms(bench_hist_quantile(p, 0.5)),
                    ms(bench_hist_quantile(p, 0.9)), ms(bench_hist_quantile(p, 0.99)),
                    ms((double)(p->count ? p->max : 0)), (unsigned long long)r->read_back);
        }
        fprintf(f, "}\n");
        return;
    }
    fprintf(f, "%s (%s, %u connections x %u in flight%s): %llu ok, %llu errors in %.2f s = %.1f/s\n", r->workload,
            o->rate > 0 ? "fixed rate" : "closed loop", o->connections, o->depth, o->rate > 0 ? ", rate set" : "",
            (unsigned long long)r->ops, (unsigned long long)r->errors, r->elapsed_s, tput);
    fprintf(f, "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n", ms(bench_hist_quantile(h, 0.5)),
            ms(bench_hist_quantile(h, 0.9)), ms(bench_hist_quantile(h, 0.99)), ms((double)(h->count ? h->max : 0)),
            ms(bench_hist_mean(h)));
    if (o->workload == BENCH_STATUS || o->workload == BENCH_STATUS_PROOF)
        fprintf(f, "hits %llu, misses %llu\n", (unsigned long long)r->hits, (unsigned long long)r->misses);
    if (o->workload == BENCH_PROPAGATION) {
        const bench_histogram *p = &r->prop;
        fprintf(f, "issued %llu, loss reports %llu, SUSPENDED everywhere %llu (read back %llu)\n",
                (unsigned long long)r->issued, (unsigned long long)r->loss_reports, (unsigned long long)r->propagated,
                (unsigned long long)r->read_back);
        fprintf(f, "propagation ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", ms(bench_hist_quantile(p, 0.5)),
                ms(bench_hist_quantile(p, 0.9)), ms(bench_hist_quantile(p, 0.99)),
                ms((double)(p->count ? p->max : 0)));
    }
    if (o->workload == BENCH_SUBMIT)
        fprintf(f, "issued %llu, loss reports %llu, revocations %llu\n", (unsigned long long)r->issued,
                (unsigned long long)r->loss_reports, (unsigned long long)r->revocations);
    if (o->workload == BENCH_PRELOAD && o->batch > 1)
        fprintf(f, "credentials %llu in batches of %u = %.1f/s\n", (unsigned long long)r->credentials, o->batch,
                r->elapsed_s > 0 ? (double)r->credentials / r->elapsed_s : 0);
    if (r->retries) fprintf(f, "resubmissions after OVERLOADED/MEMPOOL_FULL: %llu\n", (unsigned long long)r->retries);
}
