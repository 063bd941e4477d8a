/* node_ops.c: what the operator sees: Prometheus metrics, /healthz and
 * /status of a running node. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "node_internal.h"

static double gauge_mempool(void *arg) { return (double)mn_mempool_count(((struct mn_node *)arg)->mempool); }
static double gauge_peers(void *arg)
{
    struct mn_node *n = arg;
    return n->net ? (double)mn_net_peer_count(n->net) : 0;
}
static double gauge_waiters(void *arg) { return (double)((struct mn_node *)arg)->waiter_count; }
static double gauge_watchers(void *arg) { return (double)((struct mn_node *)arg)->watcher_count; }
static double gauge_sig_verifies(void *arg)
{
    (void)arg;
    return (double)mn_verify_count();
}
static double gauge_rpc_conns(void *arg)
{
    struct mn_node *n = arg;
    if (!n->rpc) return 0;
    mn_rpc_stats st;
    mn_rpc_get_stats(n->rpc, &st);
    return (double)st.connections_open;
}

static mn_read_cache_stats cache_stats(void *arg)
{
    struct mn_node *n = arg;
    mn_read_cache_stats rs;
    mn_ledger_read_cache_stats(n->ledger, &rs);
    return rs;
}
static double gauge_cache_store_reads(void *arg) { return (double)cache_stats(arg).store_reads; }
static double gauge_cache_absent_known(void *arg) { return (double)cache_stats(arg).absent_known; }
static double gauge_cache_warm(void *arg) { return cache_stats(arg).ids_complete ? 1 : 0; }

int node_metrics_init(struct mn_node *n)
{
    struct mn_metrics *m = n->metrics;
    n->m_blocks = mn_metrics_counter(m, "midnode_blocks_committed_total", "Blocks committed by this node.", NULL);
    n->m_txs_committed = mn_metrics_counter(m, "midnode_txs_committed_total", "Transactions in committed blocks.", NULL);
    n->m_tx_accepted = mn_metrics_counter(m, "midnode_txs_admitted_total", "Transactions admitted to the mempool.", NULL);
    n->m_tx_rejected = mn_metrics_counter(m, "midnode_txs_rejected_total", "Submitted transactions refused.", NULL);
    n->m_rpc_requests = mn_metrics_counter(m, "midnode_rpc_requests_total", "Client RPC requests handled.", NULL);
    n->m_status_queries = mn_metrics_counter(m, "midnode_status_queries_total", "Credential status lookups.", NULL);
    n->m_sync_blocks = mn_metrics_counter(m, "midnode_sync_blocks_total", "Blocks applied through catch-up sync.", NULL);
    n->m_proposals_deferred = mn_metrics_counter(
        m, "midnode_proposals_deferred_total",
        "Proposals that arrived for the height after the one being decided, kept and judged once it committed here.",
        NULL);
    n->m_evidence = mn_metrics_counter(m, "midnode_equivocations_total", "Conflicting votes detected.", NULL);
    n->m_invalid_proposals = mn_metrics_counter(m, "midnode_invalid_proposals_total", "Proposals judged invalid.", NULL);
    n->m_peer_msgs_bad = mn_metrics_counter(m, "midnode_peer_messages_refused_total", "Peer messages refused.", NULL);
    n->m_height = mn_metrics_gauge(m, "midnode_height", "Last committed height.", NULL);
    n->m_round = mn_metrics_gauge(m, "midnode_consensus_round", "Current consensus round.", NULL);
    n->m_block_interval = mn_metrics_histogram(m, "midnode_block_interval_seconds", "Time between commits.", NULL, NULL, 0, 1e-6);
    n->m_commit_latency = mn_metrics_histogram(m, "midnode_commit_latency_seconds",
                                               "From building or receiving a block to committing it.", NULL, NULL, 0, 1e-6);
    n->m_propagation = mn_metrics_histogram(m, "midnode_block_propagation_seconds",
                                            "From a block's header time to its commit on this node.", NULL, NULL, 0, 1e-6);
    n->m_rpc_latency = mn_metrics_histogram(m, "midnode_rpc_latency_seconds",
                                            "Time to answer a client request (SubmitTx without waiting).", NULL, NULL, 0, 1e-6);
    n->m_exec_time = mn_metrics_histogram(m, "midnode_block_execution_seconds", "Time to execute a proposed block.", NULL, NULL, 0, 1e-6);
    n->m_durable_write = mn_metrics_histogram(m, "midnode_durable_write_seconds",
                                              "Time of each synced write: a vote log record, or a block's commit.", NULL,
                                              NULL, 0, 1e-6);
    if (!n->m_blocks || !n->m_txs_committed || !n->m_tx_accepted || !n->m_tx_rejected || !n->m_rpc_requests ||
        !n->m_status_queries || !n->m_sync_blocks || !n->m_proposals_deferred || !n->m_evidence || !n->m_invalid_proposals ||
        !n->m_peer_msgs_bad || !n->m_height || !n->m_round || !n->m_block_interval || !n->m_exec_time ||
        !n->m_commit_latency || !n->m_propagation || !n->m_rpc_latency || !n->m_durable_write)
        return MN_ENOMEM;
    if (!mn_metrics_gauge_fn(m, "midnode_mempool_txs", "Transactions waiting in the mempool.", NULL, gauge_mempool, n) ||
        !mn_metrics_gauge_fn(m, "midnode_peers", "Peers with a live link.", NULL, gauge_peers, n) ||
        !mn_metrics_gauge_fn(m, "midnode_submit_waiters", "SubmitTx calls waiting for commit.", NULL, gauge_waiters, n) ||
        !mn_metrics_gauge_fn(m, "midnode_watch_streams", "Open status-change streams.", NULL, gauge_watchers, n) ||
        !mn_metrics_gauge_fn(m, "midnode_rpc_connections", "Open client connections.", NULL, gauge_rpc_conns, n) ||
        !mn_metrics_gauge_fn(m, "midnode_signature_verifications", "secp256k1 verifications so far.", NULL,
                             gauge_sig_verifies, n) ||
        !mn_metrics_gauge_fn(m, "midnode_status_store_reads", "Status reads the record cache sent to the store.",
                             NULL, gauge_cache_store_reads, n) ||
        !mn_metrics_gauge_fn(m, "midnode_status_absent_from_filter",
                             "Status reads of unknown ids answered by the id filter alone.", NULL,
                             gauge_cache_absent_known, n) ||
        !mn_metrics_gauge_fn(m, "midnode_read_cache_warm",
                             "1 once the id filter holds every credential (warm-up done).", NULL, gauge_cache_warm, n))
        return MN_ENOMEM;
    mn_gauge_set(n->m_height, (double)n->height);
    return MN_OK;
}

bool node_health(void *arg, char *reason, size_t reason_len)
{
    struct mn_node *n = arg;
    if (n->fatal != MN_OK) {
        snprintf(reason, reason_len, "fatal error: %s", mn_strerror(n->fatal));
        return false;
    }
    uint64_t quiet = node_mono_ms(n) - n->tip_local_ms;
    uint64_t limit = 3ull * n->genesis->params.max_block_interval_ms + 10000;
    if (n->height == 0) {
        snprintf(reason, reason_len, "no block committed yet");
        return false;
    }
    if (quiet > limit) {
        snprintf(reason, reason_len, "no block committed for %llu ms", (unsigned long long)quiet);
        return false;
    }
    if (n->is_validator && n->genesis->validator_count > 1 && n->net &&
        mn_net_peer_count(n->net) + 1 < mn_quorum(n->genesis->validator_count)) {
        snprintf(reason, reason_len, "only %zu peers: a quorum needs %u validators", mn_net_peer_count(n->net),
                 mn_quorum(n->genesis->validator_count));
        return false;
    }
    return true;
}

char *node_status_json(void *arg)
{
    struct mn_node *n = arg;
    char hash[2 * MN_HASH_LEN + 1];
    mn_hex_encode(hash, n->tip_hash, MN_HASH_LEN);
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "node_name", json_string(n->cfg.node_name));
    json_object_set_new(o, "chain_id", json_string(n->genesis->chain_id));
    json_object_set_new(o, "role", json_string(n->is_validator ? "validator" : "observer"));
    json_object_set_new(o, "height", json_integer((json_int_t)n->height));
    json_object_set_new(o, "time_ms", json_integer((json_int_t)n->tip_time_ms));
    json_object_set_new(o, "block_hash", json_string(hash));
    json_object_set_new(o, "mempool_txs", json_integer((json_int_t)mn_mempool_count(n->mempool)));
    json_object_set_new(o, "peers", json_integer(n->net ? (json_int_t)mn_net_peer_count(n->net) : 0));
    if (n->cons) {
        mn_cons_status st;
        mn_cons_get_status(n->cons, &st);
        json_object_set_new(o, "round", json_integer(st.round));
        json_object_set_new(o, "step", json_integer(st.step));
    }
    json_t *peers = json_array();
    if (peers && n->net) {
        mn_net_peer_info info[MN_NET_PEERS_MAX];
        size_t k = mn_net_peers(n->net, info, MN_NET_PEERS_MAX);
        for (size_t i = 0; i < k; i++) {
            json_t *p = json_object();
            if (!p) continue;
            json_object_set_new(p, "name", json_string(info[i].name));
            json_object_set_new(p, "up", json_boolean(info[i].up));
            for (size_t j = 0; j < n->peer_state_count; j++)
                if (strcmp(n->peer_state[j].name, info[i].name) == 0)
                    json_object_set_new(p, "height", json_integer((json_int_t)n->peer_state[j].height));
            json_array_append_new(peers, p);
        }
    }
    if (peers) json_object_set_new(o, "peer_links", peers);
    char reason[128] = "";
    bool ok = node_health(n, reason, sizeof reason);
    json_object_set_new(o, "healthy", json_boolean(ok));
    if (!ok) json_object_set_new(o, "unhealthy_reason", json_string(reason));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
