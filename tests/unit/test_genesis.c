/* test_genesis.c: genesis.json round-trips, and every bad field is refused
 * with a message naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cert.h"
#include "crypto.h"
#include "genesis.h"

static char *base_json; /* a valid genesis, dumped */

static void fill_key(uint8_t pub[33]) {
    uint8_t s[32];
    assert_int_equal(mn_key_generate(s), MN_OK);
    assert_int_equal(mn_key_pubkey(pub, s), MN_OK);
}

static mn_genesis *sample(void) {
    mn_genesis *g = mn_genesis_new();
    assert_non_null(g);
    snprintf(g->chain_id, sizeof g->chain_id, "test-chain");
    g->genesis_time_ms = 1763800000000;
    const char *ids[] = {"mois", "skt", "kt", "knpa"};
    uint32_t roles[] = {MN_ROLE_VALIDATOR | MN_ROLE_ISSUER, MN_ROLE_VALIDATOR | MN_ROLE_CARRIER,
                        MN_ROLE_VALIDATOR | MN_ROLE_CARRIER, MN_ROLE_ISSUER};
    for (int i = 0; i < 4; i++) {
        mn_member *m = &g->members[i];
        snprintf(m->id, sizeof m->id, "%s", ids[i]);
        m->roles = roles[i];
        m->has_tx_key = true;
        fill_key(m->tx_pubkey);
        m->validator_index = -1;
        if (roles[i] & MN_ROLE_ISSUER) m->cred_types = 1u << (i == 0 ? 1 : 2);
        if (roles[i] & MN_ROLE_VALIDATOR) {
            fill_key(m->consensus_pubkey);
            memset(m->tls_pin, i + 1, 32);
            snprintf(m->p2p_addr, sizeof m->p2p_addr, "127.0.0.1:%d", 26600 + 3 * i);
        }
    }
    g->member_count = 4;
    g->observer_count = 1;
    snprintf(g->observers[0].name, sizeof g->observers[0].name, "obs1");
    memset(g->observers[0].tls_pin, 0x77, 32);
    return g;
}

static int setup(void **state) {
    (void)state;
    if (mn_crypto_init() != MN_OK) return -1;
    mn_genesis *g = sample();
    char err[256];
    int rc = mn_genesis_dump(g, &base_json, err, sizeof err);
    mn_genesis_free(g);
    return rc;
}

static int teardown(void **state) {
    (void)state;
    free(base_json);
    return 0;
}

static void round_trip_keeps_every_field(void **state) {
    (void)state;
    mn_genesis *g = NULL;
    char err[256] = "";
    int rc = mn_genesis_parse(&g, base_json, strlen(base_json), err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_string_equal(g->chain_id, "test-chain");
    assert_int_equal(g->genesis_time_ms, 1763800000000);
    assert_int_equal(g->member_count, 4);
    assert_int_equal(g->validator_count, 3);
    assert_string_equal(mn_genesis_validator(g, 2)->id, "kt");
    assert_null(mn_genesis_validator(g, 3));
    const mn_member *knpa = mn_genesis_member(g, "knpa");
    assert_non_null(knpa);
    assert_int_equal(knpa->validator_index, -1);
    assert_int_equal(knpa->cred_types, 1u << 2);
    assert_int_equal(mn_genesis_member(g, "skt")->validator_index, 1);
    assert_null(mn_genesis_member(g, "nobody"));
    assert_string_equal(g->observers[0].name, "obs1");
    mn_consensus_params d;
    mn_consensus_params_default(&d);
    assert_memory_equal(&g->params, &d, sizeof d);
    assert_true(d.timeout_propose_ms > d.max_block_interval_ms);
    uint8_t keys[3][33], vh[32], gh[32];
    for (uint32_t i = 0; i < 3; i++) memcpy(keys[i], mn_genesis_validator(g, i)->consensus_pubkey, 33);
    mn_validators_hash(vh, (const uint8_t(*)[33])keys, 3);
    assert_memory_equal(vh, g->validators_hash, 32);
    mn_sha256(gh, base_json, strlen(base_json));
    assert_memory_equal(gh, g->genesis_hash, 32);
    /* dump of the parsed genesis gives the same bytes */
    char *again;
    assert_int_equal(mn_genesis_dump(g, &again, err, sizeof err), MN_OK);
    assert_string_equal(again, base_json);
    free(again);
    /* and through a file */
    char path[] = "/tmp/mn_test_genesis_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mn_genesis_write(g, path, err, sizeof err), MN_OK);
    mn_genesis *g2;
    assert_int_equal(mn_genesis_load(&g2, path, err, sizeof err), MN_OK);
    assert_memory_equal(g2->genesis_hash, g->genesis_hash, 32);
    mn_genesis_free(g2);
    unlink(path);
    assert_int_equal(mn_genesis_load(&g2, path, err, sizeof err), MN_EIO);
    assert_non_null(strstr(err, path));
    mn_genesis_free(g);
}

/* Applies a mutation to the valid genesis and expects a refusal naming want. */
typedef void (*mutate_fn)(json_t *root);
static void expect_refusal(mutate_fn f, const char *want) {
    json_error_t je;
    json_t *root = json_loads(base_json, 0, &je);
    assert_non_null(root);
    f(root);
    char *text = json_dumps(root, 0);
    json_decref(root);
    mn_genesis *g = NULL;
    char err[256] = "";
    int rc = mn_genesis_parse(&g, text, strlen(text), err, sizeof err);
    free(text);
    assert_null(g);
    if (rc != MN_EINVAL || !strstr(err, want)) fail_msg("wanted \"%s\", got rc %d \"%s\"", want, rc, err);
}

static json_t *member(json_t *root, size_t i) { return json_array_get(json_object_get(root, "members"), i); }
static json_t *val(json_t *root, size_t i) { return json_object_get(member(root, i), "validator"); }

static void m_short_tx_key(json_t *r) { json_object_set_new(member(r, 2), "tx_key", json_string("02abc")); }
static void m_no_chain(json_t *r) { json_object_del(r, "chain_id"); }
static void m_bad_chain(json_t *r) { json_object_set_new(r, "chain_id", json_string("a chain")); }
static void m_time_string(json_t *r) { json_object_set_new(r, "genesis_time_ms", json_string("now")); }
static void m_unknown_field(json_t *r) { json_object_set_new(r, "colour", json_string("blue")); }
static void m_no_members(json_t *r) { json_object_set_new(r, "members", json_array()); }
static void m_bad_role(json_t *r) {
    json_array_append_new(json_object_get(member(r, 3), "roles"), json_string("king"));
}
static void m_dup_id(json_t *r) { json_object_set_new(member(r, 3), "id", json_string("mois")); }
static void m_bad_type(json_t *r) {
    json_object_set_new(member(r, 3), "credential_types", json_pack("[s]", "passport"));
}
static void m_types_on_carrier(json_t *r) {
    json_object_set_new(member(r, 1), "credential_types", json_pack("[s]", "driver"));
}
static void m_no_validator_obj(json_t *r) { json_object_del(member(r, 1), "validator"); }
static void m_bad_consensus_key(json_t *r) {
    json_object_set_new(val(r, 0), "consensus_key", json_string("zz"));
}
static void m_bad_pin(json_t *r) { json_object_set_new(val(r, 2), "tls_pin", json_string("0011")); }
static void m_bad_p2p(json_t *r) { json_object_set_new(val(r, 1), "p2p", json_string("127.0.0.1")); }
static void m_port_zero(json_t *r) { json_object_set_new(val(r, 1), "p2p", json_string("host:0")); }
static void m_dup_consensus(json_t *r) {
    json_object_set(val(r, 1), "consensus_key", json_object_get(val(r, 0), "consensus_key"));
}
static void m_propose_short(json_t *r) {
    json_object_set_new(json_object_get(r, "consensus"), "timeout_propose_ms", json_integer(500));
}
static void m_zero_txs(json_t *r) {
    json_object_set_new(json_object_get(r, "consensus"), "max_block_txs", json_integer(0));
}
static void m_observer_pin(json_t *r) {
    json_object_set_new(json_array_get(json_object_get(r, "observers"), 0), "tls_pin", json_string("x"));
}
static void m_observer_is_member(json_t *r) {
    json_object_set_new(json_array_get(json_object_get(r, "observers"), 0), "name", json_string("skt"));
}
static void m_no_validators(json_t *r) {
    json_t *m = member(r, 3);
    json_incref(m);
    json_object_set_new(r, "members", json_array());
    json_array_append_new(json_object_get(r, "members"), m);
}
static void m_issuer_no_key(json_t *r) { json_object_del(member(r, 3), "tx_key"); }
static void m_even_prefix(json_t *r) {
    char k[67];
    memset(k, 'a', 66);
    k[66] = 0;
    k[0] = '0';
    k[1] = '4';
    json_object_set_new(member(r, 3), "tx_key", json_string(k));
}

static void bad_fields_are_named(void **state) {
    (void)state;
    expect_refusal(m_short_tx_key, "members[2].tx_key: expected 66 hex characters");
    expect_refusal(m_no_chain, "chain_id: missing");
    expect_refusal(m_bad_chain, "chain_id:");
    expect_refusal(m_time_string, "genesis_time_ms: expected an integer");
    expect_refusal(m_unknown_field, "colour: unknown field");
    expect_refusal(m_no_members, "members:");
    expect_refusal(m_bad_role, "members[3].roles[1]");
    expect_refusal(m_dup_id, "members[3].id: \"mois\" is already members[0]");
    expect_refusal(m_bad_type, "members[3].credential_types[0]");
    expect_refusal(m_types_on_carrier, "members[1].credential_types");
    expect_refusal(m_no_validator_obj, "members[1].validator");
    expect_refusal(m_bad_consensus_key, "members[0].validator.consensus_key: expected 66 hex characters");
    expect_refusal(m_bad_pin, "members[2].validator.tls_pin: expected 64 hex characters");
    expect_refusal(m_bad_p2p, "members[1].validator.p2p");
    expect_refusal(m_port_zero, "members[1].validator.p2p");
    expect_refusal(m_dup_consensus, "members[1].validator.consensus_key: same key as validator mois");
    expect_refusal(m_propose_short, "consensus.timeout_propose_ms");
    expect_refusal(m_zero_txs, "consensus.max_block_txs");
    expect_refusal(m_observer_pin, "observers[0].tls_pin");
    expect_refusal(m_observer_is_member, "observers[0].name");
    expect_refusal(m_no_validators, "no member has the validator role");
    expect_refusal(m_issuer_no_key, "members[3].tx_key: missing");
    expect_refusal(m_even_prefix, "members[3].tx_key");
}

static void garbage_is_refused(void **state) {
    (void)state;
    const char *bad[] = {"", "{", "[]", "null", "{\"chain_id\": \"a\", \"chain_id\": \"b\"}", "\x01\x02"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mn_genesis *g = NULL;
        char err[256] = "";
        assert_int_equal(mn_genesis_parse(&g, bad[i], strlen(bad[i]), err, sizeof err), MN_EINVAL);
        assert_null(g);
        assert_true(err[0] != '\0');
    }
    /* truncations of a valid file never crash and never pass */
    size_t n = strlen(base_json);
    for (size_t cut = 0; cut + 2 < n; cut += 7) {
        mn_genesis *g = NULL;
        char err[256];
        assert_int_not_equal(mn_genesis_parse(&g, base_json, cut, err, sizeof err), MN_OK);
    }
}

static void names_map_both_ways(void **state) {
    (void)state;
    for (int t = MN_CRED_TYPE_MIN; t <= MN_CRED_TYPE_MAX; t++)
        assert_int_equal(mn_cred_type_from_name(mn_cred_type_name(t)), t);
    assert_string_equal(mn_cred_type_name(4), "foreigner");
    assert_null(mn_cred_type_name(0));
    assert_null(mn_cred_type_name(6));
    assert_int_equal(mn_cred_type_from_name("passport"), 0);
    assert_string_equal(mn_role_name(MN_ROLE_CARRIER), "carrier");
    assert_null(mn_role_name(MN_ROLE_CARRIER | MN_ROLE_ISSUER));
    assert_int_equal(mn_role_from_name("validator"), MN_ROLE_VALIDATOR);
    assert_int_equal(mn_role_from_name("verifier"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_every_field),
        cmocka_unit_test(bad_fields_are_named),
        cmocka_unit_test(garbage_is_refused),
        cmocka_unit_test(names_map_both_ways),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
