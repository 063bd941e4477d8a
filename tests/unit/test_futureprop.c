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

static int set_up(void **state) {
    mn_futureprop *fp = calloc(1, sizeof *fp);
    *state = fp;
    return fp ? 0 : -1;
}

static int tear_down(void **state) {
    mn_futureprop_clear(*state); /* ASan reports whatever it failed to free */
    free(*state);
    return 0;
}

/* Offers a malloc'd copy of text; frees it when the set does not take it. */
static int offer(mn_futureprop *fp, const char *peer, uint64_t height, const char *text) {
    size_t len = text ? strlen(text) : 0;
    uint8_t *bytes = text ? malloc(len + 1) : NULL;
    if (bytes) memcpy(bytes, text, len + 1);
    int rc = mn_futureprop_keep(fp, peer, height, bytes, len);
    if (rc != MN_OK) free(bytes);
    return rc;
}

static void keep(mn_futureprop *fp, const char *peer, uint64_t height, const char *text) {
    assert_int_equal(offer(fp, peer, height, text), MN_OK);
}

/* Takes one kept for height back as a string (the caller frees it), or NULL. */
static char *take(mn_futureprop *fp, uint64_t height, char peer[MN_MEMBER_ID_MAX + 1]) {
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (!mn_futureprop_take(fp, height, peer, &bytes, &len)) {
        assert_null(bytes);
        return NULL;
    }
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, bytes, len);
    text[len] = 0;
    free(bytes);
    return text;
}

static void take_expect(mn_futureprop *fp, uint64_t height, const char *peer_want, const char *text_want) {
    char peer[MN_MEMBER_ID_MAX + 1];
    char *text = take(fp, height, peer);
    assert_non_null(text);
    assert_string_equal(peer, peer_want);
    assert_string_equal(text, text_want);
    free(text);
}

static bool take_any(mn_futureprop *fp, uint64_t height) {
    char peer[MN_MEMBER_ID_MAX + 1];
    char *text = take(fp, height, peer);
    free(text);
    return text != NULL;
}

static void a_kept_proposal_comes_back_once_at_its_height(void **state) {
    mn_futureprop *fp = *state;
    keep(fp, "skt", 12, "proposal-12");
    assert_false(take_any(fp, 11)); /* not yet */
    take_expect(fp, 12, "skt", "proposal-12");
    assert_false(take_any(fp, 12)); /* given back once */
}

static void the_set_hands_back_what_it_took(void **state) {
    mn_futureprop *fp = *state;
    uint8_t *mine = malloc(10);
    assert_non_null(mine);
    memcpy(mine, "proposal-7", 10);
    assert_int_equal(mn_futureprop_keep(fp, "kt", 7, mine, 10), MN_OK);
    char peer[MN_MEMBER_ID_MAX + 1];
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_true(mn_futureprop_take(fp, 7, peer, &bytes, &len));
    assert_ptr_equal(bytes, mine); /* no copy on the way */
    assert_int_equal(len, 10);
    assert_string_equal(peer, "kt");
    free(bytes);
}

static void a_peer_replaces_only_its_own(void **state) {
    mn_futureprop *fp = *state;
    keep(fp, "skt", 20, "first");
    keep(fp, "kt", 20, "from-kt");
    keep(fp, "skt", 20, "second"); /* "first" is freed here */
    bool saw_kt = false, saw_skt = false;
    for (int i = 0; i < 2; i++) {
        char peer[MN_MEMBER_ID_MAX + 1];
        char *text = take(fp, 20, peer);
        assert_non_null(text);
        if (strcmp(peer, "kt") == 0) {
            assert_string_equal(text, "from-kt");
            saw_kt = true;
        } else {
            assert_string_equal(peer, "skt");
            assert_string_equal(text, "second"); /* not "first" */
            saw_skt = true;
        }
        free(text);
    }
    assert_true(saw_kt && saw_skt);
    assert_false(take_any(fp, 20));
}

static void when_every_slot_is_another_peers_nothing_is_kept(void **state) {
    mn_futureprop *fp = *state;
    char peer[16];
    for (int i = 0; i < MN_FUTUREPROP_SLOTS; i++) {
        snprintf(peer, sizeof peer, "peer%d", i);
        keep(fp, peer, 5, "p");
    }
    assert_int_equal(offer(fp, "latecomer", 5, "q"), MN_EAGAIN);
    /* a peer already in the set may still replace its own */
    keep(fp, "peer3", 5, "newer");
    int got = 0;
    while (take_any(fp, 5)) got++;
    assert_int_equal(got, MN_FUTUREPROP_SLOTS);
}

static void passed_heights_are_dropped(void **state) {
    mn_futureprop *fp = *state;
    keep(fp, "skt", 30, "old");
    keep(fp, "kt", 32, "later");
    assert_false(take_any(fp, 31)); /* drops 30, keeps 32 */
    assert_false(take_any(fp, 30)); /* 30 is gone */
    take_expect(fp, 32, "kt", "later");
}

static void bad_arguments_are_refused(void **state) {
    mn_futureprop *fp = *state;
    char long_name[MN_MEMBER_ID_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    assert_int_equal(offer(fp, long_name, 1, "p"), MN_EINVAL);
    assert_int_equal(offer(fp, "", 1, "p"), MN_EINVAL);
    assert_int_equal(offer(fp, NULL, 1, "p"), MN_EINVAL);
    assert_int_equal(offer(fp, "kt", 1, NULL), MN_EINVAL);
    assert_int_equal(mn_futureprop_keep(fp, "kt", 1, NULL, 1), MN_EINVAL);
    assert_int_equal(offer(fp, "kt", 1, ""), MN_EINVAL); /* no bytes */
    assert_false(take_any(fp, 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_kept_proposal_comes_back_once_at_its_height, set_up, tear_down),
        cmocka_unit_test_setup_teardown(the_set_hands_back_what_it_took, set_up, tear_down),
        cmocka_unit_test_setup_teardown(a_peer_replaces_only_its_own, set_up, tear_down),
        cmocka_unit_test_setup_teardown(when_every_slot_is_another_peers_nothing_is_kept, set_up, tear_down),
        cmocka_unit_test_setup_teardown(passed_heights_are_dropped, set_up, tear_down),
        cmocka_unit_test_setup_teardown(bad_arguments_are_refused, set_up, tear_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
