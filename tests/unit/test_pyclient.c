/* test_pyclient.c: the pure-Python client of tests/functional/pyclient.py
 * signs exactly as libsecp256k1 does (RFC 6979, low-S: byte-identical
 * signatures that mn_verify accepts), builds the same transaction bytes as
 * mn_client_build_tx, and talks to the RPC server (a fake node). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "crypto.h"
#include "fake_node.h"

#define PYTHON "/usr/bin/python3"

static char g_script[PATH_MAX + 64];

/* Finds the repository root above this test binary (build/tests or
 * build/asan/tests) by looking for the script. */
static int find_script(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    char *dir = dirname(exe);
    for (int up = 0; up < 5; up++) {
        snprintf(g_script, sizeof g_script, "%s/tests/functional/pyclient.py", dir);
        if (access(g_script, R_OK) == 0) return 0;
        dir = dirname(dir);
    }
    return -1;
}

static json_t *run_py(const char *args) {
    char cmd[PATH_MAX + 2048];
    snprintf(cmd, sizeof cmd, "%s %s %s", PYTHON, g_script, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[65536];
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = 0;
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("pyclient %s failed: %s", args, out);
    json_error_t e;
    json_t *o = json_loads(out, 0, &e);
    if (!o) fail_msg("pyclient printed non-JSON: %s", out);
    return o;
}

static void unhex(uint8_t *out, size_t len, json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    assert_true(json_is_string(v));
    const char *s = json_string_value(v);
    if (strlen(s) != 2 * len || mn_hex_decode(out, len, s) != MN_OK) fail_msg("%s: bad hex %s", key, s);
}

static void python_signatures_equal_libsecp256k1(void **state) {
    (void)state;
    if (access(PYTHON, X_OK) != 0) skip();
    assert_int_equal(find_script(), 0);
    for (int round = 0; round < 8; round++) {
        uint8_t sk[32], pk[33], cred[32], digest[32];
        assert_int_equal(mn_key_generate(sk), MN_OK);
        assert_int_equal(mn_key_pubkey(pk, sk), MN_OK);
        assert_int_equal(mn_random_bytes(cred, 32), MN_OK);
        assert_int_equal(mn_random_bytes(digest, 32), MN_OK);
        char skh[65], credh[65], dh[65], args[512];
        uint64_t nonce = (uint64_t)round * 1000003u + 1;
        snprintf(args, sizeof args, "sign --key %s --chain midnode-test --signer knpa --nonce %llu --credential %s "
                                    "--digest %s",
                 mn_hex_encode(skh, sk, 32), (unsigned long long)nonce, mn_hex_encode(credh, cred, 32),
                 mn_hex_encode(dh, digest, 32));
        json_t *o = run_py(args);

        uint8_t py_pk[33], sig[64], py_digest[32], dsig[64], c_sig[64], py_hash[32];
        unhex(py_pk, 33, o, "pubkey");
        assert_memory_equal(py_pk, pk, 33);
        unhex(sig, 64, o, "signature");
        unhex(py_digest, 32, o, "digest");
        assert_true(mn_verify(sig, py_digest, pk));
        assert_int_equal(mn_sign(c_sig, py_digest, sk), MN_OK);
        assert_memory_equal(sig, c_sig, 64); /* RFC 6979 + low-S: deterministic */
        unhex(dsig, 64, o, "digest_signature");
        assert_int_equal(mn_sign(c_sig, digest, sk), MN_OK);
        assert_memory_equal(dsig, c_sig, 64);
        assert_true(mn_verify(dsig, digest, pk));

        /* Same transaction bytes as the C builder. */
        Midnode__RevokeBody rb = MIDNODE__REVOKE_BODY__INIT;
        rb.credential_id = (ProtobufCBinaryData){32, cred};
        rb.reason = (char *)"test";
        Midnode__TxPayload body = MIDNODE__TX_PAYLOAD__INIT;
        body.body_case = MIDNODE__TX_PAYLOAD__BODY_REVOKE;
        body.revoke = &rb;
        uint8_t *tx = NULL, h[32];
        size_t tx_len = 0;
        assert_int_equal(mn_client_build_tx(&tx, &tx_len, h, "midnode-test", "knpa", nonce, &body, sk), MN_OK);
        const char *py_tx = json_string_value(json_object_get(o, "tx"));
        assert_non_null(py_tx);
        assert_int_equal(strlen(py_tx), 2 * tx_len);
        uint8_t *ptx = malloc(tx_len);
        assert_non_null(ptx);
        assert_int_equal(mn_hex_decode(ptx, tx_len, py_tx), MN_OK);
        assert_memory_equal(ptx, tx, tx_len);
        unhex(py_hash, 32, o, "tx_hash");
        assert_memory_equal(py_hash, h, 32);
        free(ptx);
        free(tx);
        json_decref(o);
        mn_cleanse(sk, sizeof sk);
    }
}

static void python_client_submits_through_rpc(void **state) {
    (void)state;
    if (access(PYTHON, X_OK) != 0) skip();
    assert_int_equal(find_script(), 0);
    char dir[] = "/tmp/mn-test-pyclient-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char keyfile[64], err[256];
    snprintf(keyfile, sizeof keyfile, "%s/mofa.key", dir);
    uint8_t sk[32], pk[33];
    assert_int_equal(mn_key_generate(sk), MN_OK);
    assert_int_equal(mn_key_pubkey(pk, sk), MN_OK);
    assert_int_equal(mn_keyfile_write(keyfile, sk, false, err, sizeof err), MN_OK);
    static fake_node node;
    memset(&node, 0, sizeof node);
    fn_add_signer(&node, "mofa", pk);
    fn_start(&node);
    char cred[65], dev[65], args[1024];
    uint8_t b[32];
    memset(b, 0x77, 32);
    mn_hex_encode(cred, b, 32);
    memset(b, 0x88, 32);
    mn_hex_encode(dev, b, 32);
    snprintf(args, sizeof args, "issue --node %s --keyfile %s --signer mofa --credential %s --device %s --carrier kt",
             node.lt.addr, keyfile, cred, dev);
    json_t *o = run_py(args);
    assert_int_equal(json_integer_value(json_object_get(o, "height")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "ACTIVE");
    assert_string_equal(json_string_value(json_object_get(o, "unknown_signer")), "RPC_NOT_FOUND");
    json_decref(o);
    assert_int_equal(fn_stop(&node), 0);
    unlink(keyfile);
    rmdir(dir);
}

int main(void) {
    mn_log_threshold = MN_LOG_ERROR; /* the servers' INFO lines are noise here */
    if (mn_crypto_init() != MN_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(python_signatures_equal_libsecp256k1),
        cmocka_unit_test(python_client_submits_through_rpc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
