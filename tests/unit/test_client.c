/* test_client.c: the blocking client (addresses, timeouts, size bounds, the
 * typed helpers against a fake node) and signed transaction building. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "crypto.h"
#include "fake_node.h"

static void addresses_parse_or_are_refused(void **state) {
    (void)state;
    char host[64];
    uint16_t port = 0;
    assert_int_equal(mn_client_parse_addr(host, sizeof host, &port, "127.0.0.1:26601"), MN_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 26601);
    assert_int_equal(mn_client_parse_addr(host, sizeof host, &port, "[::1]:80"), MN_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(mn_client_parse_addr(host, sizeof host, &port, "mois:1"), MN_OK);
    const char *bad[] = {"", "host", ":80", "h:", "h:0", "h:65536", "h:8o", "::1:80", "h:123456", "[]:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mn_client_parse_addr(host, sizeof host, &port, bad[i]) != MN_EINVAL) fail_msg("accepted \"%s\"", bad[i]);
    char tiny[4];
    assert_int_equal(mn_client_parse_addr(tiny, sizeof tiny, &port, "localhost:1"), MN_EINVAL);
}

/* A listening socket that never answers (the kernel completes connects). */
static int silent_listener(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void connect_failures_are_reported(void **state) {
    (void)state;
    uint16_t port;
    int fd = silent_listener(&port);
    close(fd); /* now nothing listens there */
    char addr[64], err[256] = "";
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    mn_client *c = NULL;
    assert_int_equal(mn_client_connect(&c, addr, 1000, err, sizeof err), MN_EIO);
    assert_null(c);
    assert_non_null(strstr(err, "refused"));
    assert_int_equal(mn_client_connect(&c, "nonsense", 1000, err, sizeof err), MN_EINVAL);
    assert_non_null(strstr(err, "HOST:PORT"));
    mn_client_free(NULL);
}

static void silent_server_times_out_and_huge_frame_is_refused(void **state) {
    (void)state;
    uint16_t port;
    int lfd = silent_listener(&port);
    char addr[64], err[256] = "";
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    mn_client *c = NULL;
    assert_int_equal(mn_client_connect(&c, addr, 150, err, sizeof err), MN_OK);
    int sfd0 = accept(lfd, NULL, NULL); /* accepted, never answered */
    assert_true(sfd0 >= 0);
    Midnode__RpcResponse *r = NULL;
    assert_int_equal(mn_client_call(c, MN_RPC_GET_CHAIN_INFO, NULL, 0, &r), MN_EIO);
    assert_null(r);
    assert_int_equal(mn_client_last(c)->code, -1);
    assert_non_null(strstr(mn_client_last(c)->message, "timed out"));
    /* Once broken, the connection stays unusable. */
    uint64_t id;
    assert_int_equal(mn_client_send(c, &id, MN_RPC_GET_CHAIN_INFO, NULL, 0), MN_EIO);
    mn_client_free(c);
    close(sfd0);

    assert_int_equal(mn_client_connect(&c, addr, 2000, err, sizeof err), MN_OK);
    int sfd = accept(lfd, NULL, NULL);
    assert_true(sfd >= 0);
    const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(write(sfd, huge, 4), 4);
    assert_int_equal(mn_client_recv(c, &r), MN_ETOOBIG);
    mn_client_free(c);
    close(sfd);

    /* A frame that is not an RpcResponse. */
    assert_int_equal(mn_client_connect(&c, addr, 2000, err, sizeof err), MN_OK);
    sfd = accept(lfd, NULL, NULL);
    assert_true(sfd >= 0);
    const uint8_t junk[7] = {0, 0, 0, 3, 0x07, 0xff, 0xff};
    assert_int_equal(write(sfd, junk, sizeof junk), (ssize_t)sizeof junk);
    assert_int_equal(mn_client_recv(c, &r), MN_ECORRUPT);
    mn_client_free(c);
    close(sfd);
    close(lfd);
}

static void built_tx_signs_exact_payload_bytes(void **state) {
    (void)state;
    uint8_t sk[32], pk[33];
    assert_int_equal(mn_key_generate(sk), MN_OK);
    assert_int_equal(mn_key_pubkey(pk, sk), MN_OK);
    uint8_t cred[32];
    memset(cred, 0x42, sizeof cred);
    Midnode__RevokeBody rb = MIDNODE__REVOKE_BODY__INIT;
    rb.credential_id = (ProtobufCBinaryData){32, cred};
    rb.reason = (char *)"phone stolen";
    Midnode__TxPayload body = MIDNODE__TX_PAYLOAD__INIT;
    body.body_case = MIDNODE__TX_PAYLOAD__BODY_REVOKE;
    body.revoke = &rb;
    body.nonce = 999; /* ignored */
    uint8_t *tx = NULL, h[32];
    size_t len = 0;
    assert_int_equal(mn_client_build_tx(&tx, &len, h, "chain-x", "mois", 7, &body, sk), MN_OK);
    uint8_t h2[32];
    mn_sha256(h2, tx, len);
    assert_memory_equal(h, h2, 32);
    Midnode__Tx *t = midnode__tx__unpack(NULL, len, tx);
    assert_non_null(t);
    assert_int_equal(t->signature.len, 64);
    uint8_t digest[32];
    mn_sha256(digest, t->payload.data, t->payload.len);
    assert_true(mn_verify(t->signature.data, digest, pk));
    Midnode__TxPayload *p = midnode__tx_payload__unpack(NULL, t->payload.len, t->payload.data);
    assert_non_null(p);
    assert_string_equal(p->chain_id, "chain-x");
    assert_string_equal(p->signer, "mois");
    assert_int_equal(p->nonce, 7);
    assert_int_equal(p->body_case, MIDNODE__TX_PAYLOAD__BODY_REVOKE);
    assert_string_equal(p->revoke->reason, "phone stolen");
    assert_memory_equal(p->revoke->credential_id.data, cred, 32);
    midnode__tx_payload__free_unpacked(p, NULL);
    midnode__tx__free_unpacked(t, NULL);
    free(tx);

    /* Refusals. */
    Midnode__TxPayload empty = MIDNODE__TX_PAYLOAD__INIT;
    assert_int_equal(mn_client_build_tx(&tx, &len, NULL, "c", "mois", 1, &empty, sk), MN_EINVAL);
    assert_null(tx);
    assert_int_equal(mn_client_build_tx(&tx, &len, NULL, "c", "a-signer-id-that-is-far-too-long-to-be-real", 1,
                                        &body, sk),
                     MN_EINVAL);
    char *huge = malloc(MN_TX_BYTES_MAX + 1);
    assert_non_null(huge);
    memset(huge, 'x', MN_TX_BYTES_MAX);
    huge[MN_TX_BYTES_MAX] = 0;
    rb.reason = huge;
    assert_int_equal(mn_client_build_tx(&tx, &len, NULL, "c", "mois", 1, &body, sk), MN_ETOOBIG);
    assert_null(tx);
    free(huge);
    mn_cleanse(sk, sizeof sk);
}

static fake_node g_node;
static uint8_t g_sk[32];

static mn_client *fake_connect(void) {
    mn_client *c = NULL;
    char err[256] = "";
    assert_int_equal(mn_client_connect(&c, g_node.lt.addr, 5000, err, sizeof err), MN_OK);
    return c;
}

static int setup_node(void **state) {
    (void)state;
    memset(&g_node, 0, sizeof g_node);
    uint8_t pk[33];
    if (mn_key_generate(g_sk) != MN_OK || mn_key_pubkey(pk, g_sk) != MN_OK) return -1;
    fn_add_signer(&g_node, "mois", pk);
    fn_add_signer(&g_node, "skt", pk);
    fn_start(&g_node);
    return 0;
}

static int teardown_node(void **state) {
    (void)state;
    return fn_stop(&g_node) == 0 ? 0 : -1;
}

static uint8_t *issue_tx(size_t *len, uint8_t h[32], uint64_t nonce, const uint8_t cred[32], const uint8_t dev[32]) {
    Midnode__IssueBody ib = MIDNODE__ISSUE_BODY__INIT;
    ib.credential_id = (ProtobufCBinaryData){32, (uint8_t *)cred};
    ib.holder_ref = (ProtobufCBinaryData){32, (uint8_t *)cred};
    ib.device_ref = (ProtobufCBinaryData){32, (uint8_t *)dev};
    ib.type = MIDNODE__CREDENTIAL_TYPE__RESIDENT;
    ib.carrier = (char *)"skt";
    Midnode__TxPayload body = MIDNODE__TX_PAYLOAD__INIT;
    body.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE;
    body.issue = &ib;
    uint8_t *tx = NULL;
    assert_int_equal(mn_client_build_tx(&tx, len, h, FN_CHAIN, "mois", nonce, &body, g_sk), MN_OK);
    return tx;
}

static void typed_helpers_round_trip_through_a_fake_node(void **state) {
    (void)state;
    mn_client *c = fake_connect();
    Midnode__GetChainInfoResponse *ci = NULL;
    assert_int_equal(mn_client_get_chain_info(c, &ci), MN_OK);
    assert_string_equal(ci->chain_id, FN_CHAIN);
    uint64_t h0 = ci->height;
    midnode__get_chain_info_response__free_unpacked(ci, NULL);

    Midnode__GetSignerResponse *si = NULL;
    assert_int_equal(mn_client_get_signer(c, "nobody", &si), MN_ENOTFOUND);
    assert_null(si);
    assert_int_equal(mn_client_last(c)->code, MIDNODE__RPC_CODE__RPC_NOT_FOUND);
    assert_int_equal(mn_client_get_signer(c, "mois", &si), MN_OK);
    uint64_t nonce = si->next_nonce;
    midnode__get_signer_response__free_unpacked(si, NULL);

    uint8_t cred[32], dev[32], h[32];
    assert_int_equal(mn_random_bytes(cred, 32), MN_OK);
    assert_int_equal(mn_random_bytes(dev, 32), MN_OK);
    size_t len;
    uint8_t *tx = issue_tx(&len, h, nonce, cred, dev);
    Midnode__SubmitTxResponse *sr = NULL;
    assert_int_equal(mn_client_submit_tx(c, tx, len, true, 1000, &sr), MN_OK);
    assert_memory_equal(sr->tx_hash.data, h, 32);
    assert_int_equal(sr->height, h0 + 1);
    midnode__submit_tx_response__free_unpacked(sr, NULL);
    /* The same nonce again is refused with the ledger's reason. */
    assert_int_equal(mn_client_submit_tx(c, tx, len, false, 0, &sr), MN_EPERM);
    assert_int_equal(mn_client_last(c)->code, MIDNODE__RPC_CODE__RPC_TX_REJECTED);
    assert_int_equal(mn_client_last(c)->tx_code, MIDNODE__TX_CODE__TX_WRONG_NONCE);
    assert_string_equal(mn_tx_code_name(mn_client_last(c)->tx_code), "TX_WRONG_NONCE");
    free(tx);

    Midnode__GetStatusResponse *st = NULL;
    assert_int_equal(mn_client_get_status(c, cred, true, &st), MN_OK);
    assert_int_equal(st->status, MIDNODE__CREDENTIAL_STATUS__ACTIVE);
    assert_non_null(st->record);
    assert_string_equal(st->record->issuer, "mois");
    assert_non_null(st->proof);
    midnode__get_status_response__free_unpacked(st, NULL);

    uint8_t ids[2][32];
    memcpy(ids[0], cred, 32);
    memset(ids[1], 0, 32);
    Midnode__GetStatusBatchResponse *sb = NULL;
    assert_int_equal(mn_client_get_status_batch(c, (const uint8_t(*)[32])ids, 2, false, &sb), MN_OK);
    assert_int_equal(sb->n_statuses, 2);
    assert_int_equal(sb->statuses[0]->status, MIDNODE__CREDENTIAL_STATUS__ACTIVE);
    assert_int_equal(sb->statuses[1]->status, MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN);
    midnode__get_status_batch_response__free_unpacked(sb, NULL);
    assert_int_equal(mn_client_get_status_batch(c, NULL, MN_STATUS_BATCH_MAX + 1, false, &sb), MN_EINVAL);

    Midnode__GetBlockResponse *gb = NULL;
    assert_int_equal(mn_client_get_block(c, 0, &gb), MN_OK);
    assert_int_equal(gb->block->n_txs, 1);
    assert_non_null(gb->commit);
    midnode__get_block_response__free_unpacked(gb, NULL);
    assert_int_equal(mn_client_get_block(c, 1000000, &gb), MN_ENOTFOUND);

    Midnode__GetTxResponse *gt = NULL;
    assert_int_equal(mn_client_get_tx(c, h, &gt), MN_OK);
    assert_int_equal(gt->height, h0 + 1);
    midnode__get_tx_response__free_unpacked(gt, NULL);

    uint64_t wid;
    assert_int_equal(mn_client_watch_start(c, h0 + 1, &wid), MN_OK);
    Midnode__StatusChange *sc = NULL;
    assert_int_equal(mn_client_watch_next(c, wid, &sc), MN_OK);
    assert_memory_equal(sc->credential_id.data, cred, 32);
    assert_string_equal(sc->kind, "issue");
    midnode__status_change__free_unpacked(sc, NULL);
    assert_int_equal(mn_client_watch_next(c, wid, &sc), MN_ENOTFOUND);
    mn_client_free(c);
}

static void codes_map_and_name(void **state) {
    (void)state;
    assert_int_equal(mn_client_code_to_err(MIDNODE__RPC_CODE__RPC_OK), MN_OK);
    assert_int_equal(mn_client_code_to_err(MIDNODE__RPC_CODE__RPC_OVERLOADED), MN_EAGAIN);
    assert_int_equal(mn_client_code_to_err(MIDNODE__RPC_CODE__RPC_TOO_LARGE), MN_ETOOBIG);
    assert_int_equal(mn_client_code_to_err(MIDNODE__RPC_CODE__RPC_INTERNAL), MN_ESTATE);
    assert_string_equal(mn_rpc_code_name(MIDNODE__RPC_CODE__RPC_NOT_FOUND), "RPC_NOT_FOUND");
    assert_string_equal(mn_rpc_code_name(12345), "?");
    assert_string_equal(mn_status_name(MIDNODE__CREDENTIAL_STATUS__SUPERSEDED), "SUPERSEDED");
    assert_string_equal(mn_status_name(-1), "?");
}

int main(void) {
    mn_log_threshold = MN_LOG_ERROR; /* the servers' INFO lines are noise here */
    if (mn_crypto_init() != MN_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses_parse_or_are_refused),
        cmocka_unit_test(connect_failures_are_reported),
        cmocka_unit_test(silent_server_times_out_and_huge_frame_is_refused),
        cmocka_unit_test(built_tx_signs_exact_payload_bytes),
        cmocka_unit_test_setup_teardown(typed_helpers_round_trip_through_a_fake_node, setup_node, teardown_node),
        cmocka_unit_test(codes_map_and_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
