/* genesis.c: reads, checks and writes genesis.json (see genesis.h).
 *
 * Every field is checked and a bad one named with its path, because an
 * operator assembling a genesis by hand from several organisations' keys
 * must learn exactly which entry is wrong. */
#include "genesis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "addr.h"
#include "cert.h"
#include "crypto.h"
#include "fileio.h"
#include "jsonf.h"

#define GENESIS_BYTES_MAX (4 * 1024 * 1024)

static const char *const cred_type_names[] = {NULL, "resident", "driver", "veteran", "foreigner", "overseas"};

int mn_cred_type_from_name(const char *name) {
    if (!name) return 0;
    for (int t = MN_CRED_TYPE_MIN; t <= MN_CRED_TYPE_MAX; t++)
        if (strcmp(cred_type_names[t], name) == 0) return t;
    return 0;
}

const char *mn_cred_type_name(int type) {
    if (type < MN_CRED_TYPE_MIN || type > MN_CRED_TYPE_MAX) return NULL;
    return cred_type_names[type];
}

const char *mn_role_name(uint32_t role) {
    switch (role) {
    case MN_ROLE_VALIDATOR: return "validator";
    case MN_ROLE_ISSUER: return "issuer";
    case MN_ROLE_CARRIER: return "carrier";
    default: return NULL;
    }
}

uint32_t mn_role_from_name(const char *name) {
    static const uint32_t roles[] = {MN_ROLE_VALIDATOR, MN_ROLE_ISSUER, MN_ROLE_CARRIER};
    if (!name) return 0;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(mn_role_name(roles[i]), name) == 0) return roles[i];
    return 0;
}

void mn_consensus_params_default(mn_consensus_params *p) {
    p->timeout_propose_ms = 3000;
    p->timeout_prevote_ms = 1000;
    p->timeout_precommit_ms = 1000;
    p->timeout_delta_ms = 500;
    p->batch_interval_ms = 20;
    p->max_block_interval_ms = 1000;
    p->max_block_txs = 5000;
}

mn_genesis *mn_genesis_new(void) {
    mn_genesis *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    mn_consensus_params_default(&g->params);
    return g;
}

void mn_genesis_free(mn_genesis *g) { free(g); }

const mn_member *mn_genesis_member(const mn_genesis *g, const char *id) {
    for (size_t i = 0; i < g->member_count; i++)
        if (strcmp(g->members[i].id, id) == 0) return &g->members[i];
    return NULL;
}

const mn_member *mn_genesis_validator(const mn_genesis *g, uint32_t index) {
    if (index >= g->validator_count) return NULL;
    return &g->members[g->validator_members[index]];
}

/* Ids are used in file names and log lines: keep them to a safe alphabet. */
static bool id_ok(const char *s) {
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
    }
    return true;
}

static bool chain_id_ok(const char *s) {
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool pubkey_prefix_ok(const uint8_t *k) { return k[0] == 0x02 || k[0] == 0x03; }

static int parse_params(mn_consensus_params *p, const json_t *c, char *err, size_t err_len) {
    static const char *const allowed[] = {"timeout_propose_ms",    "timeout_prevote_ms", "timeout_precommit_ms",
                                          "timeout_delta_ms",      "batch_interval_ms",  "max_block_interval_ms",
                                          "max_block_txs",         NULL};
    if (!json_is_object(c)) {
        snprintf(err, err_len, "consensus: expected an object");
        return MN_EINVAL;
    }
    int rc = mn_jf_only(c, "consensus", allowed, err, err_len);
    if (rc) return rc;
    struct { const char *key; uint32_t *dst; int64_t min, max; } f[] = {
        {"timeout_propose_ms", &p->timeout_propose_ms, 1, 600000},
        {"timeout_prevote_ms", &p->timeout_prevote_ms, 1, 600000},
        {"timeout_precommit_ms", &p->timeout_precommit_ms, 1, 600000},
        {"timeout_delta_ms", &p->timeout_delta_ms, 0, 600000},
        {"batch_interval_ms", &p->batch_interval_ms, 0, 600000},
        {"max_block_interval_ms", &p->max_block_interval_ms, 1, 600000},
        {"max_block_txs", &p->max_block_txs, 1, MN_BLOCK_TXS_MAX},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int64_t v = *f[i].dst;
        rc = mn_jf_int(c, "consensus", f[i].key, false, f[i].min, f[i].max, &v, err, err_len);
        if (rc) return rc;
        *f[i].dst = (uint32_t)v;
    }
    /* An idle proposer waits up to max_block_interval before proposing; the
     * others must not give up on it before that. */
    if (p->timeout_propose_ms <= p->max_block_interval_ms) {
        snprintf(err, err_len,
                 "consensus.timeout_propose_ms: must exceed consensus.max_block_interval_ms (%u <= %u)",
                 p->timeout_propose_ms, p->max_block_interval_ms);
        return MN_EINVAL;
    }
    if (p->batch_interval_ms > p->max_block_interval_ms) {
        snprintf(err, err_len, "consensus.batch_interval_ms: must not exceed consensus.max_block_interval_ms");
        return MN_EINVAL;
    }
    return MN_OK;
}

static int parse_member(mn_genesis *g, size_t idx, const json_t *m, char *err, size_t err_len) {
    static const char *const allowed[] = {"id", "roles", "tx_key", "credential_types", "validator", NULL};
    static const char *const v_allowed[] = {"consensus_key", "tls_pin", "p2p", NULL};
    char pre[48], path[96];
    snprintf(pre, sizeof pre, "members[%zu]", idx);
    mn_member *mb = &g->members[idx];
    memset(mb, 0, sizeof *mb);
    mb->validator_index = -1;
    if (!json_is_object(m)) {
        snprintf(err, err_len, "%s: expected an object", pre);
        return MN_EINVAL;
    }
    int rc = mn_jf_only(m, pre, allowed, err, err_len);
    if (rc) return rc;
    rc = mn_jf_string(m, pre, "id", true, mb->id, MN_MEMBER_ID_MAX, err, err_len);
    if (rc) return rc;
    if (!id_ok(mb->id)) {
        snprintf(err, err_len, "%s.id: use only a-z, 0-9, '-' and '_'", pre);
        return MN_EINVAL;
    }
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(g->members[j].id, mb->id) == 0) {
            snprintf(err, err_len, "%s.id: \"%s\" is already members[%zu]", pre, mb->id, j);
            return MN_EINVAL;
        }
    }
    json_t *roles = json_object_get(m, "roles");
    if (!json_is_array(roles) || json_array_size(roles) == 0) {
        snprintf(err, err_len, "%s.roles: expected a non-empty array of \"validator\", \"issuer\", \"carrier\"", pre);
        return MN_EINVAL;
    }
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r) {
        uint32_t bit = json_is_string(r) ? mn_role_from_name(json_string_value(r)) : 0;
        if (!bit) {
            snprintf(err, err_len, "%s.roles[%zu]: expected \"validator\", \"issuer\" or \"carrier\"", pre, i);
            return MN_EINVAL;
        }
        if (mb->roles & bit) {
            snprintf(err, err_len, "%s.roles[%zu]: \"%s\" listed twice", pre, i, mn_role_name(bit));
            return MN_EINVAL;
        }
        mb->roles |= bit;
    }
    bool signs_txs = mb->roles & (MN_ROLE_ISSUER | MN_ROLE_CARRIER);
    rc = mn_jf_hex(m, pre, "tx_key", signs_txs, mb->tx_pubkey, MN_PUBKEY_LEN, &mb->has_tx_key, err, err_len);
    if (rc) return rc;
    if (mb->has_tx_key && !pubkey_prefix_ok(mb->tx_pubkey)) {
        snprintf(err, err_len, "%s.tx_key: not a compressed secp256k1 key (must start with 02 or 03)", pre);
        return MN_EINVAL;
    }
    json_t *types = json_object_get(m, "credential_types");
    if (mb->roles & MN_ROLE_ISSUER) {
        if (!json_is_array(types) || json_array_size(types) == 0) {
            snprintf(err, err_len, "%s.credential_types: an issuer needs a non-empty array of credential types", pre);
            return MN_EINVAL;
        }
        json_array_foreach(types, i, r) {
            int t = json_is_string(r) ? mn_cred_type_from_name(json_string_value(r)) : 0;
            if (!t) {
                snprintf(err, err_len,
                         "%s.credential_types[%zu]: expected resident, driver, veteran, foreigner or overseas", pre, i);
                return MN_EINVAL;
            }
            if (mb->cred_types & (1u << t)) {
                snprintf(err, err_len, "%s.credential_types[%zu]: listed twice", pre, i);
                return MN_EINVAL;
            }
            mb->cred_types |= 1u << t;
        }
    } else if (types) {
        snprintf(err, err_len, "%s.credential_types: only an issuer has credential types", pre);
        return MN_EINVAL;
    }
    json_t *v = json_object_get(m, "validator");
    if (mb->roles & MN_ROLE_VALIDATOR) {
        snprintf(path, sizeof path, "%s.validator", pre);
        if (!json_is_object(v)) {
            snprintf(err, err_len, "%s: a validator needs {\"consensus_key\", \"tls_pin\", \"p2p\"}", path);
            return MN_EINVAL;
        }
        rc = mn_jf_only(v, path, v_allowed, err, err_len);
        if (rc) return rc;
        rc = mn_jf_hex(v, path, "consensus_key", true, mb->consensus_pubkey, MN_PUBKEY_LEN, NULL, err, err_len);
        if (rc) return rc;
        if (!pubkey_prefix_ok(mb->consensus_pubkey)) {
            snprintf(err, err_len, "%s.consensus_key: not a compressed secp256k1 key (must start with 02 or 03)",
                     path);
            return MN_EINVAL;
        }
        rc = mn_jf_hex(v, path, "tls_pin", true, mb->tls_pin, MN_HASH_LEN, NULL, err, err_len);
        if (rc) return rc;
        rc = mn_jf_string(v, path, "p2p", true, mb->p2p_addr, MN_ADDR_MAX - 1, err, err_len);
        if (rc) return rc;
        mn_addr a;
        char aerr[160];
        if (mn_addr_parse(&a, mb->p2p_addr, aerr, sizeof aerr) != MN_OK) {
            snprintf(err, err_len, "%s.p2p: %s", path, aerr);
            return MN_EINVAL;
        }
        if (g->validator_count >= MN_VALIDATORS_MAX) {
            snprintf(err, err_len, "%s: more than %d validators", pre, MN_VALIDATORS_MAX);
            return MN_EINVAL;
        }
        for (uint32_t k = 0; k < g->validator_count; k++) {
            const mn_member *o = &g->members[g->validator_members[k]];
            if (memcmp(o->consensus_pubkey, mb->consensus_pubkey, MN_PUBKEY_LEN) == 0) {
                snprintf(err, err_len, "%s.consensus_key: same key as validator %s", path, o->id);
                return MN_EINVAL;
            }
            if (memcmp(o->tls_pin, mb->tls_pin, MN_HASH_LEN) == 0) {
                snprintf(err, err_len, "%s.tls_pin: same pin as validator %s", path, o->id);
                return MN_EINVAL;
            }
        }
        mb->validator_index = (int32_t)g->validator_count;
        g->validator_members[g->validator_count++] = (uint16_t)idx;
    } else if (v) {
        snprintf(err, err_len, "%s.validator: only a validator has validator keys", pre);
        return MN_EINVAL;
    }
    return MN_OK;
}

static int parse_observer(mn_genesis *g, size_t idx, const json_t *o, char *err, size_t err_len) {
    static const char *const allowed[] = {"name", "tls_pin", NULL};
    char pre[48];
    snprintf(pre, sizeof pre, "observers[%zu]", idx);
    mn_observer *ob = &g->observers[idx];
    if (!json_is_object(o)) {
        snprintf(err, err_len, "%s: expected an object", pre);
        return MN_EINVAL;
    }
    int rc = mn_jf_only(o, pre, allowed, err, err_len);
    if (rc) return rc;
    rc = mn_jf_string(o, pre, "name", true, ob->name, MN_MEMBER_ID_MAX, err, err_len);
    if (rc) return rc;
    if (!id_ok(ob->name)) {
        snprintf(err, err_len, "%s.name: use only a-z, 0-9, '-' and '_'", pre);
        return MN_EINVAL;
    }
    if (mn_genesis_member(g, ob->name)) {
        snprintf(err, err_len, "%s.name: \"%s\" is also a member id; node names must be unique", pre, ob->name);
        return MN_EINVAL;
    }
    rc = mn_jf_hex(o, pre, "tls_pin", true, ob->tls_pin, MN_HASH_LEN, NULL, err, err_len);
    if (rc) return rc;
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(g->observers[j].name, ob->name) == 0) {
            snprintf(err, err_len, "%s.name: \"%s\" is already observers[%zu]", pre, ob->name, j);
            return MN_EINVAL;
        }
        if (memcmp(g->observers[j].tls_pin, ob->tls_pin, MN_HASH_LEN) == 0) {
            snprintf(err, err_len, "%s.tls_pin: same pin as observer %s", pre, g->observers[j].name);
            return MN_EINVAL;
        }
    }
    for (uint32_t k = 0; k < g->validator_count; k++) {
        const mn_member *m = &g->members[g->validator_members[k]];
        if (memcmp(m->tls_pin, ob->tls_pin, MN_HASH_LEN) == 0) {
            snprintf(err, err_len, "%s.tls_pin: same pin as validator %s", pre, m->id);
            return MN_EINVAL;
        }
    }
    return MN_OK;
}

static int parse_root(mn_genesis *g, const json_t *root, char *err, size_t err_len) {
    static const char *const allowed[] = {"chain_id", "genesis_time_ms", "consensus", "members", "observers", NULL};
    if (!json_is_object(root)) {
        snprintf(err, err_len, "genesis: expected a JSON object");
        return MN_EINVAL;
    }
    int rc = mn_jf_only(root, "", allowed, err, err_len);
    if (rc) return rc;
    rc = mn_jf_string(root, "", "chain_id", true, g->chain_id, MN_CHAIN_ID_MAX, err, err_len);
    if (rc) return rc;
    if (!chain_id_ok(g->chain_id)) {
        snprintf(err, err_len, "chain_id: use only letters, digits, '-', '_' and '.'");
        return MN_EINVAL;
    }
    int64_t t = 0;
    rc = mn_jf_int(root, "", "genesis_time_ms", true, 0, INT64_MAX / 2, &t, err, err_len);
    if (rc) return rc;
    g->genesis_time_ms = t;
    mn_consensus_params_default(&g->params);
    json_t *c = json_object_get(root, "consensus");
    if (c) {
        rc = parse_params(&g->params, c, err, err_len);
        if (rc) return rc;
    }
    json_t *members = json_object_get(root, "members");
    if (!json_is_array(members) || json_array_size(members) == 0) {
        snprintf(err, err_len, "members: expected a non-empty array");
        return MN_EINVAL;
    }
    if (json_array_size(members) > MN_MEMBERS_MAX) {
        snprintf(err, err_len, "members: more than %d members", MN_MEMBERS_MAX);
        return MN_EINVAL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        rc = parse_member(g, i, m, err, err_len);
        if (rc) return rc;
        g->member_count = i + 1;
    }
    if (g->validator_count == 0) {
        snprintf(err, err_len, "members: no member has the validator role");
        return MN_EINVAL;
    }
    json_t *obs = json_object_get(root, "observers");
    if (obs) {
        if (!json_is_array(obs)) {
            snprintf(err, err_len, "observers: expected an array");
            return MN_EINVAL;
        }
        if (json_array_size(obs) > MN_OBSERVERS_MAX) {
            snprintf(err, err_len, "observers: more than %d observers", MN_OBSERVERS_MAX);
            return MN_EINVAL;
        }
        json_array_foreach(obs, i, m) {
            rc = parse_observer(g, i, m, err, err_len);
            if (rc) return rc;
            g->observer_count = i + 1;
        }
    }
    uint8_t keys[MN_VALIDATORS_MAX][MN_PUBKEY_LEN];
    for (uint32_t k = 0; k < g->validator_count; k++)
        memcpy(keys[k], g->members[g->validator_members[k]].consensus_pubkey, MN_PUBKEY_LEN);
    mn_validators_hash(g->validators_hash, (const uint8_t(*)[MN_PUBKEY_LEN])keys, g->validator_count);
    return MN_OK;
}

int mn_genesis_parse(mn_genesis **out, const char *json, size_t len, char *err, size_t err_len) {
    *out = NULL;
    if (len > GENESIS_BYTES_MAX) {
        snprintf(err, err_len, "genesis: more than %d bytes", GENESIS_BYTES_MAX);
        return MN_EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, err_len, "genesis: invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return MN_EINVAL;
    }
    mn_genesis *g = mn_genesis_new();
    if (!g) {
        json_decref(root);
        snprintf(err, err_len, "genesis: out of memory");
        return MN_ENOMEM;
    }
    int rc = parse_root(g, root, err, err_len);
    json_decref(root);
    if (rc != MN_OK) {
        mn_genesis_free(g);
        return rc;
    }
    mn_sha256(g->genesis_hash, json, len);
    *out = g;
    return MN_OK;
}

int mn_genesis_load(mn_genesis **out, const char *path, char *err, size_t err_len) {
    *out = NULL;
    char *buf;
    size_t len;
    int rc = mn_file_read(path, GENESIS_BYTES_MAX, &buf, &len, err, err_len);
    if (rc == MN_ETOOBIG) return MN_EINVAL;
    if (rc != MN_OK) return rc == MN_ENOMEM ? MN_ENOMEM : MN_EIO;
    char inner[400];
    rc = mn_genesis_parse(out, buf, len, inner, sizeof inner);
    free(buf);
    if (rc != MN_OK) snprintf(err, err_len, "%s: %s", path, inner);
    return rc;
}

static json_t *hex_json(const uint8_t *b, size_t len) {
    char hex[2 * MN_HASH_LEN + 8];
    if (2 * len + 1 > sizeof hex) return NULL;
    return json_string(mn_hex_encode(hex, b, len));
}

/* json_object_set_new/json_array_append_new steal the value even on error;
 * a NULL value makes them fail, which `ok` accumulates. */
static json_t *dump_member(const mn_member *m, bool *ok) {
    json_t *o = json_object();
    json_t *roles = json_array();
    if (!o || !roles) {
        json_decref(o);
        json_decref(roles);
        *ok = false;
        return NULL;
    }
    *ok &= json_object_set_new(o, "id", json_string(m->id)) == 0;
    for (uint32_t bit = 1; bit <= MN_ROLE_CARRIER; bit <<= 1)
        if (m->roles & bit) *ok &= json_array_append_new(roles, json_string(mn_role_name(bit))) == 0;
    *ok &= json_object_set_new(o, "roles", roles) == 0;
    if (m->has_tx_key) *ok &= json_object_set_new(o, "tx_key", hex_json(m->tx_pubkey, MN_PUBKEY_LEN)) == 0;
    if (m->roles & MN_ROLE_ISSUER) {
        json_t *types = json_array();
        for (int t = MN_CRED_TYPE_MIN; t <= MN_CRED_TYPE_MAX && types; t++)
            if (m->cred_types & (1u << t)) *ok &= json_array_append_new(types, json_string(mn_cred_type_name(t))) == 0;
        *ok &= json_object_set_new(o, "credential_types", types) == 0;
    }
    if (m->roles & MN_ROLE_VALIDATOR) {
        json_t *v = json_object();
        if (v) {
            *ok &= json_object_set_new(v, "consensus_key", hex_json(m->consensus_pubkey, MN_PUBKEY_LEN)) == 0;
            *ok &= json_object_set_new(v, "tls_pin", hex_json(m->tls_pin, MN_HASH_LEN)) == 0;
            *ok &= json_object_set_new(v, "p2p", json_string(m->p2p_addr)) == 0;
        }
        *ok &= json_object_set_new(o, "validator", v) == 0;
    }
    return o;
}

int mn_genesis_dump(const mn_genesis *g, char **json, char *err, size_t err_len) {
    *json = NULL;
    bool ok = true;
    json_t *root = json_object();
    json_t *c = json_object();
    json_t *members = json_array();
    json_t *obs = json_array();
    if (!root || !c || !members || !obs) {
        json_decref(root);
        json_decref(c);
        json_decref(members);
        json_decref(obs);
        snprintf(err, err_len, "genesis: out of memory");
        return MN_ENOMEM;
    }
    ok &= json_object_set_new(root, "chain_id", json_string(g->chain_id)) == 0;
    ok &= json_object_set_new(root, "genesis_time_ms", json_integer(g->genesis_time_ms)) == 0;
    const mn_consensus_params *p = &g->params;
    ok &= json_object_set_new(c, "timeout_propose_ms", json_integer(p->timeout_propose_ms)) == 0;
    ok &= json_object_set_new(c, "timeout_prevote_ms", json_integer(p->timeout_prevote_ms)) == 0;
    ok &= json_object_set_new(c, "timeout_precommit_ms", json_integer(p->timeout_precommit_ms)) == 0;
    ok &= json_object_set_new(c, "timeout_delta_ms", json_integer(p->timeout_delta_ms)) == 0;
    ok &= json_object_set_new(c, "batch_interval_ms", json_integer(p->batch_interval_ms)) == 0;
    ok &= json_object_set_new(c, "max_block_interval_ms", json_integer(p->max_block_interval_ms)) == 0;
    ok &= json_object_set_new(c, "max_block_txs", json_integer(p->max_block_txs)) == 0;
    ok &= json_object_set_new(root, "consensus", c) == 0;
    for (size_t i = 0; i < g->member_count && i < MN_MEMBERS_MAX; i++) {
        bool mok = true;
        json_t *m = dump_member(&g->members[i], &mok);
        ok &= mok && json_array_append_new(members, m) == 0;
    }
    ok &= json_object_set_new(root, "members", members) == 0;
    for (size_t i = 0; i < g->observer_count && i < MN_OBSERVERS_MAX; i++) {
        json_t *o = json_object();
        if (o) {
            ok &= json_object_set_new(o, "name", json_string(g->observers[i].name)) == 0;
            ok &= json_object_set_new(o, "tls_pin", hex_json(g->observers[i].tls_pin, MN_HASH_LEN)) == 0;
        }
        ok &= json_array_append_new(obs, o) == 0;
    }
    ok &= json_object_set_new(root, "observers", obs) == 0;
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        snprintf(err, err_len, "genesis: out of memory or a field is not valid UTF-8");
        return MN_ENOMEM;
    }
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        snprintf(err, err_len, "genesis: out of memory");
        return MN_ENOMEM;
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    /* What is written must load: run the reader's checks on it. */
    mn_genesis *check;
    int rc = mn_genesis_parse(&check, withnl, n + 1, err, err_len);
    mn_genesis_free(check);
    if (rc != MN_OK) {
        free(withnl);
        return rc;
    }
    *json = withnl;
    return MN_OK;
}

int mn_genesis_write(const mn_genesis *g, const char *path, char *err, size_t err_len) {
    char *text;
    int rc = mn_genesis_dump(g, &text, err, err_len);
    if (rc != MN_OK) return rc;
    rc = mn_file_write_atomic(path, text, strlen(text), 0644, err, err_len);
    free(text);
    return rc;
}
