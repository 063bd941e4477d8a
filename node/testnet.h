/* testnet.h: writes ready-to-run cluster definitions (`midctl testnet`) and
 * the one-validator development chain (`midnode --dev`).
 *
 * Layout written by mn_testnet_write (INTERFACE.md "Files"):
 *   DIR/genesis.json
 *   DIR/NODE/{config.json, genesis.json, keys/consensus.key (validators),
 *             keys/tls.pem}                 for every node
 *   DIR/keys/MEMBER.key                     every member's tx key, mode 0600
 *   DIR/testnet.json                        nodes, addresses, members, key files
 * Node names: a validator is named after its member id; observers obs1, obs2...
 * Ports of node i (validators first, then observers): p2p base+3i,
 * rpc base+3i+1, http base+3i+2.
 * With hosts (one name per node, for containers that each have their own
 * host name), node i is reached at hosts[i]:PORT (genesis p2p address,
 * testnet.json) and listens on 0.0.0.0:PORT, since its own name may resolve
 * to an address that changes when the container is re-attached. */
#ifndef MN_TESTNET_H
#define MN_TESTNET_H

#include <stdint.h>

#include "mn.h"

#define MN_TESTNET_BASE_PORT 26600
#define MN_TESTNET_CHAIN_ID "midnode-testnet"
#define MN_DEV_CHAIN_ID "midnode-dev"

typedef struct mn_testnet_opts {
    const char *dir;       /* required; created when missing */
    uint32_t validators;   /* 1..MN_VALIDATORS_MAX, default 4 */
    uint32_t observers;    /* 0..MN_OBSERVERS_MAX, default 0 */
    uint32_t base_port;    /* default 26600; all ports must stay <= 65535 */
    const char *host;      /* default "127.0.0.1" */
    const char *hosts;     /* NULL, or "NAME,NAME,...": one per node, in node
                              order (validators, then observers); overrides host */
    const char *chain_id;  /* default "midnode-testnet" */
    int64_t genesis_time_ms; /* 0: now */
} mn_testnet_opts;

void mn_testnet_opts_default(mn_testnet_opts *o);

/* Writes a new testnet into o->dir. hosts must name exactly
 * validators + observers valid hosts (MN_EINVAL otherwise). Refuses (MN_ESTATE) a dir that already
 * holds a genesis.json, so that keys are never silently replaced.
 * Returns MN_OK, MN_EINVAL (bad option), MN_ESTATE, MN_EIO, MN_ECRYPTO. */
int mn_testnet_write(const mn_testnet_opts *o, char *err, size_t err_len) MN_WARN_UNUSED;

/* Prepares HOME as a one-validator development chain (validator mois, all
 * default members, their tx keys in HOME/keys/members/ID.key). When HOME
 * already holds a dev chain its files are reused as they are, so re-running
 * keeps the chain. Ports: p2p base, rpc base+1, http base+2 on 127.0.0.1
 * with base MN_TESTNET_BASE_PORT. Returns MN_OK, MN_EIO, MN_ECRYPTO. */
int mn_testnet_dev(const char *home, char *err, size_t err_len) MN_WARN_UNUSED;

/* `midctl testnet ...` (argv[0] is "testnet"; also accepts --json).
 * Prints what it wrote on stdout, errors on stderr. Returns the exit
 * status: 0 done, 1 failed, 2 usage. mn_ctl_testnet (tools/ctl_testnet.c,
 * midctl's entry point) calls mn_testnet_main (node/testnet.c). */
int mn_testnet_main(int argc, char **argv);
int mn_ctl_testnet(int argc, char **argv);

#endif
