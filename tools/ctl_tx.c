/* ctl_tx.c: the commands that submit a signed transaction: issue, revoke,
 * suspend, resume, report-loss, report-recovery.
 *
 * The signer id is the key file's name without ".key" (DIR/keys/skt.key
 * signs as "skt") unless --signer says otherwise. The chain id comes from
 * GetChainInfo and the nonce from GetSigner (next_nonce, which counts this
 * node's mempool), so that a user never types either. */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "ctl.h"
#include "ctl_json.h"

#define WAIT_TIMEOUT_MS 60000

static int cred_type_from_name(const char *name) {
    static const char *const names[] = {"resident", "driver", "veteran", "foreigner", "overseas"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0) return i + 1;
    return 0;
}

/* "2027-01-31T00:00:00Z" (seconds, optional fraction ignored, Z or +HH:MM)
 * or plain Unix seconds. */
static int parse_time_s(const char *s, int64_t *out) {
    uint64_t v;
    if (mn_ctl_parse_u64(s, &v) == MN_OK) {
        if (v > INT64_MAX) return MN_EINVAL;
        *out = (int64_t)v;
        return MN_OK;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &n) != 6)
        return MN_EINVAL;
    const char *p = s + n;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++;
    }
    int offset_s = 0;
    if (*p == 'Z' && p[1] == 0) {
        /* UTC */
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59) return MN_EINVAL;
        offset_s = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
    } else {
        return MN_EINVAL;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return MN_EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return MN_EINVAL;
    *out = (int64_t)t - offset_s;
    return MN_OK;
}

static int parse_id(uint8_t out[MN_ID_LEN], const char *hex, const char *what) {
    if (!hex) return mn_ctl_usage("--%s HEX (64 hex characters) is required", what);
    if (strlen(hex) != 2 * MN_ID_LEN || mn_hex_decode(out, MN_ID_LEN, hex) != MN_OK)
        return mn_ctl_usage("--%s must be 64 hex characters", what);
    return MN_CTL_EXIT_OK;
}

/* The signer id implied by a key file path: basename without ".key". */
static int signer_from_path(char *out, size_t out_len, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".key") == 0) len -= 4;
    if (len == 0 || len > MN_MEMBER_ID_MAX || len + 1 > out_len) return MN_EINVAL;
    memcpy(out, base, len);
    out[len] = 0;
    return MN_OK;
}

typedef struct tx_args {
    const char *key, *signer, *type, *credential, *holder, *device, *carrier, *expires, *not_before, *reason,
        *report_ref;
    bool wait;
} tx_args;

int mn_ctl_tx(int argc, char **argv) {
    static const struct option opts[] = {
        {"key", required_argument, 0, 'k'},        {"signer", required_argument, 0, 's'},
        {"type", required_argument, 0, 't'},       {"credential", required_argument, 0, 'c'},
        {"holder", required_argument, 0, 'h'},     {"device", required_argument, 0, 'd'},
        {"carrier", required_argument, 0, 'r'},    {"expires", required_argument, 0, 'e'},
        {"not-before", required_argument, 0, 'n'}, {"reason", required_argument, 0, 'R'},
        {"report-ref", required_argument, 0, 'f'}, {"wait", no_argument, 0, 'w'},
        {0, 0, 0, 0},
    };
    const char *cmd = argv[0];
    tx_args a;
    memset(&a, 0, sizeof a);
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'k': a.key = optarg; break;
        case 's': a.signer = optarg; break;
        case 't': a.type = optarg; break;
        case 'c': a.credential = optarg; break;
        case 'h': a.holder = optarg; break;
        case 'd': a.device = optarg; break;
        case 'r': a.carrier = optarg; break;
        case 'e': a.expires = optarg; break;
        case 'n': a.not_before = optarg; break;
        case 'R': a.reason = optarg; break;
        case 'f': a.report_ref = optarg; break;
        case 'w': a.wait = true; break;
        default: return mn_ctl_usage("%s: unknown option or missing value: %s", cmd, argv[optind - 1]);
        }
    }
    if (optind < argc) return mn_ctl_usage("%s: unexpected argument \"%s\"", cmd, argv[optind]);
    if (!a.key) return mn_ctl_usage("%s: --key FILE is required", cmd);
    char signer[MN_MEMBER_ID_MAX + 1];
    if (a.signer) {
        if (strlen(a.signer) == 0 || strlen(a.signer) > MN_MEMBER_ID_MAX)
            return mn_ctl_usage("--signer: 1 to %d characters", MN_MEMBER_ID_MAX);
        snprintf(signer, sizeof signer, "%s", a.signer);
    } else if (signer_from_path(signer, sizeof signer, a.key) != MN_OK) {
        return mn_ctl_usage("cannot tell the signer from \"%s\": name the file ID.key or give --signer", a.key);
    }

    /* Each body lives on the stack; the payload points at one of them. */
    Midnode__TxPayload p = MIDNODE__TX_PAYLOAD__INIT;
    Midnode__IssueBody issue = MIDNODE__ISSUE_BODY__INIT;
    Midnode__RevokeBody revoke = MIDNODE__REVOKE_BODY__INIT;
    Midnode__SuspendBody suspend = MIDNODE__SUSPEND_BODY__INIT;
    Midnode__ResumeBody resume = MIDNODE__RESUME_BODY__INIT;
    Midnode__ReportLossBody loss = MIDNODE__REPORT_LOSS_BODY__INIT;
    Midnode__ReportRecoveryBody recovery = MIDNODE__REPORT_RECOVERY_BODY__INIT;
    uint8_t cred[MN_ID_LEN], holder[MN_ID_LEN], device[MN_ID_LEN], report_ref[MN_ID_LEN];
    int rc;
    if (strcmp(cmd, "issue") == 0) {
        if ((rc = parse_id(cred, a.credential, "credential")) != 0) return rc;
        if ((rc = parse_id(holder, a.holder, "holder")) != 0) return rc;
        if ((rc = parse_id(device, a.device, "device")) != 0) return rc;
        if (!a.type) return mn_ctl_usage("issue: --type is required");
        int t = cred_type_from_name(a.type);
        if (!t) return mn_ctl_usage("--type: one of resident, driver, veteran, foreigner, overseas");
        if (!a.carrier || !*a.carrier || strlen(a.carrier) > MN_MEMBER_ID_MAX)
            return mn_ctl_usage("issue: --carrier ID is required");
        issue.credential_id = (ProtobufCBinaryData){MN_ID_LEN, cred};
        issue.type = (Midnode__CredentialType)t;
        issue.holder_ref = (ProtobufCBinaryData){MN_ID_LEN, holder};
        issue.device_ref = (ProtobufCBinaryData){MN_ID_LEN, device};
        issue.carrier = (char *)a.carrier;
        if (a.expires && parse_time_s(a.expires, &issue.expires_at) != MN_OK)
            return mn_ctl_usage("--expires: RFC 3339 time (2027-01-31T00:00:00Z) or Unix seconds");
        if (a.not_before && parse_time_s(a.not_before, &issue.not_before) != MN_OK)
            return mn_ctl_usage("--not-before: RFC 3339 time or Unix seconds");
        p.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE;
        p.issue = &issue;
    } else if (strcmp(cmd, "revoke") == 0) {
        if ((rc = parse_id(cred, a.credential, "credential")) != 0) return rc;
        if (a.reason && strlen(a.reason) > MN_REASON_MAX)
            return mn_ctl_usage("--reason: at most %d bytes", MN_REASON_MAX);
        revoke.credential_id = (ProtobufCBinaryData){MN_ID_LEN, cred};
        revoke.reason = (char *)(a.reason ? a.reason : "");
        p.body_case = MIDNODE__TX_PAYLOAD__BODY_REVOKE;
        p.revoke = &revoke;
    } else if (strcmp(cmd, "suspend") == 0 || strcmp(cmd, "resume") == 0) {
        if ((rc = parse_id(cred, a.credential, "credential")) != 0) return rc;
        if (cmd[0] == 's') {
            suspend.credential_id = (ProtobufCBinaryData){MN_ID_LEN, cred};
            p.body_case = MIDNODE__TX_PAYLOAD__BODY_SUSPEND;
            p.suspend = &suspend;
        } else {
            resume.credential_id = (ProtobufCBinaryData){MN_ID_LEN, cred};
            p.body_case = MIDNODE__TX_PAYLOAD__BODY_RESUME;
            p.resume = &resume;
        }
    } else if (strcmp(cmd, "report-loss") == 0) {
        if ((rc = parse_id(device, a.device, "device")) != 0) return rc;
        if (a.report_ref) {
            if ((rc = parse_id(report_ref, a.report_ref, "report-ref")) != 0) return rc;
        } else if (mn_random_bytes(report_ref, sizeof report_ref) != MN_OK) {
            return mn_ctl_fail("EIO", "no randomness for the report reference");
        }
        loss.device_ref = (ProtobufCBinaryData){MN_ID_LEN, device};
        loss.report_ref = (ProtobufCBinaryData){MN_ID_LEN, report_ref};
        p.body_case = MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS;
        p.report_loss = &loss;
    } else if (strcmp(cmd, "report-recovery") == 0) {
        if ((rc = parse_id(device, a.device, "device")) != 0) return rc;
        recovery.device_ref = (ProtobufCBinaryData){MN_ID_LEN, device};
        p.body_case = MIDNODE__TX_PAYLOAD__BODY_REPORT_RECOVERY;
        p.report_recovery = &recovery;
    } else {
        return mn_ctl_usage("unknown transaction command %s", cmd);
    }

    uint8_t seckey[MN_SECKEY_LEN];
    char err[512] = "";
    if (mn_keyfile_read(a.key, seckey, err, sizeof err) != MN_OK) return mn_ctl_fail("BAD_KEY", "%s", err);

    mn_client *c = mn_ctl_connect();
    if (!c) {
        mn_cleanse(seckey, sizeof seckey);
        return MN_CTL_EXIT_FAIL;
    }
    int exit_rc = MN_CTL_EXIT_FAIL;
    Midnode__GetChainInfoResponse *ci = NULL;
    Midnode__GetSignerResponse *si = NULL;
    Midnode__SubmitTxResponse *sr = NULL;
    uint8_t *tx = NULL;
    size_t tx_len = 0;
    uint8_t tx_hash[MN_HASH_LEN];
    rc = mn_client_get_chain_info(c, &ci);
    if (rc != MN_OK) {
        exit_rc = mn_ctl_rpc_fail(c, rc, "GetChainInfo");
        goto out;
    }
    rc = mn_client_get_signer(c, signer, &si);
    if (rc != MN_OK) {
        exit_rc = mn_ctl_rpc_fail(c, rc, "GetSigner");
        goto out;
    }
    rc = mn_client_build_tx(&tx, &tx_len, tx_hash, ci->chain_id, signer, si->next_nonce, &p, seckey);
    if (rc != MN_OK) {
        exit_rc = mn_ctl_fail(mn_strerror(rc), "cannot build the transaction: %s", mn_strerror(rc));
        goto out;
    }
    if (a.wait) mn_client_set_timeout(c, WAIT_TIMEOUT_MS + 5000);
    rc = mn_client_submit_tx(c, tx, tx_len, a.wait, a.wait ? WAIT_TIMEOUT_MS : 0, &sr);
    if (rc != MN_OK) {
        exit_rc = mn_ctl_rpc_fail(c, rc, "SubmitTx");
        goto out;
    }
    json_t *o = json_object();
    json_object_set_new(o, "tx_hash", mn_ctl_hex(tx_hash, sizeof tx_hash));
    json_object_set_new(o, "signer", json_string(signer));
    json_object_set_new(o, "nonce", json_integer((json_int_t)si->next_nonce));
    if (a.wait) json_object_set_new(o, "height", json_integer((json_int_t)sr->height));
    exit_rc = mn_ctl_emit(o);
out:
    mn_cleanse(seckey, sizeof seckey);
    free(tx);
    if (ci) midnode__get_chain_info_response__free_unpacked(ci, NULL);
    if (si) midnode__get_signer_response__free_unpacked(si, NULL);
    if (sr) midnode__submit_tx_response__free_unpacked(sr, NULL);
    mn_client_free(c);
    return exit_rc;
}
