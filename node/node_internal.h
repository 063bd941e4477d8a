/* node_internal.h: the state of one running node, shared by the files that
 * make up the daemon (node.c: lifecycle and wiring; node_chain.c: consensus
 * driver, blocks, sync; node_rpc.c: client API; node_ops.c: metrics, health,
 * status). Not a public interface: nothing outside those files includes it.
 *
 * Ownership: the node owns every pointer in struct mn_node; pending blocks
 * own their bytes and their execution; waiters and watchers borrow their
 * RPC call until they reply or the call's cancel callback runs. */
#ifndef MN_NODE_INTERNAL_H
#define MN_NODE_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cert.h"
#include "config.h"
#include "cons.h"
#include "futureprop.h"
#include "genesis.h"
#include "http.h"
#include "ledger.h"
#include "mempool.h"
#include "metrics.h"
#include "midnode.pb-c.h"
#include "net.h"
#include "node.h"
#include "rpc.h"
#include "sigcache.h"
#include "store.h"

#define NODE_PENDING_MAX 64          /* blocks kept for the current height */
#define NODE_SYNC_BATCH 64           /* blocks asked per BlocksRequest */
#define NODE_SYNC_RESPONSE_BYTES (8u * 1024 * 1024)
#define NODE_TICK_MS 500             /* status announce, sync retry, expiry */
#define NODE_GOSSIP_DELAY_MS 2       /* txs admitted together travel together */
#define NODE_GOSSIP_BATCH 2000
#define NODE_VOTELOG_PRUNE_EVERY 32  /* blocks between vote log prunes */
#define NODE_WAIT_DEFAULT_MS 30000   /* SubmitTx wait_commit without a timeout */
#define NODE_WAIT_MAX_MS 120000
#define NODE_WATCH_CHUNK 2000        /* status changes sent per watcher per pump */
#define NODE_CLOCK_SKEW_MS 10000     /* a proposal's time may lead ours by this much */
#define NODE_CONS_TIMERS 5           /* indexed by MN_CONS_TIMEOUT_* */

typedef struct node_pending {
    bool used;
    uint8_t hash[MN_HASH_LEN];
    uint64_t height;
    uint8_t *block; /* serialised Block */
    size_t block_len;
    int verdict;    /* 1 valid, -1 invalid, 0 not judged yet */
    mn_exec *exec;  /* the execution behind a valid verdict */
    size_t tx_count;
    uint8_t (*tx_hashes)[MN_HASH_LEN];
    uint64_t first_seen_ms; /* monotonic: when this node built or received it */
} node_pending;

typedef struct node_waiter {
    struct node_waiter *next, *prev;
    struct mn_node *node;
    mn_rpc_call *call;
    uint8_t tx_hash[MN_HASH_LEN];
    uint64_t deadline_ms;
} node_waiter;

typedef struct node_watcher {
    struct node_watcher *next, *prev;
    struct mn_node *node;
    mn_rpc_call *call;
    uint64_t next_height; /* first height not yet streamed */
} node_watcher;

typedef struct node_peer_state {
    char name[MN_MEMBER_ID_MAX + 1];
    bool hello_ok;      /* same chain and genesis */
    bool refused;       /* wrong chain: its messages are ignored */
    bool is_observer;
    uint64_t height;    /* last committed height it announced */
} node_peer_state;

struct mn_node {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t cons_timers[NODE_CONS_TIMERS];
    struct { uint64_t height; uint32_t round; } cons_timer_arg[NODE_CONS_TIMERS];
    uv_timer_t build_timer, tick_timer, gossip_timer;
    uv_idle_t warm_idle; /* runs the read cache's warm-up (mn_ledger_warm) while the loop is idle */
    uint64_t warm_started_ms;
    bool warm_failed; /* not retried: a store error is reported by the reads themselves */
    bool handles_open;
    bool stopping;
    int fatal; /* MN_E* that forced a stop, else MN_OK */

    mn_config cfg;
    mn_genesis *genesis;
    mn_valset valset;
    bool is_validator;
    int32_t self_index;
    uint8_t cons_seckey[MN_SECKEY_LEN];
    EVP_PKEY *tls_key;
    X509 *tls_cert;

    mn_store *store;
    mn_ledger *ledger;
    struct mn_mempool *mempool;
    mn_sigcache *sigcache; /* consensus signatures already verified */
    mn_cons *cons;
    mn_net *net;
    mn_rpc *rpc;
    struct mn_http *http;
    struct mn_metrics *metrics;

    /* committed tip */
    uint64_t height;
    uint8_t tip_hash[MN_HASH_LEN];
    int64_t tip_time_ms;
    uint64_t tip_local_ms; /* our clock when the tip committed */
    /* Our clock when the mempool last went from empty to holding a
     * transaction: the batching wait counts from here (build_timing.h). */
    uint64_t mempool_since_ms;
    /* Our last build found no transaction it could take although the
     * mempool held some (each behind a nonce gap): building again waits as
     * if the mempool were empty until a transaction arrives or a block with
     * transactions commits (either may close a gap). */
    bool mempool_stalled;
    uint8_t *tip_header;   /* serialised BlockHeader of the tip */
    size_t tip_header_len;
    Midnode__CommitCertificate *tip_cert;
    uint8_t *tip_cert_bytes; /* tip_cert as stored, and its SHA-256 (the next header's last_commit_hash) */
    size_t tip_cert_len;
    uint8_t tip_cert_hash[MN_HASH_LEN];

    node_pending pending[NODE_PENDING_MAX];
    mn_futureprop future; /* proposals for the height after the one being decided */

    /* proposer: a block is owed to the engine for (need_height, need_round) */
    bool need_block;
    uint64_t need_height;
    uint32_t need_round;

    /* sync */
    size_t peer_state_count;
    node_peer_state peer_state[MN_NET_PEERS_MAX];
    uint64_t sync_inflight_until_ms;
    bool behind;

    node_waiter *waiters;
    node_watcher *watchers;
    size_t waiter_count, watcher_count;

    /* metrics */
    struct mn_counter *m_blocks, *m_txs_committed, *m_tx_accepted, *m_tx_rejected,
        *m_rpc_requests, *m_status_queries, *m_sync_blocks, *m_proposals_deferred, *m_evidence, *m_invalid_proposals,
        *m_peer_msgs_bad;
    struct mn_gauge *m_height, *m_round;
    struct mn_histogram *m_block_interval, *m_commit_latency, *m_exec_time, *m_propagation, *m_rpc_latency;
    struct mn_histogram *m_durable_write;
};

/* node.c */
uint64_t node_now_ms(void);      /* wall clock, ms since the epoch */
uint64_t node_mono_ms(struct mn_node *n);
void node_fatal(struct mn_node *n, int code, const char *what);

/* node_chain.c */
int node_chain_start(struct mn_node *n, char *err, size_t err_len);
void node_chain_stop(struct mn_node *n);
void node_on_peer_message(void *ctx, const char *peer, const uint8_t *frame, size_t len);
void node_on_peer_up(void *ctx, const char *peer);
void node_on_peer_down(void *ctx, const char *peer);
void node_on_cons_timer(uv_timer_t *t);
void node_on_build_timer(uv_timer_t *t);
void node_on_tick(uv_timer_t *t);
void node_on_warm(uv_idle_t *h);
/* Starts the read cache warm-up on the idle handle; libuv's result. */
int node_warm_start(struct mn_node *n);
void node_on_gossip_timer(uv_timer_t *t);
void node_tx_admitted(struct mn_node *n); /* a new tx entered the mempool */
int node_load_tip(struct mn_node *n);
uint64_t node_committed_nonce(void *arg, const char *signer);

/* node_rpc.c */
void node_rpc_handler(void *ctx, mn_rpc_call *call, const char *method, const uint8_t *payload, size_t len);
/* Starts the memory loads of a GetStatus about to be handled (mn_rpc_set_peek). */
void node_rpc_peek(void *ctx, int stage, const char *method, const uint8_t *payload, size_t len);
void node_rpc_after_commit(struct mn_node *n, const node_pending *committed);
void node_rpc_expire(struct mn_node *n);
void node_rpc_close_all(struct mn_node *n);
/* Admits a serialised tx: checks, mempool. Returns a TxCode; msg says why. */
int node_admit_tx(struct mn_node *n, const uint8_t *tx, size_t len, uint8_t hash[MN_HASH_LEN], char *msg,
                  size_t msg_len, bool from_peer);

/* node_ops.c */
int node_metrics_init(struct mn_node *n);
bool node_health(void *arg, char *reason, size_t reason_len);
char *node_status_json(void *arg);

#endif
