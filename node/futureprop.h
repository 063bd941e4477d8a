/* futureprop.h: proposals that arrived for the height after the one a node is
 * deciding, kept until the node gets there.
 *
 * Under load a validator can still be collecting the last precommits of
 * height h when the proposer of h+1, whose other peers committed h first,
 * sends its proposal. That proposal cannot be judged yet (it executes on top
 * of h). Dropped, it leaves the round one vote short wherever this node's
 * vote is needed, until the proposal is resent a second later; kept, it is
 * judged as soon as h commits here.
 *
 * One slot per peer, so a peer can only ever replace what it sent itself;
 * nothing in a kept proposal is checked or trusted here: the caller judges it
 * in full when it takes it back. Fixed size; not thread-safe (one owner, the
 * node's event loop). The set owns what it keeps until it is taken back. */
#ifndef MN_FUTUREPROP_H
#define MN_FUTUREPROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"

#define MN_FUTUREPROP_SLOTS 8

typedef struct mn_futureprop_slot {
    char peer[MN_MEMBER_ID_MAX + 1];
    uint64_t height;
    uint8_t *bytes; /* NULL: free */
    size_t len;
} mn_futureprop_slot;

typedef struct mn_futureprop {
    mn_futureprop_slot slots[MN_FUTUREPROP_SLOTS];
} mn_futureprop;

/* Keeps a serialised proposal for height from peer, replacing (and freeing)
 * what that peer had kept. On MN_OK the set owns bytes (malloc'd); on any
 * other return the caller still does. Returns MN_OK; MN_EINVAL (no peer
 * name, one longer than MN_MEMBER_ID_MAX, or no bytes); MN_EAGAIN when
 * every slot holds another peer's proposal. */
int mn_futureprop_keep(mn_futureprop *fp, const char *peer, uint64_t height, uint8_t *bytes,
                       size_t len) MN_WARN_UNUSED;

/* Gives back one kept proposal for height: true with *bytes (the caller
 * frees it), *len and peer (MN_MEMBER_ID_MAX + 1 bytes) set, and the slot
 * freed; false when none is kept for height. Proposals for lower heights are
 * dropped on the way. */
bool mn_futureprop_take(mn_futureprop *fp, uint64_t height, char *peer, uint8_t **bytes, size_t *len);

/* Frees every kept proposal. */
void mn_futureprop_clear(mn_futureprop *fp);

#endif
