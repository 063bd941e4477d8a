/* node.c: opening a node home, wiring the modules together, the event loop,
 * and a clean stop. */
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "addr.h"
#include "crypto.h"
#include "fileio.h"
#include "log.h"
#include "node_internal.h"
#include "snapshot.h"
#include "tlskey.h"

uint64_t node_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t node_mono_ms(struct mn_node *n)
{
    uv_update_time(&n->loop);
    return uv_now(&n->loop);
}

void node_fatal(struct mn_node *n, int code, const char *what)
{
    LOG_ERROR("fatal", "what=\"%s\" code=%s action=stopping", what, mn_strerror(code));
    if (n->fatal == MN_OK) n->fatal = code;
    mn_node_stop(n);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct mn_node *n = s->data;
    LOG_INFO("signal", "signal=%d action=stopping", signum);
    mn_node_stop(n);
}

static int load_keys(struct mn_node *n, char *err, size_t err_len)
{
    uint8_t cons_pub[MN_PUBKEY_LEN];
    const uint8_t *cons_pub_ptr = NULL;
    if (n->is_validator) {
        if (mn_keyfile_read(n->cfg.consensus_key_path, n->cons_seckey, err, err_len) != MN_OK) return MN_EPERM;
        if (mn_key_pubkey(cons_pub, n->cons_seckey) != MN_OK) {
            snprintf(err, err_len, "%s: not a valid secp256k1 key", n->cfg.consensus_key_path);
            return MN_ECRYPTO;
        }
        cons_pub_ptr = cons_pub;
    }
    if (mn_tlskey_read(&n->tls_key, n->cfg.tls_key_path, err, err_len) != MN_OK) return MN_EPERM;
    uint8_t pin[MN_HASH_LEN];
    if (mn_tlskey_pin(pin, n->tls_key) != MN_OK ||
        mn_tlskey_self_signed(&n->tls_cert, n->tls_key, n->cfg.node_name) != MN_OK) {
        snprintf(err, err_len, "%s: cannot derive the TLS certificate", n->cfg.tls_key_path);
        return MN_ECRYPTO;
    }
    if (mn_config_check_genesis(&n->cfg, n->genesis, cons_pub_ptr, pin, err, err_len) != MN_OK) return MN_EPERM;
    return MN_OK;
}

static int start_net(struct mn_node *n, char *err, size_t err_len)
{
    static mn_net_peer_config peers[MN_NET_PEERS_MAX];
    size_t count = 0;
    const mn_genesis *g = n->genesis;
    for (uint32_t i = 0; i < g->validator_count; i++) {
        const mn_member *m = mn_genesis_validator(g, i);
        if (!m || (n->is_validator && (int32_t)i == n->self_index)) continue;
        mn_net_peer_config *p = &peers[count++];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", m->id);
        snprintf(p->addr, sizeof p->addr, "%s", m->p2p_addr);
        memcpy(p->pin, m->tls_pin, MN_HASH_LEN);
        p->should_dial = true;
    }
    if (n->cfg.peer_count > 0) {
        /* config.json may override where validators are reached (e.g. Docker names) */
        for (size_t i = 0; i < n->cfg.peer_count && i < count; i++)
            snprintf(peers[i].addr, sizeof peers[i].addr, "%s", n->cfg.peers[i]);
    }
    if (n->is_validator) {
        for (size_t i = 0; i < g->observer_count && count < MN_NET_PEERS_MAX; i++) {
            mn_net_peer_config *p = &peers[count++];
            memset(p, 0, sizeof *p);
            snprintf(p->name, sizeof p->name, "%s", g->observers[i].name);
            memcpy(p->pin, g->observers[i].tls_pin, MN_HASH_LEN);
            p->should_dial = false; /* observers dial in */
        }
    }
    n->peer_state_count = count;
    for (size_t i = 0; i < count; i++) {
        memset(&n->peer_state[i], 0, sizeof n->peer_state[i]);
        _Static_assert(sizeof n->peer_state[i].name == sizeof peers[i].name, "same name bound");
        memcpy(n->peer_state[i].name, peers[i].name, sizeof peers[i].name);
        n->peer_state[i].is_observer = (mn_genesis_member(g, peers[i].name) == NULL);
    }
    mn_net_config nc = {
        .name = n->cfg.node_name,
        .listen_addr = n->cfg.listen_p2p,
        .key = n->tls_key,
        .cert = n->tls_cert,
        .peers = peers,
        .peer_count = count,
        .cb = {.ctx = n,
               .on_message = node_on_peer_message,
               .on_peer_up = node_on_peer_up,
               .on_peer_down = node_on_peer_down},
    };
    return mn_net_new(&n->net, &n->loop, &nc, err, err_len);
}

static int start_rpc(struct mn_node *n, char *err, size_t err_len)
{
    mn_rpc_config rc;
    mn_rpc_config_default(&rc);
    mn_addr a;
    char aerr[128];
    if (mn_addr_parse(&a, n->cfg.listen_rpc, aerr, sizeof aerr) != MN_OK) {
        snprintf(err, err_len, "config listen.rpc: %s", aerr);
        return MN_EINVAL;
    }
    if (strlen(a.host) >= sizeof rc.host) {
        snprintf(err, err_len, "config listen.rpc: host name too long");
        return MN_EINVAL;
    }
    memcpy(rc.host, a.host, strlen(a.host) + 1);
    rc.port = a.port;
    if (n->cfg.limits.rpc_max_connections) rc.connections_max = n->cfg.limits.rpc_max_connections;
    if (n->cfg.limits.rpc_max_inflight) rc.inflight_max = n->cfg.limits.rpc_max_inflight;
    rc.idle_timeout_ms = n->cfg.limits.rpc_idle_timeout_ms;
    int st = mn_rpc_new(&n->rpc, &n->loop, &rc, node_rpc_handler, n, err, err_len);
    if (st == MN_OK) mn_rpc_set_peek(n->rpc, node_rpc_peek);
    return st;
}

static int start_http(struct mn_node *n, char *err, size_t err_len)
{
    if (n->cfg.listen_http[0] == '\0') return MN_OK;
    struct mn_http_config hc = {
        .listen = n->cfg.listen_http,
        .metrics = n->metrics,
        .health = node_health,
        .health_arg = n,
        .status = node_status_json,
        .status_arg = n,
    };
    n->http = mn_http_start(&n->loop, &hc, err, err_len);
    return n->http ? MN_OK : MN_EIO;
}

/* Imports snapshot into the node's store when it is empty (node.h); hands
 * back the state tree the import rebuilt (*tree NULL when the store already
 * held a chain). */
static int import_snapshot(struct mn_node *n, const char *snapshot, mn_nodemap **tree,
                           uint8_t root[static MN_HASH_LEN], char *err, size_t err_len)
{
    *tree = NULL;
    if (mn_store_height(n->store) != 0) {
        LOG_WARN("snapshot_import_skipped", "file=%s height=%llu reason=\"the store already holds a chain\"", snapshot,
                 (unsigned long long)mn_store_height(n->store));
        return MN_OK;
    }
    mn_snapshot_info si;
    char why[400];
    uint64_t t0 = uv_hrtime();
    int rc = mn_snapshot_import_tree(n->store, n->genesis, snapshot, &si, tree, why, sizeof why);
    if (rc != MN_OK) {
        snprintf(err, err_len, "snapshot %s: %s (remove the data directory %s before another import)", snapshot, why,
                 n->cfg.data_dir);
        return rc;
    }
    memcpy(root, si.state_root, MN_HASH_LEN);
    LOG_INFO("snapshot_imported", "file=%s height=%llu records=%llu load_ms=%llu tree_ms=%llu index_ms=%llu ms=%llu",
             snapshot, (unsigned long long)si.height, (unsigned long long)si.records, (unsigned long long)si.load_ms,
             (unsigned long long)si.tree_ms, (unsigned long long)si.index_ms,
             (unsigned long long)((uv_hrtime() - t0) / 1000000));
    return MN_OK;
}

int mn_node_open(mn_node **out, const char *home, const char *log_level, const char *snapshot, char *err,
                 size_t err_len)
{
    *out = NULL;
    struct mn_node *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, err_len, "out of memory");
        return MN_ENOMEM;
    }
    int rc = uv_loop_init(&n->loop);
    if (rc != 0) {
        snprintf(err, err_len, "uv_loop_init: %s", uv_strerror(rc));
        free(n);
        return MN_EIO;
    }
    n->handles_open = false;
    n->self_index = -1;
    *out = n; /* mn_node_free releases whatever was opened on failure */

    if ((rc = mn_config_load(&n->cfg, home, err, err_len)) != MN_OK) return rc;
    if (!log_level && n->cfg.log_level[0] && mn_log_set_level(n->cfg.log_level) != MN_OK) {
        snprintf(err, err_len, "config log_level: '%s' is not debug, info, warn or error", n->cfg.log_level);
        return MN_EINVAL;
    }
    if ((rc = mn_genesis_load(&n->genesis, n->cfg.genesis_path, err, err_len)) != MN_OK) return rc;
    if ((rc = mn_valset_from_genesis(&n->valset, n->genesis)) != MN_OK) {
        snprintf(err, err_len, "genesis: no usable validator set");
        return rc;
    }
    n->is_validator = n->cfg.is_validator;
    if (n->is_validator) {
        const mn_member *m = mn_genesis_member(n->genesis, n->cfg.member_id);
        if (!m || m->validator_index < 0) {
            snprintf(err, err_len, "config member_id '%s' is not a validator in genesis", n->cfg.member_id);
            return MN_EPERM;
        }
        n->self_index = m->validator_index;
    }
    if ((rc = load_keys(n, err, err_len)) != MN_OK) return rc;
    if ((rc = mn_mkdir_p(n->cfg.data_dir, 0700, err, err_len)) != MN_OK) return rc;
    if ((rc = mn_store_open(&n->store, n->cfg.data_dir, err, err_len)) != MN_OK) return rc;
    mn_nodemap *imported = NULL;
    uint8_t imported_root[MN_HASH_LEN] = {0};
    if (snapshot && (rc = import_snapshot(n, snapshot, &imported, imported_root, err, err_len)) != MN_OK) return rc;
    /* The state tree is built in memory from the records (ledger.h), or
     * comes from the import that just rebuilt it. */
    uint64_t tree_t0 = uv_hrtime();
    if ((rc = mn_ledger_open_with_tree(&n->ledger, n->store, n->genesis, imported, imported_root)) != MN_OK) {
        if (rc == MN_ECORRUPT)
            snprintf(err, err_len, "ledger: the stored records and nonces do not hash to the stored state root "
                     "(start from a new data directory: snapshot import or catch-up)");
        else
            snprintf(err, err_len, "ledger: cannot build the state tree: %s", mn_strerror(rc));
        return rc;
    }
    LOG_INFO("state_tree_built", "height=%llu ms=%llu", (unsigned long long)mn_ledger_height(n->ledger),
             (unsigned long long)((uv_hrtime() - tree_t0) / 1000000));
    if ((rc = mn_ledger_set_read_cache_bytes(n->ledger, (uint64_t)n->cfg.limits.read_cache_mb << 20)) != MN_OK) {
        snprintf(err, err_len, "limits.read_cache_mb: %u MB is outside the cache's range", n->cfg.limits.read_cache_mb);
        return rc;
    }
    mn_ledger_prefault_read_cache(n->ledger);
    if ((rc = node_load_tip(n)) != MN_OK) {
        snprintf(err, err_len,
                 "data directory %s does not hold a complete chain of '%s' (%s); move it away to start over",
                 n->cfg.data_dir, n->genesis->chain_id, mn_strerror(rc));
        return rc;
    }
    struct mn_mempool_config mc = {.txs_max = n->cfg.limits.mempool_max_txs,
                                   .bytes_max = (size_t)n->cfg.limits.mempool_max_bytes};
    if (!(n->mempool = mn_mempool_new(&mc, err, err_len))) return MN_EINVAL;
    if (!(n->sigcache = mn_sigcache_new())) {
        snprintf(err, err_len, "signature cache: out of memory");
        return MN_ENOMEM;
    }
    if (!(n->metrics = mn_metrics_new()) || node_metrics_init(n) != MN_OK) {
        snprintf(err, err_len, "metrics registry: out of memory");
        return MN_ENOMEM;
    }

    /* From here on handles exist: the loop must run to close them. */
    n->handles_open = true;
    if (uv_signal_init(&n->loop, &n->sigterm) || uv_signal_init(&n->loop, &n->sigint) ||
        uv_timer_init(&n->loop, &n->build_timer) || uv_timer_init(&n->loop, &n->tick_timer) ||
        uv_timer_init(&n->loop, &n->gossip_timer) || uv_idle_init(&n->loop, &n->warm_idle)) {
        snprintf(err, err_len, "libuv handle initialisation failed");
        return MN_EIO;
    }
    for (int i = 0; i < NODE_CONS_TIMERS; i++) {
        if (uv_timer_init(&n->loop, &n->cons_timers[i])) {
            snprintf(err, err_len, "libuv timer initialisation failed");
            return MN_EIO;
        }
        n->cons_timers[i].data = n;
    }
    n->sigterm.data = n->sigint.data = n;
    n->build_timer.data = n->tick_timer.data = n->gossip_timer.data = n->warm_idle.data = n;
    if (uv_signal_start(&n->sigterm, on_signal, SIGTERM) || uv_signal_start(&n->sigint, on_signal, SIGINT)) {
        snprintf(err, err_len, "cannot install signal handlers");
        return MN_EIO;
    }
    /* A peer that goes away mid-write must not kill the node. */
    signal(SIGPIPE, SIG_IGN);

    if ((rc = start_net(n, err, err_len)) != MN_OK) return rc;
    if ((rc = start_rpc(n, err, err_len)) != MN_OK) return rc;
    if ((rc = start_http(n, err, err_len)) != MN_OK) return rc;
    if ((rc = node_chain_start(n, err, err_len)) != MN_OK) return rc;
    if (uv_timer_start(&n->tick_timer, node_on_tick, NODE_TICK_MS, NODE_TICK_MS)) {
        snprintf(err, err_len, "cannot start the tick timer");
        return MN_EIO;
    }
    if (node_warm_start(n)) {
        snprintf(err, err_len, "cannot start the read cache warm-up");
        return MN_EIO;
    }
    LOG_INFO("node_started",
             "name=%s chain=%s role=%s height=%llu p2p=%s rpc=%s http=%s validators=%u",
             n->cfg.node_name, n->genesis->chain_id, n->is_validator ? "validator" : "observer",
             (unsigned long long)n->height, n->cfg.listen_p2p, n->cfg.listen_rpc, n->cfg.listen_http,
             n->genesis->validator_count);
    return MN_OK;
}

int mn_node_run(mn_node *n)
{
    if (!n->stopping) uv_run(&n->loop, UV_RUN_DEFAULT);
    LOG_INFO("node_stopped", "name=%s height=%llu clean=%s", n->cfg.node_name,
             (unsigned long long)n->height, n->fatal == MN_OK ? "yes" : "no");
    return n->fatal;
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h)) uv_close(h, NULL);
}

void mn_node_stop(mn_node *n)
{
    if (n->stopping) return;
    n->stopping = true;
    node_rpc_close_all(n);
    if (n->rpc) {
        mn_rpc_free(n->rpc);
        n->rpc = NULL;
    }
    if (n->http) {
        mn_http_stop(n->http);
        n->http = NULL;
    }
    if (n->net) {
        mn_net_free(n->net);
        n->net = NULL;
    }
    if (n->handles_open) {
        close_handle((uv_handle_t *)&n->sigterm);
        close_handle((uv_handle_t *)&n->sigint);
        close_handle((uv_handle_t *)&n->build_timer);
        close_handle((uv_handle_t *)&n->tick_timer);
        close_handle((uv_handle_t *)&n->gossip_timer);
        close_handle((uv_handle_t *)&n->warm_idle);
        for (int i = 0; i < NODE_CONS_TIMERS; i++) close_handle((uv_handle_t *)&n->cons_timers[i]);
    }
}

void mn_node_free(mn_node *n)
{
    if (!n) return;
    mn_node_stop(n);
    /* let close callbacks of every handle run before the loop is closed */
    uv_run(&n->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&n->loop) != 0) LOG_WARN("loop_close", "reason=\"handles still open\"");
    node_chain_stop(n);
    mn_cons_free(n->cons);
    mn_mempool_free(n->mempool);
    mn_sigcache_free(n->sigcache);
    mn_ledger_free(n->ledger);
    mn_store_close(n->store);
    mn_metrics_free(n->metrics);
    mn_genesis_free(n->genesis);
    free(n->tip_header);
    if (n->tip_cert) midnode__commit_certificate__free_unpacked(n->tip_cert, NULL);
    free(n->tip_cert_bytes);
    X509_free(n->tls_cert);
    EVP_PKEY_free(n->tls_key);
    mn_cleanse(n->cons_seckey, sizeof n->cons_seckey);
    free(n);
}
