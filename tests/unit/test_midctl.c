/* test_midctl.c: runs the built midctl (beside this test: ../bin/midctl)
 * against an in-process fake node and checks its JSON output and exit
 * codes (0 done, 1 refused or failed, 2 usage). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"
#include "fake_node.h"

static char g_midctl[PATH_MAX];
static char g_dir[] = "/tmp/mn-test-midctl-XXXXXX";
static char g_mois_key[PATH_MAX + 32], g_skt_key[PATH_MAX + 32];
static fake_node g_node;

/* Runs midctl with the fake node and --json; returns the exit status and
 * the last stdout line parsed as JSON (NULL when none), and the number of
 * stdout lines. */
static int run(json_t **out, int *lines, const char *fmt, ...) MN_PRINTF(3, 4);
static int run(json_t **out, int *lines, const char *fmt, ...) {
    char args[2048], cmd[PATH_MAX + 2048 + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s --node %s --json %s 2>/dev/null", g_midctl, g_node.lt.addr, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[65536], last[65536] = "";
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        n++;
        snprintf(last, sizeof last, "%s", line);
    }
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    if (out) {
        json_error_t e;
        *out = n ? json_loads(last, 0, &e) : NULL;
        if (n && !*out) fail_msg("midctl %s printed non-JSON: %s", args, last);
    }
    if (lines) *lines = n;
    return WEXITSTATUS(st);
}

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) fail_msg("no string \"%s\" in the output", key);
    return json_string_value(v);
}

static json_int_t jint(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("no integer \"%s\" in the output", key);
    return json_integer_value(v);
}

static int setup(void **state) {
    (void)state;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    snprintf(g_midctl, sizeof g_midctl, "%s/../bin/midctl", dirname(exe));
    if (access(g_midctl, X_OK) != 0) {
        fprintf(stderr, "midctl not built at %s\n", g_midctl);
        return -1;
    }
    if (!mkdtemp(g_dir)) return -1;
    char keys[64];
    snprintf(keys, sizeof keys, "%s/keys", g_dir);
    if (mkdir(keys, 0700) != 0) return -1;
    snprintf(g_mois_key, sizeof g_mois_key, "%s/mois.key", keys);
    snprintf(g_skt_key, sizeof g_skt_key, "%s/skt.key", keys);
    memset(&g_node, 0, sizeof g_node);
    const char *paths[2] = {g_mois_key, g_skt_key};
    const char *ids[2] = {"mois", "skt"};
    for (int i = 0; i < 2; i++) {
        uint8_t sk[32], pk[33];
        char err[256];
        if (mn_key_generate(sk) != MN_OK || mn_key_pubkey(pk, sk) != MN_OK) return -1;
        if (mn_keyfile_write(paths[i], sk, false, err, sizeof err) != MN_OK) return -1;
        fn_add_signer(&g_node, ids[i], pk);
    }
    fn_start(&g_node);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    int rc = system(cmd);
    return fn_stop(&g_node) == 0 && rc == 0 ? 0 : -1;
}

static void usage_errors_exit_2(void **state) {
    (void)state;
    const char *cases[] = {
        "",
        "frobnicate",
        "status",
        "status 1234",
        "status 0000000000000000000000000000000000000000000000000000000000000000 --verify",
        "issue --type resident",
        "block",
        "block abc",
        "watch --bogus",
        "watch --from x",
        "info extra",
        "keygen",
        "health --http nonsense",
        "revoke --key /nonexistent/mois.key",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = NULL;
        int rc = run(&o, NULL, "%s", cases[i]);
        if (rc != 2) fail_msg("\"midctl %s\" exited %d, want 2", cases[i], rc);
        if (o) {
            assert_string_equal(jstr(o, "code"), "USAGE");
            json_decref(o);
        }
    }
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s --node nonsense info >/dev/null 2>&1", g_midctl);
    int st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 2);
}

static void info_prints_chain_fields(void **state) {
    (void)state;
    json_t *o = NULL;
    assert_int_equal(run(&o, NULL, "info"), 0);
    assert_string_equal(jstr(o, "chain_id"), FN_CHAIN);
    assert_int_equal(jint(o, "validators"), 4);
    assert_int_equal(jint(o, "peers"), 3);
    assert_int_equal(strlen(jstr(o, "state_root")), 64);
    assert_non_null(strstr(jstr(o, "time"), "T"));
    assert_non_null(json_object_get(o, "height"));
    json_decref(o);
}

static void hexid(char out[65], uint8_t fill) {
    uint8_t b[32];
    memset(b, fill, sizeof b);
    mn_hex_encode(out, b, 32);
}

static void lifecycle_issue_loss_revoke_block_watch(void **state) {
    (void)state;
    char cred[65], holder[65], dev[65];
    hexid(cred, 0xc1);
    hexid(holder, 0x40);
    hexid(dev, 0xde);
    json_t *o = NULL;
    int rc = run(&o, NULL, "issue --key %s --type driver --credential %s --holder %s --device %s --carrier skt "
                           "--expires 2030-01-01T00:00:00Z --wait",
                 g_mois_key, cred, holder, dev);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(jstr(o, "tx_hash")), 64);
    assert_string_equal(jstr(o, "signer"), "mois");
    json_int_t h1 = jint(o, "height");
    assert_true(h1 >= 1);
    json_decref(o);

    assert_int_equal(run(&o, NULL, "status %s", cred), 0);
    assert_string_equal(jstr(o, "credential"), cred);
    assert_string_equal(jstr(o, "status"), "ACTIVE");
    assert_true(json_is_false(json_object_get(o, "verified")));
    json_t *rec = json_object_get(o, "record");
    assert_string_equal(jstr(rec, "issuer"), "mois");
    assert_string_equal(jstr(rec, "type"), "driver");
    json_decref(o);

    /* The same credential again: refused with the ledger's reason, exit 1. */
    rc = run(&o, NULL, "issue --key %s --type driver --credential %s --holder %s --device %s --carrier skt",
             g_mois_key, cred, holder, dev);
    assert_int_equal(rc, 1);
    assert_string_equal(jstr(o, "code"), "TX_CREDENTIAL_EXISTS");
    json_decref(o);

    /* The carrier's key file name gives the signer "skt". */
    assert_int_equal(run(&o, NULL, "report-loss --key %s --device %s --wait", g_skt_key, dev), 0);
    assert_string_equal(jstr(o, "signer"), "skt");
    json_decref(o);
    assert_int_equal(run(&o, NULL, "status %s", cred), 0);
    assert_string_equal(jstr(o, "status"), "SUSPENDED");
    json_decref(o);
    assert_int_equal(run(&o, NULL, "report-recovery --key %s --device %s", g_skt_key, dev), 0);
    assert_null(json_object_get(o, "height")); /* no --wait */
    json_decref(o);
    assert_int_equal(run(&o, NULL, "suspend --key %s --credential %s --wait", g_mois_key, cred), 0);
    json_decref(o);
    assert_int_equal(run(&o, NULL, "resume --key %s --credential %s --wait", g_mois_key, cred), 0);
    json_decref(o);
    assert_int_equal(run(&o, NULL, "revoke --key %s --credential %s --reason 'holder deceased' --wait", g_mois_key,
                         cred),
                     0);
    json_int_t hr = jint(o, "height");
    json_decref(o);
    assert_int_equal(run(&o, NULL, "status %s", cred), 0);
    assert_string_equal(jstr(o, "status"), "REVOKED");
    json_decref(o);

    /* --signer overrides the file name; an unknown signer fails. */
    rc = run(&o, NULL, "revoke --key %s --signer nobody --credential %s", g_mois_key, cred);
    assert_int_equal(rc, 1);
    assert_string_equal(jstr(o, "code"), "RPC_NOT_FOUND");
    json_decref(o);
    /* The right key under the wrong name: the signature does not verify. */
    rc = run(&o, NULL, "suspend --key %s --signer skt --credential %s", g_mois_key, cred);
    assert_int_equal(rc, 1);
    assert_string_equal(jstr(o, "code"), "TX_BAD_SIGNATURE");
    json_decref(o);

    /* The block of the revocation. */
    assert_int_equal(run(&o, NULL, "block %lld", (long long)hr), 0);
    json_t *hd = json_object_get(o, "header");
    assert_int_equal(jint(hd, "height"), hr);
    assert_int_equal(strlen(jstr(hd, "state_root")), 64);
    assert_int_equal(strlen(jstr(hd, "prev_hash")), 64);
    assert_string_equal(jstr(hd, "proposer"), "mois");
    json_t *txs = json_object_get(o, "txs");
    assert_int_equal(json_array_size(txs), 1);
    assert_string_equal(jstr(json_array_get(txs, 0), "kind"), "revoke");
    assert_string_equal(jstr(json_object_get(json_array_get(txs, 0), "body"), "reason"), "holder deceased");
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "commit"), "sigs")), 1);
    json_decref(o);
    rc = run(&o, NULL, "block 99999");
    assert_int_equal(rc, 1);
    assert_string_equal(jstr(o, "code"), "RPC_NOT_FOUND");
    json_decref(o);

    /* Every change since the issue, one JSON line each. */
    int lines = 0;
    assert_int_equal(run(&o, &lines, "watch --from %lld", (long long)h1), 0);
    assert_int_equal(lines, 6); /* issue, loss, recovery, suspend, resume, revoke */
    assert_string_equal(jstr(o, "kind"), "revoke");
    assert_string_equal(jstr(o, "status"), "REVOKED");
    assert_string_equal(jstr(o, "previous"), "ACTIVE");
    json_decref(o);
    assert_int_equal(run(&o, &lines, "watch --from %lld --count 2", (long long)h1), 0);
    assert_int_equal(lines, 2);
    json_decref(o);
}

static void verify_without_verifier_or_genesis_fails(void **state) {
    (void)state;
    char cred[65];
    hexid(cred, 0x01);
    json_t *o = NULL;
    /* Whatever is built in, an unverifiable answer never exits 0. */
    int rc = run(&o, NULL, "status %s --verify --genesis %s/none.json", cred, g_dir);
    assert_int_equal(rc, 1);
    assert_non_null(json_object_get(o, "error"));
    json_decref(o);
}

static void unreachable_node_exits_1(void **state) {
    (void)state;
    char cmd[PATH_MAX + 128], out[512] = "";
    snprintf(cmd, sizeof cmd, "%s --node 127.0.0.1:1 --json info 2>/dev/null", g_midctl);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(out, sizeof out, p)) out[0] = 0;
    int st = pclose(p);
    assert_int_equal(WEXITSTATUS(st), 1);
    json_error_t e;
    json_t *o = json_loads(out, 0, &e);
    assert_non_null(o);
    assert_string_equal(jstr(o, "code"), "UNAVAILABLE");
    json_decref(o);
}

static void keygen_then_pubkey_agree(void **state) {
    (void)state;
    json_t *o = NULL, *q = NULL;
    assert_int_equal(run(&o, NULL, "keygen --out %s/new.key", g_dir), 0);
    assert_int_equal(strlen(jstr(o, "pubkey")), 66);
    assert_int_equal(run(&q, NULL, "pubkey --key %s/new.key", g_dir), 0);
    assert_string_equal(jstr(o, "pubkey"), jstr(q, "pubkey"));
    json_decref(q);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/new.key", g_dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_decref(o);
    /* Never overwrites a key. */
    assert_int_equal(run(&o, NULL, "keygen --out %s/new.key", g_dir), 1);
    json_decref(o);
    assert_int_equal(run(&o, NULL, "pubkey --key %s/missing.key", g_dir), 1);
    json_decref(o);
}

/* A one-shot HTTP server answering with `status`. */
typedef struct http_one {
    int lfd;
    int status;
    pthread_t th;
} http_one;

static void *http_main(void *arg) {
    http_one *h = arg;
    int fd = accept(h->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    char buf[1024];
    (void)!read(fd, buf, sizeof buf);
    char resp[256];
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 3\r\n\r\nok\n", h->status);
    (void)!write(fd, resp, (size_t)n);
    close(fd);
    return NULL;
}

static void health_follows_http_status(void **state) {
    (void)state;
    int statuses[2] = {200, 503};
    for (int i = 0; i < 2; i++) {
        http_one h = {.status = statuses[i]};
        h.lfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(h.lfd, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(listen(h.lfd, 4), 0);
        socklen_t l = sizeof a;
        assert_int_equal(getsockname(h.lfd, (struct sockaddr *)&a, &l), 0);
        assert_int_equal(pthread_create(&h.th, NULL, http_main, &h), 0);
        json_t *o = NULL;
        int rc = run(&o, NULL, "health --http 127.0.0.1:%u", ntohs(a.sin_port));
        pthread_join(h.th, NULL);
        close(h.lfd);
        if (statuses[i] == 200) {
            assert_int_equal(rc, 0);
            assert_true(json_is_true(json_object_get(o, "healthy")));
        } else {
            assert_int_equal(rc, 1);
            assert_string_equal(jstr(o, "code"), "UNHEALTHY");
        }
        json_decref(o);
    }
}

int main(void) {
    mn_log_threshold = MN_LOG_ERROR; /* the servers' INFO lines are noise here */
    if (mn_crypto_init() != MN_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usage_errors_exit_2),
        cmocka_unit_test(info_prints_chain_fields),
        cmocka_unit_test(lifecycle_issue_loss_revoke_block_watch),
        cmocka_unit_test(verify_without_verifier_or_genesis_fails),
        cmocka_unit_test(unreachable_node_exits_1),
        cmocka_unit_test(keygen_then_pubkey_agree),
        cmocka_unit_test(health_follows_http_status),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
