/* config.c: reads, checks and writes a node home's config.json. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "addr.h"
#include "crypto.h"
#include "fileio.h"
#include "jsonf.h"

void mn_limits_default(mn_limits *l) {
    l->rpc_max_connections = 1024;
    l->rpc_max_inflight = 64;
    l->rpc_idle_timeout_ms = 60000;
    l->mempool_max_txs = 50000;
    l->mempool_max_bytes = 64ull * 1024 * 1024;
    l->read_cache_mb = 512;
}

/* Homes are bounded to MN_PATH_MAX / 2 by mn_config_load, so a join fits;
 * a path that would not fit becomes "" and fails loudly at open. */
static void join(char *out, size_t out_len, const char *home, const char *rel) {
    int n = rel[0] == '/' ? snprintf(out, out_len, "%s", rel) : snprintf(out, out_len, "%s/%s", home, rel);
    if (n < 0 || (size_t)n >= out_len) out[0] = '\0';
}

static void derive_paths(mn_config *cfg) {
    join(cfg->genesis_path, sizeof cfg->genesis_path, cfg->home, "genesis.json");
    join(cfg->consensus_key_path, sizeof cfg->consensus_key_path, cfg->home, "keys/consensus.key");
    join(cfg->tls_key_path, sizeof cfg->tls_key_path, cfg->home, "keys/tls.pem");
}

void mn_config_default(mn_config *cfg, const char *home, const char *name, bool is_validator) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->home, sizeof cfg->home, "%s", home);
    snprintf(cfg->node_name, sizeof cfg->node_name, "%s", name);
    cfg->is_validator = is_validator;
    if (is_validator) snprintf(cfg->member_id, sizeof cfg->member_id, "%s", name);
    join(cfg->data_dir, sizeof cfg->data_dir, home, "data");
    snprintf(cfg->log_level, sizeof cfg->log_level, "info");
    mn_limits_default(&cfg->limits);
    derive_paths(cfg);
}

static int get_addr(const json_t *obj, const char *prefix, const char *key, char *out, char *err, size_t err_len) {
    int rc = mn_jf_string(obj, prefix, key, true, out, MN_ADDR_MAX - 1, err, err_len);
    if (rc) return rc;
    mn_addr a;
    char aerr[160];
    if (mn_addr_parse(&a, out, aerr, sizeof aerr) != MN_OK) {
        char path[64];
        mn_jf_path(path, sizeof path, prefix, key);
        snprintf(err, err_len, "%s: %s", path, aerr);
        return MN_EINVAL;
    }
    return MN_OK;
}

static int parse(mn_config *cfg, const json_t *root, char *err, size_t err_len) {
    static const char *const allowed[] = {"node_name", "role",   "member_id", "listen", "data_dir",
                                          "log_level", "limits", "peers",     NULL};
    static const char *const l_allowed[] = {"p2p", "rpc", "http", NULL};
    static const char *const lim_allowed[] = {"rpc_max_connections", "rpc_max_inflight", "rpc_idle_timeout_ms",
                                              "mempool_max_txs", "mempool_max_bytes", "read_cache_mb", NULL};
    if (!json_is_object(root)) {
        snprintf(err, err_len, "config: expected a JSON object");
        return MN_EINVAL;
    }
    int rc = mn_jf_only(root, "", allowed, err, err_len);
    if (rc) return rc;
    rc = mn_jf_string(root, "", "node_name", true, cfg->node_name, MN_MEMBER_ID_MAX, err, err_len);
    if (rc) return rc;
    char role[16];
    rc = mn_jf_string(root, "", "role", true, role, sizeof role - 1, err, err_len);
    if (rc) return rc;
    if (strcmp(role, "validator") == 0) {
        cfg->is_validator = true;
    } else if (strcmp(role, "observer") == 0) {
        cfg->is_validator = false;
    } else {
        snprintf(err, err_len, "role: expected \"validator\" or \"observer\"");
        return MN_EINVAL;
    }
    rc = mn_jf_string(root, "", "member_id", cfg->is_validator, cfg->member_id, MN_MEMBER_ID_MAX, err, err_len);
    if (rc) return rc;
    if (!cfg->is_validator && cfg->member_id[0]) {
        snprintf(err, err_len, "member_id: an observer has no member id");
        return MN_EINVAL;
    }
    json_t *listen = json_object_get(root, "listen");
    if (!json_is_object(listen)) {
        snprintf(err, err_len, "listen: expected {\"p2p\", \"rpc\", \"http\"}");
        return MN_EINVAL;
    }
    rc = mn_jf_only(listen, "listen", l_allowed, err, err_len);
    if (rc) return rc;
    rc = get_addr(listen, "listen", "p2p", cfg->listen_p2p, err, err_len);
    if (rc) return rc;
    rc = get_addr(listen, "listen", "rpc", cfg->listen_rpc, err, err_len);
    if (rc) return rc;
    rc = get_addr(listen, "listen", "http", cfg->listen_http, err, err_len);
    if (rc) return rc;
    char data[MN_PATH_MAX / 2] = "data";
    rc = mn_jf_string(root, "", "data_dir", false, data, sizeof data - 1, err, err_len);
    if (rc) return rc;
    join(cfg->data_dir, sizeof cfg->data_dir, cfg->home, data);
    rc = mn_jf_string(root, "", "log_level", false, cfg->log_level, sizeof cfg->log_level - 1, err, err_len);
    if (rc) return rc;
    static const char *const levels[] = {"debug", "info", "warn", "error", "off"};
    bool level_ok = false;
    for (size_t i = 0; i < 5; i++) level_ok |= strcmp(levels[i], cfg->log_level) == 0;
    if (!level_ok) {
        snprintf(err, err_len, "log_level: expected debug, info, warn, error or off");
        return MN_EINVAL;
    }
    json_t *lim = json_object_get(root, "limits");
    if (lim) {
        if (!json_is_object(lim)) {
            snprintf(err, err_len, "limits: expected an object");
            return MN_EINVAL;
        }
        rc = mn_jf_only(lim, "limits", lim_allowed, err, err_len);
        if (rc) return rc;
        struct { const char *key; uint32_t *dst; int64_t max; } f[] = {
            {"rpc_max_connections", &cfg->limits.rpc_max_connections, 1000000},
            {"rpc_max_inflight", &cfg->limits.rpc_max_inflight, 100000},
            {"rpc_idle_timeout_ms", &cfg->limits.rpc_idle_timeout_ms, 86400000},
            {"mempool_max_txs", &cfg->limits.mempool_max_txs, 10000000},
            {"read_cache_mb", &cfg->limits.read_cache_mb, 65536},
        };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
            int64_t v = *f[i].dst;
            rc = mn_jf_int(lim, "limits", f[i].key, false, 1, f[i].max, &v, err, err_len);
            if (rc) return rc;
            *f[i].dst = (uint32_t)v;
        }
        int64_t v = (int64_t)cfg->limits.mempool_max_bytes;
        rc = mn_jf_int(lim, "limits", "mempool_max_bytes", false, MN_TX_BYTES_MAX, 64ll * 1024 * 1024 * 1024, &v,
                       err, err_len);
        if (rc) return rc;
        cfg->limits.mempool_max_bytes = (uint64_t)v;
    }
    json_t *peers = json_object_get(root, "peers");
    if (peers) {
        if (!json_is_array(peers) || json_array_size(peers) > MN_CONFIG_PEERS_MAX) {
            snprintf(err, err_len, "peers: expected an array of at most %d \"host:port\"", MN_CONFIG_PEERS_MAX);
            return MN_EINVAL;
        }
        size_t i;
        json_t *p;
        json_array_foreach(peers, i, p) {
            char pre[32];
            snprintf(pre, sizeof pre, "peers[%zu]", i);
            mn_addr a;
            char aerr[160];
            if (!json_is_string(p) || json_string_length(p) >= MN_ADDR_MAX ||
                mn_addr_parse(&a, json_string_value(p), aerr, sizeof aerr) != MN_OK) {
                snprintf(err, err_len, "%s: expected \"host:port\"", pre);
                return MN_EINVAL;
            }
            snprintf(cfg->peers[i], MN_ADDR_MAX, "%s", json_string_value(p));
            cfg->peer_count = i + 1;
        }
    }
    return MN_OK;
}

int mn_config_load(mn_config *cfg, const char *home, char *err, size_t err_len) {
    if (strlen(home) >= MN_PATH_MAX / 2) {
        snprintf(err, err_len, "home path too long");
        return MN_EINVAL;
    }
    mn_config_default(cfg, home, "", false);
    char path[MN_PATH_MAX];
    join(path, sizeof path, home, "config.json");
    char *buf;
    size_t len;
    int rc = mn_file_read(path, MN_CONFIG_BYTES_MAX, &buf, &len, err, err_len);
    if (rc == MN_ETOOBIG) return MN_EINVAL;
    if (rc != MN_OK) return rc == MN_ENOMEM ? MN_ENOMEM : MN_EIO;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!root) {
        snprintf(err, err_len, "%s: invalid JSON at line %d column %d: %s", path, jerr.line, jerr.column, jerr.text);
        return MN_EINVAL;
    }
    char inner[300];
    rc = parse(cfg, root, inner, sizeof inner);
    json_decref(root);
    if (rc != MN_OK) {
        snprintf(err, err_len, "%s: %s", path, inner);
        return rc;
    }
    derive_paths(cfg);
    return MN_OK;
}

int mn_config_write(const mn_config *cfg, char *err, size_t err_len) {
    json_t *root = json_object(), *listen = json_object(), *lim = json_object();
    bool ok = root && listen && lim;
    if (!ok) {
        json_decref(root);
        json_decref(listen);
        json_decref(lim);
        snprintf(err, err_len, "config: out of memory");
        return MN_ENOMEM;
    }
    ok &= json_object_set_new(root, "node_name", json_string(cfg->node_name)) == 0;
    ok &= json_object_set_new(root, "role", json_string(cfg->is_validator ? "validator" : "observer")) == 0;
    if (cfg->is_validator) ok &= json_object_set_new(root, "member_id", json_string(cfg->member_id)) == 0;
    ok &= json_object_set_new(listen, "p2p", json_string(cfg->listen_p2p)) == 0;
    ok &= json_object_set_new(listen, "rpc", json_string(cfg->listen_rpc)) == 0;
    ok &= json_object_set_new(listen, "http", json_string(cfg->listen_http)) == 0;
    ok &= json_object_set_new(root, "listen", listen) == 0;
    /* A data_dir inside the home is written relative, so the home can move. */
    const char *data = cfg->data_dir;
    size_t hl = strlen(cfg->home);
    if (strncmp(data, cfg->home, hl) == 0 && data[hl] == '/') data += hl + 1;
    ok &= json_object_set_new(root, "data_dir", json_string(data)) == 0;
    ok &= json_object_set_new(root, "log_level", json_string(cfg->log_level)) == 0;
    ok &= json_object_set_new(lim, "rpc_max_connections", json_integer(cfg->limits.rpc_max_connections)) == 0;
    ok &= json_object_set_new(lim, "rpc_max_inflight", json_integer(cfg->limits.rpc_max_inflight)) == 0;
    ok &= json_object_set_new(lim, "rpc_idle_timeout_ms", json_integer(cfg->limits.rpc_idle_timeout_ms)) == 0;
    ok &= json_object_set_new(lim, "mempool_max_txs", json_integer(cfg->limits.mempool_max_txs)) == 0;
    ok &= json_object_set_new(lim, "mempool_max_bytes", json_integer((json_int_t)cfg->limits.mempool_max_bytes)) == 0;
    ok &= json_object_set_new(lim, "read_cache_mb", json_integer(cfg->limits.read_cache_mb)) == 0;
    ok &= json_object_set_new(root, "limits", lim) == 0;
    if (cfg->peer_count) {
        json_t *peers = json_array();
        for (size_t i = 0; i < cfg->peer_count && peers; i++)
            ok &= json_array_append_new(peers, json_string(cfg->peers[i])) == 0;
        ok &= json_object_set_new(root, "peers", peers) == 0;
    }
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        snprintf(err, err_len, "config: out of memory");
        return MN_ENOMEM;
    }
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        snprintf(err, err_len, "config: out of memory");
        return MN_ENOMEM;
    }
    t2[n] = '\n';
    t2[n + 1] = '\0';
    char path[MN_PATH_MAX];
    join(path, sizeof path, cfg->home, "config.json");
    int rc = mn_file_write_atomic(path, t2, n + 1, 0644, err, err_len);
    free(t2);
    return rc;
}

int mn_config_check_genesis(const mn_config *cfg, const mn_genesis *g, const uint8_t *consensus_pubkey,
                            const uint8_t tls_pin[MN_HASH_LEN], char *err, size_t err_len) {
    char want[2 * MN_HASH_LEN + 1], have[2 * MN_HASH_LEN + 1];
    if (cfg->is_validator) {
        const mn_member *m = mn_genesis_member(g, cfg->member_id);
        if (!m || !(m->roles & MN_ROLE_VALIDATOR)) {
            snprintf(err, err_len, "member_id \"%s\" is not a validator in genesis (chain %s); this home belongs "
                     "to another chain", cfg->member_id, g->chain_id);
            return MN_EPERM;
        }
        if (!consensus_pubkey || memcmp(m->consensus_pubkey, consensus_pubkey, MN_PUBKEY_LEN) != 0) {
            snprintf(err, err_len, "%s does not hold the consensus key genesis lists for validator %s; refusing "
                     "to sign with another key (wrong home or wrong genesis?)", cfg->consensus_key_path, m->id);
            return MN_EPERM;
        }
        if (memcmp(m->tls_pin, tls_pin, MN_HASH_LEN) != 0) {
            snprintf(err, err_len, "%s does not match the tls_pin genesis lists for validator %s (genesis %s, "
                     "key %s); peers would refuse this node", cfg->tls_key_path, m->id,
                     mn_hex_encode(want, m->tls_pin, MN_HASH_LEN), mn_hex_encode(have, tls_pin, MN_HASH_LEN));
            return MN_EPERM;
        }
        return MN_OK;
    }
    for (size_t i = 0; i < g->observer_count; i++) {
        const mn_observer *o = &g->observers[i];
        if (strcmp(o->name, cfg->node_name) != 0) continue;
        if (memcmp(o->tls_pin, tls_pin, MN_HASH_LEN) != 0) {
            snprintf(err, err_len, "%s does not match the tls_pin genesis lists for observer %s (genesis %s, "
                     "key %s); validators would refuse this node", cfg->tls_key_path, o->name,
                     mn_hex_encode(want, o->tls_pin, MN_HASH_LEN), mn_hex_encode(have, tls_pin, MN_HASH_LEN));
            return MN_EPERM;
        }
        return MN_OK;
    }
    snprintf(err, err_len, "observer \"%s\" is not listed in genesis (chain %s); validators would refuse it",
             cfg->node_name, g->chain_id);
    return MN_EPERM;
}
