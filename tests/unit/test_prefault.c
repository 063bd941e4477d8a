/* test_prefault.c: the worker that gives a fresh mapping its pages leaves
 * every byte as the owner wrote it, makes the pages resident, and stops
 * when asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "prefault.h"

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t resident_pages(void *addr, size_t len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (len + page - 1) / page, count = 0;
    unsigned char *vec = malloc(n);
    assert_non_null(vec);
    assert_int_equal(mincore(addr, len, vec), 0);
    for (size_t i = 0; i < n; i++) count += vec[i] & 1;
    free(vec);
    return count;
}

static void a_mapping_gets_its_pages_and_keeps_its_bytes(void **state) {
    (void)state;
    const size_t len = (size_t)64 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
#ifdef MADV_POPULATE_WRITE
    if (madvise(m, page, MADV_POPULATE_WRITE) != 0) { /* a kernel older than 5.14 */
        assert_int_equal(munmap(m, len), 0);
        skip();
    }
#else
    assert_int_equal(munmap(m, len), 0);
    skip();
#endif
    assert_true(resident_pages(m, len) < len / page);
    memset(m + 5 * page, 0xA5, page); /* written before the worker starts */
    mn_prefault *p = mn_prefault_start(m, len);
    assert_non_null(p);
    for (size_t off = 0; off < len; off += len / 16) m[off + 7] = 0x5A; /* and while it runs */
    for (int i = 0; i < 60000 && !mn_prefault_ended(p); i++) sleep_ms(1);
    assert_true(mn_prefault_ended(p));
    assert_int_equal(mn_prefault_done(p), len);
    assert_int_equal(resident_pages(m, len), len / page);
    for (size_t i = 0; i < page; i++) assert_int_equal(m[5 * page + i], 0xA5);
    for (size_t off = 0; off < len; off += len / 16) {
        assert_int_equal(m[off + 7], 0x5A);
        assert_int_equal(m[off + 8], 0);
    }
    assert_int_equal(m[len - 1], 0);
    mn_prefault_stop(p);
    assert_int_equal(munmap(m, len), 0);
}

static void a_stopped_worker_ends_before_the_mapping_goes(void **state) {
    (void)state;
    const size_t len = (size_t)1 << 30;
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(m != MAP_FAILED);
    mn_prefault *p = mn_prefault_start(m, len);
    assert_non_null(p);
    mn_prefault_stop(p); /* joins: nothing touches m after this */
    assert_int_equal(munmap(m, len), 0);
}

static void nothing_to_populate_is_no_worker(void **state) {
    (void)state;
    uint8_t b[16];
    assert_null(mn_prefault_start(NULL, 4096));
    assert_null(mn_prefault_start(b, 0));
    assert_true(mn_prefault_ended(NULL));
    assert_int_equal(mn_prefault_done(NULL), 0);
    mn_prefault_stop(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_mapping_gets_its_pages_and_keeps_its_bytes),
        cmocka_unit_test(a_stopped_worker_ends_before_the_mapping_goes),
        cmocka_unit_test(nothing_to_populate_is_no_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
