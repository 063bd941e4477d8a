/* midctl.c: the operator's and scripts' client: global options and the
 * command table. Each command lives in a tools/ctl_*.c file. */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "ctl.h"
#include "log.h"

mn_ctl_opts mn_ctl = {.node = MN_CLIENT_DEFAULT_NODE, .json = false, .timeout_ms = 30000};

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
} command;

static int testnet_dispatch(int argc, char **argv) {
    if (!mn_ctl_testnet) return mn_ctl_fail("NOT_BUILT", "testnet: not built");
    return mn_ctl_testnet(argc, argv);
}

static const command k_commands[] = {
    {"info", mn_ctl_info, "info"},
    {"issue", mn_ctl_tx,
     "issue --key FILE --type resident|driver|veteran|foreigner|overseas --credential HEX --holder HEX "
     "--device HEX --carrier ID [--expires RFC3339|SECONDS] [--not-before RFC3339|SECONDS] [--signer ID] [--wait]"},
    {"revoke", mn_ctl_tx, "revoke --key FILE --credential HEX [--reason TEXT] [--signer ID] [--wait]"},
    {"suspend", mn_ctl_tx, "suspend --key FILE --credential HEX [--signer ID] [--wait]"},
    {"resume", mn_ctl_tx, "resume --key FILE --credential HEX [--signer ID] [--wait]"},
    {"report-loss", mn_ctl_tx, "report-loss --key FILE --device HEX [--report-ref HEX] [--signer ID] [--wait]"},
    {"report-recovery", mn_ctl_tx, "report-recovery --key FILE --device HEX [--signer ID] [--wait]"},
    {"status", mn_ctl_status, "status HEX [--verify --genesis FILE [--max-age SECONDS]]"},
    {"watch", mn_ctl_watch, "watch [--from HEIGHT] [--count N]"},
    {"block", mn_ctl_block, "block HEIGHT (0: latest)"},
    {"keygen", mn_ctl_keygen, "keygen --out FILE"},
    {"pubkey", mn_ctl_pubkey, "pubkey --key FILE"},
    {"health", mn_ctl_health, "health --http HOST:PORT"},
    {"snapshot", mn_ctl_snapshot, "snapshot export|import --home DIR --file FILE (node stopped; import into an empty data dir)"},
    {"testnet", testnet_dispatch,
     "testnet --dir DIR [--validators N] [--observers M] [--base-port P] [--host H]"},
};
#define COMMAND_COUNT (sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: midctl [--node HOST:PORT] [--json] [--timeout MS] COMMAND ...\n"
               "default node %s; exit 0 done, 1 refused or failed, 2 usage\ncommands:\n",
            MN_CLIENT_DEFAULT_NODE);
    for (size_t i = 0; i < COMMAND_COUNT; i++) fprintf(f, "  %s\n", k_commands[i].usage);
}

/* Takes a global option at argv[*i] (with its value); returns 1 when taken,
 * 0 when argv[*i] is no global option, -1 on a bad value. */
static int take_global(int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (strcmp(a, "--json") == 0) {
        mn_ctl.json = true;
        return 1;
    }
    const char *val = NULL;
    bool is_node = false, is_timeout = false;
    if (strcmp(a, "--node") == 0 || strcmp(a, "--timeout") == 0) {
        if (*i + 1 >= argc) return -1;
        is_node = a[2] == 'n';
        is_timeout = !is_node;
        val = argv[++*i];
    } else if (strncmp(a, "--node=", 7) == 0) {
        is_node = true;
        val = a + 7;
    } else if (strncmp(a, "--timeout=", 10) == 0) {
        is_timeout = true;
        val = a + 10;
    } else {
        return 0;
    }
    if (is_node) {
        char host[256];
        uint16_t port;
        if (mn_client_parse_addr(host, sizeof host, &port, val) != MN_OK) return -1;
        mn_ctl.node = val;
    } else if (is_timeout) {
        uint64_t ms;
        if (mn_ctl_parse_u64(val, &ms) != MN_OK || ms == 0 || ms > 86400000) return -1;
        mn_ctl.timeout_ms = (uint32_t)ms;
    }
    return 1;
}

int main(int argc, char **argv) {
    mn_log_threshold = MN_LOG_WARN;
    if (mn_crypto_init() != MN_OK) {
        fprintf(stderr, "midctl: cannot initialise the crypto library\n");
        return MN_CTL_EXIT_FAIL;
    }
    /* Global options may come before or after the command; everything else
     * is handed to the command in its original order. */
    char *rest[256];
    int nrest = 0;
    const command *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (!cmd) {
                usage(stdout);
                return MN_CTL_EXIT_OK;
            }
        }
        int t = take_global(argc, argv, &i);
        if (t < 0) return mn_ctl_usage("bad value for %s", argv[i]);
        if (t > 0) continue;
        if (!cmd) {
            for (size_t k = 0; k < COMMAND_COUNT; k++)
                if (strcmp(argv[i], k_commands[k].name) == 0) cmd = &k_commands[k];
            if (!cmd) {
                usage(stderr);
                return mn_ctl_usage("unknown command \"%s\"", argv[i]);
            }
        }
        if (nrest == (int)(sizeof rest / sizeof rest[0]) - 1) return mn_ctl_usage("too many arguments");
        rest[nrest++] = argv[i];
    }
    if (!cmd) {
        usage(stderr);
        return mn_ctl_usage("no command given");
    }
    rest[nrest] = NULL;
    int rc = cmd->fn(nrest, rest);
    if (rc == MN_CTL_EXIT_USAGE) fprintf(stderr, "usage: midctl %s\n", cmd->usage);
    return rc;
}
