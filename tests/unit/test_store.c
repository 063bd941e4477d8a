/* test_store.c: the LevelDB store: heights across reopen, getters, the vote
 * log and evidence, and crash atomicity (a child killed with SIGKILL in the
 * middle of committing leaves whole blocks only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <leveldb/c.h>

#include "kvmap.h"
#include "ledger_fixture.h"
#include "smt.h"
#include "store.h"
#include "store_raw.h"

static mn_store *open_or_fail(const char *path) {
    mn_store *s = NULL;
    char err[256] = "";
    int rc = mn_store_open(&s, path, err, sizeof err);
    if (rc != MN_OK) fail_msg("open %s: %s", path, err);
    return s;
}

/* Commits block 1 (bytes "b") holding the one entry key = val. */
static void commit_one_entry(mn_store *s, const uint8_t *key, size_t kl, const void *val, size_t vl) {
    mn_kvmap *m = mn_kv_new();
    assert_non_null(m);
    assert_int_equal(mn_kv_put(m, key, kl, val, vl), MN_OK);
    uint8_t zero[32] = {0};
    assert_int_equal(mn_store_commit(s, 1, (uint8_t *)"b", 1, NULL, 0, m, zero), MN_OK);
    mn_kv_free(m);
}

static void commit_simple(mn_store *s, uint64_t h) {
    mn_kvmap *m = mn_kv_new();
    uint8_t k[MN_STORE_KEY_MAX], id[32], root[32];
    lf_id(id, 'c', (uint32_t)h);
    size_t kl = mn_store_key_record(k, id);
    char v[32];
    int vl = snprintf(v, sizeof v, "record %llu", (unsigned long long)h);
    assert_int_equal(mn_kv_put(m, k, kl, v, (size_t)vl), MN_OK);
    uint8_t tk[MN_STORE_KEY_MAX], th[32], loc[MN_STORE_TX_LOC_MAX];
    lf_id(th, 't', (uint32_t)h);
    kl = mn_store_key_tx(tk, th);
    size_t ll = mn_store_tx_location(loc, h, 70000); /* an index of three varint bytes */
    assert_int_equal(ll, 4);
    assert_int_equal(mn_kv_put(m, tk, kl, loc, ll), MN_OK);
    char block[32], cert[32];
    int bl = snprintf(block, sizeof block, "block %llu", (unsigned long long)h);
    int cl = snprintf(cert, sizeof cert, "cert %llu", (unsigned long long)h);
    memset(root, (int)h, 32);
    assert_int_equal(mn_store_commit(s, h, (uint8_t *)block, (size_t)bl, (uint8_t *)cert, (size_t)cl, m, root),
                     MN_OK);
    mn_kv_free(m);
}

static void height_key(char k[9], char fam, uint64_t h) {
    k[0] = fam;
    for (int i = 0; i < 8; i++) k[1 + i] = (char)(h >> (56 - 8 * i));
}

/* A crash between a commit's two writes leaves the block's chain entries
 * (DATA_DIR/chain) above the state's height: they are never read, are
 * deleted at open, and the block that then commits at that height is the
 * one read back. */
static void chain_entries_above_the_height_are_dropped(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    for (uint64_t h = 1; h <= 2; h++) commit_simple(s, h);
    mn_store_close(s);
    char chain[200], k[9], *err = NULL;
    snprintf(chain, sizeof chain, "%s/chain", t.data);
    leveldb_options_t *o = leveldb_options_create();
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_readoptions_t *ro = leveldb_readoptions_create();
    leveldb_t *db = leveldb_open(o, chain, &err);
    assert_null(err);
    const char fams[] = {'B', 'C', 'W'};
    for (int i = 0; i < 3; i++) {
        height_key(k, fams[i], 3);
        leveldb_put(db, wo, k, 9, "stale", 5, &err);
        assert_null(err);
    }
    leveldb_close(db);
    s = open_or_fail(t.data);
    assert_int_equal(mn_store_height(s), 2);
    uint8_t *b = NULL;
    size_t bl = 0;
    assert_int_equal(mn_store_get_block(s, 3, &b, &bl), MN_ENOTFOUND);
    assert_int_equal(mn_store_get_block(s, 2, &b, &bl), MN_OK);
    assert_int_equal(bl, 7);
    assert_memory_equal(b, "block 2", 7);
    free(b);
    mn_store_close(s);
    db = leveldb_open(o, chain, &err);
    assert_null(err);
    for (int i = 0; i < 3; i++) {
        size_t vl = 0;
        height_key(k, fams[i], 3);
        char *v = leveldb_get(db, ro, k, 9, &vl, &err);
        assert_null(err);
        assert_null(v);
    }
    height_key(k, 'B', 2);
    size_t vl = 0;
    char *v = leveldb_get(db, ro, k, 9, &vl, &err);
    assert_non_null(v);
    leveldb_free(v);
    leveldb_close(db);
    s = open_or_fail(t.data);
    commit_simple(s, 3);
    assert_int_equal(mn_store_get_block(s, 3, &b, &bl), MN_OK);
    assert_int_equal(bl, 7);
    assert_memory_equal(b, "block 3", 7);
    free(b);
    mn_store_close(s);
    leveldb_options_destroy(o);
    leveldb_writeoptions_destroy(wo);
    leveldb_readoptions_destroy(ro);
    lf_rmrf(t.dir);
}

static void heights_and_getters_survive_reopen(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    assert_int_equal(mn_store_height(s), 0);
    uint8_t root[32], zero[32] = {0};
    mn_store_root(s, root);
    assert_memory_equal(root, zero, 32);
    mn_kvmap *m = mn_kv_new();
    assert_int_equal(mn_store_commit(s, 2, (uint8_t *)"b", 1, NULL, 0, m, zero), MN_ESTATE);
    mn_kv_free(m);
    for (uint64_t h = 1; h <= 3; h++) commit_simple(s, h);
    mn_store_close(s);
    s = open_or_fail(t.data);
    assert_int_equal(mn_store_height(s), 3);
    mn_store_root(s, root);
    assert_int_equal(root[0], 3);
    uint8_t *buf;
    size_t len;
    assert_int_equal(mn_store_get_block(s, 2, &buf, &len), MN_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "block 2", 7);
    free(buf);
    assert_int_equal(mn_store_get_cert(s, 3, &buf, &len), MN_OK);
    assert_memory_equal(buf, "cert 3", 6);
    free(buf);
    assert_int_equal(mn_store_get_block(s, 4, &buf, &len), MN_ENOTFOUND);
    assert_int_equal(mn_store_put_cert(s, 4, (uint8_t *)"c", 1), MN_EINVAL);
    assert_int_equal(mn_store_put_cert(s, 3, (uint8_t *)"bigger cert", 11), MN_OK);
    assert_int_equal(mn_store_get_cert(s, 3, &buf, &len), MN_OK);
    assert_int_equal(len, 11);
    free(buf);
    uint8_t id[32], th[32];
    lf_id(id, 'c', 2);
    assert_int_equal(mn_store_get_record(s, id, &buf, &len), MN_OK);
    assert_memory_equal(buf, "record 2", 8);
    free(buf);
    lf_id(id, 'c', 9);
    assert_int_equal(mn_store_get_record(s, id, &buf, &len), MN_ENOTFOUND);
    lf_id(th, 't', 3);
    uint64_t h = 0;
    uint32_t idx = 0;
    assert_int_equal(mn_store_get_tx_location(s, th, &h, &idx), MN_OK);
    assert_int_equal(h, 3);
    assert_int_equal(idx, 70000);
    uint64_t nonce = 7;
    assert_int_equal(mn_store_get_nonce(s, "nobody", &nonce), MN_OK);
    assert_int_equal(nonce, 0);
    assert_true(mn_store_approx_bytes(s) > 0);
    mn_store_close(s);
    /* A second open of a locked store fails with a message. */
    s = open_or_fail(t.data);
    mn_store *s2 = NULL;
    char err[256] = "";
    assert_int_equal(mn_store_open(&s2, t.data, err, sizeof err), MN_EIO);
    assert_non_null(strstr(err, t.data));
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* Commits block h setting the nonce of signer "s<first+i>" to nonce0 + i,
 * for count signers. */
static void commit_nonces(mn_store *s, uint64_t h, int first, int count, uint64_t nonce0) {
    mn_kvmap *m = mn_kv_new();
    assert_non_null(m);
    for (int i = 0; i < count; i++) {
        char signer[16];
        snprintf(signer, sizeof signer, "s%d", first + i);
        uint8_t k[MN_STORE_KEY_MAX], v[8];
        size_t kl = mn_store_key_nonce(k, signer);
        mn_put_u64be(v, nonce0 + (uint64_t)i);
        assert_int_equal(mn_kv_put(m, k, kl, v, 8), MN_OK);
    }
    uint8_t root[32] = {0};
    assert_int_equal(mn_store_commit(s, h, (uint8_t *)"b", 1, NULL, 0, m, root), MN_OK);
    mn_kv_free(m);
}

static uint64_t nonce_of(mn_store *s, const char *signer) {
    uint64_t nonce = 12345;
    assert_int_equal(mn_store_get_nonce(s, signer, &nonce), MN_OK);
    return nonce;
}

/* Nonces are remembered between reads: every commit and import must show
 * through at once, for more signers than the memory has slots. */
static void nonces_read_back_after_every_write(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    assert_int_equal(nonce_of(s, "s0"), 0); /* remembered as never signed */
    assert_int_equal(nonce_of(s, "s1"), 0);
    commit_nonces(s, 1, 0, 2, 5);
    assert_int_equal(nonce_of(s, "s0"), 5);
    assert_int_equal(nonce_of(s, "s1"), 6);
    commit_nonces(s, 2, 0, 1, 9);
    assert_int_equal(nonce_of(s, "s0"), 9);
    assert_int_equal(nonce_of(s, "s1"), 6);
    /* 1,000 signers share the slots: each reads its own nonce. */
    for (int i = 0; i < 1000; i++) {
        char signer[16];
        snprintf(signer, sizeof signer, "s%d", i);
        (void)nonce_of(s, signer);
    }
    commit_nonces(s, 3, 0, 1000, 100);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 1000; i++) {
            char signer[16];
            snprintf(signer, sizeof signer, "s%d", i);
            assert_int_equal(nonce_of(s, signer), 100 + (uint64_t)i);
        }
    }
    assert_int_equal(nonce_of(s, "nobody"), 0);
    mn_store_close(s);
    s = open_or_fail(t.data);
    assert_int_equal(nonce_of(s, "s999"), 1099);
    mn_store_close(s);
    lf_rmrf(t.dir);

    /* An import's entries show through too. */
    tmp_make(&t);
    s = open_or_fail(t.data);
    assert_int_equal(nonce_of(s, "s7"), 0);
    mn_kvmap *m = mn_kv_new();
    uint8_t k[MN_STORE_KEY_MAX], v[8];
    size_t kl = mn_store_key_nonce(k, "s7");
    mn_put_u64be(v, 44);
    assert_int_equal(mn_kv_put(m, k, kl, v, 8), MN_OK);
    assert_int_equal(mn_store_write(s, m), MN_OK);
    mn_kv_free(m);
    assert_int_equal(nonce_of(s, "s7"), 44);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

typedef struct { int n; uint8_t last[64]; size_t last_len; } blobs;

static int collect(void *ctx, const uint8_t *d, size_t len) {
    blobs *b = ctx;
    b->n++;
    b->last_len = len < 64 ? len : 64;
    memcpy(b->last, d, b->last_len);
    return 0;
}

static void votelog_and_evidence_persist_and_prune(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    for (uint64_t h = 1; h <= 5; h++)
        for (int i = 0; i < 3; i++) {
            char e[32];
            int el = snprintf(e, sizeof e, "vote %llu.%d", (unsigned long long)h, i);
            assert_int_equal(mn_store_votelog_put(s, h, (uint8_t *)e, (size_t)el), MN_OK);
        }
    assert_int_equal(mn_store_evidence_put(s, (uint8_t *)"ev1", 3), MN_OK);
    mn_store_close(s);
    s = open_or_fail(t.data);
    blobs b = {0};
    assert_int_equal(mn_store_votelog_list(s, collect, &b), MN_OK);
    assert_int_equal(b.n, 15);
    assert_memory_equal(b.last, "vote 5.2", 8);
    /* Appending after reopen keeps append order (sequence continues). */
    assert_int_equal(mn_store_votelog_put(s, 5, (uint8_t *)"vote 5.3", 8), MN_OK);
    assert_int_equal(mn_store_votelog_prune(s, 4), MN_OK);
    memset(&b, 0, sizeof b);
    assert_int_equal(mn_store_votelog_list(s, collect, &b), MN_OK);
    assert_int_equal(b.n, 7);
    assert_memory_equal(b.last, "vote 5.3", 8);
    assert_int_equal(mn_store_evidence_put(s, (uint8_t *)"ev2", 3), MN_OK);
    memset(&b, 0, sizeof b);
    assert_int_equal(mn_store_evidence_list(s, collect, &b), MN_OK);
    assert_int_equal(b.n, 2);
    assert_memory_equal(b.last, "ev2", 3);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

typedef struct { char joined[256]; size_t len; } joined_blobs;

static int join_blob(void *ctx, const uint8_t *d, size_t len) {
    joined_blobs *j = ctx;
    if (j->len + len + 2 > sizeof j->joined) return 1;
    memcpy(j->joined + j->len, d, len);
    j->len += len;
    j->joined[j->len++] = '|';
    j->joined[j->len] = 0;
    return 0;
}

/* A run of records appended together reads back whole, in order, after a
 * reopen, and later single puts continue the sequence after it. */
static void votelog_append_writes_a_run_in_order(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    assert_int_equal(mn_store_votelog_put(s, 7, (uint8_t *)"vote 7.0", 8), MN_OK);
    mn_store_votelog_entry run[3] = {
        {7, (const uint8_t *)"polka 7.a", 9}, {7, (const uint8_t *)"polka 7.b", 9}, {7, (const uint8_t *)"vote 7.1", 8}};
    assert_int_equal(mn_store_votelog_append(s, run, 3), MN_OK);
    assert_int_equal(mn_store_votelog_append(s, run, 0), MN_EINVAL);
    mn_store_close(s);
    s = open_or_fail(t.data);
    assert_int_equal(mn_store_votelog_put(s, 8, (uint8_t *)"vote 8.0", 8), MN_OK);
    joined_blobs j = {0};
    assert_int_equal(mn_store_votelog_list(s, join_blob, &j), MN_OK);
    assert_string_equal(j.joined, "vote 7.0|polka 7.a|polka 7.b|vote 7.1|vote 8.0|");
    blobs b = {0};
    /* pruning below 8 leaves the one record of height 8 */
    assert_int_equal(mn_store_votelog_prune(s, 8), MN_OK);
    memset(&b, 0, sizeof b);
    assert_int_equal(mn_store_votelog_list(s, collect, &b), MN_OK);
    assert_int_equal(b.n, 1);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* The crash child: commits blocks forever; block h rewrites the same KEYS
 * keys with value h, and reports each committed height on the pipe. */
#define CRASH_KEYS 3000

static void crash_child(const char *path, int fd) {
    mn_store *s = NULL;
    char err[256];
    if (mn_store_open(&s, path, err, sizeof err) != MN_OK) _exit(2);
    mn_kvmap *m = mn_kv_new();
    for (uint64_t h = mn_store_height(s) + 1;; h++) {
        mn_kv_clear(m);
        uint8_t v[8];
        for (int i = 0; i < 8; i++) v[i] = (uint8_t)(h >> (56 - 8 * i));
        for (uint32_t i = 0; i < CRASH_KEYS; i++) {
            uint8_t k[8] = {'x', 0, 0, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
            uint8_t val[200];
            memset(val, (int)(h & 0xff), sizeof val);
            memcpy(val, v, 8);
            if (mn_kv_put(m, k, 8, val, sizeof val) != MN_OK) _exit(3);
        }
        uint8_t root[32];
        memset(root, (int)(h & 0xff), 32);
        if (mn_store_commit(s, h, v, 8, NULL, 0, m, root) != MN_OK) _exit(4);
        if (write(fd, &h, sizeof h) != sizeof h) _exit(5);
    }
}

static void crash_mid_commit_keeps_whole_blocks(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    uint64_t last_reported = 0;
    for (int round = 0; round < 3; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(t.data, fds[1]);
        }
        close(fds[1]);
        /* Let it commit a few blocks, then kill it at an arbitrary point. */
        int want = 3 + round * 2;
        for (int i = 0; i < want; i++) {
            uint64_t h;
            assert_int_equal(read(fds[0], &h, sizeof h), (ssize_t)sizeof h);
            last_reported = h;
        }
        /* The child is already building or writing the next batch. */
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st));
        close(fds[0]);
        mn_store *s = open_or_fail(t.data);
        uint64_t h = mn_store_height(s);
        assert_true(h >= last_reported); /* what was acknowledged is durable */
        uint8_t root[32];
        mn_store_root(s, root);
        assert_int_equal(root[0], (uint8_t)(h & 0xff));
        uint8_t *b;
        size_t bl;
        assert_int_equal(mn_store_get_block(s, h, &b, &bl), MN_OK);
        free(b);
        assert_int_equal(mn_store_get_block(s, h + 1, &b, &bl), MN_ENOTFOUND);
        /* Every key holds block h's value: no half-applied block. */
        for (uint32_t i = 0; i < CRASH_KEYS; i += 1) {
            uint8_t k[8] = {'x', 0, 0, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
            uint8_t val[200];
            size_t vl;
            assert_int_equal(mn_store_get_buf(s, k, 8, val, sizeof val, &vl), MN_OK);
            uint64_t got = 0;
            for (int j = 0; j < 8; j++) got = (got << 8) | val[j];
            if (got != h) fail_msg("key %u holds block %llu, height is %llu", i, (unsigned long long)got,
                                   (unsigned long long)h);
        }
        mn_store_close(s);
    }
    lf_rmrf(t.dir);
}

static void status_changes_from_height(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    uint8_t zero[32] = {0};
    for (uint64_t h = 1; h <= 4; h++) {
        mn_kvmap *m = mn_kv_new();
        for (uint32_t i = 0; i < 2; i++) {
            uint8_t k[MN_STORE_KEY_MAX];
            size_t kl = mn_store_key_change(k, h, i);
            uint8_t v[2] = {(uint8_t)h, (uint8_t)i};
            assert_int_equal(mn_kv_put(m, k, kl, v, 2), MN_OK);
        }
        assert_int_equal(mn_store_commit(s, h, (uint8_t *)"b", 1, NULL, 0, m, zero), MN_OK);
        mn_kv_free(m);
    }
    blobs b = {0};
    int cb(void *ctx, uint64_t height, const uint8_t *c, size_t len);
    assert_int_equal(mn_store_status_changes(s, 3, 100, cb, &b), MN_OK);
    assert_int_equal(b.n, 4);
    assert_int_equal(b.last[0], 4);
    assert_int_equal(b.last[1], 1);
    memset(&b, 0, sizeof b);
    assert_int_equal(mn_store_status_changes(s, 1, 3, cb, &b), MN_OK);
    assert_int_equal(b.n, 3);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

int cb(void *ctx, uint64_t height, const uint8_t *c, size_t len) {
    blobs *b = ctx;
    if (len != 2 || c[0] != height) return 1;
    return collect(ctx, c, len) || b->n > 100;
}

/* Real StatusChanges, as the ledger writes them: stored one entry per
 * block (transactions named by their index in the stored block where they
 * are in it), read back as the same bytes, in order, from any height, at
 * most max. */
typedef struct { uint8_t buf[64][256]; size_t len[64]; uint64_t h[64]; size_t n; } change_list;

static int keep_change(void *ctx, uint64_t height, const uint8_t *c, size_t len) {
    change_list *l = ctx;
    if (l->n == 64 || len > 256) return 1;
    memcpy(l->buf[l->n], c, len);
    l->len[l->n] = len;
    l->h[l->n++] = height;
    return 0;
}

static int count_w(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    (void)k;
    (void)v;
    (void)vl;
    size_t *n = ctx;
    n[kl == 9 ? 0 : 1]++;
    return 0;
}

static bool holds_bytes(const uint8_t *v, size_t vl, const uint8_t *b, size_t bl) {
    for (size_t i = 0; i + bl <= vl; i++)
        if (memcmp(v + i, b, bl) == 0) return true;
    return false;
}

/* The stored per-block entries: how many, and whether each change's id is
 * in them (ids[i]: change i of every block, by its number h * 10 + i). */
typedef struct { size_t n; bool id_stored[4][4]; } w_entries;

static int inspect_w(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    w_entries *w = ctx;
    if (kl != 9 || k[8] < 1 || k[8] > 3) return 1;
    w->n++;
    for (uint32_t i = 0; i < 4; i++) {
        uint8_t id[32];
        lf_id(id, 'c', (uint32_t)(k[8] * 10 + i));
        w->id_stored[k[8]][i] = holds_bytes(v, vl, id, 32);
    }
    return 0;
}

static void status_changes_stored_per_block(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    uint8_t zero[32] = {0};
    change_list want = {0};
    for (uint64_t h = 1; h <= 3; h++) {
        /* Block h: three transactions; changes from the first (two of them,
         * one batch), the third, and one naming a transaction not in the block.
         * The first carries the ids of its two changes, the third not its own. */
        uint8_t txb[3][80];
        ProtobufCBinaryData txs[3];
        uint8_t txh[4][32];
        for (int i = 0; i < 3; i++) {
            memset(txb[i], (int)(h * 16 + (uint64_t)i), sizeof txb[i]);
            txs[i] = (ProtobufCBinaryData){sizeof txb[i], txb[i]};
        }
        lf_id(txb[0] + 7, 'c', (uint32_t)(h * 10 + 0));
        lf_id(txb[0] + 7 + 32, 'c', (uint32_t)(h * 10 + 1));
        for (int i = 0; i < 3; i++) mn_sha256(txh[i], txb[i], sizeof txb[i]);
        memset(txh[3], 0xEE, 32);
        Midnode__Block b = MIDNODE__BLOCK__INIT;
        b.header = (ProtobufCBinaryData){1, (uint8_t *)"h"};
        b.n_txs = 3;
        b.txs = txs;
        uint8_t bb[512];
        assert_true(midnode__block__get_packed_size(&b) <= sizeof bb);
        size_t bl = midnode__block__pack(&b, bb);
        static const int which[4] = {0, 0, 2, 3};
        static const char *kinds[4] = {"issue", "supersede", "revoke", "report_loss"};
        mn_kvmap *m = mn_kv_new();
        for (uint32_t i = 0; i < 4; i++) {
            uint8_t id[32];
            lf_id(id, 'c', (uint32_t)(h * 10 + i));
            Midnode__StatusChange c = MIDNODE__STATUS_CHANGE__INIT;
            c.height = h;
            c.time_ms = 1700000000000ll + (int64_t)h;
            c.tx_hash = (ProtobufCBinaryData){32, txh[which[i]]};
            c.credential_id = (ProtobufCBinaryData){32, id};
            c.status = i == 1 ? MIDNODE__CREDENTIAL_STATUS__SUPERSEDED : MIDNODE__CREDENTIAL_STATUS__ACTIVE;
            c.previous = i == 0 ? 0 : MIDNODE__CREDENTIAL_STATUS__ACTIVE;
            c.signer = i == 3 ? "skt" : "mois";
            c.kind = (char *)kinds[i];
            uint8_t k[MN_STORE_KEY_MAX];
            size_t kl = mn_store_key_change(k, h, i);
            want.len[want.n] = midnode__status_change__pack(&c, want.buf[want.n]);
            want.h[want.n] = h;
            assert_int_equal(mn_kv_put(m, k, kl, want.buf[want.n], want.len[want.n]), MN_OK);
            want.n++;
        }
        assert_int_equal(mn_store_commit(s, h, bb, bl, NULL, 0, m, zero), MN_OK);
        mn_kv_free(m);
    }
    size_t entries[2] = {0, 0};
    assert_int_equal(mn_store_scan(s, 'W', count_w, entries), MN_OK);
    assert_int_equal(entries[0], 3); /* one per block */
    assert_int_equal(entries[1], 0);
    /* ids found in their transaction are named by offset, the others stored */
    w_entries w = {0};
    assert_int_equal(mn_store_scan(s, 'W', inspect_w, &w), MN_OK);
    assert_int_equal(w.n, 3);
    for (int h = 1; h <= 3; h++) {
        assert_false(w.id_stored[h][0]);
        assert_false(w.id_stored[h][1]);
        assert_true(w.id_stored[h][2]);
        assert_true(w.id_stored[h][3]);
    }
    mn_store_close(s);
    s = open_or_fail(t.data);
    for (uint64_t from = 1; from <= 4; from++) {
        for (size_t max = 1; max <= 13; max += 4) {
            change_list got = {0};
            assert_int_equal(mn_store_status_changes(s, from, max, keep_change, &got), MN_OK);
            size_t first = (size_t)(from - 1) * 4, expect = want.n - first < max ? want.n - first : max;
            assert_int_equal(got.n, expect);
            for (size_t i = 0; i < got.n; i++) {
                assert_int_equal(got.h[i], want.h[first + i]);
                assert_int_equal(got.len[i], want.len[first + i]);
                assert_memory_equal(got.buf[i], want.buf[first + i], got.len[i]);
            }
        }
    }
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* A block's change entry as the previous encoding (version 1: every id
 * stored whole) wrote it still reads back. */
static void status_changes_of_the_previous_encoding_read(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    uint8_t id[32], txh[32];
    lf_id(id, 'c', 1);
    memset(txh, 0x7e, 32);
    Midnode__StatusChange c = MIDNODE__STATUS_CHANGE__INIT;
    c.height = 1;
    c.time_ms = 1700000000000ll;
    c.tx_hash = (ProtobufCBinaryData){32, txh};
    c.credential_id = (ProtobufCBinaryData){32, id};
    c.status = MIDNODE__CREDENTIAL_STATUS__SUSPENDED;
    c.previous = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
    c.signer = "skt";
    c.kind = "report_loss";
    uint8_t want[256];
    size_t want_len = midnode__status_change__pack(&c, want);
    uint8_t k[MN_STORE_KEY_MAX];
    size_t kl = mn_store_key_change(k, 1, 0);
    commit_one_entry(s, k, kl, want, want_len);
    mn_store_close(s);

    uint8_t v1[128], *p = v1;
    *p++ = 1;                                                   /* version */
    const uint8_t t_ms[] = {0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31}; /* 1700000000000 */
    memcpy(p, t_ms, sizeof t_ms);
    p += sizeof t_ms;
    *p++ = 1; /* one transaction, by hash */
    *p++ = 0;
    memcpy(p, txh, 32);
    p += 32;
    *p++ = 2; /* two strings */
    *p++ = 3;
    memcpy(p, "skt", 3);
    p += 3;
    *p++ = 11;
    memcpy(p, "report_loss", 11);
    p += 11;
    *p++ = 1; /* one change: tx 0, the id, SUSPENDED, ACTIVE, signer 0, kind 1 */
    *p++ = 0;
    memcpy(p, id, 32);
    p += 32;
    *p++ = (uint8_t)MIDNODE__CREDENTIAL_STATUS__SUSPENDED;
    *p++ = (uint8_t)MIDNODE__CREDENTIAL_STATUS__ACTIVE;
    *p++ = 0;
    *p++ = 1;
    char chain[600];
    snprintf(chain, sizeof chain, "%s/chain", t.data);
    uint8_t wk[9] = {'W', 0, 0, 0, 0, 0, 0, 0, 1};
    raw_write(chain, wk, sizeof wk, v1, (size_t)(p - v1));

    s = open_or_fail(t.data);
    change_list got = {0};
    assert_int_equal(mn_store_status_changes(s, 1, 10, keep_change, &got), MN_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.len[0], want_len);
    assert_memory_equal(got.buf[0], want, want_len);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* Records are stored without their id field where they begin with it;
 * any value reads back as written, by get, get_buf and scan. */
typedef struct { size_t n; uint8_t ids[4][32]; size_t lens[4]; uint8_t vals[4][64]; } rec_seen;

static int see_record(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    rec_seen *r = ctx;
    if (r->n == 4 || kl != 33 || vl > 64) return 1;
    memcpy(r->ids[r->n], k + 1, 32);
    memcpy(r->vals[r->n], v, vl);
    r->lens[r->n++] = vl;
    return 0;
}

static void record_values_read_back_exactly(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    uint8_t ids[3][32], vals[3][64];
    size_t lens[3] = {40, 40, 5};
    mn_kvmap *m = mn_kv_new();
    for (int i = 0; i < 3; i++) {
        lf_id(ids[i], 'q', (uint32_t)i);
        memset(vals[i], 0x11 * (i + 1), sizeof vals[i]);
        if (i < 2) { /* begins with its id field; the second then with a 0x00 byte */
            vals[i][0] = 0x0a;
            vals[i][1] = 32;
            memcpy(vals[i] + 2, ids[i], 32);
            vals[i][34] = i == 0 ? 0x10 : 0x00;
        }
        uint8_t k[MN_STORE_KEY_MAX];
        size_t kl = mn_store_key_record(k, ids[i]);
        assert_int_equal(mn_kv_put(m, k, kl, vals[i], lens[i]), MN_OK);
    }
    uint8_t zero[32] = {0};
    assert_int_equal(mn_store_commit(s, 1, (uint8_t *)"b", 1, NULL, 0, m, zero), MN_OK);
    mn_kv_free(m);
    for (int i = 0; i < 3; i++) {
        uint8_t *v = NULL, buf[64];
        size_t vl = 0;
        assert_int_equal(mn_store_get_record(s, ids[i], &v, &vl), MN_OK);
        assert_int_equal(vl, lens[i]);
        assert_memory_equal(v, vals[i], vl);
        free(v);
        uint8_t k[MN_STORE_KEY_MAX];
        size_t kl = mn_store_key_record(k, ids[i]);
        assert_int_equal(mn_store_get_buf(s, k, kl, buf, lens[i], &vl), MN_OK);
        assert_memory_equal(buf, vals[i], lens[i]);
        assert_int_equal(mn_store_get_buf(s, k, kl, buf, lens[i] - 1, &vl), MN_ETOOBIG);
        assert_int_equal(vl, lens[i]);
    }
    rec_seen seen = {0};
    assert_int_equal(mn_store_scan(s, 'r', see_record, &seen), MN_OK);
    assert_int_equal(seen.n, 3);
    for (size_t j = 0; j < seen.n; j++) {
        int i = memcmp(seen.ids[j], ids[0], 32) == 0 ? 0 : memcmp(seen.ids[j], ids[1], 32) == 0 ? 1 : 2;
        assert_memory_equal(seen.ids[j], ids[i], 32);
        assert_int_equal(seen.lens[j], lens[i]);
        assert_memory_equal(seen.vals[j], vals[i], lens[i]);
    }
    mn_store_close(s);
    lf_rmrf(t.dir);
}

/* Length of the raw value under one key of a closed store, -1 when
 * absent; its first byte into *first (may be NULL). */
static long raw_len(const char *path, const uint8_t *key, size_t kl, uint8_t *first) {
    char *lerr = NULL;
    leveldb_options_t *o = leveldb_options_create();
    leveldb_t *db = leveldb_open(o, path, &lerr);
    assert_null(lerr);
    leveldb_readoptions_t *r = leveldb_readoptions_create();
    size_t vl = 0;
    char *v = leveldb_get(db, r, (const char *)key, kl, &vl, &lerr);
    assert_null(lerr);
    long out = v ? (long)vl : -1;
    if (first && v && vl) *first = (uint8_t)v[0];
    leveldb_free(v);
    leveldb_readoptions_destroy(r);
    leveldb_close(db);
    leveldb_options_destroy(o);
    return out;
}

/* Packs a record of id issued at issued_height by tx issued_byte..
 * (repeated), updated (height, tx byte) as given. */
static size_t pack_issued(uint8_t *out, const uint8_t id[32], uint64_t issued_height, uint8_t issued_byte,
                          uint64_t updated_height, uint8_t updated_byte);

/* Packs a record of id issued at height 77 by tx 0x5a..; updated (height,
 * tx byte) as given. */
static size_t pack_record(uint8_t *out, const uint8_t id[32], uint64_t updated_height, uint8_t updated_byte) {
    return pack_issued(out, id, 77, 0x5a, updated_height, updated_byte);
}

static size_t pack_issued(uint8_t *out, const uint8_t id[32], uint64_t issued_height, uint8_t issued_byte,
                          uint64_t updated_height, uint8_t updated_byte) {
    uint8_t holder[32], device[32], issued[32], updated[32];
    memset(holder, 0x21, 32);
    memset(device, 0x22, 32);
    memset(issued, issued_byte, 32);
    memset(updated, updated_byte, 32);
    Midnode__CredentialRecord m = MIDNODE__CREDENTIAL_RECORD__INIT;
    m.credential_id = (ProtobufCBinaryData){32, (uint8_t *)id};
    m.type = MIDNODE__CREDENTIAL_TYPE__RESIDENT;
    m.holder_ref = (ProtobufCBinaryData){32, holder};
    m.device_ref = (ProtobufCBinaryData){32, device};
    m.carrier = (char *)"skt";
    m.issuer = (char *)"mois";
    m.expires_at = 1900000000000;
    m.status = MIDNODE__CREDENTIAL_STATUS__ACTIVE;
    m.issued_height = issued_height;
    m.issued_tx = (ProtobufCBinaryData){32, issued};
    m.updated_height = updated_height;
    m.updated_tx = (ProtobufCBinaryData){32, updated};
    return midnode__credential_record__pack(&m, out);
}

/* A record never changed since its issuance is stored without its
 * repeated fields; every record reads back byte for byte (get, scan, and
 * the tree's implicit leaf, whose value hash is of the whole bytes). */
static void records_as_issued_are_stored_shorter(void **state) {
    (void)state;
    enum { N = 4 };
    uint8_t ids[N][32], vals[N][256];
    size_t lens[N];
    for (int i = 0; i < N; i++) lf_id(ids[i], 'z', (uint32_t)i);
    lens[0] = pack_record(vals[0], ids[0], 77, 0x5a);     /* as issued */
    lens[1] = pack_record(vals[1], ids[1], 78, 0x5b);     /* changed since */
    lens[2] = pack_record(vals[2], ids[2], 77, 0x5b);     /* same height, another tx */
    memcpy(vals[3], vals[0], lens[0]);                    /* as issued, then one more field */
    lens[3] = lens[0];
    vals[3][lens[3]++] = 0x8a; /* field 17, superseded_by */
    vals[3][lens[3]++] = 0x01;
    vals[3][lens[3]++] = 32;
    memset(vals[3] + lens[3], 0x33, 32);
    lens[3] += 32;
    memcpy(vals[3] + 2, ids[3], 32);
    long stored[N];
    for (int i = 0; i < N; i++) {
        tmpdir t;
        tmp_make(&t);
        mn_store *s = open_or_fail(t.data);
        uint8_t k[MN_STORE_KEY_MAX];
        size_t kl = mn_store_key_record(k, ids[i]);
        commit_one_entry(s, k, kl, vals[i], lens[i]);
        uint8_t *v = NULL;
        size_t vl = 0;
        assert_int_equal(mn_store_get_record(s, ids[i], &v, &vl), MN_OK);
        assert_int_equal(vl, lens[i]);
        assert_memory_equal(v, vals[i], vl);
        free(v);
        rec_seen seen = {0};
        if (lens[i] <= 64) {
            assert_int_equal(mn_store_scan(s, 'r', see_record, &seen), MN_OK);
            assert_int_equal(seen.n, 1);
        }
        /* the one record is the implicit leaf at the root position */
        uint8_t pos[MN_SMT_POS_KEY_MAX], kh[32], node[MN_SMT_NODE_LEN], vh[32];
        mn_smt_key_credential(kh, ids[i]);
        size_t pl = mn_smt_pos_key(pos, 0, kh);
        assert_int_equal(mn_store_smt_leaf(s, pos, pl, node), MN_OK);
        assert_memory_equal(node + 1, kh, 32);
        mn_sha256(vh, vals[i], lens[i]);
        assert_memory_equal(node + 33, vh, 32);
        mn_store_close(s);
        uint8_t pk[1 + 8 + 32];
        pk[0] = 'r';
        memcpy(pk + 1, kh, 8);
        memcpy(pk + 9, ids[i], 32);
        stored[i] = raw_len(t.data, pk, sizeof pk, NULL);
        lf_rmrf(t.dir);
    }
    /* id field left out everywhere; fields 15 and 16 too where they repeat 13 and 14 */
    assert_int_equal(stored[0], (long)lens[0] - 34 - 37 + 1);
    assert_int_equal(stored[1], (long)lens[1] - 34);
    assert_int_equal(stored[2], (long)lens[2] - 34);
    assert_int_equal(stored[3], (long)lens[3] - 34 - 37 + 1);
}

/* Rewrites (or deletes, when value is NULL) one raw key of a closed store,
 * as an older or newer midnode would have left it. */
static void raw_put(const char *path, const char *key, const char *value, size_t vlen) {
    raw_write(path, key, strlen(key), value, vlen);
}

/* Record bytes of id through every reader: get, scan and the implicit
 * leaf's value hash. */
static void reads_back(mn_store *s, const uint8_t id[32], const uint8_t *want, size_t want_len) {
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(mn_store_get_record(s, id, &v, &vl), MN_OK);
    assert_int_equal(vl, want_len);
    assert_memory_equal(v, want, vl);
    free(v);
    uint8_t pos[MN_SMT_POS_KEY_MAX], kh[32], node[MN_SMT_NODE_LEN], vh[32];
    mn_smt_key_credential(kh, id);
    size_t pl = mn_smt_pos_key(pos, 256, kh);
    assert_int_equal(mn_store_smt_leaf(s, pos, pl, node), MN_OK);
    mn_sha256(vh, want, want_len);
    assert_memory_equal(node + 33, vh, 32);
}

typedef struct { size_t n, bytes; } rec_total;

static int total_records(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    (void)k;
    (void)kl;
    (void)v;
    rec_total *t = ctx;
    t->n++;
    t->bytes += vl;
    return 0;
}

/* Records a transaction issued two or more of in the block committed name
 * it by its index in the block (the 'X' entry holds its hash once):
 * 33 bytes fewer each; a transaction's only record, or a record issued at
 * another height, keeps the hash. All read back byte for byte, also in a
 * reopened store; with the 'X' entry gone, reads are MN_ECORRUPT. */
static void records_of_a_batch_name_their_transaction(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    enum { N = 4 };
    uint8_t ids[N][32], vals[N][256], k[MN_STORE_KEY_MAX];
    size_t lens[N];
    for (int i = 0; i < N; i++) lf_id(ids[i], 'q', (uint32_t)i);
    lens[0] = pack_issued(vals[0], ids[0], 1, 0xb0, 1, 0xb0); /* batch b0 */
    lens[1] = pack_issued(vals[1], ids[1], 1, 0xb0, 1, 0xb0); /* batch b0 */
    lens[2] = pack_issued(vals[2], ids[2], 1, 0xb1, 1, 0xb1); /* b1 issued only this one */
    lens[3] = pack_issued(vals[3], ids[3], 9, 0xb0, 9, 0xb0); /* b0's hash, another height */
    mn_kvmap *m = mn_kv_new();
    assert_non_null(m);
    for (int i = 0; i < N; i++) {
        size_t kl = mn_store_key_record(k, ids[i]);
        assert_int_equal(mn_kv_put(m, k, kl, vals[i], lens[i]), MN_OK);
    }
    uint8_t th[32], loc[MN_STORE_TX_LOC_MAX];
    for (int i = 0; i < 2; i++) {
        memset(th, 0xb0 + i, 32);
        size_t kl = mn_store_key_tx(k, th);
        size_t ll = mn_store_tx_location(loc, 1, 200 + (uint32_t)i); /* an index of two varint bytes */
        assert_int_equal(mn_kv_put(m, k, kl, loc, ll), MN_OK);
    }
    uint8_t zero[32] = {0};
    assert_int_equal(mn_store_commit(s, 1, (const uint8_t *)"b", 1, NULL, 0, m, zero), MN_OK);
    mn_kv_free(m);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) reads_back(s, ids[i], vals[i], lens[i]);
        rec_total tot = {0};
        assert_int_equal(mn_store_scan(s, 'r', total_records, &tot), MN_OK);
        assert_int_equal(tot.n, N);
        assert_int_equal(tot.bytes, lens[0] + lens[1] + lens[2] + lens[3]);
        mn_store_close(s);
        s = open_or_fail(t.data);
    }
    mn_store_close(s);
    long stored[N];
    uint8_t first[N];
    for (int i = 0; i < N; i++) {
        uint8_t kh[32], pk[1 + 8 + 32];
        mn_smt_key_credential(kh, ids[i]);
        pk[0] = 'r';
        memcpy(pk + 1, kh, 8);
        memcpy(pk + 9, ids[i], 32);
        stored[i] = raw_len(t.data, pk, sizeof pk, &first[i]);
    }
    /* id (34) and fields 15, 16 (37) left out everywhere; field 14 (34) too in a batch, for a 2-byte index */
    assert_int_equal(first[0], 0x02);
    assert_int_equal(stored[0], (long)lens[0] - 34 - 37 - 34 + 1 + 2);
    assert_int_equal(stored[1], (long)lens[1] - 34 - 37 - 34 + 1 + 2);
    assert_int_equal(first[2], 0x01);
    assert_int_equal(stored[2], (long)lens[2] - 34 - 37 + 1);
    assert_int_equal(first[3], 0x01);
    uint8_t xk[13] = {'X', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 200};
    assert_int_equal(raw_len(t.data, xk, sizeof xk, NULL), 32);
    xk[12] = 201; /* b1 named by no record: no entry */
    assert_int_equal(raw_len(t.data, xk, sizeof xk, NULL), -1);

    xk[12] = 200;
    raw_write(t.data, xk, sizeof xk, NULL, 0);
    s = open_or_fail(t.data);
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(mn_store_get_record(s, ids[0], &v, &vl), MN_ECORRUPT);
    assert_int_equal(mn_store_get_record(s, ids[2], &v, &vl), MN_OK);
    free(v);
    rec_total tot = {0};
    assert_int_equal(mn_store_scan(s, 'r', total_records, &tot), MN_ECORRUPT);
    mn_store_close(s);
    lf_rmrf(t.dir);
}

static void other_store_formats_are_refused(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    commit_simple(s, 1);
    mn_store_close(s);
    char err[256] = "";
    /* A marker of another layout. */
    raw_put(t.data, "Mformat", "\x7f", 1);
    s = NULL;
    assert_int_equal(mn_store_open(&s, t.data, err, sizeof err), MN_ECORRUPT);
    assert_null(s);
    assert_non_null(strstr(err, "another version of midnode"));
    /* The layout before records as issued reads the same: relabelled. */
    raw_put(t.data, "Mformat", "\x04", 1);
    s = open_or_fail(t.data);
    assert_int_equal(mn_store_height(s), 1);
    mn_store_close(s);
    uint8_t label = 0;
    assert_int_equal(raw_len(t.data, (const uint8_t *)"Mformat", 7, &label), 1);
    assert_int_equal(label, 5);
    raw_put(t.data, "Mformat", "\x03", 1);
    s = NULL;
    assert_int_equal(mn_store_open(&s, t.data, err, sizeof err), MN_ECORRUPT);
    /* No marker at all on a store that holds blocks: the layout before markers. */
    raw_put(t.data, "Mformat", NULL, 0);
    err[0] = 0;
    assert_int_equal(mn_store_open(&s, t.data, err, sizeof err), MN_ECORRUPT);
    assert_non_null(strstr(err, "new data directory"));
    /* An empty new store gets the marker and opens again. */
    tmpdir t2;
    tmp_make(&t2);
    s = open_or_fail(t2.data);
    mn_store_close(s);
    s = open_or_fail(t2.data);
    assert_int_equal(mn_store_height(s), 0);
    mn_store_close(s);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", t.dir, t2.dir);
    assert_int_equal(system(cmd), 0);
}

/* A large state has thousands of tables, read at random: opening a store
 * lifts the soft limit on descriptors to the hard one, so that LevelDB can
 * keep them open past its thousand mapped tables. */
static void opening_a_store_lifts_the_descriptor_limit(void **state) {
    (void)state;
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    if (was.rlim_max != RLIM_INFINITY && was.rlim_max <= 128) skip();
    struct rlimit low = {.rlim_cur = 128, .rlim_max = was.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    struct rlimit now;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
    assert_true(now.rlim_cur == was.rlim_max);
    commit_simple(s, 1);
    assert_int_equal(mn_store_height(s), 1);
    mn_store_close(s);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", t.dir);
    assert_int_equal(system(cmd), 0);
}

/* The nice values of this process's threads, by /proc/self/task; returns
 * how many were read (at most max). */
static size_t thread_nice_values(int *out, size_t max) {
    size_t n = 0;
    DIR *tasks = opendir("/proc/self/task");
    assert_non_null(tasks);
    struct dirent *e;
    while (n < max && (e = readdir(tasks)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[300], line[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* a thread that has ended since */
        char *got = fgets(line, sizeof line, f);
        fclose(f);
        if (!got) continue;
        /* Past the command name: state is field 3, nice field 19. */
        char *p = strrchr(line, ')');
        assert_non_null(p);
        int field = 2, nice = 0;
        for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
            if (++field == 19) {
                nice = atoi(tok);
                break;
            }
        }
        assert_int_equal(field, 19);
        out[n++] = nice;
    }
    closedir(tasks);
    return n;
}

static void compactions_run_at_a_lower_priority(void **state) {
    (void)state;
    tmpdir t;
    tmp_make(&t);
    mn_store *s = open_or_fail(t.data);
    commit_simple(s, 1);
    errno = 0;
    int mine = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(errno, 0);
    int nices[256];
    size_t n = thread_nice_values(nices, 256);
    size_t lowered = 0;
    for (size_t i = 0; i < n; i++) lowered += nices[i] == mine + MN_STORE_COMPACTION_NICE;
    /* LevelDB runs one compaction thread per process. */
    assert_int_equal(lowered, 1);
    mn_store_close(s);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", t.dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heights_and_getters_survive_reopen),
        cmocka_unit_test(nonces_read_back_after_every_write),
        cmocka_unit_test(chain_entries_above_the_height_are_dropped),
        cmocka_unit_test(votelog_and_evidence_persist_and_prune),
        cmocka_unit_test(votelog_append_writes_a_run_in_order),
        cmocka_unit_test(crash_mid_commit_keeps_whole_blocks),
        cmocka_unit_test(status_changes_from_height),
        cmocka_unit_test(status_changes_stored_per_block),
        cmocka_unit_test(status_changes_of_the_previous_encoding_read),
        cmocka_unit_test(record_values_read_back_exactly),
        cmocka_unit_test(records_as_issued_are_stored_shorter),
        cmocka_unit_test(records_of_a_batch_name_their_transaction),
        cmocka_unit_test(other_store_formats_are_refused),
        cmocka_unit_test(opening_a_store_lifts_the_descriptor_limit),
        cmocka_unit_test(compactions_run_at_a_lower_priority),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
