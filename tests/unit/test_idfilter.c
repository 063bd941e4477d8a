/* test_idfilter.c: the id filter never forgets an id it was given, says
 * "no" to most others at the load it is sized for, and clears. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "crypto.h"
#include "idfilter.h"

static void id_of(uint8_t out[32], char tag, uint32_t n) {
    uint8_t in[5] = {(uint8_t)tag, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    mn_sha256(out, in, sizeof in);
}

static void sizes_out_of_range_are_refused(void **state) {
    (void)state;
    assert_null(mn_idfilter_new(0));
    assert_null(mn_idfilter_new(27));
    mn_idfilter *f = mn_idfilter_new(1);
    assert_non_null(f);
    mn_idfilter_free(f);
    mn_idfilter_free(NULL);
}

static void an_empty_filter_holds_nothing(void **state) {
    (void)state;
    mn_idfilter *f = mn_idfilter_new(10);
    assert_non_null(f);
    for (uint32_t i = 0; i < 1000; i++) {
        uint8_t id[32];
        id_of(id, 'a', i);
        assert_false(mn_idfilter_may_hold(f, id));
    }
    assert_int_equal(mn_idfilter_added(f), 0);
    mn_idfilter_free(f);
}

/* 20,000 ids in 2^12 lines (about five per line): none is forgotten, and
 * ids never added come out "no" nearly always. */
static void added_ids_are_kept_and_others_mostly_refused(void **state) {
    (void)state;
    enum { N = 20000 };
    mn_idfilter *f = mn_idfilter_new(12);
    assert_non_null(f);
    uint8_t id[32];
    for (uint32_t i = 0; i < N; i++) {
        id_of(id, 'a', i);
        mn_idfilter_add(f, id);
    }
    assert_int_equal(mn_idfilter_added(f), N);
    for (uint32_t i = 0; i < N; i++) {
        id_of(id, 'a', i);
        assert_true(mn_idfilter_may_hold(f, id));
    }
    unsigned yes = 0;
    for (uint32_t i = 0; i < N; i++) {
        id_of(id, 'b', i);
        yes += mn_idfilter_may_hold(f, id);
    }
    assert_true(yes < N / 1000); /* expected about 1e-5 of them */
    mn_idfilter_free(f);
}

/* Ids alike but for their last byte (a client's own numbering) spread over
 * lines like any others. */
static void ids_sharing_a_prefix_spread(void **state) {
    (void)state;
    mn_idfilter *f = mn_idfilter_new(12);
    assert_non_null(f);
    uint8_t id[32];
    memset(id, 0x77, sizeof id);
    for (unsigned i = 0; i < 128; i++) {
        id[31] = (uint8_t)i;
        mn_idfilter_add(f, id);
    }
    unsigned yes = 0;
    for (unsigned i = 128; i < 256; i++) {
        id[31] = (uint8_t)i;
        yes += mn_idfilter_may_hold(f, id);
    }
    assert_true(yes <= 1);
    mn_idfilter_free(f);
}

/* Past its load the filter still never forgets; it only says "maybe" more. */
static void an_overloaded_filter_stays_correct(void **state) {
    (void)state;
    enum { N = 4000 };
    mn_idfilter *f = mn_idfilter_new(2); /* four lines */
    assert_non_null(f);
    uint8_t id[32];
    for (uint32_t i = 0; i < N; i++) {
        id_of(id, 'a', i);
        mn_idfilter_add(f, id);
    }
    for (uint32_t i = 0; i < N; i++) {
        id_of(id, 'a', i);
        assert_true(mn_idfilter_may_hold(f, id));
    }
    mn_idfilter_clear(f);
    assert_int_equal(mn_idfilter_added(f), 0);
    unsigned yes = 0;
    for (uint32_t i = 0; i < N; i++) {
        id_of(id, 'a', i);
        yes += mn_idfilter_may_hold(f, id);
    }
    assert_int_equal(yes, 0);
    mn_idfilter_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_out_of_range_are_refused),
        cmocka_unit_test(an_empty_filter_holds_nothing),
        cmocka_unit_test(added_ids_are_kept_and_others_mostly_refused),
        cmocka_unit_test(ids_sharing_a_prefix_spread),
        cmocka_unit_test(an_overloaded_filter_stays_correct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
