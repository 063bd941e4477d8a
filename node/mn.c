/* mn.c: names of the shared error codes; the monotonic clock. */
#include "mn.h"

#include <assert.h>
#include <time.h>

const char *mn_strerror(int code) {
    switch (code) {
    case MN_OK: return "MN_OK";
    case MN_EINVAL: return "MN_EINVAL";
    case MN_ENOMEM: return "MN_ENOMEM";
    case MN_EIO: return "MN_EIO";
    case MN_ECRYPTO: return "MN_ECRYPTO";
    case MN_ENOTFOUND: return "MN_ENOTFOUND";
    case MN_EPERM: return "MN_EPERM";
    case MN_ETOOBIG: return "MN_ETOOBIG";
    case MN_ECORRUPT: return "MN_ECORRUPT";
    case MN_EAGAIN: return "MN_EAGAIN";
    case MN_ESTATE: return "MN_ESTATE";
    default: return "MN_E?";
    }
}

int64_t mn_mono_ms(void) {
    struct timespec ts;
    int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
    assert(rc == 0); /* CLOCK_MONOTONIC is always there on Linux */
    (void)rc;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
