/* prefault.c: see prefault.h. */
#define _GNU_SOURCE /* SCHED_IDLE */
#include "prefault.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "log.h"

/* Small enough that a stop waits at most a few milliseconds for the
 * chunk under way (16 MiB at the measured 3 s per GiB: 50 ms). */
#define PREFAULT_CHUNK ((size_t)16 << 20)

struct mn_prefault {
    pthread_t thread;
    uint8_t *addr;
    size_t len;
    atomic_size_t done;
    atomic_bool stop;
    atomic_bool ended;
};

static void *populate(void *arg) {
    mn_prefault *p = arg;
    /* Only on a core nothing else wants: competing with the owner for a
     * core would cost it more than the faults this saves it. */
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) LOG_DEBUG("prefault_not_idle", "errno=%d", errno);
    size_t off = 0;
    while (off < p->len && !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        size_t n = p->len - off < PREFAULT_CHUNK ? p->len - off : PREFAULT_CHUNK;
#ifdef MADV_POPULATE_WRITE
        if (madvise(p->addr + off, n, MADV_POPULATE_WRITE) != 0) {
            /* EINVAL: a kernel without it; ENOMEM: memory is short, and the
             * pages will come as they are used (or the owner's writes fail
             * as they would have anyway). */
            LOG_DEBUG("prefault_stopped", "errno=%d done=%zu len=%zu", errno, off, p->len);
            break;
        }
#else
        break;
#endif
        off += n;
        atomic_store_explicit(&p->done, off, memory_order_relaxed);
    }
    atomic_store_explicit(&p->ended, true, memory_order_release);
    return NULL;
}

mn_prefault *mn_prefault_start(void *addr, size_t len) {
    if (!addr || len == 0) return NULL;
    mn_prefault *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->addr = addr;
    p->len = len;
    atomic_init(&p->done, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->ended, false);
    int rc = pthread_create(&p->thread, NULL, populate, p);
    if (rc != 0) {
        LOG_WARN("prefault_not_started", "errno=%d", rc);
        free(p);
        return NULL;
    }
    return p;
}

size_t mn_prefault_done(const mn_prefault *p) {
    return p ? atomic_load_explicit(&((mn_prefault *)p)->done, memory_order_relaxed) : 0;
}

bool mn_prefault_ended(const mn_prefault *p) {
    return !p || atomic_load_explicit(&((mn_prefault *)p)->ended, memory_order_acquire);
}

void mn_prefault_stop(mn_prefault *p) {
    if (!p) return;
    atomic_store_explicit(&p->stop, true, memory_order_relaxed);
    int rc = pthread_join(p->thread, NULL);
    if (rc != 0) { /* cannot happen for a joinable thread; never free under it */
        LOG_ERROR("prefault_join_failed", "errno=%d", rc);
        return;
    }
    free(p);
}
