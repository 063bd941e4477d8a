/* prefault.h: gives a fresh anonymous mapping its pages on a thread of its
 * own, so that the thread that uses it does not stall on first touches.
 *
 * A page's first write costs a fault and the zeroing of the page (with
 * transparent huge pages, 2 MiB at once); on a virtual machine the host
 * may also have to back it. Measured on the 2-core VM of BENCHMARKS.md, a
 * first write costs about 3 s per GiB: a node that had just mapped a 4 GiB
 * record cache answered 85 to 660 status queries a second for its first
 * ten seconds, the loop thread inside clear_page_erms 96% of the time. Here a
 * worker asks the kernel for the pages (madvise MADV_POPULATE_WRITE, which
 * leaves their contents as they are, so the owner may read and write the
 * mapping meanwhile), a chunk at a time, and can be stopped between chunks.
 * The worker runs under SCHED_IDLE: only on a core that has nothing else
 * to do, so it never takes CPU from the node; on a busy machine the pages
 * come as slowly as without it.
 *
 * Ownership: the caller keeps the mapping and must stop the populator
 * (mn_prefault_stop) before unmapping it. Not thread-safe except as stated. */
#ifndef MN_PREFAULT_H
#define MN_PREFAULT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mn_prefault mn_prefault;

/* Starts populating [addr, addr + len) (page-aligned addr, as mmap gives).
 * Returns NULL when no thread could be started or len is 0: the mapping
 * then faults in on use, as without this module. */
mn_prefault *mn_prefault_start(void *addr, size_t len);

/* Bytes populated so far (any thread may ask). */
size_t mn_prefault_done(const mn_prefault *p);

/* True once the worker has ended: every byte populated, stopped, or the
 * kernel refused (older than Linux 5.14: no MADV_POPULATE_WRITE), in which
 * case mn_prefault_done stays below len. */
bool mn_prefault_ended(const mn_prefault *p);

/* Stops the worker after its current chunk, waits for it and frees p.
 * NULL-safe. */
void mn_prefault_stop(mn_prefault *p);

#endif
