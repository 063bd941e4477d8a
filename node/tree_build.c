/* tree_build.c: the committed state tree, built from a store's records and
 * nonces (see tree_build.h for the order and why it matters). */
#include "tree_build.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "smt.h"

/* Leaves per tree update: large enough that the sort and the walk from the
 * root are paid rarely, small enough to keep the item array small. */
#define BUILD_CHUNK 65536
/* Records are stored in order of this many leading key_hash bytes (store.c
 * REC_KH); a chunk only ends between two different such prefixes. */
#define STORED_KH_BYTES 8

typedef struct builder {
    mn_store *s;
    mn_nodemap *tree;
    mn_smt_src src;
    mn_smt_sink sink; /* an update's nodes straight into tree */
    mn_smt_item *items;
    size_t n;
    uint8_t root[MN_HASH_LEN];
    mn_tree_build_stats st;
    int rc;
} builder;

/* Nodes of earlier updates from the map (computed here: trusted), and
 * implicit leaves, which the store derives from its records. */
static int src_get(void *ctx, const uint8_t *pos, size_t len, uint8_t node[static MN_SMT_NODE_LEN]) {
    builder *b = ctx;
    if (mn_nodemap_get(b->tree, pos, len, node)) return MN_SMT_TRUSTED;
    return mn_store_smt_leaf(b->s, pos, len, node);
}

static int src_leaf_prefix(void *ctx, const uint8_t *pos, size_t len, uint8_t prefix[static 8]) {
    builder *b = ctx;
    return mn_nodemap_leaf_find(b->tree, pos, len, prefix);
}

static int sink_put(void *ctx, const uint8_t *pos, size_t len, const uint8_t *node) {
    builder *b = ctx;
    return node ? mn_nodemap_put(b->tree, pos, len, node) : mn_nodemap_del(b->tree, pos, len);
}

static int flush(builder *b) {
    if (b->n == 0) return MN_OK;
    uint8_t next[MN_HASH_LEN];
    int rc = mn_smt_update_to(&b->src, &b->sink, b->root, b->items, b->n, next);
    /* The records' leaves are implicit: the tree keeps their key prefixes. */
    for (size_t i = 0; rc == MN_OK && i < b->n; i++)
        if (b->items[i].implicit) rc = mn_nodemap_leaf_add(b->tree, b->items[i].key_hash);
    if (rc != MN_OK) return rc;
    memcpy(b->root, next, MN_HASH_LEN);
    b->n = 0;
    return MN_OK;
}

static int add_record(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    builder *b = ctx;
    if (kl != 1 + MN_ID_LEN || k[0] != 'r' || !v) {
        b->rc = MN_ECORRUPT;
        return 1;
    }
    mn_smt_item it = {.implicit = true, .remove = false};
    mn_smt_key_credential(it.key_hash, k + 1);
    if (b->n >= BUILD_CHUNK &&
        memcmp(b->items[b->n - 1].key_hash, it.key_hash, STORED_KH_BYTES) != 0 && (b->rc = flush(b)) != MN_OK)
        return 1;
    if (b->n >= BUILD_CHUNK * 2) { /* a run of one prefix this long is no state the ledger writes */
        b->rc = MN_ECORRUPT;
        return 1;
    }
    mn_sha256(it.value_hash, v, vl);
    b->items[b->n++] = it;
    b->st.records++;
    return 0;
}

static int add_nonce(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    builder *b = ctx;
    if (kl < 2 || kl > 1 + MN_MEMBER_ID_MAX || k[0] != 'n' || !v) {
        b->rc = MN_ECORRUPT;
        return 1;
    }
    if (b->n >= BUILD_CHUNK && (b->rc = flush(b)) != MN_OK) return 1;
    char signer[MN_MEMBER_ID_MAX + 1];
    memcpy(signer, k + 1, kl - 1);
    signer[kl - 1] = '\0';
    mn_smt_item it = {.implicit = false, .remove = false};
    mn_smt_key_nonce(it.key_hash, signer);
    mn_sha256(it.value_hash, v, vl);
    b->items[b->n++] = it;
    b->st.nonces++;
    return 0;
}

int mn_tree_build(mn_store *s, mn_nodemap *tree, uint8_t root[static MN_HASH_LEN], mn_tree_build_stats *stats) {
    builder b = {.s = s, .tree = tree, .rc = MN_OK};
    b.src = (mn_smt_src){.get = src_get, .ctx = &b, .leaf_prefix = src_leaf_prefix};
    b.sink = (mn_smt_sink){sink_put, &b};
    b.items = malloc(2 * BUILD_CHUNK * sizeof *b.items);
    if (!b.items) return MN_ENOMEM;
    int rc = mn_store_scan(s, 'r', add_record, &b);
    if (rc == MN_OK) rc = b.rc;
    /* Nonces after every record: see tree_build.h. */
    if (rc == MN_OK) rc = flush(&b);
    if (rc == MN_OK) rc = mn_store_scan(s, 'n', add_nonce, &b);
    if (rc == MN_OK) rc = b.rc;
    if (rc == MN_OK) rc = flush(&b);
    free(b.items);
    if (rc != MN_OK) return rc;
    memcpy(root, b.root, MN_HASH_LEN);
    b.st.nodes = mn_nodemap_count(tree);
    if (stats) *stats = b.st;
    return MN_OK;
}
