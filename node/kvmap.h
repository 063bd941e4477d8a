/* kvmap.h: an in-memory map of byte keys to byte values or deletions.
 *
 * Used as the write set of an execution overlay: everything one block
 * changes is collected here and written by the store in one batch. A key
 * maps to a value, to a deletion (tombstone), or is absent (unknown here:
 * read the layer below). Entries are kept in insertion order, so iteration
 * is deterministic for a deterministic sequence of puts.
 *
 * The map owns copies of every key and value. Keys are at most
 * MN_KV_KEY_MAX bytes, values at most MN_KV_VALUE_MAX bytes. */
#ifndef MN_KVMAP_H
#define MN_KVMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"

#define MN_KV_KEY_MAX 128
#define MN_KV_VALUE_MAX (MN_BLOCK_BYTES_MAX + 1024)

typedef struct mn_kvmap mn_kvmap;

enum mn_kv_state { MN_KV_ABSENT = 0, MN_KV_VALUE = 1, MN_KV_DELETED = 2 };

/* Returns a new empty map, or NULL when out of memory. */
mn_kvmap *mn_kv_new(void);
void mn_kv_free(mn_kvmap *m); /* NULL-safe */
void mn_kv_clear(mn_kvmap *m);

/* Sets key to value (a copy). Returns MN_OK, MN_ENOMEM, MN_ETOOBIG. */
int mn_kv_put(mn_kvmap *m, const void *key, size_t key_len, const void *val,
              size_t val_len) MN_WARN_UNUSED;
/* Records a deletion of key. Returns MN_OK, MN_ENOMEM, MN_ETOOBIG. */
int mn_kv_del(mn_kvmap *m, const void *key, size_t key_len) MN_WARN_UNUSED;

/* Looks key up. Returns MN_KV_ABSENT, MN_KV_DELETED, or MN_KV_VALUE with
 * *val / *val_len pointing into the map (valid until the key is next
 * written or the map is cleared or freed). val/val_len may be NULL. */
int mn_kv_get(const mn_kvmap *m, const void *key, size_t key_len, const uint8_t **val,
              size_t *val_len);

/* Number of entries (values and deletions). */
size_t mn_kv_count(const mn_kvmap *m);

/* Entry i (0 <= i < count) in insertion order of each key's first write.
 * *val is NULL for a deletion. */
void mn_kv_entry(const mn_kvmap *m, size_t i, const uint8_t **key, size_t *key_len,
                 const uint8_t **val, size_t *val_len);

/* Writes every entry of src into dst (later writes win). Returns MN_OK or
 * MN_ENOMEM (dst then holds a prefix of src's entries). */
int mn_kv_merge(mn_kvmap *dst, const mn_kvmap *src) MN_WARN_UNUSED;

#endif
