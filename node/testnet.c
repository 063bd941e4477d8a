/* testnet.c: writes `midctl testnet` cluster definitions and the
 * `midnode --dev` home (see testnet.h). Every secret is written 0600 in a
 * 0700 keys directory and wiped from memory once written. */
#include "testnet.h"

#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "addr.h"
#include "config.h"
#include "crypto.h"
#include "fileio.h"
#include "genesis.h"
#include "tlskey.h"

#define DEFAULT_HOST "127.0.0.1"

void mn_testnet_opts_default(mn_testnet_opts *o) {
    memset(o, 0, sizeof *o);
    o->validators = 4;
    o->observers = 0;
    o->base_port = MN_TESTNET_BASE_PORT;
    o->host = DEFAULT_HOST;
    o->chain_id = MN_TESTNET_CHAIN_ID;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Default members: validators first (so validator index = node index),
 * then the issuers that are not validators. */
static const char *const validator_ids[] = {"mois", "skt", "kt", "lgu"};
static const struct { const char *id; int type; } issuers[] = {
    {"mois", 1}, {"knpa", 2}, {"mpva", 3}, {"moj", 4}, {"mofa", 5},
};
static const char *const carrier_ids[] = {"skt", "kt", "lgu"};

static mn_member *add_member(mn_genesis *g, const char *id) {
    for (size_t i = 0; i < g->member_count; i++)
        if (strcmp(g->members[i].id, id) == 0) return &g->members[i];
    if (g->member_count >= MN_MEMBERS_MAX) return NULL;
    mn_member *m = &g->members[g->member_count++];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    m->validator_index = -1;
    return m;
}

/* Fills g's member list (ids and roles only) for n validators. */
static int default_members(mn_genesis *g, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        char id[MN_MEMBER_ID_MAX + 1];
        if (i < 4)
            snprintf(id, sizeof id, "%s", validator_ids[i]);
        else
            snprintf(id, sizeof id, "val%u", i);
        mn_member *m = add_member(g, id);
        if (!m) return MN_ETOOBIG;
        m->roles |= MN_ROLE_VALIDATOR;
        m->validator_index = (int32_t)i;
        g->validator_members[i] = (uint16_t)(g->member_count - 1);
    }
    g->validator_count = n;
    for (size_t i = 0; i < sizeof issuers / sizeof issuers[0]; i++) {
        mn_member *m = add_member(g, issuers[i].id);
        if (!m) return MN_ETOOBIG;
        m->roles |= MN_ROLE_ISSUER;
        m->cred_types |= 1u << issuers[i].type;
    }
    for (size_t i = 0; i < sizeof carrier_ids / sizeof carrier_ids[0]; i++) {
        mn_member *m = add_member(g, carrier_ids[i]);
        if (!m) return MN_ETOOBIG;
        m->roles |= MN_ROLE_CARRIER;
    }
    return MN_OK;
}

/* Uses the key in path when there is one (idempotent set-up), else makes
 * and writes a new one. */
static int secp_key(const char *path, bool reuse, uint8_t pub[MN_PUBKEY_LEN], char *err, size_t err_len) {
    uint8_t sk[MN_SECKEY_LEN];
    int rc;
    if (reuse && mn_path_exists(path)) {
        rc = mn_keyfile_read(path, sk, err, err_len);
    } else {
        rc = mn_key_generate(sk);
        if (rc != MN_OK) snprintf(err, err_len, "cannot generate a key for %s", path);
        if (rc == MN_OK) rc = mn_keyfile_write(path, sk, false, err, err_len);
    }
    if (rc == MN_OK && mn_key_pubkey(pub, sk) != MN_OK) {
        snprintf(err, err_len, "%s: invalid key", path);
        rc = MN_ECRYPTO;
    }
    mn_cleanse(sk, sizeof sk);
    return rc;
}

static int tls_key(const char *path, bool reuse, uint8_t pin[MN_HASH_LEN], char *err, size_t err_len) {
    EVP_PKEY *key = NULL;
    int rc;
    if (reuse && mn_path_exists(path)) {
        rc = mn_tlskey_read(&key, path, err, err_len);
    } else {
        rc = mn_tlskey_generate(&key);
        if (rc != MN_OK) snprintf(err, err_len, "cannot generate a TLS key for %s", path);
        if (rc == MN_OK) rc = mn_tlskey_write(path, key, false, err, err_len);
    }
    if (rc == MN_OK && mn_tlskey_pin(pin, key) != MN_OK) {
        snprintf(err, err_len, "%s: cannot compute the key's pin", path);
        rc = MN_ECRYPTO;
    }
    EVP_PKEY_free(key);
    return rc;
}

static int path2(char *out, size_t len, const char *a, const char *b) {
    int n = snprintf(out, len, "%s/%s", a, b);
    return n < 0 || (size_t)n >= len ? MN_ETOOBIG : MN_OK;
}

static int path3(char *out, size_t len, const char *a, const char *b, const char *c) {
    int n = snprintf(out, len, "%s/%s/%s", a, b, c);
    return n < 0 || (size_t)n >= len ? MN_ETOOBIG : MN_OK;
}

typedef struct node_plan {
    char name[MN_MEMBER_ID_MAX + 1];
    bool validator;
    char p2p[MN_ADDR_MAX], rpc[MN_ADDR_MAX], http[MN_ADDR_MAX]; /* where others reach it */
    char listen_p2p[MN_ADDR_MAX], listen_rpc[MN_ADDR_MAX], listen_http[MN_ADDR_MAX];
    char home[PATH_MAX];
} node_plan;

/* Makes a node home: keys (consensus for validators, TLS), and
 * config.json. genesis.json is copied in afterwards. */
static int make_home(const node_plan *n, bool reuse, uint8_t cons_pub[MN_PUBKEY_LEN], uint8_t pin[MN_HASH_LEN],
                     char *err, size_t err_len) {
    char keys[PATH_MAX], p[PATH_MAX];
    if (path2(keys, sizeof keys, n->home, "keys") != MN_OK) {
        snprintf(err, err_len, "path too long: %s", n->home);
        return MN_EINVAL;
    }
    int rc = mn_mkdir_p(keys, 0700, err, err_len);
    if (rc) return rc;
    if (n->validator) {
        if (path2(p, sizeof p, keys, "consensus.key") != MN_OK) return MN_EINVAL;
        rc = secp_key(p, reuse, cons_pub, err, err_len);
        if (rc) return rc;
    }
    if (path2(p, sizeof p, keys, "tls.pem") != MN_OK) return MN_EINVAL;
    rc = tls_key(p, reuse, pin, err, err_len);
    if (rc) return rc;
    if (reuse && path2(p, sizeof p, n->home, "config.json") == MN_OK && mn_path_exists(p)) return MN_OK;
    mn_config *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        snprintf(err, err_len, "out of memory");
        return MN_ENOMEM;
    }
    mn_config_default(cfg, n->home, n->name, n->validator);
    snprintf(cfg->listen_p2p, sizeof cfg->listen_p2p, "%s", n->listen_p2p);
    snprintf(cfg->listen_rpc, sizeof cfg->listen_rpc, "%s", n->listen_rpc);
    snprintf(cfg->listen_http, sizeof cfg->listen_http, "%s", n->listen_http);
    rc = mn_config_write(cfg, err, err_len);
    free(cfg);
    return rc;
}

/* Node i is reached at host; it listens on listen_host (the same host
 * unless the cluster names one host per node). */
static int plan_ports(node_plan *n, const char *host, const char *listen_host, uint32_t base, uint32_t i, char *err,
                      size_t err_len) {
    uint32_t p = base + 3 * i;
    if (mn_addr_format(n->p2p, sizeof n->p2p, host, (uint16_t)p) != MN_OK ||
        mn_addr_format(n->rpc, sizeof n->rpc, host, (uint16_t)(p + 1)) != MN_OK ||
        mn_addr_format(n->http, sizeof n->http, host, (uint16_t)(p + 2)) != MN_OK ||
        mn_addr_format(n->listen_p2p, sizeof n->listen_p2p, listen_host, (uint16_t)p) != MN_OK ||
        mn_addr_format(n->listen_rpc, sizeof n->listen_rpc, listen_host, (uint16_t)(p + 1)) != MN_OK ||
        mn_addr_format(n->listen_http, sizeof n->listen_http, listen_host, (uint16_t)(p + 2)) != MN_OK) {
        snprintf(err, err_len, "host too long: %s", host);
        return MN_EINVAL;
    }
    return MN_OK;
}

static bool host_valid(const char *host) {
    mn_addr check;
    char tmp_addr[MN_ADDR_MAX], e[128];
    return *host && mn_addr_format(tmp_addr, sizeof tmp_addr, host, 26600) == MN_OK &&
           mn_addr_parse(&check, tmp_addr, e, sizeof e) == MN_OK;
}

typedef char host_name[MN_HOST_MAX + 1];

/* Splits "a,b,c" into exactly count valid host names. */
static int split_hosts(const char *list, host_name *out, uint32_t count, char *err, size_t err_len) {
    uint32_t k = 0;
    const char *s = list;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (k >= count) {
            snprintf(err, err_len, "--hosts names more than the %u nodes", count);
            return MN_EINVAL;
        }
        if (len == 0 || len > MN_HOST_MAX) {
            snprintf(err, err_len, "--hosts: host %u is empty or longer than %d characters", k + 1, MN_HOST_MAX);
            return MN_EINVAL;
        }
        memcpy(out[k], s, len);
        out[k][len] = '\0';
        if (!host_valid(out[k])) {
            snprintf(err, err_len, "--hosts: \"%s\" is not a valid host", out[k]);
            return MN_EINVAL;
        }
        k++;
        if (!comma) break;
        s = comma + 1;
    }
    if (k != count) {
        snprintf(err, err_len, "--hosts names %u hosts for %u nodes (one per node: validators, then observers)", k,
                 count);
        return MN_EINVAL;
    }
    return MN_OK;
}

static json_t *roles_json(uint32_t roles) {
    json_t *a = json_array();
    for (uint32_t bit = 1; bit <= MN_ROLE_CARRIER && a; bit <<= 1)
        if (roles & bit) json_array_append_new(a, json_string(mn_role_name(bit)));
    return a;
}

static int write_testnet_json(const char *dir, const mn_genesis *g, const node_plan *nodes, size_t count,
                              char *err, size_t err_len) {
    json_t *root = json_object(), *jn = json_array(), *jm = json_array();
    bool ok = root && jn && jm;
    if (root) {
        ok &= json_object_set_new(root, "chain_id", json_string(g->chain_id)) == 0;
        ok &= json_object_set_new(root, "nodes", jn) == 0;
        ok &= json_object_set_new(root, "members", jm) == 0;
    } else {
        json_decref(jn);
        json_decref(jm);
    }
    for (size_t i = 0; ok && i < count; i++) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", nodes[i].name, "home", nodes[i].home, "role",
                              nodes[i].validator ? "validator" : "observer", "p2p", nodes[i].p2p, "rpc", nodes[i].rpc,
                              "http", nodes[i].http);
        ok &= json_array_append_new(jn, o) == 0;
    }
    for (size_t i = 0; ok && i < g->member_count; i++) {
        char kf[PATH_MAX], name[MN_MEMBER_ID_MAX + 8];
        snprintf(name, sizeof name, "%s.key", g->members[i].id);
        if (path3(kf, sizeof kf, dir, "keys", name) != MN_OK) ok = false;
        json_t *o = json_pack("{s:s, s:o, s:s}", "id", g->members[i].id, "roles", roles_json(g->members[i].roles),
                              "key_file", kf);
        ok &= json_array_append_new(jm, o) == 0;
    }
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        snprintf(err, err_len, "testnet.json: out of memory");
        return MN_ENOMEM;
    }
    char p[PATH_MAX];
    int rc = path2(p, sizeof p, dir, "testnet.json");
    if (rc == MN_OK) {
        size_t n = strlen(text);
        rc = mn_file_write_atomic(p, text, n, 0644, err, err_len);
    }
    free(text);
    return rc;
}

static int copy_genesis(const char *text, const char *home, char *err, size_t err_len) {
    char p[PATH_MAX];
    if (path2(p, sizeof p, home, "genesis.json") != MN_OK) return MN_EINVAL;
    return mn_file_write_atomic(p, text, strlen(text), 0644, err, err_len);
}

static int write_net(const mn_testnet_opts *o, const char *host, const host_name *hosts, uint32_t count, char *err,
                     size_t err_len);

int mn_testnet_write(const mn_testnet_opts *o, char *err, size_t err_len) {
    if (!o->dir || !*o->dir) {
        snprintf(err, err_len, "--dir is required");
        return MN_EINVAL;
    }
    if (o->validators < 1 || o->validators > MN_VALIDATORS_MAX) {
        snprintf(err, err_len, "--validators must be 1 to %d", MN_VALIDATORS_MAX);
        return MN_EINVAL;
    }
    if (o->observers > MN_OBSERVERS_MAX) {
        snprintf(err, err_len, "--observers must be 0 to %d", MN_OBSERVERS_MAX);
        return MN_EINVAL;
    }
    uint32_t count = o->validators + o->observers;
    if (o->base_port < 1 || o->base_port + 3 * count - 1 > 65535) {
        snprintf(err, err_len, "--base-port %u leaves no room for %u nodes (3 ports each, up to 65535)", o->base_port,
                 count);
        return MN_EINVAL;
    }
    const char *host = o->host && *o->host ? o->host : DEFAULT_HOST;
    if (!host_valid(host)) {
        snprintf(err, err_len, "--host \"%s\" is not a valid host", host);
        return MN_EINVAL;
    }
    host_name *hosts = NULL;
    if (o->hosts) {
        hosts = calloc(count, sizeof *hosts);
        if (!hosts) {
            snprintf(err, err_len, "out of memory");
            return MN_ENOMEM;
        }
        int hrc = split_hosts(o->hosts, hosts, count, err, err_len);
        if (hrc) {
            free(hosts);
            return hrc;
        }
    }
    int rc = write_net(o, host, (const host_name *)hosts, count, err, err_len);
    free(hosts);
    return rc;
}

/* The part of mn_testnet_write after the node addresses are known. */
static int write_net(const mn_testnet_opts *o, const char *host, const host_name *hosts, uint32_t count, char *err,
                     size_t err_len) {
    const char *chain = o->chain_id && *o->chain_id ? o->chain_id : MN_TESTNET_CHAIN_ID;
    if (strlen(chain) > MN_CHAIN_ID_MAX) {
        snprintf(err, err_len, "--chain-id is longer than %d characters", MN_CHAIN_ID_MAX);
        return MN_EINVAL;
    }
    int rc = mn_crypto_init();
    if (rc != MN_OK) {
        snprintf(err, err_len, "cannot initialise crypto");
        return rc;
    }
    rc = mn_mkdir_p(o->dir, 0755, err, err_len);
    if (rc) return rc;
    char dir[PATH_MAX];
    if (!realpath(o->dir, dir)) {
        snprintf(err, err_len, "cannot resolve %s: %s", o->dir, strerror(errno));
        return MN_EIO;
    }
    char p[PATH_MAX];
    if (path2(p, sizeof p, dir, "genesis.json") != MN_OK) {
        snprintf(err, err_len, "path too long: %s", dir);
        return MN_EINVAL;
    }
    if (mn_path_exists(p)) {
        snprintf(err, err_len, "%s already exists; choose an empty directory (keys are never replaced)", p);
        return MN_ESTATE;
    }
    mn_genesis *g = mn_genesis_new();
    node_plan *nodes = calloc(count, sizeof *nodes);
    char *text = NULL;
    if (!g || !nodes) {
        snprintf(err, err_len, "out of memory");
        rc = MN_ENOMEM;
        goto out;
    }
    snprintf(g->chain_id, sizeof g->chain_id, "%s", chain);
    g->genesis_time_ms = o->genesis_time_ms ? o->genesis_time_ms : now_ms();
    rc = default_members(g, o->validators);
    if (rc) {
        snprintf(err, err_len, "too many members");
        goto out;
    }
    char keys_dir[PATH_MAX];
    if (path2(keys_dir, sizeof keys_dir, dir, "keys") != MN_OK) {
        rc = MN_EINVAL;
        goto out;
    }
    rc = mn_mkdir_p(keys_dir, 0700, err, err_len);
    if (rc) goto out;
    for (size_t i = 0; i < g->member_count; i++) {
        mn_member *m = &g->members[i];
        char name[MN_MEMBER_ID_MAX + 8];
        snprintf(name, sizeof name, "%s.key", m->id);
        if (path2(p, sizeof p, keys_dir, name) != MN_OK) {
            rc = MN_EINVAL;
            goto out;
        }
        rc = secp_key(p, false, m->tx_pubkey, err, err_len);
        if (rc) goto out;
        m->has_tx_key = true;
    }
    for (uint32_t i = 0; i < count; i++) {
        node_plan *n = &nodes[i];
        n->validator = i < o->validators;
        if (n->validator)
            snprintf(n->name, sizeof n->name, "%s", g->members[g->validator_members[i]].id);
        else
            snprintf(n->name, sizeof n->name, "obs%u", i - o->validators + 1);
        if (path2(n->home, sizeof n->home, dir, n->name) != MN_OK) {
            snprintf(err, err_len, "path too long: %s", dir);
            rc = MN_EINVAL;
            goto out;
        }
        if (hosts)
            rc = plan_ports(n, hosts[i], "0.0.0.0", o->base_port, i, err, err_len);
        else
            rc = plan_ports(n, host, host, o->base_port, i, err, err_len);
        if (rc) goto out;
        uint8_t pub[MN_PUBKEY_LEN], pin[MN_HASH_LEN];
        rc = make_home(n, false, pub, pin, err, err_len);
        if (rc) goto out;
        if (n->validator) {
            mn_member *m = &g->members[g->validator_members[i]];
            memcpy(m->consensus_pubkey, pub, MN_PUBKEY_LEN);
            memcpy(m->tls_pin, pin, MN_HASH_LEN);
            snprintf(m->p2p_addr, sizeof m->p2p_addr, "%s", n->p2p);
        } else {
            mn_observer *ob = &g->observers[g->observer_count++];
            snprintf(ob->name, sizeof ob->name, "%s", n->name);
            memcpy(ob->tls_pin, pin, MN_HASH_LEN);
        }
    }
    rc = mn_genesis_dump(g, &text, err, err_len);
    if (rc) goto out;
    for (uint32_t i = 0; i < count; i++) {
        rc = copy_genesis(text, nodes[i].home, err, err_len);
        if (rc) goto out;
    }
    rc = write_testnet_json(dir, g, nodes, count, err, err_len);
    if (rc) goto out;
    /* genesis.json last: its presence marks a complete testnet. */
    rc = copy_genesis(text, dir, err, err_len);
out:
    free(text);
    free(nodes);
    mn_genesis_free(g);
    return rc;
}

int mn_testnet_dev(const char *home, char *err, size_t err_len) {
    if (err_len) err[0] = '\0';
    int rc = mn_crypto_init();
    if (rc != MN_OK) {
        snprintf(err, err_len, "cannot initialise crypto");
        return rc;
    }
    rc = mn_mkdir_p(home, 0755, err, err_len);
    if (rc) return rc;
    char gpath[PATH_MAX], cpath[PATH_MAX];
    if (path2(gpath, sizeof gpath, home, "genesis.json") != MN_OK ||
        path2(cpath, sizeof cpath, home, "config.json") != MN_OK) {
        snprintf(err, err_len, "path too long: %s", home);
        return MN_EINVAL;
    }
    if (mn_path_exists(gpath) && mn_path_exists(cpath)) return MN_OK; /* an existing dev chain: keep it */
    mn_genesis *g = mn_genesis_new();
    if (!g) {
        snprintf(err, err_len, "out of memory");
        return MN_ENOMEM;
    }
    snprintf(g->chain_id, sizeof g->chain_id, "%s", MN_DEV_CHAIN_ID);
    g->genesis_time_ms = now_ms();
    rc = default_members(g, 1);
    char mdir[PATH_MAX], p[PATH_MAX];
    if (rc == MN_OK && path3(mdir, sizeof mdir, home, "keys", "members") != MN_OK) rc = MN_EINVAL;
    if (rc == MN_OK) rc = mn_mkdir_p(mdir, 0700, err, err_len);
    for (size_t i = 0; rc == MN_OK && i < g->member_count; i++) {
        mn_member *m = &g->members[i];
        char name[MN_MEMBER_ID_MAX + 8];
        snprintf(name, sizeof name, "%s.key", m->id);
        rc = path2(p, sizeof p, mdir, name) == MN_OK ? secp_key(p, true, m->tx_pubkey, err, err_len) : MN_EINVAL;
        m->has_tx_key = true;
    }
    node_plan n;
    memset(&n, 0, sizeof n);
    snprintf(n.name, sizeof n.name, "mois");
    n.validator = true;
    if (snprintf(n.home, sizeof n.home, "%s", home) >= (int)sizeof n.home) rc = MN_EINVAL;
    if (rc == MN_OK) rc = plan_ports(&n, DEFAULT_HOST, DEFAULT_HOST, MN_TESTNET_BASE_PORT, 0, err, err_len);
    mn_member *v = &g->members[g->validator_members[0]];
    if (rc == MN_OK) rc = make_home(&n, true, v->consensus_pubkey, v->tls_pin, err, err_len);
    snprintf(v->p2p_addr, sizeof v->p2p_addr, "%s", n.p2p);
    if (rc == MN_OK) rc = mn_genesis_write(g, gpath, err, err_len);
    if (rc == MN_EINVAL && !*err) snprintf(err, err_len, "path too long: %s", home);
    mn_genesis_free(g);
    return rc;
}

/* ---- the `midctl testnet` command line ---- */

static void usage(void) {
    fprintf(stderr, "usage: midctl testnet --dir DIR [--validators N] [--observers M] [--base-port P] [--host H] "
                    "[--hosts H1,H2,...] [--chain-id ID] [--json]\n"
                    "  --hosts: one host name per node (validators, then observers); nodes then listen on 0.0.0.0\n");
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || s[0] == '-' || v > max) return -1;
    *out = (uint32_t)v;
    return 0;
}

int mn_testnet_main(int argc, char **argv) {
    mn_testnet_opts o;
    mn_testnet_opts_default(&o);
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "midctl testnet: %s needs a value\n", a);
            usage();
            return 2;
        }
        int bad = 0;
        if (strcmp(a, "--dir") == 0)
            o.dir = v;
        else if (strcmp(a, "--validators") == 0)
            bad = parse_u32(v, 1000, &o.validators);
        else if (strcmp(a, "--observers") == 0)
            bad = parse_u32(v, 1000, &o.observers);
        else if (strcmp(a, "--base-port") == 0)
            bad = parse_u32(v, 65535, &o.base_port);
        else if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--hosts") == 0)
            o.hosts = v;
        else if (strcmp(a, "--chain-id") == 0)
            o.chain_id = v;
        else {
            fprintf(stderr, "midctl testnet: unknown option %s\n", a);
            usage();
            return 2;
        }
        if (bad) {
            fprintf(stderr, "midctl testnet: %s: not a valid number: %s\n", a, v);
            return 2;
        }
        i++;
    }
    if (!o.dir) {
        fprintf(stderr, "midctl testnet: --dir is required\n");
        usage();
        return 2;
    }
    char err[512] = "";
    int rc = mn_testnet_write(&o, err, sizeof err);
    if (rc != 0) {
        if (json)
            printf("{\"error\": \"testnet: %s\"}\n", err); /* err holds paths and words, no quotes */
        fprintf(stderr, "midctl testnet: %s\n", err);
        return rc == MN_EINVAL ? 2 : 1;
    }
    if (json)
        printf("{\"dir\": \"%s\", \"chain_id\": \"%s\", \"validators\": %u, \"observers\": %u, \"base_port\": %u}\n",
               o.dir, o.chain_id, o.validators, o.observers, o.base_port);
    else
        printf("wrote %s: chain %s, %u validators, %u observers, ports %u..%u; see %s/testnet.json\n", o.dir,
               o.chain_id, o.validators, o.observers, o.base_port, o.base_port + 3 * (o.validators + o.observers) - 1,
               o.dir);
    return 0;
}
