/* config.h: a node home's config.json.
 *
 * {
 *   "node_name": "mois",
 *   "role": "validator",                (or "observer")
 *   "member_id": "mois",                (validators: their genesis member id)
 *   "listen": {"p2p": "127.0.0.1:26600", "rpc": "127.0.0.1:26601",
 *              "http": "127.0.0.1:26602"},
 *   "data_dir": "data",                 (optional; relative to the home)
 *   "log_level": "info",                (optional)
 *   "limits": {"rpc_max_connections": 1024, "rpc_max_inflight": 64,
 *              "rpc_idle_timeout_ms": 60000, "mempool_max_txs": 50000,
 *              "mempool_max_bytes": 67108864,
 *              "read_cache_mb": 512},            (optional, each field too)
 *   "peers": ["127.0.0.1:26603", ...]   (optional: overrides the validator
 *                                        addresses of genesis)
 * }
 * Keys live beside it: keys/consensus.key (validators), keys/tls.pem.
 * Unknown top-level keys are refused, so that a misspelt field is noticed. */
#ifndef MN_CONFIG_H
#define MN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "genesis.h"
#include "mn.h"

#define MN_PATH_MAX 4096
#define MN_CONFIG_PEERS_MAX MN_VALIDATORS_MAX
#define MN_CONFIG_BYTES_MAX (256 * 1024)

typedef struct mn_limits {
    uint32_t rpc_max_connections;
    uint32_t rpc_max_inflight;     /* requests in flight per connection */
    uint32_t rpc_idle_timeout_ms;
    uint32_t mempool_max_txs;
    uint64_t mempool_max_bytes;
    uint32_t read_cache_mb; /* committed records kept in memory for status reads
                               (256 bytes a slot; twice the credentials keeps nearly all) */
} mn_limits;

typedef struct mn_config {
    char home[MN_PATH_MAX];                 /* as given to mn_config_load */
    char node_name[MN_MEMBER_ID_MAX + 1];
    bool is_validator;
    char member_id[MN_MEMBER_ID_MAX + 1];   /* validators; "" for observers */
    char listen_p2p[MN_ADDR_MAX];
    char listen_rpc[MN_ADDR_MAX];
    char listen_http[MN_ADDR_MAX];
    char data_dir[MN_PATH_MAX];             /* absolute or joined with home */
    char log_level[16];
    mn_limits limits;
    size_t peer_count;                      /* 0: use genesis validator addresses */
    char peers[MN_CONFIG_PEERS_MAX][MN_ADDR_MAX];
    /* Paths derived from home. */
    char genesis_path[MN_PATH_MAX];
    char consensus_key_path[MN_PATH_MAX];
    char tls_key_path[MN_PATH_MAX];
} mn_config;

/* The default limits named above. */
void mn_limits_default(mn_limits *l);

/* Fills cfg with defaults for a node called name (listen addresses empty). */
void mn_config_default(mn_config *cfg, const char *home, const char *name, bool is_validator);

/* Reads HOME/config.json into *cfg. Returns MN_OK, MN_EIO (unreadable) or
 * MN_EINVAL (err names the bad field: "listen.rpc: ..."). */
int mn_config_load(mn_config *cfg, const char *home, char *err, size_t err_len) MN_WARN_UNUSED;

/* Writes cfg as HOME/config.json (atomic, mode 0644). Returns MN_OK,
 * MN_ENOMEM or MN_EIO. */
int mn_config_write(const mn_config *cfg, char *err, size_t err_len) MN_WARN_UNUSED;

/* Checks that this home belongs to genesis g: a validator's member_id is a
 * validator in g whose consensus key is consensus_pubkey (may be NULL for
 * observers) and whose tls_pin is tls_pin; an observer's node_name is listed
 * in g's observers with tls_pin. Returns MN_OK or MN_EPERM with a message
 * saying which key does not match and what to do. */
int mn_config_check_genesis(const mn_config *cfg, const mn_genesis *g,
                            const uint8_t *consensus_pubkey, const uint8_t tls_pin[MN_HASH_LEN],
                            char *err, size_t err_len) MN_WARN_UNUSED;

#endif
