/* ledger_bench.c: applies N ISSUE transactions in blocks of B to a fresh
 * store and reports execution, state-root and commit rates and the bytes
 * on disk per credential, by key family, as written and after a full
 * compaction. Usage: ledger_bench [N [B [checked|plain [K [MORE]]]]] (default
 * 100000 1000); "checked" applies with MN_EXEC_SIG_CHECKED, as a node does
 * for transactions its mempool already verified; K > 1 issues with
 * ISSUE_BATCH transactions of K items (B then counts transactions per
 * block); MORE > 0 then applies MORE single ISSUE transactions, pre-checked,
 * in blocks of 256, and prints their CPU time per transaction by phase
 * (a node's commit path at the loaded state). Each credential has its own
 * holder and device, as midbench preload issues them; a block stores its
 * transactions.
 * Signing the transactions beforehand is not measured. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../unit/ledger_fixture.h"
#include "fileio.h"
#include "smt.h"

static uint64_t store_reads(const mn_ledger *l) {
    mn_read_cache_stats st;
    mn_ledger_read_cache_stats(l, &st);
    return st.store_reads;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process: this thread's and LevelDB's compactions. */
static double process_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread (the ledger's own work; LevelDB compacts in a
 * background thread): steadier than wall time on a shared machine. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One ISSUE_BATCH of k items starting at credential first. */
static void issue_batch(lf_fixture *f, size_t first, size_t k, uint8_t **out, size_t *len) {
    Midnode__IssueBody *b = calloc(k, sizeof *b);
    Midnode__IssueBody **items = calloc(k, sizeof *items);
    uint8_t(*ids)[3][32] = calloc(k, sizeof *ids);
    if (!b || !items || !ids) abort();
    for (size_t i = 0; i < k; i++) {
        midnode__issue_body__init(&b[i]);
        lf_id(ids[i][0], 'c', (uint32_t)(first + i));
        lf_id(ids[i][1], 'h', (uint32_t)(first + i));
        lf_id(ids[i][2], 'd', (uint32_t)(first + i));
        b[i].credential_id = (ProtobufCBinaryData){32, ids[i][0]};
        b[i].type = (Midnode__CredentialType)LF_RESIDENT;
        b[i].holder_ref = (ProtobufCBinaryData){32, ids[i][1]};
        b[i].device_ref = (ProtobufCBinaryData){32, ids[i][2]};
        b[i].carrier = (char *)(((first + i) & 1) ? "skt" : "kt");
        items[i] = &b[i];
    }
    Midnode__TxPayload p;
    Midnode__IssueBatchBody bb = MIDNODE__ISSUE_BATCH_BODY__INIT;
    lf_payload(&p, "mois");
    bb.n_items = k;
    bb.items = items;
    p.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH;
    p.issue_batch = &bb;
    lf_sign(f, &p, out, len);
    free(b);
    free(items);
    free(ids);
}

static void family_table(mn_store *s, const char *label, uint64_t disk, size_t creds) {
    static mn_store_fam_stat st[256];
    if (mn_store_stats(s, st) != MN_OK) {
        printf("  %s: stats failed\n", label);
        return;
    }
    printf("  %s: %llu bytes on disk, %.0f B/credential; live entries by family (key+value / in tables, B/credential, entries):\n   ", label,
           (unsigned long long)disk, (double)disk / (double)creds);
    uint64_t sum = 0;
    for (int b = 0; b < 256; b++) {
        if (!st[b].entries) continue;
        uint64_t kv = st[b].key_bytes + st[b].value_bytes;
        sum += kv;
        printf(" %c %.1f/%.1f (%llu)", b >= 0x21 && b < 0x7f ? b : '?', (double)kv / (double)creds,
               (double)st[b].table_bytes / (double)creds, (unsigned long long)st[b].entries);
    }
    printf("; key+value %.1f, LevelDB overhead %.1f\n", (double)sum / (double)creds,
           ((double)disk - (double)sum) / (double)creds);
}

typedef struct phase_times {
    double t_exec, t_root, t_commit, c_exec, c_root, c_commit;
    size_t refused;
} phase_times;

/* Applies txs[0..ntx) in blocks of per_block, adding each phase's wall
 * and CPU time to pt. Returns 0, or 1 when the ledger fails. */
static int apply_blocks(lf_fixture *f, uint8_t **txs, size_t *lens, size_t ntx, size_t per_block, unsigned flags,
                        phase_times *pt) {
    for (size_t start = 0; start < ntx; start += per_block) {
        size_t end = start + per_block < ntx ? start + per_block : ntx;
        double a = now_s(), ca = cpu_s();
        mn_exec *e = mn_exec_begin(f->l, mn_ledger_height(f->l) + 1, f->time_ms);
        if (!e) return 1;
        for (size_t i = start; i < end; i++) {
            char msg[MN_TX_MSG_MAX];
            if (mn_exec_apply_tx_opts(e, txs[i], lens[i], flags, msg, sizeof msg) != MIDNODE__TX_CODE__TX_OK)
                pt->refused++;
        }
        double b = now_s(), cb = cpu_s();
        uint8_t root[32];
        if (mn_exec_finish(e, root) != MN_OK) return 1;
        /* The block a node stores: its transactions (the header is a
         * stand-in of about the real size: only the bytes matter here). */
        uint8_t hdr[160];
        memset(hdr, 0x5a, sizeof hdr);
        ProtobufCBinaryData *tb = calloc(end - start, sizeof *tb);
        if (!tb) return 1;
        for (size_t i = start; i < end; i++) tb[i - start] = (ProtobufCBinaryData){lens[i], txs[i]};
        Midnode__Block bk = MIDNODE__BLOCK__INIT;
        bk.header = (ProtobufCBinaryData){sizeof hdr, hdr};
        bk.n_txs = end - start;
        bk.txs = tb;
        uint8_t *blk = malloc(midnode__block__get_packed_size(&bk));
        if (!blk) return 1;
        size_t off = midnode__block__pack(&bk, blk);
        free(tb);
        double c = now_s(), cc = cpu_s();
        if (mn_exec_commit(e, blk, off, NULL, 0) != MN_OK) return 1;
        double d = now_s(), cd = cpu_s();
        free(blk);
        mn_exec_free(e);
        pt->c_exec += cb - ca;
        pt->c_root += cc - cb;
        pt->c_commit += cd - cc;
        pt->t_exec += b - a;
        pt->t_root += c - b;
        pt->t_commit += d - c;
        f->time_ms += 1000;
    }
    return 0;
}

/* After the load: `more` single ISSUE transactions of new credentials
 * (pre-checked, as a node applies what its mempool verified) in blocks of
 * block_txs, the commit path of a node holding the loaded state. Prints
 * the CPU time per transaction of each phase. Returns 0, or 1. */
static int apply_more(lf_fixture *f, size_t first, size_t more, size_t block_txs) {
    uint8_t **txs = calloc(more, sizeof *txs);
    size_t *lens = calloc(more, sizeof *lens);
    if (!txs || !lens) return 1;
    for (size_t t = 0; t < more; t++) {
        uint8_t id[32], h[32], d[32];
        uint32_t k = (uint32_t)(first + t);
        lf_id(id, 'c', k);
        lf_id(h, 'h', k);
        lf_id(d, 'd', k);
        lf_issue(f, "mois", id, LF_RESIDENT, h, d, (k & 1) ? "skt" : "kt", 0, &txs[t], &lens[t]);
    }
    phase_times pt = {0};
    double p0 = process_cpu_s();
    int rc = apply_blocks(f, txs, lens, more, block_txs, MN_EXEC_SIG_CHECKED, &pt);
    double p1 = process_cpu_s();
    if (rc == 0) {
        double m = (double)more / 1e6;
        printf("  then %zu ISSUE txs, blocks of %zu, pre-checked: cpu us/tx execute %.2f, root %.2f, commit %.2f, "
               "total %.2f; with LevelDB's compactions %.2f (%zu refused)\n",
               more, block_txs, pt.c_exec / m, pt.c_root / m, pt.c_commit / m,
               (pt.c_exec + pt.c_root + pt.c_commit) / m, (p1 - p0) / m, pt.refused);
        if (pt.refused) rc = 1;
    }
    for (size_t t = 0; t < more; t++) free(txs[t]);
    free(txs);
    free(lens);
    return rc;
}

#define MORE_BLOCK_TXS 256

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 100000;
    size_t per_block = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 1000;
    unsigned flags = (argc > 3 && strcmp(argv[3], "checked") == 0) ? MN_EXEC_SIG_CHECKED : 0;
    size_t batch = argc > 4 ? (size_t)strtoull(argv[4], NULL, 10) : 1;
    size_t more = argc > 5 ? (size_t)strtoull(argv[5], NULL, 10) : 0;
    if (n == 0 || per_block == 0 || per_block > MN_BLOCK_TXS_MAX || batch == 0 || batch > MN_BATCH_ITEMS_MAX) {
        fprintf(stderr, "usage: ledger_bench [N [BLOCK_TXS<=%d [checked|plain [BATCH<=%d [MORE]]]]]\n", MN_BLOCK_TXS_MAX,
                MN_BATCH_ITEMS_MAX);
        return 2;
    }
    lf_fixture f;
    if (lf_open(&f) != MN_OK) return 1;
    size_t ntx = (n + batch - 1) / batch;
    uint8_t **txs = calloc(ntx, sizeof *txs);
    size_t *lens = calloc(ntx, sizeof *lens);
    if (!txs || !lens) return 1;
    double t0 = now_s();
    for (size_t t = 0; t < ntx; t++) {
        if (batch > 1) {
            size_t first = t * batch, k = first + batch <= n ? batch : n - first;
            issue_batch(&f, first, k, &txs[t], &lens[t]);
            continue;
        }
        uint8_t id[32], h[32], d[32];
        lf_id(id, 'c', (uint32_t)t);
        lf_id(h, 'h', (uint32_t)t);
        lf_id(d, 'd', (uint32_t)t);
        lf_issue(&f, "mois", id, LF_RESIDENT, h, d, (t & 1) ? "skt" : "kt", 0, &txs[t], &lens[t]);
    }
    double t_sign = now_s() - t0;
    phase_times pt = {0};
    if (apply_blocks(&f, txs, lens, ntx, per_block, flags, &pt) != 0) return 1;
    double t_exec = pt.t_exec, t_root = pt.t_root, t_commit = pt.t_commit;
    double c_exec = pt.c_exec, c_root = pt.c_root, c_commit = pt.c_commit;
    size_t refused = pt.refused;
    if (more && apply_more(&f, n, more, MORE_BLOCK_TXS) != 0) return 1;
    /* Reads of the committed state, uncached: a record by id, and a record
     * with its proof (what GetStatus does on a cache miss). */
    size_t reads = n < 100000 ? n : 100000;
    double r0 = cpu_s();
    for (size_t i = 0; i < reads; i++) {
        uint8_t id[32];
        lf_id(id, 'c', (uint32_t)((i * 7919) % n));
        Midnode__CredentialRecord *r = NULL;
        if (mn_ledger_get_record(f.l, id, &r) != MN_OK) return 1;
        midnode__credential_record__free_unpacked(r, NULL);
    }
    double r1 = cpu_s();
    for (size_t i = 0; i < reads; i++) {
        uint8_t id[32], *rec = NULL;
        size_t rl = 0;
        uint64_t height = 0;
        lf_id(id, 'c', (uint32_t)((i * 7919) % n));
        Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
        if (mn_ledger_prove(f.l, id, &rec, &rl, &p, &height) != MN_OK || !rec) return 1;
        free(rec);
        mn_smt_proof_clear(&p);
    }
    double r2 = cpu_s();
    /* The same through the read caches GetStatus uses, which the commits
     * above filled (a million reads spread over every credential). */
    size_t creads = 1000000;
    uint64_t m0 = store_reads(f.l);
    double r3 = cpu_s();
    for (size_t i = 0; i < creads; i++) {
        uint8_t id[32];
        lf_id(id, 'c', (uint32_t)((i * 7919) % n));
        const uint8_t *b;
        size_t bl;
        Midnode__CredentialStatus st;
        if (mn_ledger_get_record_cached(f.l, id, f.time_ms, &b, &bl, &st) != MN_OK) return 1;
    }
    double r4 = cpu_s();
    uint64_t cmiss = store_reads(f.l) - m0;
    for (size_t i = 0; i < reads; i++) {
        uint8_t id[32];
        lf_id(id, 'c', (uint32_t)((i * 7919) % n));
        const uint8_t *b, *m;
        size_t bl, ml;
        Midnode__CredentialStatus st;
        if (mn_ledger_get_record_cached(f.l, id, f.time_ms, &b, &bl, &st) != MN_OK ||
            mn_ledger_prove_cached(f.l, id, &m, &ml) != MN_OK)
            return 1;
    }
    double r5 = cpu_s();
    char data[300];
    snprintf(data, sizeof data, "%s/data", f.dir);
    uint64_t raw = mn_dir_file_bytes(data);
    uint64_t approx = mn_store_approx_bytes(f.store); /* compacts first */
    uint64_t on_disk = mn_dir_file_bytes(data);
    double total = t_exec + t_root + t_commit;
    printf("ledger_bench: %zu credentials in %zu %s txs, blocks of %zu txs, %zu refused%s\n", n, ntx,
           batch > 1 ? "ISSUE_BATCH" : "ISSUE", per_block, refused, flags ? ", signatures pre-checked" : "");
    printf("  signing (not part of the ledger)  %.2f s\n", t_sign);
    double blocks = (double)((ntx + per_block - 1) / per_block);
    double updates = (double)n + blocks; /* records + one nonce per block */
    printf("  phase                               wall s   cpu s   rate (by cpu time)\n");
    printf("  execute (decode, verify sig, rules) %6.2f  %6.2f   %.0f cred/s\n", t_exec, c_exec, (double)n / c_exec);
    printf("  state root (SMT batch update)       %6.2f  %6.2f   %.0f updates/s\n", t_root, c_root, updates / c_root);
    printf("  commit (synced WriteBatch)          %6.2f  %6.2f   %.1f ms/block wall\n", t_commit, c_commit,
           1000.0 * t_commit / blocks);
    printf("  total apply+root+commit           %.2f s  %.0f cred/s\n", total, (double)n / total);
    printf("  reads (cpu)                       record %.1f us, record+proof %.1f us\n", 1e6 * (r1 - r0) / (double)reads,
           1e6 * (r2 - r1) / (double)reads);
    printf("  cached reads (cpu)                record %.2f us (%.1f%% from the store), record+proof %.1f us\n",
           1e6 * (r4 - r3) / (double)creads, 100.0 * (double)cmiss / (double)creads, 1e6 * (r5 - r4) / (double)reads);
    printf("  on disk as written                %llu bytes, %.0f bytes/credential\n", (unsigned long long)raw,
           (double)raw / (double)n);
    printf("  on disk after compaction          %llu bytes, %.0f bytes/credential (LevelDB estimate %llu)\n",
           (unsigned long long)on_disk, (double)on_disk / (double)n, (unsigned long long)approx);
    family_table(f.store, "after compaction", on_disk, n);
    printf("{\"credentials\": %zu, \"txs\": %zu, \"block_txs\": %zu, \"batch\": %zu, \"exec_s\": %.3f, \"root_s\": %.3f, "
           "\"commit_s\": %.3f, \"exec_cpu_s\": %.3f, \"root_cpu_s\": %.3f, \"commit_cpu_s\": %.3f, "
           "\"read_record_us\": %.1f, \"read_proof_us\": %.1f, \"cached_record_us\": %.2f, "
           "\"cached_record_store_share\": %.4f, \"cached_proof_us\": %.1f, "
           "\"bytes_per_credential\": %.0f, \"bytes_per_credential_compacted\": %.0f}\n",
           n, ntx, per_block, batch, t_exec, t_root, t_commit, c_exec, c_root, c_commit,
           1e6 * (r1 - r0) / (double)reads, 1e6 * (r2 - r1) / (double)reads, 1e6 * (r4 - r3) / (double)creads,
           (double)cmiss / (double)creads, 1e6 * (r5 - r4) / (double)reads, (double)raw / (double)n,
           (double)on_disk / (double)n);
    for (size_t t = 0; t < ntx; t++) free(txs[t]);
    free(txs);
    free(lens);
    lf_close(&f);
    return refused ? 1 : 0;
}
