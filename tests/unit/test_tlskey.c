/* test_tlskey.c: TLS keys are written 0600, read back only from private
 * files, and pinned by their public key whatever the certificate. */
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

#include "fileio.h"
#include "tlskey.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mn_test_tlskey_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void written_key_reads_back_with_same_pin(void **state) {
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/tls.pem", dir);
    EVP_PKEY *k = NULL, *k2 = NULL;
    assert_int_equal(mn_tlskey_generate(&k), MN_OK);
    assert_int_equal(mn_tlskey_write(path, k, false, err, sizeof err), MN_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(mn_tlskey_read(&k2, path, err, sizeof err), MN_OK);
    uint8_t p1[32], p2[32];
    assert_int_equal(mn_tlskey_pin(p1, k), MN_OK);
    assert_int_equal(mn_tlskey_pin(p2, k2), MN_OK);
    assert_memory_equal(p1, p2, 32);
    /* never replaced by accident */
    assert_int_not_equal(mn_tlskey_write(path, k2, false, err, sizeof err), MN_OK);
    assert_non_null(strstr(err, "already exists"));
    EVP_PKEY *k3;
    assert_int_equal(mn_tlskey_generate(&k3), MN_OK);
    uint8_t p3[32];
    assert_int_equal(mn_tlskey_pin(p3, k3), MN_OK);
    assert_memory_not_equal(p1, p3, 32);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
}

static void readable_by_others_is_refused(void **state) {
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/open.pem", dir);
    EVP_PKEY *k = NULL;
    assert_int_equal(mn_tlskey_generate(&k), MN_OK);
    assert_int_equal(mn_tlskey_write(path, k, false, err, sizeof err), MN_OK);
    EVP_PKEY_free(k);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(mn_tlskey_read(&k, path, err, sizeof err), MN_EPERM);
    assert_null(k);
    assert_non_null(strstr(err, "chmod 600"));
    snprintf(path, sizeof path, "%s/missing.pem", dir);
    assert_int_equal(mn_tlskey_read(&k, path, err, sizeof err), MN_EIO);
    snprintf(path, sizeof path, "%s/junk.pem", dir);
    assert_int_equal(mn_file_write_atomic(path, "not a key\n", 10, 0600, err, sizeof err), MN_OK);
    assert_int_equal(mn_tlskey_read(&k, path, err, sizeof err), MN_EINVAL);
}

static void certificate_carries_the_pinned_key(void **state) {
    (void)state;
    EVP_PKEY *k = NULL;
    assert_int_equal(mn_tlskey_generate(&k), MN_OK);
    X509 *c1 = NULL, *c2 = NULL;
    assert_int_equal(mn_tlskey_self_signed(&c1, k, "mois"), MN_OK);
    assert_int_equal(mn_tlskey_self_signed(&c2, k, "mois"), MN_OK);
    uint8_t pk[32], pc1[32], pc2[32];
    assert_int_equal(mn_tlskey_pin(pk, k), MN_OK);
    assert_int_equal(mn_tlskey_cert_pin(pc1, c1), MN_OK);
    assert_int_equal(mn_tlskey_cert_pin(pc2, c2), MN_OK);
    assert_memory_equal(pk, pc1, 32);
    assert_memory_equal(pk, pc2, 32); /* a new certificate keeps the pin */
    assert_int_equal(X509_verify(c1, k), 1); /* self-signed by that key */
    X509_free(c1);
    X509_free(c2);
    EVP_PKEY_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(written_key_reads_back_with_same_pin),
        cmocka_unit_test(readable_by_others_is_refused),
        cmocka_unit_test(certificate_carries_the_pinned_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
