/* test_config.c: config.json loads with defaults, bad fields are named, a
 * home whose keys are not genesis's is refused; "host:port" parsing; and
 * the atomic file helpers. */
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

#include "addr.h"
#include "config.h"
#include "crypto.h"
#include "fileio.h"
#include "genesis.h"

static char home[64];

static int setup(void **state) {
    (void)state;
    snprintf(home, sizeof home, "/tmp/mn_test_config_XXXXXX");
    return mkdtemp(home) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    return system(cmd) == 0 ? 0 : -1;
}

static int load_text(const char *text, mn_config *cfg, char *err, size_t err_len) {
    char p[128], e[256];
    snprintf(p, sizeof p, "%s/config.json", home);
    assert_int_equal(mn_file_write_atomic(p, text, strlen(text), 0644, e, sizeof e), MN_OK);
    return mn_config_load(cfg, home, err, err_len);
}

static void minimal_config_gets_defaults(void **state) {
    (void)state;
    mn_config cfg;
    char err[400] = "";
    int rc = load_text("{\"node_name\": \"skt\", \"role\": \"validator\", \"member_id\": \"skt\", "
                       "\"listen\": {\"p2p\": \"127.0.0.1:1\", \"rpc\": \"[::1]:2\", \"http\": \"localhost:3\"}}",
                       &cfg, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_true(cfg.is_validator);
    assert_string_equal(cfg.member_id, "skt");
    assert_string_equal(cfg.listen_rpc, "[::1]:2");
    char want[128];
    snprintf(want, sizeof want, "%s/data", home);
    assert_string_equal(cfg.data_dir, want);
    snprintf(want, sizeof want, "%s/keys/consensus.key", home);
    assert_string_equal(cfg.consensus_key_path, want);
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.limits.rpc_max_connections, 1024);
    assert_int_equal(cfg.limits.rpc_max_inflight, 64);
    assert_int_equal(cfg.limits.rpc_idle_timeout_ms, 60000);
    assert_int_equal(cfg.limits.mempool_max_txs, 50000);
    assert_int_equal(cfg.limits.mempool_max_bytes, 64u * 1024 * 1024);
    assert_int_equal(cfg.limits.read_cache_mb, 512);
    assert_int_equal(cfg.peer_count, 0);
}

static void written_config_loads_back(void **state) {
    (void)state;
    mn_config cfg, back;
    char err[400] = "";
    mn_config_default(&cfg, home, "obs3", false);
    snprintf(cfg.listen_p2p, sizeof cfg.listen_p2p, "0.0.0.0:26600");
    snprintf(cfg.listen_rpc, sizeof cfg.listen_rpc, "0.0.0.0:26601");
    snprintf(cfg.listen_http, sizeof cfg.listen_http, "0.0.0.0:26602");
    cfg.limits.rpc_max_inflight = 7;
    cfg.limits.read_cache_mb = 2048;
    cfg.peer_count = 2;
    snprintf(cfg.peers[0], MN_ADDR_MAX, "10.0.0.1:26600");
    snprintf(cfg.peers[1], MN_ADDR_MAX, "val.example:26603");
    snprintf(cfg.log_level, sizeof cfg.log_level, "debug");
    assert_int_equal(mn_config_write(&cfg, err, sizeof err), MN_OK);
    int rc = mn_config_load(&back, home, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_false(back.is_validator);
    assert_string_equal(back.node_name, "obs3");
    assert_string_equal(back.member_id, "");
    assert_int_equal(back.limits.rpc_max_inflight, 7);
    assert_int_equal(back.limits.read_cache_mb, 2048);
    assert_int_equal(back.peer_count, 2);
    assert_string_equal(back.peers[1], "val.example:26603");
    assert_string_equal(back.log_level, "debug");
    assert_string_equal(back.data_dir, cfg.data_dir);
}

static void bad_fields_are_named(void **state) {
    (void)state;
    const char *L = "\"listen\": {\"p2p\": \"h:1\", \"rpc\": \"h:2\", \"http\": \"h:3\"}";
    struct { const char *json_fmt; const char *want; } cases[] = {
        {"{\"node_name\": \"a\", \"role\": \"king\", %s}", "role:"},
        {"{\"node_name\": \"a\", \"role\": \"validator\", %s}", "member_id: missing"},
        {"{\"role\": \"observer\", %s}", "node_name: missing"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"member_id\": \"x\", %s}", "member_id:"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"colour\": 1, %s}", "colour: unknown field"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"log_level\": \"loud\", %s}", "log_level:"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"limits\": {\"rpc_max_inflight\": 0}, %s}",
         "limits.rpc_max_inflight"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"limits\": {\"read_cache_mb\": 0}, %s}",
         "limits.read_cache_mb"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"limits\": {\"read_cache_mb\": 65537}, %s}",
         "limits.read_cache_mb"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"limits\": {\"rpc_inflight\": 3}, %s}",
         "limits.rpc_inflight: unknown field"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"peers\": [\"nope\"], %s}", "peers[0]"},
        {"{\"node_name\": \"a\", \"role\": \"observer\", \"listen\": {\"p2p\": \"h:1\", \"rpc\": \"h:99999\", "
         "\"http\": \"h:3\"}}", "listen.rpc"},
        {"{\"node_name\": \"a\", \"role\": \"observer\" %s", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[600], err[400] = "";
        if (strstr(cases[i].json_fmt, "%s"))
            snprintf(text, sizeof text, cases[i].json_fmt, L);
        else
            snprintf(text, sizeof text, "%s", cases[i].json_fmt);
        mn_config cfg;
        int rc = load_text(text, &cfg, err, sizeof err);
        if (rc != MN_EINVAL || !strstr(err, cases[i].want))
            fail_msg("case %zu: wanted \"%s\", got %d \"%s\"", i, cases[i].want, rc, err);
    }
    char other[] = "/tmp/mn_test_config_none_XXXXXX";
    assert_non_null(mkdtemp(other));
    mn_config cfg;
    char err[400];
    assert_int_equal(mn_config_load(&cfg, other, err, sizeof err), MN_EIO);
    rmdir(other);
}

static void keys_must_match_genesis(void **state) {
    (void)state;
    mn_genesis *g = mn_genesis_new();
    assert_non_null(g);
    snprintf(g->chain_id, sizeof g->chain_id, "c");
    mn_member *m = &g->members[0];
    snprintf(m->id, sizeof m->id, "mois");
    m->roles = MN_ROLE_VALIDATOR;
    m->validator_index = 0;
    memset(m->consensus_pubkey, 2, 33);
    memset(m->tls_pin, 9, 32);
    g->member_count = 1;
    g->validator_count = 1;
    g->validator_members[0] = 0;
    g->observer_count = 1;
    snprintf(g->observers[0].name, sizeof g->observers[0].name, "obs1");
    memset(g->observers[0].tls_pin, 5, 32);
    uint8_t key[33], pin[32], wrong_key[33], wrong_pin[32];
    memset(key, 2, 33);
    memset(pin, 9, 32);
    memset(wrong_key, 3, 33);
    memset(wrong_pin, 4, 32);
    mn_config cfg;
    char err[400] = "";
    mn_config_default(&cfg, home, "mois", true);
    assert_int_equal(mn_config_check_genesis(&cfg, g, key, pin, err, sizeof err), MN_OK);
    assert_int_equal(mn_config_check_genesis(&cfg, g, wrong_key, pin, err, sizeof err), MN_EPERM);
    assert_non_null(strstr(err, "consensus key"));
    assert_int_equal(mn_config_check_genesis(&cfg, g, key, wrong_pin, err, sizeof err), MN_EPERM);
    assert_non_null(strstr(err, "tls_pin"));
    assert_int_equal(mn_config_check_genesis(&cfg, g, NULL, pin, err, sizeof err), MN_EPERM);
    mn_config_default(&cfg, home, "kt", true);
    assert_int_equal(mn_config_check_genesis(&cfg, g, key, pin, err, sizeof err), MN_EPERM);
    assert_non_null(strstr(err, "not a validator"));
    mn_config_default(&cfg, home, "obs1", false);
    memset(pin, 5, 32);
    assert_int_equal(mn_config_check_genesis(&cfg, g, NULL, pin, err, sizeof err), MN_OK);
    assert_int_equal(mn_config_check_genesis(&cfg, g, NULL, wrong_pin, err, sizeof err), MN_EPERM);
    mn_config_default(&cfg, home, "obs9", false);
    assert_int_equal(mn_config_check_genesis(&cfg, g, NULL, pin, err, sizeof err), MN_EPERM);
    assert_non_null(strstr(err, "not listed"));
    mn_genesis_free(g);
}

static void addresses_parse_strictly(void **state) {
    (void)state;
    mn_addr a;
    char err[200];
    assert_int_equal(mn_addr_parse(&a, "127.0.0.1:26600", err, sizeof err), MN_OK);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 26600);
    assert_int_equal(mn_addr_parse(&a, "[::1]:65535", err, sizeof err), MN_OK);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 65535);
    const char *bad[] = {"", ":1", "h:", "h:0", "h:65536", "h:12a", "::1:80", "[::1]80", "h h:1", "h:-1",
                         "h:0000080"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mn_addr_parse(&a, bad[i], err, sizeof err) != MN_EINVAL) fail_msg("accepted \"%s\"", bad[i]);
    char out[64];
    assert_int_equal(mn_addr_format(out, sizeof out, "::1", 5), MN_OK);
    assert_string_equal(out, "[::1]:5");
    assert_int_equal(mn_addr_format(out, 4, "host", 5), MN_ETOOBIG);
}

static void files_are_written_whole_and_read_bounded(void **state) {
    (void)state;
    char p[128], err[256];
    snprintf(p, sizeof p, "%s/f.txt", home);
    assert_int_equal(mn_file_write_atomic(p, "hello", 5, 0600, err, sizeof err), MN_OK);
    assert_int_equal(mn_file_write_atomic(p, "bye", 3, 0600, err, sizeof err), MN_OK);
    char *buf;
    size_t len;
    assert_int_equal(mn_file_read(p, 100, &buf, &len, err, sizeof err), MN_OK);
    assert_int_equal(len, 3);
    assert_string_equal(buf, "bye");
    free(buf);
    assert_int_equal(mn_file_read(p, 2, &buf, &len, err, sizeof err), MN_ETOOBIG);
    assert_null(buf);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char tmp[140];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(mn_path_exists(tmp));
    assert_int_equal(mn_file_read(home, 100, &buf, &len, err, sizeof err), MN_EIO); /* a directory */
    snprintf(p, sizeof p, "%s/a/b/c", home);
    assert_int_equal(mn_mkdir_p(p, 0700, err, sizeof err), MN_OK);
    assert_int_equal(mn_mkdir_p(p, 0700, err, sizeof err), MN_OK);
    snprintf(p, sizeof p, "%s/nodir/x", home);
    assert_int_equal(mn_file_write_atomic(p, "x", 1, 0600, err, sizeof err), MN_EIO);
    /* A directory's footprint counts its regular files, in subdirectories too. */
    snprintf(p, sizeof p, "%s/sized", home);
    assert_int_equal(mn_mkdir_p(p, 0700, err, sizeof err), MN_OK);
    assert_int_equal(mn_dir_file_bytes(p), 0);
    char f[160];
    snprintf(f, sizeof f, "%s/one", p);
    assert_int_equal(mn_file_write_atomic(f, "12345", 5, 0600, err, sizeof err), MN_OK);
    snprintf(f, sizeof f, "%s/two", p);
    assert_int_equal(mn_file_write_atomic(f, "123", 3, 0600, err, sizeof err), MN_OK);
    snprintf(f, sizeof f, "%s/sub", p);
    assert_int_equal(mn_mkdir_p(f, 0700, err, sizeof err), MN_OK);
    assert_int_equal(mn_dir_file_bytes(p), 8);
    snprintf(f, sizeof f, "%s/sub/three", p);
    assert_int_equal(mn_file_write_atomic(f, "1234567", 7, 0600, err, sizeof err), MN_OK);
    assert_int_equal(mn_dir_file_bytes(p), 15);
    snprintf(f, sizeof f, "%s/missing", home);
    assert_int_equal(mn_dir_file_bytes(f), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_config_gets_defaults),
        cmocka_unit_test(written_config_loads_back),
        cmocka_unit_test(bad_fields_are_named),
        cmocka_unit_test(keys_must_match_genesis),
        cmocka_unit_test(addresses_parse_strictly),
        cmocka_unit_test(files_are_written_whole_and_read_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
