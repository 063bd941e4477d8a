/* store_raw.h: what the store tests share beneath the store's own API: a
 * fresh temporary data directory, and writing one raw LevelDB key of a
 * closed store, as an older or newer midnode (or a forger) would have left
 * it. Static inline, so a test includes it as is. */
#ifndef STORE_RAW_H
#define STORE_RAW_H

#include <stdio.h>
#include <stdlib.h>

#include <leveldb/c.h>

typedef struct { char dir[128]; char data[160]; } tmpdir;

/* A new directory t->dir (removed by the test) and its data path t->data. */
static inline void tmp_make(tmpdir *t) {
    snprintf(t->dir, sizeof t->dir, "/tmp/mn-store-test-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->data, sizeof t->data, "%s/data", t->dir);
}

/* Puts value (vlen bytes) under key (kl bytes) of the LevelDB at path,
 * synced; deletes the key when value is NULL. */
static inline void raw_write(const char *path, const void *key, size_t kl, const void *value, size_t vlen) {
    char *lerr = NULL;
    leveldb_options_t *o = leveldb_options_create();
    leveldb_t *db = leveldb_open(o, path, &lerr);
    assert_null(lerr);
    leveldb_writeoptions_t *w = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(w, 1);
    if (value)
        leveldb_put(db, w, key, kl, value, vlen, &lerr);
    else
        leveldb_delete(db, w, key, kl, &lerr);
    assert_null(lerr);
    leveldb_writeoptions_destroy(w);
    leveldb_close(db);
    leveldb_options_destroy(o);
}

#endif
