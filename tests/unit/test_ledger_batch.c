/* test_ledger_batch.c: ISSUE_BATCH, many issuances under one signature:
 * each item under exactly the ISSUE rules, in order, all or nothing, with
 * the refused item's index in the message; bounds on items and bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ledger_fixture.h"
#include "smt.h"

#define ST(x) MIDNODE__CREDENTIAL_STATUS__##x
#define TXC(x) MIDNODE__TX_CODE__TX_##x

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

/* The ids of a batch: item i is credential base+i of holder base+i on
 * device base+i, carrier skt/kt/lgu in turn, unless a test changes them. */
typedef struct batch {
    size_t n;
    Midnode__IssueBody *bodies;
    Midnode__IssueBody **items;
    uint8_t (*ids)[3][32];
} batch;

static const char *carriers[] = {"skt", "kt", "lgu"};

static void batch_init(batch *b, size_t n, uint32_t base, int type) {
    b->n = n;
    b->bodies = calloc(n ? n : 1, sizeof *b->bodies);
    b->items = calloc(n ? n : 1, sizeof(Midnode__IssueBody *));
    b->ids = calloc(n ? n : 1, sizeof *b->ids);
    assert_non_null(b->bodies);
    assert_non_null(b->items);
    assert_non_null(b->ids);
    for (size_t i = 0; i < n; i++) {
        Midnode__IssueBody *x = &b->bodies[i];
        midnode__issue_body__init(x);
        lf_id(b->ids[i][0], 'c', base + (uint32_t)i);
        lf_id(b->ids[i][1], 'h', base + (uint32_t)i);
        lf_id(b->ids[i][2], 'd', base + (uint32_t)i);
        x->credential_id = (ProtobufCBinaryData){32, b->ids[i][0]};
        x->holder_ref = (ProtobufCBinaryData){32, b->ids[i][1]};
        x->device_ref = (ProtobufCBinaryData){32, b->ids[i][2]};
        x->type = (Midnode__CredentialType)type;
        x->carrier = (char *)carriers[i % 3];
        b->items[i] = x;
    }
}

static void batch_free(batch *b) {
    free(b->bodies);
    free(b->items);
    free(b->ids);
}

static void batch_sign(lf_fixture *f, const char *signer, batch *b, uint8_t **tx, size_t *len) {
    Midnode__TxPayload p;
    Midnode__IssueBatchBody body = MIDNODE__ISSUE_BATCH_BODY__INIT;
    lf_payload(&p, signer);
    body.n_items = b->n;
    body.items = b->items;
    p.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH;
    p.issue_batch = &body;
    lf_sign(f, &p, tx, len);
}

/* Executes tx alone in a block and commits it; returns its code, msg the reason. */
static int run_one(lf_fixture *f, uint8_t *tx, size_t len, char *msg, size_t msg_len, size_t *changes) {
    mn_exec *e = mn_exec_begin(f->l, mn_ledger_height(f->l) + 1, f->time_ms);
    assert_non_null(e);
    int code = mn_exec_apply_tx(e, tx, len, msg, msg_len);
    size_t n = 0;
    (void)mn_exec_changes(e, &n);
    if (changes) *changes = n;
    uint8_t root[32];
    assert_int_equal(mn_exec_finish(e, root), MN_OK);
    assert_int_equal(mn_exec_commit(e, (const uint8_t *)"b", 1, NULL, 0), MN_OK);
    mn_exec_free(e);
    f->time_ms += 1000;
    free(tx);
    return code;
}

static int status_of(lf_fixture *f, uint32_t n) {
    uint8_t id[32];
    lf_id(id, 'c', n);
    return lf_status(f, id);
}

static void accepted_batch_issues_every_item(void **state) {
    lf_fixture *f = *state;
    batch b;
    batch_init(&b, MN_BATCH_ITEMS_MAX, 1, LF_RESIDENT);
    uint8_t *tx;
    size_t len;
    batch_sign(f, "mois", &b, &tx, &len);
    assert_true(len > MN_TX_BYTES_MAX);
    assert_true(len <= MN_TX_BATCH_BYTES_MAX);
    char msg[MN_TX_MSG_MAX];
    mn_tx_info info;
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, &info, msg, sizeof msg), TXC(OK));
    assert_int_equal(info.kind, MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH);
    uint8_t hash[32];
    memcpy(hash, info.hash, 32);

    mn_exec *e = mn_exec_begin(f->l, 1, f->time_ms);
    assert_non_null(e);
    assert_int_equal(mn_exec_apply_tx(e, tx, len, msg, sizeof msg), TXC(OK));
    size_t nc = 0;
    const mn_status_change *c = mn_exec_changes(e, &nc);
    assert_int_equal(nc, MN_BATCH_ITEMS_MAX);
    for (size_t i = 0; i < nc; i++) {
        assert_string_equal(c[i].kind, "issue");
        assert_int_equal(c[i].status, ST(ACTIVE));
        assert_int_equal(c[i].previous, ST(STATUS_UNKNOWN));
        assert_memory_equal(c[i].credential_id, b.ids[i][0], 32);
        assert_memory_equal(c[i].tx_hash, hash, 32);
        assert_string_equal(c[i].signer, "mois");
    }
    uint8_t root[32];
    assert_int_equal(mn_exec_finish(e, root), MN_OK);
    assert_int_equal(mn_exec_commit(e, (const uint8_t *)"b", 1, NULL, 0), MN_OK);
    mn_exec_free(e);
    free(tx);

    for (uint32_t i = 0; i < MN_BATCH_ITEMS_MAX; i++) assert_int_equal(status_of(f, 1 + i), ST(ACTIVE));
    Midnode__CredentialRecord *r = NULL;
    assert_int_equal(mn_ledger_get_record(f->l, b.ids[999][0], &r), MN_OK);
    assert_memory_equal(r->issued_tx.data, hash, 32);
    assert_string_equal(r->issuer, "mois");
    assert_string_equal(r->carrier, carriers[999 % 3]);
    assert_int_equal(r->issued_height, 1);
    midnode__credential_record__free_unpacked(r, NULL);
    /* One signature, one nonce. */
    uint64_t nonce = 0;
    assert_int_equal(mn_ledger_get_nonce(f->l, "mois", &nonce), MN_OK);
    assert_int_equal(nonce, 1);
    /* Proofs of batch-issued credentials verify like any other. */
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    uint64_t at = 0;
    Midnode__MerkleProof mp = MIDNODE__MERKLE_PROOF__INIT;
    assert_int_equal(mn_ledger_prove(f->l, b.ids[500][0], &rec, &rec_len, &mp, &at), MN_OK);
    assert_true(rec_len > 0);
    assert_int_equal(at, 1);
    uint8_t kh[32];
    mn_smt_key_credential(kh, b.ids[500][0]);
    mn_ledger_root(f->l, root);
    const char *why = NULL;
    assert_int_equal(mn_smt_verify(root, kh, rec, rec_len, &mp, &why), MN_OK);
    mn_smt_proof_clear(&mp);
    free(rec);
    batch_free(&b);
}

static void refusal_of_one_item_refuses_all(void **state) {
    lf_fixture *f = *state;
    /* Credential 501 exists already: item 500 of a batch starting at 1 repeats it. */
    batch one;
    batch_init(&one, 1, 501, LF_RESIDENT);
    uint8_t *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    batch_sign(f, "mois", &one, &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(OK));
    batch_free(&one);

    batch b;
    batch_init(&b, MN_BATCH_ITEMS_MAX, 1, LF_RESIDENT);
    batch_sign(f, "mois", &b, &tx, &len);
    /* Admission cannot see it (it depends on state), execution does. */
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(OK));
    uint8_t root_before[32], root_after[32];
    mn_ledger_root(f->l, root_before);
    size_t nc = 99;
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, &nc), TXC(CREDENTIAL_EXISTS));
    assert_non_null(strstr(msg, "item 500:"));
    assert_int_equal(nc, 0);
    /* Nothing of the batch happened: not item 0, not item 499, not item 999. */
    assert_int_equal(status_of(f, 1), ST(STATUS_UNKNOWN));
    assert_int_equal(status_of(f, 500), ST(STATUS_UNKNOWN));
    assert_int_equal(status_of(f, 1000), ST(STATUS_UNKNOWN));
    assert_int_equal(status_of(f, 501), ST(ACTIVE));
    /* The block with the refused tx changed nothing but the height. */
    mn_ledger_root(f->l, root_after);
    assert_memory_equal(root_before, root_after, 32);
    uint64_t nonce = 0;
    assert_int_equal(mn_ledger_get_nonce(f->l, "mois", &nonce), MN_OK);
    assert_int_equal(nonce, 1);
    /* Without the repeated item, the same nonce is accepted. */
    lf_unuse_nonce(f, "mois");
    b.items[500] = b.items[999];
    b.n = 999;
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, &nc), TXC(OK));
    assert_int_equal(nc, 999);
    assert_int_equal(status_of(f, 1), ST(ACTIVE));
    assert_int_equal(status_of(f, 1000), ST(ACTIVE));
    batch_free(&b);
}

static void wrong_type_in_item_500(void **state) {
    lf_fixture *f = *state;
    batch b;
    batch_init(&b, MN_BATCH_ITEMS_MAX, 1, LF_RESIDENT);
    b.bodies[500].type = (Midnode__CredentialType)LF_DRIVER; /* mois may issue resident only */
    uint8_t *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(ROLE_NOT_ALLOWED));
    assert_non_null(strstr(msg, "item 500:"));
    assert_non_null(strstr(msg, "driver"));
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(ROLE_NOT_ALLOWED));
    assert_non_null(strstr(msg, "item 500:"));
    assert_int_equal(status_of(f, 1), ST(STATUS_UNKNOWN));
    assert_int_equal(status_of(f, 501), ST(STATUS_UNKNOWN));
    batch_free(&b);
}

static void duplicate_id_within_the_batch(void **state) {
    lf_fixture *f = *state;
    batch b;
    batch_init(&b, 10, 1, LF_RESIDENT);
    b.bodies[7].credential_id = b.bodies[3].credential_id;
    uint8_t *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(CREDENTIAL_EXISTS));
    assert_non_null(strstr(msg, "item 7:"));
    assert_int_equal(status_of(f, 4), ST(STATUS_UNKNOWN));
    batch_free(&b);
}

static void supersede_inside_a_batch(void **state) {
    lf_fixture *f = *state;
    batch b;
    batch_init(&b, 3, 1, LF_RESIDENT);
    /* Item 2 reissues item 0's holder on another phone. */
    b.bodies[2].holder_ref = b.bodies[0].holder_ref;
    uint8_t *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    batch_sign(f, "mois", &b, &tx, &len);
    mn_exec *e = mn_exec_begin(f->l, 1, f->time_ms);
    assert_non_null(e);
    assert_int_equal(mn_exec_apply_tx(e, tx, len, msg, sizeof msg), TXC(OK));
    size_t nc = 0;
    const mn_status_change *c = mn_exec_changes(e, &nc);
    assert_int_equal(nc, 4);
    assert_string_equal(c[0].kind, "issue");
    assert_string_equal(c[1].kind, "issue");
    assert_string_equal(c[2].kind, "supersede");
    assert_memory_equal(c[2].credential_id, b.ids[0][0], 32);
    assert_int_equal(c[2].previous, ST(ACTIVE));
    assert_int_equal(c[2].status, ST(SUPERSEDED));
    assert_string_equal(c[3].kind, "issue");
    assert_memory_equal(c[3].credential_id, b.ids[2][0], 32);
    uint8_t root[32];
    assert_int_equal(mn_exec_finish(e, root), MN_OK);
    assert_int_equal(mn_exec_commit(e, (const uint8_t *)"b", 1, NULL, 0), MN_OK);
    mn_exec_free(e);
    free(tx);
    assert_int_equal(status_of(f, 1), ST(SUPERSEDED));
    assert_int_equal(status_of(f, 2), ST(ACTIVE));
    assert_int_equal(status_of(f, 3), ST(ACTIVE));
    Midnode__CredentialRecord *r = NULL;
    assert_int_equal(mn_ledger_get_record(f->l, b.ids[0][0], &r), MN_OK);
    assert_int_equal(r->superseded_by.len, 32);
    assert_memory_equal(r->superseded_by.data, b.ids[2][0], 32);
    midnode__credential_record__free_unpacked(r, NULL);
    batch_free(&b);
}

static void device_limit_counts_earlier_items(void **state) {
    lf_fixture *f = *state;
    batch b;
    batch_init(&b, MN_DEVICE_LIVE_MAX + 1, 1, LF_RESIDENT);
    for (size_t i = 0; i < b.n; i++) b.bodies[i].device_ref = b.bodies[0].device_ref;
    uint8_t *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(TOO_LARGE));
    char want[32];
    snprintf(want, sizeof want, "item %d:", MN_DEVICE_LIVE_MAX);
    assert_non_null(strstr(msg, want));
    assert_int_equal(status_of(f, 1), ST(STATUS_UNKNOWN));
    /* One fewer fits. */
    lf_unuse_nonce(f, "mois");
    b.n = MN_DEVICE_LIVE_MAX;
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(OK));
    assert_int_equal(status_of(f, MN_DEVICE_LIVE_MAX), ST(ACTIVE));
    batch_free(&b);
}

static void lost_device_item_starts_suspended(void **state) {
    lf_fixture *f = *state;
    batch b;
    batch_init(&b, 1, 1, LF_RESIDENT);
    uint8_t *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(OK));
    lf_device_op(f, "skt", 1, b.ids[0][2], &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(OK));
    batch c;
    batch_init(&c, 2, 10, LF_RESIDENT);
    c.bodies[1].device_ref = b.bodies[0].device_ref;
    c.bodies[1].carrier = (char *)"skt";
    batch_sign(f, "mois", &c, &tx, &len);
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(OK));
    assert_int_equal(status_of(f, 10), ST(ACTIVE));
    assert_int_equal(status_of(f, 11), ST(SUSPENDED));
    batch_free(&b);
    batch_free(&c);
}

static void bounds_and_shape(void **state) {
    lf_fixture *f = *state;
    uint8_t *tx;
    size_t len;
    char msg[MN_TX_MSG_MAX];
    /* Too many items. */
    batch b;
    batch_init(&b, MN_BATCH_ITEMS_MAX + 1, 1, LF_RESIDENT);
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(TOO_LARGE));
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(TOO_LARGE));
    lf_unuse_nonce(f, "mois");
    /* No items. */
    b.n = 0;
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(MALFORMED));
    free(tx);
    lf_unuse_nonce(f, "mois");
    /* A malformed item names its index. */
    b.n = 20;
    b.bodies[12].carrier = (char *)"mois"; /* not a carrier */
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(MALFORMED));
    assert_non_null(strstr(msg, "item 12:"));
    free(tx);
    lf_unuse_nonce(f, "mois");
    b.bodies[12].carrier = (char *)"kt";
    b.bodies[13].holder_ref.len = 31;
    batch_sign(f, "mois", &b, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(MALFORMED));
    assert_non_null(strstr(msg, "item 13:"));
    free(tx);
    lf_unuse_nonce(f, "mois");
    b.bodies[13].holder_ref.len = 32;
    /* A carrier may not issue, in a batch or not. */
    batch_sign(f, "skt", &b, &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(ROLE_NOT_ALLOWED));
    free(tx);
    lf_unuse_nonce(f, "skt");
    /* A wrong signature is refused once for the whole batch. */
    Midnode__TxPayload p;
    Midnode__IssueBatchBody body = MIDNODE__ISSUE_BATCH_BODY__INIT;
    lf_payload(&p, "mois");
    body.n_items = b.n;
    body.items = b.items;
    p.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH;
    p.issue_batch = &body;
    lf_sign_as(f, &p, "knpa", &tx, &len);
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(BAD_SIGNATURE));
    free(tx);
    lf_unuse_nonce(f, "mois");
    /* Over the batch byte bound, whatever it is. */
    uint8_t *big = calloc(1, MN_TX_BATCH_BYTES_MAX + 1);
    assert_non_null(big);
    assert_int_equal(mn_ledger_check_tx(f->l, big, MN_TX_BATCH_BYTES_MAX + 1, NULL, msg, sizeof msg),
                     TXC(TOO_LARGE));
    free(big);
    batch_free(&b);
}

static void only_a_batch_may_exceed_the_tx_bound(void **state) {
    lf_fixture *f = *state;
    /* An ISSUE padded past MN_TX_BYTES_MAX by an over-long carrier. */
    char *carrier = malloc(MN_TX_BYTES_MAX + 1);
    assert_non_null(carrier);
    memset(carrier, 'k', MN_TX_BYTES_MAX);
    carrier[MN_TX_BYTES_MAX] = '\0';
    uint8_t id[32], h[32], d[32], *tx;
    size_t len;
    lf_id(id, 'c', 1);
    lf_id(h, 'h', 1);
    lf_id(d, 'd', 1);
    lf_issue(f, "mois", id, LF_RESIDENT, h, d, carrier, 0, &tx, &len);
    assert_true(len > MN_TX_BYTES_MAX);
    char msg[MN_TX_MSG_MAX];
    assert_int_equal(mn_ledger_check_tx(f->l, tx, len, NULL, msg, sizeof msg), TXC(TOO_LARGE));
    assert_int_equal(run_one(f, tx, len, msg, sizeof msg, NULL), TXC(TOO_LARGE));
    free(carrier);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(accepted_batch_issues_every_item, setup, teardown),
        cmocka_unit_test_setup_teardown(refusal_of_one_item_refuses_all, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_type_in_item_500, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_id_within_the_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(supersede_inside_a_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(device_limit_counts_earlier_items, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_device_item_starts_suspended, setup, teardown),
        cmocka_unit_test_setup_teardown(bounds_and_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(only_a_batch_may_exceed_the_tx_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
