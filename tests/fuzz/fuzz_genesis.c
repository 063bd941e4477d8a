/* Fuzz target: genesis parsing (mn_genesis_parse).
 *
 * A genesis that parses must dump (mn_genesis_dump) and parse again to the
 * same chain id and member and validator counts, and its validator set must
 * load (mn_valset_from_genesis): what the parser accepts, the node can use. */
#include "fuzz_common.h"

#include "cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    mn_genesis *g = NULL;
    char err[256];
    if (mn_genesis_parse(&g, (const char *)data, size, err, sizeof err) != MN_OK) {
        if (g) abort(); /* nothing handed out on failure */
        return 0;
    }
    char *json = NULL;
    if (mn_genesis_dump(g, &json, err, sizeof err) != MN_OK) abort();
    mn_genesis *g2 = NULL;
    if (mn_genesis_parse(&g2, json, strlen(json), err, sizeof err) != MN_OK) abort();
    if (strcmp(g->chain_id, g2->chain_id) != 0 || g->member_count != g2->member_count ||
        g->validator_count != g2->validator_count)
        abort();
    mn_valset vs;
    if (g->validator_count > 0 && mn_valset_from_genesis(&vs, g) != MN_OK) abort();
    free(json);
    mn_genesis_free(g2);
    mn_genesis_free(g);
    return 0;
}
