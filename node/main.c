/* midnode: the daemon's entry point. Parses the command line, prepares a
 * --dev home when asked, then runs one node until SIGTERM or SIGINT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "node.h"
#include "testnet.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: midnode --home DIR          run the node whose home directory is DIR\n"
            "       midnode --dev [--home DIR]  a one-validator chain with the default members\n"
            "                                   (home defaults to ./midnode-dev)\n"
            "options: --log-level debug|info|warn|error\n"
            "         --import-snapshot FILE    start an empty node from a certified state snapshot\n"
            "                                   (checked as by `midctl snapshot import`; ignored once\n"
            "                                   the node holds a chain)\n");
}

int main(int argc, char **argv)
{
    const char *home = NULL;
    const char *log_level = NULL;
    const char *snapshot = NULL;
    int dev = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
            home = argv[++i];
        } else if (strcmp(argv[i], "--dev") == 0) {
            dev = 1;
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            log_level = argv[++i];
        } else if (strcmp(argv[i], "--import-snapshot") == 0 && i + 1 < argc) {
            snapshot = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "midnode: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (log_level && mn_log_set_level(log_level) != MN_OK) {
        fprintf(stderr, "midnode: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    if (!home && !dev) {
        usage(stderr);
        return 2;
    }
    if (mn_crypto_init() != MN_OK) {
        fprintf(stderr, "midnode: cannot initialise the secp256k1 context\n");
        return 1;
    }
    char err[512] = "";
    if (dev) {
        if (!home) home = "midnode-dev";
        if (mn_testnet_dev(home, err, sizeof err) != MN_OK) {
            fprintf(stderr, "midnode: --dev: %s\n", err);
            return 1;
        }
    }
    mn_node *node = NULL;
    if (mn_node_open(&node, home, log_level, snapshot, err, sizeof err) != MN_OK) {
        LOG_ERROR("start_failed", "home=%s reason=\"%s\"", home, err);
        fprintf(stderr, "midnode: %s\n", err);
        return 1;
    }
    int rc = mn_node_run(node);
    mn_node_free(node);
    return rc == MN_OK ? 0 : 1;
}
