/* futureprop.c: see futureprop.h. */
#include "futureprop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void slot_free(mn_futureprop_slot *s)
{
    free(s->bytes);
    memset(s, 0, sizeof *s);
}

int mn_futureprop_keep(mn_futureprop *fp, const char *peer, uint64_t height, uint8_t *bytes, size_t len)
{
    if (!fp || !peer || !peer[0] || strlen(peer) > MN_MEMBER_ID_MAX || !bytes || len == 0) return MN_EINVAL;
    mn_futureprop_slot *slot = NULL;
    for (int i = 0; i < MN_FUTUREPROP_SLOTS; i++) {
        mn_futureprop_slot *s = &fp->slots[i];
        if (s->bytes && strcmp(s->peer, peer) == 0) {
            slot = s;
            break;
        }
        if (!s->bytes && !slot) slot = s;
    }
    if (!slot) return MN_EAGAIN;
    slot_free(slot);
    snprintf(slot->peer, sizeof slot->peer, "%s", peer);
    slot->height = height;
    slot->bytes = bytes;
    slot->len = len;
    return MN_OK;
}

bool mn_futureprop_take(mn_futureprop *fp, uint64_t height, char *peer, uint8_t **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    for (int i = 0; i < MN_FUTUREPROP_SLOTS; i++) {
        mn_futureprop_slot *s = &fp->slots[i];
        if (!s->bytes) continue;
        if (s->height < height) {
            slot_free(s);
            continue;
        }
        if (s->height != height) continue;
        memcpy(peer, s->peer, sizeof s->peer);
        *bytes = s->bytes;
        *len = s->len;
        s->bytes = NULL; /* handed over */
        slot_free(s);
        return true;
    }
    return false;
}

void mn_futureprop_clear(mn_futureprop *fp)
{
    for (int i = 0; i < MN_FUTUREPROP_SLOTS; i++) slot_free(&fp->slots[i]);
}
