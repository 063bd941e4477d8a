/* test_crypto.c: hashing, secp256k1 signatures, key files and hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

static void sha256_matches_known_vector(void **state) {
    (void)state;
    uint8_t out[32];
    char hex[65];
    mn_sha256(out, "abc", 3);
    assert_string_equal(mn_hex_encode(hex, out, 32),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mn_sha256_ctx ctx;
    mn_sha256_init(&ctx);
    mn_sha256_update(&ctx, "a", 1);
    mn_sha256_update(&ctx, "bc", 2);
    uint8_t out2[32];
    mn_sha256_final(&ctx, out2);
    assert_memory_equal(out, out2, 32);
}

static void signature_verifies_and_forgery_fails(void **state) {
    (void)state;
    uint8_t sk[32], pk[33], sk2[32], pk2[33], digest[32], sig[64];
    assert_int_equal(mn_crypto_init(), MN_OK);
    assert_int_equal(mn_key_generate(sk), MN_OK);
    assert_int_equal(mn_key_pubkey(pk, sk), MN_OK);
    assert_int_equal(mn_key_generate(sk2), MN_OK);
    assert_int_equal(mn_key_pubkey(pk2, sk2), MN_OK);
    mn_sha256(digest, "payload", 7);
    assert_int_equal(mn_sign(sig, digest, sk), MN_OK);
    uint64_t before = mn_verify_count();
    assert_true(mn_verify(sig, digest, pk));
    assert_false(mn_verify(sig, digest, pk2)); /* someone else's key */
    assert_int_equal(mn_verify_count(), before + 2);
    for (int i = 0; i < 64; i += 7) {
        uint8_t bad[64];
        memcpy(bad, sig, 64);
        bad[i] ^= 0x01;
        assert_false(mn_verify(bad, digest, pk));
    }
    uint8_t other[32];
    memcpy(other, digest, 32);
    other[31] ^= 0x80;
    assert_false(mn_verify(sig, other, pk));
}

static void high_s_signature_is_refused(void **state) {
    (void)state;
    /* n - s turns a valid signature into its malleated twin; it must fail so
     * that nobody can change a transaction's hash by re-encoding its signature. */
    static const uint8_t order[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                      0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48,
                                      0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41};
    uint8_t sk[32], pk[33], digest[32], sig[64];
    assert_int_equal(mn_key_generate(sk), MN_OK);
    assert_int_equal(mn_key_pubkey(pk, sk), MN_OK);
    mn_sha256(digest, "x", 1);
    assert_int_equal(mn_sign(sig, digest, sk), MN_OK);
    uint8_t twin[64];
    memcpy(twin, sig, 32);
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int v = order[i] - sig[32 + i] - borrow;
        borrow = v < 0;
        twin[32 + i] = (uint8_t)(v + (borrow ? 256 : 0));
    }
    assert_true(mn_verify(sig, digest, pk));
    assert_false(mn_verify(twin, digest, pk));
}

static void make_temp_dir(char *dir, size_t len) {
    snprintf(dir, len, "/tmp/mn-crypto-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void keyfile_round_trips_with_mode_0600(void **state) {
    (void)state;
    char dir[64], path[128], err[256] = "";
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.key", dir);
    uint8_t sk[32], back[32];
    assert_int_equal(mn_key_generate(sk), MN_OK);
    assert_int_equal(mn_keyfile_write(path, sk, false, err, sizeof err), MN_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(mn_keyfile_read(path, back, err, sizeof err), MN_OK);
    assert_memory_equal(sk, back, 32);
    /* exclusive creation: an existing key is never overwritten by accident */
    assert_int_equal(mn_keyfile_write(path, sk, false, err, sizeof err), MN_EIO);
    assert_non_null(strstr(err, path));
    unlink(path);
    rmdir(dir);
}

static void keyfile_readable_by_others_is_refused(void **state) {
    (void)state;
    char dir[64], path[128], err[256] = "";
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/b.key", dir);
    uint8_t sk[32], back[32];
    assert_int_equal(mn_key_generate(sk), MN_OK);
    assert_int_equal(mn_keyfile_write(path, sk, false, err, sizeof err), MN_OK);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(mn_keyfile_read(path, back, err, sizeof err), MN_EPERM);
    assert_non_null(strstr(err, "group or others"));
    assert_non_null(strstr(err, "chmod 600"));
    unlink(path);
    rmdir(dir);
}

static void keyfile_with_garbage_is_refused(void **state) {
    (void)state;
    char dir[64], path[128], err[256] = "";
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.key", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a key\n", 10), 10);
    assert_int_equal(close(fd), 0);
    uint8_t back[32];
    assert_int_equal(mn_keyfile_read(path, back, err, sizeof err), MN_EINVAL);
    assert_non_null(strstr(err, "64 hex"));
    /* all-zero is not a valid secp256k1 secret */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000\n";
    assert_int_equal(write(fd, zeros, 65), 65);
    assert_int_equal(close(fd), 0);
    assert_int_equal(mn_keyfile_read(path, back, err, sizeof err), MN_EINVAL);
    assert_int_equal(mn_keyfile_read("/nonexistent/key", back, err, sizeof err), MN_EIO);
    unlink(path);
    rmdir(dir);
}

static void hex_decode_refuses_bad_input(void **state) {
    (void)state;
    uint8_t out[2];
    assert_int_equal(mn_hex_decode(out, 2, "aBcD"), MN_OK);
    assert_int_equal(out[0], 0xab);
    assert_int_equal(out[1], 0xcd);
    assert_int_equal(mn_hex_decode(out, 2, "abc"), MN_EINVAL);
    assert_int_equal(mn_hex_decode(out, 2, "abcde"), MN_EINVAL);
    assert_int_equal(mn_hex_decode(out, 2, "abcg"), MN_EINVAL);
    assert_int_equal(mn_hex_decode(out, 2, NULL), MN_EINVAL);
}

static void constant_time_compare_detects_difference(void **state) {
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0};
    assert_int_equal(mn_memcmp_ct(a, b, 32), 0);
    b[31] = 1;
    assert_int_not_equal(mn_memcmp_ct(a, b, 32), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_known_vector),
        cmocka_unit_test(signature_verifies_and_forgery_fails),
        cmocka_unit_test(high_s_signature_is_refused),
        cmocka_unit_test(keyfile_round_trips_with_mode_0600),
        cmocka_unit_test(keyfile_readable_by_others_is_refused),
        cmocka_unit_test(keyfile_with_garbage_is_refused),
        cmocka_unit_test(hex_decode_refuses_bad_input),
        cmocka_unit_test(constant_time_compare_detects_difference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
