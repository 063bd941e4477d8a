/* genesis.h: the chain's founding document: chain id, members and their
 * roles and keys, the validator set, observers, and consensus timing.
 *
 * A genesis is loaded once and read-only afterwards; every module that needs
 * membership takes a `const mn_genesis *` and never frees it. The caller of
 * mn_genesis_load owns the result and releases it with mn_genesis_free.
 *
 * genesis.json (written by `midctl testnet`):
 * {
 *   "chain_id": "midnode-testnet",
 *   "genesis_time_ms": 1763800000000,
 *   "consensus": {"timeout_propose_ms": 3000, "timeout_prevote_ms": 1000,
 *                 "timeout_precommit_ms": 1000, "timeout_delta_ms": 500,
 *                 "batch_interval_ms": 20, "max_block_interval_ms": 1000,
 *                 "max_block_txs": 5000},
 *     (optional, and so is each field: missing ones take these defaults;
 *      timeout_propose_ms must exceed max_block_interval_ms, because an idle
 *      proposer waits that long before proposing an empty block)
 *   "members": [
 *     {"id": "mois", "roles": ["validator", "issuer"],
 *      "tx_key": "<66 hex: compressed secp256k1 key signing this member's transactions>",
 *      "credential_types": ["resident"],                       (issuers)
 *      "validator": {"consensus_key": "<66 hex>", "tls_pin": "<64 hex>",
 *                    "p2p": "127.0.0.1:26600"}},              (validators)
 *     {"id": "skt", "roles": ["validator", "carrier"], ...}
 *   ],
 *   "observers": [{"name": "obs1", "tls_pin": "<64 hex>"}]       (optional)
 * }
 * tx_key is required of issuers and carriers, optional for a member that
 * is only a validator (`midctl testnet` gives every member one). Ids use
 * a-z, 0-9, '-', '_'; unknown fields are refused so a misspelling is seen.
 * Validators are indexed in the order they appear in "members".
 * tls_pin is SHA-256 of the DER SubjectPublicKeyInfo of the node's TLS key. */
#ifndef MN_GENESIS_H
#define MN_GENESIS_H

#include <stdbool.h>
#include <stdint.h>

#include "mn.h"

enum mn_role { MN_ROLE_VALIDATOR = 1u << 0, MN_ROLE_ISSUER = 1u << 1, MN_ROLE_CARRIER = 1u << 2 };

/* Credential types as in proto CredentialType (1..5); bit (1u << type). */
#define MN_CRED_TYPE_MIN 1
#define MN_CRED_TYPE_MAX 5
#define MN_OBSERVERS_MAX 64
#define MN_ADDR_MAX 128

typedef struct mn_member {
    char id[MN_MEMBER_ID_MAX + 1];
    uint32_t roles;                         /* MN_ROLE_* bits */
    bool has_tx_key;                        /* issuers and carriers sign transactions */
    uint8_t tx_pubkey[MN_PUBKEY_LEN];
    uint32_t cred_types;                    /* issuers: bit (1u << type) per allowed type */
    int32_t validator_index;                /* -1 unless a validator */
    uint8_t consensus_pubkey[MN_PUBKEY_LEN];/* validators */
    uint8_t tls_pin[MN_HASH_LEN];           /* validators */
    char p2p_addr[MN_ADDR_MAX];             /* validators: "host:port" */
} mn_member;

typedef struct mn_observer {
    char name[MN_MEMBER_ID_MAX + 1];
    uint8_t tls_pin[MN_HASH_LEN];
} mn_observer;

typedef struct mn_consensus_params {
    uint32_t timeout_propose_ms;
    uint32_t timeout_prevote_ms;
    uint32_t timeout_precommit_ms;
    uint32_t timeout_delta_ms;      /* added per round */
    uint32_t batch_interval_ms;     /* wait this long for more txs once one is waiting */
    uint32_t max_block_interval_ms; /* an idle chain still commits a block this often */
    uint32_t max_block_txs;
} mn_consensus_params;

typedef struct mn_genesis {
    char chain_id[MN_CHAIN_ID_MAX + 1];
    int64_t genesis_time_ms;
    mn_consensus_params params;
    size_t member_count;
    mn_member members[MN_MEMBERS_MAX];
    uint32_t validator_count;
    uint16_t validator_members[MN_VALIDATORS_MAX]; /* validator index -> members[] index */
    size_t observer_count;
    mn_observer observers[MN_OBSERVERS_MAX];
    uint8_t validators_hash[MN_HASH_LEN]; /* SHA-256 over each validator's consensus key, in order */
    uint8_t genesis_hash[MN_HASH_LEN];    /* SHA-256 of the genesis file's bytes */
} mn_genesis;

/* Reads and checks a genesis file. On success *out is a new genesis the
 * caller frees with mn_genesis_free. Returns MN_OK, MN_EIO (unreadable),
 * MN_EINVAL (a missing or bad field: err names it, e.g.
 * "members[2].tx_key: expected 66 hex characters"). */
int mn_genesis_load(mn_genesis **out, const char *path, char *err, size_t err_len) MN_WARN_UNUSED;

/* The same from bytes in memory (genesis_hash is SHA-256 of json[0..len)). */
int mn_genesis_parse(mn_genesis **out, const char *json, size_t len, char *err, size_t err_len) MN_WARN_UNUSED;

void mn_genesis_free(mn_genesis *g); /* NULL-safe */

/* The member with this id, or NULL. */
const mn_member *mn_genesis_member(const mn_genesis *g, const char *id);

/* The member that is validator `index`, or NULL when out of range. */
const mn_member *mn_genesis_validator(const mn_genesis *g, uint32_t index);

/* A new zeroed genesis (member validator_index set to -1 is the caller's
 * job) with the default consensus parameters; NULL when out of memory.
 * Used by writers (`midctl testnet`, `midnode --dev`). */
mn_genesis *mn_genesis_new(void);

/* The defaults: propose 3000, prevote 1000, precommit 1000, delta 500,
 * batch_interval 20, max_block_interval 1000, max_block_txs 5000 (ms). */
void mn_consensus_params_default(mn_consensus_params *p);

/* Serialises g as genesis.json text (the layout above, two-space indent,
 * trailing newline) into a new NUL-terminated buffer the caller frees with
 * free(). Only the fields a file holds are written (not the derived hashes
 * or validator indexes). Returns MN_OK, MN_ENOMEM, or MN_EINVAL when g does
 * not hold a valid genesis (err names the field). */
int mn_genesis_dump(const mn_genesis *g, char **json, char *err, size_t err_len) MN_WARN_UNUSED;

/* mn_genesis_dump, then an atomic write of path (mode 0644). Returns MN_OK,
 * MN_EINVAL, MN_ENOMEM or MN_EIO. */
int mn_genesis_write(const mn_genesis *g, const char *path, char *err, size_t err_len) MN_WARN_UNUSED;

/* Role names "validator", "issuer", "carrier": one role bit to its name
 * (NULL when not exactly one known bit), and a name to its bit (0 when
 * unknown). */
const char *mn_role_name(uint32_t role);
uint32_t mn_role_from_name(const char *name);

/* Credential type name ("resident", "driver", "veteran", "foreigner",
 * "overseas") to its number 1..5; 0 when unknown. And back (NULL when unknown). */
int mn_cred_type_from_name(const char *name);
const char *mn_cred_type_name(int type);

#endif
