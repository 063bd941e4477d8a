/* ctl.h: midctl's commands, one function each, and what they share.
 *
 * Every command takes the arguments after its name (argv[0] is the command
 * name) and returns the process exit status: 0 done, 1 refused or failed,
 * 2 usage. Output goes to stdout (one JSON object with --json); reasons go
 * to stderr, or into the JSON object as {"error": "...", "code": "..."}. */
#ifndef MN_CTL_H
#define MN_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"
#include "mn.h"

#define MN_CTL_EXIT_OK 0
#define MN_CTL_EXIT_FAIL 1
#define MN_CTL_EXIT_USAGE 2

/* Global options, parsed by midctl.c before the command. */
typedef struct mn_ctl_opts {
    const char *node;   /* "host:port" of the RPC endpoint */
    bool json;
    uint32_t timeout_ms;
} mn_ctl_opts;

extern mn_ctl_opts mn_ctl;

/* `midctl testnet ...`: written in tools/ctl_testnet.c. Declared weak so
 * that midctl links without it and says "testnet: not built". */
int mn_ctl_testnet(int argc, char **argv) __attribute__((weak));

int mn_ctl_info(int argc, char **argv);
int mn_ctl_tx(int argc, char **argv); /* issue, revoke, suspend, resume, report-loss, report-recovery */
int mn_ctl_status(int argc, char **argv);
int mn_ctl_watch(int argc, char **argv);
int mn_ctl_block(int argc, char **argv);
int mn_ctl_keygen(int argc, char **argv);
int mn_ctl_pubkey(int argc, char **argv);
int mn_ctl_health(int argc, char **argv);
int mn_ctl_snapshot(int argc, char **argv); /* offline: export / import a certified state snapshot */

/* ---- shared helpers (ctl_common.c) ---- */

/* Reports a failure: with --json prints {"error": msg, "code": code} on
 * stdout, otherwise "midctl: msg" on stderr. Returns MN_CTL_EXIT_FAIL. */
int mn_ctl_fail(const char *code, const char *fmt, ...) MN_PRINTF(2, 3);

/* Reports a usage error on stderr (and as JSON with --json). Returns
 * MN_CTL_EXIT_USAGE. */
int mn_ctl_usage(const char *fmt, ...) MN_PRINTF(1, 2);

/* Reports a failed RPC from the client's last result or the transport error
 * rc. Returns MN_CTL_EXIT_FAIL. */
int mn_ctl_rpc_fail(const mn_client *c, int rc, const char *what);

/* Prints obj (stolen) as one compact JSON line on stdout. Returns 0, or 1
 * when it cannot be written. */
int mn_ctl_print_json(json_t *obj);

/* Connects to mn_ctl.node; on failure reports it and returns NULL. */
mn_client *mn_ctl_connect(void);

/* Lower-case hex of bytes as a new JSON string. */
json_t *mn_ctl_hex(const uint8_t *data, size_t len);

/* "2026-11-22T10:00:00.123Z" from Unix milliseconds into out (>= 32 bytes). */
const char *mn_ctl_time_str(char *out, size_t out_len, int64_t ms);

/* Parses an unsigned decimal number; MN_OK or MN_EINVAL. */
int mn_ctl_parse_u64(const char *s, uint64_t *out) MN_WARN_UNUSED;

#endif
