/* bench_testnet.c: what midbench needs from a `midctl testnet` directory:
 * the chain id, the nodes' RPC addresses, and the transaction keys of the
 * issuers (with the credential type each may issue) and carriers. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "crypto.h"

static const char *const TYPE_NAMES[] = {"", "resident", "driver", "veteran", "foreigner", "overseas"};

static int type_of(const char *name) {
    for (int t = 1; t <= 5; t++)
        if (!strcmp(name, TYPE_NAMES[t])) return t;
    return 0;
}

/* The first credential type genesis allows member id to issue (0: none). */
static int genesis_type(json_t *genesis, const char *id) {
    json_t *members = json_object_get(genesis, "members");
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *mid = json_string_value(json_object_get(m, "id"));
        if (!mid || strcmp(mid, id)) continue;
        json_t *types = json_object_get(m, "credential_types");
        size_t k;
        json_t *t;
        json_array_foreach(types, k, t) {
            const char *s = json_string_value(t);
            if (s && type_of(s)) return type_of(s);
        }
    }
    return 0;
}

static bool has_role(json_t *roles, const char *role) {
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r) {
        const char *s = json_string_value(r);
        if (s && !strcmp(s, role)) return true;
    }
    return false;
}

int bench_testnet_load(bench_testnet *t, const char *dir, char *err, size_t err_len) {
    memset(t, 0, sizeof *t);
    char path[BENCH_PATH_MAX + 32];
    json_error_t je;
    snprintf(path, sizeof path, "%s/testnet.json", dir);
    json_t *tn = json_load_file(path, 0, &je);
    if (!tn) {
        snprintf(err, err_len, "%s: %s", path, je.text);
        return MN_EIO;
    }
    snprintf(path, sizeof path, "%s/genesis.json", dir);
    json_t *gen = json_load_file(path, 0, &je);
    if (!gen) {
        json_decref(tn);
        snprintf(err, err_len, "%s: %s", path, je.text);
        return MN_EIO;
    }
    int rc = MN_EINVAL;
    const char *chain = json_string_value(json_object_get(tn, "chain_id"));
    if (!chain || strlen(chain) > MN_CHAIN_ID_MAX) {
        snprintf(err, err_len, "testnet.json: no chain_id");
        goto out;
    }
    memcpy(t->chain_id, chain, strlen(chain) + 1);
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(tn, "nodes"), i, n) {
        const char *rpc = json_string_value(json_object_get(n, "rpc"));
        if (!rpc || strlen(rpc) >= BENCH_ADDR_MAX || t->node_count == BENCH_NODES_MAX) {
            snprintf(err, err_len, "testnet.json: node %zu: bad rpc address", i);
            goto out;
        }
        memcpy(t->nodes[t->node_count++], rpc, strlen(rpc) + 1);
    }
    json_array_foreach(json_object_get(tn, "members"), i, n) {
        const char *id = json_string_value(json_object_get(n, "id"));
        const char *key = json_string_value(json_object_get(n, "key_file"));
        json_t *roles = json_object_get(n, "roles");
        bool issuer = has_role(roles, "issuer"), carrier = has_role(roles, "carrier");
        if (!id || !key || (!issuer && !carrier)) continue;
        if (strlen(id) > MN_MEMBER_ID_MAX || t->signer_count == BENCH_SIGNERS_MAX) {
            snprintf(err, err_len, "testnet.json: member %zu: bad id or too many members", i);
            goto out;
        }
        bench_signer *s = &t->signers[t->signer_count];
        memcpy(s->id, id, strlen(id) + 1);
        char kerr[256];
        if (mn_keyfile_read(key, s->seckey, kerr, sizeof kerr) != MN_OK) {
            snprintf(err, err_len, "%s", kerr);
            rc = MN_EIO;
            goto out;
        }
        s->issuer = issuer;
        s->carrier = carrier;
        s->cred_type = issuer ? genesis_type(gen, id) : 0;
        atomic_init(&s->next_nonce, 1);
        if (issuer && s->cred_type) t->issuers[t->issuer_count++] = t->signer_count;
        if (carrier) t->carriers[t->carrier_count++] = t->signer_count;
        t->signer_count++;
    }
    if (t->node_count == 0 || t->issuer_count == 0 || t->carrier_count == 0) {
        snprintf(err, err_len, "%s: needs nodes, issuers and carriers with key files", dir);
        goto out;
    }
    rc = MN_OK;
out:
    json_decref(tn);
    json_decref(gen);
    if (rc != MN_OK) bench_testnet_free(t);
    return rc;
}

void bench_testnet_free(bench_testnet *t) {
    if (!t) return;
    for (size_t i = 0; i < BENCH_SIGNERS_MAX; i++) OPENSSL_cleanse(t->signers[i].seckey, MN_SECKEY_LEN);
}
