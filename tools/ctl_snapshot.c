/* ctl_snapshot.c: `midctl snapshot export|import --home DIR --file FILE`,
 * offline (the node of that home must be stopped: the store is locked). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "ctl.h"
#include "ctl_json.h"
#include "genesis.h"
#include "snapshot.h"
#include "store.h"

int mn_ctl_snapshot(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "export") != 0 && strcmp(argv[1], "import") != 0))
        return mn_ctl_usage("snapshot: export or import");
    bool is_export = strcmp(argv[1], "export") == 0;
    const struct option opts[] = {{"home", required_argument, 0, 'h'}, {"file", required_argument, 0, 'f'}, {0, 0, 0, 0}};
    const char *home = NULL, *file = NULL;
    optind = 2;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'h') home = optarg;
        else if (ch == 'f') file = optarg;
        else return mn_ctl_usage("snapshot: unknown option or missing value: %s", argv[optind - 1]);
    }
    if (optind < argc) return mn_ctl_usage("snapshot: unexpected argument \"%s\"", argv[optind]);
    if (!home || !file) return mn_ctl_usage("snapshot: --home and --file are required");
    char err[512] = "";
    static mn_config cfg;
    int rc = mn_config_load(&cfg, home, err, sizeof err);
    if (rc != MN_OK) return mn_ctl_fail(mn_strerror(rc), "%s", err);
    mn_genesis *g = NULL;
    char gpath[MN_PATH_MAX + 32];
    snprintf(gpath, sizeof gpath, "%s/genesis.json", home);
    if (!is_export) {
        rc = mn_genesis_load(&g, gpath, err, sizeof err);
        if (rc != MN_OK) return mn_ctl_fail(mn_strerror(rc), "%s", err);
        if (mn_crypto_init() != MN_OK) {
            mn_genesis_free(g);
            return mn_ctl_fail("ECRYPTO", "crypto init failed");
        }
    }
    mn_store *s = NULL;
    rc = mn_store_open(&s, cfg.data_dir, err, sizeof err);
    if (rc != MN_OK) {
        mn_genesis_free(g);
        return mn_ctl_fail(mn_strerror(rc), "%s", err);
    }
    mn_snapshot_info info;
    rc = is_export ? mn_snapshot_export(s, file, &info, err, sizeof err)
                   : mn_snapshot_import(s, g, file, &info, err, sizeof err);
    mn_store_close(s);
    mn_genesis_free(g);
    if (rc != MN_OK) return mn_ctl_fail(mn_strerror(rc), "%s", err);
    json_t *o = json_object();
    json_object_set_new(o, "height", json_integer((json_int_t)info.height));
    json_object_set_new(o, "state_root", mn_ctl_hex(info.state_root, MN_HASH_LEN));
    json_object_set_new(o, "records", json_integer((json_int_t)info.records));
    json_object_set_new(o, "nonces", json_integer((json_int_t)info.nonces));
    json_object_set_new(o, "devices", json_integer((json_int_t)info.devices));
    json_object_set_new(o, "holders", json_integer((json_int_t)info.holders));
    json_object_set_new(o, "bytes", json_integer((json_int_t)info.bytes));
    json_object_set_new(o, "file", json_string(file));
    if (!is_export) {
        json_object_set_new(o, "load_ms", json_integer((json_int_t)info.load_ms));
        json_object_set_new(o, "tree_ms", json_integer((json_int_t)info.tree_ms));
        json_object_set_new(o, "index_ms", json_integer((json_int_t)info.index_ms));
        json_object_set_new(o, "tree_nodes", json_integer((json_int_t)info.tree_nodes));
    }
    return mn_ctl_emit(o);
}
