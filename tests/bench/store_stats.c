/* store_stats.c: where a node's disk bytes go. For a LevelDB data
 * directory (the node stopped): the live entries of every key family with
 * their key and value bytes, the directory's size, then (with --compact)
 * the same after a full compaction. Per-credential figures divide by the
 * number of 'r' entries. The last line is the same as JSON: records,
 * bytes (as found), bytes_compacted (with --compact) and per family
 * {entries, key_value_bytes, table_bytes}.
 * Usage: store_stats [--compact] DATA_DIR */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "store.h"


static mn_store_fam_stat st[256];

static int report(mn_store *s, const char *dir, const char *label, uint64_t *bytes) {
    if (mn_store_stats(s, st) != MN_OK) return 1;
    uint64_t creds = st['r'].entries, tot_k = 0, tot_v = 0, tot_n = 0;
    double per = creds ? (double)creds : 1.0;
    printf("%s: %llu credentials\n", label, (unsigned long long)creds);
    printf("  family   entries      key B     value B   B/credential  in tables B/credential\n");
    for (int b = 0; b < 256; b++) {
        if (!st[b].entries) continue;
        tot_n += st[b].entries;
        tot_k += st[b].key_bytes;
        tot_v += st[b].value_bytes;
        char name[8];
        if (b >= 0x21 && b < 0x7f)
            snprintf(name, sizeof name, "'%c'", b);
        else
            snprintf(name, sizeof name, "0x%02x", b);
        printf("  %-6s %9llu %10llu %11llu   %8.1f  %8.1f\n", name, (unsigned long long)st[b].entries,
               (unsigned long long)st[b].key_bytes, (unsigned long long)st[b].value_bytes,
               (double)(st[b].key_bytes + st[b].value_bytes) / per, (double)st[b].table_bytes / per);
    }
    uint64_t disk = mn_dir_file_bytes(dir);
    *bytes = disk;
    printf("  all    %9llu %10llu %11llu   %8.1f (entries per credential %.2f)\n", (unsigned long long)tot_n,
           (unsigned long long)tot_k, (unsigned long long)tot_v, (double)(tot_k + tot_v) / per,
           (double)tot_n / per);
    printf("  on disk %llu bytes: %.1f B/credential (%.1f over key+value bytes)\n", (unsigned long long)disk,
           (double)disk / per, (double)disk / per - (double)(tot_k + tot_v) / per);
    return 0;
}

int main(int argc, char **argv) {
    int compact = argc > 2 && strcmp(argv[1], "--compact") == 0;
    if (argc != 2 + compact) {
        fprintf(stderr, "usage: store_stats [--compact] DATA_DIR\n");
        return 2;
    }
    const char *dir = argv[1 + compact];
    mn_store *s = NULL;
    char err[256];
    if (mn_store_open(&s, dir, err, sizeof err) != MN_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t raw = 0, packed = 0;
    int rc = report(s, dir, "as found", &raw);
    if (rc == 0 && compact) {
        if (mn_store_compact(s) != MN_OK) rc = 1;
        if (rc == 0) rc = report(s, dir, "after compaction", &packed);
    }
    mn_store_close(s);
    if (rc != 0) return rc;
    printf("{\"records\": %llu, \"bytes\": %llu", (unsigned long long)st['r'].entries, (unsigned long long)raw);
    if (compact) printf(", \"bytes_compacted\": %llu", (unsigned long long)packed);
    printf(", \"families\": {");
    const char *sep = "";
    for (int b = 0x21; b < 0x7f; b++) {
        if (!st[b].entries || b == '"' || b == '\\') continue;
        printf("%s\"%c\": {\"entries\": %llu, \"key_value_bytes\": %llu, \"table_bytes\": %llu}", sep, b,
               (unsigned long long)st[b].entries, (unsigned long long)(st[b].key_bytes + st[b].value_bytes),
               (unsigned long long)st[b].table_bytes);
        sep = ", ";
    }
    printf("}}\n");
    return 0;
}
