/* idfilter.h: a Bloom filter over 32-byte ids, for answering "no such
 * credential" without a store read.
 *
 * mn_idfilter_may_hold is false only for ids never added; it may be true
 * for an id never added (a false positive), so a caller reads the store
 * then. Blocked: an id's MN_IDFILTER_PROBES bits lie in one 64-byte line,
 * so a lookup touches one cache line. The size is fixed at creation and ids
 * can only be added: at n ids per line on average, about
 * (1 - e^(-5n/512))^5 of the ids never added still answer "maybe": 3e-9 at
 * two per line, 2e-7 at four, 4e-3 at forty. Ids are hashed whole, so ids
 * that share a prefix spread like any others.
 *
 * Ownership: mn_idfilter_new returns a filter the caller frees with
 * mn_idfilter_free. Not thread-safe: one owner. */
#ifndef MN_IDFILTER_H
#define MN_IDFILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "mn.h"

#define MN_IDFILTER_PROBES 5u

typedef struct mn_idfilter mn_idfilter;

/* An empty filter of 2^lines_log2 lines (1..26); NULL when out of memory
 * or lines_log2 is out of range. */
mn_idfilter *mn_idfilter_new(unsigned lines_log2);
void mn_idfilter_free(mn_idfilter *f); /* NULL-safe */

void mn_idfilter_add(mn_idfilter *f, const uint8_t id[static MN_ID_LEN]);
bool mn_idfilter_may_hold(const mn_idfilter *f, const uint8_t id[static MN_ID_LEN]);

/* Forgets every id. */
void mn_idfilter_clear(mn_idfilter *f);

/* Calls of mn_idfilter_add since creation or the last clear (repeats
 * counted). */
uint64_t mn_idfilter_added(const mn_idfilter *f);

#endif
