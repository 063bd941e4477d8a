/* A bank's program in miniature: links only libmidclient.a (plus
 * libsecp256k1, libcrypto, libprotobuf-c), signs a transaction, and sees a
 * refused connection reported as an error rather than a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "crypto.h"

int main(int argc, char **argv)
{
    const char *node = argc > 1 ? argv[1] : "127.0.0.1:1";
    uint8_t sk[MN_SECKEY_LEN], pk[MN_PUBKEY_LEN], hash[MN_HASH_LEN];
    if (mn_key_generate(sk) != MN_OK || mn_key_pubkey(pk, sk) != MN_OK) {
        printf("not ok - key\n");
        return 1;
    }
    printf("ok - key generated\n");
    Midnode__TxPayload body = MIDNODE__TX_PAYLOAD__INIT;
    Midnode__ReportLossBody loss = MIDNODE__REPORT_LOSS_BODY__INIT;
    uint8_t device[MN_ID_LEN];
    memset(device, 7, sizeof device);
    loss.device_ref.data = device;
    loss.device_ref.len = sizeof device;
    body.body_case = MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS;
    body.report_loss = &loss;
    uint8_t *tx = NULL;
    size_t tx_len = 0;
    if (mn_client_build_tx(&tx, &tx_len, hash, "midnode-testnet", "skt", 1, &body, sk) != MN_OK || tx_len == 0) {
        printf("not ok - build_tx\n");
        return 1;
    }
    printf("ok - transaction built and signed (%zu bytes)\n", tx_len);
    free(tx);
    mn_client *c = NULL;
    char err[256] = "";
    int rc = mn_client_connect(&c, node, 500, err, sizeof err);
    if (rc == MN_OK) {
        printf("not ok - connected to %s, expected a refusal\n", node);
        mn_client_free(c);
        return 1;
    }
    printf("ok - refused connection reported: %s\n", err);
    return 0;
}
