/* test_ledger.c: every rule of DESIGN.md section 4 and every TxCode of the
 * ledger, atomic refusals, competing executions, proofs and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ledger_fixture.h"
#include "smt.h"
#include "tree_build.h"

#define ST(x) MIDNODE__CREDENTIAL_STATUS__##x
#define TXC(x) MIDNODE__TX_CODE__TX_##x
#define REVOKE MIDNODE__TX_PAYLOAD__BODY_REVOKE
#define SUSPEND MIDNODE__TX_PAYLOAD__BODY_SUSPEND
#define RESUME MIDNODE__TX_PAYLOAD__BODY_RESUME

static int setup(void **state) {
    lf_fixture *f = calloc(1, sizeof *f);
    if (!f || lf_open(f) != MN_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    lf_fixture *f = *state;
    lf_close(f);
    free(f);
    return 0;
}

/* Issues credential n of signer/type on device dev (carrier) and expects code. */
static int issue(lf_fixture *f, const char *signer, uint32_t n, int type, uint32_t holder, uint32_t dev,
                 const char *carrier) {
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    lf_id(id, 'c', n);
    lf_id(h, 'h', holder);
    lf_id(d, 'd', dev);
    lf_issue(f, signer, id, type, h, d, carrier, 0, &tx, &len);
    int code = lf_one(f, tx, len);
    if (code != TXC(OK)) lf_unuse_nonce(f, signer);
    return code;
}

static int cred_op(lf_fixture *f, const char *signer, int kind, uint32_t n) {
    uint8_t id[32], *tx;
    size_t len;
    lf_id(id, 'c', n);
    lf_cred_op(f, signer, kind, id, &tx, &len);
    int code = lf_one(f, tx, len);
    if (code != TXC(OK)) lf_unuse_nonce(f, signer);
    return code;
}

static int dev_op(lf_fixture *f, const char *signer, int loss, uint32_t dev) {
    uint8_t d[32], *tx;
    size_t len;
    lf_id(d, 'd', dev);
    lf_device_op(f, signer, loss, d, &tx, &len);
    int code = lf_one(f, tx, len);
    if (code != TXC(OK)) lf_unuse_nonce(f, signer);
    return code;
}

static int status(lf_fixture *f, uint32_t n) {
    uint8_t id[32];
    lf_id(id, 'c', n);
    return lf_status(f, id);
}

/* A tree source over a built node map, implicit leaves from the store. */
typedef struct { mn_nodemap *tree; mn_store *store; } built_tree;

static int built_tree_get(void *ctx, const uint8_t *pos, size_t len, uint8_t node[static MN_SMT_NODE_LEN]) {
    built_tree *b = ctx;
    if (mn_nodemap_get(b->tree, pos, len, node)) return MN_SMT_TRUSTED;
    return mn_store_smt_leaf(b->store, pos, len, node);
}

static void issue_creates_active_record_with_history(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    lf_id(id, 'c', 1);
    lf_id(h, 'h', 1);
    lf_id(d, 'd', 1);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &tx, &len);
    uint8_t hash[32];
    mn_sha256(hash, tx, len);
    assert_int_equal(lf_one(f, tx, len), TXC(OK));
    assert_int_equal(mn_ledger_height(f->l), 1);
    Midnode__CredentialRecord *r = NULL;
    assert_int_equal(mn_ledger_get_record(f->l, id, &r), MN_OK);
    assert_int_equal(r->status, ST(ACTIVE));
    assert_string_equal(r->issuer, "mois");
    assert_string_equal(r->carrier, "skt");
    assert_int_equal(r->issued_height, 1);
    assert_int_equal(r->updated_height, 1);
    assert_memory_equal(r->issued_tx.data, hash, 32);
    assert_memory_equal(r->updated_tx.data, hash, 32);
    midnode__credential_record__free_unpacked(r, NULL);
    uint64_t nonce = 0, height = 0;
    uint32_t index = 9;
    assert_int_equal(mn_ledger_get_nonce(f->l, "mois", &nonce), MN_OK);
    assert_int_equal(nonce, 1);
    assert_int_equal(mn_store_get_tx_location(f->store, hash, &height, &index), MN_OK);
    assert_int_equal(height, 1);
    assert_int_equal(index, 0);
    /* A later change records its own height and transaction. */
    assert_int_equal(cred_op(f, "mois", SUSPEND, 1), TXC(OK));
    assert_int_equal(mn_ledger_get_record(f->l, id, &r), MN_OK);
    assert_int_equal(r->issued_height, 1);
    assert_int_equal(r->updated_height, 2);
    assert_memory_not_equal(r->updated_tx.data, hash, 32);
    midnode__credential_record__free_unpacked(r, NULL);
}

static void authorisation_table_issue(void **state) {
    lf_fixture *f = *state;
    const char *issuers[] = {"mois", "knpa", "mpva", "moj", "mofa"};
    uint32_t n = 100;
    for (int i = 0; i < 5; i++)
        for (int type = 1; type <= 5; type++) {
            int want = (type == i + 1) ? TXC(OK) : TXC(ROLE_NOT_ALLOWED);
            int got = issue(f, issuers[i], n, type, n, n, "skt");
            if (got != want) fail_msg("%s issuing type %d: got %s", issuers[i], type, mn_tx_code_name(got));
            n++;
        }
    /* Carriers issue nothing; issuers report no loss. */
    assert_int_equal(issue(f, "skt", n++, LF_RESIDENT, 1, 1, "skt"), TXC(ROLE_NOT_ALLOWED));
    assert_int_equal(dev_op(f, "mois", 1, 100), TXC(ROLE_NOT_ALLOWED));
    assert_int_equal(dev_op(f, "knpa", 0, 100), TXC(ROLE_NOT_ALLOWED));
    /* The carrier named in ISSUE must be a carrier. */
    assert_int_equal(issue(f, "mois", n++, LF_RESIDENT, 1, 1, "knpa"), TXC(MALFORMED));
}

static void authorisation_table_issuer_ops(void **state) {
    lf_fixture *f = *state;
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 1, 1, "skt"), TXC(OK));
    const int kinds[] = {SUSPEND, RESUME, REVOKE};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(cred_op(f, "knpa", kinds[k], 1), TXC(ROLE_NOT_ALLOWED)); /* another issuer */
        assert_int_equal(cred_op(f, "skt", kinds[k], 1), TXC(ROLE_NOT_ALLOWED));  /* a carrier */
        assert_int_equal(cred_op(f, "mois", kinds[k], 1), TXC(OK));               /* its issuer */
    }
    assert_int_equal(status(f, 1), ST(REVOKED));
}

static void transitions_and_final_states(void **state) {
    lf_fixture *f = *state;
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 1, 1, "skt"), TXC(OK));
    assert_int_equal(cred_op(f, "mois", RESUME, 1), TXC(INVALID_TRANSITION));
    assert_int_equal(cred_op(f, "mois", SUSPEND, 1), TXC(OK));
    assert_int_equal(status(f, 1), ST(SUSPENDED));
    assert_int_equal(cred_op(f, "mois", SUSPEND, 1), TXC(INVALID_TRANSITION));
    assert_int_equal(cred_op(f, "mois", RESUME, 1), TXC(OK));
    assert_int_equal(status(f, 1), ST(ACTIVE));
    assert_int_equal(cred_op(f, "mois", REVOKE, 1), TXC(OK));
    for (int k = SUSPEND; k <= RESUME; k++) assert_int_equal(cred_op(f, "mois", k, 1), TXC(INVALID_TRANSITION));
    assert_int_equal(cred_op(f, "mois", REVOKE, 1), TXC(INVALID_TRANSITION));
    assert_int_equal(status(f, 1), ST(REVOKED));
    /* Revoking a suspended one is allowed; an unknown one is refused. */
    assert_int_equal(issue(f, "mois", 2, LF_RESIDENT, 2, 1, "skt"), TXC(OK));
    assert_int_equal(cred_op(f, "mois", SUSPEND, 2), TXC(OK));
    assert_int_equal(cred_op(f, "mois", REVOKE, 2), TXC(OK));
    assert_int_equal(cred_op(f, "mois", REVOKE, 999), TXC(UNKNOWN_CREDENTIAL));
    assert_int_equal(cred_op(f, "mois", SUSPEND, 999), TXC(UNKNOWN_CREDENTIAL));
    /* credential_id must be new, even when the old one is final. */
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 7, 7, "skt"), TXC(CREDENTIAL_EXISTS));
}

static void reissue_supersedes_old_copy(void **state) {
    lf_fixture *f = *state;
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 1, 1, "skt"), TXC(OK));
    assert_int_equal(issue(f, "knpa", 2, LF_DRIVER, 1, 1, "skt"), TXC(OK)); /* other type: untouched */
    assert_int_equal(issue(f, "mois", 3, LF_RESIDENT, 1, 2, "kt"), TXC(OK));  /* new phone */
    assert_int_equal(status(f, 1), ST(SUPERSEDED));
    assert_int_equal(status(f, 2), ST(ACTIVE));
    assert_int_equal(status(f, 3), ST(ACTIVE));
    uint8_t id1[32], id3[32];
    lf_id(id1, 'c', 1);
    lf_id(id3, 'c', 3);
    Midnode__CredentialRecord *r = NULL;
    assert_int_equal(mn_ledger_get_record(f->l, id1, &r), MN_OK);
    assert_int_equal(r->superseded_by.len, 32);
    assert_memory_equal(r->superseded_by.data, id3, 32);
    assert_int_equal(r->updated_height, 3);
    midnode__credential_record__free_unpacked(r, NULL);
    /* SUPERSEDED is final. */
    assert_int_equal(cred_op(f, "mois", RESUME, 1), TXC(INVALID_TRANSITION));
    assert_int_equal(cred_op(f, "mois", REVOKE, 1), TXC(INVALID_TRANSITION));
    /* A loss report on the old phone no longer reaches the superseded copy. */
    assert_int_equal(dev_op(f, "skt", 1, 1), TXC(OK));
    assert_int_equal(status(f, 1), ST(SUPERSEDED));
    assert_int_equal(status(f, 2), ST(SUSPENDED));
    assert_int_equal(status(f, 3), ST(ACTIVE));
}

static void loss_report_touches_only_own_carrier(void **state) {
    lf_fixture *f = *state;
    /* Phone 1 (skt): three credentials of skt, one credential carried by kt. */
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 1, 1, "skt"), TXC(OK));
    assert_int_equal(issue(f, "knpa", 2, LF_DRIVER, 1, 1, "skt"), TXC(OK));
    assert_int_equal(issue(f, "mpva", 3, LF_VETERAN, 1, 1, "skt"), TXC(OK));
    assert_int_equal(issue(f, "moj", 4, LF_FOREIGNER, 2, 1, "kt"), TXC(OK));
    /* Phone 2 (kt). */
    assert_int_equal(issue(f, "mois", 5, LF_RESIDENT, 3, 2, "kt"), TXC(OK));
    assert_int_equal(issue(f, "knpa", 6, LF_DRIVER, 3, 2, "kt"), TXC(OK));
    uint8_t d1[32], *tx;
    size_t len;
    lf_id(d1, 'd', 1);
    lf_device_op(f, "skt", 1, d1, &tx, &len);
    mn_exec *e = mn_exec_begin(f->l, mn_ledger_height(f->l) + 1, f->time_ms);
    assert_non_null(e);
    char msg[MN_TX_MSG_MAX];
    assert_int_equal(mn_exec_apply_tx(e, tx, len, msg, sizeof msg), TXC(OK));
    free(tx);
    size_t nc = 0;
    const mn_status_change *ch = mn_exec_changes(e, &nc);
    assert_int_equal(nc, 3);
    for (size_t i = 0; i < nc; i++) {
        assert_string_equal(ch[i].kind, "report_loss");
        assert_int_equal(ch[i].status, ST(SUSPENDED));
        assert_int_equal(ch[i].previous, ST(ACTIVE));
        assert_string_equal(ch[i].signer, "skt");
    }
    assert_int_equal(mn_exec_commit(e, (const uint8_t *)"b", 1, NULL, 0), MN_OK);
    mn_exec_free(e);
    for (uint32_t i = 1; i <= 3; i++) assert_int_equal(status(f, i), ST(SUSPENDED));
    for (uint32_t i = 4; i <= 6; i++) assert_int_equal(status(f, i), ST(ACTIVE));
    /* Reporting twice is an invalid transition; kt cannot touch phone 1's skt
     * credentials, and lgu has no subscriber there at all. */
    assert_int_equal(dev_op(f, "skt", 1, 1), TXC(INVALID_TRANSITION));
    assert_int_equal(dev_op(f, "lgu", 1, 1), TXC(NOT_YOUR_SUBSCRIBER));
    assert_int_equal(dev_op(f, "lgu", 0, 1), TXC(NOT_YOUR_SUBSCRIBER));
    assert_int_equal(dev_op(f, "skt", 1, 2), TXC(NOT_YOUR_SUBSCRIBER));
    assert_int_equal(dev_op(f, "skt", 1, 99), TXC(NOT_YOUR_SUBSCRIBER));
    assert_int_equal(dev_op(f, "kt", 0, 1), TXC(INVALID_TRANSITION)); /* kt's one is not lost */
    /* Issuer suspension outlives the carrier's recovery. */
    assert_int_equal(cred_op(f, "knpa", SUSPEND, 2), TXC(OK));
    assert_int_equal(dev_op(f, "skt", 0, 1), TXC(OK));
    assert_int_equal(status(f, 1), ST(ACTIVE));
    assert_int_equal(status(f, 2), ST(SUSPENDED));
    assert_int_equal(status(f, 3), ST(ACTIVE));
    assert_int_equal(dev_op(f, "skt", 0, 1), TXC(INVALID_TRANSITION));
    /* And the issuer's resume does not undo a loss suspension. */
    assert_int_equal(dev_op(f, "skt", 1, 1), TXC(OK));
    assert_int_equal(cred_op(f, "knpa", RESUME, 2), TXC(OK));
    assert_int_equal(status(f, 2), ST(SUSPENDED));
    assert_int_equal(dev_op(f, "skt", 0, 1), TXC(OK));
    assert_int_equal(status(f, 2), ST(ACTIVE));
    /* A credential issued onto a phone reported lost starts locked; one of
     * another carrier on the same phone does not; recovery unlocks it. */
    assert_int_equal(dev_op(f, "skt", 1, 1), TXC(OK));
    assert_int_equal(issue(f, "mofa", 7, LF_OVERSEAS, 1, 1, "skt"), TXC(OK));
    assert_int_equal(issue(f, "mofa", 8, LF_OVERSEAS, 9, 1, "kt"), TXC(OK));
    assert_int_equal(status(f, 7), ST(SUSPENDED));
    assert_int_equal(status(f, 8), ST(ACTIVE));
    assert_int_equal(dev_op(f, "skt", 0, 1), TXC(OK));
    assert_int_equal(status(f, 7), ST(ACTIVE));
}

static void nonces_replays_and_signatures(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32], h[32], d[32], *tx, *copy;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    lf_id(id, 'c', 1);
    lf_id(h, 'h', 1);
    lf_id(d, 'd', 1);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &tx, &len);
    copy = malloc(len);
    memcpy(copy, tx, len);
    mn_tx_info info;
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, &info, msg, sizeof msg), TXC(OK));
    assert_string_equal(info.signer, "mois");
    assert_int_equal(info.nonce, 1);
    assert_int_equal(lf_one(f, tx, len), TXC(OK));
    /* Replay: same bytes again. */
    assert_int_equal(mn_ledger_check_tx(f->l, copy, len, NULL, msg, sizeof msg), TXC(WRONG_NONCE));
    assert_int_equal(lf_one(f, copy, len), TXC(WRONG_NONCE));
    /* A gap in nonces. */
    Midnode__TxPayload p;
    Midnode__SuspendBody sb = MIDNODE__SUSPEND_BODY__INIT;
    lf_payload(&p, "mois");
    sb.credential_id = (ProtobufCBinaryData){32, id};
    p.body_case = SUSPEND;
    p.suspend = &sb;
    p.nonce = 5;
    lf_sign(f, &p, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(OK)); /* > committed */
    assert_int_equal(lf_one(f, tx, len), TXC(WRONG_NONCE));
    /* Forged: signed by someone else's key, and by a key of no member. */
    p.signer = (char *)"mois";
    p.nonce = 2;
    lf_sign_as(f, &p, "knpa", &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(BAD_SIGNATURE));
    assert_int_equal(lf_one(f, tx, len), TXC(BAD_SIGNATURE));
    lf_sign_as(f, &p, "mallory", &tx, &len);
    assert_int_equal(lf_one(f, tx, len), TXC(BAD_SIGNATURE));
    /* A flipped payload byte breaks the signature (or the decoding). */
    lf_sign(f, &p, &tx, &len);
    tx[len - 70] ^= 0x01;
    int c = lf_one(f, tx, len);
    assert_true(c == TXC(BAD_SIGNATURE) || c == TXC(MALFORMED));
    /* Two transactions of one signer in one block: 2 then 3 is fine, 3 then 2 is not. */
    uint8_t *txs[2];
    size_t lens[2];
    int codes[2];
    p.nonce = 2;
    lf_sign(f, &p, &txs[0], &lens[0]);
    Midnode__ResumeBody rb = MIDNODE__RESUME_BODY__INIT;
    rb.credential_id = (ProtobufCBinaryData){32, id};
    p.body_case = RESUME;
    p.resume = &rb;
    p.nonce = 3;
    lf_sign(f, &p, &txs[1], &lens[1]);
    assert_int_equal(lf_block(f, txs, lens, 2, codes), MN_OK);
    assert_int_equal(codes[0], TXC(OK));
    assert_int_equal(codes[1], TXC(OK));
    p.nonce = 5;
    lf_sign(f, &p, &txs[0], &lens[0]);
    p.nonce = 4;
    p.body_case = SUSPEND;
    lf_sign(f, &p, &txs[1], &lens[1]);
    assert_int_equal(lf_block(f, txs, lens, 2, codes), MN_OK);
    assert_int_equal(codes[0], TXC(WRONG_NONCE));
    assert_int_equal(codes[1], TXC(OK));
    uint64_t nonce = 0;
    assert_int_equal(mn_ledger_get_nonce(f->l, "mois", &nonce), MN_OK);
    assert_int_equal(nonce, 4);
}

static void sig_checked_flag_skips_only_the_signature(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    lf_id(id, 'c', 1);
    lf_id(h, 'h', 1);
    lf_id(d, 'd', 1);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &tx, &len);
    mn_exec *e = mn_exec_begin(f->l, 1, f->time_ms);
    assert_non_null(e);
    assert_int_equal(mn_exec_apply_tx_opts(e, tx, len, MN_EXEC_SIG_CHECKED, msg, sizeof msg), TXC(OK));
    /* The replay is still refused: only the signature check is skipped. */
    assert_int_equal(mn_exec_apply_tx_opts(e, tx, len, MN_EXEC_SIG_CHECKED, msg, sizeof msg), TXC(WRONG_NONCE));
    free(tx);
    /* Without the flag a forged signature is refused. */
    Midnode__TxPayload p;
    Midnode__SuspendBody sb = MIDNODE__SUSPEND_BODY__INIT;
    lf_payload(&p, "mois");
    sb.credential_id = (ProtobufCBinaryData){32, id};
    p.body_case = SUSPEND;
    p.suspend = &sb;
    p.nonce = 2;
    lf_sign_as(f, &p, "knpa", &tx, &len);
    assert_int_equal(mn_exec_apply_tx(e, tx, len, msg, sizeof msg), TXC(BAD_SIGNATURE));
    free(tx);
    mn_exec_free(e);
}

static void chain_signer_and_shape_checks(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32], *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    lf_id(id, 'c', 1);
    Midnode__TxPayload p;
    Midnode__SuspendBody sb = MIDNODE__SUSPEND_BODY__INIT;
    sb.credential_id = (ProtobufCBinaryData){32, id};
    lf_payload(&p, "mois");
    p.body_case = SUSPEND;
    p.suspend = &sb;
    p.nonce = 1;
    p.chain_id = (char *)"another-chain";
    lf_sign(f, &p, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(WRONG_CHAIN));
    assert_non_null(strstr(msg, "another-chain"));
    assert_int_equal(lf_one(f, tx, len), TXC(WRONG_CHAIN));
    p.chain_id = (char *)LF_CHAIN;
    p.signer = (char *)"mallory";
    lf_sign_as(f, &p, "mallory", &tx, &len);
    assert_int_equal(lf_one(f, tx, len), TXC(UNKNOWN_SIGNER));
    p.signer = (char *)"mois";
    sb.credential_id.len = 31;
    lf_sign(f, &p, &tx, &len);
    assert_int_equal(lf_one(f, tx, len), TXC(MALFORMED));
    sb.credential_id.len = 32;
    p.body_case = MIDNODE__TX_PAYLOAD__BODY__NOT_SET;
    lf_sign(f, &p, &tx, &len);
    assert_int_equal(lf_one(f, tx, len), TXC(MALFORMED));
    p.body_case = SUSPEND;
    p.nonce = 0;
    /* nonce 0: the fixture would assign one, so set the next nonce to 0 */
    f->next_nonce[lf_member_index(f, "mois")] = 0;
    lf_sign(f, &p, &tx, &len);
    assert_int_equal(lf_one(f, tx, len), TXC(WRONG_NONCE));
    f->next_nonce[lf_member_index(f, "mois")] = 1;
    uint8_t junk[40];
    memset(junk, 0xff, sizeof junk);
    assert_int_equal(mn_ledger_check_tx(f->l, junk, sizeof junk, NULL, msg, sizeof msg), TXC(MALFORMED));
    assert_true(strlen(msg) > 0);
    uint8_t *big = calloc(1, MN_TX_BYTES_MAX + 1);
    assert_int_equal(mn_ledger_check_tx(f->l, big, MN_TX_BYTES_MAX + 1, NULL, msg, sizeof msg), TXC(TOO_LARGE));
    assert_int_equal(lf_one(f, big, MN_TX_BYTES_MAX + 1), TXC(TOO_LARGE));
    assert_string_equal(mn_tx_code_name(TXC(WRONG_NONCE)), "TX_WRONG_NONCE");
    assert_string_equal(mn_tx_code_name(99), "TX_UNKNOWN_CODE");
}

static void refused_tx_leaves_block_untouched_and_device_bound(void **state) {
    lf_fixture *f = *state;
    /* Fill phone 1 with 32 live credentials (32 holders). */
    uint8_t *txs[MN_DEVICE_LIVE_MAX];
    size_t lens[MN_DEVICE_LIVE_MAX];
    int codes[MN_DEVICE_LIVE_MAX];
    for (uint32_t i = 0; i < MN_DEVICE_LIVE_MAX; i++) {
        uint8_t id[32], h[32], d[32];
        lf_id(id, 'c', 1000 + i);
        lf_id(h, 'h', 1000 + i);
        lf_id(d, 'd', 1);
        lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", i < 2 ? (f->time_ms / 1000 + 5) : 0, &txs[i], &lens[i]);
    }
    assert_int_equal(lf_block(f, txs, lens, MN_DEVICE_LIVE_MAX, codes), MN_OK);
    for (int i = 0; i < MN_DEVICE_LIVE_MAX; i++) assert_int_equal(codes[i], TXC(OK));
    /* Holder 5000's copy lives on phone 2; reissuing it onto the full phone 1
     * is refused, and the refusal must not leave the old copy superseded. */
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 5000, 2, "kt"), TXC(OK));
    uint8_t before[32], after[32];
    mn_ledger_root(f->l, before);
    assert_int_equal(issue(f, "mois", 2, LF_RESIDENT, 5000, 1, "skt"), TXC(TOO_LARGE));
    assert_int_equal(status(f, 1), ST(ACTIVE));
    assert_int_equal(status(f, 2), ST(STATUS_UNKNOWN));
    mn_ledger_root(f->l, after);
    assert_memory_equal(before, after, 32); /* a block of one refused tx changes no state */
    uint8_t id1[32];
    lf_id(id1, 'c', 1);
    Midnode__CredentialRecord *r;
    assert_int_equal(mn_ledger_get_record(f->l, id1, &r), MN_OK);
    assert_int_equal(r->status, ST(ACTIVE));
    midnode__credential_record__free_unpacked(r, NULL);
    /* Once two of them expire, there is room again. */
    f->time_ms += 10000;
    assert_int_equal(issue(f, "mois", 2, LF_RESIDENT, 5000, 1, "skt"), TXC(OK));
    assert_int_equal(status(f, 1), ST(SUPERSEDED));
    /* Revoking frees a place too. */
    assert_int_equal(issue(f, "mois", 3, LF_RESIDENT, 6000, 1, "skt"), TXC(OK));
    assert_int_equal(issue(f, "mois", 4, LF_RESIDENT, 6001, 1, "skt"), TXC(TOO_LARGE));
    assert_int_equal(cred_op(f, "mois", REVOKE, 1005), TXC(OK));
    assert_int_equal(issue(f, "mois", 4, LF_RESIDENT, 6001, 1, "skt"), TXC(OK));
}

static void refusal_in_a_block_keeps_the_overlay(void **state) {
    lf_fixture *f = *state;
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 1, 1, "skt"), TXC(OK));
    mn_exec *e = mn_exec_begin(f->l, 2, f->time_ms);
    assert_non_null(e);
    assert_null(mn_exec_begin(f->l, 3, f->time_ms)); /* wrong height */
    uint8_t r0[32], r1[32], *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    uint8_t id[32];
    lf_id(id, 'c', 1);
    lf_cred_op(f, "knpa", REVOKE, id, &tx, &len);
    mn_exec *e2 = mn_exec_begin(f->l, 2, f->time_ms);
    assert_int_equal(mn_exec_finish(e2, r0), MN_OK); /* an empty block's root */
    assert_int_equal(mn_exec_apply_tx(e, tx, len, msg, sizeof msg), TXC(ROLE_NOT_ALLOWED));
    assert_non_null(strstr(msg, "mois"));
    free(tx);
    size_t nc = 9;
    mn_exec_changes(e, &nc);
    assert_int_equal(nc, 0);
    assert_int_equal(mn_exec_finish(e, r1), MN_OK);
    assert_memory_equal(r0, r1, 32); /* the refused tx changed nothing */
    assert_int_equal(mn_exec_tx_count(e), 1);
    assert_int_equal(mn_exec_ok_count(e), 0);
    /* Competing executions of height 2: one commits, the other cannot. */
    assert_int_equal(mn_exec_commit(e2, (const uint8_t *)"x", 1, NULL, 0), MN_OK);
    assert_int_equal(mn_exec_commit(e, (const uint8_t *)"y", 1, NULL, 0), MN_ESTATE);
    mn_exec_free(e);
    mn_exec_free(e2);
    assert_int_equal(mn_ledger_height(f->l), 2);
}

static void expired_is_derived_from_header_time(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    lf_id(id, 'c', 1);
    lf_id(h, 'h', 1);
    lf_id(d, 'd', 1);
    int64_t exp = f->time_ms / 1000 + 100;
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", exp, &tx, &len);
    assert_int_equal(lf_one(f, tx, len), TXC(OK));
    Midnode__CredentialRecord *r;
    assert_int_equal(mn_ledger_get_record(f->l, id, &r), MN_OK);
    assert_int_equal(mn_ledger_effective_status(r, (exp - 1) * 1000 + 999), ST(ACTIVE));
    assert_int_equal(mn_ledger_effective_status(r, exp * 1000), ST(EXPIRED));
    r->status = ST(SUSPENDED);
    assert_int_equal(mn_ledger_effective_status(r, exp * 1000), ST(EXPIRED));
    r->status = ST(REVOKED);
    assert_int_equal(mn_ledger_effective_status(r, exp * 1000), ST(REVOKED));
    r->expires_at = 0;
    r->status = ST(ACTIVE);
    assert_int_equal(mn_ledger_effective_status(r, INT64_MAX), ST(ACTIVE));
    midnode__credential_record__free_unpacked(r, NULL);
    assert_int_equal(mn_ledger_effective_status(NULL, 0), ST(STATUS_UNKNOWN));
    assert_int_equal(status(f, 1), ST(ACTIVE)); /* never stored as EXPIRED */
}

static void proofs_verify_against_the_root(void **state) {
    lf_fixture *f = *state;
    for (uint32_t i = 1; i <= 20; i++) assert_int_equal(issue(f, "mois", i, LF_RESIDENT, i, i, "skt"), TXC(OK));
    uint8_t root[32], kh[32];
    mn_ledger_root(f->l, root);
    for (uint32_t i = 1; i <= 25; i++) {
        uint8_t id[32], *rec = NULL;
        size_t rl = 0;
        uint64_t height = 0;
        lf_id(id, 'c', i);
        Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
        assert_int_equal(mn_ledger_prove(f->l, id, &rec, &rl, &p, &height), MN_OK);
        assert_int_equal(height, 20);
        mn_smt_key_credential(kh, id);
        const char *why = NULL;
        if (i <= 20) {
            assert_non_null(rec);
            assert_int_equal(mn_smt_verify(root, kh, rec, rl, &p, &why), MN_OK);
            assert_int_not_equal(mn_smt_verify(root, kh, NULL, 0, &p, &why), MN_OK);
            rec[rl / 2] ^= 1;
            assert_int_not_equal(mn_smt_verify(root, kh, rec, rl, &p, &why), MN_OK);
            assert_non_null(why);
        } else {
            assert_null(rec);
            assert_int_equal(mn_smt_verify(root, kh, NULL, 0, &p, &why), MN_OK);
        }
        free(rec);
        mn_smt_proof_clear(&p);
    }
    /* The nonce leaf is in the same tree. */
    uint8_t nk[32], v[8] = {0, 0, 0, 0, 0, 0, 0, 20};
    mn_smt_key_nonce(nk, "mois");
    built_tree bt = {mn_nodemap_new(), f->store};
    assert_non_null(bt.tree);
    uint8_t built[32];
    assert_int_equal(mn_tree_build(f->store, bt.tree, built, NULL), MN_OK);
    assert_memory_equal(built, root, 32);
    mn_smt_src src = {built_tree_get, &bt, NULL};
    Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
    assert_int_equal(mn_smt_prove(&src, NULL, root, nk, &p), MN_OK);
    assert_int_equal(mn_smt_verify(root, nk, v, 8, &p, NULL), MN_OK);
    mn_smt_proof_clear(&p);
    mn_nodemap_free(bt.tree);
}

typedef struct { size_t nodes, records, bad_ids; mn_store *s; } scan_count;

static int count_node(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    scan_count *c = ctx;
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    c->nodes++;
    return 0;
}

static int count_record(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    scan_count *c = ctx;
    c->records++;
    Midnode__CredentialRecord *r = midnode__credential_record__unpack(NULL, vl, v);
    if (kl != 33 || !r || r->credential_id.len != 32 || memcmp(r->credential_id.data, k + 1, 32) != 0) c->bad_ids++;
    if (r) midnode__credential_record__free_unpacked(r, NULL);
    return 0;
}

/* The store holds no tree node at all (records' leaves are derived from
 * the records, kept in key_hash order; the rest is in the ledger's memory);
 * a reopened ledger rebuilds the tree and proves from it; scans still name
 * records by id. */
static void no_tree_node_is_stored(void **state) {
    lf_fixture *f = *state;
    for (uint32_t i = 1; i <= 40; i++) assert_int_equal(issue(f, "mois", i, LF_RESIDENT, i, i, "skt"), TXC(OK));
    scan_count c = {0};
    assert_int_equal(mn_store_scan(f->store, 's', count_node, &c), MN_OK);
    assert_int_equal(c.nodes, 0);
    assert_int_equal(mn_store_scan(f->store, 'r', count_record, &c), MN_OK);
    assert_int_equal(c.records, 40);
    assert_int_equal(c.bad_ids, 0);
    uint8_t root[32];
    mn_ledger_root(f->l, root);
    lf_close_store(f);
    assert_int_equal(lf_open_store(f), MN_OK);
    for (uint32_t i = 1; i <= 41; i++) {
        uint8_t id[32], kh[32], *rec = NULL;
        size_t rl = 0;
        uint64_t height = 0;
        lf_id(id, 'c', i);
        mn_smt_key_credential(kh, id);
        Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
        assert_int_equal(mn_ledger_prove(f->l, id, &rec, &rl, &p, &height), MN_OK);
        assert_int_equal(mn_smt_verify(root, kh, rec, rl, &p, NULL), MN_OK);
        assert_true(i <= 40 ? rec != NULL : rec == NULL);
        free(rec);
        mn_smt_proof_clear(&p);
    }
    /* Updates after the reopen read the derived leaves back (and check their hashes). */
    assert_int_equal(issue(f, "mois", 41, LF_RESIDENT, 41, 41, "skt"), TXC(OK));
    assert_int_equal(status(f, 41), ST(ACTIVE));
    assert_int_equal(status(f, 7), ST(ACTIVE));
}

static void proves(mn_ledger *l, uint32_t n, bool present);

/* An issuance that lands on another credential's leaf learns where the
 * two part from the in-memory tree's key prefixes, not from a seek of the
 * store; after a reopen too (the tree's build records them). */
static void issuances_take_leaf_keys_from_memory(void **state) {
    lf_fixture *f = *state;
    for (uint32_t i = 1; i <= 200; i++) assert_int_equal(issue(f, "mois", i, LF_RESIDENT, i, i, "skt"), TXC(OK));
    assert_int_equal(mn_store_leaf_seeks(f->store), 0);
    lf_close_store(f);
    assert_int_equal(lf_open_store(f), MN_OK);
    uint64_t after_open = mn_store_leaf_seeks(f->store);
    for (uint32_t i = 201; i <= 260; i++) assert_int_equal(issue(f, "mois", i, LF_RESIDENT, i, i, "skt"), TXC(OK));
    assert_int_equal(mn_store_leaf_seeks(f->store), after_open);
    for (uint32_t i = 1; i <= 260; i += 37) assert_int_equal(status(f, i), ST(ACTIVE));
    /* The roots agree with a tree built from the store alone. */
    mn_nodemap *tree = mn_nodemap_new();
    assert_non_null(tree);
    uint8_t root[32], built[32];
    assert_int_equal(mn_tree_build(f->store, tree, built, NULL), MN_OK);
    mn_ledger_root(f->l, root);
    assert_memory_equal(built, root, 32);
    assert_int_equal(mn_nodemap_leaf_count(tree), 260);
    mn_nodemap_free(tree);
    /* A proof of absence still derives the leaf it ends on from the store. */
    proves(f->l, 999, false);
    assert_true(mn_store_leaf_seeks(f->store) > after_open);
}

/* Proof of credential n from ledger l against its root, checked. */
static void proves(mn_ledger *l, uint32_t n, bool present) {
    uint8_t id[32], kh[32], root[32], *rec = NULL;
    size_t rl = 0;
    uint64_t height = 0;
    lf_id(id, 'c', n);
    mn_smt_key_credential(kh, id);
    mn_ledger_root(l, root);
    Midnode__MerkleProof p = MIDNODE__MERKLE_PROOF__INIT;
    assert_int_equal(mn_ledger_prove(l, id, &rec, &rl, &p, &height), MN_OK);
    assert_int_equal(mn_smt_verify(root, kh, rec, rl, &p, NULL), MN_OK);
    assert_true(present ? rec != NULL : rec == NULL);
    free(rec);
    mn_smt_proof_clear(&p);
}

/* The tree built from the store alone (records, then nonces) is the one
 * the commits computed, whatever the order things were written in. */
static void the_tree_built_from_the_store_is_the_committed_one(void **state) {
    lf_fixture *f = *state;
    mn_nodemap *tree = mn_nodemap_new();
    assert_non_null(tree);
    uint8_t root[32], built[32], zero[32] = {0};
    mn_tree_build_stats st;
    assert_int_equal(mn_tree_build(f->store, tree, built, &st), MN_OK);
    assert_memory_equal(built, zero, 32);
    assert_int_equal(st.records + st.nonces + st.nodes, 0);
    for (uint32_t i = 1; i <= 300; i++)
        assert_int_equal(issue(f, i % 3 ? "mois" : "knpa", i, i % 3 ? LF_RESIDENT : LF_DRIVER, i, i % 50, "skt"),
                         TXC(OK));
    assert_int_equal(dev_op(f, "skt", 1, 7), TXC(OK));
    assert_int_equal(cred_op(f, "mois", MIDNODE__TX_PAYLOAD__BODY_REVOKE, 5), TXC(OK));
    mn_ledger_root(f->l, root);
    assert_int_equal(mn_tree_build(f->store, tree, built, &st), MN_OK);
    assert_memory_equal(built, root, 32);
    assert_int_equal(st.records, 300);
    assert_int_equal(st.nonces, 3); /* mois, knpa, skt */
    /* built again on top of an emptied map: the same tree */
    mn_nodemap_clear(tree);
    assert_int_equal(mn_tree_build(f->store, tree, built, &st), MN_OK);
    assert_memory_equal(built, root, 32);
    assert_true(st.nodes >= 300); /* internal nodes and the nonces' leaves */
    mn_nodemap_free(tree);
}

/* Records that do not hash to the stored root (written behind the ledger)
 * stop the ledger from opening rather than serving a wrong tree. */
static void records_that_miss_the_stored_root_are_refused(void **state) {
    lf_fixture *f = *state;
    for (uint32_t i = 1; i <= 20; i++) assert_int_equal(issue(f, "mois", i, LF_RESIDENT, i, i, "skt"), TXC(OK));
    uint8_t id[32], root[32], key[MN_STORE_KEY_MAX], buf[1024];
    lf_id(id, 'c', 9);
    Midnode__CredentialRecord *r = NULL;
    assert_int_equal(mn_ledger_get_record(f->l, id, &r), MN_OK);
    r->status = MIDNODE__CREDENTIAL_STATUS__REVOKED;
    size_t bl = midnode__credential_record__pack(r, buf);
    midnode__credential_record__free_unpacked(r, NULL);
    mn_kvmap *kv = mn_kv_new();
    assert_non_null(kv);
    assert_int_equal(mn_kv_put(kv, key, mn_store_key_record(key, id), buf, bl), MN_OK);
    mn_ledger_root(f->l, root);
    assert_int_equal(mn_store_commit(f->store, mn_ledger_height(f->l) + 1, (const uint8_t *)"x", 1, NULL, 0, kv, root),
                     MN_OK);
    mn_kv_free(kv);
    lf_close_store(f);
    assert_int_equal(lf_open_store(f), MN_ECORRUPT);
    assert_null(f->l);
}

/* Two ledgers over one store: each one's tree follows the other's commits
 * (rebuilt when the store's root moved under it). */
static void a_ledger_follows_commits_made_by_another(void **state) {
    lf_fixture *f = *state;
    mn_ledger *a = f->l, *b = NULL;
    assert_int_equal(mn_ledger_open(&b, f->store, f->g), MN_OK);
    for (uint32_t i = 1; i <= 30; i++) assert_int_equal(issue(f, "mois", i, LF_RESIDENT, i, i, "skt"), TXC(OK));
    proves(b, 17, true);
    f->l = b;
    for (uint32_t i = 31; i <= 40; i++) assert_int_equal(issue(f, "mois", i, LF_RESIDENT, i, i, "skt"), TXC(OK));
    proves(b, 35, true);
    f->l = a;
    proves(a, 35, true);
    proves(a, 41, false);
    assert_int_equal(issue(f, "mois", 41, LF_RESIDENT, 41, 41, "skt"), TXC(OK));
    proves(a, 41, true);
    proves(b, 41, true);
    mn_ledger_free(b);
}

/* Executes one block with a real header carrying the state root, and a certificate. */
static void real_block(lf_fixture *f, uint8_t *tx, size_t len) {
    mn_exec *e = mn_exec_begin(f->l, mn_ledger_height(f->l) + 1, f->time_ms);
    assert_non_null(e);
    char msg[MN_TX_MSG_MAX];
    assert_int_equal(mn_exec_apply_tx(e, tx, len, msg, sizeof msg), TXC(OK));
    uint8_t root[32], txh[32];
    assert_int_equal(mn_exec_finish(e, root), MN_OK);
    mn_sha256(txh, tx, len);
    Midnode__BlockHeader h = MIDNODE__BLOCK_HEADER__INIT;
    h.chain_id = (char *)LF_CHAIN;
    h.height = mn_ledger_height(f->l) + 1;
    h.time_ms = f->time_ms;
    h.state_root = (ProtobufCBinaryData){32, root};
    h.tx_root = (ProtobufCBinaryData){32, txh};
    uint8_t hb[512];
    size_t hl = midnode__block_header__pack(&h, hb);
    Midnode__Block b = MIDNODE__BLOCK__INIT;
    ProtobufCBinaryData txb = {len, tx};
    b.header = (ProtobufCBinaryData){hl, hb};
    b.n_txs = 1;
    b.txs = &txb;
    size_t bl = midnode__block__get_packed_size(&b);
    uint8_t *bb = malloc(bl);
    midnode__block__pack(&b, bb);
    Midnode__CommitCertificate c = MIDNODE__COMMIT_CERTIFICATE__INIT;
    uint8_t bh[32], cb2[128];
    mn_sha256(bh, hb, hl);
    c.height = h.height;
    c.block_hash = (ProtobufCBinaryData){32, bh};
    size_t cl = midnode__commit_certificate__pack(&c, cb2);
    assert_int_equal(mn_exec_commit(e, bb, bl, cb2, cl), MN_OK);
    mn_exec_free(e);
    free(bb);
    free(tx);
    f->time_ms += 1000;
}

static void status_proof_carries_header_and_certificate(void **state) {
    lf_fixture *f = *state;
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    lf_id(id, 'c', 1);
    lf_id(h, 'h', 1);
    lf_id(d, 'd', 1);
    Midnode__StatusProof *p = NULL;
    assert_int_equal(mn_ledger_status_proof(f->l, id, &p), MN_ENOTFOUND);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, "skt", 0, &tx, &len);
    real_block(f, tx, len);
    lf_cred_op(f, "mois", SUSPEND, id, &tx, &len);
    real_block(f, tx, len);
    assert_int_equal(mn_ledger_status_proof(f->l, id, &p), MN_OK);
    assert_non_null(p->commit);
    assert_int_equal(p->commit->height, 2);
    Midnode__BlockHeader *hd = midnode__block_header__unpack(NULL, p->header.len, p->header.data);
    assert_non_null(hd);
    assert_int_equal(hd->height, 2);
    uint8_t kh[32];
    mn_smt_key_credential(kh, id);
    assert_int_equal(mn_smt_verify(hd->state_root.data, kh, p->record.data, p->record.len, p->merkle, NULL), MN_OK);
    Midnode__CredentialRecord *r = midnode__credential_record__unpack(NULL, p->record.len, p->record.data);
    assert_non_null(r);
    assert_int_equal(r->status, ST(SUSPENDED));
    midnode__credential_record__free_unpacked(r, NULL);
    midnode__block_header__free_unpacked(hd, NULL);
    /* The whole thing serialises (what GetStatus sends). */
    size_t pl = midnode__status_proof__get_packed_size(p);
    assert_true(pl > 100);
    mn_ledger_status_proof_free(p);
    /* Absence of an unknown credential. */
    lf_id(id, 'c', 2);
    assert_int_equal(mn_ledger_status_proof(f->l, id, &p), MN_OK);
    assert_int_equal(p->record.len, 0);
    mn_smt_key_credential(kh, id);
    uint8_t root[32];
    mn_ledger_root(f->l, root);
    assert_int_equal(mn_smt_verify(root, kh, NULL, 0, p->merkle, NULL), MN_OK);
    mn_ledger_status_proof_free(p);
}

static void status_changes_are_logged(void **state) {
    lf_fixture *f = *state;
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 1, 1, "skt"), TXC(OK));
    assert_int_equal(issue(f, "mois", 2, LF_RESIDENT, 1, 2, "skt"), TXC(OK));
    assert_int_equal(cred_op(f, "mois", REVOKE, 2), TXC(OK));
    struct { int n; char kinds[8][32]; uint64_t h[8]; } got = {0};
    int cb(void *ctx, uint64_t height, const uint8_t *c, size_t len);
    assert_int_equal(mn_store_status_changes(f->store, 2, 100, cb, &got), MN_OK);
    assert_int_equal(got.n, 3);
    assert_string_equal(got.kinds[0], "supersede");
    assert_string_equal(got.kinds[1], "issue");
    assert_string_equal(got.kinds[2], "revoke");
    assert_int_equal(got.h[0], 2);
    assert_int_equal(got.h[2], 3);
}

int cb(void *ctx, uint64_t height, const uint8_t *c, size_t len) {
    struct { int n; char kinds[8][32]; uint64_t h[8]; } *got = ctx;
    Midnode__StatusChange *sc = midnode__status_change__unpack(NULL, len, c);
    if (!sc || got->n >= 8) return 1;
    snprintf(got->kinds[got->n], 32, "%s", sc->kind);
    got->h[got->n++] = height;
    midnode__status_change__free_unpacked(sc, NULL);
    return 0;
}

/* Runs a fixed scenario on a fresh fixture; returns the final root. */
static void scenario(uint8_t root[32], uint8_t rec1[512], size_t *rec1_len, uint32_t reopen_at) {
    lf_fixture f;
    assert_int_equal(lf_open(&f), MN_OK);
    for (uint32_t b = 0; b < 5; b++) {
        if (b == reopen_at) { /* a restart: the ledger's node cache starts empty */
            lf_close_store(&f);
            assert_int_equal(lf_open_store(&f), MN_OK);
        }
        uint8_t *txs[40];
        size_t lens[40];
        size_t n = 0;
        for (uint32_t i = 0; i < 30; i++) {
            uint8_t id[32], h[32], d[32];
            uint32_t k = b * 30 + i;
            lf_id(id, 'c', k);
            lf_id(h, 'h', k % 40); /* repeats holders: supersedes */
            lf_id(d, 'd', k % 7);
            lf_issue(&f, "mois", id, LF_RESIDENT, h, d, (k & 1) ? "skt" : "kt", 0, &txs[n], &lens[n]);
            n++;
        }
        uint8_t d[32];
        lf_id(d, 'd', b);
        lf_device_op(&f, "skt", 1, d, &txs[n], &lens[n]);
        n++;
        assert_int_equal(lf_block(&f, txs, lens, n, NULL), MN_OK);
    }
    mn_ledger_root(f.l, root);
    uint8_t id[32], *buf;
    lf_id(id, 'c', 1);
    assert_int_equal(mn_store_get_record(f.store, id, &buf, rec1_len), MN_OK);
    assert_true(*rec1_len <= 512);
    memcpy(rec1, buf, *rec1_len);
    free(buf);
    lf_close(&f);
}

static void same_blocks_give_identical_state(void **state) {
    (void)state;
    uint8_t r1[32], r2[32], r3[32], a[512], b[512], c[512];
    size_t al, bl, cl;
    scenario(r1, a, &al, 99);
    scenario(r2, b, &bl, 99);
    scenario(r3, c, &cl, 3);
    assert_memory_equal(r1, r2, 32);
    assert_memory_equal(r1, r3, 32);
    assert_int_equal(al, bl);
    assert_memory_equal(a, b, al);
    assert_int_equal(al, cl);
    assert_memory_equal(a, c, al);
    uint8_t zero[32] = {0};
    assert_memory_not_equal(r1, zero, 32);
}

static void state_survives_reopen(void **state) {
    lf_fixture *f = *state;
    assert_int_equal(issue(f, "mois", 1, LF_RESIDENT, 1, 1, "skt"), TXC(OK));
    uint8_t root[32], root2[32];
    mn_ledger_root(f->l, root);
    lf_close_store(f);
    assert_int_equal(lf_open_store(f), MN_OK);
    mn_ledger_root(f->l, root2);
    assert_memory_equal(root, root2, 32);
    assert_int_equal(mn_ledger_height(f->l), 1);
    assert_int_equal(cred_op(f, "mois", SUSPEND, 1), TXC(OK));
    assert_int_equal(status(f, 1), ST(SUSPENDED));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(issue_creates_active_record_with_history, setup, teardown),
        cmocka_unit_test_setup_teardown(authorisation_table_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(authorisation_table_issuer_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(transitions_and_final_states, setup, teardown),
        cmocka_unit_test_setup_teardown(reissue_supersedes_old_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(loss_report_touches_only_own_carrier, setup, teardown),
        cmocka_unit_test_setup_teardown(nonces_replays_and_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(chain_signer_and_shape_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(sig_checked_flag_skips_only_the_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_tx_leaves_block_untouched_and_device_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(refusal_in_a_block_keeps_the_overlay, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_is_derived_from_header_time, setup, teardown),
        cmocka_unit_test_setup_teardown(proofs_verify_against_the_root, setup, teardown),
        cmocka_unit_test_setup_teardown(no_tree_node_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(issuances_take_leaf_keys_from_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(the_tree_built_from_the_store_is_the_committed_one, setup, teardown),
        cmocka_unit_test_setup_teardown(records_that_miss_the_stored_root_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_ledger_follows_commits_made_by_another, setup, teardown),
        cmocka_unit_test_setup_teardown(status_changes_are_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(status_proof_carries_header_and_certificate, setup, teardown),
        cmocka_unit_test(same_blocks_give_identical_state),
        cmocka_unit_test_setup_teardown(state_survives_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
