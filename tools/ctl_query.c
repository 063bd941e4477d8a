/* ctl_query.c: the read-only commands: info, status, watch, block. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "ctl.h"
#include "ctl_json.h"

/* Long options only: a command's own table plus nothing else (global
 * options were taken out by midctl.c). */
#define OPT_END {0, 0, 0, 0}

int mn_ctl_info(int argc, char **argv) {
    if (argc != 1) return mn_ctl_usage("info takes no arguments");
    (void)argv;
    mn_client *c = mn_ctl_connect();
    if (!c) return MN_CTL_EXIT_FAIL;
    Midnode__GetChainInfoResponse *ci = NULL;
    int rc = mn_client_get_chain_info(c, &ci);
    if (rc != MN_OK) {
        rc = mn_ctl_rpc_fail(c, rc, "GetChainInfo");
        mn_client_free(c);
        return rc;
    }
    char ts[40];
    mn_ctl_time_str(ts, sizeof ts, ci->time_ms);
    json_t *o = json_object();
    json_object_set_new(o, "chain_id", json_string(ci->chain_id ? ci->chain_id : ""));
    json_object_set_new(o, "height", json_integer((json_int_t)ci->height));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "time_ms", json_integer(ci->time_ms));
    json_object_set_new(o, "block_hash", mn_ctl_hex(ci->block_hash.data, ci->block_hash.len));
    json_object_set_new(o, "state_root", mn_ctl_hex(ci->state_root.data, ci->state_root.len));
    json_object_set_new(o, "validators", json_integer(ci->validators));
    json_object_set_new(o, "peers", json_integer(ci->peers));
    json_object_set_new(o, "node_name", json_string(ci->node_name ? ci->node_name : ""));
    json_object_set_new(o, "is_validator", json_boolean(ci->is_validator));
    json_object_set_new(o, "round", json_integer(ci->round));
    json_object_set_new(o, "mempool_txs", json_integer(ci->mempool_txs));
    midnode__get_chain_info_response__free_unpacked(ci, NULL);
    mn_client_free(c);
    return mn_ctl_emit(o);
}

/* ---------------------------------------------------------------- status */

#if MN_HAVE_VERIFY
#include "cert.h"
#include "genesis.h"
#include "verify.h"

/* Checks resp's proof against the genesis validators. Fills o with the
 * verdict. Returns MN_CTL_EXIT_OK or the failure exit (already reported). */
static int verify_status(json_t *o, const Midnode__GetStatusResponse *resp, const uint8_t id[MN_ID_LEN],
                         const char *genesis_path, int64_t max_age_s) {
    mn_genesis *g = NULL;
    char err[512] = "";
    if (mn_genesis_load(&g, genesis_path, err, sizeof err) != MN_OK)
        return mn_ctl_fail("BAD_GENESIS", "cannot load genesis %s: %s", genesis_path, err);
    mn_valset *vs = malloc(sizeof *vs);
    if (!vs || mn_valset_from_genesis(vs, g) != MN_OK) {
        free(vs);
        mn_genesis_free(g);
        return mn_ctl_fail("BAD_GENESIS", "genesis %s has no usable validator set", genesis_path);
    }
    mn_genesis_free(g);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    mn_verify_result res;
    memset(&res, 0, sizeof res);
    Midnode__CredentialRecord *rec = NULL;
    int reason = mn_verify_response(vs, resp, id, now_ms, max_age_s * 1000, &res, &rec);
    free(vs);
    if (rec) midnode__credential_record__free_unpacked(rec, NULL);
    if (reason != MN_VERIFY_OK) {
        char code[64];
        snprintf(code, sizeof code, "VERIFY_%s", mn_verify_reason_name(reason));
        return mn_ctl_fail(code, "proof does not verify (%s): %s", mn_verify_reason_name(reason), res.message);
    }
    json_object_set_new(o, "verified", json_true());
    json_object_set_new(o, "verify", json_string(res.message));
    return MN_CTL_EXIT_OK;
}
#endif

int mn_ctl_status(int argc, char **argv) {
    static const struct option opts[] = {
        {"verify", no_argument, 0, 'v'},
        {"genesis", required_argument, 0, 'g'},
        {"max-age", required_argument, 0, 'm'},
        {"proof", no_argument, 0, 'p'},
        OPT_END,
    };
    bool verify = false, want_proof = false;
    const char *genesis = NULL;
    uint64_t max_age_s = 60;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'v': verify = true; break;
        case 'p': want_proof = true; break;
        case 'g': genesis = optarg; break;
        case 'm':
            if (mn_ctl_parse_u64(optarg, &max_age_s) != MN_OK || max_age_s > 100u * 365 * 86400)
                return mn_ctl_usage("--max-age: expected seconds, got \"%s\"", optarg);
            break;
        default: return mn_ctl_usage("status: unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (argc - optind > 1) return mn_ctl_usage("status takes one credential id");
    const char *hex = optind < argc ? argv[optind] : NULL;
    if (!hex) return mn_ctl_usage("status: credential id (64 hex characters) missing");
    uint8_t id[MN_ID_LEN];
    if (strlen(hex) != 2 * MN_ID_LEN || mn_hex_decode(id, MN_ID_LEN, hex) != MN_OK)
        return mn_ctl_usage("status: credential id must be 64 hex characters");
    if (verify && !genesis) return mn_ctl_usage("status --verify needs --genesis FILE");
#if !MN_HAVE_VERIFY
    if (verify) return mn_ctl_fail("NOT_BUILT", "status --verify: the verifier library is not built in");
#endif
    mn_client *c = mn_ctl_connect();
    if (!c) return MN_CTL_EXIT_FAIL;
    Midnode__GetStatusResponse *s = NULL;
    int rc = mn_client_get_status(c, id, verify || want_proof, &s);
    if (rc != MN_OK) {
        rc = mn_ctl_rpc_fail(c, rc, "GetStatus");
        mn_client_free(c);
        return rc;
    }
    mn_client_free(c);
    json_t *o = mn_ctl_status_json(s);
    json_object_set_new(o, "verified", json_false());
    rc = MN_CTL_EXIT_OK;
#if MN_HAVE_VERIFY
    if (verify) rc = verify_status(o, s, id, genesis, (int64_t)max_age_s);
#endif
    midnode__get_status_response__free_unpacked(s, NULL);
    if (rc != MN_CTL_EXIT_OK) {
        json_decref(o);
        return rc;
    }
    return mn_ctl_emit(o);
}

/* ---------------------------------------------------------------- watch */

int mn_ctl_watch(int argc, char **argv) {
    static const struct option opts[] = {
        {"from", required_argument, 0, 'f'},
        {"count", required_argument, 0, 'n'},
        OPT_END,
    };
    uint64_t from = 0, count = 0;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            if (mn_ctl_parse_u64(optarg, &from) != MN_OK) return mn_ctl_usage("--from: expected a height");
            break;
        case 'n':
            if (mn_ctl_parse_u64(optarg, &count) != MN_OK) return mn_ctl_usage("--count: expected a number");
            break;
        default: return mn_ctl_usage("watch: unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return mn_ctl_usage("watch: unexpected argument \"%s\"", argv[optind]);
    mn_client *c = mn_ctl_connect();
    if (!c) return MN_CTL_EXIT_FAIL;
    uint64_t id = 0;
    int rc = mn_client_watch_start(c, from, &id);
    if (rc != MN_OK) {
        rc = mn_ctl_rpc_fail(c, rc, "WatchStatusChanges");
        mn_client_free(c);
        return rc;
    }
    mn_client_set_timeout(c, 0x7fffffffu); /* a quiet chain is not an error */
    uint64_t seen = 0;
    for (;;) {
        Midnode__StatusChange *sc = NULL;
        rc = mn_client_watch_next(c, id, &sc);
        if (rc == MN_ENOTFOUND) break; /* the node ended the stream */
        if (rc != MN_OK) {
            rc = mn_ctl_rpc_fail(c, rc, "WatchStatusChanges");
            mn_client_free(c);
            return rc;
        }
        json_t *o = mn_ctl_change_json(sc);
        midnode__status_change__free_unpacked(sc, NULL);
        if (mn_ctl_emit(o) != MN_CTL_EXIT_OK) {
            mn_client_free(c);
            return MN_CTL_EXIT_FAIL;
        }
        if (count && ++seen >= count) break;
    }
    mn_client_free(c);
    return MN_CTL_EXIT_OK;
}

/* ---------------------------------------------------------------- block */

int mn_ctl_block(int argc, char **argv) {
    if (argc != 2) return mn_ctl_usage("block takes one height");
    uint64_t height;
    if (mn_ctl_parse_u64(argv[1], &height) != MN_OK)
        return mn_ctl_usage("block: height must be a number, got \"%s\"", argv[1]);
    mn_client *c = mn_ctl_connect();
    if (!c) return MN_CTL_EXIT_FAIL;
    Midnode__GetBlockResponse *b = NULL;
    int rc = mn_client_get_block(c, height, &b);
    if (rc != MN_OK) {
        rc = mn_ctl_rpc_fail(c, rc, "GetBlock");
        mn_client_free(c);
        return rc;
    }
    mn_client_free(c);
    json_t *o = mn_ctl_block_json(b);
    midnode__get_block_response__free_unpacked(b, NULL);
    if (!o) return mn_ctl_fail("CORRUPT", "block: the node sent a block whose header does not decode");
    return mn_ctl_emit(o);
}
