/* snapshot.c: export and verified import of a certified state snapshot
 * (format and checks in snapshot.h). */
#include "snapshot.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "crypto.h"
#include "kvmap.h"
#include "midnode.pb-c.h"
#include "smt.h"
#include "tree_build.h"

#define MAGIC "MNSNAP01"
#define MAGIC_LEN 8
/* State entries per write batch while importing. */
#define IMPORT_CHUNK 100000

static int fail(char *err, size_t err_len, int rc, const char *fmt, ...) MN_PRINTF(4, 5);
static int fail(char *err, size_t err_len, int rc, const char *fmt, ...) {
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void put_be(uint8_t *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static bool is_final(int status) {
    return status == MIDNODE__CREDENTIAL_STATUS__REVOKED || status == MIDNODE__CREDENTIAL_STATUS__SUPERSEDED;
}

/* ---------------------------------------------------------------- export */

typedef struct writer {
    FILE *f;
    mn_sha256_ctx h;
    uint64_t bytes, entries;
    bool failed;
    mn_snapshot_info *info;
} writer;

static void w_put(writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        return;
    }
    mn_sha256_update(&w->h, p, n);
    w->bytes += n;
}

static void w_blob(writer *w, const uint8_t *p, size_t n) {
    uint8_t l[4];
    put_be(l, n, 4);
    w_put(w, l, 4);
    w_put(w, p, n);
}

static int w_entry(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    writer *w = ctx;
    uint8_t hdr[3];
    hdr[0] = k[0];
    put_be(hdr + 1, kl, 2);
    w_put(w, hdr, 3);
    w_put(w, k, kl);
    uint8_t l[4];
    put_be(l, vl, 4);
    w_put(w, l, 4);
    w_put(w, v, vl);
    w->entries++;
    switch (k[0]) {
    case 'r': w->info->records++; break;
    case 'n': w->info->nonces++; break;
    case 'd': w->info->devices++; break;
    default: w->info->holders++; break;
    }
    return w->failed ? 1 : 0;
}

int mn_snapshot_export(mn_store *s, const char *path, mn_snapshot_info *info, char *err, size_t err_len) {
    mn_snapshot_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    uint64_t height = mn_store_height(s);
    if (height == 0) return fail(err, err_len, MN_ENOTFOUND, "nothing committed yet");
    uint8_t *block = NULL, *cert = NULL;
    size_t block_len = 0, cert_len = 0;
    int rc = mn_store_get_block(s, height, &block, &block_len);
    if (rc == MN_OK) rc = mn_store_get_cert(s, height, &cert, &cert_len);
    if (rc != MN_OK) {
        free(block);
        return fail(err, err_len, rc, "block or certificate of height %llu: %s", (unsigned long long)height,
                    mn_strerror(rc));
    }
    info->height = height;
    mn_store_root(s, info->state_root);
    char tmp[1100];
    if (strlen(path) > 1024) {
        free(block);
        free(cert);
        return fail(err, err_len, MN_EINVAL, "path too long");
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    writer w = {.info = info};
    w.f = fopen(tmp, "wb");
    if (!w.f) {
        free(block);
        free(cert);
        return fail(err, err_len, MN_EIO, "cannot create %s", tmp);
    }
    mn_sha256_init(&w.h);
    w_put(&w, MAGIC, MAGIC_LEN);
    w_blob(&w, block, block_len);
    w_blob(&w, cert, cert_len);
    free(block);
    free(cert);
    /* The store is not written while we read it (one thread), so the four
     * scans see the state of one height. */
    static const char fams[] = {'r', 'n', 'd', 'h'};
    for (size_t i = 0; i < sizeof fams && rc == MN_OK && !w.failed; i++) rc = mn_store_scan(s, fams[i], w_entry, &w);
    uint8_t end[9], digest[MN_HASH_LEN];
    end[0] = 0;
    put_be(end + 1, w.entries, 8);
    w_put(&w, end, 9);
    mn_sha256_final(&w.h, digest);
    if (!w.failed && fwrite(digest, 1, MN_HASH_LEN, w.f) != MN_HASH_LEN) w.failed = true;
    w.bytes += MN_HASH_LEN;
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) w.failed = true;
    if (fclose(w.f) != 0) w.failed = true;
    if (rc == MN_OK && w.failed) rc = MN_EIO;
    if (rc == MN_OK && rename(tmp, path) != 0) rc = MN_EIO;
    if (rc != MN_OK) {
        (void)remove(tmp);
        return fail(err, err_len, rc, "writing %s: %s", path, mn_strerror(rc));
    }
    info->bytes = w.bytes;
    return MN_OK;
}

/* ---------------------------------------------------------------- import */

typedef struct reader {
    FILE *f;
    mn_sha256_ctx h;
    bool eof;
} reader;

static bool r_get(reader *r, void *p, size_t n) {
    if (n == 0) return true;
    if (fread(p, 1, n, r->f) != n) {
        r->eof = true;
        return false;
    }
    mn_sha256_update(&r->h, p, n);
    return true;
}

/* A length-prefixed blob of at most max bytes (malloc'd). */
static bool r_blob(reader *r, uint8_t **out, size_t *len, size_t max) {
    uint8_t l[4];
    if (!r_get(r, l, 4)) return false;
    size_t n = (size_t)get_be(l, 4);
    if (n == 0 || n > max) return false;
    *out = malloc(n);
    if (!*out) return false;
    *len = n;
    return r_get(r, *out, n);
}

/* Checks one entry's shape. */
static bool entry_ok(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    switch (k[0]) {
    case 'r': {
        if (kl != 1 + MN_ID_LEN) return false;
        Midnode__CredentialRecord *rec = midnode__credential_record__unpack(NULL, vl, v);
        bool ok = rec && rec->credential_id.len == MN_ID_LEN && memcmp(rec->credential_id.data, k + 1, MN_ID_LEN) == 0;
        if (rec) midnode__credential_record__free_unpacked(rec, NULL);
        return ok;
    }
    case 'n': {
        if (kl < 2 || kl > 1 + MN_MEMBER_ID_MAX || vl != 8) return false;
        return memchr(k + 1, '\0', kl - 1) == NULL;
    }
    case 'd':
        return kl == 1 + MN_ID_LEN && vl > 0 && vl % MN_ID_LEN == 0 && vl / MN_ID_LEN <= 32;
    case 'h':
        return kl == 2 + MN_ID_LEN && vl == MN_ID_LEN;
    default:
        return false;
    }
}

/* Index checks after the state is in the store, in three sequential
 * scans and no point read per entry or per record (but one per live
 * record past its expiry). The holder and device indexes must name
 * exactly the live (not final) records:
 * - holder entries, as (holder, type, id) triples, equal the triples of
 *   the live records;
 * - listed (device, id) pairs equal the pairs of the live records not
 *   yet expired, plus the expired ones still listed (the ledger drops
 *   expired ids from a full device, so an expired record may be missing:
 *   a point read tells which).
 * Each side is a set (index keys are unique; a list holds an id once,
 * checked; records are keyed by id), compared as a sum of keyed digests:
 * SHA-256 under a salt drawn for this import, so a forger who cannot
 * know the salt cannot make two different sets sum alike (4 x 64-bit
 * lanes, added without carry between lanes). */
#define SET_LANES 4
typedef struct set_sum {
    uint64_t lane[SET_LANES];
    uint64_t count;
} set_sum;

typedef struct idx_check {
    mn_store *s;
    int64_t time_ms;
    uint8_t salt[MN_HASH_LEN];
    set_sum holders_indexed, holders_live; /* (holder, type, id) */
    set_sum devices_listed, devices_live;  /* (device, id) */
    int rc;
    char why[160];
} idx_check;

/* Adds the element key || id (key an index key: family byte first). */
static void set_add(const idx_check *c, set_sum *sum, const uint8_t *key, size_t kl, const uint8_t id[static MN_ID_LEN]) {
    uint8_t buf[MN_HASH_LEN + MN_STORE_KEY_MAX + MN_ID_LEN], d[MN_HASH_LEN];
    assert(kl <= MN_STORE_KEY_MAX);
    memcpy(buf, c->salt, MN_HASH_LEN);
    memcpy(buf + MN_HASH_LEN, key, kl);
    memcpy(buf + MN_HASH_LEN + kl, id, MN_ID_LEN);
    mn_sha256(d, buf, MN_HASH_LEN + kl + MN_ID_LEN);
    for (int i = 0; i < SET_LANES; i++) {
        uint64_t w;
        memcpy(&w, d + 8 * i, sizeof w);
        sum->lane[i] += w;
    }
    sum->count++;
}

static bool set_equal(const set_sum *a, const set_sum *b) {
    return a->count == b->count && memcmp(a->lane, b->lane, sizeof a->lane) == 0;
}

static int idx_bad(idx_check *c, int rc, const char *why) {
    c->rc = rc;
    snprintf(c->why, sizeof c->why, "%s", why);
    return 1;
}

static int add_device(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    idx_check *c = ctx;
    for (size_t i = 0; i < vl / MN_ID_LEN; i++) {
        for (size_t j = 0; j < i; j++)
            if (memcmp(v + i * MN_ID_LEN, v + j * MN_ID_LEN, MN_ID_LEN) == 0)
                return idx_bad(c, MN_ECORRUPT, "a device lists a credential twice");
        set_add(c, &c->devices_listed, k, kl, v + i * MN_ID_LEN);
    }
    return 0;
}

static int add_holder(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    idx_check *c = ctx;
    if (vl != MN_ID_LEN) return idx_bad(c, MN_ECORRUPT, "a holder entry is not one credential id");
    set_add(c, &c->holders_indexed, k, kl, v);
    return 0;
}

static int add_record(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    idx_check *c = ctx;
    (void)kl;
    Midnode__CredentialRecord *r = midnode__credential_record__unpack(NULL, vl, v);
    if (!r) return idx_bad(c, MN_ECORRUPT, "a record does not decode");
    const uint8_t *id = k + 1;
    int bad = 0;
    if (!is_final(r->status) && r->holder_ref.len == MN_ID_LEN && r->device_ref.len == MN_ID_LEN) {
        uint8_t key[MN_STORE_KEY_MAX], buf[32 * MN_ID_LEN];
        size_t kl2 = mn_store_key_holder(key, r->holder_ref.data, (uint32_t)r->type);
        set_add(c, &c->holders_live, key, kl2, id);
        kl2 = mn_store_key_device(key, r->device_ref.data);
        bool listed = r->expires_at == 0 || c->time_ms / 1000 < r->expires_at;
        if (!listed) { /* expired: counted when its device still lists it */
            size_t len = 0;
            int rc = mn_store_get_buf(c->s, key, kl2, buf, sizeof buf, &len);
            if (rc != MN_OK && rc != MN_ENOTFOUND) {
                bad = idx_bad(c, rc, "a device list cannot be read");
            } else {
                for (size_t i = 0; rc == MN_OK && i < len / MN_ID_LEN && !listed; i++)
                    listed = memcmp(buf + i * MN_ID_LEN, id, MN_ID_LEN) == 0;
            }
        }
        if (listed && !bad) set_add(c, &c->devices_live, key, kl2, id);
    } else if (!is_final(r->status)) {
        bad = idx_bad(c, MN_ECORRUPT, "a record's holder or device is not 32 bytes");
    }
    midnode__credential_record__free_unpacked(r, NULL);
    return bad;
}

/* The three scans, then the sums. Returns MN_OK, or the scan's error
 * (c->rc and c->why set for an index that disagrees). */
static int check_indexes(idx_check *c) {
    if (mn_random_bytes(c->salt, sizeof c->salt) != MN_OK) return MN_EIO;
    int rc = mn_store_scan(c->s, 'd', add_device, c);
    if (rc == MN_OK && c->rc == MN_OK) rc = mn_store_scan(c->s, 'h', add_holder, c);
    if (rc == MN_OK && c->rc == MN_OK) rc = mn_store_scan(c->s, 'r', add_record, c);
    if (rc != MN_OK || c->rc != MN_OK) return rc;
    if (!set_equal(&c->holders_indexed, &c->holders_live))
        idx_bad(c, MN_ECORRUPT, c->holders_indexed.count < c->holders_live.count
                                    ? "a live credential is missing from the holder index"
                                    : "a holder entry names no live credential of that holder and type");
    else if (!set_equal(&c->devices_listed, &c->devices_live))
        idx_bad(c, MN_ECORRUPT, c->devices_listed.count < c->devices_live.count
                                    ? "a live credential is missing from its device's list"
                                    : "a device lists a credential that is not a live one of that device");
    return MN_OK;
}

static int first_key(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    *(bool *)ctx = true;
    return 1;
}

int mn_snapshot_import(mn_store *s, const mn_genesis *g, const char *path, mn_snapshot_info *info, char *err,
                       size_t err_len) {
    return mn_snapshot_import_tree(s, g, path, info, NULL, err, err_len);
}

int mn_snapshot_import_tree(mn_store *s, const mn_genesis *g, const char *path, mn_snapshot_info *info,
                            mn_nodemap **tree_out, char *err, size_t err_len) {
    if (tree_out) *tree_out = NULL;
    mn_snapshot_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    bool any = false;
    if (mn_store_height(s) != 0 || mn_store_scan(s, 'r', first_key, &any) != MN_OK || any ||
        mn_store_scan(s, 'n', first_key, &any) != MN_OK || any)
        return fail(err, err_len, MN_ESTATE, "the store is not empty (import into a new data directory)");
    reader r = {0};
    r.f = fopen(path, "rb");
    if (!r.f) return fail(err, err_len, MN_EIO, "cannot open %s", path);
    mn_sha256_init(&r.h);
    int rc = MN_OK;
    uint8_t *block = NULL, *cert = NULL, *val = NULL;
    size_t block_len = 0, cert_len = 0;
    Midnode__Block *b = NULL;
    Midnode__BlockHeader *hd = NULL;
    Midnode__CommitCertificate *cc = NULL;
    mn_kvmap *kv = mn_kv_new();
    mn_nodemap *tree = NULL;
    val = malloc(MN_SNAPSHOT_VALUE_MAX);
    char magic[MAGIC_LEN];
    uint8_t hash[MN_HASH_LEN], root[MN_HASH_LEN] = {0};
    if (!kv || !val) {
        rc = fail(err, err_len, MN_ENOMEM, "out of memory");
        goto out;
    }
    if (!r_get(&r, magic, MAGIC_LEN) || memcmp(magic, MAGIC, MAGIC_LEN) != 0 ||
        !r_blob(&r, &block, &block_len, MN_BLOCK_BYTES_MAX) ||
        !r_blob(&r, &cert, &cert_len, MN_SNAPSHOT_CERT_BYTES_MAX)) {
        rc = fail(err, err_len, MN_ECORRUPT, "not a snapshot, or its block or certificate is malformed");
        goto out;
    }
    b = midnode__block__unpack(NULL, block_len, block);
    hd = b ? midnode__block_header__unpack(NULL, b->header.len, b->header.data) : NULL;
    cc = midnode__commit_certificate__unpack(NULL, cert_len, cert);
    if (!hd || !cc || hd->height == 0 || hd->state_root.len != MN_HASH_LEN) {
        rc = fail(err, err_len, MN_ECORRUPT, "the snapshot's block header or certificate does not decode");
        goto out;
    }
    if (strcmp(hd->chain_id, g->chain_id) != 0) {
        rc = fail(err, err_len, MN_ECRYPTO, "snapshot of chain \"%.64s\", not %s", hd->chain_id, g->chain_id);
        goto out;
    }
    mn_sha256(hash, b->header.data, b->header.len);
    char why[160];
    if (mn_cert_check(g, hd->height, hash, cc, why, sizeof why) != MN_OK) {
        rc = fail(err, err_len, MN_ECRYPTO, "certificate of height %llu: %s", (unsigned long long)hd->height, why);
        goto out;
    }
    /* The state into the store, chunk by chunk; the tree is built from the
     * store once every entry is in. */
    uint64_t entries = 0;
    int64_t t0 = mn_mono_ms();
    for (;;) {
        uint8_t hdr[3], key[MN_STORE_KEY_MAX], l[4];
        if (!r_get(&r, hdr, 1)) break;
        if (hdr[0] == 0) break;
        if (!r_get(&r, hdr + 1, 2)) break;
        size_t kl = (size_t)get_be(hdr + 1, 2);
        if (kl == 0 || kl > sizeof key || !r_get(&r, key, kl) || key[0] != hdr[0] || !r_get(&r, l, 4)) {
            r.eof = true;
            break;
        }
        size_t vl = (size_t)get_be(l, 4);
        if (vl > MN_SNAPSHOT_VALUE_MAX || !r_get(&r, val, vl) || !entry_ok(key, kl, val, vl)) {
            rc = fail(err, err_len, MN_ECORRUPT, "entry %llu is malformed", (unsigned long long)entries);
            goto out;
        }
        entries++;
        switch (key[0]) {
        case 'r': info->records++; break;
        case 'n': info->nonces++; break;
        case 'd': info->devices++; break;
        default: info->holders++; break;
        }
        if (mn_kv_put(kv, key, kl, val, vl) != MN_OK) {
            rc = fail(err, err_len, MN_ENOMEM, "out of memory");
            goto out;
        }
        if (mn_kv_count(kv) >= IMPORT_CHUNK) {
            rc = mn_store_write(s, kv);
            mn_kv_clear(kv);
            if (rc != MN_OK) {
                fail(err, err_len, rc, "writing the state: %s", mn_strerror(rc));
                goto out;
            }
        }
    }
    uint8_t tail[8], digest[MN_HASH_LEN], want[MN_HASH_LEN];
    if (r.eof || !r_get(&r, tail, 8) || get_be(tail, 8) != entries) {
        rc = fail(err, err_len, MN_ECORRUPT, "the snapshot is truncated");
        goto out;
    }
    mn_sha256_final(&r.h, digest);
    if (fread(want, 1, MN_HASH_LEN, r.f) != MN_HASH_LEN || memcmp(digest, want, MN_HASH_LEN) != 0) {
        rc = fail(err, err_len, MN_ECORRUPT, "the snapshot's checksum does not match");
        goto out;
    }
    rc = mn_store_write(s, kv);
    mn_kv_free(kv);
    kv = NULL;
    int64_t t1 = mn_mono_ms();
    info->load_ms = (uint64_t)(t1 - t0);
    /* The tree is needed for its root here, and by a caller that keeps it
     * (else the node builds its own when it opens the store). A trie of n
     * random keys has about n / ln 2 internal nodes: sized for them up
     * front, the map is never rehashed while it fills. */
    if (rc == MN_OK && !(tree = mn_nodemap_new())) rc = MN_ENOMEM;
    if (rc == MN_OK) rc = mn_nodemap_reserve(tree, (size_t)(info->records + info->nonces) / 2 * 3 + 1024);
    mn_tree_build_stats tst = {0};
    if (rc == MN_OK) rc = mn_tree_build(s, tree, root, &tst);
    info->tree_nodes = tst.nodes;
    int64_t t2 = mn_mono_ms();
    info->tree_ms = (uint64_t)(t2 - t1);
    if (rc != MN_OK) {
        fail(err, err_len, rc, "writing the state: %s", mn_strerror(rc));
        goto out;
    }
    if (memcmp(root, hd->state_root.data, MN_HASH_LEN) != 0) {
        rc = fail(err, err_len, MN_ECRYPTO, "the rebuilt state root differs from the certified header's");
        goto out;
    }
    if (!tree_out) { /* not needed for the index check */
        mn_nodemap_free(tree);
        tree = NULL;
    }
    idx_check c = {.s = s, .time_ms = hd->time_ms, .rc = MN_OK};
    rc = check_indexes(&c);
    info->index_ms = (uint64_t)(mn_mono_ms() - t2);
    if (rc == MN_OK && c.rc != MN_OK) {
        rc = fail(err, err_len, c.rc, "indexes: %s", c.why);
        goto out;
    }
    if (rc != MN_OK) {
        fail(err, err_len, rc, "reading back the state: %s", mn_strerror(rc));
        goto out;
    }
    rc = mn_store_install(s, hd->height, block, block_len, cert, cert_len, root);
    if (rc != MN_OK) {
        fail(err, err_len, rc, "installing height %llu: %s", (unsigned long long)hd->height, mn_strerror(rc));
        goto out;
    }
    info->height = hd->height;
    memcpy(info->state_root, root, MN_HASH_LEN);
out:
    if (hd) midnode__block_header__free_unpacked(hd, NULL);
    if (b) midnode__block__free_unpacked(b, NULL);
    if (cc) midnode__commit_certificate__free_unpacked(cc, NULL);
    free(block);
    free(cert);
    free(val);
    mn_kv_free(kv);
    if (rc == MN_OK && tree_out)
        *tree_out = tree;
    else
        mn_nodemap_free(tree);
    if (r.f) {
        long pos = ftell(r.f);
        info->bytes = pos > 0 ? (uint64_t)pos : 0;
        fclose(r.f);
    }
    return rc;
}
