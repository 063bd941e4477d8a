/* test_testnet.c: `midctl testnet` writes exactly the files INTERFACE.md
 * lists, every node home matches genesis, and `midnode --dev` set-up is
 * idempotent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "crypto.h"
#include "fileio.h"
#include "genesis.h"
#include "testnet.h"
#include "tlskey.h"

static char tmp[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/mn_test_testnet_XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static mode_t mode_of(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

/* Loads a node home and checks its keys against genesis the way midnode does. */
static void check_home(const char *home, const mn_genesis *g, bool validator) {
    mn_config cfg;
    char err[512] = "";
    int rc = mn_config_load(&cfg, home, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(cfg.is_validator, validator);
    mn_genesis *hg;
    assert_int_equal(mn_genesis_load(&hg, cfg.genesis_path, err, sizeof err), MN_OK);
    assert_memory_equal(hg->genesis_hash, g->genesis_hash, 32); /* identical bytes */
    mn_genesis_free(hg);
    uint8_t pub[MN_PUBKEY_LEN], *pubp = NULL;
    if (validator) {
        uint8_t seck[32];
        assert_int_equal(mn_keyfile_read(cfg.consensus_key_path, seck, err, sizeof err), MN_OK);
        assert_int_equal(mn_key_pubkey(pub, seck), MN_OK);
        pubp = pub;
        assert_int_equal(mode_of(cfg.consensus_key_path), 0600);
    }
    EVP_PKEY *k;
    assert_int_equal(mn_tlskey_read(&k, cfg.tls_key_path, err, sizeof err), MN_OK);
    uint8_t pin[32];
    assert_int_equal(mn_tlskey_pin(pin, k), MN_OK);
    EVP_PKEY_free(k);
    rc = mn_config_check_genesis(&cfg, g, pubp, pin, err, sizeof err);
    if (rc) fail_msg("%s: %s", home, err);
}

static void writes_a_ready_cluster(void **state) {
    (void)state;
    char dir[300], p[400], err[512] = "";
    snprintf(dir, sizeof dir, "%s/net", tmp);
    mn_testnet_opts o;
    mn_testnet_opts_default(&o);
    o.dir = dir;
    o.validators = 5;
    o.observers = 2;
    o.base_port = 31000;
    int rc = mn_testnet_write(&o, err, sizeof err);
    if (rc) fail_msg("%s", err);
    snprintf(p, sizeof p, "%s/genesis.json", dir);
    mn_genesis *g;
    rc = mn_genesis_load(&g, p, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_string_equal(g->chain_id, "midnode-testnet");
    assert_int_equal(g->validator_count, 5);
    const char *vids[] = {"mois", "skt", "kt", "lgu", "val4"};
    for (uint32_t i = 0; i < 5; i++) assert_string_equal(mn_genesis_validator(g, i)->id, vids[i]);
    assert_int_equal(g->observer_count, 2);
    assert_string_equal(g->observers[1].name, "obs2");
    const mn_member *knpa = mn_genesis_member(g, "knpa");
    assert_non_null(knpa);
    assert_int_equal(knpa->roles, MN_ROLE_ISSUER);
    assert_int_equal(knpa->cred_types, 1u << 2);
    const mn_member *mois = mn_genesis_member(g, "mois");
    assert_int_equal(mois->roles, MN_ROLE_VALIDATOR | MN_ROLE_ISSUER);
    assert_int_equal(mn_genesis_member(g, "lgu")->roles, MN_ROLE_VALIDATOR | MN_ROLE_CARRIER);
    assert_string_equal(mn_genesis_member(g, "skt")->p2p_addr, "127.0.0.1:31003");
    assert_int_equal(g->member_count, 9); /* 5 validators, knpa mpva moj mofa */
    for (size_t i = 0; i < g->member_count; i++) {
        snprintf(p, sizeof p, "%s/keys/%s.key", dir, g->members[i].id);
        assert_int_equal(mode_of(p), 0600);
        uint8_t s[32], pub[33];
        assert_int_equal(mn_keyfile_read(p, s, err, sizeof err), MN_OK);
        assert_int_equal(mn_key_pubkey(pub, s), MN_OK);
        assert_memory_equal(pub, g->members[i].tx_pubkey, 33);
    }
    const char *nodes[] = {"mois", "skt", "kt", "lgu", "val4", "obs1", "obs2"};
    for (int i = 0; i < 7; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, nodes[i]);
        check_home(p, g, i < 5);
    }
    /* testnet.json */
    snprintf(p, sizeof p, "%s/testnet.json", dir);
    json_error_t je;
    json_t *t = json_load_file(p, 0, &je);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "chain_id")), "midnode-testnet");
    json_t *jn = json_object_get(t, "nodes");
    assert_int_equal(json_array_size(jn), 7);
    json_t *n5 = json_array_get(jn, 5);
    assert_string_equal(json_string_value(json_object_get(n5, "name")), "obs1");
    assert_string_equal(json_string_value(json_object_get(n5, "role")), "observer");
    assert_string_equal(json_string_value(json_object_get(n5, "p2p")), "127.0.0.1:31015");
    assert_string_equal(json_string_value(json_object_get(n5, "rpc")), "127.0.0.1:31016");
    assert_string_equal(json_string_value(json_object_get(n5, "http")), "127.0.0.1:31017");
    assert_non_null(strstr(json_string_value(json_object_get(n5, "home")), "/net/obs1"));
    json_t *jm = json_object_get(t, "members");
    assert_int_equal(json_array_size(jm), 9);
    json_t *m0 = json_array_get(jm, 0);
    assert_string_equal(json_string_value(json_object_get(m0, "id")), "mois");
    assert_int_equal(json_array_size(json_object_get(m0, "roles")), 2);
    assert_true(mn_path_exists(json_string_value(json_object_get(m0, "key_file"))));
    json_decref(t);
    /* written once: a second run refuses rather than replacing keys */
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_ESTATE);
    mn_genesis_free(g);
}

static void bad_options_are_refused(void **state) {
    (void)state;
    char dir[300], err[512] = "";
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    mn_testnet_opts o;
    mn_testnet_opts_default(&o);
    o.dir = dir;
    o.validators = 0;
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL);
    o.validators = 4;
    o.base_port = 65530;
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL);
    assert_non_null(strstr(err, "base-port"));
    o.base_port = 26600;
    o.host = "a b";
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL);
    o.host = NULL;
    o.dir = NULL;
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL);
}

/* One host name per node (containers): peers are dialled by name, every
 * node listens on all interfaces. */
static void hosts_give_each_node_its_name(void **state) {
    (void)state;
    char dir[300], p[400], err[512] = "";
    snprintf(dir, sizeof dir, "%s/hosts", tmp);
    mn_testnet_opts o;
    mn_testnet_opts_default(&o);
    o.dir = dir;
    o.validators = 4;
    o.observers = 1;
    o.hosts = "mois,skt,kt,lgu";
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL); /* one short */
    assert_non_null(strstr(err, "4 hosts for 5 nodes"));
    o.hosts = "mois,skt,kt,lgu,obs1,extra";
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL);
    o.hosts = "mois,,kt,lgu,obs1";
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL);
    o.hosts = "mois,s k t,kt,lgu,obs1";
    assert_int_equal(mn_testnet_write(&o, err, sizeof err), MN_EINVAL);
    snprintf(p, sizeof p, "%s/genesis.json", dir);
    assert_false(mn_path_exists(p)); /* refused before anything was written */
    o.hosts = "mois,skt,kt,lgu,obs1";
    int rc = mn_testnet_write(&o, err, sizeof err);
    if (rc) fail_msg("%s", err);
    mn_genesis *g;
    assert_int_equal(mn_genesis_load(&g, p, err, sizeof err), MN_OK);
    assert_string_equal(mn_genesis_member(g, "mois")->p2p_addr, "mois:26600");
    assert_string_equal(mn_genesis_member(g, "lgu")->p2p_addr, "lgu:26609");
    const char *nodes[] = {"mois", "skt", "kt", "lgu", "obs1"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, nodes[i]);
        check_home(p, g, i < 4);
    }
    mn_config cfg;
    snprintf(p, sizeof p, "%s/kt", dir);
    assert_int_equal(mn_config_load(&cfg, p, err, sizeof err), MN_OK);
    assert_string_equal(cfg.listen_p2p, "0.0.0.0:26606");
    assert_string_equal(cfg.listen_rpc, "0.0.0.0:26607");
    assert_string_equal(cfg.listen_http, "0.0.0.0:26608");
    snprintf(p, sizeof p, "%s/testnet.json", dir);
    json_error_t je;
    json_t *t = json_load_file(p, 0, &je);
    assert_non_null(t);
    json_t *n4 = json_array_get(json_object_get(t, "nodes"), 4);
    assert_string_equal(json_string_value(json_object_get(n4, "name")), "obs1");
    assert_string_equal(json_string_value(json_object_get(n4, "p2p")), "obs1:26612");
    assert_string_equal(json_string_value(json_object_get(n4, "rpc")), "obs1:26613");
    json_decref(t);
    mn_genesis_free(g);
    char *args[] = {"testnet", "--dir", dir, "--hosts", "a,b"};
    assert_int_equal(mn_testnet_main(5, args), 2);
}

static void dev_home_is_idempotent(void **state) {
    (void)state;
    char home[300], p[400], err[512] = "";
    snprintf(home, sizeof home, "%s/dev", tmp);
    int rc = mn_testnet_dev(home, err, sizeof err);
    if (rc) fail_msg("%s", err);
    snprintf(p, sizeof p, "%s/genesis.json", home);
    mn_genesis *g;
    assert_int_equal(mn_genesis_load(&g, p, err, sizeof err), MN_OK);
    assert_int_equal(g->validator_count, 1);
    assert_string_equal(mn_genesis_validator(g, 0)->id, "mois");
    assert_int_equal(g->member_count, 8); /* mois knpa mpva moj mofa skt kt lgu */
    snprintf(p, sizeof p, "%s/keys/members/skt.key", home);
    assert_int_equal(mode_of(p), 0600);
    check_home(home, g, true);
    mn_config cfg;
    assert_int_equal(mn_config_load(&cfg, home, err, sizeof err), MN_OK);
    assert_string_equal(cfg.listen_rpc, "127.0.0.1:26601");
    uint8_t first[32];
    memcpy(first, g->genesis_hash, 32);
    mn_genesis_free(g);
    assert_int_equal(mn_testnet_dev(home, err, sizeof err), MN_OK);
    snprintf(p, sizeof p, "%s/genesis.json", home);
    assert_int_equal(mn_genesis_load(&g, p, err, sizeof err), MN_OK);
    assert_memory_equal(first, g->genesis_hash, 32);
    mn_genesis_free(g);
    /* a half-made home (genesis lost) is completed with the keys it has */
    uint8_t skt_before[32], skt_after[32];
    snprintf(p, sizeof p, "%s/keys/members/skt.key", home);
    assert_int_equal(mn_keyfile_read(p, skt_before, err, sizeof err), MN_OK);
    snprintf(p, sizeof p, "%s/genesis.json", home);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mn_testnet_dev(home, err, sizeof err), MN_OK);
    snprintf(p, sizeof p, "%s/keys/members/skt.key", home);
    assert_int_equal(mn_keyfile_read(p, skt_after, err, sizeof err), MN_OK);
    assert_memory_equal(skt_before, skt_after, 32);
    snprintf(p, sizeof p, "%s/genesis.json", home);
    assert_int_equal(mn_genesis_load(&g, p, err, sizeof err), MN_OK);
    check_home(home, g, true);
    mn_genesis_free(g);
}

static void ctl_testnet_exit_codes(void **state) {
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/ctl", tmp);
    char *ok_args[] = {"testnet", "--dir", dir, "--validators", "1", "--base-port", "32000", "--chain-id", "c-1"};
    assert_int_equal(mn_testnet_main(9, ok_args), 0);
    assert_int_equal(mn_testnet_main(9, ok_args), 1); /* exists */
    char *bad[] = {"testnet", "--dir", dir, "--validators", "x"};
    assert_int_equal(mn_testnet_main(5, bad), 2);
    char *unknown[] = {"testnet", "--frobnicate", "1"};
    assert_int_equal(mn_testnet_main(3, unknown), 2);
    char *nodir[] = {"testnet"};
    assert_int_equal(mn_testnet_main(1, nodir), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_a_ready_cluster),
        cmocka_unit_test(bad_options_are_refused),
        cmocka_unit_test(hosts_give_each_node_its_name),
        cmocka_unit_test(dev_home_is_idempotent),
        cmocka_unit_test(ctl_testnet_exit_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
