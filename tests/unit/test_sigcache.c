/* test_sigcache.c: the cache of verified consensus signatures answers only
 * for the exact bytes that verified (or that this process signed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "crypto.h"
#include "sigcache.h"

typedef struct {
    uint8_t sk[32], pk[33], pk2[33], digest[32], sig[64];
} keys;

static void make(keys *k) {
    uint8_t sk2[32];
    assert_int_equal(mn_crypto_init(), MN_OK);
    assert_int_equal(mn_key_generate(k->sk), MN_OK);
    assert_int_equal(mn_key_pubkey(k->pk, k->sk), MN_OK);
    assert_int_equal(mn_key_generate(sk2), MN_OK);
    assert_int_equal(mn_key_pubkey(k->pk2, sk2), MN_OK);
    mn_sha256(k->digest, "vote", 4);
    assert_int_equal(mn_sign(k->sig, k->digest, k->sk), MN_OK);
}

static void second_check_of_same_bytes_costs_no_verification(void **state) {
    (void)state;
    keys k;
    make(&k);
    mn_sigcache *c = mn_sigcache_new();
    assert_non_null(c);
    uint64_t v0 = mn_verify_count();
    assert_true(mn_sigcache_verify(c, k.sig, k.digest, k.pk));
    assert_int_equal(mn_verify_count(), v0 + 1);
    assert_true(mn_sigcache_verify(c, k.sig, k.digest, k.pk));
    assert_int_equal(mn_verify_count(), v0 + 1);
    assert_int_equal(mn_sigcache_hits(c), 1);
    mn_sigcache_free(c);
}

static void different_bytes_are_verified_and_refused(void **state) {
    (void)state;
    keys k;
    make(&k);
    mn_sigcache *c = mn_sigcache_new();
    assert_non_null(c);
    assert_true(mn_sigcache_verify(c, k.sig, k.digest, k.pk));
    uint64_t v0 = mn_verify_count();
    /* another key, another digest, a changed signature: each a real check */
    assert_false(mn_sigcache_verify(c, k.sig, k.digest, k.pk2));
    uint8_t d2[32], s2[64];
    memcpy(d2, k.digest, 32);
    d2[31] ^= 1;
    assert_false(mn_sigcache_verify(c, k.sig, d2, k.pk));
    memcpy(s2, k.sig, 64);
    s2[63] ^= 1;
    assert_false(mn_sigcache_verify(c, s2, k.digest, k.pk));
    assert_int_equal(mn_verify_count(), v0 + 3);
    assert_int_equal(mn_sigcache_hits(c), 0);
    /* a failure is not remembered */
    assert_false(mn_sigcache_verify(c, s2, k.digest, k.pk));
    assert_int_equal(mn_verify_count(), v0 + 4);
    mn_sigcache_free(c);
}

static void own_signature_is_known_without_verification(void **state) {
    (void)state;
    keys k;
    make(&k);
    mn_sigcache *c = mn_sigcache_new();
    assert_non_null(c);
    mn_sigcache_add(c, k.sig, k.digest, k.pk);
    uint64_t v0 = mn_verify_count();
    assert_true(mn_sigcache_verify(c, k.sig, k.digest, k.pk));
    assert_int_equal(mn_verify_count(), v0);
    /* NULL cache: plain verification */
    assert_true(mn_sigcache_verify(NULL, k.sig, k.digest, k.pk));
    assert_int_equal(mn_verify_count(), v0 + 1);
    mn_sigcache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(second_check_of_same_bytes_costs_no_verification),
        cmocka_unit_test(different_bytes_are_verified_and_refused),
        cmocka_unit_test(own_signature_is_known_without_verification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
