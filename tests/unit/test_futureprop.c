/* test_futureprop.c: proposals kept for the height after next (futureprop.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "futureprop.h"

static void keep(mn_futureprop *fp, const char *peer, uint64_t height, const char *text) {
    assert_int_equal(mn_futureprop_keep(fp, peer, height, (const uint8_t *)text, strlen(text)), MN_OK);
}

/* Takes one for height and checks peer and bytes; frees them. */
static void take_expect(mn_futureprop *fp, uint64_t height, const char *peer_want, const char *text_want) {
    char peer[MN_MEMBER_ID_MAX + 1];
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_true(mn_futureprop_take(fp, height, peer, &bytes, &len));
    assert_string_equal(peer, peer_want);
    assert_int_equal(len, strlen(text_want));
    assert_memory_equal(bytes, text_want, len);
    free(bytes);
}

static bool take_any(mn_futureprop *fp, uint64_t height) {
    char peer[MN_MEMBER_ID_MAX + 1];
    uint8_t *bytes = NULL;
    size_t len = 0;
    bool got = mn_futureprop_take(fp, height, peer, &bytes, &len);
    free(bytes);
    return got;
}

static void a_kept_proposal_comes_back_once_at_its_height(void **state) {
    (void)state;
    mn_futureprop fp;
    memset(&fp, 0, sizeof fp);
    keep(&fp, "skt", 12, "proposal-12");
    assert_false(take_any(&fp, 11)); /* not yet */
    take_expect(&fp, 12, "skt", "proposal-12");
    assert_false(take_any(&fp, 12)); /* given back once */
    mn_futureprop_clear(&fp);
}

static void the_set_keeps_a_copy(void **state) {
    (void)state;
    mn_futureprop fp;
    memset(&fp, 0, sizeof fp);
    char buf[16] = "proposal-7";
    assert_int_equal(mn_futureprop_keep(&fp, "kt", 7, (const uint8_t *)buf, strlen(buf)), MN_OK);
    memset(buf, 'x', sizeof buf - 1);
    take_expect(&fp, 7, "kt", "proposal-7");
    mn_futureprop_clear(&fp);
}

static void a_peer_replaces_only_its_own(void **state) {
    (void)state;
    mn_futureprop fp;
    memset(&fp, 0, sizeof fp);
    keep(&fp, "skt", 20, "first");
    keep(&fp, "kt", 20, "from-kt");
    keep(&fp, "skt", 20, "second");
    bool saw_kt = false, saw_skt = false;
    for (int i = 0; i < 2; i++) {
        char peer[MN_MEMBER_ID_MAX + 1];
        uint8_t *bytes = NULL;
        size_t len = 0;
        assert_true(mn_futureprop_take(&fp, 20, peer, &bytes, &len));
        if (strcmp(peer, "kt") == 0) {
            assert_int_equal(len, 7);
            assert_memory_equal(bytes, "from-kt", 7);
            saw_kt = true;
        } else {
            assert_string_equal(peer, "skt");
            assert_int_equal(len, 6);
            assert_memory_equal(bytes, "second", 6); /* not "first" */
            saw_skt = true;
        }
        free(bytes);
    }
    assert_true(saw_kt && saw_skt);
    assert_false(take_any(&fp, 20));
    mn_futureprop_clear(&fp);
}

static void when_every_slot_is_another_peers_nothing_is_kept(void **state) {
    (void)state;
    mn_futureprop fp;
    memset(&fp, 0, sizeof fp);
    char peer[16];
    for (int i = 0; i < MN_FUTUREPROP_SLOTS; i++) {
        snprintf(peer, sizeof peer, "peer%d", i);
        keep(&fp, peer, 5, "p");
    }
    assert_int_equal(mn_futureprop_keep(&fp, "latecomer", 5, (const uint8_t *)"q", 1), MN_EAGAIN);
    /* a peer already in the set may still replace its own */
    keep(&fp, "peer3", 5, "newer");
    int got = 0;
    while (take_any(&fp, 5)) got++;
    assert_int_equal(got, MN_FUTUREPROP_SLOTS);
    mn_futureprop_clear(&fp);
}

static void passed_heights_are_dropped(void **state) {
    (void)state;
    mn_futureprop fp;
    memset(&fp, 0, sizeof fp);
    keep(&fp, "skt", 30, "old");
    keep(&fp, "kt", 32, "later");
    assert_false(take_any(&fp, 31)); /* drops 30, keeps 32 */
    assert_false(take_any(&fp, 30)); /* 30 is gone */
    take_expect(&fp, 32, "kt", "later");
    mn_futureprop_clear(&fp);
}

static void bad_arguments_are_refused(void **state) {
    (void)state;
    mn_futureprop fp;
    memset(&fp, 0, sizeof fp);
    char long_name[MN_MEMBER_ID_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    assert_int_equal(mn_futureprop_keep(&fp, long_name, 1, (const uint8_t *)"p", 1), MN_EINVAL);
    assert_int_equal(mn_futureprop_keep(&fp, "", 1, (const uint8_t *)"p", 1), MN_EINVAL);
    assert_int_equal(mn_futureprop_keep(&fp, NULL, 1, (const uint8_t *)"p", 1), MN_EINVAL);
    assert_int_equal(mn_futureprop_keep(&fp, "kt", 1, NULL, 1), MN_EINVAL);
    assert_int_equal(mn_futureprop_keep(&fp, "kt", 1, (const uint8_t *)"p", 0), MN_EINVAL);
    assert_false(take_any(&fp, 1));
    mn_futureprop_clear(&fp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_kept_proposal_comes_back_once_at_its_height),
        cmocka_unit_test(the_set_keeps_a_copy),
        cmocka_unit_test(a_peer_replaces_only_its_own),
        cmocka_unit_test(when_every_slot_is_another_peers_nothing_is_kept),
        cmocka_unit_test(passed_heights_are_dropped),
        cmocka_unit_test(bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
