/* ledger_bench.c: applies N ISSUE transactions in blocks of B to a fresh
 * store and reports execution, state-root and commit rates and the bytes
 * on disk per credential. Usage: ledger_bench [N [B [checked]]] (default
 * 100000 1000); "checked" applies with MN_EXEC_SIG_CHECKED, as a node does
 * for transactions its mempool already verified.
 * Signing the transactions beforehand is not measured. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../unit/ledger_fixture.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread (the ledger's own work; LevelDB compacts in a
 * background thread): steadier than wall time on a shared machine. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t dir_bytes(const char *dir) {
    uint64_t total = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char p[1024];
        if (de->d_name[0] == '.') continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p) continue;
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 100000;
    size_t per_block = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 1000;
    unsigned flags = (argc > 3 && strcmp(argv[3], "checked") == 0) ? MN_EXEC_SIG_CHECKED : 0;
    if (n == 0 || per_block == 0 || per_block > MN_BLOCK_TXS_MAX) {
        fprintf(stderr, "usage: ledger_bench [N [BLOCK_TXS<=%d]]\n", MN_BLOCK_TXS_MAX);
        return 2;
    }
    lf_fixture f;
    if (lf_open(&f) != MN_OK) return 1;
    uint8_t **txs = calloc(n, sizeof *txs);
    size_t *lens = calloc(n, sizeof *lens);
    if (!txs || !lens) return 1;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        uint8_t id[32], h[32], d[32];
        lf_id(id, 'c', (uint32_t)i);
        lf_id(h, 'h', (uint32_t)i);
        lf_id(d, 'd', (uint32_t)(i / 3));
        lf_issue(&f, "mois", id, LF_RESIDENT, h, d, (i & 1) ? "skt" : "kt", 0, &txs[i], &lens[i]);
    }
    double t_sign = now_s() - t0, t_exec = 0, t_root = 0, t_commit = 0;
    double c_exec = 0, c_root = 0, c_commit = 0;
    size_t refused = 0;
    for (size_t start = 0; start < n; start += per_block) {
        size_t end = start + per_block < n ? start + per_block : n;
        double a = now_s(), ca = cpu_s();
        mn_exec *e = mn_exec_begin(f.l, mn_ledger_height(f.l) + 1, f.time_ms);
        if (!e) return 1;
        for (size_t i = start; i < end; i++) {
            char msg[MN_TX_MSG_MAX];
            if (mn_exec_apply_tx_opts(e, txs[i], lens[i], flags, msg, sizeof msg) != MIDNODE__TX_CODE__TX_OK) refused++;
        }
        double b = now_s(), cb = cpu_s();
        uint8_t root[32];
        if (mn_exec_finish(e, root) != MN_OK) return 1;
        double c = now_s(), cc = cpu_s();
        if (mn_exec_commit(e, (const uint8_t *)"bench block", 11, NULL, 0) != MN_OK) return 1;
        double d = now_s(), cd = cpu_s();
        mn_exec_free(e);
        c_exec += cb - ca;
        c_root += cc - cb;
        c_commit += cd - cc;
        t_exec += b - a;
        t_root += c - b;
        t_commit += d - c;
        f.time_ms += 1000;
    }
    uint64_t approx = mn_store_approx_bytes(f.store); /* compacts first */
    char data[300];
    snprintf(data, sizeof data, "%s/data", f.dir);
    uint64_t on_disk = dir_bytes(data);
    double total = t_exec + t_root + t_commit;
    printf("ledger_bench: %zu ISSUE txs in blocks of %zu, %zu refused%s\n", n, per_block, refused,
           flags ? ", signatures pre-checked" : "");
    printf("  signing (not part of the ledger)  %.2f s\n", t_sign);
    double updates = (double)(n + (n + per_block - 1) / per_block); /* records + one nonce per block */
    double blocks = (double)((n + per_block - 1) / per_block);
    printf("  phase                               wall s   cpu s   rate (by cpu time)\n");
    printf("  execute (decode, verify sig, rules) %6.2f  %6.2f   %.0f tx/s\n", t_exec, c_exec, (double)n / c_exec);
    printf("  state root (SMT batch update)       %6.2f  %6.2f   %.0f updates/s\n", t_root, c_root, updates / c_root);
    printf("  commit (synced WriteBatch)          %6.2f  %6.2f   %.1f ms/block wall\n", t_commit, c_commit,
           1000.0 * t_commit / blocks);
    printf("  total apply+root+commit           %.2f s  %.0f tx/s\n", total, (double)n / total);
    printf("  on disk after compaction          %llu bytes, %.0f bytes/credential (LevelDB estimate %llu)\n",
           (unsigned long long)on_disk, (double)on_disk / (double)n, (unsigned long long)approx);
    printf("{\"txs\": %zu, \"block_txs\": %zu, \"exec_s\": %.3f, \"root_s\": %.3f, \"commit_s\": %.3f, "
           "\"exec_cpu_s\": %.3f, \"root_cpu_s\": %.3f, \"commit_cpu_s\": %.3f, \"bytes_per_credential\": %.0f}\n",
           n, per_block, t_exec, t_root, t_commit, c_exec, c_root, c_commit, (double)on_disk / (double)n);
    free(txs);
    free(lens);
    lf_close(&f);
    return refused ? 1 : 0;
}
